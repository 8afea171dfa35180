//! Reading policies and building the answer engine, with progress on a
//! terminal and every problem reported as `file:line: message`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use policybot_index::corpus;
use policybot_index::{ClauseIndex, Engine, Policy, Settings, SyncReport, Thesaurus};

use crate::config::Config;
use crate::service::{PolicyStatus, Service};
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
    /// Files that gave no usable policy (as `Policy::source` names them).
    pub failed: Vec<String>,
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
        failed: Vec::new(),
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
                } else {
                    read.failed.push(policy.source);
                }
            }
            Err(e) => {
                read.errors.push(e.to_string());
                read.failed.push(s.path.display().to_string());
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    keep_one_file_per_policy(&mut read);
    read
}

/// Two files of one school with the same policy title (an old copy left
/// beside the new, a Word file and its PDF) would answer twice and fight over
/// which version is live. The file saved last is the policy; the others are
/// reported, naming it. They are not "failed", so no older version of them
/// is brought back.
fn keep_one_file_per_policy(read: &mut Read) {
    let modified = |p: &Policy| std::fs::metadata(&p.source).and_then(|m| m.modified()).ok();
    let mut policies = std::mem::take(&mut read.policies);
    // Newest first within each policy; the first of each (school, slug) stays.
    policies.sort_by(|a, b| {
        (&a.school, &a.slug)
            .cmp(&(&b.school, &b.slug))
            .then(modified(b).cmp(&modified(a)))
            .then(a.source.cmp(&b.source))
    });
    for policy in policies {
        match read.policies.last() {
            Some(kept) if kept.school == policy.school && kept.slug == policy.slug => {
                read.errors.push(format!(
                    "{}: skipped: the same policy (\"{}\") as {}, which was saved later; keep one file per policy",
                    policy.source, policy.title, kept.source
                ));
            }
            _ => read.policies.push(policy),
        }
    }
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
                            "{}: skipped: not a .txt, .md, .docx or .pdf policy",
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
    thesaurus: Thesaurus,
    settings: Settings,
) -> Result<(Engine, SyncReport)> {
    let total: usize = policies.iter().map(|p| p.clauses.len()).sum();
    let progress = bar(total as u64, "indexing");
    let mut tick = |done: usize, _total: usize| progress.set_position(done as u64);
    let built = Engine::new(policies, index, thesaurus, settings, &mut tick)?;
    progress.finish_and_clear();
    Ok(built)
}

/// `engine` with sentence embeddings from the model in `model_dir`: clauses
/// whose vectors are not stored beside the index are embedded, with progress.
pub fn with_model(engine: Engine, model_dir: &Path) -> Result<Engine> {
    let embedder = policybot_index::embed::Embedder::load(model_dir)?;
    let progress = bar(0, "embedding");
    let mut tick = |done: usize, total: usize| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    };
    let (engine, report) = engine.with_embedder(std::sync::Arc::new(embedder), &mut tick)?;
    progress.finish_and_clear();
    if let Some(e) = report.save_error {
        tracing::warn!("{e}");
    }
    Ok(engine)
}

/// The answer service for a config: engine, staff directory and store, and
/// what loading the policies found.
pub fn service(config: &Config) -> Result<(Service, PolicyStatus, SyncReport)> {
    let directory = config.directory()?;
    let store = Store::open(&config.store)?;
    let (policies, status) = live_policies(config, &store, &[])?;
    let (engine, report) = engine_for(config, policies)?;
    let service = Service::new(engine, directory, store);
    service.set_policy_status(status.clone());
    Ok((service, status, report))
}

/// The service's policies afresh, for a running service: a changed file's
/// new version goes live, and a broken one keeps its last good version.
/// Returns what changed, for the log.
pub fn reload(config: &Config, service: &Service) -> Result<(PolicyStatus, SyncReport)> {
    let current = service.engine();
    let (policies, status) = live_policies(config, service.store(), current.policies())?;
    let (engine, report) = engine_for(config, policies)?;
    service.replace_engine(engine, status.clone());
    Ok((status, report))
}

/// The policies to answer from: every configured file as it reads now, or,
/// where a file is broken (unreadable, damaged, no clauses), the version last
/// live from it, from `previous` or else the store, so a bad save never takes
/// a policy away from staff. Each version is recorded in the store, which
/// gives it the label answers cite.
pub fn live_policies(config: &Config, store: &Store, previous: &[Policy]) -> Result<(Vec<Policy>, PolicyStatus)> {
    let mut read = read_config(config);
    let mut kept = Vec::new();
    for source in &read.failed {
        let last_good = match previous.iter().find(|p| &p.source == source) {
            Some(p) => Some(p.clone()),
            None => store.last_good(source)?,
        };
        if let Some(policy) = last_good {
            kept.push(format!(
                "{source}: version {} of {} stays live until the file is fixed",
                policy.version, policy.title
            ));
            read.policies.push(policy);
        }
    }
    let changes = store.register_versions(&mut read.policies)?;
    // Staff are asked to acknowledge a new version as soon as it is live,
    // whichever command read it first.
    crate::campaigns::for_new_versions(config, &config.directory()?, store, &changes)?;
    let status = PolicyStatus {
        checked_at: crate::store::audit::now(),
        errors: read.errors,
        warnings: read.warnings,
        kept,
        changes,
    };
    Ok((read.policies, status))
}

/// An engine over `policies` with the config's index directory and thesaurus.
fn engine_for(config: &Config, policies: Vec<Policy>) -> Result<(Engine, SyncReport)> {
    let index = ClauseIndex::open_in_dir(&config.index_dir)
        .with_context(|| format!("opening index {}", config.index_dir.display()))?;
    let (engine, report) = engine(policies, index, config.thesaurus()?, Settings::default())?;
    // The first command that needs the model installs it (with pip's progress).
    crate::model::ensure_installed(&config.model_dir)?;
    Ok((with_model(engine, &config.model_dir)?, report))
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
