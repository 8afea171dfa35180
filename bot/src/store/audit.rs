//! The tamper-evident audit log.
//!
//! Every exchange (a question and what the bot did with it) is one event.
//! Each event's hash covers the previous event's hash and every field except
//! the question's text, whose own SHA-256 is covered instead: redacting old
//! questions under the retention period keeps the chain verifiable, while any
//! edited, inserted or deleted row breaks it. The head of the chain (last id
//! and hash) is written in the same transaction, so deleting the newest rows
//! shows too.
//!
//! Someone with the database file can still drop the guard triggers, delete
//! the newest rows and rewrite the head to match. So the head also leaves
//! the database: printed as `ID:HASH` in every digest mail, export and on
//! the dashboard's audit page, and `verify` given such a head proves the log
//! still holds that event, unchanged, with the chain intact up to it. A
//! question's text may only be removed under a `redacted` event whose cutoff
//! is after the question was asked and whose own retention period it kept;
//! `verify` checks that for every removed text, and names missing or altered
//! guard triggers.

use anyhow::{Context, Result, bail};
use policybot_index::Mode;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Store;

/// The hash the first event chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A member of staff asked and the bot cited a clause.
    Answered,
    /// A member of staff asked and no clause answered: for the e-safety lead.
    Declined,
    /// Someone not on the staff list asked; they were told so.
    Refused,
    /// Audit rows were exported.
    Exported,
    /// Question texts older than the retention period were redacted.
    Redacted,
    /// The e-safety lead reviewed an answer (correct / wrong / covered / policy gap).
    /// Covered, or wrong, naming a clause keeps the question as an example
    /// for that clause (`store::examples`).
    Reviewed,
    /// Someone signed in to the dashboard.
    SignedIn,
    /// Failed dashboard sign-ins from one client in one minute, counted
    /// (`dashboard::signin`): strangers can add only so much to the log.
    LoginFailed,
    /// A mail the bot did not answer as a question (an auto-reply, a list,
    /// a spoof, a mail too large…), with the reason.
    Ignored,
    /// A reply left the bot: accepted by the mail server, with its Message-ID.
    Sent,
    /// A new version of a policy went live (or a broken file was refused and
    /// the previous version kept).
    PolicyVersion,
    /// A member of staff acknowledged a version of a policy.
    Acknowledged,
    /// A campaign of acknowledgement nudges was planned.
    Campaign,
    /// Guard triggers found missing or altered were put back.
    GuardsRestored,
    /// The e-safety lead removed a question kept as an example for a clause
    /// (`store::examples`); `reference` is the question's event id.
    ExampleRemoved,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Answered,
        Kind::Declined,
        Kind::Refused,
        Kind::Exported,
        Kind::Redacted,
        Kind::Reviewed,
        Kind::SignedIn,
        Kind::LoginFailed,
        Kind::Ignored,
        Kind::Sent,
        Kind::PolicyVersion,
        Kind::Acknowledged,
        Kind::Campaign,
        Kind::GuardsRestored,
        Kind::ExampleRemoved,
    ];

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Answered => "answered",
            Kind::Declined => "declined",
            Kind::Refused => "refused",
            Kind::Exported => "exported",
            Kind::Redacted => "redacted",
            Kind::Reviewed => "reviewed",
            Kind::SignedIn => "signed-in",
            Kind::LoginFailed => "login-failed",
            Kind::Ignored => "ignored",
            Kind::Sent => "sent",
            Kind::PolicyVersion => "policy-version",
            Kind::Acknowledged => "acknowledged",
            Kind::Campaign => "campaign",
            Kind::GuardsRestored => "guards-restored",
            Kind::ExampleRemoved => "example-removed",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: Kind,
    pub school: String,
    pub asker: String,
    pub channel: String,
    pub reference: String,
    pub question: Option<String>,
    pub payload: Value,
}

impl NewEvent {
    /// An event with only a kind and details, such as an export.
    pub fn new(kind: Kind, payload: Value) -> Self {
        NewEvent {
            kind,
            school: String::new(),
            asker: String::new(),
            channel: String::new(),
            reference: String::new(),
            question: None,
            payload,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub school: String,
    pub asker: String,
    pub channel: String,
    pub reference: String,
    /// `None` once redacted.
    pub question: Option<String>,
    pub question_hash: String,
    pub payload: Value,
    pub prev_hash: String,
    pub hash: String,
    /// For a question (answered or declined): what the reply did. Read from
    /// the row, not stored apart: see [`exchange_mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// What the reply to a recorded question did. A suggestion is recorded as
/// `declined` (it is unanswered for the e-safety lead: the Unanswered page,
/// the covered / gap review and the clause statistics all go by the kind)
/// with `"mode": "suggest"` in its payload. The payload is hashed as stored,
/// so new rows carry the mode without a new column or a change to the chain's
/// rules; a row from before suggestions reads as an answer or a decline from
/// its kind. The kind wins over the payload: an `answered` row is an answer.
pub fn exchange_mode(kind: &str, payload: &Value) -> Option<Mode> {
    match kind {
        "answered" => Some(Mode::Answer),
        "declined" => Some(match payload["mode"].as_str().and_then(Mode::parse) {
            Some(Mode::Suggest) => Mode::Suggest,
            _ => Mode::Decline,
        }),
        _ => None,
    }
}

/// The result of checking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub events: u64,
    /// The first broken event and why; `None` when the chain is intact.
    pub broken: Option<(i64, String)>,
    /// The head as the log records it (`ID:HASH`): what to write down.
    pub head: Head,
    /// Guard triggers missing or altered, each with what is wrong.
    pub guards: Vec<String>,
    /// The check of a head written down earlier, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorCheck>,
}

impl Verification {
    /// Nothing is wrong: the chain, the guards and the head given.
    pub fn ok(&self) -> bool {
        self.broken.is_none() && self.guards.is_empty() && self.anchor.as_ref().is_none_or(|a| a.held)
    }

    /// Everything wrong, one line each, for people.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((id, why)) = &self.broken {
            out.push(format!("the chain is BROKEN at event {id}: {why}"));
        }
        for g in &self.guards {
            out.push(format!("guard trigger {g}"));
        }
        if let Some(a) = self.anchor.as_ref().filter(|a| !a.held) {
            out.push(format!(
                "the head written down earlier, {}, does not hold: {}",
                a.head,
                a.why.as_deref().unwrap_or("")
            ));
        }
        out
    }
}

/// Whether the log still holds a head written down earlier.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorCheck {
    pub head: Head,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The chain's head: the last event's id and hash, written `ID:HASH`. Copied
/// out of the database (digest mails, exports, the dashboard), it lets
/// anyone who holds it check later that the log was not cut back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub id: i64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Head> {
        let (id, hash) = text
            .trim()
            .split_once(':')
            .with_context(|| format!("{text:?} is not a head: expected ID:HASH, e.g. 1234:9f86d08…"))?;
        let id = id
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .with_context(|| format!("{text:?}: {id:?} is not an event id"))?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{text:?}: the hash after the colon should be 64 hexadecimal digits");
        }
        Ok(Head { id, hash })
    }
}

impl Serialize for Head {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The guard triggers, as the latest migration makes them. Safe to run
/// again on a store that has them.
pub const GUARDS_SQL: &str = include_str!("migrations/012_audit_guards.sql");

/// How a clause fared as the first answer (see [`Store::clause_counts`]).
#[derive(Debug, Clone, Serialize)]
pub struct ClauseCount {
    pub clause: String,
    pub version: String,
    pub cited: u64,
    pub correct: u64,
    pub wrong: u64,
}

/// Which events to list or export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// RFC 3339 time or a date (YYYY-MM-DD): events at or after it.
    pub since: Option<String>,
    pub school: Option<String>,
    /// Only questions no clause answered.
    pub unanswered: bool,
    /// Only these kinds of event (e.g. the exchanges: answered, declined, refused).
    pub kinds: Vec<&'static str>,
    /// Text to find in what the dashboard shows of an exchange: the
    /// question, who asked (and their school and channel), the verdict and
    /// the reply (which quotes and cites the clauses). Never the JSON around
    /// them: a search for "confidence" or "_" must not match every row.
    pub search: Option<String>,
    pub limit: Option<usize>,
    /// Newest first, for screens; oldest first (the default) for exports.
    pub newest_first: bool,
    /// Only events after this id.
    pub after_id: Option<i64>,
}

pub fn sha256_hex(text: &str) -> String {
    sha256_hex_bytes(text.as_bytes())
}

pub fn sha256_hex_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Event times: RFC 3339 in UTC with a fixed number of digits, so that
/// comparing them as text (as the queries do) orders them in time.
const EVENT_TIME: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(EVENT_TIME)
        .expect("UTC times format")
}

pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// The hash of an event: its chain link and every field but the question text.
#[allow(clippy::too_many_arguments)]
fn event_hash(
    prev: &str,
    id: i64,
    at: &str,
    kind: &str,
    school: &str,
    asker: &str,
    channel: &str,
    reference: &str,
    question_hash: &str,
    payload: &str,
) -> String {
    // Unit separators keep fields from running into one another.
    sha256_hex(&format!(
        "{prev}\u{1f}{id}\u{1f}{at}\u{1f}{kind}\u{1f}{school}\u{1f}{asker}\u{1f}{channel}\u{1f}{reference}\u{1f}{question_hash}\u{1f}{payload}"
    ))
}

/// Appends events inside the caller's transaction (which must be IMMEDIATE,
/// so the chain's head cannot move under it): a change and the event that
/// records it commit together or not at all.
pub(super) fn append_in(tx: &rusqlite::Transaction<'_>, events: &[NewEvent]) -> Result<Vec<i64>> {
    if events.is_empty() {
        // The head only moves forward (a guard trigger).
        return Ok(Vec::new());
    }
    let head: Option<(i64, String)> = tx
        .query_row("SELECT last_id, last_hash FROM audit_head WHERE one = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (mut id, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
    let at = now();
    let mut ids = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(
                "INSERT INTO audit_events (id, at, kind, school, asker, channel, reference, question, question_hash, payload, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
        for e in events {
            id += 1;
            let question_hash = e.question.as_deref().map(sha256_hex).unwrap_or_default();
            let payload = e.payload.to_string();
            let kind = e.kind.as_str();
            let hash = event_hash(
                &prev,
                id,
                &at,
                kind,
                &e.school,
                &e.asker,
                &e.channel,
                &e.reference,
                &question_hash,
                &payload,
            );
            insert.execute(params![
                id,
                at,
                kind,
                e.school,
                e.asker,
                e.channel,
                e.reference,
                e.question,
                question_hash,
                payload,
                prev,
                hash
            ])?;
            derive(tx, id, e)?;
            prev = hash;
            ids.push(id);
        }
    }
    tx.execute(
        "INSERT INTO audit_head (one, last_id, last_hash) VALUES (1, ?1, ?2)
             ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash",
        params![id, prev],
    )?;
    Ok(ids)
}

impl Store {
    /// Appends events in one transaction and returns their ids. Returns only
    /// once the transaction is on disk.
    pub fn append(&self, events: &[NewEvent]) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids = append_in(&tx, events)?;
        tx.commit().context("committing audit events")?;
        Ok(ids)
    }

    /// The chain's head as recorded (`0:GENESIS` for an empty log).
    pub fn head(&self) -> Result<Head> {
        let head: Option<(i64, String)> = self
            .conn()
            .query_row("SELECT last_id, last_hash FROM audit_head WHERE one = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (id, hash) = head.unwrap_or((0, GENESIS.to_owned()));
        Ok(Head { id, hash })
    }

    /// Guard triggers that are missing or differ from the ones the schema
    /// makes, each as "NAME is missing" / "NAME was altered"; and triggers
    /// on the audit tables the schema does not make ("NAME is not ours").
    pub fn guard_problems(&self) -> Result<Vec<String>> {
        fn triggers(conn: &rusqlite::Connection) -> Result<Vec<(String, String)>> {
            let mut stmt = conn.prepare(
                "SELECT name, coalesce(sql, '') FROM sqlite_master
                 WHERE type = 'trigger' AND tbl_name IN ('audit_events', 'audit_head') ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        }
        // SQLite keeps each trigger's CREATE statement as written, so the
        // reference is the same schema made afresh in memory.
        let reference = triggers(&Store::in_memory()?.conn())?;
        let ours = triggers(&self.conn())?;
        let mut problems = Vec::new();
        for (name, sql) in &reference {
            match ours.iter().find(|(n, _)| n == name) {
                None => problems.push(format!("{name} is missing")),
                Some((_, found)) if found != sql => problems.push(format!("{name} was altered")),
                Some(_) => {}
            }
        }
        for (name, _) in &ours {
            if !reference.iter().any(|(n, _)| n == name) {
                problems.push(format!("{name} is not ours"));
            }
        }
        Ok(problems)
    }

    /// Puts back missing or altered guard triggers (and drops triggers on
    /// the audit tables that are not ours), recording that it did. Returns
    /// what was wrong.
    pub fn restore_guards(&self) -> Result<Vec<String>> {
        let problems = self.guard_problems()?;
        if problems.is_empty() {
            return Ok(problems);
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let names: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_events', 'audit_head')",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        for name in names {
            tx.execute_batch(&format!("DROP TRIGGER \"{}\";", name.replace('"', "\"\"")))?;
        }
        tx.execute_batch(GUARDS_SQL)
            .context("putting the guard triggers back")?;
        append_in(
            &tx,
            &[NewEvent::new(
                Kind::GuardsRestored,
                serde_json::json!({ "problems": problems }),
            )],
        )?;
        tx.commit().context("committing the restored guards")?;
        Ok(problems)
    }

    /// Checks every link of the chain, in order, and names the first broken
    /// event; checks each removed question text is covered by a redaction;
    /// names missing guard triggers.
    pub fn verify(&self) -> Result<Verification> {
        self.verify_against(None)
    }

    /// [`Store::verify`], and that the log still holds `anchor`, a head
    /// written down earlier: its event is there with that hash, and the
    /// chain up to it is intact.
    pub fn verify_against(&self, anchor: Option<&Head>) -> Result<Verification> {
        let guards = self.guard_problems()?;
        let redactions = self.redactions()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, at, kind, school, asker, channel, reference, question, question_hash, payload, prev_hash, hash
             FROM audit_events ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_id = 1i64;
        let mut count = 0u64;
        let mut broken = None;
        let mut anchor_hash = None;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let at: String = r.get(1)?;
            let question: Option<String> = r.get(7)?;
            let question_hash: String = r.get(8)?;
            let prev_hash: String = r.get(10)?;
            let hash: String = r.get(11)?;
            count += 1;
            if broken.is_some() {
                continue;
            }
            if anchor.is_some_and(|a| a.id == id) {
                anchor_hash = Some(hash.clone());
            }
            let recomputed = event_hash(
                &prev_hash,
                id,
                &at,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                &r.get::<_, String>(5)?,
                &r.get::<_, String>(6)?,
                &question_hash,
                &r.get::<_, String>(9)?,
            );
            let problem = if id != expected_id {
                Some(format!("event {expected_id} is missing (next is {id})"))
            } else if prev_hash != expected_prev {
                Some("its link to the previous event does not match".to_owned())
            } else if recomputed != hash {
                Some("its contents do not match its hash (edited)".to_owned())
            } else if question.as_deref().is_some_and(|q| sha256_hex(q) != question_hash) {
                Some("its question text does not match the recorded hash (edited)".to_owned())
            } else if question.is_none() && !question_hash.is_empty() && !redactions.covers(id, &at) {
                Some(
                    "its question text was removed, but no redaction event covers it \
                     (redaction is only for questions older than the retention period)"
                        .to_owned(),
                )
            } else {
                redactions
                    .invalid
                    .iter()
                    .find(|(r, _)| *r == id)
                    .map(|(_, why)| why.clone())
            };
            if let Some(p) = problem {
                broken = Some((id, p));
            }
            expected_prev = hash;
            expected_id = id + 1;
        }
        drop(rows);
        drop(stmt);
        if broken.is_none() {
            let head: Option<(i64, String)> = conn
                .query_row("SELECT last_id, last_hash FROM audit_head WHERE one = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (head_id, head_hash) = head.unwrap_or((0, GENESIS.to_owned()));
            if head_id != expected_id - 1 || head_hash != expected_prev {
                broken = Some((
                    head_id.max(expected_id - 1),
                    format!(
                        "the log ends at event {} but its head says {head_id} (rows deleted?)",
                        expected_id - 1
                    ),
                ));
            }
        }
        let head: Option<(i64, String)> = conn
            .query_row("SELECT last_id, last_hash FROM audit_head WHERE one = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (head_id, head_hash) = head.unwrap_or((0, GENESIS.to_owned()));
        let anchor = anchor.map(|a| {
            let why = if a.id == 0 && a.hash == GENESIS {
                None
            } else {
                match &anchor_hash {
                    None => Some(format!(
                        "event {} is not in the log (it ends at {}): events were deleted",
                        a.id,
                        expected_id - 1
                    )),
                    Some(h) if *h != a.hash => Some(format!(
                        "event {} is in the log with another hash: it, or an event before it, was replaced",
                        a.id
                    )),
                    Some(_) => broken
                        .as_ref()
                        .filter(|(b, _)| *b <= a.id)
                        .map(|(b, _)| format!("the chain up to it is broken at event {b}")),
                }
            };
            AnchorCheck {
                head: a.clone(),
                held: why.is_none(),
                why,
            }
        });
        Ok(Verification {
            events: count,
            broken,
            head: Head {
                id: head_id,
                hash: head_hash,
            },
            guards,
            anchor,
        })
    }

    /// The redaction events: what each covers, and those whose cutoff did
    /// not keep the retention period they record.
    fn redactions(&self) -> Result<Redactions> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, at, payload FROM audit_events WHERE kind = 'redacted' ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Redactions::default();
        for row in rows {
            let (id, at, payload) = row?;
            let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
            let before = payload["before"].as_str().unwrap_or("").to_owned();
            // Redactions from before the period was recorded kept at least
            // a cutoff in the past.
            let days = payload["days"].as_u64().unwrap_or(0);
            let kept = match (
                OffsetDateTime::parse(&before, &Rfc3339),
                OffsetDateTime::parse(&at, &Rfc3339),
            ) {
                (Ok(b), Ok(a)) => b + time::Duration::days(days as i64) <= a,
                _ => false,
            };
            if !kept {
                out.invalid.push((
                    id,
                    format!(
                        "it redacted questions asked up to {before}, younger than its retention period of {days} days"
                    ),
                ));
            }
            out.by_id.push((id, before));
        }
        // From the newest back: the latest cutoff of any redaction at or after each.
        let mut latest = String::new();
        for (_, before) in out.by_id.iter_mut().rev() {
            if *before > latest {
                latest = before.clone();
            }
            before.clone_from(&latest);
        }
        Ok(out)
    }

    /// Events matching `filter`, oldest first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Event>> {
        let since = match &filter.since {
            Some(s) => Some(normalise_since(s)?),
            None => None,
        };
        let conn = self.conn();
        // Two orders, two statements: an ORDER BY on an expression would sort
        // the whole table instead of walking the primary key.
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let mut stmt = conn.prepare(&format!(
            "SELECT id, at, kind, school, asker, channel, reference, question, question_hash, payload, prev_hash, hash
             FROM audit_events
             WHERE (?1 IS NULL OR at >= ?1)
               AND (?2 IS NULL OR school = ?2)
               AND (?3 = 0 OR kind = 'declined')
               AND (?4 = '' OR instr(',' || ?4 || ',', ',' || kind || ',') > 0)
               AND (?5 IS NULL
                    OR instr(lower(coalesce(question, '') || char(31) || asker || char(31) || school || char(31)
                                   || channel || char(31) || coalesce(json_extract(payload, '$.verdict'), '')
                                   || char(31) || coalesce(json_extract(payload, '$.reply'), '')), lower(?5)) > 0)
               AND ?6 IN (0, 1)
               AND (?8 IS NULL OR id > ?8)
             ORDER BY id {order}
             LIMIT ?7"
        ))?;
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let kinds = filter.kinds.join(",");
        let search = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let rows = stmt.query_map(
            params![
                since,
                filter.school,
                i64::from(filter.unanswered),
                kinds,
                search,
                filter.newest_first,
                limit,
                filter.after_id
            ],
            |r| {
                let payload: String = r.get(9)?;
                let kind: String = r.get(2)?;
                let payload = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    mode: exchange_mode(&kind, &payload),
                    kind,
                    school: r.get(3)?,
                    asker: r.get(4)?,
                    channel: r.get(5)?,
                    reference: r.get(6)?,
                    question: r.get(7)?,
                    question_hash: r.get(8)?,
                    payload,
                    prev_hash: r.get(10)?,
                    hash: r.get(11)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Per clause given as the first answer: how often, and how the latest
    /// review of each of those answers marked it. Read from `clause_stats`,
    /// which each append keeps up to date, so the report is as fast with a
    /// million events as with ten.
    pub fn clause_counts(&self, school: Option<&str>) -> Result<Vec<ClauseCount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT clause, max(version), SUM(cited), SUM(correct), SUM(wrong) FROM clause_stats
             WHERE ?1 IS NULL OR school = ?1
             GROUP BY clause
             ORDER BY 5 DESC, 3 DESC",
        )?;
        let rows = stmt.query_map(params![school], |r| {
            Ok(ClauseCount {
                clause: r.get(0)?,
                version: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                cited: r.get::<_, i64>(2)? as u64,
                correct: r.get::<_, i64>(3)? as u64,
                wrong: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The latest review of each of `events` (by id): its payload.
    pub fn latest_reviews(&self, events: &[i64]) -> Result<std::collections::HashMap<i64, Value>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT payload FROM audit_events WHERE kind = 'reviewed' AND reference = ?1 ORDER BY id DESC LIMIT 1",
        )?;
        let mut out = std::collections::HashMap::new();
        for id in events {
            let payload: Option<String> = stmt.query_row(params![id.to_string()], |r| r.get(0)).optional()?;
            if let Some(p) = payload.and_then(|p| serde_json::from_str(&p).ok()) {
                out.insert(*id, p);
            }
        }
        Ok(out)
    }

    /// One event by id.
    pub fn event(&self, id: i64) -> Result<Option<Event>> {
        Ok(self
            .list(&Filter {
                after_id: Some(id - 1),
                limit: Some(1),
                ..Filter::default()
            })?
            .into_iter()
            .next()
            .filter(|e| e.id == id))
    }

    #[cfg(test)]
    pub fn event_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Redacts the text of questions asked more than `days` ago, keeping
    /// their hashes, and removes the examples kept from those questions
    /// (their copy of the text). The `redacted` event (cutoff and period) is recorded
    /// first, in the same transaction: the guard trigger allows a question's
    /// text to go only under such an event. Returns how many were redacted
    /// and the cutoff.
    pub fn redact_older_than(&self, days: u32) -> Result<(usize, String)> {
        let cutoff = retention_cutoff(days);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due: i64 = tx.query_row(
            "SELECT COUNT(*) FROM audit_events WHERE at < ?1 AND question IS NOT NULL",
            params![cutoff],
            |r| r.get(0),
        )?;
        if due == 0 {
            return Ok((0, cutoff));
        }
        // Examples copy their question's text: they go with it, counted on
        // the redaction event.
        let examples = super::examples::remove_asked_before(&tx, &cutoff)?;
        append_in(
            &tx,
            &[NewEvent::new(
                Kind::Redacted,
                serde_json::json!({ "before": cutoff, "days": days, "questions": due, "examples": examples }),
            )],
        )?;
        let n = tx.execute(
            "UPDATE audit_events SET question = NULL WHERE at < ?1 AND question IS NOT NULL",
            params![cutoff],
        )?;
        tx.commit().context("committing the redaction")?;
        Ok((n, cutoff))
    }
}

/// The redaction events, for `verify`.
#[derive(Default)]
struct Redactions {
    /// Each redaction's id with the latest cutoff of it and every later one.
    by_id: Vec<(i64, String)>,
    /// Redactions whose cutoff was later than their retention period allows.
    invalid: Vec<(i64, String)>,
}

impl Redactions {
    /// Whether a redaction after event `id` covers a question asked at `at`.
    fn covers(&self, id: i64, at: &str) -> bool {
        let first_after = self.by_id.partition_point(|(r, _)| *r <= id);
        self.by_id
            .get(first_after)
            .is_some_and(|(_, before)| before.as_str() > at)
    }
}

/// Keeps the derived report tables in step with one appended event, inside
/// the append's transaction.
fn derive(tx: &rusqlite::Transaction<'_>, id: i64, e: &NewEvent) -> Result<()> {
    match e.kind {
        Kind::Answered => {
            let first = &e.payload["citations"][0];
            if let Some(clause) = first["clause"].as_str() {
                let version = first["version"].as_str().unwrap_or("");
                tx.prepare_cached(
                    "INSERT INTO first_citations (event_id, school, clause, version) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, e.school, clause, version])?;
                tx.prepare_cached(
                    "INSERT INTO clause_stats (school, clause, version, cited) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (school, clause) DO UPDATE SET cited = cited + 1, version = excluded.version",
                )?
                .execute(params![e.school, clause, version])?;
            }
        }
        Kind::Reviewed => {
            let (Ok(target), Some(mark)) = (e.reference.parse::<i64>(), e.payload["mark"].as_str()) else {
                return Ok(());
            };
            let old: Option<String> = tx
                .prepare_cached("SELECT mark FROM review_marks WHERE event_id = ?1")?
                .query_row(params![target], |r| r.get(0))
                .optional()?;
            tx.prepare_cached(
                "INSERT INTO review_marks (event_id, mark) VALUES (?1, ?2)
                 ON CONFLICT (event_id) DO UPDATE SET mark = excluded.mark",
            )?
            .execute(params![target, mark])?;
            let count = |mark: &str, delta: i64| -> Result<()> {
                let column = match mark {
                    "correct" => "correct",
                    "wrong" => "wrong",
                    _ => return Ok(()),
                };
                tx.prepare_cached(&format!(
                    "UPDATE clause_stats SET {column} = {column} + ?2
                     WHERE (school, clause) = (SELECT school, clause FROM first_citations WHERE event_id = ?1)"
                ))?
                .execute(params![target, delta])?;
                Ok(())
            };
            if let Some(old) = old {
                count(&old, -1)?;
            }
            count(mark, 1)?;
            super::examples::on_review(tx, id, target, e)?;
        }
        Kind::ExampleRemoved => {
            if let Ok(target) = e.reference.parse::<i64>() {
                super::examples::on_removal(tx, target, e)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Accepts a date (YYYY-MM-DD, taken as midnight UTC) or an RFC 3339 time.
fn normalise_since(since: &str) -> Result<String> {
    if let Ok(t) = OffsetDateTime::parse(since, &Rfc3339) {
        return Ok(format_time(t));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(since, &date_format) {
        Ok(date) => Ok(format_time(date.midnight().assume_utc())),
        Err(_) => bail!("--since {since:?}: expected a date (2026-09-01) or an RFC 3339 time"),
    }
}

/// The cutoff for a retention period of `days` from now.
pub fn retention_cutoff(days: u32) -> String {
    format_time(OffsetDateTime::now_utc() - time::Duration::days(i64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_s_mode_is_read_from_its_payload_or_else_its_kind() {
        use serde_json::json;
        // Rows from before suggestions have no mode.
        assert_eq!(exchange_mode("answered", &json!({"verdict": "no"})), Some(Mode::Answer));
        assert_eq!(
            exchange_mode("declined", &json!({"verdict": "none"})),
            Some(Mode::Decline)
        );
        assert_eq!(
            exchange_mode("declined", &json!({"mode": "suggest"})),
            Some(Mode::Suggest)
        );
        assert_eq!(
            exchange_mode("declined", &json!({"mode": "decline"})),
            Some(Mode::Decline)
        );
        // The kind wins: a payload cannot make a declined row an answer.
        assert_eq!(
            exchange_mode("declined", &json!({"mode": "answer"})),
            Some(Mode::Decline)
        );
        assert_eq!(
            exchange_mode("answered", &json!({"mode": "suggest"})),
            Some(Mode::Answer)
        );
        assert_eq!(exchange_mode("refused", &json!({"mode": "suggest"})), None);
        assert_eq!(exchange_mode("exported", &json!({})), None);
    }

    fn exchange(q: &str, kind: Kind) -> NewEvent {
        NewEvent {
            kind,
            school: "oakfield".into(),
            asker: "staff:alice".into(),
            channel: "cli".into(),
            reference: String::new(),
            question: Some(q.into()),
            payload: serde_json::json!({"verdict": "no"}),
        }
    }

    #[test]
    fn clause_stats_follow_answers_and_the_latest_review() {
        let store = Store::in_memory().unwrap();
        let answer = |clause: &str| NewEvent {
            school: "oakfield".into(),
            question: Some("q".into()),
            ..NewEvent::new(
                Kind::Answered,
                serde_json::json!({"citations": [{"clause": clause, "version": "1"}]}),
            )
        };
        let review = |event: i64, mark: &str| NewEvent {
            reference: event.to_string(),
            ..NewEvent::new(Kind::Reviewed, serde_json::json!({ "mark": mark }))
        };
        store.append(&[answer("a"), answer("a"), answer("b")]).unwrap();
        store.append(&[review(1, "wrong"), review(2, "correct")]).unwrap();
        store.append(&[review(1, "correct")]).unwrap();
        let counts = store.clause_counts(None).unwrap();
        let a = counts.iter().find(|c| c.clause == "a").unwrap();
        assert_eq!(
            (a.cited, a.correct, a.wrong),
            (2, 2, 0),
            "the second review of event 1 replaced the first"
        );
        assert_eq!(counts.iter().find(|c| c.clause == "b").unwrap().cited, 1);
        assert!(store.clause_counts(Some("elsewhere")).unwrap().is_empty());
    }

    #[test]
    fn a_fresh_chain_verifies() {
        let store = Store::in_memory().unwrap();
        store
            .append(&[exchange("Can I use WhatsApp?", Kind::Answered)])
            .unwrap();
        store
            .append(&[
                exchange("Where do I park?", Kind::Declined),
                exchange("Hi", Kind::Refused),
            ])
            .unwrap();
        let v = store.verify().unwrap();
        assert_eq!(v.events, 3);
        assert!(v.broken.is_none(), "{v:?}");
    }

    #[test]
    fn edits_and_deletions_are_refused_by_the_database() {
        let store = Store::in_memory().unwrap();
        store
            .append(&[exchange("one", Kind::Answered), exchange("two", Kind::Answered)])
            .unwrap();
        let conn = store.conn();
        assert!(conn.execute("DELETE FROM audit_events WHERE id = 1", []).is_err());
        assert!(
            conn.execute("UPDATE audit_events SET school = 'x' WHERE id = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE audit_events SET question = 'other' WHERE id = 2", [])
                .is_err()
        );
        assert!(
            conn.execute("UPDATE audit_events SET question = NULL WHERE id = 2", [])
                .is_err(),
            "a question's text goes only under a redaction event"
        );
        assert!(conn.execute("DELETE FROM audit_head", []).is_err());
        assert!(
            conn.execute(
                "UPDATE audit_head SET last_id = 1, last_hash = (SELECT hash FROM audit_events WHERE id = 1)",
                []
            )
            .is_err(),
            "the head never moves back"
        );
    }

    #[test]
    fn a_question_removed_without_redaction_is_named() {
        let store = Store::in_memory().unwrap();
        for q in ["one", "two", "three"] {
            store.append(&[exchange(q, Kind::Answered)]).unwrap();
        }
        {
            let conn = store.conn();
            conn.execute_batch("DROP TRIGGER audit_events_only_redaction;").unwrap();
            conn.execute("UPDATE audit_events SET question = NULL WHERE id = 2", [])
                .unwrap();
        }
        let v = store.verify().unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(2), "{v:?}");
        assert!(v.broken.unwrap().1.contains("no redaction event covers it"));
        assert_eq!(v.guards, ["audit_events_only_redaction is missing"]);
        assert!(!store.restore_guards().unwrap().is_empty());
        assert!(store.guard_problems().unwrap().is_empty());
    }

    #[test]
    fn a_head_written_down_shows_the_log_was_cut_back() {
        let store = Store::in_memory().unwrap();
        for q in ["one", "two"] {
            store.append(&[exchange(q, Kind::Answered)]).unwrap();
        }
        let early = store.head().unwrap();
        store.append(&[exchange("three", Kind::Answered)]).unwrap();
        let late = store.head().unwrap();
        assert_eq!(late.to_string().parse::<Head>().unwrap(), late);
        let v = store.verify_against(Some(&late)).unwrap();
        assert!(v.ok(), "{v:?}");
        {
            let conn = store.conn();
            conn.execute_batch(
                "DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_head_forward;
                 DELETE FROM audit_events WHERE id = 3;
                 UPDATE audit_head SET last_id = 2, last_hash = (SELECT hash FROM audit_events WHERE id = 2);",
            )
            .unwrap();
        }
        assert!(store.verify_against(Some(&early)).unwrap().anchor.unwrap().held);
        let v = store.verify_against(Some(&late)).unwrap();
        assert!(!v.ok());
        let anchor = v.anchor.unwrap();
        assert!(!anchor.held);
        assert!(anchor.why.unwrap().contains("event 3 is not in the log"));
    }

    #[test]
    fn tampering_is_found_and_named() {
        let store = Store::in_memory().unwrap();
        for q in ["one", "two", "three", "four"] {
            store.append(&[exchange(q, Kind::Answered)]).unwrap();
        }
        {
            let conn = store.conn();
            // Someone with the database file drops the guard and edits row 3.
            conn.execute_batch("DROP TRIGGER audit_events_only_redaction; DROP TRIGGER audit_events_no_delete;")
                .unwrap();
            conn.execute(
                "UPDATE audit_events SET payload = '{\"verdict\":\"yes\"}' WHERE id = 3",
                [],
            )
            .unwrap();
        }
        let v = store.verify().unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(3), "{v:?}");

        let store = Store::in_memory().unwrap();
        for q in ["one", "two", "three"] {
            store.append(&[exchange(q, Kind::Answered)]).unwrap();
        }
        {
            let conn = store.conn();
            conn.execute_batch("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE id = 3;")
                .unwrap();
        }
        let v = store.verify().unwrap();
        assert!(v.broken.is_some(), "deleting the newest row is noticed: {v:?}");
    }

    #[test]
    fn redaction_keeps_the_chain_intact() {
        let store = Store::in_memory().unwrap();
        store
            .append(&[exchange("my pupil's name is…", Kind::Declined)])
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(store.redact_older_than(0).unwrap().0, 1);
        let events = store.list(&Filter::default()).unwrap();
        assert_eq!(events[0].question, None);
        assert!(!events[0].question_hash.is_empty());
        assert_eq!(events[1].kind, "redacted");
        let v = store.verify().unwrap();
        assert!(v.ok(), "{v:?}");
        // A redaction younger than the period it claims is named.
        let store = Store::in_memory().unwrap();
        store.append(&[exchange("hello", Kind::Declined)]).unwrap();
        store
            .append(&[NewEvent::new(
                Kind::Redacted,
                serde_json::json!({ "before": "2999-01-01T00:00:00.000000Z", "days": 30, "questions": 1 }),
            )])
            .unwrap();
        store
            .conn()
            .execute("UPDATE audit_events SET question = NULL WHERE id = 1", [])
            .unwrap();
        let v = store.verify().unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(2), "{v:?}");
    }

    #[test]
    fn lists_filter_by_school_time_and_unanswered() {
        let store = Store::in_memory().unwrap();
        store
            .append(&[exchange("a", Kind::Answered), exchange("b", Kind::Declined)])
            .unwrap();
        let unanswered = store
            .list(&Filter {
                unanswered: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(unanswered.len(), 1);
        assert_eq!(unanswered[0].question.as_deref(), Some("b"));
        let other = store
            .list(&Filter {
                school: Some("elsewhere".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(other.is_empty());
        let later = store
            .list(&Filter {
                since: Some("2999-01-01".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(later.is_empty());
        assert!(
            store
                .list(&Filter {
                    since: Some("last tuesday".into()),
                    ..Default::default()
                })
                .is_err()
        );
    }
}
