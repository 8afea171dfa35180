//! A throwaway Synapse homeserver for the Matrix tests, started with the
//! project's own `scripts/synapse.sh` (PyPI `matrix-synapse`, SQLite, on
//! 127.0.0.1). The venv is shared between runs (`SYNAPSE_VENV`, else
//! `target/synapse-venv`): installing takes ~40 s, a start ~3 s.

use std::path::PathBuf;

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{free_port, in_ci, repo_dir, run_script};

pub struct Synapse {
    dir: TempDir,
    pub port: u16,
    pub url: String,
}

impl Synapse {
    /// A running Synapse; `None` (with a note) when it cannot start outside
    /// CI. Under CI it must start: the Matrix tests never skip there.
    pub fn start() -> Option<Synapse> {
        let dir = tempfile::Builder::new()
            .prefix("policybot-synapse-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let synapse = Synapse {
            dir,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        match synapse.script(&["start", &synapse.dir_arg(), &port.to_string()]) {
            Ok(_) => Some(synapse),
            Err(e) if in_ci() => panic!("Synapse did not start; CI must run the Matrix tests:\n{e}"),
            Err(e) => {
                eprintln!("note: skipping a Matrix test, Synapse did not start:\n{e}");
                None
            }
        }
    }

    /// Registers a user through the shared-secret admin API.
    pub fn register(&self, user: &str, password: &str) -> Value {
        self.register_with(&[user, password])
    }

    /// Registers a server admin, for admin API calls.
    pub fn register_admin(&self, user: &str, password: &str) -> Value {
        self.register_with(&[user, password, "admin"])
    }

    fn register_with(&self, details: &[&str]) -> Value {
        let (dir, port) = (self.dir_arg(), self.port.to_string());
        let args: Vec<&str> = ["register", dir.as_str(), port.as_str()]
            .into_iter()
            .chain(details.iter().copied())
            .collect();
        let out = self
            .script(&args)
            .unwrap_or_else(|e| panic!("registering {}: {e}", details[0]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("register {} printed {out:?}: {e}", details[0]))
    }

    /// Registers plain users in one go (one process, not one per user).
    pub fn register_many(&self, password: &str, users: &[String]) {
        let (dir, port) = (self.dir_arg(), self.port.to_string());
        let args: Vec<&str> = ["register-many", dir.as_str(), port.as_str(), password]
            .into_iter()
            .chain(users.iter().map(String::as_str))
            .collect();
        self.script(&args)
            .unwrap_or_else(|e| panic!("registering {} users: {e}", users.len()));
    }

    /// Synapse's own database, to check what it holds.
    pub fn database(&self) -> PathBuf {
        self.dir.path().join("homeserver.db")
    }

    pub fn stop(&self) {
        self.script(&["stop", &self.dir_arg()]).expect("stopping Synapse");
    }

    /// Starts it again on the same port, with the same database.
    pub fn restart(&self) {
        self.script(&["start", &self.dir_arg(), &self.port.to_string()])
            .unwrap_or_else(|e| panic!("restarting Synapse: {e}"));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("homeserver.log")).unwrap_or_default()
    }

    fn dir_arg(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    fn script(&self, args: &[&str]) -> Result<String, String> {
        let venv = std::env::var_os("SYNAPSE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_dir().join("target").join("synapse-venv"));
        run_script("synapse.sh", args, &[("SYNAPSE_VENV", venv.as_os_str())])
            .map_err(|e| format!("{e}\n{}", self.log()))
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.script(&["stop", &self.dir_arg()]);
    }
}
