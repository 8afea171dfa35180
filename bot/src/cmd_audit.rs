//! `policybot audit …`: what the e-safety lead (or an inspector) checks.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::store::Store;
use crate::store::audit::{self, Event, Filter, Kind, NewEvent};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first broken event and exits non-zero.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// List events (questions and answers, policy versions, mail ignored…), oldest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Export events as CSV or JSON (the export itself is recorded).
    Export {
        #[arg(long, conflicts_with = "json", required_unless_present = "json")]
        csv: bool,
        #[arg(long)]
        json: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Redact question texts older than the configured retention period.
    Retain,
    /// Append N synthetic events one transaction each, printing each id once
    /// it is on disk (used by the crash-safety test).
    #[command(hide = true)]
    Load {
        #[arg(long, default_value_t = 1000)]
        events: usize,
    },
}

#[derive(clap::Args, Clone, Default)]
pub struct FilterArgs {
    /// Only events at or after this date (2026-09-01) or RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    school: Option<String>,
    /// Only questions no clause answered.
    #[arg(long)]
    unanswered: bool,
    /// Only these kinds of event (answered, declined, refused, policy-version,
    /// ignored, sent, reviewed, signed-in, login-failed, exported, redacted),
    /// comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kind: Vec<Kind>,
    #[arg(long)]
    limit: Option<usize>,
}

fn parse_kind(name: &str) -> Result<Kind, String> {
    Kind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind of event '{name}' (known: {})", known.join(", "))
    })
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            since: self.since.clone(),
            school: self.school.clone(),
            unanswered: self.unanswered,
            kinds: self.kind.iter().map(|k| k.as_str()).collect(),
            limit: self.limit,
            ..Filter::default()
        }
    }
}

pub fn run(config: &Config, command: AuditCommand) -> Result<()> {
    let store = Store::open(&config.store)?;
    match command {
        AuditCommand::Verify { json } => verify(&store, json),
        AuditCommand::List { filter, json } => list(&store, &filter.filter(), json),
        AuditCommand::Export {
            csv,
            json: _,
            out,
            filter,
        } => export(&store, &filter.filter(), csv, out.as_deref()),
        AuditCommand::Retain => {
            let cutoff = audit::retention_cutoff(config.retention_days);
            let n = store.redact_before(&cutoff)?;
            println!(
                "redacted {n} question(s) asked before {cutoff} ({} days)",
                config.retention_days
            );
            Ok(())
        }
        AuditCommand::Load { events } => load(&store, events),
    }
}

fn verify(store: &Store, json: bool) -> Result<()> {
    let v = store.verify()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some((id, why)) = &v.broken {
        println!("audit chain BROKEN at event {id}: {why} ({} events)", v.events);
    } else {
        println!("audit chain intact: {} events", v.events);
    }
    if v.broken.is_some() {
        bail!("the audit log has been altered");
    }
    Ok(())
}

/// One line a person can read: when, what, who, the question, the verdict and
/// the first clause cited.
fn line(e: &Event) -> String {
    let question = e.question.as_deref().unwrap_or("[redacted]").replace('\n', " ");
    let verdict = e.payload["verdict"].as_str().unwrap_or("");
    let cited = e.payload["citations"][0]["clause"].as_str().unwrap_or("");
    format!(
        "#{} {} {:<8} {} {} via {}: {question} → {verdict} {cited}",
        e.id, e.at, e.kind, e.school, e.asker, e.channel
    )
}

fn list(store: &Store, filter: &Filter, json: bool) -> Result<()> {
    let events = store.list(filter)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        for e in &events {
            println!("{}", line(e));
        }
        eprintln!("{} event(s)", events.len());
    }
    Ok(())
}

fn export(store: &Store, filter: &Filter, csv: bool, out: Option<&Path>) -> Result<()> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let rows = if csv {
        write_csv(store, filter, &mut sink)?
    } else {
        let events = store.list(filter)?;
        serde_json::to_writer_pretty(&mut sink, &events)?;
        writeln!(sink)?;
        events.len()
    };
    sink.flush()?;
    store.append(&[NewEvent {
        school: filter.school.clone().unwrap_or_default(),
        asker: "local".into(),
        channel: "cli".into(),
        ..NewEvent::new(
            Kind::Exported,
            json!({
                "format": if csv { "csv" } else { "json" },
                "rows": rows,
                "since": filter.since,
                "unanswered": filter.unanswered,
            }),
        )
    }])?;
    Ok(())
}

/// Writes the events matching `filter` as CSV, one row each; returns how many.
pub fn write_csv(store: &Store, filter: &Filter, sink: &mut dyn Write) -> Result<usize> {
    let events = store.list(filter)?;
    let mut w = csv::Writer::from_writer(sink);
    w.write_record([
        "id",
        "at",
        "kind",
        "school",
        "asker",
        "channel",
        "reference",
        "question",
        "question_sha256",
        "verdict",
        "confidence",
        "clauses",
        "versions",
        "reply",
        "prev_hash",
        "hash",
    ])?;
    for e in &events {
        let cited = |field: &str| {
            e.payload["citations"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c[field].as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        w.write_record([
            e.id.to_string(),
            e.at.clone(),
            e.kind.clone(),
            e.school.clone(),
            e.asker.clone(),
            e.channel.clone(),
            e.reference.clone(),
            e.question.clone().unwrap_or_else(|| "[redacted]".into()),
            e.question_hash.clone(),
            e.payload["verdict"].as_str().unwrap_or("").to_owned(),
            e.payload["confidence"]
                .as_f64()
                .map(|c| format!("{c:.3}"))
                .unwrap_or_default(),
            cited("clause"),
            cited("version"),
            e.payload["reply"].as_str().unwrap_or("").to_owned(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ])?;
    }
    w.flush()?;
    Ok(events.len())
}

fn load(store: &Store, events: usize) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for i in 0..events {
        let question = format!("synthetic question {i}");
        let id = store.append(&[NewEvent {
            school: "load".into(),
            asker: "load".into(),
            channel: "cli".into(),
            question: Some(question),
            ..NewEvent::new(Kind::Answered, json!({ "verdict": "info" }))
        }])?[0];
        // Printed only after the commit returned: every id printed is on disk.
        writeln!(stdout, "{id}")?;
        stdout.flush()?;
    }
    Ok(())
}
