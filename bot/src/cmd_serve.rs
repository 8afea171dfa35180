//! `policybot serve`: the long-running service. Today it runs the answer core,
//! the store and the dashboard (with its local ask form); the Matrix and email
//! channels join it in later issues. Stops cleanly on Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::dashboard::{self, AppState};
use crate::load;

pub fn run(config: &Config, bind: Option<&str>) -> Result<()> {
    let (service, read, report) = load::service(config)?;
    for problem in read.errors.iter().chain(&read.warnings) {
        tracing::warn!("{problem}");
    }
    tracing::info!(
        policies = read.policies.len() + report.reindexed + report.unchanged,
        reindexed = report.reindexed,
        "answer core ready"
    );
    let schools = config.schools.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let state = Arc::new(AppState::new(service, schools, config.dashboard.secure_cookies));
    let addr = bind.unwrap_or(&config.dashboard.bind).to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        // The line scripts and tests wait for: the service is ready.
        println!("policybot: dashboard on http://{local}/");
        tracing::info!(%local, "serving");
        dashboard::serve(state, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
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
