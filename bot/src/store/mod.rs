//! The embedded store: one SQLite file (WAL, fsync on every commit), schema
//! migrations versioned in the code. Holds the audit log, dashboard users,
//! what the channels remember (deliveries, sync tokens, threads), every
//! version of every policy, the acknowledgement ledger with its
//! campaigns, and the e-safety lead's examples.

pub mod acks;
pub mod audit;
pub mod channels;
pub mod examples;
pub mod users;
pub mod versions;
pub mod writer;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Schema history. Append only: a released migration is never edited.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/001_audit.sql")),
        M::up(include_str!("migrations/002_users.sql")),
        M::up(include_str!("migrations/003_review_index.sql")),
        M::up(include_str!("migrations/004_citations.sql")),
        M::up(include_str!("migrations/005_channels.sql")),
        M::up(include_str!("migrations/006_email.sql")),
        M::up(include_str!("migrations/007_policy_versions.sql")),
        M::up(include_str!("migrations/008_acknowledgements.sql")),
        M::up(include_str!("migrations/009_campaign_slots.sql")),
        M::up(include_str!("migrations/010_nudge_lookups.sql")),
        M::up(include_str!("migrations/011_conversation_sender.sql")),
        M::up(audit::GUARDS_SQL),
        M::up(include_str!("migrations/013_examples.sql")),
    ])
}

/// A handle on the store. Cheap to share behind an `Arc`; writes serialise
/// on the connection (and, across processes, on SQLite's write lock).
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut conn = Connection::open(path).with_context(|| format!("opening store {}", path.display()))?;
        Self::configure(&mut conn).with_context(|| format!("preparing store {}", path.display()))?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// A store in memory (for tests, and the reference schema the guards
    /// are compared with).
    pub fn in_memory() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        Self::configure(&mut conn)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn configure(conn: &mut Connection) -> Result<()> {
        // WAL: readers never block the writer. synchronous=FULL: a commit is
        // on disk (fsync) before it returns, so an acknowledged audit event
        // survives a crash or power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        migrations().to_latest(conn).context("migrating the store schema")?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row:
        // every write is a transaction that rolls back when dropped.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn conversations_from_before_senders_are_kept_as_no_one_s() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 10).unwrap();
        conn.execute(
            "INSERT INTO conversations (channel, key, question, clause, at) VALUES ('matrix', '!r $t', 'q', NULL, 'now')",
            [],
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let store = Store { conn: Mutex::new(conn) };
        assert!(store.answered_in("matrix", "!r $t").unwrap());
        assert_eq!(store.conversation("matrix", "!r $t", "@a:x").unwrap(), None);
    }
}
