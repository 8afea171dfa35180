//! The one answer path every channel uses: `answer(question, who, channel)`.
//!
//! It finds who is asking in the staff directory, answers from their school's
//! policies only, records the exchange in the audit log before replying, and
//! refuses (politely, and on the record) anyone who is not on the staff list.

use std::borrow::Cow;

use anyhow::Result;
use policybot_index::engine::{MAX_QUESTION_CHARS, part_read};
use policybot_index::{Answer, AnswerError, Asker, Engine, Mode};
use serde::Serialize;
use serde_json::json;

use crate::directory::Directory;
use std::sync::{Arc, RwLock};

use crate::store::Store;
use crate::store::audit::{Event, Kind, NewEvent};
use crate::store::writer::AuditWriter;

/// How a question reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Cli,
    Matrix,
    Email,
    Dashboard,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Cli => "cli",
            Channel::Matrix => "matrix",
            Channel::Email => "email",
            Channel::Dashboard => "dashboard",
        }
    }
}

/// Who is asking, as the channel knows them.
#[derive(Debug, Clone)]
pub enum Who<'a> {
    Email(&'a str),
    Matrix(&'a str),
    /// Someone already known to the service (at the machine itself, or a
    /// dashboard user), asking as a member of staff of `school`; `asker` is
    /// what the audit log records ("local", "dashboard:hannah").
    Local {
        school: &'a str,
        asker: &'a str,
    },
}

/// What happened to one question.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The audit event recording it. Every message that reaches the
    /// service is recorded, an empty one too (as declined, `empty`).
    pub event: i64,
    pub kind: &'static str,
    /// What the reply did with a question (none for a refusal): a
    /// suggestion is recorded as declined, so the kind alone does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// What to send back.
    pub reply: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// Nothing to answer: no letters or digits (blank, emoji only).
    pub empty: bool,
    /// The question was this many characters long and only the first
    /// [`MAX_QUESTION_CHARS`] were read and recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut: Option<usize>,
}

impl Exchange {
    /// What the reply says about a question that was cut, for channels that
    /// build their own formatted reply from the answer.
    pub fn cut_note(&self) -> Option<String> {
        self.cut.map(cut_note)
    }
}

/// The note added to the reply to a question that was cut.
fn cut_note(chars: usize) -> String {
    format!("(Your message was {chars} characters long: I read, and recorded, only the first {MAX_QUESTION_CHARS}.)")
}

fn with_cut_note(reply: &str, cut: Option<usize>) -> String {
    match cut {
        Some(chars) => format!("{reply}\n\n{}", cut_note(chars)),
        None => reply.to_owned(),
    }
}

/// A question as it is answered and recorded: NUL characters removed (they
/// come only from broken or hostile senders, and cut text short in SQLite's
/// string functions), and no more than the engine reads, so a megabyte
/// pasted by a stranger is not stored whole. With the length before the
/// cut, if it was cut.
fn intake(question: &str) -> (Cow<'_, str>, Option<usize>) {
    let question: Cow<'_, str> = if question.contains('\0') {
        Cow::Owned(question.replace('\0', ""))
    } else {
        Cow::Borrowed(question)
    };
    let trimmed = question.trim();
    let read = part_read(trimmed);
    if read.len() == trimmed.len() {
        return (question, None);
    }
    let chars = trimmed.chars().count();
    (Cow::Owned(read.to_owned()), Some(chars))
}

/// Replaces `engine`'s examples with the store's (every school's: the
/// engine keeps each to its own school).
fn give_examples(store: &Store, engine: &Engine) -> Result<()> {
    let examples = store.examples(None)?;
    tracing::debug!(
        examples = examples.len(),
        "the e-safety lead's examples given to the engine"
    );
    engine.set_examples(examples.iter().map(|e| e.for_engine()).collect());
    Ok(())
}

pub struct Service {
    /// Replaced whole when policy files change (`load::reload`); an answer
    /// in progress keeps the engine it started with.
    engine: RwLock<Arc<Engine>>,
    policy_status: RwLock<PolicyStatus>,
    directory: Directory,
    store: Arc<Store>,
    /// Events go through the group-commit writer: many channels answering at
    /// once share fsyncs, and each reply still waits for its own event.
    writer: AuditWriter,
}

impl Service {
    pub fn new(engine: Engine, directory: Directory, store: Store) -> Self {
        let store = Arc::new(store);
        let writer = AuditWriter::spawn(store.clone());
        // A store that cannot be read fails the first question loudly; the
        // engine only loses the lead's examples until the next change.
        if let Err(e) = give_examples(&store, &engine) {
            tracing::error!("reading the e-safety lead's examples: {e:#}");
        }
        Service {
            engine: RwLock::new(Arc::new(engine)),
            policy_status: RwLock::new(PolicyStatus::default()),
            directory,
            store,
            writer,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new engine live, with the lead's examples: the next question
    /// is answered from it.
    pub fn replace_engine(&self, engine: Engine, status: PolicyStatus) {
        // Read under the write lock, so an example changed meanwhile
        // (`examples_changed`) is on this engine or applied after the swap.
        let mut live = self.engine.write().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = give_examples(&self.store, &engine) {
            tracing::error!("reading the e-safety lead's examples: {e:#}");
        }
        *live = Arc::new(engine);
        drop(live);
        self.set_policy_status(status);
    }

    /// Gives the live engine the lead's examples as the store now has
    /// them: called after every change (a review naming a clause, a
    /// removal, retention).
    pub fn examples_changed(&self) -> Result<()> {
        let live = self.engine.read().unwrap_or_else(|p| p.into_inner());
        give_examples(&self.store, &live)
    }

    /// Redacts questions older than `days` (and the examples kept from
    /// them), then gives the engine what examples are left.
    pub fn apply_retention(&self, days: u32) -> Result<(usize, String)> {
        let done = self.store.redact_older_than(days)?;
        if done.0 > 0 {
            self.examples_changed()?;
        }
        Ok(done)
    }

    pub fn policy_status(&self) -> PolicyStatus {
        self.policy_status.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_policy_status(&self, status: PolicyStatus) {
        *self.policy_status.write().unwrap_or_else(|p| p.into_inner()) = status;
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The school of a known member of staff.
    pub fn school_of(&self, who: &Who<'_>) -> Option<String> {
        match who {
            Who::Local { school, .. } => Some((*school).to_owned()),
            Who::Email(address) => self.directory.by_email(address).map(|m| m.school.clone()),
            Who::Matrix(user) => self.directory.by_matrix(user).map(|m| m.school.clone()),
        }
    }

    /// Appends an event through the group-commit writer (reviews, sign-ins…).
    pub fn record_event(&self, event: NewEvent) -> Result<i64> {
        self.writer.append(event)
    }

    /// Answers `question` for `who`, recording it first. `reference` is the
    /// channel's id for the message (a Matrix event id, a Message-ID).
    ///
    /// A message the channel delivers again (a Matrix sync replayed after a
    /// restart) gets the exchange already recorded for it: it is neither
    /// answered nor recorded twice.
    pub fn answer(&self, question: &str, who: &Who<'_>, channel: Channel, reference: &str) -> Result<Exchange> {
        if let Some(prior) = self.store.exchange_for(channel.as_str(), reference)? {
            return Ok(self.recorded_exchange(prior));
        }
        let (question, cut) = intake(question);
        let question = question.as_ref();
        let cut_payload = cut.map(|chars| json!({ "chars": chars, "kept": MAX_QUESTION_CHARS }));
        let (asker, school) = match who {
            Who::Local { school, asker } => ((*asker).to_owned(), Some((*school).to_owned())),
            Who::Email(address) => self.known(self.directory.by_email(address), address),
            Who::Matrix(user) => self.known(self.directory.by_matrix(user), user),
        };
        let Some(school) = school else {
            let reply = NOT_ON_STAFF_LIST.to_owned();
            let event = self.record(
                Kind::Refused,
                "",
                &asker,
                channel,
                reference,
                Some(question),
                json!({ "reply": reply, "cut": cut_payload }),
            )?;
            return Ok(Exchange {
                event,
                kind: Kind::Refused.as_str(),
                mode: None,
                reply,
                answer: None,
                empty: false,
                cut,
            });
        };
        let answer = match self.engine().answer(
            question,
            &Asker {
                school: &school,
                name: Some(&asker),
            },
        ) {
            Ok(answer) => answer,
            Err(AnswerError::EmptyQuestion) => {
                // Recorded all the same: the log holds every message that
                // reached the bot, and the asker is told which event it is.
                let reply = EMPTY_QUESTION.to_owned();
                let event = self.record(
                    Kind::Declined,
                    &school,
                    &asker,
                    channel,
                    reference,
                    Some(question),
                    json!({ "mode": Mode::Decline.as_str(), "verdict": "none", "empty": true, "citations": [], "reply": reply, "cut": cut_payload }),
                )?;
                return Ok(Exchange {
                    event,
                    kind: Kind::Declined.as_str(),
                    mode: Some(Mode::Decline),
                    reply,
                    answer: None,
                    empty: true,
                    cut,
                });
            }
            Err(e) => return Err(e.into()),
        };
        // A suggestion is recorded as declined, with its mode: it is
        // unanswered for the e-safety lead (store::audit::exchange_mode).
        let kind = match answer.mode {
            Mode::Answer => Kind::Answered,
            Mode::Suggest | Mode::Decline => Kind::Declined,
        };
        let payload = json!({
            "mode": answer.mode.as_str(),
            "verdict": answer.verdict.as_str(),
            "confidence": answer.confidence,
            "citations": answer.citations.iter().map(|c| json!({
                "clause": c.clause_id,
                "policy": c.policy,
                "title": c.policy_title,
                "version": c.policy_version,
                "section": c.section,
                "number": c.clause_number,
            })).collect::<Vec<_>>(),
            "nearest_section": answer.nearest_section,
            "reply": with_cut_note(&answer.reply, cut),
            "cut": cut_payload,
        });
        let event = self.record(kind, &school, &asker, channel, reference, Some(question), payload)?;
        Ok(Exchange {
            event,
            kind: kind.as_str(),
            mode: Some(answer.mode),
            reply: with_cut_note(&answer.reply, cut),
            answer: Some(answer),
            empty: false,
            cut,
        })
    }

    /// The exchange as first recorded; the answer is worked out again (the
    /// engine is deterministic) for channels that format its citations.
    fn recorded_exchange(&self, prior: Event) -> Exchange {
        let kind = [Kind::Answered, Kind::Declined, Kind::Refused]
            .into_iter()
            .find(|k| k.as_str() == prior.kind)
            .unwrap_or(Kind::Refused);
        let reply = prior.payload["reply"].as_str().unwrap_or_default().to_owned();
        let cut = prior.payload["cut"]["chars"].as_u64().map(|n| n as usize);
        let answer = match (kind, prior.question.as_deref()) {
            (Kind::Answered | Kind::Declined, Some(question)) => self
                .engine()
                .answer(
                    question,
                    &Asker {
                        school: &prior.school,
                        name: Some(&prior.asker),
                    },
                )
                .ok()
                .filter(|a| with_cut_note(&a.reply, cut) == reply),
            _ => None,
        };
        Exchange {
            event: prior.id,
            kind: kind.as_str(),
            mode: prior.mode,
            reply,
            answer,
            empty: prior.payload["empty"] == true,
            cut,
        }
    }

    fn known(&self, member: Option<&crate::directory::StaffMember>, raw: &str) -> (String, Option<String>) {
        match member {
            Some(m) => (m.id.clone(), Some(m.school.clone())),
            None => (format!("unknown:{}", raw.trim()), None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        kind: Kind,
        school: &str,
        asker: &str,
        channel: Channel,
        reference: &str,
        question: Option<&str>,
        payload: serde_json::Value,
    ) -> Result<i64> {
        self.writer.append(NewEvent {
            kind,
            school: school.to_owned(),
            asker: asker.to_owned(),
            channel: channel.as_str().to_owned(),
            reference: reference.to_owned(),
            question: question.map(str::to_owned),
            payload,
        })
    }
}

/// What the last reading of the policy files found: shown on the
/// dashboard's policies page.
#[derive(Debug, Clone, Default)]
pub struct PolicyStatus {
    pub checked_at: String,
    /// Files that could not be used, each `file: message`.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Broken files whose last good version stays live.
    pub kept: Vec<String>,
    /// Versions that went live in that reading.
    pub changes: Vec<crate::store::versions::VersionChange>,
}

impl PolicyStatus {
    /// Everything a policy author should fix or know, errors first.
    pub fn problems(&self) -> impl Iterator<Item = &String> {
        self.errors.iter().chain(&self.kept).chain(&self.warnings)
    }
}

pub const NOT_ON_STAFF_LIST: &str = "Sorry — I answer questions about school policies for staff on the school's staff \
list, and I couldn't find you on it. If you work here, please ask your e-safety lead to add you.";

pub const EMPTY_QUESTION: &str =
    "Ask me about a school policy, for example: \"Can I use WhatsApp to message parents on a trip?\"";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::directory::StaffEntry;
    use crate::store::audit::Filter;
    use policybot_index::{ClauseIndex, Settings, Thesaurus, corpus::policy_from_bytes};

    /// A service for one school with one policy (a Don't list about email)
    /// and one member of staff, Alice (`alice@oakfield.example`,
    /// `@alice:oakfield.example`), on an in-memory store.
    pub(crate) fn service() -> Service {
        let policy = policy_from_bytes(
            "oakfield",
            "p.txt",
            b"Oakfield Policy\n\nEmail\n\nDon't\n\n- Use personal email addresses to contact parents.\n",
            None,
        )
        .unwrap();
        service_for(policy)
    }

    fn service_for(policy: policybot_index::Policy) -> Service {
        let thesaurus = Thesaurus::from_toml(crate::config::DEFAULT_THESAURUS).unwrap();
        let (engine, _) = Engine::new(
            vec![policy],
            ClauseIndex::in_ram().unwrap(),
            thesaurus,
            Settings::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let directory = Directory::new(
            vec![StaffEntry {
                name: "Alice Teacher".into(),
                school: "oakfield".into(),
                role: "Teacher".into(),
                matrix: Some("@alice:oakfield.example".into()),
                email: vec!["alice@oakfield.example".into()],
                prefer: None,
                line_manager: None,
            }],
            &["oakfield"],
        )
        .unwrap();
        Service::new(engine, directory, Store::in_memory().unwrap())
    }

    /// A question near clauses of the example policy but not squarely on
    /// one: the engine suggests the closest (two of them items of a "Don't"
    /// list). If a change to the engine answers or declines it, pick another
    /// with `policybot ask "…" --json` against `policies/oakfield`.
    pub(crate) const SUGGEST_QUESTION: &str = "Can I text a parent from my own phone about a lost coat?";

    /// A service for the example school (its whole ICT policy) with Alice.
    pub(crate) fn example_service() -> Service {
        let policy = policy_from_bytes(
            "oakfield",
            "ict-acceptable-use.txt",
            include_bytes!("../../policies/oakfield/ict-acceptable-use.txt"),
            None,
        )
        .unwrap();
        service_for(policy)
    }

    #[test]
    fn a_suggestion_is_recorded_as_declined_with_its_mode_for_the_lead() {
        let s = example_service();
        let who = Who::Matrix("@alice:oakfield.example");
        let x = s.answer(SUGGEST_QUESTION, &who, Channel::Matrix, "$s1").unwrap();
        assert_eq!(x.mode, Some(Mode::Suggest), "{}", x.reply);
        assert_eq!(x.kind, "declined", "a suggestion is unanswered for the e-safety lead");
        assert!(
            x.reply.starts_with(policybot_index::render::SUGGEST_HEADLINE),
            "{}",
            x.reply
        );
        let event = s.store().exchange_for("matrix", "$s1").unwrap().unwrap();
        assert_eq!(event.mode, Some(Mode::Suggest));
        assert_eq!(event.payload["mode"], "suggest");
        assert_eq!(event.payload["verdict"], "none");
        let cited = event.payload["citations"].as_array().unwrap();
        assert!((1..=3).contains(&cited.len()), "{event:?}");
        let unanswered = s
            .store()
            .list(&Filter {
                unanswered: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(unanswered.len(), 1, "on the Unanswered page");
        assert!(
            s.store().clause_counts(None).unwrap().is_empty(),
            "a suggestion is no citation of a clause"
        );
        // Delivered again: the same exchange, still a suggestion.
        let again = s.answer(SUGGEST_QUESTION, &who, Channel::Matrix, "$s1").unwrap();
        assert_eq!((again.event, again.mode), (x.event, Some(Mode::Suggest)));
        assert_eq!(again.answer.map(|a| a.mode), Some(Mode::Suggest));
        assert!(s.store().verify().unwrap().ok());
    }

    #[test]
    fn staff_get_answers_and_the_exchange_is_recorded() {
        let s = service();
        let q = "Can I email parents from my personal email?";
        let x = s
            .answer(q, &Who::Email("Alice@Oakfield.example"), Channel::Email, "<m1@x>")
            .unwrap();
        assert_eq!(x.kind, "answered");
        assert!(x.reply.contains("Use personal email addresses to contact parents."));
        let events = s.store().list(&Filter::default()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].asker, "oakfield:alice-teacher");
        assert_eq!(events[0].question.as_deref(), Some(q));
        assert_eq!(events[0].reference, "<m1@x>");
        assert_eq!(events[0].payload["verdict"], "no");
        assert!(events[0].payload["citations"][0]["version"].is_string());
    }

    #[test]
    fn a_message_delivered_twice_is_answered_and_recorded_once() {
        let s = service();
        let q = "Can I email parents from my personal email?";
        let who = Who::Matrix("@alice:oakfield.example");
        let first = s.answer(q, &who, Channel::Matrix, "$e1").unwrap();
        let again = s.answer(q, &who, Channel::Matrix, "$e1").unwrap();
        assert_eq!(again.event, first.event);
        assert_eq!(again.kind, "answered");
        assert_eq!(again.reply, first.reply);
        assert!(again.answer.is_some(), "the answer is worked out again for formatting");
        assert_eq!(s.store().event_count().unwrap(), 1);
        let other = s.answer(q, &who, Channel::Email, "$e1").unwrap();
        assert_ne!(
            other.event, first.event,
            "another channel's reference is another message"
        );
    }

    #[test]
    fn unknown_askers_are_refused_politely_and_recorded() {
        let s = service();
        let x = s
            .answer(
                "Can I use WhatsApp?",
                &Who::Matrix("@mallory:evil.example"),
                Channel::Matrix,
                "$e1",
            )
            .unwrap();
        assert_eq!(x.kind, "refused");
        assert_eq!(x.reply, NOT_ON_STAFF_LIST);
        assert!(x.answer.is_none());
        let events = s.store().list(&Filter::default()).unwrap();
        assert_eq!(events[0].kind, "refused");
        assert_eq!(events[0].asker, "unknown:@mallory:evil.example");
    }

    #[test]
    fn declined_questions_are_listed_for_the_e_safety_lead() {
        let s = service();
        s.answer(
            "Where do I park my car?",
            &Who::Local {
                school: "oakfield",
                asker: "local",
            },
            Channel::Cli,
            "",
        )
        .unwrap();
        let unanswered = s
            .store()
            .list(&Filter {
                unanswered: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(unanswered.len(), 1);
        assert_eq!(unanswered[0].question.as_deref(), Some("Where do I park my car?"));
    }

    #[test]
    fn empty_messages_are_recorded_as_empty() {
        let s = service();
        let local = Who::Local {
            school: "oakfield",
            asker: "local",
        };
        for (i, message) in ["   ", "", "👍🎉", "?!"].into_iter().enumerate() {
            let x = s.answer(message, &local, Channel::Cli, "").unwrap();
            assert_eq!(x.event, i as i64 + 1, "{message:?}");
            assert!(x.empty);
            assert_eq!(x.reply, EMPTY_QUESTION);
        }
        let events = s.store().list(&Filter::default()).unwrap();
        assert_eq!(events.len(), 4);
        assert!(
            events
                .iter()
                .all(|e| e.kind == "declined" && e.payload["empty"] == true)
        );
    }

    #[test]
    fn long_questions_are_stored_as_read_and_nul_is_dropped() {
        let s = service();
        let who = Who::Email("alice@oakfield.example");
        let long = format!("  Can I email parents from my personal email?{}", " é".repeat(500_000));
        let x = s.answer(&long, &who, Channel::Email, "<long@x>").unwrap();
        assert_eq!(x.cut, Some(long.trim().chars().count()));
        assert!(
            x.reply.contains("I read, and recorded, only the first 2000"),
            "{}",
            x.reply
        );
        let e = s.store().event(x.event).unwrap().unwrap();
        assert_eq!(e.question.as_deref().unwrap().chars().count(), MAX_QUESTION_CHARS);
        assert_eq!(e.payload["cut"]["chars"], x.cut.unwrap());
        // Delivered again: the same exchange, the answer worked out again.
        let again = s.answer(&long, &who, Channel::Email, "<long@x>").unwrap();
        assert_eq!((again.event, again.cut), (x.event, x.cut));
        assert!(again.answer.is_some());

        let x = s
            .answer("Can I\0 use WhatsApp?", &who, Channel::Email, "<nul@x>")
            .unwrap();
        let e = s.store().event(x.event).unwrap().unwrap();
        assert_eq!(e.question.as_deref(), Some("Can I use WhatsApp?"));
    }
}
