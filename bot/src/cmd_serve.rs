//! `policybot serve`: the long-running service: the answer core, the store,
//! the dashboard (with its local ask form) and the Matrix channel when one is
//! and email channels when they are configured. Stops cleanly on Ctrl-C or
//! SIGTERM: every part sees the same shutdown signal and finishes what it is
//! doing.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::dashboard::{self, AppState};
use crate::load;
use crate::{campaigns, email, matrix, nudge, watch};

pub fn run(config: &Config, bind: Option<&str>) -> Result<()> {
    refuse_an_unguarded_log(config)?;
    let (service, status, report) = load::service(config)?;
    for problem in status.problems() {
        tracing::warn!("{problem}");
    }
    for change in &status.changes {
        tracing::info!("{}", change.line);
    }
    tracing::info!(
        policies = service.engine().policies().len(),
        reindexed = report.reindexed,
        "answer core ready"
    );
    let service = Arc::new(service);
    let schools = config.schools.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let state = Arc::new(AppState::new(
        service.clone(),
        schools,
        config.dashboard.secure_cookies(),
    ));
    let addr = bind.unwrap_or(&config.dashboard.bind).to_owned();
    let retention_days = config.retention_days;
    let matrix_config = config.matrix.clone();
    let email_config = config.email.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut config = config.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        // Acknowledgement links point at the address actually bound, unless
        // the config says how staff reach the dashboard.
        if config.dashboard.public_url.is_none() {
            config.dashboard.public_url = Some(format!("http://{local}"));
        }
        let config = Arc::new(config);
        // The line scripts and tests wait for: the service is ready.
        println!("policybot: dashboard on http://{local}/");
        tracing::info!(%local, "serving");
        // Retention runs at start and then daily while the service is up.
        let retention = tokio::spawn(apply_retention_daily(state.clone(), retention_days));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let watcher = tokio::spawn(watch::run(service.clone(), config.clone(), stopping.clone()));
        // Scheduled campaigns (campaigns for new versions are planned when a
        // version goes live, in `load::live_policies`).
        let schedule = tokio::spawn(campaigns::run(service.clone(), config.clone(), stopping.clone()));
        let matrix = matrix_config.map(|m| {
            let nudging = matrix::Nudging {
                link_base: config.dashboard.link_base(),
                pace: nudge::pace(&config),
            };
            tokio::spawn(matrix::run(service.clone(), m, nudging, stopping.clone()))
        });
        // Acknowledgement nudges by email go out from the persisted plan.
        let nudges = email_config
            .clone()
            .map(|e| tokio::spawn(nudge::send_email(service.clone(), config.clone(), e, stopping.clone())));
        let email = email_config.map(|e| tokio::spawn(email::run(service, e, stopping.clone())));
        let mut dashboard_stopping = stopping.clone();
        dashboard::serve(state, listener, async move {
            let _ = dashboard_stopping.wait_for(|&stop| stop).await;
        })
        .await?;
        retention.abort();
        watcher.abort();
        schedule.abort();
        for (name, channel) in [("matrix", matrix), ("email", email), ("nudges", nudges)] {
            let Some(task) = channel else { continue };
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("{name}: {e:#}"),
                Err(e) => tracing::error!("{name}: {e}"),
            }
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// The service records every question it answers in the audit log, so it
/// does not start on a log whose guard triggers are gone or whose chain is
/// broken: answering on would add to a record nobody can trust, and keep
/// quiet about it. The message names the problem and what to do (restore
/// the guards with `audit guard`; for an altered chain, keep the file as
/// evidence and restore a backup). Checked before the policies are read,
/// which may record new versions.
fn refuse_an_unguarded_log(config: &Config) -> Result<()> {
    let store = crate::store::Store::open(&config.store)?;
    let started = std::time::Instant::now();
    let v = store.verify()?;
    tracing::info!(
        events = v.events,
        ms = started.elapsed().as_millis() as u64,
        head = %v.head,
        "audit log verified"
    );
    if !v.ok() {
        anyhow::bail!(
            "not starting: the audit log at {} cannot be trusted:\n{}",
            config.store.display(),
            crate::cmd_audit::verification_text(&v)
        );
    }
    Ok(())
}

/// Redacts questions older than the retention period, now and every day.
async fn apply_retention_daily(state: Arc<AppState>, days: u32) {
    let mut every_day = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    loop {
        every_day.tick().await;
        let state = state.clone();
        let done = tokio::task::spawn_blocking(move || state.service.apply_retention(days)).await;
        match done {
            Ok(Ok((0, _))) => {}
            Ok(Ok((n, _))) => tracing::info!(redacted = n, days, "retention applied"),
            Ok(Err(e)) => tracing::error!("retention: {e:#}"),
            Err(e) => tracing::error!("retention: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
