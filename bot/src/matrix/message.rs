//! What a Matrix message says, read from its content as real clients
//! (Element web, Android, iOS) build it: the words the person typed, without
//! the quoted message a rich reply carries, and whether it edits an earlier
//! message. Pure, so it is tested on recorded event contents
//! (`tests/fixtures/matrix/`) and reachable by a fuzz target through
//! [`question_text`].

use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::room::message::sanitize::remove_plain_reply_fallback;
use matrix_sdk::ruma::events::room::message::{
    FormattedBody, MessageFormat, MessageType, Relation, RoomMessageEventContent,
};

/// A message as the bot reads it.
#[derive(Debug, Clone)]
pub enum Read {
    /// Text typed by a person: a question or a command.
    Text(Said),
    /// An edit (`m.replace`) of the message `of`, saying what it says now.
    Edit { of: OwnedEventId, now: Said },
    /// Not for the bot: notices (what bots send, so two bots never talk to
    /// each other), emotes ("/me …" is an action, not a question), media,
    /// and text with no words.
    Ignored,
}

/// The words of a message and what addresses the bot in it.
#[derive(Debug, Clone)]
pub struct Said {
    /// The text the person typed.
    pub text: String,
    /// Its HTML (reply fallback removed), where mention pills are.
    pub html: Option<String>,
    /// Who the sender's client says the message mentions.
    pub mentions: Option<Mentions>,
}

/// Reads a message event's content.
pub fn read(content: &RoomMessageEventContent) -> Read {
    match &content.relates_to {
        // The edit's own `body` is "* new text", a fallback for clients that
        // do not know edits; `m.new_content` is the message as it is now.
        Some(Relation::Replacement(replacement)) => {
            match said(
                &replacement.new_content.msgtype,
                replacement.new_content.mentions.as_ref(),
                false,
            ) {
                Some(now) => Read::Edit {
                    of: replacement.event_id.clone(),
                    now,
                },
                None => Read::Ignored,
            }
        }
        relation => {
            // Only a reply carries a fallback (a thread's reply relation too,
            // when the client quotes the message it answers in the thread).
            let replying = matches!(relation, Some(Relation::Reply(_)))
                || matches!(relation, Some(Relation::Thread(t)) if t.in_reply_to.is_some() && !t.is_falling_back);
            match said(&content.msgtype, content.mentions.as_ref(), replying) {
                Some(said) => Read::Text(said),
                None => Read::Ignored,
            }
        }
    }
}

/// The question a message event's content (JSON, as in an event's
/// `content`) asks, or an edit asks now; `None` for anything the bot does
/// not answer or content that is not a message. The entry point for fuzzing.
pub fn question_text(content_json: &str) -> Option<String> {
    let content: RoomMessageEventContent = serde_json::from_str(content_json).ok()?;
    match read(&content) {
        Read::Text(said) | Read::Edit { now: said, .. } => Some(said.text),
        Read::Ignored => None,
    }
}

fn said(msgtype: &MessageType, mentions: Option<&Mentions>, replying: bool) -> Option<Said> {
    let MessageType::Text(text) = msgtype else {
        return None;
    };
    let html = text
        .formatted
        .as_ref()
        .filter(|f| f.format == MessageFormat::Html)
        .map(|f| {
            if replying {
                without_html_fallback(f)
            } else {
                f.body.clone()
            }
        });
    let body = if replying {
        remove_plain_reply_fallback(&text.body)
    } else {
        &text.body
    };
    let mut typed = body.trim().to_owned();
    // `body` is what the person typed (the Markdown source, in Element);
    // only a client that put its words in the HTML alone needs it read.
    if typed.is_empty()
        && let Some(html) = &html
    {
        typed = mail_parser::decoders::html::html_to_text(html).trim().to_owned();
    }
    if typed.is_empty() {
        return None;
    }
    Some(Said {
        text: typed,
        html,
        mentions: mentions.cloned(),
    })
}

/// The HTML without its `<mx-reply>` fallback, which quotes the message
/// replied to (the bot's own answer, with the bot's id in a pill). The spec
/// puts it first and unnested, so it is cut rather than parsed: ruma's
/// `remove_html_reply_fallback` needs its `html` feature (html5ever) built
/// into the whole Matrix stack for this one cut.
fn without_html_fallback(formatted: &FormattedBody) -> String {
    let html = formatted.body.trim_start();
    if let Some(rest) = html.strip_prefix("<mx-reply>")
        && let Some(end) = rest.find("</mx-reply>")
    {
        return rest[end + "</mx-reply>".len()..].to_owned();
    }
    formatted.body.clone()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/matrix")
    }

    /// A fixture's event content.
    fn content(name: &str) -> RoomMessageEventContent {
        let path = fixtures().join(format!("{name}.json"));
        let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let event: serde_json::Value = serde_json::from_str(&json).unwrap();
        serde_json::from_value(event["content"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn text(name: &str) -> Said {
        match read(&content(name)) {
            Read::Text(said) => said,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn every_fixture_reads_as_expected() {
        // Each fixture says what the bot must read from it: the question,
        // an edit's new text, or nothing.
        let mut seen = 0;
        for entry in std::fs::read_dir(fixtures()).unwrap() {
            let path = entry.unwrap().path();
            let json = std::fs::read_to_string(&path).unwrap();
            let event: serde_json::Value = serde_json::from_str(&json).unwrap();
            let expected = event["expected"].as_str();
            let content = serde_json::to_string(&event["content"]).unwrap();
            assert_eq!(question_text(&content).as_deref(), expected, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 8, "the fixtures are there ({seen})");
    }

    #[test]
    fn a_rich_reply_is_read_without_the_quoted_answer() {
        let said = text("rich_reply");
        assert_eq!(said.text, "What about on a school trip abroad?");
        let html = said.html.unwrap();
        assert!(!html.contains("mx-reply") && !html.contains("@policybot"), "{html}");
        assert_eq!(text("reply_to_reply").text, "And if the parent asks me first?");
    }

    #[test]
    fn a_quote_typed_in_a_message_that_is_no_reply_stays() {
        let said = text("plain_question");
        assert!(!said.text.starts_with('>'));
        let mut quoted = content("plain_question");
        quoted.msgtype = MessageType::text_plain("> <@tom:localhost> you can't\n\nis that right?");
        assert_eq!(
            question_text(&serde_json::to_string(&quoted).unwrap()).as_deref(),
            Some("> <@tom:localhost> you can't\n\nis that right?")
        );
    }

    #[test]
    fn an_edit_says_what_it_edits_and_its_new_text() {
        let Read::Edit { of, now } = read(&content("edit")) else {
            panic!("an edit");
        };
        assert_eq!(of.as_str(), "$original-question:localhost");
        assert_eq!(now.text, "Can I use WhatsApp to message parents on a school trip?");
        assert!(now.mentions.is_some(), "the new content's mentions");
    }

    #[test]
    fn a_pill_is_in_the_html_and_the_mentions() {
        let said = text("mention_pill");
        assert!(said.html.unwrap().contains("https://matrix.to/#/@policybot:localhost"));
        assert!(
            said.mentions
                .unwrap()
                .user_ids
                .iter()
                .any(|u| u == "@policybot:localhost")
        );
    }

    #[test]
    fn notices_emotes_and_non_messages_are_not_questions() {
        assert!(matches!(read(&content("notice")), Read::Ignored));
        assert!(matches!(read(&content("emote")), Read::Ignored));
        assert_eq!(question_text("{}"), None);
        assert_eq!(question_text("not json"), None);
        assert_eq!(question_text(r#"{"msgtype":"m.text","body":"  "}"#), None);
    }

    #[test]
    fn words_only_in_the_html_are_read_from_it() {
        let content = r#"{"msgtype":"m.text","body":"","format":"org.matrix.custom.html","formatted_body":"<p>Can I use <b>WhatsApp</b>?</p>"}"#;
        assert_eq!(question_text(content).as_deref(), Some("Can I use WhatsApp?"));
    }
}
