//! `policybot bench --campaign`: plans an acknowledgement campaign for
//! everyone on the configured staff list and times it, then follows a
//! running `serve` sending it (progress bar) until every nudge is sent,
//! failed or skipped. `scripts/bench-campaign.sh` sets up the mail servers,
//! a 10,000-strong staff list and the bot, and checks every mailbox got its
//! nudge exactly once.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use crate::config::Config;
use crate::store::Store;
use crate::{load, nudge};

pub fn run(config: &Config, json: bool) -> Result<()> {
    let store = Store::open(&config.store)?;
    let directory = config.directory()?;
    load::live_policies(config, &store, &[])?;
    let started = Instant::now();
    let planned = nudge::plan(config, &directory, &store, None, None, "bench", None)?;
    let planning = started.elapsed();
    if planned.planned == 0 {
        bail!("nobody to nudge: {planned:?}");
    }
    let progress = load::bar(planned.planned as u64, "nudging");
    let sending = Instant::now();
    let counts = loop {
        let counts = store.nudge_counts()?;
        let open: usize = counts
            .iter()
            .filter(|(status, _)| status == "planned" || status == "sending")
            .map(|(_, n)| n)
            .sum();
        progress.set_position((planned.planned - open.min(planned.planned)) as u64);
        if open == 0 {
            break counts;
        }
        if sending.elapsed() > Duration::from_secs(3600) {
            bail!("the campaign did not finish within an hour: {counts:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    progress.finish_and_clear();
    let sent_in = sending.elapsed();
    let sent = counts.iter().find(|(s, _)| s == "sent").map_or(0, |(_, n)| *n);
    let report = json!({
        "staff": directory.members().len(),
        "planned": planned.planned,
        "planning_ms": planning.as_secs_f64() * 1000.0,
        "sending_s": sent_in.as_secs_f64(),
        "nudges_per_s": sent as f64 / sent_in.as_secs_f64(),
        "by_status": counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} staff: {} nudges planned in {:.0} ms; sent in {:.1} s ({:.1} nudges/s); {}",
            report["staff"],
            planned.planned,
            planning.as_secs_f64() * 1000.0,
            sent_in.as_secs_f64(),
            report["nudges_per_s"].as_f64().unwrap_or_default(),
            counts
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // The README's table row these figures back, to paste as printed
        // (the first column says the channel and staff count; the script
        // prints the delivery check for the last one).
        println!("README row:");
        println!(
            "| {} staff | {:.0} ms | {:.1} s, {:.1} nudges/s | (the script's delivery line) |",
            report["staff"],
            planning.as_secs_f64() * 1000.0,
            sent_in.as_secs_f64(),
            report["nudges_per_s"].as_f64().unwrap_or_default()
        );
    }
    Ok(())
}
