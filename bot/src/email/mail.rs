//! An incoming mail as the email channel needs it: who sent it, how it is
//! threaded, the headers that say whether a machine sent it, and what the
//! sender wrote. Parsing is `mail-parser`'s (any charset, attachments told
//! apart); an HTML-only body is read by [`super::html`], with its blocks and
//! quotes; what is new in the text is [`super::text`]'s.

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::{html, text};
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
        let body = if headers_only { String::new() } else { body(&message) };
        // Images the HTML shows by `cid:` (a signature logo) are part of the
        // body, not attachments the sender expects to be read.
        let shown = shown_images(&message);
        let attachments = message
            .attachments()
            .filter(|a| a.content_id().is_none_or(|id| !shown.contains(&bare_id(id))))
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

/// What the sender wrote, as text: the first plain-text body the client
/// wrote, else the first HTML body read with its structure. Later parts are
/// forwarded or attached material.
fn body(message: &Message<'_>) -> String {
    let first = |ids: &[u32]| ids.first().and_then(|&id| message.part(id)).map(|p| &p.body);
    if let Some(PartType::Text(plain)) = first(&message.text_body)
        && !plain.trim().is_empty()
    {
        return plain.clone().into_owned();
    }
    match first(&message.html_body).or_else(|| first(&message.text_body)) {
        Some(PartType::Html(markup)) => html::to_text(markup),
        Some(PartType::Text(plain)) => plain.clone().into_owned(),
        _ => String::new(),
    }
}

/// The Content-IDs the mail's HTML parts show as `cid:` images.
fn shown_images(message: &Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for part in &message.parts {
        let PartType::Html(markup) = &part.body else { continue };
        let mut rest = markup.as_ref();
        while let Some(at) = rest.find("cid:") {
            rest = &rest[at + 4..];
            let end = rest.find(['"', '\'', ' ', '>', ')']).unwrap_or(rest.len());
            ids.push(bare_id(&rest[..end]));
        }
    }
    ids
}

/// A Content-ID without angle brackets, as `cid:` URLs write it.
fn bare_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
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

    /// `tests/fixtures/mail/*.eml`: replies laid out the way Outlook (web,
    /// desktop, iOS), Gmail, Apple Mail and Thunderbird lay them out, each
    /// with the question it asks in `<name>.question`.
    fn fixtures() -> Vec<(String, Vec<u8>, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail");
        let mut found: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        found.sort();
        assert!(found.len() >= 10, "the fixture corpus is in {}", dir.display());
        found
            .into_iter()
            .map(|path| {
                let expected = std::fs::read_to_string(path.with_extension("question")).unwrap();
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap(), expected.trim_end().to_owned())
            })
            .collect()
    }

    #[test]
    fn every_client_s_reply_is_read_as_its_new_text() {
        for (name, raw, expected) in fixtures() {
            let mail = Mail::parse(&raw).unwrap();
            assert_eq!(mail.question(), expected, "{name}");
            assert_eq!(
                crate::email::question_of(&raw).as_deref(),
                Some(expected.as_str()),
                "{name}"
            );
            // Signature logos shown by `cid:` are not unopened attachments.
            assert!(mail.attachments.is_empty(), "{name}: {:?}", mail.attachments);
        }
    }

    #[test]
    fn a_client_s_plain_and_html_parts_say_the_same() {
        let mut both = 0;
        for (name, raw, expected) in fixtures() {
            let message = MessageParser::default().parse(&raw).unwrap();
            let part = |ids: &[u32]| ids.first().and_then(|&id| message.part(id)).map(|p| p.body.clone());
            let (Some(PartType::Text(plain)), Some(PartType::Html(markup))) =
                (part(&message.text_body), part(&message.html_body))
            else {
                continue;
            };
            both += 1;
            assert_eq!(text::new_text(&plain), expected, "{name}, plain part");
            assert_eq!(text::new_text(&html::to_text(&markup)), expected, "{name}, HTML part");
        }
        assert!(both >= 5, "{both} fixtures with both parts");
    }

    #[test]
    fn cut_short_anywhere_a_client_s_mail_still_parses() {
        for (_, raw, _) in fixtures() {
            for end in (0..raw.len()).step_by(7) {
                let _ = crate::email::question_of(&raw[..end]);
            }
            let message = MessageParser::default().parse(&raw).unwrap();
            for part in &message.parts {
                let PartType::Html(markup) = &part.body else { continue };
                for (end, _) in markup.char_indices().step_by(3) {
                    let _ = html::to_text(&markup[..end]);
                }
            }
        }
    }

    #[test]
    fn an_attachment_is_named_but_an_image_the_html_shows_is_not() {
        let raw = b"From: a.shah@oakfield.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/related; boundary=r\r\n\r\n--r\r\nContent-Type: text/html\r\n\r\n\
<div>Can I?</div><img src=\"cid:logo@x\">\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n\
Content-Disposition: inline; filename=logo.png\r\n\r\nPNG\r\n--r\r\nContent-Type: image/png\r\n\
Content-ID: <other@x>\r\nContent-Disposition: inline; filename=photo.png\r\n\r\nPNG\r\n--r--\r\n";
        let mail = Mail::parse(raw).unwrap();
        assert_eq!(mail.question(), "Can I?");
        assert_eq!(mail.attachments, ["photo.png"]);
    }

    #[test]
    fn garbage_is_not_a_mail() {
        assert!(Mail::parse(b"").is_none());
        let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        // Whatever mail-parser makes of binary noise, it must not panic.
        let _ = Mail::parse(&binary);
    }
}
