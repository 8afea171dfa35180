//! `policybot.toml`: schools, their policy directories, the index directory,
//! the answer model's directory, the thesaurus, the store and its retention period, the staff directory, the
//! dashboard and the Matrix and email channels. Relative paths resolve against the
//! config file's folder, so the example config works from any working directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use policybot_index::Thesaurus;

use crate::directory::{Directory, StaffEntry};

/// The thesaurus shipped with policybot, used when the config names none.
pub const DEFAULT_THESAURUS: &str = include_str!("../../config/thesaurus.toml");

/// Where `policybot` looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/policybot.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    index_dir: Option<PathBuf>,
    model_dir: Option<PathBuf>,
    thesaurus: Option<PathBuf>,
    default_school: Option<String>,
    store: Option<PathBuf>,
    retention_days: Option<u32>,
    watch_seconds: Option<u64>,
    staff_csv: Option<PathBuf>,
    #[serde(default, rename = "school")]
    schools: Vec<RawSchool>,
    #[serde(default)]
    staff: Vec<StaffEntry>,
    #[serde(default)]
    dashboard: Dashboard,
    #[serde(default)]
    acknowledgements: Acknowledgements,
    matrix: Option<Matrix>,
    email: Option<Email>,
}

/// `[dashboard]`: where `policybot serve` listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dashboard {
    /// Loopback unless configured otherwise: put a TLS proxy in front to
    /// serve it beyond this machine.
    pub bind: String,
    /// Mark the cookies `Secure` (sent over HTTPS only). Unset: whether
    /// `public_url` is https, as it is when a TLS proxy serves the dashboard.
    pub secure_cookies: Option<bool>,
    /// The dashboard's address as staff reach it, for the acknowledgement
    /// links in nudges (default: http:// and `bind`).
    pub public_url: Option<String>,
}

impl Dashboard {
    /// Where acknowledgement links point, without a trailing slash.
    pub fn link_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// Whether cookies carry `Secure`: as configured, else when staff reach
    /// the dashboard over https (a browser then only sends them back over
    /// TLS, never in clear on a network hop).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            self.public_url.as_deref().is_some_and(|u| {
                u.trim_start()
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            })
        })
    }
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            bind: "127.0.0.1:8080".into(),
            secure_cookies: None,
            public_url: None,
        }
    }
}

/// `[acknowledgements]`: when campaigns run and how fast nudges go out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acknowledgements {
    /// "first school day HH:MM" or a five-field cron expression.
    pub schedule: String,
    pub time_zone: String,
    /// Days without school: "2026-12-21..2027-01-04" or "2027-02-15".
    pub holidays: Vec<String>,
    /// Plan a campaign for a policy as soon as a new version of it goes live
    /// (not for the first version the bot sees: that waits for the schedule).
    pub on_new_version: bool,
    /// Nudges sent per minute at most, on each channel: servers' rate limits
    /// are met by pacing, never by dropping.
    pub nudges_per_minute: u32,
    /// After this many unanswered nudges about one version, a member of
    /// staff is listed for the e-safety lead in the digest.
    pub escalate_after: u32,
    /// Who gets the monthly digest (acknowledgement status, escalations) by
    /// email, at each scheduled campaign.
    pub digest_to: Vec<String>,
}

impl Default for Acknowledgements {
    fn default() -> Self {
        Acknowledgements {
            schedule: crate::schedule::DEFAULT_SCHEDULE.into(),
            time_zone: crate::schedule::DEFAULT_TIME_ZONE.into(),
            holidays: Vec::new(),
            on_new_version: true,
            nudges_per_minute: 60,
            escalate_after: 3,
            digest_to: Vec::new(),
        }
    }
}

impl Acknowledgements {
    pub fn schedule(&self) -> Result<crate::schedule::Schedule> {
        crate::schedule::Schedule::parse(&self.schedule, &self.time_zone, &self.holidays)
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

/// How a mail connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS before logging in (IMAP 143,
    /// submission 587); refused if the server does not offer it.
    Starttls,
    /// No TLS: only for a server on this machine.
    None,
}

/// One mail server: host, port and how the connection is protected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailServer {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

/// What happens to a mail once it has been dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterReply {
    /// Marked \Seen (and \Answered when a reply went out); stays in the mailbox.
    Flag,
    /// Moved to `processed_mailbox`.
    Move,
}

/// What an unknown sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSenders {
    /// One polite refusal per address, then silence.
    Refuse,
    /// Nothing (still recorded in the audit log).
    Ignore,
}

/// `[email]`: the email channel. Without it, `serve` reads no mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// The bot's own address: replies come from it, and mail from it is
    /// never answered.
    pub address: String,
    /// The name shown with the address ("Oakfield policy bot").
    #[serde(default = "default_email_name")]
    pub name: String,
    pub imap: MailServer,
    pub smtp: MailServer,
    /// Login for both servers (defaults to `address`).
    pub username: Option<String>,
    /// The password, or `password_file`, or `POLICYBOT_EMAIL_PASSWORD`.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A PEM file of extra CA certificates to trust (a school's own CA).
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    #[serde(default = "default_after_reply")]
    pub after_reply: AfterReply,
    #[serde(default = "default_processed_mailbox")]
    pub processed_mailbox: String,
    #[serde(default = "default_unknown_senders")]
    pub unknown_senders: UnknownSenders,
    /// The authserv-id your own mail server writes in Authentication-Results
    /// (`mx.oakfield.example`). When set, a mail is trusted only if that
    /// server's verdict passes for the From domain (DMARC, or DKIM/SPF
    /// aligned with it); results written by anyone else are ignored.
    pub trusted_authserv_id: Option<String>,
    /// Replies to one address in an hour, at most.
    #[serde(default = "default_replies_per_hour")]
    pub replies_per_hour: u32,
    /// Larger mails are not read; the sender is told.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u32,
    /// IMAP IDLE is re-issued this often (servers drop it after 30 minutes).
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
    /// Without IDLE on the server, the mailbox is checked this often.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
}

fn default_email_name() -> String {
    "Policy bot".into()
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_after_reply() -> AfterReply {
    AfterReply::Flag
}
fn default_processed_mailbox() -> String {
    "Processed".into()
}
fn default_unknown_senders() -> UnknownSenders {
    UnknownSenders::Refuse
}
fn default_replies_per_hour() -> u32 {
    20
}
fn default_max_message_bytes() -> u32 {
    2 * 1024 * 1024
}
fn default_idle_minutes() -> u64 {
    25
}
fn default_poll_seconds() -> u64 {
    60
}

impl Email {
    /// An account on two servers, with every other setting at its default
    /// (the email bench logs in as a member of staff with it).
    pub fn account(address: &str, password: &str, imap: MailServer, smtp: MailServer) -> Email {
        Email {
            address: address.to_owned(),
            name: default_email_name(),
            imap,
            smtp,
            username: None,
            password: Some(password.to_owned()),
            password_file: None,
            ca_file: None,
            mailbox: default_mailbox(),
            after_reply: default_after_reply(),
            processed_mailbox: default_processed_mailbox(),
            unknown_senders: default_unknown_senders(),
            trusted_authserv_id: None,
            replies_per_hour: default_replies_per_hour(),
            max_message_bytes: default_max_message_bytes(),
            idle_minutes: default_idle_minutes(),
            poll_seconds: default_poll_seconds(),
        }
    }

    /// The login name for both servers.
    pub fn username(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.address)
    }

    /// The password from the config, its file or the environment.
    pub fn password(&self) -> Result<String> {
        secret(
            "POLICYBOT_EMAIL_PASSWORD",
            self.password_file.as_deref(),
            self.password.as_deref(),
        )?
        .context("[email] needs password, password_file or POLICYBOT_EMAIL_PASSWORD")
    }
}

/// A secret from the environment, else a file, else the config itself.
fn secret(env: &str, file: Option<&Path>, inline: Option<&str>) -> Result<Option<String>> {
    if let Ok(p) = std::env::var(env)
        && !p.is_empty()
    {
        return Ok(Some(p));
    }
    if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading password file {}", file.display()))?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Ok(inline.map(str::to_owned))
}

fn default_device_name() -> String {
    "policybot".into()
}

impl Matrix {
    /// The password from the config, its file or the environment.
    pub fn password(&self) -> Result<Option<String>> {
        secret(
            "POLICYBOT_MATRIX_PASSWORD",
            self.password_file.as_deref(),
            self.password.as_deref(),
        )
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
    /// The answer model's files (`policybot model install` puts them here).
    /// `POLICYBOT_MODEL_DIR` overrides the config: CI and tests share one copy.
    pub model_dir: PathBuf,
    pub thesaurus: Option<PathBuf>,
    pub default_school: Option<String>,
    pub schools: Vec<School>,
    /// The SQLite file holding the audit log.
    pub store: PathBuf,
    /// After this many days a question's text is redacted from the audit log
    /// (its hash stays, so the chain still verifies).
    pub retention_days: u32,
    /// How often `serve` looks for changed policy files (0: never; the
    /// service then uses the policies it started with).
    pub watch_seconds: u64,
    pub staff: Vec<StaffEntry>,
    pub staff_csv: Option<PathBuf>,
    pub dashboard: Dashboard,
    pub acknowledgements: Acknowledgements,
    pub matrix: Option<Matrix>,
    pub email: Option<Email>,
}

/// Names the answer model's directory, over the config's `model_dir`.
pub const MODEL_DIR_ENV: &str = "POLICYBOT_MODEL_DIR";

/// Policy folders are looked at every 2 s: a saved file is live within
/// seconds, and listing a folder of a few dozen files costs nothing.
pub const DEFAULT_WATCH_SECONDS: u64 = 2;

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
        // A thesaurus named but not there would leave the questions it helps
        // unanswered, with nothing said: every command refuses it instead.
        if let Some(given) = &raw.thesaurus {
            let file = resolve(given);
            let problem = match std::fs::metadata(&file) {
                Ok(m) if m.is_file() => None,
                Ok(_) => Some("not a file".to_owned()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(problem) = problem {
                bail!(
                    "{}: thesaurus = \"{}\": cannot read {}: {problem} (remove the setting to use the built-in thesaurus)",
                    path.display(),
                    given.display(),
                    file.display()
                );
            }
        }
        let config = Config {
            index_dir: resolve(raw.index_dir.as_deref().unwrap_or(Path::new("../var/index"))),
            model_dir: model_dir(
                std::env::var_os(MODEL_DIR_ENV),
                resolve(raw.model_dir.as_deref().unwrap_or(Path::new("../var/model"))),
            ),
            thesaurus: raw.thesaurus.as_deref().map(resolve),
            default_school: raw.default_school,
            schools,
            store: resolve(raw.store.as_deref().unwrap_or(Path::new("../var/policybot.sqlite3"))),
            retention_days: raw.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            watch_seconds: raw.watch_seconds.unwrap_or(DEFAULT_WATCH_SECONDS),
            staff: raw.staff,
            staff_csv: raw.staff_csv.as_deref().map(resolve),
            dashboard: raw.dashboard,
            acknowledgements: raw.acknowledgements,
            matrix: raw.matrix.map(|mut m| {
                m.state_dir = Some(resolve(m.state_dir.as_deref().unwrap_or(Path::new("../var/matrix"))));
                m.password_file = m.password_file.as_deref().map(resolve);
                m
            }),
            email: raw.email.map(|mut e| {
                e.password_file = e.password_file.as_deref().map(resolve);
                e.ca_file = e.ca_file.as_deref().map(resolve);
                e
            }),
        };
        config
            .acknowledgements
            .schedule()
            .with_context(|| format!("{}: [acknowledgements]", path.display()))?;
        if let Some(e) = &config.email {
            if e.password.is_none()
                && e.password_file.is_none()
                && std::env::var_os("POLICYBOT_EMAIL_PASSWORD").is_none()
            {
                bail!(
                    "{}: [email] needs password or password_file (or POLICYBOT_EMAIL_PASSWORD)",
                    path.display()
                );
            }
            if !e.address.contains('@') {
                bail!(
                    "{}: [email] address '{}' is not an email address",
                    path.display(),
                    e.address
                );
            }
            // Servers end an IDLE after 30 minutes (RFC 2177 asks clients to
            // re-issue it within 29).
            if !(1..=29).contains(&e.idle_minutes) {
                bail!("{}: [email] idle_minutes must be 1 to 29", path.display());
            }
            if e.poll_seconds == 0 || e.replies_per_hour == 0 {
                bail!(
                    "{}: [email] poll_seconds and replies_per_hour must be at least 1",
                    path.display()
                );
            }
        }
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

    /// The thesaurus: the configured file, else the built-in one.
    pub fn thesaurus(&self) -> Result<Thesaurus> {
        thesaurus(self.thesaurus.as_deref(), "the thesaurus setting")
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

/// `POLICYBOT_MODEL_DIR` when set (as given: relative to where the command
/// runs), else the config's `model_dir`, resolved.
fn model_dir(env: Option<std::ffi::OsString>, configured: PathBuf) -> PathBuf {
    env.filter(|d| !d.is_empty()).map_or(configured, PathBuf::from)
}

/// The thesaurus in the file at `path` (given by `setting`, for messages),
/// else the built-in one.
pub fn thesaurus(path: Option<&Path>, setting: &str) -> Result<Thesaurus> {
    let Some(path) = path else {
        return Thesaurus::from_toml(DEFAULT_THESAURUS).context("the built-in thesaurus");
    };
    let named = || format!("thesaurus {} ({setting})", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", named()))?;
    Thesaurus::from_toml(&text).with_context(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(toml: &str) -> Dashboard {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn cookies_are_secure_when_staff_reach_the_dashboard_over_https() {
        assert!(!dashboard("").secure_cookies());
        assert!(!dashboard("public_url = \"http://dash.example\"").secure_cookies());
        assert!(dashboard("public_url = \"https://dash.example\"").secure_cookies());
        assert!(dashboard("public_url = \"HTTPS://dash.example/\"").secure_cookies());
        // Said outright, either way, it wins.
        assert!(!dashboard("public_url = \"https://dash.example\"\nsecure_cookies = false").secure_cookies());
        assert!(dashboard("secure_cookies = true").secure_cookies());
    }

    #[test]
    fn the_shipped_config_names_the_shipped_thesaurus() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/policybot.toml");
        let config = Config::load(&shipped).unwrap();
        let named = config.thesaurus.as_deref().expect("the example names its thesaurus");
        assert_eq!(std::fs::read_to_string(named).unwrap(), DEFAULT_THESAURUS);
        config.thesaurus().unwrap();
    }

    #[test]
    fn the_model_dir_is_beside_the_other_var_paths_unless_the_environment_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("policybot.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "[[school]]\nid = \"s\"\npolicies = \"p\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        let configured = dir.path().join("config").join("../var/model");
        if std::env::var_os(MODEL_DIR_ENV).is_none() {
            assert_eq!(config.model_dir, configured);
        }
        assert_eq!(model_dir(None, configured.clone()), configured);
        assert_eq!(model_dir(Some("".into()), configured.clone()), configured);
        assert_eq!(
            model_dir(Some("/srv/model".into()), configured),
            PathBuf::from("/srv/model")
        );
    }

    #[test]
    fn a_missing_thesaurus_is_refused_when_the_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policybot.toml");
        std::fs::write(
            &path,
            "thesaurus = \"words.toml\"\n[[school]]\nid = \"s\"\npolicies = \"p\"\n",
        )
        .unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("thesaurus = \"words.toml\""), "{err}");
        assert!(
            err.contains(&dir.path().join("words.toml").display().to_string()),
            "{err}"
        );
        std::fs::write(dir.path().join("words.toml"), "[[group]]\nterms = [\"a\", \"b\"]\n").unwrap();
        Config::load(&path).unwrap().thesaurus().unwrap();
    }
}
