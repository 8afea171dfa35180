//! Throwaway mail servers for the email tests, started with the project's
//! own `scripts/mail.sh`: Postfix (SMTP) delivering to Dovecot (IMAP with
//! IDLE) for `example.test`, from Debian's packages, on loopback ports, with a
//! test CA and a certificate signed by it for STARTTLS and implicit TLS.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{free_port, in_ci, run_script};

pub const DOMAIN: &str = "example.test";

pub struct MailServer {
    dir: TempDir,
    pub imap: u16,
    pub imaps: u16,
    pub smtp: u16,
    pub smtps: u16,
    /// Dovecot does not offer IDLE (clients must poll).
    no_idle: bool,
}

impl MailServer {
    /// Running servers; `None` (with a note) when they cannot start outside
    /// CI. Under CI they must start: the email tests never skip there.
    pub fn start() -> Option<MailServer> {
        MailServer::start_with(false)
    }

    /// Running servers whose IMAP server does not offer IDLE.
    pub fn without_idle() -> Option<MailServer> {
        MailServer::start_with(true)
    }

    fn start_with(no_idle: bool) -> Option<MailServer> {
        let dir = tempfile::Builder::new()
            .prefix("policybot-mail-")
            .tempdir()
            .expect("temp dir");
        // Dovecot and Postfix run as their own users and must reach it.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let server = MailServer {
            dir,
            imap: free_port(),
            imaps: free_port(),
            smtp: free_port(),
            smtps: free_port(),
            no_idle,
        };
        let started = server
            .script(&["certs", &server.dir_arg()])
            .and_then(|_| server.start_servers());
        match started {
            Ok(_) => Some(server),
            Err(e) if in_ci() => panic!("the mail servers did not start; CI must run the email tests:\n{e}"),
            Err(e) => {
                eprintln!("note: skipping an email test, the mail servers did not start:\n{e}");
                None
            }
        }
    }

    fn start_servers(&self) -> Result<String, String> {
        let ports = [self.imap, self.smtp, self.imaps, self.smtps].map(|p| p.to_string());
        let dir = self.dir_arg();
        let mut args = vec!["start", dir.as_str()];
        args.extend(ports.iter().map(String::as_str));
        let no_idle = if self.no_idle { "1" } else { "" };
        run_script("mail.sh", &args, &[("MAIL_NO_IDLE", std::ffi::OsStr::new(no_idle))])
    }

    /// A mailbox `user@example.test`.
    pub fn add_user(&self, user: &str, password: &str) {
        self.script(&["adduser", &self.dir_arg(), user, password])
            .unwrap_or_else(|e| panic!("adding {user}: {e}"));
    }

    pub fn stop(&self) {
        self.script(&["stop", &self.dir_arg()])
            .expect("stopping the mail servers");
    }

    /// Starts both again on the same ports, with the same mail.
    pub fn restart(&self) {
        self.start_servers()
            .unwrap_or_else(|e| panic!("restarting the mail servers: {e}"));
    }

    /// The test CA that signed the servers' certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    /// Every mail in `user`'s inbox, raw.
    pub fn mailbox(&self, user: &str) -> Vec<Vec<u8>> {
        self.folder(user, "INBOX")
    }

    /// Every mail in one of `user`'s folders, raw.
    pub fn folder(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let mut maildir = self.dir.path().join("mail").join(DOMAIN).join(user).join("Maildir");
        if folder != "INBOX" {
            maildir = maildir.join(format!(".{folder}"));
        }
        let mut mails = Vec::new();
        for sub in ["new", "cur"] {
            mails.extend(files_in(&maildir.join(sub)));
        }
        mails
    }

    /// Hands a mail to Postfix by SMTP, as any client on this machine could:
    /// `from` is the envelope sender ("" for a bounce's null sender).
    pub fn submit(&self, from: &str, to: &str, mail: &[u8]) {
        submit(self.smtp, from, to, mail)
            .unwrap_or_else(|e| panic!("submitting a mail from {from:?}: {e}\n{}", self.log()));
    }

    pub fn log(&self) -> String {
        ["dovecot.log", "postfix.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join("log").join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn dir_arg(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    fn script(&self, args: &[&str]) -> Result<String, String> {
        run_script("mail.sh", args, &[])
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.script(&["stop", &self.dir_arg()]);
    }
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    // A file may be renamed from new/ to cur/ as it is read: skip it then.
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// A minimal SMTP client: enough to hand Postfix any bytes at all, which a
/// mail library would refuse to build (bounces, spoofs, binary, bad charsets).
fn submit(port: u16, from: &str, to: &str, mail: &[u8]) -> std::io::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut expect = |code: &str| -> std::io::Result<()> {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            if !line.starts_with(code) {
                return Err(std::io::Error::other(format!("expected {code}, got {line:?}")));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect("220")?;
    for (command, code) in [
        ("EHLO test.example.test".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes())?;
        expect(code)?;
    }
    // Dot-stuffing, and CRLF line ends as SMTP wants them.
    let mut body = Vec::with_capacity(mail.len() + 64);
    for line in mail.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            body.push(b'.');
        }
        body.extend_from_slice(line);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    writer.write_all(&body)?;
    expect("250")?;
    writer.write_all(b"QUIT\r\n")?;
    Ok(())
}
