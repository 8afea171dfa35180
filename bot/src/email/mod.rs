//! The email channel: staff mail the bot's address and get the quoted clause
//! back as a threaded reply.
//!
//! One IMAP session reads the mailbox (IDLE when the server has it, polling
//! when not); each new mail, in UID order, is parsed, screened (robots,
//! lists, loops, spoofs, unknown senders, too many replies), answered through
//! [`crate::conversation::respond`] like a chat message, and the reply goes
//! out by SMTP. Exactly once across crashes rests on this order:
//!
//! 1. the answer is recorded in the audit log under the mail's Message-ID
//!    (a mail seen again gets the recorded exchange back, not a new one);
//! 2. the reply is sent, with a Message-ID derived from the mail's;
//! 3. a `sent` event is recorded once the SMTP server accepted it;
//! 4. only then is the mail flagged or moved, and the mailbox position
//!    (UIDVALIDITY + next UID) saved.
//!
//! A crash after 3 finds the `sent` event and only finishes step 4. A crash
//! between the server's "250 OK" and step 3 would send the reply twice, but
//! every reply is also addressed (Bcc) to the bot itself: on restart, an
//! answer recorded in an earlier run whose reply is not recorded as sent is
//! looked for in the bot's own mailbox first, and its copy there is the
//! proof that the server took it.

mod html;
pub(crate) mod imap;
pub mod mail;
pub(crate) mod outgoing;
pub mod screen;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;
use tokio::sync::watch;

use crate::backoff::{Backoff, sleep_or_stop, stopped};
use crate::commands::Reply;
use crate::config::{AfterReply, Email, UnknownSenders};
use crate::service::{Channel, Service, Who};
use crate::store::audit::{Kind, NewEvent, format_time};
use crate::{conversation, nudge};
use imap::Imap;
use mail::Mail;
use outgoing::Outgoing;
use screen::{Rules, Skip};

/// The store's name for this channel (audit events, mailbox position).
pub const CHANNEL: &str = "email";

/// How long one IMAP command may take before the connection is given up: a
/// server that stops answering is treated like one that went away.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Looking for the copy of a reply an earlier run may have sent: how often,
/// and how far apart (a mail server delivers it within milliseconds).
const COPY_CHECKS: u32 = 10;
const COPY_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// How long handing one reply to the SMTP server may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

struct Mailbot {
    clerk: Arc<Clerk>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
}

/// What to do with one mail.
enum Decision {
    /// Dealt with (now, or in an earlier run): nothing to send.
    Done,
    /// Send this reply; `reason` says why when it is not an answer.
    /// `resumed`: the answer was recorded by an earlier run, which may have
    /// sent the reply before it stopped.
    Reply {
        reply: Box<Outgoing>,
        reason: Option<String>,
        resumed: bool,
    },
}

/// How a pass over the mailbox ended.
enum Pass {
    Finished,
    /// A reply could not be sent for now: the mail stays unprocessed.
    SendFailed,
}

/// The question a raw mail asks, exactly as the channel reads it: the new
/// text of its body (plain part, else HTML with its structure) without
/// quotes, signatures, greetings and sign-offs, else its bare subject.
/// `None` when the bytes are not a mail. Pure, for tests and fuzzing.
pub fn question_of(raw: &[u8]) -> Option<String> {
    Mail::parse(raw).map(|mail| mail.question())
}

/// Runs the email channel until `shutdown` turns true. A mail server that is
/// down or goes away is retried with backoff; nothing here ends the service.
pub async fn run(service: Arc<Service>, config: Email, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let password = config.password()?;
    let tls = imap::tls_connector(&config)?;
    let smtp = outgoing::transport(&config, &password)?;
    let bot = Mailbot {
        clerk: Arc::new(Clerk {
            rules: Rules {
                own_address: config.address.to_lowercase(),
                trusted_authserv_id: config.trusted_authserv_id.as_ref().map(|s| s.to_lowercase()),
            },
            service,
            config,
        }),
        smtp,
    };
    let mut backoff = Backoff::default();
    loop {
        match bot.session(&password, &tls, &mut backoff, &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!("email: {e:#}; reconnecting in {}s", wait.as_secs());
                if backoff.is_first_retry() {
                    // The line scripts and tests can watch for.
                    println!("policybot: email disconnected, retrying");
                }
                if sleep_or_stop(wait, &mut shutdown).await {
                    return Ok(());
                }
            }
        }
    }
}

impl Mailbot {
    /// One IMAP session: connect, then answer new mail until the
    /// connection fails (an error) or the service stops (`Ok`).
    async fn session(
        &self,
        password: &str,
        tls: &tokio_rustls::TlsConnector,
        backoff: &mut Backoff,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let config = &self.clerk.config;
        let mut imap = imap::connect(config, password, tls).await?;
        let capabilities = within(imap.capabilities()).await?;
        let idle = capabilities.has_str("IDLE");
        let can_move = capabilities.has_str("MOVE");
        if config.after_reply == AfterReply::Move {
            // Fails harmlessly when the mailbox exists.
            let _ = within(imap.create(&config.processed_mailbox)).await;
        }
        let mailbox = within(imap.select(&config.mailbox))
            .await
            .with_context(|| format!("opening mailbox {}", config.mailbox))?;
        let validity = mailbox.uid_validity.unwrap_or(0);
        println!(
            "policybot: email connected as {} ({})",
            config.address,
            if idle { "IDLE" } else { "polling" }
        );
        tracing::info!(address = %config.address, idle, "email connected");
        backoff.reset();
        let mut sending = Backoff::default();
        loop {
            let pass = self.pass(&mut imap, validity, can_move, shutdown).await?;
            if *shutdown.borrow() {
                let _ = within(imap.logout()).await;
                return Ok(());
            }
            if let Pass::SendFailed = pass {
                if sleep_or_stop(sending.next_wait(), shutdown).await {
                    return Ok(());
                }
                continue;
            }
            sending.reset();
            if mail_arrived(&imap) {
                continue;
            }
            if idle {
                imap = self.idle(imap, shutdown).await?;
            } else if sleep_or_stop(Duration::from_secs(config.poll_seconds), shutdown).await {
                return Ok(());
            }
        }
    }

    /// Waits in IDLE until the server has news, `idle_minutes` pass, or the
    /// service stops.
    async fn idle(&self, imap: Imap, shutdown: &mut watch::Receiver<bool>) -> Result<Imap> {
        let most = Duration::from_secs(self.clerk.config.idle_minutes * 60);
        let mut handle = imap.idle();
        within(handle.init()).await?;
        let (news, _interrupt) = handle.wait_with_timeout(most);
        tracing::debug!("idling");
        // The server's keep-alives restart the wait's own timeout, so IDLE
        // is also re-issued on a clock of its own.
        tokio::select! {
            result = news => {
                tracing::debug!("idle ended: {result:?}");
                result?;
            }
            () = tokio::time::sleep(most) => {}
            () = stopped(shutdown) => {}
        }
        within(handle.done()).await
    }

    /// Deals with every mail after the saved position, in UID order.
    async fn pass(
        &self,
        imap: &mut Imap,
        validity: u32,
        can_move: bool,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Pass> {
        let mut next = self.blocking(move |bot| bot.next_uid(validity)).await?;
        tracing::debug!(next, "checking the mailbox");
        let mut waiting: Vec<(u32, u32)> = within(async {
            imap.uid_fetch(format!("{next}:*"), "(UID RFC822.SIZE)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .iter()
        .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
        // "n:*" names the last mail even when it is older than n.
        .filter(|&(uid, _)| uid >= next)
        .collect();
        waiting.sort_unstable();
        for (uid, size) in waiting {
            if *shutdown.borrow() {
                break;
            }
            let whole = size <= self.clerk.config.max_message_bytes;
            let part = if whole { "BODY.PEEK[]" } else { "BODY.PEEK[HEADER]" };
            let fetched = within(async {
                imap.uid_fetch(uid.to_string(), part)
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
            let raw = fetched
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| if whole { f.body() } else { f.header() })
                .map(<[u8]>::to_vec);
            let replied = match raw {
                // Expunged meanwhile: nothing to do.
                None => false,
                Some(raw) => {
                    tracing::debug!(uid, bytes = raw.len(), "fetched");
                    let decision = self.blocking(move |bot| bot.decide(&raw, size as usize, whole)).await?;
                    match decision {
                        Decision::Done => false,
                        Decision::Reply { reply, reason, resumed } => {
                            if resumed && self.copy_arrived(imap, &reply).await? {
                                self.record_recovered(*reply).await?;
                                true
                            } else {
                                match self.send(*reply, reason).await? {
                                    Some(replied) => replied,
                                    None => return Ok(Pass::SendFailed),
                                }
                            }
                        }
                    }
                }
            };
            self.finish(imap, uid, replied, can_move).await?;
            next = uid + 1;
            self.blocking(move |bot| bot.save_position(validity, next)).await?;
        }
        Ok(Pass::Finished)
    }

    /// Sends a reply and records it. `Some(true)` when the server took it,
    /// `Some(false)` when it refused it for good (recorded, not retried),
    /// `None` when it could not be sent now.
    async fn send(&self, reply: Outgoing, reason: Option<String>) -> Result<Option<bool>> {
        let reference = reply.in_reply_to.clone();
        tracing::debug!(%reference, to = %reply.to, "sending the reply");
        let sent = tokio::time::timeout(SEND_TIMEOUT, self.smtp.send(reply.message.clone())).await;
        let Ok(sent) = sent else {
            tracing::warn!(to = %reply.to, "the mail server did not answer in time; will retry");
            return Ok(None);
        };
        match sent {
            Ok(_) => {
                self.blocking(move |bot| bot.record_sent(&reply, json!({ "reason": reason })))
                    .await?;
                crate::failpoint::check(crate::failpoint::EMAIL_AFTER_SEND);
                Ok(Some(true))
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(to = %reply.to, "the mail server refused the reply: {e}");
                let why = format!("reply refused by the mail server: {e}");
                self.blocking(move |bot| bot.ignore(&reply.to, &reference, &why))
                    .await?;
                Ok(Some(false))
            }
            Err(e) => {
                tracing::warn!(to = %reply.to, "sending the reply failed, will retry: {e}");
                Ok(None)
            }
        }
    }

    /// Whether the bot's copy of `reply` is in its mailbox: the server took
    /// the reply in an earlier run. The copy may still be on its way, so it
    /// is looked for a few times.
    async fn copy_arrived(&self, imap: &mut Imap, reply: &Outgoing) -> Result<bool> {
        copy_in_mailbox(imap, &reply.message_id, COPY_CHECKS).await
    }

    /// Records as sent a reply the server took before a restart.
    async fn record_recovered(&self, reply: Outgoing) -> Result<()> {
        let note = json!({ "recovered": "accepted before a restart; its copy is in the bot's mailbox" });
        self.blocking(move |bot| bot.record_sent(&reply, note)).await
    }

    /// Flags the mail (or moves it) now that it has been dealt with.
    async fn finish(&self, imap: &mut Imap, uid: u32, replied: bool, can_move: bool) -> Result<()> {
        let uid = uid.to_string();
        let flags = if replied { "(\\Seen \\Answered)" } else { "(\\Seen)" };
        within(async {
            imap.uid_store(&uid, format!("+FLAGS.SILENT {flags}"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if self.clerk.config.after_reply == AfterReply::Move {
            let to = &self.clerk.config.processed_mailbox;
            if can_move {
                within(imap.uid_mv(&uid, to)).await?;
            } else {
                within(imap.uid_copy(&uid, to)).await?;
                within(async {
                    imap.uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                within(async { imap.uid_expunge(&uid).await?.try_collect::<Vec<_>>().await }).await?;
            }
        }
        Ok(())
    }

    /// Runs store and answer work, which blocks, off the async threads.
    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce(&Clerk) -> Result<T> + Send + 'static) -> Result<T> {
        let clerk = self.clerk.clone();
        tokio::task::spawn_blocking(move || work(&clerk)).await?
    }
}

/// The synchronous half of the channel: what to do with a mail, and the
/// records of what was done (the store and the audit writer block).
struct Clerk {
    service: Arc<Service>,
    config: Email,
    rules: Rules,
}

impl Clerk {
    /// What to do with one mail (recording it in the audit log).
    fn decide(&self, raw: &[u8], size: usize, whole: bool) -> Result<Decision> {
        let parsed = if whole {
            Mail::parse(raw)
        } else {
            Mail::parse_headers(raw, size)
        };
        let Some(mail) = parsed else {
            let reference = mail::digest_reference(raw);
            if !self.handled(&reference)? {
                self.ignore("", &reference, "not a readable mail")?;
            }
            return Ok(Decision::Done);
        };
        let reference = mail.reference();
        if self.is_own_copy(&mail) {
            // The copy of a reply, already on the record as sent.
            return Ok(Decision::Done);
        }
        if self.handled(&reference)? {
            return Ok(Decision::Done);
        }
        if let Err(skip) = screen::screen(&mail, &self.rules) {
            let sender = mail.from.clone().unwrap_or_default();
            self.ignore(&sender, &reference, &skip.to_string())?;
            if matches!(skip, Skip::NotAuthenticated(_)) {
                tracing::warn!(from = %sender, %reference, "{skip}");
            }
            return Ok(Decision::Done);
        }
        let from = mail.from.clone().unwrap_or_default();
        let store = self.service.store();
        if self.service.directory().by_email(&from).is_none() {
            let told = store.sent_since(CHANNEL, &from, "")? > 0;
            let why = match self.config.unknown_senders {
                UnknownSenders::Ignore => Some("not on the staff list"),
                UnknownSenders::Refuse if told => Some("not on the staff list (already told)"),
                UnknownSenders::Refuse => None,
            };
            if let Some(why) = why {
                self.ignore(&from, &reference, why)?;
                return Ok(Decision::Done);
            }
        }
        let hour_ago = format_time(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
        let recent = store.sent_since(CHANNEL, &from, &hour_ago)?;
        if recent >= self.config.replies_per_hour {
            let why = format!("reply limit: {recent} replies to this address in the last hour");
            self.ignore(&from, &reference, &why)?;
            return Ok(Decision::Done);
        }
        // A reply to an acknowledgement nudge that acknowledges it.
        if nudge::is_acknowledgement(&mail.question()) {
            let parents = mail.in_reply_to.iter().chain(&mail.references).map(String::as_str);
            if let Some(replied) = nudge::replied_nudge(store, parents)? {
                let reply = nudge::acknowledge_by_reply(&self.service, &replied, &from, "email")?;
                let out = outgoing::reply(&self.config, &mail, &from, &reply, &[])?;
                return Ok(Decision::Reply {
                    reply: Box::new(out),
                    reason: Some(format!("acknowledgement of nudge {}", replied.id)),
                    resumed: false,
                });
            }
        }
        if mail.headers_only {
            let reply = Reply::text(format!(
                "Your email was too large for me to read ({:.1} MB; I read up to {:.1} MB). Please send \
                 your question in a short email on its own, without attachments.",
                mail.size as f64 / 1e6,
                f64::from(self.config.max_message_bytes) / 1e6
            ));
            let out = outgoing::reply(&self.config, &mail, &from, &reply, &[])?;
            return Ok(Decision::Reply {
                reply: Box::new(out),
                reason: Some(format!("too large to read ({} bytes)", mail.size)),
                resumed: false,
            });
        }
        let resumed = store.exchange_for(CHANNEL, &reference)?.is_some();
        let reply = conversation::respond(
            &self.service,
            &Who::Email(&from),
            Channel::Email,
            &reference,
            &mail.thread_root(),
            &mail.question(),
        )?;
        let Some(reply) = reply else {
            self.ignore(&from, &reference, "a thank-you, not a question")?;
            return Ok(Decision::Done);
        };
        let notes: Vec<String> = if mail.attachments.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "I don't open attachments ({}): I read only the text of your email.",
                mail.attachments.join(", ")
            )]
        };
        let out = outgoing::reply(&self.config, &mail, &from, &reply, &notes)?;
        Ok(Decision::Reply {
            reply: Box::new(out),
            reason: None,
            resumed,
        })
    }

    /// Whether `mail` is the bot's own copy of one of its replies.
    fn is_own_copy(&self, mail: &Mail) -> bool {
        mail.from.as_deref() == Some(self.rules.own_address.as_str())
            && mail
                .message_id
                .as_ref()
                .is_some_and(|id| id.starts_with(outgoing::REPLY_ID_PREFIX))
    }

    /// Whether an earlier run finished with this mail (a reply went out, or
    /// it was not to be answered).
    fn handled(&self, reference: &str) -> Result<bool> {
        self.service.store().recorded(CHANNEL, reference, &["sent", "ignored"])
    }

    fn ignore(&self, sender: &str, reference: &str, why: &str) -> Result<()> {
        tracing::info!(from = %sender, %reference, "not answered: {why}");
        self.record(
            Kind::Ignored,
            sender,
            reference,
            json!({ "reason": why, "from": sender }),
        )
    }

    /// Records that the server accepted `reply`: its Message-ID and
    /// recipient, and what `note` adds (why it was sent, how it was found).
    fn record_sent(&self, reply: &Outgoing, note: serde_json::Value) -> Result<()> {
        let mut payload = json!({ "message_id": reply.message_id, "to": reply.to });
        if let (Some(payload), Some(note)) = (payload.as_object_mut(), note.as_object()) {
            payload.extend(note.clone());
        }
        self.record(Kind::Sent, &reply.to, &reply.in_reply_to, payload)
    }

    fn record(&self, kind: Kind, asker: &str, reference: &str, payload: serde_json::Value) -> Result<()> {
        self.service.record_event(NewEvent {
            asker: asker.to_owned(),
            channel: CHANNEL.to_owned(),
            reference: reference.to_owned(),
            ..NewEvent::new(kind, payload)
        })?;
        Ok(())
    }

    /// The first UID not yet dealt with in a mailbox whose UIDVALIDITY is
    /// `validity` (1 when the mailbox was recreated: the audit log keeps
    /// already-answered mails from being answered again).
    fn next_uid(&self, validity: u32) -> Result<u32> {
        let store = self.service.store();
        let mailbox = &self.config.mailbox;
        let saved = store.channel_state(CHANNEL, &format!("{mailbox} uidvalidity"))?;
        if saved.as_deref() != Some(validity.to_string().as_str()) {
            return Ok(1);
        }
        Ok(store
            .channel_state(CHANNEL, &format!("{mailbox} next uid"))?
            .and_then(|n| n.parse().ok())
            .unwrap_or(1))
    }

    fn save_position(&self, validity: u32, next: u32) -> Result<()> {
        let store = self.service.store();
        let mailbox = &self.config.mailbox;
        store.set_channel_state(CHANNEL, &format!("{mailbox} uidvalidity"), &validity.to_string())?;
        store.set_channel_state(CHANNEL, &format!("{mailbox} next uid"), &next.to_string())
    }
}

/// Whether the server said, during the last commands, that mail arrived.
fn mail_arrived(imap: &Imap) -> bool {
    let mut arrived = false;
    while let Ok(response) = imap.unsolicited_responses.try_recv() {
        arrived |= matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    arrived
}

/// Whether the selected mailbox holds a mail with this Message-ID (the
/// bot's Bcc copy of something it sent), looking `checks` times, since the
/// copy may still be on its way.
async fn copy_in_mailbox(imap: &mut Imap, message_id: &str, checks: u32) -> Result<bool> {
    let query = format!("HEADER Message-ID \"{message_id}\"");
    for check in 0..checks {
        if !within(imap.uid_search(&query)).await?.is_empty() {
            return Ok(true);
        }
        if check + 1 < checks {
            tokio::time::sleep(COPY_CHECK_INTERVAL).await;
        }
    }
    Ok(false)
}

/// Whether the mail server took a mail the bot sent (by its Message-ID)
/// before a crash kept that from being recorded: its Bcc copy is in the
/// bot's mailbox, or in the processed mailbox if it was moved there.
pub async fn was_sent(config: &Email, password: &str, message_id: &str) -> Result<bool> {
    let tls = imap::tls_connector(config)?;
    let mut imap = imap::connect(config, password, &tls).await?;
    within(imap.select(&config.mailbox)).await?;
    let mut found = copy_in_mailbox(&mut imap, message_id, COPY_CHECKS).await?;
    if !found && config.after_reply == AfterReply::Move && within(imap.select(&config.processed_mailbox)).await.is_ok()
    {
        found = copy_in_mailbox(&mut imap, message_id, 1).await?;
    }
    let _ = within(imap.logout()).await;
    Ok(found)
}

/// An IMAP command, bounded in time: a server that stops answering is
/// treated like one that went away.
async fn within<T>(command: impl Future<Output = async_imap::error::Result<T>>) -> Result<T> {
    Ok(tokio::time::timeout(COMMAND_TIMEOUT, command)
        .await
        .context("the IMAP server stopped answering")??)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailServer;

    fn clerk(replies_per_hour: u32) -> Clerk {
        let server = |port| MailServer {
            host: "127.0.0.1".into(),
            port,
            tls: crate::config::TlsMode::None,
        };
        let config = Email {
            replies_per_hour,
            ..Email::account("policy@oakfield.example", "x", server(143), server(25))
        };
        Clerk {
            rules: Rules {
                own_address: config.address.clone(),
                trusted_authserv_id: None,
            },
            service: Arc::new(crate::service::tests::service()),
            config,
        }
    }

    fn mail(from: &str, id: &str, body: &str) -> Vec<u8> {
        format!("From: {from}\r\nSubject: A question\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n").into_bytes()
    }

    fn decide(clerk: &Clerk, raw: &[u8]) -> Decision {
        clerk.decide(raw, raw.len(), true).unwrap()
    }

    /// What the SMTP half does once the server took a reply.
    fn sent(clerk: &Clerk, decision: Decision) -> Outgoing {
        let Decision::Reply { reply, .. } = decision else {
            panic!("expected a reply");
        };
        clerk.record_sent(&reply, json!({})).unwrap();
        *reply
    }

    fn ignored_reason(clerk: &Clerk, reference: &str) -> Option<String> {
        let events = clerk
            .service
            .store()
            .list(&crate::store::audit::Filter::default())
            .unwrap();
        events
            .iter()
            .rev()
            .find(|e| e.reference == reference && e.kind == "ignored")
            .map(|e| e.payload["reason"].as_str().unwrap_or_default().to_owned())
    }

    #[test]
    fn a_mail_is_answered_once_and_a_resumed_answer_is_checked_first() {
        let clerk = clerk(20);
        let raw = mail(
            "Alice@Oakfield.example",
            "q1@x",
            "Can I email parents from my personal email?",
        );
        let Decision::Reply { resumed, reply, .. } = decide(&clerk, &raw) else {
            panic!("a question from staff is answered");
        };
        assert!(!resumed);
        assert_eq!(reply.to, "alice@oakfield.example");
        // Seen again before `sent` was recorded (a crash): the recorded
        // answer comes back, flagged as one an earlier run may have sent.
        let again = decide(&clerk, &raw);
        assert!(matches!(again, Decision::Reply { resumed: true, .. }));
        sent(&clerk, again);
        assert!(matches!(decide(&clerk, &raw), Decision::Done), "done once sent");
    }

    #[test]
    fn strangers_are_refused_once_and_replies_are_capped() {
        let clerk = clerk(2);
        let first = decide(&clerk, &mail("eve@elsewhere.example", "s1@x", "Can I use WhatsApp?"));
        let refusal = sent(&clerk, first);
        assert!(String::from_utf8_lossy(&refusal.message.formatted()).contains("staff list"));
        assert!(matches!(
            decide(&clerk, &mail("eve@elsewhere.example", "s2@x", "Hello?")),
            Decision::Done
        ));
        assert_eq!(
            ignored_reason(&clerk, "<s2@x>").as_deref(),
            Some("not on the staff list (already told)")
        );

        for id in ["a1@x", "a2@x"] {
            let d = decide(
                &clerk,
                &mail("alice@oakfield.example", id, "Can I use my personal email?"),
            );
            sent(&clerk, d);
        }
        assert!(matches!(
            decide(&clerk, &mail("alice@oakfield.example", "a3@x", "And WhatsApp?")),
            Decision::Done
        ));
        assert!(
            ignored_reason(&clerk, "<a3@x>")
                .unwrap()
                .starts_with("reply limit: 2 replies")
        );
    }

    #[test]
    fn thanks_and_the_bots_own_copies_get_nothing() {
        let clerk = clerk(20);
        let thanks = decide(
            &clerk,
            &mail("alice@oakfield.example", "t1@x", "Thanks, that's great!\n\nAlice"),
        );
        assert!(matches!(thanks, Decision::Done));
        assert_eq!(
            ignored_reason(&clerk, "<t1@x>").as_deref(),
            Some("a thank-you, not a question")
        );
        let copy = mail("policy@oakfield.example", "policybot.0123@oakfield.example", "No.");
        assert!(matches!(decide(&clerk, &copy), Decision::Done));
        assert_eq!(
            ignored_reason(&clerk, "<policybot.0123@oakfield.example>"),
            None,
            "not recorded again"
        );
    }
}
