//! Dashboard users and sessions. Passwords are argon2id hashes; session
//! cookies are 256 random bits of which only a SHA-256 is stored, so a copy
//! of the database does not let anyone sign in.

use anyhow::{Context, Result, bail};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::Store;
use super::audit::{now, sha256_hex};

/// Who may use the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Role {
    EsafetyLead,
    Head,
    Inspector,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::EsafetyLead, Role::Head, Role::Inspector];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::EsafetyLead => "esafety-lead",
            Role::Head => "head",
            Role::Inspector => "inspector",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown role '{text}'").into()))
    }
}

/// The longest user name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest password, in bytes: hashing is linear in its length, so a
/// sign-in must not be able to hand argon2 a megabyte.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Whether `name` can be a user's name: not empty, at most
/// [`MAX_NAME_CHARS`], no control characters and no spaces at either end
/// (a name that prints the same as another must not be a second account).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the user name is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        bail!("the user name is longer than {MAX_NAME_CHARS} characters");
    }
    if name.chars().any(char::is_control) {
        bail!("the user name contains a control character");
    }
    if name.trim() != name {
        bail!("the user name starts or ends with a space");
    }
    Ok(())
}

/// Whether `password` is acceptable for a new account.
pub fn check_password_strength(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!("the password must be at most {MAX_PASSWORD_BYTES} bytes");
    }
    Ok(())
}

/// How long a session lasts without signing in again.
pub const SESSION_HOURS: i64 = 8;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// `None`: every school.
    pub school: Option<String>,
}

/// A signed-in session: the user and the token forms must echo back.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

/// 256 random bits as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    pub fn add_user(&self, name: &str, role: Role, school: Option<&str>, password: &str) -> Result<User> {
        check_name(name)?;
        check_password_strength(password)?;
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
            .to_string();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO users (name, role, school, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, role, school, hash, now()],
        )
        .with_context(|| format!("adding user '{name}' (does it exist already?)"))?;
        Ok(User {
            id: conn.last_insert_rowid(),
            name: name.to_owned(),
            role,
            school: school.map(str::to_owned),
        })
    }

    /// The user, if the name and password match.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let row: Option<(User, String)> = self
            .conn()
            .query_row(
                "SELECT id, name, role, school, password_hash FROM users WHERE name = ?1",
                params![name],
                |r| {
                    Ok((
                        User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            role: r.get(2)?,
                            school: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((user, hash)) = row else {
            // Spend the same time as a real check, so names cannot be probed.
            let _ = Argon2::default().hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng));
            return Ok(None);
        };
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            .then_some(user))
    }

    /// Starts a session; returns the cookie value.
    pub fn create_session(&self, user: &User) -> Result<String> {
        let token = random_token();
        let expires = OffsetDateTime::now_utc() + time::Duration::hours(SESSION_HOURS);
        let conn = self.conn();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", params![now()])?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                sha256_hex(&token),
                user.id,
                random_token(),
                now(),
                super::audit::format_time(expires)
            ],
        )?;
        Ok(token)
    }

    pub fn session(&self, token: &str) -> Result<Option<Session>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.id, u.name, u.role, u.school, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                params![sha256_hex(token), now()],
                |r| {
                    Ok(Session {
                        user: User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            role: r.get(2)?,
                            school: r.get(3)?,
                        },
                        csrf: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn end_session(&self, token: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE token_hash = ?1", params![sha256_hex(token)])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_sessions() {
        let store = Store::in_memory().unwrap();
        let user = store
            .add_user("hannah", Role::EsafetyLead, None, "correct horse battery")
            .unwrap();
        assert!(store.check_password("hannah", "wrong password!").unwrap().is_none());
        assert!(
            store
                .check_password("nobody", "correct horse battery")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .check_password("hannah", "correct horse battery")
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        let token = store.create_session(&user).unwrap();
        let session = store.session(&token).unwrap().unwrap();
        assert_eq!(session.user.name, "hannah");
        assert_eq!(session.csrf.len(), 64);
        assert!(store.session("forged").unwrap().is_none());
        store.end_session(&token).unwrap();
        assert!(store.session(&token).unwrap().is_none());
        assert!(store.add_user("y", Role::Head, None, "short").is_err());
        assert!(store.add_user("", Role::Head, None, "long enough pw").is_err());
        assert_eq!(store.session(&token).unwrap().map(|s| s.user.role), None);
        let token = store.create_session(&user).unwrap();
        assert_eq!(store.session(&token).unwrap().unwrap().user.role, Role::EsafetyLead);
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_are_bounded_printable_and_trimmed() {
        assert!(check_name("hannah").is_ok());
        assert!(check_name("Hannah Price").is_ok());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        for bad in ["", " hannah", "hannah ", "han\nnah", "han\u{7f}nah", "\t"] {
            assert!(check_name(bad).is_err(), "{bad:?} is refused");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_password_strength(&"p".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_password_strength("ten chars!").is_ok());
    }
}
