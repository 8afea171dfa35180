//! Logging the bot in, once: the first run logs in with the password (or the
//! configured access token) and saves the session; every later run restores
//! it, so the bot keeps one device, and the SQLite crypto store beside it
//! keeps the keys that read earlier encrypted messages.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::{Client, SessionMeta, SessionTokens};

use crate::config::Matrix;

const SESSION_FILE: &str = "session.json";

/// How long one request to the homeserver may take. The SDK retries
/// transient failures itself, honouring the server's `retry_after_ms` when
/// it rate-limits (`M_LIMIT_EXCEEDED`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_RETRIES: usize = 5;

pub async fn connect(config: &Matrix, state_dir: &Path) -> Result<Client> {
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let client = Client::builder()
        .homeserver_url(&config.homeserver)
        .sqlite_store(state_dir.join("sdk"), config.store_passphrase.as_deref())
        .request_config(
            RequestConfig::new()
                .timeout(REQUEST_TIMEOUT)
                .retry_limit(REQUEST_RETRIES),
        )
        .build()
        .await
        .with_context(|| format!("setting up the Matrix client for {}", config.homeserver))?;

    let session_file = state_dir.join(SESSION_FILE);
    let wanted: OwnedUserId = config
        .user
        .as_str()
        .try_into()
        .with_context(|| format!("[matrix] user '{}' is not a Matrix user id (@name:server)", config.user))?;
    if session_file.exists() {
        let text =
            std::fs::read_to_string(&session_file).with_context(|| format!("reading {}", session_file.display()))?;
        let session: MatrixSession =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", session_file.display()))?;
        if session.meta.user_id != wanted {
            bail!(
                "{} holds a session for {}, but the config names {wanted}: remove the state directory to switch accounts",
                session_file.display(),
                session.meta.user_id
            );
        }
        client
            .restore_session(session)
            .await
            .context("restoring the Matrix session")?;
        tracing::info!(user = %wanted, device = ?client.device_id(), "matrix session restored");
        return Ok(client);
    }

    if let (Some(token), Some(device)) = (&config.access_token, &config.device_id) {
        let session = MatrixSession {
            meta: SessionMeta {
                user_id: wanted.clone(),
                device_id: OwnedDeviceId::from(device.as_str()),
            },
            tokens: SessionTokens {
                access_token: token.clone(),
                refresh_token: None,
            },
        };
        client
            .restore_session(session)
            .await
            .context("using the configured access token")?;
    } else {
        let password = config.password()?.context("[matrix] no password to log in with")?;
        client
            .matrix_auth()
            .login_username(&wanted, &password)
            .initial_device_display_name(&config.device_name)
            .send()
            .await
            .with_context(|| format!("logging in to {} as {wanted}", config.homeserver))?;
    }
    let session = client.matrix_auth().session().context("no session after logging in")?;
    save(&session_file, &session)?;
    tracing::info!(user = %wanted, device = ?client.device_id(), "matrix session saved");
    Ok(client)
}

/// Writes the session readable by its owner only: it holds an access token.
fn save(path: &Path, session: &MatrixSession) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string(session)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
