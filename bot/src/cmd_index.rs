//! `policybot index [--check]`: validate and index every configured policy.

use anyhow::{Result, bail};
use serde_json::json;

use crate::config::Config;
use crate::load;

pub fn run(config: &Config, check: bool, json: bool) -> Result<()> {
    let mut read = load::read_config(config);
    let errors = std::mem::take(&mut read.errors);
    let clauses: usize = read.policies.iter().map(|p| p.clauses.len()).sum();
    let policies = read.policies.len();
    let per_school: Vec<(String, String, usize, usize)> = config
        .schools
        .iter()
        .map(|s| {
            let own = read.policies.iter().filter(|p| p.school == s.id);
            let (n, c) = own.fold((0, 0), |(n, c), p| (n + 1, c + p.clauses.len()));
            (s.id.clone(), s.name.clone(), n, c)
        })
        .collect();
    let report = if check {
        None
    } else {
        let index = policybot_index::ClauseIndex::open_in_dir(&config.index_dir)?;
        Some(
            load::engine(
                std::mem::take(&mut read.policies),
                index,
                config.thesaurus()?,
                policybot_index::Settings::default(),
            )?
            .1,
        )
    };
    if json {
        let out = json!({
            "policies": policies,
            "clauses": clauses,
            "schools": per_school.iter().map(|(id, name, n, c)| json!({
                "id": id, "name": name, "policies": n, "clauses": c,
            })).collect::<Vec<_>>(),
            "errors": errors,
            "warnings": read.warnings,
            "index": report.as_ref().map(|r| json!({
                "unchanged": r.unchanged, "reindexed": r.reindexed, "removed": r.removed,
                "clauses_written": r.clauses_written,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for e in &errors {
            eprintln!("{e}");
        }
        for w in &read.warnings {
            eprintln!("{w}");
        }
        for (id, name, n, c) in &per_school {
            println!("{id} ({name}): {n} policies, {c} clauses");
        }
        print!("{policies} policies, {clauses} clauses");
        match &report {
            Some(r) => println!(
                "; index {}: {} re-indexed, {} unchanged, {} removed",
                config.index_dir.display(),
                r.reindexed,
                r.unchanged,
                r.removed
            ),
            None => println!("; checked, index not written"),
        }
    }
    if check && !errors.is_empty() {
        bail!("{} policy file(s) have errors", errors.len());
    }
    Ok(())
}
