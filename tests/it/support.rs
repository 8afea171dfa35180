//! Shared helpers: run the real binary, build a throwaway config and policy
//! folders in a temp dir, and compare text the way the policy reads.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_policybot");

/// The version line of the shipped example policy, as citations must show it.
/// One member of staff of the example school, as `[[staff]]` TOML.
pub const STAFF: &str = r#"
[[staff]]
name = "Amira Shah"
school = "oakfield"
role = "Year 4 teacher"
matrix = "@amira:oakfield.example"
email = ["a.shah@oakfield.example"]
"#;

pub const EXAMPLE_VERSION: &str = "version 2026-09-01";

/// A question near clauses of the example policy but not squarely on one:
/// the engine suggests the closest (mode `suggest`), two of them items of a
/// "Don't" list. The bot's unit tests use the same one
/// (`service::tests::SUGGEST_QUESTION`); if a change to the engine answers
/// or declines it, pick another with `policybot ask "…" --json`.
pub const SUGGEST_QUESTION: &str = "Can I text a parent from my own phone about a lost coat?";

/// The repository root (the workspace).
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped example school's policy folder.
pub fn example_policies() -> PathBuf {
    repo_dir().join("policies").join("oakfield")
}

/// The shipped example policy file.
pub fn example_policy() -> PathBuf {
    example_policies().join("ict-acceptable-use.txt")
}

/// The example policy's text, whitespace-normalised.
pub fn example_policy_text() -> String {
    normalize_ws(&read(&example_policy()))
}

/// `../shared` next to the repository (evaluation set and corpus), or
/// `$POLICYBOT_SHARED` (a git worktree further down has no `../shared`).
/// Missing is a failure in CI, where the eval must run, and a skip elsewhere.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POLICYBOT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("..").join("shared"));
    if dir.join("eval").join("dev.yaml").is_file() && dir.join("corpus").is_dir() {
        return Some(dir);
    }
    if in_ci() {
        panic!(
            "{} (eval/dev.yaml and corpus/) is missing; CI must run the eval test",
            dir.display()
        );
    }
    eprintln!("note: {} not found; skipping the eval test", dir.display());
    None
}

/// Every run of whitespace to one space, trimmed: wrapped lines in a policy
/// file compare equal to the same clause quoted on one line.
pub fn normalize_ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The passages a reply quotes “like this”.
pub fn quoted_passages(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = reply;
    while let Some(start) = rest.find('“') {
        let after = &rest[start + '“'.len_utf8()..];
        let Some(end) = after.find('”') else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + '”'.len_utf8()..];
    }
    out
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A TOML basic string holding `text`.
/// Waits (polling) until `done`, failing the test after `timeout`.
pub fn wait_until(timeout: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One finished run of the binary.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    /// Failed cleanly: a non-zero exit code (not killed by a signal) and no panic.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a non-zero exit: {self}"
        );
        self.assert_no_panic();
        self
    }

    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "the binary panicked: {self}");
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// The stderr lines that name `file` (its file name) and contain any of
    /// `words` (case-insensitive): the message a user is told to read.
    #[track_caller]
    pub fn assert_reports(&self, file: &Path, words: &[&str]) -> String {
        let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
        let line = self.stderr.lines().find(|l| {
            let lower = l.to_lowercase();
            l.contains(&name) && words.iter().any(|w| lower.contains(&w.to_lowercase()))
        });
        match line {
            Some(l) => l.to_owned(),
            None => panic!("expected a message naming {name} and saying one of {words:?}: {self}"),
        }
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, words: &[&str]) -> &Self {
        let lower = self.stderr.to_lowercase();
        for w in words {
            assert!(
                lower.contains(&w.to_lowercase()),
                "expected stderr to mention {w:?}: {self}"
            );
        }
        self
    }
}

/// Runs the binary in `cwd` with a clean environment (no config or log
/// overrides, no backtraces).
pub fn run_in<I, S>(cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once("policybot".to_owned())
        .chain(args.iter().map(|a| {
            let a = a.to_string_lossy();
            if a.chars().count() > 80 {
                format!("{}…", a.chars().take(80).collect::<String>())
            } else {
                a.into()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(BIN)
        .args(&args)
        .current_dir(cwd)
        .env("POLICYBOT_MODEL_DIR", model_dir())
        .env_remove("POLICYBOT_CONFIG")
        .env_remove("POLICYBOT_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {BIN}: {e}"));
    Run {
        command,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A temp dir holding a config (`policybot.toml`), its index and any policy
/// folders a test makes. Removed when dropped.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// An empty sandbox; call [`Sandbox::write_config`] before running commands that need one.
    pub fn empty() -> Self {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("policybot-it-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A sandbox whose config has the given schools (id, policy folder).
    pub fn with_schools(schools: &[(&str, &Path)]) -> Self {
        let sandbox = Sandbox::empty();
        sandbox.write_config(schools);
        sandbox
    }

    /// A sandbox whose one school is the shipped example school.
    pub fn example() -> Self {
        Sandbox::with_schools(&[("oakfield", &example_policies())])
    }

    /// A sandbox whose one school ("school") has its policies in a fresh
    /// folder holding a copy of the example policy as `good.txt`.
    pub fn with_copied_example() -> (Self, PathBuf) {
        let sandbox = Sandbox::empty();
        let dir = sandbox.policy_dir("policies");
        copy(&example_policy(), &dir.join("good.txt"));
        sandbox.write_config(&[("school", &dir)]);
        (sandbox, dir)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("policybot.toml")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.path().join("index")
    }

    /// A new, empty folder inside the sandbox.
    pub fn policy_dir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        dir
    }

    /// The audit store inside the sandbox.
    pub fn store_path(&self) -> PathBuf {
        self.path().join("store.sqlite3")
    }

    /// `policybot user add ARGS…` with `password` and a newline on standard
    /// input. The child may exit without reading it (a refused name or role).
    pub fn user_add(&self, args: &[&str], password: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(["--config", self.config_path().to_str().unwrap(), "user", "add"])
            .args(args)
            .current_dir(self.path())
            .env("POLICYBOT_MODEL_DIR", model_dir())
            .env_remove("POLICYBOT_CONFIG")
            .env_remove("POLICYBOT_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting policybot user add");
        let _ = writeln!(child.stdin.take().unwrap(), "{password}");
        child.wait_with_output().unwrap()
    }

    /// A dashboard account, made with `policybot user add` (password on
    /// standard input).
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let out = self.user_add(&[name, "--role", role], password);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with(&format!("added {name} ({role}")),
            "user add: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes the config: the index and store inside the sandbox, one
    /// `[[school]]` per entry, then `extra` TOML (staff entries…).
    pub fn write_config(&self, schools: &[(&str, &Path)]) {
        self.write_config_with(schools, "");
    }

    pub fn write_config_with(&self, schools: &[(&str, &Path)], extra: &str) {
        let mut toml = format!(
            "index_dir = {}\nstore = {}\n",
            toml_string(&self.index_dir().to_string_lossy()),
            toml_string(&self.store_path().to_string_lossy())
        );
        for (id, policies) in schools {
            toml.push_str(&format!(
                "\n[[school]]\nid = {}\npolicies = {}\n",
                toml_string(id),
                toml_string(&policies.to_string_lossy())
            ));
        }
        toml.push_str(extra);
        write(&self.config_path(), toml);
    }

    /// Runs `policybot --config <sandbox config> ARGS…` inside the sandbox.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let config = self.config_path();
        let mut all: Vec<std::ffi::OsString> = vec!["--config".into(), config.into_os_string()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        run_in(self.path(), all)
    }

    /// `ask QUESTION --json`, which must succeed, parsed.
    #[track_caller]
    pub fn ask_json(&self, question: &str) -> Value {
        self.run(["ask", question, "--json"]).assert_success().json()
    }

    /// `index --json`, which must succeed, parsed.
    #[track_caller]
    pub fn index_json(&self) -> Value {
        self.run(["index", "--json"]).assert_success().json()
    }
}

pub fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

/// `policybot clauses FILE --json`, which must succeed, parsed.
#[track_caller]
pub fn clauses_json(file: &Path) -> Value {
    let cwd = file.parent().expect("a folder");
    run_in(cwd, [OsStr::new("clauses"), file.as_os_str(), OsStr::new("--json")])
        .assert_success()
        .json()
}

/// The `clauses` array of a `clauses --json` document.
#[track_caller]
pub fn clause_list(policy: &Value) -> &Vec<Value> {
    policy["clauses"]
        .as_array()
        .unwrap_or_else(|| panic!("no clauses array in {policy}"))
}

/// A string field of a JSON object.
#[track_caller]
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {value}"))
}

/// `policybot serve --bind 127.0.0.1:0` on a sandbox's config. Its stdout
/// lines are collected so a test can wait for one ("matrix connected");
/// killed when dropped.
pub struct Serve {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Serve {
    /// Starts the service and waits for its dashboard to listen.
    pub fn start(s: &Sandbox) -> Serve {
        Serve::start_with_env(s, &[])
    }

    /// Starts the service with extra environment variables.
    pub fn start_with_env(s: &Sandbox, envs: &[(&str, &str)]) -> Serve {
        use std::io::BufRead;
        let log = s.path().join(format!("serve-{}.log", unique()));
        let mut child = Command::new(BIN)
            .args(["--config", s.config_path().to_str().unwrap()])
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(s.path())
            .env("POLICYBOT_MODEL_DIR", model_dir())
            .env_remove("POLICYBOT_CONFIG")
            .env("POLICYBOT_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("serve log"))
            .spawn()
            .expect("starting policybot serve");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let mut serve = Serve {
            child,
            lines,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let ready = serve.wait_for_line("policybot: dashboard on http://", std::time::Duration::from_secs(60));
        serve.addr = ready
            .strip_prefix("policybot: dashboard on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("policybot serve reported no address: {ready:?}"));
        serve
    }

    /// The first line starting with `prefix`, waiting up to `timeout`.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: std::time::Duration) -> String {
        let started = std::time::Instant::now();
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.starts_with(prefix)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "policybot serve exited ({status}) before printing {prefix:?}\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "policybot serve did not print {prefix:?} within {timeout:?}\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the service outright (SIGKILL): a crash, with no chance to
    /// finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("killing policybot serve");
        self.child.wait().expect("waiting for policybot serve");
    }

    /// Waits up to `timeout` for the service to exit by itself.
    pub fn wait_exit(mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for policybot serve") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "policybot serve did not exit within {timeout:?}\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Asks the service to stop (SIGTERM) and waits up to `timeout` for it
    /// to exit.
    pub fn stop_within(self, timeout: std::time::Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the child this struct started and still owns.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.wait_exit(timeout)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number unique within this test process, for file names.
pub fn unique() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Whether the suite runs under CI, where a test that needs a server or a
/// browser must fail rather than skip when it is missing.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Runs `scripts/NAME ARGS…` (the project's own server recipes) and returns
/// what it printed, or why it failed.
pub fn run_script(name: &str, args: &[&str], envs: &[(&str, &OsStr)]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(repo_dir().join("scripts").join(name))
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running scripts/{name}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "scripts/{name} {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One HTTP/1.1 request to the dashboard; the raw response. The request is
/// written from another thread, so a response sent before the server read
/// the whole body (413) is heard.
pub fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting to the dashboard");
    let mut writer = stream.try_clone().unwrap();
    let request = request.to_owned();
    let written = std::thread::spawn(move || writer.write_all(request.as_bytes()));
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = written.join();
    String::from_utf8_lossy(&out).into_owned()
}

/// The sign-in page's pre-session cookie (`name=value`) and the CSRF token
/// its form carries, as a browser gets them before signing in.
pub fn login_form(addr: &str) -> (String, String) {
    let page = http(
        addr,
        &format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let cookie = set_cookie(&page, "policybot_login").unwrap_or_else(|| panic!("no sign-in cookie: {page}"));
    let token = page
        .split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in the sign-in form: {page}"))
        .to_owned();
    (cookie, token)
}

/// The `name=value` of the Set-Cookie for `name` in a raw response.
pub fn set_cookie(response: &str, name: &str) -> Option<String> {
    response
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .filter_map(|c| c.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Signs in to the dashboard at `addr` as a browser does (the sign-in page
/// first, for its CSRF token); the session cookie (`name=value`).
pub fn sign_in(addr: &str, name: &str, password: &str) -> String {
    let (cookie, token) = login_form(addr);
    let body = format!("csrf={token}&name={name}&password={}", password.replace(' ', "+"));
    let login = http(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    set_cookie(&login, "policybot_session").unwrap_or_else(|| panic!("no session cookie: {login}"))
}

/// A dashboard page as a signed-in user sees it (the raw response).
pub fn get_page(addr: &str, cookie: &str, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

/// `policybot eval --json` on the shared dev questions over `corpus`.
pub fn eval_report(shared: &Path, corpus: &Path) -> Value {
    let questions = shared.join("eval").join("dev.yaml");
    let run = run_in(
        shared,
        [
            "eval".as_ref(),
            questions.as_os_str(),
            "--corpus".as_ref(),
            corpus.as_os_str(),
            "--json".as_ref(),
        ],
    );
    run.assert_success();
    run.json()
}

/// The acknowledgement ledger as "staff-id how", oldest first.
pub fn acknowledged(s: &Sandbox) -> Vec<String> {
    let ledger = s.run(["acks", "--json"]).assert_success().json();
    ledger
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| format!("{} {}", str_field(a, "staff"), str_field(a, "how")))
        .collect()
}

/// The answer model every `policybot` the tests run uses, so that no test
/// sandbox downloads its own: `POLICYBOT_MODEL_DIR` (CI unpacks it there), or
/// else `target/model`, installed once with `policybot model install` (pip)
/// on a fresh machine.
pub fn model_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("POLICYBOT_MODEL_DIR") {
            return PathBuf::from(dir);
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = repo.join("target").join("model");
        let status = Command::new(BIN)
            .args(["model", "install"])
            .current_dir(&repo)
            .env("POLICYBOT_MODEL_DIR", &dir)
            .status()
            .unwrap_or_else(|e| panic!("running {BIN} model install: {e}"));
        assert!(
            status.success(),
            "policybot model install into {} failed",
            dir.display()
        );
        dir
    })
}
