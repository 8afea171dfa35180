//! The acknowledgement ledger and nudge campaigns: who acknowledged which
//! version of which policy, and every nudge planned, sent or skipped.

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use super::Store;
use super::audit::{Kind, NewEvent, append_in, now};

/// One acknowledgement on the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Ack {
    pub staff: String,
    pub school: String,
    pub policy: String,
    pub version: String,
    pub at: String,
    pub how: String,
}

/// A nudge to plan: one member of staff, one policy version they have not
/// acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedNudge {
    pub staff: String,
    pub school: String,
    pub policy: String,
    pub version: String,
    pub since_version: Option<String>,
    pub attempt: usize,
    pub channel: String,
    pub address: String,
}

/// A nudge as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Nudge {
    pub id: i64,
    pub campaign: i64,
    pub status: String,
    #[serde(flatten)]
    pub plan: PlannedNudge,
}

const NUDGE_COLUMNS: &str =
    "id, campaign, staff, school, policy, version, since_version, attempt, channel, address, status";

const ACK_COLUMNS: &str = "staff, school, policy, version, at, how";

fn ack(r: &rusqlite::Row<'_>) -> rusqlite::Result<Ack> {
    Ok(Ack {
        staff: r.get(0)?,
        school: r.get(1)?,
        policy: r.get(2)?,
        version: r.get(3)?,
        at: r.get(4)?,
        how: r.get(5)?,
    })
}

fn nudge(row: &rusqlite::Row<'_>) -> rusqlite::Result<Nudge> {
    Ok(Nudge {
        id: row.get(0)?,
        campaign: row.get(1)?,
        status: row.get(10)?,
        plan: PlannedNudge {
            staff: row.get(2)?,
            school: row.get(3)?,
            policy: row.get(4)?,
            version: row.get(5)?,
            since_version: row.get(6)?,
            attempt: row.get::<_, i64>(7)? as usize,
            channel: row.get(8)?,
            address: row.get(9)?,
        },
    })
}

impl Store {
    /// Records that `staff` acknowledged `version` of a policy, with the
    /// audit event, in one transaction. Returns false (and writes nothing)
    /// when that acknowledgement is on the ledger already.
    pub fn acknowledge(&self, staff: &str, school: &str, policy: &str, version: &str, how: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let known = tx
            .query_row(
                "SELECT 1 FROM acknowledgements WHERE school = ?1 AND policy = ?2 AND version = ?3 AND staff = ?4",
                params![school, policy, version, staff],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if known {
            return Ok(false);
        }
        let ids = append_in(
            &tx,
            &[NewEvent {
                school: school.to_owned(),
                asker: staff.to_owned(),
                channel: how.to_owned(),
                ..NewEvent::new(
                    Kind::Acknowledged,
                    json!({ "policy": policy, "version": version, "how": how }),
                )
            }],
        )?;
        tx.execute(
            "INSERT INTO acknowledgements (staff, school, policy, version, at, how, event_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![staff, school, policy, version, now(), how, ids[0]],
        )?;
        tx.commit().context("committing the acknowledgement")?;
        Ok(true)
    }

    /// The ledger, oldest first, for one school and/or policy or all.
    pub fn acknowledgements(&self, school: Option<&str>, policy: Option<&str>) -> Result<Vec<Ack>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACK_COLUMNS} FROM acknowledgements
             WHERE (?1 IS NULL OR school = ?1) AND (?2 IS NULL OR policy = ?2) ORDER BY at, staff"
        ))?;
        let rows = stmt.query_map(params![school, policy], ack)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The acknowledgement a nudge asked for, if it was given.
    pub fn acknowledgement_of(&self, nudge: &PlannedNudge) -> Result<Option<Ack>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {ACK_COLUMNS} FROM acknowledgements
                     WHERE school = ?1 AND policy = ?2 AND version = ?3 AND staff = ?4"
                ),
                params![nudge.school, nudge.policy, nudge.version, nudge.staff],
                ack,
            )
            .optional()?)
    }

    /// Nudges already sent about this version to this member of staff.
    pub fn nudges_sent(&self, staff: &str, school: &str, policy: &str, version: &str) -> Result<usize> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM nudges WHERE staff = ?1 AND school = ?2 AND policy = ?3 AND version = ?4 AND status = 'sent'",
            params![staff, school, policy, version],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Whether a nudge about this version is planned and not yet sent (a
    /// second campaign must not plan it again).
    pub fn nudge_pending(&self, staff: &str, school: &str, policy: &str, version: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM nudges WHERE staff = ?1 AND school = ?2 AND policy = ?3 AND version = ?4
                 AND status IN ('planned', 'sending') LIMIT 1",
                params![staff, school, policy, version],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Persists a campaign and all its nudges, with its audit event, in one
    /// transaction: after this, sending can stop and resume at any point.
    /// A `slot` (a scheduled time, a new version) is planned once only:
    /// `None` when it was planned already.
    pub fn plan_campaign(&self, reason: &str, slot: Option<&str>, plan: &[PlannedNudge]) -> Result<Option<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO campaigns (created_at, reason, planned, slot) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (slot) WHERE slot IS NOT NULL DO NOTHING",
            params![now(), reason, plan.len() as i64, slot],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let campaign = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO nudges (campaign, staff, school, policy, version, since_version, attempt, channel, address, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'planned')",
            )?;
            for n in plan {
                insert.execute(params![
                    campaign,
                    n.staff,
                    n.school,
                    n.policy,
                    n.version,
                    n.since_version,
                    n.attempt as i64,
                    n.channel,
                    n.address
                ])?;
            }
        }
        append_in(
            &tx,
            &[NewEvent::new(
                Kind::Campaign,
                json!({ "campaign": campaign, "reason": reason, "slot": slot, "planned": plan.len() }),
            )],
        )?;
        tx.commit().context("committing the campaign")?;
        Ok(Some(campaign))
    }

    /// Nudges still to send on `channel`, oldest first: planned ones, and
    /// any left 'sending' by a crash.
    pub fn unsent_nudges(&self, channel: &str, limit: usize) -> Result<Vec<Nudge>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {NUDGE_COLUMNS} FROM nudges WHERE status IN ('planned', 'sending') AND channel = ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![channel, limit as i64], nudge)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn nudge(&self, id: i64) -> Result<Option<Nudge>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {NUDGE_COLUMNS} FROM nudges WHERE id = ?1"),
                params![id],
                nudge,
            )
            .optional()?)
    }

    /// The nudge a channel sent as this message (the Matrix event id kept
    /// in `detail` once sent).
    pub fn nudge_sent_as(&self, channel: &str, message: &str) -> Result<Option<Nudge>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {NUDGE_COLUMNS} FROM nudges {SENT_AS}"),
                params![channel, message],
                nudge,
            )
            .optional()?)
    }

    /// The latest nudge sent on a channel to an address.
    pub fn latest_nudge_to(&self, channel: &str, address: &str) -> Result<Option<Nudge>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {NUDGE_COLUMNS} FROM nudges {LATEST_SENT_TO}"),
                params![channel, address],
                nudge,
            )
            .optional()?)
    }

    /// Moves a nudge on: 'sending' just before it leaves, then 'sent',
    /// 'failed' or 'skipped' (acknowledged meanwhile) with why.
    pub fn mark_nudge(&self, id: i64, status: &str, detail: &str) -> Result<()> {
        let sent_at = (status == "sent").then(now);
        self.conn().execute(
            "UPDATE nudges SET status = ?2, detail = ?3, sent_at = coalesce(?4, sent_at) WHERE id = ?1",
            params![id, status, detail, sent_at],
        )?;
        Ok(())
    }

    /// Nudge counts by status, for progress and the dashboard.
    pub fn nudge_counts(&self) -> Result<Vec<(String, usize)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM nudges GROUP BY status ORDER BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The key that signs acknowledgement links, made on first use.
    pub fn signing_key(&self) -> Result<String> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES ('ack-link-key', ?1)",
            params![super::users::random_token()],
        )?;
        Ok(
            conn.query_row("SELECT value FROM secrets WHERE name = 'ack-link-key'", [], |r| {
                r.get(0)
            })?,
        )
    }
}

/// The nudge that went out as a message (indexed: `nudges_sent_as`).
const SENT_AS: &str = "WHERE channel = ?1 AND detail = ?2 AND status = 'sent'";

/// The latest nudge sent to an address (indexed: `nudges_sent_to`).
const LATEST_SENT_TO: &str = "WHERE channel = ?1 AND address = ?2 AND status = 'sent' ORDER BY id DESC LIMIT 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nudges_are_found_by_message_and_address_through_an_index() {
        let store = Store::in_memory().unwrap();
        for (lookup, index) in [(SENT_AS, "nudges_sent_as"), (LATEST_SENT_TO, "nudges_sent_to")] {
            let conn = store.conn();
            let mut plan = conn
                .prepare(&format!("EXPLAIN QUERY PLAN SELECT id FROM nudges {lookup}"))
                .unwrap();
            let steps: Vec<String> = plan
                .query_map(params!["matrix", "$event"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(steps.iter().any(|step| step.contains(index)), "{lookup}: {steps:?}");
        }
    }

    fn planned(staff: &str) -> PlannedNudge {
        PlannedNudge {
            staff: staff.into(),
            school: "oak".into(),
            policy: "ict".into(),
            version: "2.0".into(),
            since_version: Some("1.0".into()),
            attempt: 1,
            channel: "email".into(),
            address: format!("{staff}@oak.example"),
        }
    }

    #[test]
    fn an_acknowledgement_is_recorded_once_with_its_audit_event() {
        let store = Store::in_memory().unwrap();
        assert!(store.acknowledge("oak:amira", "oak", "ict", "2.0", "link").unwrap());
        assert!(!store.acknowledge("oak:amira", "oak", "ict", "2.0", "email").unwrap());
        let ledger = store.acknowledgements(Some("oak"), None).unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0].how, "link");
        let events = store
            .list(&crate::store::audit::Filter {
                kinds: vec!["acknowledged"],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(store.verify().unwrap().broken.is_none());
    }

    #[test]
    fn a_campaign_is_a_plan_worked_through_in_order() {
        let store = Store::in_memory().unwrap();
        let campaign = store
            .plan_campaign("now", None, &[planned("a"), planned("b")])
            .unwrap()
            .unwrap();
        // A slot is planned once.
        assert!(store.plan_campaign("schedule", Some("s1"), &[]).unwrap().is_some());
        assert!(store.plan_campaign("schedule", Some("s1"), &[]).unwrap().is_none());
        let unsent = store.unsent_nudges("email", 10).unwrap();
        assert_eq!(unsent.len(), 2);
        assert!(unsent.iter().all(|n| n.campaign == campaign && n.status == "planned"));
        assert!(store.nudge_pending("a", "oak", "ict", "2.0").unwrap());
        store.mark_nudge(unsent[0].id, "sending", "").unwrap();
        // A crash here: the 'sending' nudge is still to be dealt with.
        assert_eq!(store.unsent_nudges("email", 10).unwrap().len(), 2);
        store.mark_nudge(unsent[0].id, "sent", "<id@x>").unwrap();
        assert_eq!(store.unsent_nudges("email", 10).unwrap().len(), 1);
        assert_eq!(store.nudges_sent("a", "oak", "ict", "2.0").unwrap(), 1);
        assert!(!store.nudge_pending("a", "oak", "ict", "2.0").unwrap());
        assert_eq!(store.signing_key().unwrap(), store.signing_key().unwrap());
    }
}
