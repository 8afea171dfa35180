//! `policybot audit …`: what the e-safety lead (or an inspector) checks.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::store::Store;
use crate::store::audit::{Event, Filter, Head, Kind, NewEvent, Verification};
use policybot_index::Mode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, the redactions and the guard triggers; names
    /// the first broken event and exits non-zero.
    Verify {
        #[arg(long)]
        json: bool,
        /// A head written down earlier (ID:HASH, from a digest mail, an
        /// export or the dashboard): also check the log still holds it.
        #[arg(long, value_name = "ID:HASH")]
        head: Option<Head>,
    },
    /// Put back guard triggers that are missing or were altered (recorded
    /// in the log), then verify.
    Guard,
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
        AuditCommand::Verify { json, head } => verify(&store, json, head.as_ref()),
        AuditCommand::Guard => {
            let problems = store.restore_guards()?;
            if problems.is_empty() {
                println!("the guard triggers were all in place");
            } else {
                println!("guard triggers put back ({}); recorded in the log", problems.join("; "));
            }
            verify(&store, false, None)
        }
        AuditCommand::List { filter, json } => list(&store, &filter.filter(), json),
        AuditCommand::Export {
            csv,
            json: _,
            out,
            filter,
        } => export(&store, &filter.filter(), csv, out.as_deref()),
        AuditCommand::Retain => {
            let (n, cutoff) = store.redact_older_than(config.retention_days)?;
            println!(
                "redacted {n} question(s) asked before {cutoff} ({} days)",
                config.retention_days
            );
            Ok(())
        }
        AuditCommand::Load { events } => load(&store, events),
    }
}

fn verify(store: &Store, json: bool, head: Option<&Head>) -> Result<()> {
    let v = store.verify_against(head)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", verification_text(&v));
    }
    if !v.ok() {
        bail!("the audit log has been altered, or its guards removed");
    }
    Ok(())
}

/// `audit verify` for the e-safety lead: what holds, what is wrong, what
/// to do.
pub fn verification_text(v: &Verification) -> String {
    let mut out = String::new();
    let problems = v.problems();
    if problems.is_empty() {
        out.push_str(&format!(
            "audit chain intact: {} events, guard triggers in place, every removed question covered by a redaction\n",
            v.events
        ));
    } else {
        out.push_str(&format!(
            "audit log: {} problem(s) found ({} events)\n",
            problems.len(),
            v.events
        ));
        for p in &problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    if let Some(a) = v.anchor.as_ref().filter(|a| a.held) {
        out.push_str(&format!(
            "the head written down earlier, {}, is in the log, unchanged\n",
            a.head
        ));
    }
    out.push_str(&format!(
        "head now: {} (digest mails and exports carry it; `policybot audit verify --head {}` later shows the log still holds it)\n",
        v.head, v.head
    ));
    if !v.guards.is_empty() {
        out.push_str("to put the guard triggers back: policybot audit guard\n");
    }
    if v.broken.is_some() || v.anchor.as_ref().is_some_and(|a| !a.held) {
        out.push_str(
            "the log was altered outside policybot: keep a copy of the store file as evidence, \
                and restore it from a backup taken before the event named\n",
        );
    }
    out
}

/// One line a person can read: when, what, who, the question, the verdict and
/// the first clause cited.
/// Questions, addresses and message ids come from strangers: control
/// characters (terminal escapes, NUL) are shown, not obeyed.
fn line(e: &Event) -> String {
    let question = e.question.as_deref().unwrap_or("[redacted]").replace('\n', " ");
    let verdict = e.payload["verdict"].as_str().unwrap_or("");
    let cited = e.payload["citations"][0]["clause"].as_str().unwrap_or("");
    let cut = if e.payload["cut"].is_object() { " [cut]" } else { "" };
    // A suggestion is recorded as declined; say which clauses it offered.
    let suggested = if e.mode == Some(Mode::Suggest) {
        " (suggested)"
    } else {
        ""
    };
    visible_controls(&format!(
        "#{} {} {:<8}{suggested} {} {} via {}: {question}{cut} → {verdict} {cited}",
        e.id, e.at, e.kind, e.school, e.asker, e.channel
    ))
    .into_owned()
}

/// `text` with every control character written out as an escape
/// (`\u{1b}`): C0 and C1 controls, DEL, and the bidirectional overrides
/// that make a terminal show text in another order than it is. Newlines
/// stay only when `keep_newlines`.
pub fn visible_controls_with(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

pub fn visible_controls(text: &str) -> Cow<'_, str> {
    visible_controls_with(text, false)
}

/// A CSV cell a spreadsheet shows as text: controls written out (newlines
/// kept: a quoted cell may hold them), and a cell that would start with
/// `=`, `+`, `-`, `@`, tab or CR prefixed with `'` (OWASP's rule against
/// formula injection), since questions come from strangers.
pub fn csv_cell(text: &str) -> String {
    let text = visible_controls_with(text, true);
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.into_owned(),
    }
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
        // The head after the events listed: whoever keeps the file can
        // check later that the log still holds it.
        let head = store.head()?;
        serde_json::to_writer_pretty(&mut sink, &json!({ "head": head, "events": events }))?;
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

/// What a CSV export's last row says in its `kind` column: that row holds
/// the log's head when the file was written (id in `id`, hash in `hash`).
pub const CSV_HEAD_KIND: &str = "audit-head";

/// Writes the events matching `filter` as CSV, one row each, every cell
/// made safe for a spreadsheet ([`csv_cell`]); then one last row with the
/// log's head (kind `audit-head`: plain text in a spreadsheet, and a row
/// anyone filtering by kind leaves out). Returns how many events.
pub fn write_csv(store: &Store, filter: &Filter, sink: &mut dyn Write) -> Result<usize> {
    let events = store.list(filter)?;
    let head = store.head()?;
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
        "mode",
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
        let cut = e.payload["cut"]["chars"]
            .as_u64()
            .map(|n| {
                format!(
                    " [cut: the first {} of {n} characters kept]",
                    policybot_index::engine::MAX_QUESTION_CHARS
                )
            })
            .unwrap_or_default();
        let row = [
            e.id.to_string(),
            e.at.clone(),
            e.kind.clone(),
            e.school.clone(),
            e.asker.clone(),
            e.channel.clone(),
            e.reference.clone(),
            e.question
                .clone()
                .map_or_else(|| "[redacted]".into(), |q| q + cut.as_str()),
            e.question_hash.clone(),
            e.payload["verdict"].as_str().unwrap_or("").to_owned(),
            e.mode.map(Mode::as_str).unwrap_or("").to_owned(),
            e.payload["confidence"]
                .as_f64()
                .map(|c| format!("{c:.3}"))
                .unwrap_or_default(),
            cited("clause"),
            cited("version"),
            e.payload["reply"].as_str().unwrap_or("").to_owned(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        w.write_record(row.iter().map(|cell| csv_cell(cell)))?;
    }
    let mut last = vec![String::new(); 17];
    last[0] = head.id.to_string();
    last[1] = crate::store::audit::now();
    last[2] = CSV_HEAD_KIND.to_owned();
    last[7] = format!(
        "The audit log's head when this file was written. Check later that the log still holds it: policybot audit verify --head {head}"
    );
    last[16] = head.hash.clone();
    w.write_record(last.iter().map(|cell| csv_cell(cell)))?;
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
