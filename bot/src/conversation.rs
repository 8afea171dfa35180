//! What a message addressed to the bot asks, read in its conversation, and
//! the reply: the part every chat-like channel (Matrix, email) shares. A
//! channel finds the message's text, its sender and its conversation; this
//! decides between a command and a question, reads a follow-up with the
//! question its sender asked before it in that conversation, asks the
//! service, and renders the reply.
//!
//! Everything here is synchronous (the store and the audit writer block), so
//! channels call [`respond`] from `spawn_blocking`.

use anyhow::Result;

use crate::commands::{self, Reply};
use crate::service::{Channel, Service, Who};
use crate::store::channels::Conversation;

/// What a member of staff wants from a message addressed to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Help,
    Policies,
    /// `source` (the clause last cited in this conversation) or
    /// `source <clause id>`.
    Source(Option<String>),
    /// "Thanks!", "ok, got it": not a question, and nothing to answer (a
    /// reply would only repeat the last answer, or start a ping-pong).
    Thanks,
    Question(String),
}

/// Reads a message addressed to the bot as a command or a question.
pub fn request(text: &str) -> Request {
    let text = text.trim();
    let mut words = text.split_whitespace();
    let first = words
        .next()
        .unwrap_or_default()
        .trim_start_matches(['!', '/'])
        .to_lowercase();
    let rest: Vec<&str> = words.collect();
    match (first.as_str(), rest.as_slice()) {
        ("help", []) | ("?", []) => Request::Help,
        ("policies", []) => Request::Policies,
        ("source", []) => Request::Source(None),
        ("source", [id]) => Request::Source(Some((*id).to_owned())),
        _ if is_thanks(text) => Request::Thanks,
        _ => Request::Question(text.to_owned()),
    }
}

/// Words a thank-you or an acknowledgement is made of.
const THANKS_WORDS: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "thx",
    "ta",
    "cheers",
    "many",
    "so",
    "much",
    "a",
    "lot",
    "very",
    "really",
    "ok",
    "okay",
    "great",
    "perfect",
    "brilliant",
    "brill",
    "lovely",
    "fab",
    "fantastic",
    "super",
    "excellent",
    "amazing",
    "good",
    "got",
    "it",
    "that's",
    "thats",
    "that",
    "this",
    "is",
    "was",
    "just",
    "what",
    "i",
    "needed",
    "helpful",
    "useful",
    "will",
    "do",
    "understood",
    "noted",
    "again",
    "for",
    "the",
    "your",
    "help",
    "answer",
    "info",
    "appreciated",
    "all",
    "sorted",
    "clear",
    "makes",
    "sense",
    "kind",
    "of",
    "yes",
    "right",
];

/// Words that make a message a thank-you or an assent.
const ASSENT: &[&str] = &[
    "thanks",
    "thank",
    "thx",
    "ta",
    "cheers",
    "ok",
    "okay",
    "great",
    "perfect",
    "noted",
    "understood",
    "appreciated",
];

/// A short message made only of thanks and acknowledgements ("Thanks,
/// that's really helpful!"), perhaps signed with a name on a line of its own.
fn is_thanks(text: &str) -> bool {
    if text.contains('?') {
        return false;
    }
    let mut lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() > 1 && lines.last().is_some_and(|l| l.split_whitespace().count() <= 2) {
        lines.pop();
    }
    let lower = lines.join(" ").to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= 12
        && words.iter().all(|w| THANKS_WORDS.contains(w))
        && words.iter().any(|w| ASSENT.contains(w))
}

/// Openings of a follow-up that leans on the question before it.
const FOLLOW_UP_OPENINGS: &[&str] = &[
    "what about",
    "how about",
    "what if",
    "and ",
    "and?",
    "but ",
    "or ",
    "same for",
    "also ",
    "even ",
    "does that",
    "does this",
    "is that",
    "is it the same",
];

/// A follow-up that only makes sense with the conversation's question
/// ("what about on a school phone?").
fn leans_on_previous(question: &str) -> bool {
    let lower = question.trim().to_lowercase();
    let words = lower.split_whitespace().count();
    words <= 3 || FOLLOW_UP_OPENINGS.iter().any(|o| lower.starts_with(o))
}

/// A question read in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InContext {
    /// What the engine is asked: a follow-up together with the question
    /// before it.
    pub asked: String,
    /// The conversation's self-contained question from now on: this one,
    /// unless it was a follow-up leaning on the one before.
    pub topic: String,
}

pub fn in_context(question: &str, previous: Option<&str>) -> InContext {
    match previous {
        Some(previous) if leans_on_previous(question) => InContext {
            asked: format!("{previous} {question}"),
            topic: previous.to_owned(),
        },
        _ => InContext {
            asked: question.to_owned(),
            topic: question.to_owned(),
        },
    }
}

/// The reply to `text`, a message from `who` in the conversation `key` of
/// `channel`, whose id in the channel is `reference`. Questions are answered
/// (and recorded) by the service; commands are not questions and are not
/// recorded. Someone not on the staff list gets the service's refusal. A
/// thank-you gets no reply (`None`).
///
/// The context a follow-up is read with (and `source`'s clause) is the
/// sender's own in that conversation: a colleague writing in someone else's
/// thread starts their own, so nobody is answered about, or recorded as
/// asking, someone else's question. `source` alone in a thread where they
/// asked nothing yet means the clause cited last in it.
pub fn respond(
    service: &Service,
    who: &Who<'_>,
    channel: Channel,
    reference: &str,
    key: &str,
    text: &str,
) -> Result<Option<Reply>> {
    let store = service.store();
    let sender = sender(who);
    let conversation = store.conversation(channel.as_str(), key, sender)?;
    let school = service.school_of(who);
    let request = match school {
        Some(_) => request(text),
        None => Request::Question(text.to_owned()),
    };
    let question = match (request, &school) {
        (Request::Help, _) => return Ok(Some(commands::help(channel))),
        (Request::Thanks, _) => return Ok(None),
        (Request::Policies, Some(school)) => return Ok(Some(commands::policies(&service.engine(), school))),
        (Request::Source(id), Some(school)) => {
            // The clause of the sender's own last answer here, else the one
            // cited last in the thread (what a colleague sees above).
            let id = match (id, &conversation) {
                (Some(id), _) => Some(id),
                (None, Some(own)) => own.clause.clone(),
                (None, None) => store.last_cited_in(channel.as_str(), key)?,
            };
            return Ok(Some(commands::source(&service.engine(), school, id.as_deref())));
        }
        (Request::Question(question), _) => question,
        (_, None) => text.to_owned(),
    };
    let read = in_context(&question, conversation.as_ref().map(|c| c.question.as_str()));
    let exchange = service.answer(&read.asked, who, channel, reference)?;
    Ok(Some(match &exchange.answer {
        Some(answer) => {
            let remembered = Conversation {
                question: read.topic,
                clause: answer.citations.first().map(|c| c.clause_id.clone()),
            };
            store.remember_conversation(channel.as_str(), key, sender, &remembered)?;
            let mut html = policybot_index::render::html(answer);
            if let Some(note) = exchange.cut_note() {
                html.push_str(&format!("<p>{}</p>", policybot_index::render::escape(&note)));
            }
            Reply {
                plain: exchange.reply.clone(),
                html,
            }
        }
        None => Reply::text(exchange.reply),
    }))
}

/// Whose a conversation's context is: the sender as the channel knows them.
fn sender<'a>(who: &Who<'a>) -> &'a str {
    match who {
        Who::Email(address) => address,
        Who::Matrix(user) => user,
        Who::Local { asker, .. } => asker,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use policybot_index::render::SUGGEST_HEADLINE;

    /// The reply to a question the engine is not sure about: the closest
    /// clauses, each after its list's head, no verdict and no "Also
    /// relevant", in both bodies every channel sends.
    pub(crate) fn suggestion_reply() -> Reply {
        let service = crate::service::tests::example_service();
        let who = Who::Email("alice@oakfield.example");
        let question = crate::service::tests::SUGGEST_QUESTION;
        respond(&service, &who, Channel::Email, "<s@x>", "<s@x>", question)
            .unwrap()
            .expect("a question gets a reply")
    }

    #[test]
    fn a_suggestion_is_formatted_as_the_closest_clauses_without_a_verdict() {
        let reply = suggestion_reply();
        let plain = &reply.plain;
        assert!(plain.starts_with(SUGGEST_HEADLINE), "{plain}");
        assert!(plain.contains("marked unanswered for the e-safety lead"), "{plain}");
        assert!(
            plain.contains("Under ‘Don't:’ — “"),
            "the list head before a Don't item: {plain}"
        );
        assert!(!plain.contains("Also relevant"), "{plain}");
        let html = &reply.html;
        assert!(
            html.starts_with("<p><strong>I&#39;m not sure which clause answers this"),
            "{html}"
        );
        let quotes = html.matches("<blockquote>").count();
        assert_eq!(
            quotes,
            plain.matches("”\n— ").count(),
            "every suggested clause quoted: {html}"
        );
        assert!((1..=3).contains(&quotes), "{html}");
        assert!(html.contains("<p>Under ‘Don&#39;t:’</p><blockquote>"), "{html}");
        assert!(html.contains("marked unanswered for the e-safety lead"), "{html}");
        assert!(!html.contains("Also relevant"), "{html}");
    }

    #[test]
    fn commands_and_questions() {
        assert_eq!(request("help"), Request::Help);
        assert_eq!(request(" !policies "), Request::Policies);
        assert_eq!(request("source"), Request::Source(None));
        assert_eq!(
            request("source oak/ict/abc"),
            Request::Source(Some("oak/ict/abc".into()))
        );
        assert_eq!(
            request("help me with WhatsApp"),
            Request::Question("help me with WhatsApp".into())
        );
    }

    #[test]
    fn thanks_are_not_questions() {
        for thanks in [
            "Thanks!",
            "thank you so much",
            "OK, got it",
            "Cheers 👍",
            "Great, thanks for the help.",
            "ok",
            "Thanks, that's really helpful!\n\nAmira",
        ] {
            assert_eq!(request(thanks), Request::Thanks, "{thanks}");
        }
        for question in [
            "Thanks, can I use WhatsApp?",
            "what about on a school phone?",
            "So can I?",
            "thanks for nothing: who do I tell?",
            "Thanks!\n\nAnd can I use Teams for parents' evening",
        ] {
            assert!(matches!(request(question), Request::Question(_)), "{question}");
        }
    }

    #[test]
    fn a_follow_up_is_read_with_its_own_sender_s_question_only() {
        let service = crate::service::tests::service();
        let (alice, bob) = (
            Who::Local {
                school: "oakfield",
                asker: "alice",
            },
            Who::Local {
                school: "oakfield",
                asker: "bob",
            },
        );
        let ask = |who: &Who<'_>, reference: &str, text: &str| {
            respond(&service, who, Channel::Email, reference, "<root@x>", text).unwrap();
            let event = service.store().exchange_for("email", reference).unwrap().unwrap();
            (event.asker, event.question.unwrap_or_default())
        };
        let first = "Can I use my personal email address to contact parents?";
        assert_eq!(ask(&alice, "<1@x>", first), ("alice".into(), first.into()));
        // A colleague in the same thread: their follow-up is theirs alone.
        let theirs = "what about on my own iPad?";
        assert_eq!(ask(&bob, "<2@x>", theirs), ("bob".into(), theirs.into()));
        // `source` from someone who asked nothing in the thread: the clause
        // cited last in it.
        let carol = Who::Local {
            school: "oakfield",
            asker: "carol",
        };
        let source = respond(&service, &carol, Channel::Email, "<s@x>", "<root@x>", "source").unwrap();
        assert!(source.unwrap().plain.contains("Use personal email"));
        // The first asker's follow-up still leans on their own question.
        let (asker, question) = ask(&alice, "<3@x>", "what about from home?");
        assert_eq!(
            (asker.as_str(), question.as_str()),
            ("alice", format!("{first} what about from home?").as_str())
        );
    }

    #[test]
    fn follow_ups_are_read_with_the_previous_question() {
        let whatsapp = "Can I use WhatsApp to message parents on a trip?";
        let previous = Some(whatsapp);
        let follow_up = in_context("what about on a school phone?", previous);
        assert_eq!(
            follow_up.asked,
            "Can I use WhatsApp to message parents on a trip? what about on a school phone?"
        );
        assert_eq!(follow_up.topic, whatsapp, "the conversation keeps its question");
        let new_topic = in_context("Can I take photos of pupils on my own phone?", previous);
        assert_eq!(new_topic.asked, "Can I take photos of pupils on my own phone?");
        assert_eq!(new_topic.topic, new_topic.asked);
        let alone = in_context("what about email?", None);
        assert_eq!(
            (alone.asked.as_str(), alone.topic.as_str()),
            ("what about email?", "what about email?")
        );
    }
}
