//! The e-safety lead's examples: questions she marked on the dashboard as
//! answered by a clause ("covered by clause X" for an unanswered question,
//! "wrong — the right clause is X" for an answer). The engine is given them
//! (`Service::examples_changed`) so that a later question close to one gets
//! its clause as a strong candidate.
//!
//! The `examples` table (migration 013) is derived from the audit log, like
//! `first_citations`: it changes only inside the transaction that appends
//! the `reviewed` event adding an example or the `example-removed` event
//! taking it away, so every change is on the record. One example per
//! question: the question's latest review decides, as for the review marks.
//!
//! The question's text is copied into the example (the engine needs it), so
//! retention removes the examples of the questions it redacts, in the same
//! transaction, and counts them on the `redacted` event. The review event
//! itself never carries the text: its payload is not redactable.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use super::audit::NewEvent;

/// Reviews that keep the question as an example, when they name a clause.
pub const EXAMPLE_MARKS: [&str; 2] = ["covered", "wrong"];

/// A question kept as an example for a clause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    /// The audit event of the question (what the remove button names).
    pub question_event: i64,
    pub school: String,
    pub clause: String,
    pub question: String,
    /// The dashboard user who marked it.
    pub by: String,
    /// When it was marked (the review event's time).
    pub at: String,
    /// The review event that made it an example.
    pub review_event: i64,
}

impl Example {
    /// What the engine is given.
    pub fn for_engine(&self) -> policybot_index::Example {
        policybot_index::Example {
            school: self.school.clone(),
            clause_id: self.clause.clone(),
            question: self.question.clone(),
        }
    }
}

impl Store {
    /// The examples of one school, or of all; by clause, oldest first.
    pub fn examples(&self, school: Option<&str>) -> Result<Vec<Example>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT question_event, school, clause, question, marked_by, at, review_event FROM examples
             WHERE ?1 IS NULL OR school = ?1
             ORDER BY school, clause, review_event",
        )?;
        let rows = stmt.query_map(params![school], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The example kept from the question recorded as event `question_event`.
    pub fn example(&self, question_event: i64) -> Result<Option<Example>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT question_event, school, clause, question, marked_by, at, review_event FROM examples
             WHERE question_event = ?1",
        )?;
        Ok(stmt.query_row(params![question_event], row).optional()?)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Example> {
    Ok(Example {
        question_event: r.get(0)?,
        school: r.get(1)?,
        clause: r.get(2)?,
        question: r.get(3)?,
        by: r.get(4)?,
        at: r.get(5)?,
        review_event: r.get(6)?,
    })
}

/// Inside the append of review event `id` of question event `target`: the
/// review replaces the question's example, if any, and keeps the question
/// as an example when it is covered or wrong and names a clause. The school
/// and text are the question's own (the event reviewed), not the form's.
pub(super) fn on_review(tx: &rusqlite::Transaction<'_>, id: i64, target: i64, review: &NewEvent) -> Result<()> {
    tx.prepare_cached("DELETE FROM examples WHERE question_event = ?1")?
        .execute(params![target])?;
    let mark = review.payload["mark"].as_str().unwrap_or("");
    let clause = review.payload["clause"].as_str().unwrap_or("").trim();
    if !EXAMPLE_MARKS.contains(&mark) || clause.is_empty() {
        return Ok(());
    }
    // Only an exchange with its text still there makes an example.
    tx.prepare_cached(
        "INSERT INTO examples (question_event, school, clause, question, marked_by, at, review_event)
         SELECT q.id, q.school, ?2, q.question, ?3, (SELECT at FROM audit_events WHERE id = ?4), ?4
         FROM audit_events q
         WHERE q.id = ?1 AND q.kind IN ('answered', 'declined') AND q.question IS NOT NULL",
    )?
    .execute(params![target, clause, review.payload["by"].as_str().unwrap_or(""), id])?;
    Ok(())
}

/// Inside the append of an `example-removed` event for question event
/// `target`: the example goes, if it is still the one for the clause the
/// event names (a newer review may have replaced it since the page was
/// shown).
pub(super) fn on_removal(tx: &rusqlite::Transaction<'_>, target: i64, removal: &NewEvent) -> Result<()> {
    let clause = removal.payload["clause"].as_str().unwrap_or("");
    tx.prepare_cached("DELETE FROM examples WHERE question_event = ?1 AND clause = ?2")?
        .execute(params![target, clause])?;
    Ok(())
}

/// Inside a redaction: removes the examples kept from questions asked
/// before `cutoff` (whose text is about to be redacted). Returns how many.
pub(super) fn remove_asked_before(tx: &rusqlite::Transaction<'_>, cutoff: &str) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM examples WHERE question_event IN (
                 SELECT id FROM audit_events WHERE at < ?1 AND question IS NOT NULL)",
        )?
        .execute(params![cutoff])?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::audit::{Kind, NewEvent};

    fn question(kind: Kind, text: &str) -> NewEvent {
        NewEvent {
            school: "oakfield".into(),
            asker: "staff:alice".into(),
            channel: "cli".into(),
            question: Some(text.into()),
            ..NewEvent::new(kind, json!({ "verdict": "none" }))
        }
    }

    fn review(event: i64, mark: &str, clause: &str) -> NewEvent {
        NewEvent {
            // A user who sees every school records reviews without one: the
            // example takes the question's school.
            asker: "dashboard:hannah".into(),
            channel: "dashboard".into(),
            reference: event.to_string(),
            ..NewEvent::new(
                Kind::Reviewed,
                json!({ "mark": mark, "note": "", "clause": clause, "by": "hannah" }),
            )
        }
    }

    fn removal(event: i64, clause: &str) -> NewEvent {
        NewEvent {
            school: "oakfield".into(),
            asker: "dashboard:hannah".into(),
            channel: "dashboard".into(),
            reference: event.to_string(),
            ..NewEvent::new(Kind::ExampleRemoved, json!({ "clause": clause, "by": "hannah" }))
        }
    }

    #[test]
    fn covered_and_wrong_with_a_clause_keep_the_question_and_the_latest_review_decides() {
        let store = Store::in_memory().unwrap();
        let ids = store
            .append(&[
                question(Kind::Declined, "Can I post photos of the sports day?"),
                question(Kind::Answered, "Can I lend my laptop to my son?"),
                question(Kind::Declined, "Where do I park?"),
            ])
            .unwrap();
        store
            .append(&[
                review(ids[0], "covered", "oakfield/ict/photos"),
                review(ids[1], "wrong", "oakfield/ict/devices"),
                review(ids[2], "gap", ""),
            ])
            .unwrap();
        let kept = store.examples(Some("oakfield")).unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        let photos = store.example(ids[0]).unwrap().unwrap();
        assert_eq!(
            (photos.school.as_str(), photos.clause.as_str(), photos.question.as_str()),
            (
                "oakfield",
                "oakfield/ict/photos",
                "Can I post photos of the sports day?"
            )
        );
        assert_eq!(photos.by, "hannah");
        assert_eq!(photos.review_event, ids[2] + 1);
        assert!(store.examples(Some("elsewhere")).unwrap().is_empty());
        assert_eq!(
            photos.for_engine(),
            policybot_index::Example {
                school: "oakfield".into(),
                clause_id: "oakfield/ict/photos".into(),
                question: "Can I post photos of the sports day?".into(),
            }
        );

        // Reviewed again: another clause replaces it, a gap or "covered"
        // without a clause removes it.
        store
            .append(&[review(ids[0], "covered", "oakfield/ict/social")])
            .unwrap();
        assert_eq!(store.example(ids[0]).unwrap().unwrap().clause, "oakfield/ict/social");
        store.append(&[review(ids[1], "correct", "")]).unwrap();
        assert_eq!(store.example(ids[1]).unwrap(), None);
        store.append(&[review(ids[0], "gap", "")]).unwrap();
        assert!(store.examples(None).unwrap().is_empty());
        assert!(store.verify().unwrap().ok());
    }

    #[test]
    fn removal_is_an_audit_event_and_only_removes_the_example_it_names() {
        let store = Store::in_memory().unwrap();
        let q = store
            .append(&[question(Kind::Declined, "Can I post photos of the sports day?")])
            .unwrap()[0];
        store.append(&[review(q, "covered", "oakfield/ict/photos")]).unwrap();
        // A stale page's button for a clause the example no longer has.
        store.append(&[removal(q, "oakfield/ict/other")]).unwrap();
        assert!(store.example(q).unwrap().is_some());
        store.append(&[removal(q, "oakfield/ict/photos")]).unwrap();
        assert_eq!(store.example(q).unwrap(), None);
        let removed = store
            .list(&crate::store::audit::Filter {
                kinds: vec!["example-removed"],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[1].payload["clause"], "oakfield/ict/photos");
        assert!(store.verify().unwrap().ok());
    }

    #[test]
    fn retention_removes_examples_with_their_questions_text_on_the_record() {
        let store = Store::in_memory().unwrap();
        let q = store
            .append(&[question(Kind::Declined, "Can I post photos of the sports day?")])
            .unwrap()[0];
        store.append(&[review(q, "covered", "oakfield/ict/photos")]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (redacted, _) = store.redact_older_than(0).unwrap();
        assert_eq!(redacted, 1);
        assert!(store.examples(None).unwrap().is_empty());
        let events = store
            .list(&crate::store::audit::Filter {
                kinds: vec!["redacted"],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(events[0].payload["examples"], 1);
        assert!(store.verify().unwrap().ok());
        // A redacted question cannot become an example again.
        store.append(&[review(q, "covered", "oakfield/ict/photos")]).unwrap();
        assert!(store.examples(None).unwrap().is_empty());
    }

    #[test]
    fn reviews_from_before_the_table_become_examples() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::migrations().to_version(&mut conn, 12).unwrap();
        let store = Store {
            conn: std::sync::Mutex::new(conn),
        };
        // Appending before migration 013 runs: `derive` must not touch the
        // table yet, so write the two events by hand through the chain.
        {
            let mut conn = store.conn();
            let tx = conn.transaction().unwrap();
            let insert = |id: i64, kind: &str, reference: &str, question: Option<&str>, payload: &str| {
                tx.execute(
                    "INSERT INTO audit_events (id, at, kind, school, reference, question, question_hash, payload, prev_hash, hash)
                     VALUES (?1, '2026-01-01T00:00:00.000000Z', ?2, 'oakfield', ?3, ?4, '', ?5, '', '')",
                    params![id, kind, reference, question, payload],
                )
                .unwrap();
            };
            insert(1, "declined", "", Some("Can I post photos?"), "{}");
            insert(
                2,
                "reviewed",
                "1",
                None,
                r#"{"mark":"covered","clause":"oakfield/ict/photos","by":"hannah"}"#,
            );
            tx.commit().unwrap();
        }
        super::super::migrations().to_latest(&mut store.conn()).unwrap();
        let kept = store.examples(None).unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!((kept[0].question_event, kept[0].review_event), (1, 2));
        assert_eq!(kept[0].question, "Can I post photos?");
    }
}
