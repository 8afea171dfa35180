//! Dashboard users and sessions. Passwords are argon2id hashes; session
//! cookies are 256 random bits of which only a SHA-256 is stored, so a copy
//! of the database does not let anyone sign in.

use anyhow::{Context, Result, bail};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::Store;
use super::audit::{now, sha256_hex};

/// Who may use the dashboard.
pub const ROLES: &[&str] = &["esafety-lead", "head", "inspector"];

/// How long a session lasts without signing in again.
pub const SESSION_HOURS: i64 = 8;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: String,
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
    pub fn add_user(&self, name: &str, role: &str, school: Option<&str>, password: &str) -> Result<User> {
        if !ROLES.contains(&role) {
            bail!("unknown role '{role}' (one of: {})", ROLES.join(", "));
        }
        if password.chars().count() < 10 {
            bail!("the password must be at least 10 characters");
        }
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
            role: role.to_owned(),
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
            .add_user("hannah", "esafety-lead", None, "correct horse battery")
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
        assert!(store.add_user("x", "janitor", None, "long enough pw").is_err());
        assert!(store.add_user("y", "head", None, "short").is_err());
    }
}
