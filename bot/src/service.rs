//! The one answer path every channel uses: `answer(question, who, channel)`.
//!
//! It finds who is asking in the staff directory, answers from their school's
//! policies only, records the exchange in the audit log before replying, and
//! refuses (politely, and on the record) anyone who is not on the staff list.

use anyhow::Result;
use policybot_index::{Answer, AnswerError, Asker, Engine};
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
    /// The audit event recording it (`None` for an empty message, which is
    /// not a question and is not recorded).
    pub event: Option<i64>,
    pub kind: &'static str,
    /// What to send back.
    pub reply: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
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

    /// Puts a new engine live: the next question is answered from it.
    pub fn replace_engine(&self, engine: Engine, status: PolicyStatus) {
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(engine);
        self.set_policy_status(status);
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
                json!({ "reply": reply }),
            )?;
            return Ok(Exchange {
                event: Some(event),
                kind: Kind::Refused.as_str(),
                reply,
                answer: None,
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
                return Ok(Exchange {
                    event: None,
                    kind: "empty",
                    reply: EMPTY_QUESTION.to_owned(),
                    answer: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let kind = if answer.answered {
            Kind::Answered
        } else {
            Kind::Declined
        };
        let payload = json!({
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
            "reply": answer.reply,
        });
        let event = self.record(kind, &school, &asker, channel, reference, Some(question), payload)?;
        Ok(Exchange {
            event: Some(event),
            kind: kind.as_str(),
            reply: answer.reply.clone(),
            answer: Some(answer),
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
                .filter(|a| a.reply == reply),
            _ => None,
        };
        Exchange {
            event: Some(prior.id),
            kind: kind.as_str(),
            reply,
            answer,
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
    fn empty_messages_are_not_recorded() {
        let s = service();
        let x = s
            .answer(
                "   ",
                &Who::Local {
                    school: "oakfield",
                    asker: "local",
                },
                Channel::Cli,
                "",
            )
            .unwrap();
        assert_eq!(x.event, None);
        assert_eq!(s.store().event_count().unwrap(), 0);
    }
}
