//! Connecting to the mailbox: TCP, then TLS from the start or after
//! STARTTLS (rustls, the public roots plus an optional school CA), then
//! LOGIN. Everything after that is plain `async-imap`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_imap::{Client, Session};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Email, MailServer, TlsMode};

/// A connection to the IMAP server, with or without TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Stream for T {}

pub type Imap = Session<Box<dyn Stream>>;

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The TLS client settings: the public web roots, plus the CA certificates
/// in `[email] ca_file` (a school's own CA, or a test CA).
pub fn tls_connector(config: &Email) -> Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = &config.ca_file {
        let pem = std::fs::read(file).with_context(|| format!("reading CA file {}", file.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.with_context(|| format!("CA file {}", file.display()))?;
            roots.add(cert).with_context(|| format!("CA file {}", file.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls)))
}

/// Connects and logs in.
pub async fn connect(config: &Email, password: &str, tls: &TlsConnector) -> Result<Imap> {
    let server = &config.imap;
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let client = open(server, tls).await?;
        client
            .login(config.username(), password)
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("logging in to {}:{} as {}", server.host, server.port, config.username()))
    })
    .await
    .with_context(|| format!("connecting to {}:{} timed out", server.host, server.port))?
}

async fn open(server: &MailServer, tls: &TlsConnector) -> Result<Client<Box<dyn Stream>>> {
    let tcp = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .with_context(|| format!("connecting to IMAP {}:{}", server.host, server.port))?;
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from(server.host.clone()).with_context(|| format!("IMAP host '{}'", server.host))?;
    match server.tls {
        TlsMode::Implicit => {
            let stream = tls.connect(name, tcp).await.context("IMAP TLS handshake")?;
            greeted(Client::new(Box::new(stream) as Box<dyn Stream>)).await
        }
        TlsMode::Starttls => {
            let mut plain = greeted(Client::new(tcp)).await?;
            plain
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .context("the IMAP server refused STARTTLS")?;
            let stream = tls
                .connect(name, plain.into_inner())
                .await
                .context("IMAP TLS handshake")?;
            // No second greeting after STARTTLS.
            Ok(Client::new(Box::new(stream) as Box<dyn Stream>))
        }
        TlsMode::None => greeted(Client::new(Box::new(tcp) as Box<dyn Stream>)).await,
    }
}

/// Reads the server's greeting, which must come before any command.
async fn greeted<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(mut client: Client<T>) -> Result<Client<T>> {
    match client.read_response().await.context("reading the IMAP greeting")? {
        Some(_) => Ok(client),
        None => bail!("the IMAP server closed the connection before greeting"),
    }
}
