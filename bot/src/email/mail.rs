//! An incoming mail as the email channel needs it: who sent it, how it is
//! threaded, the headers that say whether a machine sent it, and what the
//! sender wrote. Parsing is `mail-parser`'s (any charset, HTML-only bodies
//! turned into text, attachments told apart); what is new in the text is
//! [`super::text`]'s.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use super::text;
use crate::store::audit::sha256_hex_bytes;

#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The Message-ID without its angle brackets.
    pub message_id: Option<String>,
    /// The From address, lower-cased.
    pub from: Option<String>,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Every header as (lower-case name, value as written), for the loop
    /// and trust checks.
    pub headers: Vec<(String, String)>,
    /// What the sender wrote: the new text of the body, without quoted
    /// replies, signatures and disclaimers.
    pub text: String,
    /// Names of attachments (which are never opened).
    pub attachments: Vec<String>,
    /// Only the headers were read (the mail was too large).
    pub headers_only: bool,
    /// The mail's size in bytes.
    pub size: usize,
    /// SHA-256 of the raw mail: its identity when it has no Message-ID.
    pub digest: String,
}

impl Mail {
    /// Parses a whole mail. `None` when there is nothing mail-like in it.
    pub fn parse(raw: &[u8]) -> Option<Mail> {
        Self::parse_with(raw, raw.len(), false)
    }

    /// Parses just the header block of a mail too large to read whole.
    pub fn parse_headers(header: &[u8], size: usize) -> Option<Mail> {
        Self::parse_with(header, size, true)
    }

    fn parse_with(raw: &[u8], size: usize, headers_only: bool) -> Option<Mail> {
        let message = MessageParser::default().parse(raw)?;
        let headers: Vec<(String, String)> = message
            .headers_raw()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        if headers.is_empty() {
            return None;
        }
        let from = message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_lowercase());
        let body = if headers_only {
            String::new()
        } else {
            // The first text part (or the HTML part as text when there is no
            // plain one); later parts are forwarded or attached material.
            message.body_text(0).map(|b| b.into_owned()).unwrap_or_default()
        };
        let attachments = message
            .attachments()
            .map(|a| a.attachment_name().unwrap_or("unnamed").to_owned())
            .collect();
        Some(Mail {
            message_id: message
                .message_id()
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty()),
            from,
            subject: message.subject().unwrap_or_default().trim().to_owned(),
            in_reply_to: ids(message.in_reply_to()).into_iter().next_back(),
            references: ids(message.references()),
            headers,
            text: text::new_text(&body),
            attachments,
            headers_only,
            size,
            digest: sha256_hex_bytes(raw),
        })
    }

    /// The mail's identity in the store and the audit log: its Message-ID,
    /// else a digest of its bytes (the same mail fetched again is the same).
    pub fn reference(&self) -> String {
        match &self.message_id {
            Some(id) => format!("<{id}>"),
            None => format!("{DIGEST_PREFIX}{}", self.digest),
        }
    }

    /// The conversation this mail belongs to: the first message of its
    /// thread, as References and In-Reply-To name it.
    pub fn thread_root(&self) -> String {
        self.references
            .first()
            .or(self.in_reply_to.as_ref())
            .map(|id| format!("<{id}>"))
            .unwrap_or_else(|| self.reference())
    }

    /// What the mail asks: its new text, else its subject.
    pub fn question(&self) -> String {
        if self.text.trim().is_empty() {
            text::bare_subject(&self.subject)
        } else {
            self.text.clone()
        }
    }

    /// The values of every header called `name` (lower-case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the reference of a mail without a Message-ID begins.
const DIGEST_PREFIX: &str = "sha256:";

/// The reference of raw bytes that do not even parse as a mail.
pub fn digest_reference(raw: &[u8]) -> String {
    format!("{DIGEST_PREFIX}{}", sha256_hex_bytes(raw))
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.trim().to_owned()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAFF_MAIL: &str = "From: Amira Shah <A.Shah@oakfield.example>\r\n\
To: policy@oakfield.example\r\n\
Subject: Re: WhatsApp on trips\r\n\
Message-ID: <q2@oakfield.example>\r\n\
In-Reply-To: <r1@oakfield.example>\r\n\
References: <q1@oakfield.example> <r1@oakfield.example>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
What about on a school phone?\r\n\
\r\n\
On Mon, 2 Mar 2026 at 09:14, Policy bot <policy@oakfield.example> wrote:\r\n\
> No. Staff must not use WhatsApp.\r\n";

    #[test]
    fn a_reply_in_a_thread_is_read_with_its_new_text_only() {
        let mail = Mail::parse(STAFF_MAIL.as_bytes()).unwrap();
        assert_eq!(mail.from.as_deref(), Some("a.shah@oakfield.example"));
        assert_eq!(mail.reference(), "<q2@oakfield.example>");
        assert_eq!(mail.in_reply_to.as_deref(), Some("r1@oakfield.example"));
        assert_eq!(mail.thread_root(), "<q1@oakfield.example>");
        assert_eq!(mail.question(), "What about on a school phone?");
        assert!(mail.attachments.is_empty());
    }

    #[test]
    fn html_only_latin1_and_attachments() {
        let mut html = b"From: t.okafor@oakfield.example\r\nSubject: photos\r\nMessage-ID: <h@x>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/html; charset=iso-8859-1\r\n\r\n<html><body><p>Can I take photos of pupils on my own phone? \
Caf\xe9 trip</p></body></html>\r\n--b\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"consent.pdf\"\r\n\r\n%PDF-1.4\r\n--b--\r\n"
            .to_vec();
        html.push(b'\n');
        let mail = Mail::parse(&html).unwrap();
        assert!(
            mail.question()
                .starts_with("Can I take photos of pupils on my own phone? Café")
        );
        assert_eq!(mail.attachments, ["consent.pdf"]);
    }

    #[test]
    fn subject_only_and_no_message_id() {
        let raw = b"From: a.shah@oakfield.example\r\nSubject: Fwd: Can I use a memory stick?\r\n\r\n";
        let mail = Mail::parse(raw).unwrap();
        assert_eq!(mail.question(), "Can I use a memory stick?");
        assert!(mail.reference().starts_with("sha256:"));
        assert_eq!(
            mail.reference(),
            Mail::parse(raw).unwrap().reference(),
            "the same bytes, the same mail"
        );
        assert_eq!(mail.thread_root(), mail.reference());
    }

    #[test]
    fn garbage_is_not_a_mail() {
        assert!(Mail::parse(b"").is_none());
        let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        // Whatever mail-parser makes of binary noise, it must not panic.
        let _ = Mail::parse(&binary);
    }
}
