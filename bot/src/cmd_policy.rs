//! `policybot policy versions|diff`: the versions of a policy the bot has
//! answered from, and what changed between two of them, clause by clause.
//! Both read the policy files first (recording a version that is new, as
//! every command that answers does), so the newest saved text is included.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use policybot_index::Policy;
use policybot_index::diff::{self, Change, PolicyDiff, WordChange};

use crate::config::Config;
use crate::load;
use crate::store::Store;
use crate::store::versions::VersionInfo;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// List a school's policies with their live version, or one policy's versions.
    Versions {
        school: String,
        /// Policy (its short name, or its title); all the school's policies when left out.
        policy: Option<String>,
    },
    /// What changed in a policy: clauses added, removed, reworded or moved.
    Diff {
        school: String,
        /// Policy: its short name (as in clause ids) or its title.
        policy: String,
        /// The older version (default: the version live before --to).
        #[arg(long)]
        from: Option<String>,
        /// The newer version (default: the live version).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, command: PolicyCommand) -> Result<()> {
    let store = Store::open(&config.store)?;
    let (_, status) = load::live_policies(config, &store, &[])?;
    for problem in status.problems() {
        eprintln!("{problem}");
    }
    match command {
        PolicyCommand::Versions { school, policy } => {
            let school = &config.school(Some(&school))?.id;
            match policy {
                None => {
                    for v in store.live_versions(Some(school))? {
                        println!(
                            "{}  {}  version {}  ({} clauses, {})",
                            v.policy, v.title, v.version, v.clauses, v.source
                        );
                    }
                }
                Some(policy) => {
                    let policy = resolve(&store, school, &policy)?;
                    let versions = store.policy_versions(school, &policy)?;
                    let live = live_label(&versions);
                    for v in &versions {
                        let mark = if Some(v.version.as_str()) == live {
                            "  (live)"
                        } else {
                            ""
                        };
                        println!(
                            "version {}  first seen {}  {} clauses{mark}",
                            v.version, v.first_seen, v.clauses
                        );
                    }
                }
            }
        }
        PolicyCommand::Diff {
            school,
            policy,
            from,
            to,
            json,
        } => {
            let school = &config.school(Some(&school))?.id;
            let policy = resolve(&store, school, &policy)?;
            let (older, newer) = pair(&store, school, &policy, from.as_deref(), to.as_deref())?;
            let changes = diff::diff(&older.clauses, &newer.clauses);
            if json {
                let out = serde_json::json!({
                    "school": school,
                    "policy": policy,
                    "title": newer.title,
                    "from": older.version,
                    "to": newer.version,
                    "summary": changes.summary(),
                    "unchanged": changes.unchanged,
                    "changes": changes.changes,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", plain(&older, &newer, &changes));
            }
        }
    }
    Ok(())
}

/// A policy named by its short name (slug), its title, or words of either.
pub fn resolve(store: &Store, school: &str, name: &str) -> Result<String> {
    let policies = store.live_versions(Some(school))?;
    let wanted = name.trim().to_lowercase();
    let exact = policies
        .iter()
        .find(|v| v.policy == wanted || v.title.to_lowercase() == wanted);
    if let Some(v) = exact {
        return Ok(v.policy.clone());
    }
    // Words of the name anywhere in the short name: "ict", "acceptable-use".
    let words = policybot_index::text::slug(name);
    let starts: Vec<&VersionInfo> = policies
        .iter()
        .filter(|v| !words.is_empty() && format!("-{}-", v.policy).contains(&format!("-{words}-")))
        .collect();
    match starts.as_slice() {
        [one] => Ok(one.policy.clone()),
        _ => {
            let known: Vec<String> = policies.iter().map(|v| format!("{} ({})", v.policy, v.title)).collect();
            bail!(
                "school {school} has {} policy named '{name}'; its policies are: {}",
                if starts.is_empty() { "no" } else { "more than one" },
                if known.is_empty() {
                    "none yet".to_owned()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

fn live_label(versions: &[VersionInfo]) -> Option<&str> {
    versions
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.last_live.cmp(&b.last_live).then(i.cmp(j)))
        .map(|(_, v)| v.version.as_str())
}

/// The two versions to compare: `to` (default: the live one) and `from`
/// (default: the one live before it).
pub fn pair(
    store: &Store,
    school: &str,
    policy: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Policy, Policy)> {
    let versions = store.policy_versions(school, policy)?;
    let to = match to {
        Some(v) => v.to_owned(),
        None => live_label(&versions).context("no versions recorded")?.to_owned(),
    };
    let from = match from {
        Some(v) => v.to_owned(),
        None => {
            let to_info = versions.iter().find(|v| v.version == to);
            versions
                .iter()
                .filter(|v| v.version != to && to_info.is_none_or(|t| v.last_live <= t.last_live))
                .max_by(|a, b| a.last_live.cmp(&b.last_live))
                .map(|v| v.version.clone())
                .unwrap_or_else(|| to.clone())
        }
    };
    let load = |label: &str| -> Result<Policy> {
        store.policy_version(school, policy, label)?.with_context(|| {
            let known: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
            format!(
                "{policy} has no version '{label}'; its versions are: {}",
                known.join(", ")
            )
        })
    };
    Ok((load(&from)?, load(&to)?))
}

/// The changes as a terminal reads them; a rewording shows the words taken
/// out as [-…-] and put in as {+…+}.
pub fn plain(older: &Policy, newer: &Policy, changes: &PolicyDiff<'_>) -> String {
    let mut out = format!(
        "{} ({}): version {} → version {}\n{}\n",
        newer.title,
        newer.school,
        older.version,
        newer.version,
        changes.summary()
    );
    if older.version == newer.version {
        out.push_str("(only one version recorded: nothing to compare yet)\n");
    }
    for change in &changes.changes {
        out.push('\n');
        match change {
            Change::Added { to } => {
                out.push_str(&format!("ADDED     {}\n  now: {}\n", to.place(), to.text));
            }
            Change::Removed { from } => {
                out.push_str(&format!("REMOVED   {}\n  was: {}\n", from.place(), from.text));
            }
            Change::Moved { from, to } => {
                out.push_str(&format!(
                    "MOVED     {} → {}\n  text: {}\n",
                    from.place(),
                    to.place(),
                    to.text
                ));
            }
            Change::Reworded { to, words, .. } => {
                out.push_str(&format!("REWORDED  {}\n  ", to.place()));
                for (i, run) in words.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    match run {
                        WordChange::Same(w) => out.push_str(w),
                        WordChange::Deleted(w) => out.push_str(&format!("[-{w}-]")),
                        WordChange::Inserted(w) => out.push_str(&format!("{{+{w}+}}")),
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}
