//! `policybot clauses FILE`: what the parser made of a policy.

use std::path::Path;

use anyhow::{Result, bail};
use policybot_index::corpus;
use policybot_index::parse::NO_CLAUSES;

pub fn run(file: &Path, school: &str, json: bool) -> Result<()> {
    let policy = corpus::read_policy(school, file)?;
    // Warnings go to stderr in both forms, so a policy author piping the JSON
    // still sees them.
    for (line, message) in policy.warnings.iter().filter(|(_, m)| m != NO_CLAUSES) {
        eprintln!("{}:{line}: warning: {message}", policy.source);
    }
    // Nothing to index is an error, as `index --check` treats it.
    if policy.clauses.is_empty() {
        bail!("{}: {NO_CLAUSES} (is it empty, or only headings?)", policy.source);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&policy)?);
        return Ok(());
    }
    println!(
        "{} — version {} — {} clauses",
        policy.title,
        policy.version,
        policy.clauses.len()
    );
    for (role, name) in &policy.contacts {
        println!("contact: {role}: {name}");
    }
    for c in &policy.clauses {
        let number = c.number.as_deref().map(|n| format!(" [{n}]")).unwrap_or_default();
        println!(
            "\n{}:{}-{} {} #{}{} {}",
            policy.source, c.lines.0, c.lines.1, c.modality, c.ordinal, number, c.id
        );
        println!("  § {}", c.heading_path.join(" › "));
        println!("  {}", c.text);
    }
    Ok(())
}
