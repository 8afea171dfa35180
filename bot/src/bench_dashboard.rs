//! `policybot bench --dashboard`: page times with a long audit log. Fills a
//! store with synthetic exchanges and reviews, serves the real dashboard on a
//! loopback port, signs in, and times each page over HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use policybot_index::corpus::policy_from_bytes;
use policybot_index::{ClauseIndex, Engine, Settings, Thesaurus};
use serde_json::json;

use crate::bench::percentile;
use crate::config::DEFAULT_THESAURUS;
use crate::dashboard::{self, AppState};
use crate::directory::Directory;
use crate::load::bar;
use crate::service::Service;
use crate::store::Store;
use crate::store::audit::{Kind, NewEvent};

const TARGET_P95_MS: f64 = 50.0;
const PAGES: &[&str] = &["/", "/unanswered", "/clauses", "/audit", "/?q=whatsapp"];
const POLICY: &str = "Bench School Policy\n\nEmail\n\nDon't\n\n- Use personal email addresses to contact parents.\n";

fn fill(store: &Store, rows: usize) -> Result<()> {
    let progress = bar(rows as u64, "filling");
    let mut written = 0;
    while written < rows {
        let batch: Vec<NewEvent> = (written..(written + 1000).min(rows))
            .map(|i| {
                let kind = match i % 10 {
                    0 => Kind::Declined,
                    9 => Kind::Reviewed,
                    _ => Kind::Answered,
                };
                NewEvent {
                    school: "bench".into(),
                    asker: format!("bench:staff-{}", i % 300),
                    channel: "matrix".into(),
                    reference: if kind == Kind::Reviewed {
                        (i - 1).to_string()
                    } else {
                        String::new()
                    },
                    question: Some(format!("Can I use WhatsApp to message parents about trip {i}?")),
                    ..NewEvent::new(
                        kind,
                        json!({
                            "verdict": "no",
                            "mark": "wrong",
                            "confidence": 0.6,
                            "nearest_section": format!("Section {}", i % 12),
                            "citations": [{"clause": format!("bench/policy/{:010}", i % 400), "version": "2026-09-01"}],
                            "reply": "No — the policy does not allow this.",
                        }),
                    )
                }
            })
            .collect();
        store.append(&batch)?;
        written += batch.len();
        progress.set_position(written as u64);
    }
    progress.finish_and_clear();
    Ok(())
}

/// One GET over a fresh connection; the status code and time in ms.
fn get(addr: SocketAddr, path: &str, cookie: &str) -> Result<(u16, f64)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: policybot_session={cookie}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let status = String::from_utf8_lossy(&response[..response.len().min(12)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    Ok((status, elapsed))
}

pub fn run(rows: usize, requests: usize, json: bool) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("policybot-bench-dashboard-")
        .tempdir()?;
    let store = Store::open(&dir.path().join("audit.sqlite3"))?;
    fill(&store, rows)?;
    let user = store.add_user(
        "bench",
        crate::store::users::Role::EsafetyLead,
        None,
        "a long bench password",
    )?;
    let cookie = store.create_session(&user)?;
    let policy = policy_from_bytes("bench", "bench.txt", POLICY.as_bytes(), None)?;
    let (engine, _) = Engine::new(
        vec![policy],
        ClauseIndex::in_ram()?,
        Thesaurus::from_toml(DEFAULT_THESAURUS)?,
        Settings::default(),
        &mut |_, _| {},
    )?;
    let service = Service::new(engine, Directory::default(), store);
    let state = Arc::new(AppState::new(
        Arc::new(service),
        vec![("bench".into(), "Bench School".into())],
        false,
    ));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(dashboard::serve(state, listener, async {
        let _ = stopped.await;
    }));

    let mut results = Vec::new();
    for page in PAGES {
        get(addr, page, &cookie)?; // warm up
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let (status, ms) = get(addr, page, &cookie)?;
            if status != 200 {
                bail!("{page} answered {status}");
            }
            times.push(ms);
        }
        times.sort_by(f64::total_cmp);
        results.push((*page, percentile(&times, 50.0), percentile(&times, 95.0)));
    }
    let _ = stop.send(());
    runtime.block_on(server)??;

    let worst = results.iter().map(|r| r.2).fold(0.0, f64::max);
    if json {
        println!(
            "{}",
            json!({
                "rows": rows,
                "requests_per_page": requests,
                "pages": results.iter().map(|(p, p50, p95)| json!({"page": p, "p50_ms": p50, "p95_ms": p95})).collect::<Vec<_>>(),
                "target_p95_ms": TARGET_P95_MS,
                "target_met": worst <= TARGET_P95_MS,
            })
        );
    } else {
        println!("dashboard with {rows} audit rows, {requests} requests a page:");
        for (page, p50, p95) in &results {
            println!("  {page:<14} p50 {p50:6.1} ms  p95 {p95:6.1} ms");
        }
        // The README's table row these figures back, to paste as printed.
        let pages = results
            .iter()
            .map(|(page, _, p95)| format!("{page} {p95:.1} ms"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("README row:");
        println!(
            "| dashboard pages, p95 with {}k rows | {pages} | ≤ {TARGET_P95_MS:.0} ms |",
            rows / 1000
        );
        println!(
            "targets: p95 <= {TARGET_P95_MS:.0} ms: {}",
            if worst <= TARGET_P95_MS { "PASS" } else { "FAIL" }
        );
    }
    Ok(())
}
