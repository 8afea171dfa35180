//! `policybot bench --import FILE…`: how long reading a policy file into
//! clauses takes, per format (a long PDF is the slow case: every glyph is
//! placed, then lines, headers and footers worked out).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use policybot_index::corpus;
use serde_json::json;

use crate::bench::latency_summary;

pub fn run(files: &[PathBuf], rounds: usize, json: bool) -> Result<()> {
    let progress = crate::load::bar((files.len() * rounds) as u64, "importing");
    let mut results = Vec::new();
    for file in files {
        let bytes = std::fs::metadata(file)?.len();
        let mut millis = Vec::with_capacity(rounds);
        let mut clauses = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let policy = corpus::read_policy("bench", file)?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
            clauses = policy.clauses.len();
            progress.inc(1);
        }
        results.push(json!({
            "file": file.display().to_string(),
            "bytes": bytes,
            "clauses": clauses,
            "import": latency_summary(&mut millis),
        }));
    }
    progress.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!(
                "{}: {} bytes, {} clauses, import p50 {:.1} ms, max {:.1} ms ({} rounds)",
                r["file"].as_str().unwrap_or_default(),
                r["bytes"],
                r["clauses"],
                r["import"]["p50_ms"].as_f64().unwrap_or_default(),
                r["import"]["max_ms"].as_f64().unwrap_or_default(),
                rounds
            );
        }
        // The README's table rows these figures back, to paste as printed
        // (the first column names the file: edit it to say what it is).
        println!("README rows:");
        for r in &results {
            println!(
                "| {} | {:.0} kB | {:.0} ms |",
                r["file"].as_str().unwrap_or_default(),
                r["bytes"].as_f64().unwrap_or_default() / 1000.0,
                r["import"]["p50_ms"].as_f64().unwrap_or_default()
            );
        }
    }
    Ok(())
}
