//! `policybot bench --embed`: the answer model alone. How long loading it
//! takes, one question's embedding (what a question costs on top of the
//! search), and clauses embedded per second in batches (what indexing a
//! corpus costs).
//!
//! candle's CPU kernels split a matrix product over `RAYON_NUM_THREADS`
//! threads (default: every core); run once with `RAYON_NUM_THREADS=1` and
//! once with 2 to see what a second core buys.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use policybot_index::embed::Embedder;
use serde_json::json;

use crate::bench::latency_summary;

/// Questions embedded before timing starts (first-touch of the mapped weights).
const WARM_UP: usize = 5;

pub fn run(model_dir: &Path, corpus: &Path, questions: usize, json: bool) -> Result<()> {
    if questions == 0 {
        bail!("bench --embed: --questions must be at least 1");
    }
    crate::model::ensure_installed(model_dir)?;
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let started = Instant::now();
    let embedder = Embedder::load(model_dir).context("loading the answer model")?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;

    let asked = crate::bench::sample_questions(questions + WARM_UP);
    let mut millis = Vec::with_capacity(questions);
    for (i, q) in asked.iter().enumerate() {
        let started = Instant::now();
        embedder.embed(q)?;
        if i >= WARM_UP {
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let latency = latency_summary(&mut millis);

    let read = crate::load::read_sources(&crate::load::corpus_sources(corpus)?);
    let texts: Vec<&str> = read
        .policies
        .iter()
        .flat_map(|p| p.clauses.iter().map(|c| c.text.as_str()))
        .collect();
    if texts.is_empty() {
        bail!("bench --embed: {} holds no clauses", corpus.display());
    }
    let progress = crate::load::bar(texts.len() as u64, "embedding");
    let started = Instant::now();
    embedder.embed_all(&texts, &mut |done, _| progress.set_position(done as u64))?;
    let corpus_seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let per_sec = texts.len() as f64 / corpus_seconds;

    let p = |key: &str| latency[key].as_f64().unwrap_or_default();
    if json {
        let report = json!({
            "threads": threads,
            "load_ms": load_ms,
            "question_ms": latency,
            "corpus": {
                "clauses": texts.len(),
                "seconds": corpus_seconds,
                "clauses_per_sec": per_sec,
            },
        });
        println!("{report}");
    } else {
        println!("threads: {threads} (RAYON_NUM_THREADS)");
        println!("model load: {load_ms:.0} ms");
        println!(
            "one question over {} questions: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            questions,
            p("p50_ms"),
            p("p95_ms"),
            p("p99_ms"),
            p("max_ms")
        );
        println!(
            "corpus: {} clauses in {corpus_seconds:.1} s, {per_sec:.0} clauses/s",
            texts.len()
        );
        // The README's table rows these figures back, to paste as printed.
        println!("README rows:");
        println!("| embedder: model load ({threads} thread(s)) | {load_ms:.0} ms | |");
        println!(
            "| embedder: one question p50 / p99 ({threads} thread(s)) | {:.1} / {:.1} ms | |",
            p("p50_ms"),
            p("p99_ms")
        );
        println!("| embedder: corpus clauses, batched ({threads} thread(s)) | {per_sec:.0} clauses/s | |");
    }
    Ok(())
}
