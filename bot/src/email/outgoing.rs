//! Replies: a threaded `Re:` mail in plain text with an HTML alternative,
//! marked as automatic (RFC 3834) so other robots do not answer it, and sent
//! by SMTP submission with `lettre`.

use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};

use super::mail::Mail;
use crate::commands::Reply;
use crate::config::{Email, TlsMode};
use crate::store::audit::sha256_hex;

/// A reply ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its Message-ID with angle brackets: derived from the mail it answers,
    /// so a reply sent again after a crash carries the same id.
    pub message_id: String,
    /// The address it goes to, lower-case.
    pub to: String,
    /// The reference (Message-ID) of the mail it answers.
    pub in_reply_to: String,
    pub message: Message,
}

/// The reply to `mail` (from `to`) carrying `reply`, with `notes` (about
/// attachments, say) after it.
pub fn reply(config: &Email, mail: &Mail, to: &str, reply: &Reply, notes: &[String]) -> Result<Outgoing> {
    let message_id = reply_id(config, &mail.reference());
    let subject = match mail.subject.trim() {
        "" => "Re: your question".to_owned(),
        s if s.to_lowercase().starts_with("re:") => s.to_owned(),
        s => format!("Re: {s}"),
    };
    let mut builder = automatic(config, to, "auto-replied")?
        .subject(subject)
        .message_id(Some(message_id.clone()));
    if let Some(id) = &mail.message_id {
        builder = builder.in_reply_to(format!("<{id}>"));
        let references: Vec<String> = mail
            .references
            .iter()
            .chain(std::iter::once(id))
            .map(|r| format!("<{r}>"))
            .collect();
        builder = builder.references(references.join(" "));
    }
    let mut plain = reply.plain.clone();
    let mut html = reply.html.clone();
    for note in notes {
        plain.push_str(&format!("\n\n{note}"));
        html.push_str(&format!("<p><em>{}</em></p>", policybot_index::render::escape(note)));
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(plain, html))
        .context("building the reply")?;
    Ok(Outgoing {
        message_id,
        to: to.to_owned(),
        in_reply_to: mail.reference(),
        message,
    })
}

/// A mail from the bot to `to` marked as automatic (RFC 3834 `kind`:
/// "auto-replied" or "auto-generated") so other robots do not answer it,
/// with a Bcc copy to the bot's own mailbox.
fn automatic(config: &Email, to: &str, kind: &str) -> Result<lettre::message::MessageBuilder> {
    let from: Mailbox = format!("{} <{}>", config.name, config.address)
        .parse()
        .or_else(|_| config.address.parse())
        .with_context(|| format!("[email] address '{}'", config.address))?;
    let to_box: Mailbox = to.parse().with_context(|| format!("mailing '{to}'"))?;
    Ok(Message::builder()
        .from(from.clone())
        .to(to_box)
        // A copy comes back to the bot's own mailbox: after a crash it is
        // the proof that the server took a mail the store had not yet
        // recorded as sent.
        .bcc(from)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            kind.into(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Loop"),
            config.address.clone(),
        ))
        // Asks Exchange and others not to send out-of-office replies to it.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".into(),
        )))
}

/// A mail the bot starts (an acknowledgement nudge), plain text with an
/// HTML alternative, with the given Message-ID.
pub fn notice(
    config: &Email,
    to: &str,
    subject: &str,
    message_id: &str,
    plain: String,
    html: String,
) -> Result<Message> {
    automatic(config, to, "auto-generated")?
        .subject(subject)
        .message_id(Some(message_id.to_owned()))
        .multipart(MultiPart::alternative_plain_html(plain, html))
        .context("building the mail")
}

/// The domain of the bot's address, for the Message-IDs it makes.
pub fn domain(config: &Email) -> &str {
    config.address.rsplit('@').next().unwrap_or("localhost")
}

/// The Message-ID of the reply to the mail `reference`.
pub fn reply_id(config: &Email, reference: &str) -> String {
    format!("<{REPLY_ID_PREFIX}{}@{}>", &sha256_hex(reference)[..32], domain(config))
}

/// How the Message-IDs of the bot's replies begin.
pub const REPLY_ID_PREFIX: &str = "policybot.";

/// The SMTP submission transport. Each reply opens its own connection: a
/// pooled one may be dead after the server restarted, and replies are few.
pub fn transport(config: &Email, password: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let server = &config.smtp;
    let mut parameters = TlsParameters::builder(server.host.clone());
    if let Some(file) = &config.ca_file {
        let pem = std::fs::read(file).with_context(|| format!("reading CA file {}", file.display()))?;
        let ca = Certificate::from_pem(&pem).with_context(|| format!("CA file {}", file.display()))?;
        parameters = parameters.add_root_certificate(ca);
    }
    let parameters = parameters.build_rustls().context("SMTP TLS settings")?;
    let tls = match server.tls {
        TlsMode::Implicit => Tls::Wrapper(parameters),
        TlsMode::Starttls => Tls::Required(parameters),
        TlsMode::None => Tls::None,
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
            .port(server.port)
            .tls(tls)
            .credentials(Credentials::new(config.username().to_owned(), password.to_owned()))
            .timeout(Some(Duration::from_secs(30)))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailServer;

    fn config() -> Email {
        let server = |port| MailServer {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
        };
        Email {
            name: "Oakfield policy bot".into(),
            ..Email::account("policy@oakfield.example", "x", server(143), server(25))
        }
    }

    #[test]
    fn replies_are_threaded_automatic_and_stable() {
        let mail = Mail::parse(
            b"From: a.shah@oakfield.example\r\nSubject: WhatsApp on trips\r\nMessage-ID: <q2@x>\r\n\
References: <q1@x>\r\n\r\nCan I use WhatsApp?\r\n",
        )
        .unwrap();
        let answer = Reply {
            plain: "No.\n\n“Staff must not use WhatsApp.”".into(),
            html: "<p><strong>No.</strong></p>".into(),
        };
        let notes = ["I don't open attachments.".to_owned()];
        let out = reply(&config(), &mail, "a.shah@oakfield.example", &answer, &notes).unwrap();
        let again = reply(&config(), &mail, "a.shah@oakfield.example", &answer, &notes).unwrap();
        assert_eq!(out.message_id, again.message_id, "a resent reply keeps its Message-ID");
        let envelope: Vec<String> = out.message.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            envelope,
            ["a.shah@oakfield.example", "policy@oakfield.example"],
            "a copy to the bot"
        );
        let text = String::from_utf8(out.message.formatted()).unwrap();
        for header in [
            "Subject: Re: WhatsApp on trips",
            "In-Reply-To: <q2@x>",
            "References: <q1@x> <q2@x>",
            "Auto-Submitted: auto-replied",
            "X-Loop: policy@oakfield.example",
            "From: \"Oakfield policy bot\" <policy@oakfield.example>",
            "To: a.shah@oakfield.example",
            "multipart/alternative",
            "text/html",
        ] {
            assert!(text.contains(header), "{header} missing from\n{text}");
        }
        let parsed = Mail::parse(&out.message.formatted()).unwrap();
        assert!(parsed.text.contains("I don't open attachments."));
    }

    #[test]
    fn a_suggestion_is_mailed_with_its_clauses_in_both_bodies() {
        let mail =
            Mail::parse(b"From: alice@oakfield.example\r\nSubject: coat\r\nMessage-ID: <s@x>\r\n\r\nLost coat?\r\n")
                .unwrap();
        let answer = crate::conversation::tests::suggestion_reply();
        let out = reply(&config(), &mail, "alice@oakfield.example", &answer, &[]).unwrap();
        let sent = out.message.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&sent).unwrap();
        // Line ends as a mail carries them.
        let body = |b: Option<std::borrow::Cow<'_, str>>| b.unwrap_or_default().replace("\r\n", "\n");
        assert_eq!(
            (body(parsed.body_text(0)), body(parsed.body_html(0))),
            (answer.plain.clone(), answer.html.clone()),
            "the suggestion crosses as written"
        );
    }
}
