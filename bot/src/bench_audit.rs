//! `policybot bench --audit`: how fast the audit log takes events with every
//! one of them on disk (fsync) before it is acknowledged. Two figures: one
//! writer appending one event per transaction (the disk's sync rate), and many
//! threads appending at once through the group-commit writer (what a busy
//! bot sees).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::bench::percentile;
use crate::load::bar;
use crate::store::Store;
use crate::store::audit::{Kind, NewEvent};
use crate::store::writer::AuditWriter;

const TARGET_EVENTS_PER_SEC: f64 = 5_000.0;

fn event(i: usize) -> NewEvent {
    NewEvent {
        school: "bench".into(),
        asker: format!("bench:staff-{}", i % 500),
        channel: "cli".into(),
        question: Some(format!("Can I use my own phone to take photos on trip number {i}?")),
        ..NewEvent::new(
            Kind::Answered,
            json!({"verdict": "no", "confidence": 0.61, "citations": [{"clause": "bench/policy/0123456789", "version": "2026-09-01"}]}),
        )
    }
}

pub fn run(events: usize, threads: usize, json: bool) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("policybot-bench-audit-").tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("audit.sqlite3"))?);

    // One event per transaction, one writer.
    let progress = bar(events as u64, "sequential");
    let started = Instant::now();
    for i in 0..events {
        store.append(&[event(i)])?;
        progress.inc(1);
    }
    let sequential = events as f64 / started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    // Many askers at once, through group commit.
    let writer = Arc::new(AuditWriter::spawn(store.clone()));
    let progress = bar(events as u64, "concurrent");
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let writer = writer.clone();
            let progress = progress.clone();
            let share = events / threads.max(1);
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let mut latencies = Vec::with_capacity(share);
                for i in 0..share {
                    let one = Instant::now();
                    writer.append(event(t * share + i))?;
                    latencies.push(one.elapsed().as_secs_f64() * 1000.0);
                    progress.inc(1);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.join().expect("bench thread")?);
    }
    let concurrent = latencies.len() as f64 / started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&latencies, p);

    let verification = store.verify()?;
    let intact = verification.broken.is_none();
    if json {
        println!(
            "{}",
            json!({
                "events": events,
                "threads": threads,
                "sequential_events_per_sec": sequential.round(),
                "concurrent_events_per_sec": concurrent.round(),
                "concurrent_append_ms": {"p50": pct(50.0), "p95": pct(95.0), "p99": pct(99.0)},
                "chain_intact": intact,
                "stored": verification.events,
                "target_events_per_sec": TARGET_EVENTS_PER_SEC,
                "target_met": concurrent >= TARGET_EVENTS_PER_SEC,
            })
        );
    } else {
        println!("audit append, fsync on every commit, {events} events:");
        println!("  one writer, one event per transaction: {sequential:.0} events/s");
        println!(
            "  {threads} threads through group commit: {concurrent:.0} events/s (append p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms)",
            pct(50.0),
            pct(95.0),
            pct(99.0)
        );
        println!(
            "  chain after the run: {} events, {}",
            verification.events,
            if intact { "intact" } else { "BROKEN" }
        );
        // The README's table rows these figures back, to paste as printed.
        println!("README rows:");
        println!(
            "| audit append, one writer, one fsync per event | {:.1}k events/s | |",
            sequential / 1000.0
        );
        println!(
            "| audit append, {threads} threads, group commit | {:.1}k events/s (p99 {:.1} ms) | ≥ {:.0}k events/s |",
            concurrent / 1000.0,
            pct(99.0),
            TARGET_EVENTS_PER_SEC / 1000.0
        );
        println!(
            "targets: append >= {TARGET_EVENTS_PER_SEC:.0} events/s: {}",
            if concurrent >= TARGET_EVENTS_PER_SEC {
                "PASS"
            } else {
                "FAIL"
            }
        );
    }
    Ok(())
}
