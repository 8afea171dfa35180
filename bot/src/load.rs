//! Reading policies and building the answer engine, with progress on a
//! terminal and every problem reported as `file:line: message`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use policybot_index::corpus;
use policybot_index::{ClauseIndex, Engine, Policy, Settings, SyncReport, Thesaurus};

use crate::config::Config;
use crate::service::Service;
use crate::store::Store;

/// A policy file and the school it belongs to.
pub struct Source {
    pub school: String,
    pub path: PathBuf,
}

/// Policies read, and problems found (`file:line: message`). A file with an
/// error is left out; the rest are still indexed.
pub struct Read {
    pub policies: Vec<Policy>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The progress bar every long operation draws (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

pub fn read_sources(sources: &[Source]) -> Read {
    let progress = bar(sources.len() as u64, "reading");
    let mut read = Read {
        policies: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for s in sources {
        match corpus::read_policy(&s.school, &s.path) {
            Ok(policy) => {
                // A policy with no clauses is an error its author must fix
                // (`index --check` fails on it), not a warning to skim past.
                let usable = !policy.clauses.is_empty();
                let problems = if usable { &mut read.warnings } else { &mut read.errors };
                for (line, msg) in &policy.warnings {
                    problems.push(format!("{}:{line}: {msg}", policy.source));
                }
                if usable {
                    read.policies.push(policy);
                }
            }
            Err(e) => read.errors.push(e.to_string()),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    read
}

/// Every policy file of every configured school.
pub fn config_sources(config: &Config) -> (Vec<Source>, Vec<String>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for school in &config.schools {
        match corpus::policy_files(&school.policies) {
            Ok(files) => {
                for path in files {
                    if corpus::is_policy_file(&path) {
                        sources.push(Source {
                            school: school.id.clone(),
                            path,
                        });
                    } else {
                        errors.push(format!(
                            "{}: skipped: not a .txt, .md or .docx policy (PDF import is not built yet)",
                            path.display()
                        ));
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (sources, errors)
}

/// One school per file, named after the file: the layout of an evaluation corpus.
pub fn corpus_sources(dir: &Path) -> Result<Vec<Source>> {
    let files = corpus::policy_files(dir).with_context(|| format!("reading corpus {}", dir.display()))?;
    Ok(files
        .into_iter()
        .filter(|p| corpus::is_policy_file(p))
        .map(|path| Source {
            school: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
        })
        .collect())
}

pub fn engine(
    policies: Vec<Policy>,
    index: ClauseIndex,
    thesaurus: &str,
    settings: Settings,
) -> Result<(Engine, SyncReport)> {
    let thesaurus = Thesaurus::from_toml(thesaurus)?;
    let total: usize = policies.iter().map(|p| p.clauses.len()).sum();
    let progress = bar(total as u64, "indexing");
    let mut tick = |done: usize, _total: usize| progress.set_position(done as u64);
    let built = Engine::new(policies, index, thesaurus, settings, &mut tick)?;
    progress.finish_and_clear();
    Ok(built)
}

/// The answer service for a config: engine, staff directory and store.
pub fn service(config: &Config) -> Result<(Service, Read, SyncReport)> {
    let directory = config.directory()?;
    let store = Store::open(&config.store)?;
    let (engine, read, report) = from_config(config)?;
    Ok((Service::new(engine, directory, store), read, report))
}

/// Every policy of every configured school, with the problems found listing
/// the folders and reading the files.
pub fn read_config(config: &Config) -> Read {
    let (sources, mut errors) = config_sources(config);
    let mut read = read_sources(&sources);
    errors.append(&mut read.errors);
    read.errors = errors;
    read
}

/// The engine for a config: its schools' policies, its persisted index.
pub fn from_config(config: &Config) -> Result<(Engine, Read, SyncReport)> {
    let mut read = read_config(config);
    let index = ClauseIndex::open_in_dir(&config.index_dir)
        .with_context(|| format!("opening index {}", config.index_dir.display()))?;
    let policies = std::mem::take(&mut read.policies);
    let (engine, report) = self::engine(policies, index, &config.thesaurus_text()?, Settings::default())?;
    Ok((engine, read, report))
}
