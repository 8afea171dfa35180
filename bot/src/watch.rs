//! Watching the policy folders while `serve` runs: a saved, added or deleted
//! policy file is live within seconds, without a restart.
//!
//! The folders are polled (names, sizes, modification times) rather than
//! watched with inotify: schools keep policies on network shares and synced
//! folders, where change notifications are unreliable or absent, and a
//! listing of a few dozen files every two seconds costs nothing. A change is
//! acted on once the folder has held still for a moment, so a file caught
//! half-written by a slow save is read whole. What a reload found (a broken
//! file, the version kept live instead) is on the dashboard's policies page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use policybot_index::corpus;
use tokio::sync::watch;

use crate::config::Config;
use crate::load;
use crate::service::Service;

/// How long a changed folder must hold still before it is read.
const SETTLE: Duration = Duration::from_millis(500);

/// What the folders hold: per school, each policy file with its size and
/// modification time, or why the folder could not be listed.
type Snapshot = Vec<Result<Vec<(PathBuf, u64, Option<SystemTime>)>, String>>;

fn snapshot(config: &Config) -> Snapshot {
    config
        .schools
        .iter()
        .map(|school| {
            let files = corpus::policy_files(&school.policies).map_err(|e| e.to_string())?;
            Ok(files
                .into_iter()
                .map(|path| {
                    let meta = std::fs::metadata(&path).ok();
                    let len = meta.as_ref().map_or(0, |m| m.len());
                    let modified = meta.and_then(|m| m.modified().ok());
                    (path, len, modified)
                })
                .collect())
        })
        .collect()
}

async fn snapshot_now(config: &Arc<Config>) -> Snapshot {
    let config = config.clone();
    tokio::task::spawn_blocking(move || snapshot(&config))
        .await
        .unwrap_or_default()
}

pub async fn run(service: Arc<Service>, config: Arc<Config>, mut stopping: watch::Receiver<bool>) {
    if config.watch_seconds == 0 {
        return;
    }
    let every = Duration::from_secs(config.watch_seconds);
    let mut seen = snapshot_now(&config).await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopping.wait_for(|&stop| stop) => return,
        }
        let now = snapshot_now(&config).await;
        if now == seen {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        let settled = snapshot_now(&config).await;
        if settled != now {
            continue;
        }
        let (service_, config_) = (service.clone(), config.clone());
        match tokio::task::spawn_blocking(move || load::reload(&config_, &service_)).await {
            Ok(Ok((status, report))) => {
                seen = settled;

                for problem in status.errors.iter().chain(&status.kept) {
                    tracing::warn!("{problem}");
                }
                for change in &status.changes {
                    tracing::info!("{}", change.line);
                }
                // The line scripts and tests wait for.
                println!(
                    "policybot: policies reloaded: {} re-indexed, {} removed, {} unchanged, {} error(s)",
                    report.reindexed,
                    report.removed,
                    report.unchanged,
                    status.errors.len()
                );
            }
            // The previous engine stays live; the next look tries again.
            Ok(Err(e)) => tracing::error!("reloading policies: {e:#}"),
            Err(e) => tracing::error!("reloading policies: {e}"),
        }
    }
}
