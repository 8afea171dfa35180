//! `policybot.toml`: schools, their policy directories, the index directory,
//! the thesaurus, the store and its retention period, the staff directory, the
//! dashboard and the Matrix channel. Relative paths resolve against the
//! config file's folder, so the example config works from any working directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::directory::{Directory, StaffEntry};

/// The thesaurus shipped with policybot, used when the config names none.
pub const DEFAULT_THESAURUS: &str = include_str!("../../config/thesaurus.toml");

/// Where `policybot` looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/policybot.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    index_dir: Option<PathBuf>,
    thesaurus: Option<PathBuf>,
    default_school: Option<String>,
    store: Option<PathBuf>,
    retention_days: Option<u32>,
    staff_csv: Option<PathBuf>,
    #[serde(default, rename = "school")]
    schools: Vec<RawSchool>,
    #[serde(default)]
    staff: Vec<StaffEntry>,
    #[serde(default)]
    dashboard: Dashboard,
    matrix: Option<Matrix>,
}

/// `[dashboard]`: where `policybot serve` listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dashboard {
    /// Loopback unless configured otherwise: put a TLS proxy in front to
    /// serve it beyond this machine.
    pub bind: String,
    /// Mark the session cookie `Secure` (set when a TLS proxy serves it).
    pub secure_cookies: bool,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            bind: "127.0.0.1:8080".into(),
            secure_cookies: false,
        }
    }
}

/// `[matrix]`: the Matrix channel. Without it, `serve` runs no Matrix bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The homeserver's client API, e.g. `https://matrix.oakfield.example`.
    pub homeserver: String,
    /// The bot's account: a full user id (`@policybot:oakfield.example`).
    pub user: String,
    /// Log in with a password (or `password_file`, or the
    /// `POLICYBOT_MATRIX_PASSWORD` environment variable) the first time;
    /// later runs restore the saved session and keep the same device.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Or use an access token and the device it belongs to.
    pub access_token: Option<String>,
    pub device_id: Option<String>,
    #[serde(default = "default_device_name")]
    pub device_name: String,
    /// The session and the encryption keys live here (keep it: losing it
    /// means a new device that cannot read earlier encrypted messages).
    pub state_dir: Option<PathBuf>,
    /// Encrypts the local crypto store at rest.
    pub store_passphrase: Option<String>,
    /// Rooms (ids) and servers (`oakfield.example`) the bot may be in. Staff
    /// invites into anything else are refused, and the bot leaves such rooms.
    /// Empty lists allow rooms on the bot's own server only.
    #[serde(default)]
    pub allowed_rooms: Vec<String>,
    #[serde(default)]
    pub allowed_servers: Vec<String>,
    /// Names the bot answers to in group rooms besides its user id and
    /// display name ("policybot", "policy bot").
    #[serde(default)]
    pub names: Vec<String>,
}

fn default_device_name() -> String {
    "policybot".into()
}

impl Matrix {
    /// The password from the config, its file or the environment.
    pub fn password(&self) -> Result<Option<String>> {
        if let Ok(p) = std::env::var("POLICYBOT_MATRIX_PASSWORD")
            && !p.is_empty()
        {
            return Ok(Some(p));
        }
        if let Some(file) = &self.password_file {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("reading password file {}", file.display()))?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
        }
        Ok(self.password.clone())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchool {
    id: String,
    name: Option<String>,
    policies: PathBuf,
}

#[derive(Debug, Clone)]
pub struct School {
    pub id: String,
    pub name: String,
    pub policies: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub index_dir: PathBuf,
    pub thesaurus: Option<PathBuf>,
    pub default_school: Option<String>,
    pub schools: Vec<School>,
    /// The SQLite file holding the audit log.
    pub store: PathBuf,
    /// After this many days a question's text is redacted from the audit log
    /// (its hash stays, so the chain still verifies).
    pub retention_days: u32,
    pub staff: Vec<StaffEntry>,
    pub staff_csv: Option<PathBuf>,
    pub dashboard: Dashboard,
    pub matrix: Option<Matrix>,
}

/// Questions are kept in full for a school year and a term by default.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let raw: RawConfig = toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        let mut schools = Vec::new();
        for s in raw.schools {
            if s.id.is_empty() || !s.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!(
                    "{}: school id '{}' must be letters, digits, '-' or '_'",
                    path.display(),
                    s.id
                );
            }
            if schools.iter().any(|o: &School| o.id == s.id) {
                bail!("{}: school '{}' is listed twice", path.display(), s.id);
            }
            schools.push(School {
                name: s.name.unwrap_or_else(|| s.id.clone()),
                policies: resolve(&s.policies),
                id: s.id,
            });
        }
        if schools.is_empty() {
            bail!("{}: no [[school]] entries", path.display());
        }
        if let Some(d) = &raw.default_school
            && !schools.iter().any(|s| &s.id == d)
        {
            bail!("{}: default_school '{d}' is not one of the schools", path.display());
        }
        let config = Config {
            index_dir: resolve(raw.index_dir.as_deref().unwrap_or(Path::new("../var/index"))),
            thesaurus: raw.thesaurus.as_deref().map(resolve),
            default_school: raw.default_school,
            schools,
            store: resolve(raw.store.as_deref().unwrap_or(Path::new("../var/policybot.sqlite3"))),
            retention_days: raw.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            staff: raw.staff,
            staff_csv: raw.staff_csv.as_deref().map(resolve),
            dashboard: raw.dashboard,
            matrix: raw.matrix.map(|mut m| {
                m.state_dir = Some(resolve(m.state_dir.as_deref().unwrap_or(Path::new("../var/matrix"))));
                m.password_file = m.password_file.as_deref().map(resolve);
                m
            }),
        };
        if let Some(m) = &config.matrix
            && m.password.is_none()
            && m.password_file.is_none()
            && m.access_token.is_none()
            && std::env::var_os("POLICYBOT_MATRIX_PASSWORD").is_none()
        {
            bail!(
                "{}: [matrix] needs password, password_file or access_token (or POLICYBOT_MATRIX_PASSWORD)",
                path.display()
            );
        }
        if let Some(m) = &config.matrix
            && m.access_token.is_some()
            && m.device_id.is_none()
        {
            bail!(
                "{}: [matrix] access_token needs the device_id it was issued for",
                path.display()
            );
        }
        // Check the staff list now, so a typo is reported at start-up.
        config
            .directory()
            .with_context(|| format!("{}: staff list", path.display()))?;
        Ok(config)
    }

    /// The staff directory: `[[staff]]` entries plus the `staff_csv` file.
    pub fn directory(&self) -> Result<Directory> {
        let mut entries = self.staff.clone();
        if let Some(csv) = &self.staff_csv {
            entries.extend(Directory::read_csv(csv)?);
        }
        let schools: Vec<&str> = self.schools.iter().map(|s| s.id.as_str()).collect();
        Directory::new(entries, &schools)
    }

    /// The thesaurus text: the configured file, else the built-in one.
    pub fn thesaurus_text(&self) -> Result<String> {
        thesaurus_text(self.thesaurus.as_deref())
    }

    /// The school a question is asked for: the one named, else the default, else the only one.
    pub fn school(&self, requested: Option<&str>) -> Result<&School> {
        let id = match (requested, &self.default_school) {
            (Some(id), _) => id,
            (None, Some(d)) => d.as_str(),
            (None, None) if self.schools.len() == 1 => self.schools[0].id.as_str(),
            (None, None) => bail!("several schools are configured: pass --school ID"),
        };
        self.schools.iter().find(|s| s.id == id).with_context(|| {
            let known: Vec<&str> = self.schools.iter().map(|s| s.id.as_str()).collect();
            format!("unknown school '{id}' (configured: {})", known.join(", "))
        })
    }
}

pub fn thesaurus_text(path: Option<&Path>) -> Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading thesaurus {}", p.display())),
        None => Ok(DEFAULT_THESAURUS.to_owned()),
    }
}
