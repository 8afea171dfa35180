//! Policy versions: every version of every policy the bot has answered from,
//! with its clauses. Answers cite a version's label; the audit log records
//! each version going live with what changed; `policy diff` and the
//! dashboard compare any two; a policy file that breaks falls back to the
//! last version read from it.

use anyhow::{Context, Result};
use policybot_index::{Clause, Policy, diff};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use super::Store;
use super::audit::{Kind, NewEvent, append_in, now, sha256_hex};

/// A version that went live.
#[derive(Debug, Clone)]
pub struct VersionChange {
    pub school: String,
    pub policy: String,
    pub version: String,
    /// The version it replaced, if the policy had one before.
    pub previous: Option<String>,
    /// What happened, for the log: "oak: ICT Policy version 2.0 is live (was 1.0: …)".
    pub line: String,
}

/// One stored version of a policy.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub school: String,
    pub policy: String,
    pub version: String,
    pub title: String,
    pub source: String,
    pub clauses: usize,
    pub first_seen: String,
    pub last_live: String,
}

const COLUMNS: &str = "school, policy, version, title, source, clauses, first_seen, last_live";

fn info(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        school: row.get(0)?,
        policy: row.get(1)?,
        version: row.get(2)?,
        title: row.get(3)?,
        source: row.get(4)?,
        clauses: row.get::<_, i64>(5)? as usize,
        first_seen: row.get(6)?,
        last_live: row.get(7)?,
    })
}

/// What a version says: the same fingerprint means the same policy to a
/// reader, whatever file format or bytes it came in.
fn fingerprint(policy: &Policy) -> String {
    let declared = if policy.version_declared {
        policy.version.as_str()
    } else {
        ""
    };
    let clauses: Vec<_> = policy
        .clauses
        .iter()
        .map(|c| json!([c.heading_path, c.number, c.text, c.modality]))
        .collect();
    sha256_hex(&json!([policy.title, declared, clauses, policy.contacts]).to_string())
}

/// Gives every clause of `policy` the version label `label`.
fn relabel(policy: &mut Policy, label: &str) {
    policy.version = label.to_owned();
    for clause in &mut policy.clauses {
        clause.policy_version = label.to_owned();
    }
}

impl Store {
    /// Records the version of each policy about to go live and gives it the
    /// label answers will cite: its own version line, or (without one) the
    /// date it was first seen and a short fingerprint. A version line reused
    /// for different text gets "(revised DATE)" added, so one label never
    /// names two texts. A version new to the store, or an older one live
    /// again, is an audit event with what changed. Returns one line per such
    /// change, for the log.
    pub fn register_versions(&self, policies: &mut [Policy]) -> Result<Vec<VersionChange>> {
        let mut changes = Vec::new();
        for policy in policies.iter_mut() {
            if let Some(change) = self
                .register_version(policy)
                .with_context(|| format!("recording the version of {}", policy.source))?
            {
                changes.push(change);
            }
        }
        Ok(changes)
    }

    fn register_version(&self, policy: &mut Policy) -> Result<Option<VersionChange>> {
        let fingerprint = fingerprint(policy);
        let at = now();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: Option<(String, String)> = tx
            .query_row(
                "SELECT version, policy_json FROM policy_versions WHERE school = ?1 AND policy = ?2
                 ORDER BY last_live DESC, id DESC LIMIT 1",
                params![policy.school, policy.slug],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let known: Option<String> = tx
            .query_row(
                "SELECT version FROM policy_versions WHERE school = ?1 AND policy = ?2 AND fingerprint = ?3",
                params![policy.school, policy.slug, fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        let already_live = matches!((&known, &live), (Some(k), Some((l, _))) if k == l);
        let label = match known {
            Some(label) => label,
            None => {
                let label = self::label(&tx, policy, &fingerprint, &at[..10])?;
                relabel(policy, &label);
                tx.execute(
                    "INSERT INTO policy_versions (school, policy, version, fingerprint, title, source, clauses, first_seen, last_live, policy_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
                    params![
                        policy.school,
                        policy.slug,
                        label,
                        fingerprint,
                        policy.title,
                        policy.source,
                        policy.clauses.len() as i64,
                        at,
                        serde_json::to_string(&*policy)?,
                    ],
                )?;
                label
            }
        };
        relabel(policy, &label);
        if already_live {
            // Still live: only a new file name is worth a write (the text
            // moved from a .docx to its PDF).
            tx.execute(
                "UPDATE policy_versions SET source = ?1 WHERE school = ?2 AND policy = ?3 AND fingerprint = ?4 AND source <> ?1",
                params![policy.source, policy.school, policy.slug, fingerprint],
            )?;
            tx.commit()?;
            return Ok(None);
        }
        tx.execute(
            "UPDATE policy_versions SET last_live = ?1, source = ?2 WHERE school = ?3 AND policy = ?4 AND fingerprint = ?5",
            params![at, policy.source, policy.school, policy.slug, fingerprint],
        )?;
        let previous: Option<(String, Policy)> = match live {
            Some((label, json)) => Some((label, serde_json::from_str(&json)?)),
            None => None,
        };
        let changed = previous
            .as_ref()
            .map(|(_, before)| diff::diff(&before.clauses, &policy.clauses).summary());
        let line = match (&previous, &changed) {
            (Some((before, _)), Some(changed)) => format!(
                "{}: {} version {label} is live (was {before}: {changed})",
                policy.school, policy.title
            ),
            _ => format!("{}: {} version {label} is live", policy.school, policy.title),
        };
        append_in(
            &tx,
            &[NewEvent {
                school: policy.school.clone(),
                ..NewEvent::new(
                    Kind::PolicyVersion,
                    json!({
                        "policy": policy.slug,
                        "title": policy.title,
                        "version": label,
                        "previous": previous.as_ref().map(|(v, _)| v),
                        "changes": changed,
                        "clauses": policy.clauses.len(),
                        "source": policy.source,
                    }),
                )
            }],
        )?;
        tx.commit().context("committing the policy version")?;
        Ok(Some(VersionChange {
            school: policy.school.clone(),
            policy: policy.slug.clone(),
            version: label,
            previous: previous.map(|(v, _)| v),
            line,
        }))
    }

    /// Every stored version of a policy, oldest first.
    pub fn policy_versions(&self, school: &str, policy: &str) -> Result<Vec<VersionInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM policy_versions WHERE school = ?1 AND policy = ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![school, policy], info)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The live version of each policy (of one school, or of all), by school and title.
    pub fn live_versions(&self, school: Option<&str>) -> Result<Vec<VersionInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM policy_versions v
             WHERE (?1 IS NULL OR school = ?1)
               AND id = (SELECT id FROM policy_versions w WHERE w.school = v.school AND w.policy = v.policy
                         ORDER BY last_live DESC, id DESC LIMIT 1)
             ORDER BY school, title"
        ))?;
        let rows = stmt.query_map(params![school], info)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One stored version, whole.
    pub fn policy_version(&self, school: &str, policy: &str, version: &str) -> Result<Option<Policy>> {
        self.stored_policy(
            "SELECT policy_json FROM policy_versions WHERE school = ?1 AND policy = ?2 AND version = ?3",
            params![school, policy, version],
        )
    }

    /// The version last live from a file: what stays live when the file
    /// breaks.
    pub fn last_good(&self, source: &str) -> Result<Option<Policy>> {
        self.stored_policy(
            "SELECT policy_json FROM policy_versions WHERE source = ?1 ORDER BY last_live DESC, id DESC LIMIT 1",
            params![source],
        )
    }

    /// The policy stored in the one `policy_json` column `sql` selects.
    fn stored_policy(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Policy>> {
        let json: Option<String> = self.conn().query_row(sql, params, |r| r.get(0)).optional()?;
        json.map(|j| serde_json::from_str(&j).context("reading a stored policy version"))
            .transpose()
    }

    /// A clause as it read in the version an answer cited (clause ids are
    /// `school/policy/hash`).
    pub fn clause_in_version(&self, clause_id: &str, version: &str) -> Result<Option<Clause>> {
        let mut parts = clause_id.splitn(3, '/');
        let (Some(school), Some(policy)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        Ok(self
            .policy_version(school, policy, version)?
            .and_then(|p| p.clauses.into_iter().find(|c| c.id == clause_id)))
    }
}

/// The label for a version new to the store.
fn label(tx: &rusqlite::Transaction<'_>, policy: &Policy, fingerprint: &str, date: &str) -> Result<String> {
    let short = &fingerprint[..8];
    if !policy.version_declared {
        return Ok(format!("{date} #{short}"));
    }
    let taken = |label: &str| -> Result<bool> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM policy_versions WHERE school = ?1 AND policy = ?2 AND version = ?3",
                params![policy.school, policy.slug, label],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    for candidate in [
        policy.version.clone(),
        format!("{} (revised {date})", policy.version),
        format!("{} (revised {date} #{short})", policy.version),
    ] {
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    anyhow::bail!("version label {} (revised {date} #{short}) is taken", policy.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policybot_index::{PolicySource, parse_policy};

    fn policy(text: &str) -> Policy {
        parse_policy(&PolicySource {
            school: "oak",
            source: "ict.txt",
            text,
            modified: Some("2026-01-01"),
        })
    }

    const V1: &str =
        "ICT Policy\nVersion: 1.0\n\nEmail\n\n1. Staff must use school email.\n2. Staff must not use WhatsApp.\n";

    #[test]
    fn a_version_is_recorded_once_and_relabelled_when_its_line_is_reused() {
        let store = Store::in_memory().unwrap();
        let mut first = vec![policy(V1)];
        let changes = store.register_versions(&mut first).unwrap();
        assert_eq!(changes[0].line, "oak: ICT Policy version 1.0 is live");
        assert_eq!(changes[0].previous, None);
        // The same text again, even from another file: nothing new.
        let mut again = vec![policy(V1)];
        again[0].source = "ict.pdf".into();
        assert!(store.register_versions(&mut again).unwrap().is_empty());
        assert_eq!(store.policy_versions("oak", "ict-policy").unwrap().len(), 1);

        // Edited without changing the version line: a label of its own.
        let mut edited = vec![policy(&V1.replace("WhatsApp", "WhatsApp or Signal"))];
        let changes = store.register_versions(&mut edited).unwrap();
        let label = &edited[0].version;
        assert!(label.starts_with("1.0 (revised "), "{label}");
        assert!(edited[0].clauses.iter().all(|c| &c.policy_version == label));
        assert!(changes[0].line.contains("(was 1.0: 1 reworded, "), "{changes:?}");
        assert_eq!(changes[0].previous.as_deref(), Some("1.0"));

        // Back to the first text: version 1.0 is live again, and recorded so.
        let mut back = vec![policy(V1)];
        assert_eq!(store.register_versions(&mut back).unwrap().len(), 1);
        assert_eq!(back[0].version, "1.0");
        let live = store.live_versions(Some("oak")).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].version, "1.0");
        let events = store
            .list(&crate::store::audit::Filter {
                kinds: vec!["policy-version"],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(events.len(), 3);
        assert!(store.verify().unwrap().broken.is_none());

        // The old wording stays readable for old answers.
        let old = &first[0].clauses[1];
        let read = store.clause_in_version(&old.id, "1.0").unwrap().unwrap();
        assert_eq!(read.text, old.text);
        assert!(store.last_good("ict.txt").unwrap().is_some());
    }

    #[test]
    fn a_policy_without_a_version_line_is_labelled_by_date_and_content() {
        let store = Store::in_memory().unwrap();
        let mut p = vec![policy("ICT Policy\n\n1. Staff must use school email.\n")];
        store.register_versions(&mut p).unwrap();
        let label = &p[0].version;
        assert!(label.len() == 20 && label.contains(" #"), "{label}");
        assert!(
            !label.starts_with("2026-01-01"),
            "the label is the date first seen, not the file's"
        );
    }
}
