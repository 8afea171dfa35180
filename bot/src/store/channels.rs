//! What the channels remember between runs, so that each message is answered
//! exactly once: which replies were delivered, each channel's position in its
//! stream (the Matrix sync token), and the conversations the bot is part of.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::Store;
use super::audit::{Event, now};

impl Store {
    /// The exchange (answered, declined or refused) recorded for a channel's
    /// message, if it was recorded already.
    pub fn exchange_for(&self, channel: &str, reference: &str) -> Result<Option<Event>> {
        if reference.is_empty() {
            return Ok(None);
        }
        let id: Option<i64> = self
            .conn()
            .query_row(
                "SELECT id FROM audit_events
                 WHERE channel = ?1 AND reference = ?2 AND kind IN ('answered', 'declined', 'refused')
                 ORDER BY id LIMIT 1",
                params![channel, reference],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.event(id),
            None => Ok(None),
        }
    }

    pub fn delivered(&self, channel: &str, reference: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM deliveries WHERE channel = ?1 AND reference = ?2",
                params![channel, reference],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn mark_delivered(&self, channel: &str, reference: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO deliveries (channel, reference, at) VALUES (?1, ?2, ?3)",
            params![channel, reference, now()],
        )?;
        Ok(())
    }

    pub fn channel_state(&self, channel: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM channel_state WHERE channel = ?1 AND key = ?2",
                params![channel, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_channel_state(&self, channel: &str, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO channel_state (channel, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value",
            params![channel, key, value],
        )?;
        Ok(())
    }

    /// Whether an event of one of `kinds` is recorded for a channel's message.
    pub fn recorded(&self, channel: &str, reference: &str, kinds: &[&str]) -> Result<bool> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT kind FROM audit_events WHERE channel = ?1 AND reference = ?2 AND reference <> ''",
        )?;
        let found: Vec<String> = statement
            .query_map(params![channel, reference], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(found.iter().any(|k| kinds.contains(&k.as_str())))
    }

    /// Replies sent to `recipient` on `channel` since `since` (an event time).
    pub fn sent_since(&self, channel: &str, recipient: &str, since: &str) -> Result<u32> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'sent' AND asker = ?1 AND at >= ?2 AND channel = ?3",
            params![recipient, since, channel],
            |r| r.get(0),
        )?)
    }

    /// `sender`'s conversation with the bot under `key`, if they have one:
    /// their last self-contained question there and the clause it cited.
    pub fn conversation(&self, channel: &str, key: &str, sender: &str) -> Result<Option<Conversation>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT question, clause FROM conversations WHERE channel = ?1 AND key = ?2 AND sender = ?3",
                params![channel, key, sender],
                |r| {
                    Ok(Conversation {
                        question: r.get(0)?,
                        clause: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// The clause the bot cited last under `key`, whoever it answered: the
    /// answer a colleague reading the thread sees.
    pub fn last_cited_in(&self, channel: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT clause FROM conversations WHERE channel = ?1 AND key = ?2 AND clause IS NOT NULL
                 ORDER BY at DESC LIMIT 1",
                params![channel, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Whether the bot answered anyone under `key` (a thread it takes part in).
    pub fn answered_in(&self, channel: &str, key: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM conversations WHERE channel = ?1 AND key = ?2 LIMIT 1",
                params![channel, key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Remembers `sender`'s latest self-contained question under `key` and
    /// the clause its answer cited.
    pub fn remember_conversation(
        &self,
        channel: &str,
        key: &str,
        sender: &str,
        conversation: &Conversation,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO conversations (channel, key, sender, question, clause, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (channel, key, sender) DO UPDATE
             SET question = excluded.question, clause = excluded.clause, at = excluded.at",
            params![channel, key, sender, conversation.question, conversation.clause, now()],
        )?;
        Ok(())
    }
}

/// A conversation the bot is part of (see [`Store::conversation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub question: String,
    pub clause: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Conversation;
    use crate::store::Store;

    #[test]
    fn deliveries_state_and_conversations_round_trip() {
        let store = Store::in_memory().unwrap();
        assert!(!store.delivered("matrix", "$a").unwrap());
        store.mark_delivered("matrix", "$a").unwrap();
        store.mark_delivered("matrix", "$a").unwrap();
        assert!(store.delivered("matrix", "$a").unwrap());
        assert!(!store.delivered("email", "$a").unwrap());

        assert_eq!(store.channel_state("matrix", "since").unwrap(), None);
        store.set_channel_state("matrix", "since", "s1").unwrap();
        store.set_channel_state("matrix", "since", "s2").unwrap();
        assert_eq!(store.channel_state("matrix", "since").unwrap().as_deref(), Some("s2"));

        assert_eq!(store.conversation("matrix", "!r $root", "@a:x").unwrap(), None);
        assert!(!store.answered_in("matrix", "!r $root").unwrap());
        let first = Conversation {
            question: "first".into(),
            clause: Some("a/b/c".into()),
        };
        let second = Conversation {
            question: "second".into(),
            clause: None,
        };
        store
            .remember_conversation("matrix", "!r $root", "@a:x", &first)
            .unwrap();
        store
            .remember_conversation("matrix", "!r $root", "@a:x", &second)
            .unwrap();
        assert_eq!(
            store.conversation("matrix", "!r $root", "@a:x").unwrap(),
            Some(second.clone())
        );
        // Someone else in the same thread has no context of their own yet.
        assert_eq!(store.conversation("matrix", "!r $root", "@b:x").unwrap(), None);
        assert!(store.answered_in("matrix", "!r $root").unwrap());
        assert_eq!(store.last_cited_in("matrix", "!r $root").unwrap(), None);
        // The last clause cited in the thread, though the last answer cited none.
        store
            .remember_conversation("matrix", "!r $root", "@b:x", &first)
            .unwrap();
        store
            .remember_conversation("matrix", "!r $root", "@c:x", &second)
            .unwrap();
        assert_eq!(
            store.last_cited_in("matrix", "!r $root").unwrap().as_deref(),
            Some("a/b/c")
        );
    }
}
