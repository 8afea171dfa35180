//! Campaigns that start themselves while `serve` runs: at each scheduled
//! slot (default: the first school day of the month, 09:00, school time)
//! for everyone due, and as soon as a new version of a policy goes live for
//! the staff of that policy. Each is planned once (its slot is unique in the
//! store), so a restart or a crash cannot plan it twice. At each scheduled
//! slot the e-safety lead gets the digest: where acknowledgements stand, and
//! who has had `escalate_after` nudges without answering.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::Config;
use crate::directory::Directory;
use crate::email::outgoing;
use crate::nudge;
use crate::service::Service;
use crate::store::Store;
use crate::store::audit::sha256_hex;
use crate::store::versions::VersionChange;

const CHANNEL: &str = "campaigns";
const LAST_SLOT: &str = "last slot";

/// Plans a campaign for each policy whose new version replaced an earlier
/// one (the first version the bot sees waits for the schedule).
pub fn for_new_versions(
    config: &Config,
    directory: &Directory,
    store: &Store,
    changes: &[VersionChange],
) -> Result<()> {
    if !config.acknowledgements.on_new_version {
        return Ok(());
    }
    for change in changes.iter().filter(|c| c.previous.is_some()) {
        let slot = format!("version {}/{}/{}", change.school, change.policy, change.version);
        let planned = nudge::plan(
            config,
            directory,
            store,
            Some(&change.school),
            Some((&change.school, &change.policy)),
            "new version",
            Some(&slot),
        )?;
        if let Some(campaign) = planned.campaign {
            tracing::info!(campaign, planned = planned.planned, "{slot}: campaign planned");
        }
    }
    Ok(())
}

/// Runs the schedule until the service stops.
pub async fn run(service: Arc<Service>, config: Arc<Config>, mut stopping: watch::Receiver<bool>) {
    let schedule = match config.acknowledgements.schedule() {
        Ok(s) => s,
        Err(e) => return tracing::error!("[acknowledgements] schedule: {e:#}"),
    };
    loop {
        let (service_, config_, schedule_) = (service.clone(), config.clone(), schedule.clone());
        let next = tokio::task::spawn_blocking(move || -> Result<Timestamp> {
            let store = service_.store();
            let now = Timestamp::now();
            let last = match store.channel_state(CHANNEL, LAST_SLOT)? {
                Some(last) => last.parse()?,
                // The first start: slots before it are not caught up on.
                None => {
                    store.set_channel_state(CHANNEL, LAST_SLOT, &now.to_string())?;
                    now
                }
            };
            if let Some(slot) = schedule_.due(last, now) {
                scheduled(&config_, &service_, slot)?;
                store.set_channel_state(CHANNEL, LAST_SLOT, &slot.to_string())?;
                return Ok(schedule_.next_after(slot));
            }
            Ok(schedule_.next_after(last))
        })
        .await;
        let wait = match next {
            Ok(Ok(next)) => {
                let left = next.duration_since(Timestamp::now());
                // Look again at least every minute: clocks change, and a
                // slot in a month is far.
                Duration::try_from(left)
                    .unwrap_or_default()
                    .min(Duration::from_secs(60))
            }
            Ok(Err(e)) => {
                tracing::error!("scheduled campaign: {e:#}");
                Duration::from_secs(60)
            }
            Err(e) => {
                tracing::error!("scheduled campaign: {e}");
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
            _ = stopping.wait_for(|&stop| stop) => return,
        }
    }
}

/// The campaign and the digest of one scheduled slot.
fn scheduled(config: &Config, service: &Service, slot: Timestamp) -> Result<()> {
    let name = format!("schedule {slot}");
    let planned = nudge::plan(
        config,
        service.directory(),
        service.store(),
        None,
        None,
        "schedule",
        Some(&name),
    )?;
    if let Some(campaign) = planned.campaign {
        tracing::info!(campaign, planned = planned.planned, "{name}: campaign planned");
        println!(
            "policybot: campaign {campaign} planned for {name}: {} nudge(s)",
            planned.planned
        );
    }
    // An error (the mail server away) leaves the slot to be tried again.
    send_digest(config, service, &name, &tokio::runtime::Handle::current())
        .with_context(|| format!("the digest for {name}"))?;
    Ok(())
}

/// Sends one mail at most once across crashes, its progress kept under
/// `key`: 'sent' and 'refused' are final; 'sending' (a crash between the
/// server taking it and the record) is looked for with `was_sent` before
/// it is sent again. `send` answers `Ok(Err(why))` when the server refused
/// the mail for good, `Err` when it could not be asked (try again later).
/// Returns whether the mail went out, now or before.
fn send_once(
    store: &Store,
    key: &str,
    was_sent: impl FnOnce() -> Result<bool>,
    send: impl FnOnce() -> Result<Result<(), String>>,
) -> Result<bool> {
    let state = store.channel_state(CHANNEL, key)?;
    match state.as_deref() {
        Some("sent") => return Ok(true),
        Some(state) if state.starts_with("refused") => return Ok(false),
        _ => {}
    }
    // Left 'sending': the server may have taken it.
    if state.is_some() && was_sent()? {
        store.set_channel_state(CHANNEL, key, "sent")?;
        return Ok(true);
    }
    store.set_channel_state(CHANNEL, key, "sending")?;
    match send()? {
        Ok(()) => {
            store.set_channel_state(CHANNEL, key, "sent")?;
            Ok(true)
        }
        Err(why) => {
            tracing::error!("{key}: refused by the mail server: {why}");
            store.set_channel_state(CHANNEL, key, &format!("refused: {why}"))?;
            Ok(false)
        }
    }
}

/// Someone who has left `escalate_after` nudges unanswered.
pub struct Escalation {
    pub line: String,
    /// Their line manager's id, if they have one.
    pub line_manager: Option<String>,
}

/// The digest as plain text: per live policy version, how many have
/// acknowledged, who has not, and who is escalated; with the escalations;
/// and the audit log's state and head, so every digest in the e-safety
/// lead's mailbox anchors the log outside the database.
pub fn digest(config: &Config, service: &Service) -> Result<(String, Vec<Escalation>)> {
    let escalate_after = config.acknowledgements.escalate_after.max(1) as usize;
    let mut out = String::new();
    let mut escalated = Vec::new();
    for policy in nudge::status(service.directory(), service.store(), None)? {
        let done = policy.acknowledged.len();
        let percent = (100 * done).checked_div(policy.staff).unwrap_or(100);
        writeln!(
            out,
            "{} ({}), version {}: {done} of {} staff have acknowledged it ({percent}%).",
            policy.live.title, policy.live.school, policy.live.version, policy.staff
        )?;
        for o in &policy.outstanding {
            writeln!(out, "  - {}: not yet ({} nudge(s) sent)", o.member.name, o.nudged)?;
            if o.nudged >= escalate_after {
                let manager = o
                    .member
                    .line_manager
                    .as_deref()
                    .and_then(|id| service.directory().by_id(id));
                escalated.push(Escalation {
                    line: format!(
                        "{} ({}) — {}, version {}: {} nudges unanswered{}",
                        o.member.name,
                        o.member.role,
                        policy.live.title,
                        policy.live.version,
                        o.nudged,
                        manager
                            .map(|m| format!("; line manager {}", m.name))
                            .unwrap_or_default()
                    ),
                    line_manager: manager.map(|m| m.id.clone()),
                });
            }
        }
        out.push('\n');
    }
    if !escalated.is_empty() {
        writeln!(
            out,
            "Not answered after {escalate_after} or more nudges — please follow up:"
        )?;
        for e in &escalated {
            writeln!(out, "  - {}", e.line)?;
        }
        out.push('\n');
    }
    out.push_str(&audit_anchor(service)?);
    Ok((out, escalated))
}

/// The digest's paragraph on the audit log: whether it verifies, and its
/// head, to keep.
fn audit_anchor(service: &Service) -> Result<String> {
    let v = service.store().verify()?;
    let mut out = String::new();
    if v.ok() {
        writeln!(out, "Audit log: intact, {} events.", v.events)?;
    } else {
        writeln!(out, "Audit log: PROBLEMS FOUND — run `policybot audit verify`:")?;
        for p in v.problems() {
            writeln!(out, "  - {p}")?;
        }
    }
    writeln!(
        out,
        "Audit log head: {} — keep this mail: `policybot audit verify --head {}` shows later whether the log still holds every event up to this one.",
        v.head, v.head
    )?;
    Ok(out)
}

/// Mails the digest to `digest_to` (and each line manager their people),
/// once per slot and recipient. Returns who it went to. Each mail is
/// recorded 'sending' before it leaves and 'sent' after, so a crash between
/// the two looks for the mail's Bcc copy in the bot's mailbox rather than
/// mailing it twice; a mail server that is away is an error, and the
/// scheduler tries the slot again (what went out is not sent again).
pub fn send_digest(
    config: &Config,
    service: &Service,
    slot: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<Vec<String>> {
    let Some(email) = &config.email else {
        return Ok(Vec::new());
    };
    let store = service.store();
    let key = format!("digest {slot}");
    if store.channel_state(CHANNEL, &key)?.is_some() {
        return Ok(Vec::new());
    }
    let (text, escalated) = digest(config, service)?;
    let html = |text: &str| format!("<pre>{}</pre>", policybot_index::render::escape(text));
    let password = email.password()?;
    let send = |to: &str, subject: &str, text: &str| -> Result<bool> {
        let id = format!(
            "<{}digest.{}@{}>",
            outgoing::REPLY_ID_PREFIX,
            &sha256_hex(&format!("{slot} {to}"))[..24],
            outgoing::domain(email)
        );
        send_once(
            store,
            &format!("digest {slot} -> {to}"),
            || runtime.block_on(crate::email::was_sent(email, &password, &id)),
            || {
                let mail = outgoing::notice(email, to, subject, &id, text.to_owned(), html(text))?;
                let smtp = outgoing::transport(email, &password)?;
                use lettre::AsyncTransport;
                Ok(match runtime.block_on(smtp.send(mail)) {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(e.to_string()),
                    Err(e) => return Err(e.into()),
                })
            },
        )
    };
    let mut sent_to = Vec::new();
    for to in &config.acknowledgements.digest_to {
        if send(to, "Policy acknowledgements: where they stand", &text)? {
            sent_to.push(to.clone());
        }
    }
    // Each line manager hears about their own people.
    let mut managers: Vec<&str> = escalated.iter().filter_map(|e| e.line_manager.as_deref()).collect();
    managers.sort_unstable();
    managers.dedup();
    for id in managers {
        let Some(to) = service.directory().by_id(id).and_then(|m| m.emails.first()) else {
            continue;
        };
        let mut text =
            String::from("Members of your team have not yet acknowledged a school policy after several reminders:\n\n");
        for e in escalated.iter().filter(|e| e.line_manager.as_deref() == Some(id)) {
            writeln!(text, "  - {}", e.line)?;
        }
        if send(to, "Policy acknowledgements: please follow up", &text)? {
            sent_to.push(to.clone());
        }
    }
    store.set_channel_state(CHANNEL, &key, &crate::store::audit::now())?;
    tracing::info!("{slot}: digest sent to {}", sent_to.join(", "));
    Ok(sent_to)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_digest_mail_goes_out_once_across_crashes_and_outages() {
        let store = Store::in_memory().unwrap();
        let sends = Cell::new(0);
        let send = |outcome: Result<Result<(), String>>| {
            let sends = &sends;
            move || {
                sends.set(sends.get() + 1);
                outcome
            }
        };
        let never_looked = || -> Result<bool> { panic!("nothing was left sending") };

        // The mail server is away: an error, nothing recorded as sent.
        let away = send_once(
            &store,
            "lead",
            never_looked,
            send(Err(anyhow::anyhow!("connection refused"))),
        );
        assert!(away.is_err());
        // Tried again: the copy is not in the mailbox, so it is sent.
        assert!(send_once(&store, "lead", || Ok(false), send(Ok(Ok(())))).unwrap());
        assert_eq!(sends.get(), 2);
        // And never again.
        assert!(send_once(&store, "lead", never_looked, send(Ok(Ok(())))).unwrap());
        assert_eq!(sends.get(), 2);

        // A crash after the server took it: its copy is found, not re-sent.
        store.set_channel_state(CHANNEL, "manager", "sending").unwrap();
        assert!(send_once(&store, "manager", || Ok(true), send(Ok(Ok(())))).unwrap());
        assert_eq!(sends.get(), 2);

        // Refused for good: recorded, not tried again, not counted as sent.
        assert!(!send_once(&store, "typo", never_looked, send(Ok(Err("550 no such user".into())))).unwrap());
        assert!(!send_once(&store, "typo", never_looked, send(Ok(Ok(())))).unwrap());
        assert_eq!(sends.get(), 3);
        assert_eq!(
            store.channel_state(CHANNEL, "typo").unwrap().as_deref(),
            Some("refused: 550 no such user")
        );
    }
}
