//! Acknowledgement campaigns: who has to acknowledge which policy version,
//! the nudge that asks them (the policy, what changed since the version they
//! last acknowledged, a signed link), and the sending, paced, from the
//! persisted plan.
//!
//! A campaign is planned in one transaction (`Store::plan_campaign`); the
//! sender then works through it in order, marking each nudge 'sending'
//! before it leaves and 'sent' once the server took it. Whatever stops the
//! service, the plan is still there when it starts again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use policybot_index::diff;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::watch;

use crate::commands::Reply;
use crate::config::{Config, Email};
use crate::directory::{Directory, StaffMember};
use crate::email::outgoing;
use crate::service::Service;
use crate::store::Store;
use crate::store::acks::{Ack, Nudge, PlannedNudge};
use crate::store::versions::VersionInfo;

/// A member of staff who has not acknowledged the live version of a policy.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub name: String,
    pub title: String,
    /// Why they are due: never acknowledged, or acknowledged an older version.
    pub why: String,
    /// The nudge to send; `channel` is "none" when the bot cannot reach them.
    pub nudge: PlannedNudge,
    /// A nudge about this version is planned and not yet sent.
    pub pending: bool,
}

/// Where acknowledgements of one policy's live version stand.
pub struct PolicyStatus<'a> {
    pub live: VersionInfo,
    /// Staff of the school, now.
    pub staff: usize,
    pub acknowledged: Vec<(&'a StaffMember, Ack)>,
    pub outstanding: Vec<Outstanding<'a>>,
}

/// A member of staff who has not acknowledged a live version.
pub struct Outstanding<'a> {
    pub member: &'a StaffMember,
    /// The version they last acknowledged, if any.
    pub since: Option<String>,
    /// Nudges already sent about this version.
    pub nudged: usize,
    /// A nudge about this version is planned and not yet sent.
    pub pending: bool,
}

/// Every live policy version (of one school, or all) with who has and who
/// has not acknowledged it. Leavers are not in the directory, so not
/// outstanding; new starters are.
pub fn status<'a>(directory: &'a Directory, store: &Store, school: Option<&str>) -> Result<Vec<PolicyStatus<'a>>> {
    let mut out = Vec::new();
    for live in store.live_versions(school)? {
        let ledger = store.acknowledgements(Some(&live.school), Some(&live.policy))?;
        let mut status = PolicyStatus {
            staff: 0,
            acknowledged: Vec::new(),
            outstanding: Vec::new(),
            live,
        };
        for member in directory.members().iter().filter(|m| m.school == status.live.school) {
            status.staff += 1;
            let mine: Vec<&Ack> = ledger.iter().filter(|a| a.staff == member.id).collect();
            if let Some(ack) = mine.iter().find(|a| a.version == status.live.version) {
                status.acknowledged.push((member, (*ack).clone()));
                continue;
            }
            let (school, policy, version) = (&status.live.school, &status.live.policy, &status.live.version);
            status.outstanding.push(Outstanding {
                member,
                since: mine.last().map(|a| a.version.clone()),
                nudged: store.nudges_sent(&member.id, school, policy, version)?,
                pending: store.nudge_pending(&member.id, school, policy, version)?,
            });
        }
        out.push(status);
    }
    Ok(out)
}

/// Everyone (of one school, or all) who has not acknowledged the live
/// version of each of their school's policies, with the nudge to send them.
pub fn due(config: &Config, directory: &Directory, store: &Store, school: Option<&str>) -> Result<Vec<Due>> {
    let mut out = Vec::new();
    for policy in status(directory, store, school)? {
        for o in policy.outstanding {
            let why = match &o.since {
                None => "has not acknowledged this policy".to_owned(),
                Some(v) => format!("acknowledged version {v}; version {} is new", policy.live.version),
            };
            let (channel, address) = reach(config, o.member);
            out.push(Due {
                name: o.member.name.clone(),
                title: policy.live.title.clone(),
                why,
                pending: o.pending,
                nudge: PlannedNudge {
                    staff: o.member.id.clone(),
                    school: policy.live.school.clone(),
                    policy: policy.live.policy.clone(),
                    version: policy.live.version.clone(),
                    since_version: o.since,
                    attempt: o.nudged + 1,
                    channel,
                    address,
                },
            });
        }
    }
    Ok(out)
}

/// What planning a campaign did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Planned {
    /// The campaign, unless there was nobody to nudge (or its slot was
    /// planned already).
    pub campaign: Option<i64>,
    pub planned: usize,
    /// Due, but a nudge for them is still waiting to be sent.
    pub waiting: usize,
    /// Due, but no channel the bot runs can reach them.
    pub unreachable: usize,
}

/// Plans a campaign: a nudge for everyone due (of one school, or one
/// policy, or all) whom the bot can reach and who has no nudge waiting. A
/// `slot` is planned once only, even when nobody is due (the audit log then
/// shows the scheduled run found nobody).
pub fn plan(
    config: &Config,
    directory: &Directory,
    store: &Store,
    school: Option<&str>,
    policy: Option<(&str, &str)>,
    reason: &str,
    slot: Option<&str>,
) -> Result<Planned> {
    let due: Vec<Due> = due(config, directory, store, school)?
        .into_iter()
        .filter(|d| policy.is_none_or(|(school, policy)| d.nudge.school == school && d.nudge.policy == policy))
        .collect();
    let mut planned = Planned::default();
    let mut nudges = Vec::new();
    for d in due {
        if d.nudge.channel == "none" {
            planned.unreachable += 1;
        } else if d.pending {
            planned.waiting += 1;
        } else {
            nudges.push(d.nudge);
        }
    }
    planned.planned = nudges.len();
    if !nudges.is_empty() || slot.is_some() {
        planned.campaign = store.plan_campaign(reason, slot, &nudges)?;
        if planned.campaign.is_none() {
            planned.planned = 0;
        }
    }
    Ok(planned)
}

/// How a nudge reaches someone: their preference if the bot has that
/// channel, else email, else Matrix; ("none", "") if neither.
fn reach(config: &Config, member: &StaffMember) -> (String, String) {
    let email = member.emails.first().filter(|_| config.email.is_some());
    let matrix = member.matrix.as_ref().filter(|_| config.matrix.is_some());
    let by_email = || email.map(|a| ("email".to_owned(), a.clone()));
    let by_matrix = || matrix.map(|m| ("matrix".to_owned(), m.clone()));
    let chosen = match member.prefer.as_deref() {
        Some("matrix") => by_matrix().or_else(by_email),
        _ => by_email().or_else(by_matrix),
    };
    chosen.unwrap_or_else(|| ("none".to_owned(), String::new()))
}

/// The signature that makes a nudge's link (and its mail's Message-ID)
/// work for that person and that version only.
fn signature(key: &str, nudge: &Nudge) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(
        format!(
            "ack\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            nudge.id, nudge.plan.staff, nudge.plan.school, nudge.plan.policy, nudge.plan.version
        )
        .as_bytes(),
    );
    let bytes = mac.finalize().into_bytes();
    bytes[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The token in a nudge's acknowledgement link: `id-signature`.
pub fn token(key: &str, nudge: &Nudge) -> String {
    format!("{}-{}", nudge.id, signature(key, nudge))
}

/// The nudge a link's token was made for, if the token is genuine.
pub fn verify(store: &Store, token: &str) -> Result<Option<Nudge>> {
    let Some((id, signature)) = token.split_once('-') else {
        return Ok(None);
    };
    let Ok(id) = id.parse::<i64>() else { return Ok(None) };
    let Some(nudge) = store.nudge(id)? else { return Ok(None) };
    let key = store.signing_key()?;
    let expected = self::signature(&key, &nudge);
    // Compared in constant time: the signature is the only secret.
    let same = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    Ok(same.then_some(nudge))
}

/// What a nudge says: subject, plain text and HTML.
pub struct Message {
    pub subject: String,
    pub plain: String,
    pub html: String,
}

pub fn message(store: &Store, name: &str, nudge: &Nudge, link: &str) -> Result<Message> {
    let policy = store
        .policy_version(&nudge.plan.school, &nudge.plan.policy, &nudge.plan.version)?
        .with_context(|| {
            format!(
                "{} version {} is not in the store",
                nudge.plan.policy, nudge.plan.version
            )
        })?;
    let subject = format!("Please acknowledge: {} (version {})", policy.title, nudge.plan.version);
    let mut plain = format!(
        "Dear {name},\n\nPlease read version {} of {} and confirm you have read it.\n",
        nudge.plan.version, policy.title
    );
    let mut changes_html = String::new();
    match &nudge.plan.since_version {
        Some(since) => {
            if let Some(older) = store.policy_version(&nudge.plan.school, &nudge.plan.policy, since)? {
                let changes = diff::diff(&older.clauses, &policy.clauses);
                plain.push_str(&format!(
                    "\nWhat changed since version {since}, which you acknowledged:\n\n"
                ));
                plain.push_str(&crate::cmd_policy::plain(&older, &policy, &changes));
                changes_html = crate::dashboard::changes_html(&changes);
            }
        }
        None => plain.push_str("\nYou have not acknowledged this policy before.\n"),
    }
    if nudge.plan.attempt > 1 {
        plain.push_str(&format!("\nThis is reminder {}.\n", nudge.plan.attempt));
    }
    let or_reply = match nudge.plan.channel.as_str() {
        "matrix" => "Or react to this message with ✅, or reply “I acknowledge”.",
        _ => "Or reply to this mail with “I acknowledge”.",
    };
    plain.push_str(&format!(
        "\nRead it and acknowledge here (the link is yours alone):\n{link}\n\n{or_reply}\n"
    ));
    let escape = policybot_index::render::escape;
    let html = format!(
        "<p>Dear {},</p><p>Please read version <strong>{}</strong> of <strong>{}</strong> and confirm you have read it.</p>{}{}<p><a href=\"{}\">Read it and acknowledge</a> (the link is yours alone).</p><p>{}</p>",
        escape(name),
        escape(&nudge.plan.version),
        escape(&policy.title),
        if changes_html.is_empty() {
            String::new()
        } else {
            format!(
                "<p>What changed since version {}, which you acknowledged:</p>{changes_html}",
                escape(nudge.plan.since_version.as_deref().unwrap_or_default())
            )
        },
        if nudge.plan.attempt > 1 {
            format!("<p>This is reminder {}.</p>", nudge.plan.attempt)
        } else {
            String::new()
        },
        escape(link),
        escape(or_reply)
    );
    Ok(Message { subject, plain, html })
}

/// The Message-ID of a nudge's mail: signed like its link, so a reply to it
/// (In-Reply-To) can be checked to come from that nudge.
pub fn message_id(key: &str, nudge: &Nudge, email: &Email) -> String {
    format!(
        "<{}nudge.{}@{}>",
        outgoing::REPLY_ID_PREFIX,
        token(key, nudge),
        outgoing::domain(email)
    )
}

/// Whether a reply to a nudge says the member of staff acknowledges it:
/// "I acknowledge", "Acknowledged.", "I have read and understood it", ✅, 👍.
/// Anything with a "not" in it is not ("I can't acknowledge this yet").
pub fn is_acknowledgement(text: &str) -> bool {
    let text = policybot_index::text::normalize(text).to_lowercase();
    let text = text.trim();
    if text.is_empty() || text.len() > 300 {
        return false;
    }
    let negated = ["not ", "n't", "never", "won't", "refuse"]
        .iter()
        .any(|n| text.contains(n));
    let agrees = text.contains("acknowledge")
        || text.contains("read and understood")
        || text.contains("have read it")
        || text.contains('✅')
        || text.contains('👍')
        || text == "yes"
        || text == "agreed";
    agrees && !negated
}

/// The nudge a mail replies to: the token in a parent Message-ID made by
/// [`message_id`] (without angle brackets), if genuine.
pub fn replied_nudge<'a>(store: &Store, parents: impl IntoIterator<Item = &'a str>) -> Result<Option<Nudge>> {
    let prefix = format!("{}nudge.", outgoing::REPLY_ID_PREFIX);
    for parent in parents {
        let parent = parent.trim_matches(['<', '>']);
        if let Some(token) = parent.strip_prefix(&prefix).and_then(|rest| rest.split('@').next())
            && let Some(nudge) = verify(store, token)?
        {
            return Ok(Some(nudge));
        }
    }
    Ok(None)
}

/// Records an acknowledgement given by replying to `nudge` (from the
/// address or account `sender`, which the channel has authenticated) and
/// says so. Only the person the nudge was sent to can acknowledge with it.
pub fn acknowledge_by_reply(service: &Service, nudge: &Nudge, sender: &str, how: &str) -> Result<Reply> {
    let store = service.store();
    if !sender.eq_ignore_ascii_case(&nudge.plan.address) {
        return Ok(Reply::text(
            "I can only record an acknowledgement from the person the reminder was sent to, replying \
             from where it reached them. Nothing was recorded.",
        ));
    }
    store.acknowledge(
        &nudge.plan.staff,
        &nudge.plan.school,
        &nudge.plan.policy,
        &nudge.plan.version,
        how,
    )?;
    let title = store
        .policy_version(&nudge.plan.school, &nudge.plan.policy, &nudge.plan.version)?
        .map_or_else(|| nudge.plan.policy.clone(), |p| p.title);
    let at = store.acknowledgement_of(&nudge.plan)?.map(|a| a.at).unwrap_or_default();
    Ok(Reply::text(format!(
        "Thank you. Your acknowledgement of {title}, version {}, is recorded ({at}).",
        nudge.plan.version
    )))
}

/// The member of staff a planned nudge is still for, or why it is no longer
/// needed: they left the staff list, or acknowledged meanwhile.
pub fn still_needed<'d>(
    store: &Store,
    directory: &'d Directory,
    nudge: &Nudge,
) -> Result<Result<&'d StaffMember, &'static str>> {
    let Some(member) = directory.by_id(&nudge.plan.staff) else {
        return Ok(Err("no longer on the staff list"));
    };
    if store.acknowledgement_of(&nudge.plan)?.is_some() {
        return Ok(Err("acknowledged before the nudge was sent"));
    }
    Ok(Ok(member))
}

/// What to send for a nudge, with the link key: `None` (and the nudge
/// recorded as skipped) when it is no longer needed, because its person left
/// the staff list or acknowledged meanwhile.
pub fn prepare(
    store: &Store,
    directory: &Directory,
    link_base: &str,
    nudge: &Nudge,
) -> Result<Option<(String, Message)>> {
    let member = match still_needed(store, directory, nudge)? {
        Ok(member) => member,
        Err(why) => {
            store.mark_nudge(nudge.id, "skipped", why)?;
            return Ok(None);
        }
    };
    let key = store.signing_key()?;
    let link = format!("{link_base}/ack/{}", token(&key, nudge));
    let text = message(store, &member.name, nudge, &link)?;
    Ok(Some((key, text)))
}

/// How often a channel may send a nudge.
pub fn pace(config: &Config) -> Duration {
    Duration::from_secs(60) / config.acknowledgements.nudges_per_minute.max(1)
}

/// Nudges in flight at once on the email channel: each opens its own SMTP
/// connection (TLS, AUTH), so a few at a time keep the server busy.
const CONCURRENT_SENDS: usize = 4;

/// How long the mail server may take to accept one nudge.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a sender does after a nudge.
pub enum Step {
    Next,
    /// The server is away or cannot tell: pause, then try again.
    Pause,
}

/// One channel's way of delivering a planned nudge: sends it and records
/// the outcome ('sending' before it leaves, then 'sent' or 'failed'), or
/// leaves it for a later try by answering [`Step::Pause`].
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, nudge: Nudge) -> impl Future<Output = Result<Step>> + Send;

    /// Before a batch is delivered (Matrix makes the direct chats it needs).
    fn before_batch(&self, _batch: &[Nudge]) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// After each batch of nudges (Matrix records its new direct chats).
    fn after_batch(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How a channel's nudges leave: `in_flight` at once, together no faster
/// than one per `pace`.
pub struct Sending {
    pub channel: &'static str,
    pub in_flight: usize,
    pub pace: Duration,
}

/// Sends one channel's nudges of every planned campaign until the service
/// stops; new campaigns are picked up as they are planned. A pause (server
/// away, cannot tell) or an error stops the batch and waits before the
/// rest are tried again: nothing is dropped.
pub async fn send_planned<D: Deliver>(
    service: Arc<Service>,
    sending: Sending,
    deliver: Arc<D>,
    mut stopping: watch::Receiver<bool>,
) -> Result<()> {
    use futures_util::StreamExt;
    // Each of the concurrent sends waits this long after its nudge, so
    // together they keep to the pace.
    let pause_after_send = sending.pace * sending.in_flight as u32;
    loop {
        let store = service.clone();
        let channel = sending.channel;
        let batch = tokio::task::spawn_blocking(move || store.store().unsent_nudges(channel, 100)).await??;
        if batch.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                _ = stopping.wait_for(|&stop| stop) => return Ok(()),
            }
        }
        deliver.before_batch(&batch).await;
        let steps: Vec<Result<Step>> = futures_util::stream::iter(batch)
            .take_while(|_| std::future::ready(!*stopping.borrow()))
            .map(|nudge| {
                let deliver = deliver.clone();
                async move {
                    let step = deliver.deliver(nudge).await;
                    if matches!(step, Ok(Step::Next)) {
                        tokio::time::sleep(pause_after_send).await;
                    }
                    step
                }
            })
            .buffer_unordered(sending.in_flight)
            .collect()
            .await;
        deliver.after_batch().await;
        if *stopping.borrow() {
            return Ok(());
        }
        let mut pause = false;
        for step in steps {
            match step {
                Ok(Step::Next) => {}
                Ok(Step::Pause) => pause = true,
                Err(e) => {
                    tracing::error!(channel, "sending a nudge: {e:#}");
                    pause = true;
                }
            }
        }
        if pause {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = stopping.wait_for(|&stop| stop) => return Ok(()),
            }
        }
    }
}

struct EmailSender {
    service: Arc<Service>,
    email: Email,
    password: String,
    smtp: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    link_base: String,
}

/// Sends the email nudges of every planned campaign, paced, until the
/// service stops.
pub async fn send_email(
    service: Arc<Service>,
    config: Arc<Config>,
    email: Email,
    stopping: watch::Receiver<bool>,
) -> Result<()> {
    let password = email.password()?;
    let sender = Arc::new(EmailSender {
        smtp: outgoing::transport(&email, &password)?,
        password,
        email,
        link_base: config.dashboard.link_base(),
        service: service.clone(),
    });
    let sending = Sending {
        channel: "email",
        in_flight: CONCURRENT_SENDS,
        pace: pace(&config),
    };
    send_planned(service, sending, sender, stopping).await
}

impl Deliver for EmailSender {
    /// One nudge: recorded 'sending', sent, recorded 'sent' (or 'failed').
    async fn deliver(&self, nudge: Nudge) -> Result<Step> {
        let nudge_id = nudge.id;
        let resumed = nudge.status == "sending";
        let address = nudge.plan.address.clone();
        let (service, email, link_base) = (self.service.clone(), self.email.clone(), self.link_base.clone());
        let prepared = tokio::task::spawn_blocking(move || -> Result<Option<(String, lettre::Message)>> {
            let store = service.store();
            let Some((key, text)) = prepare(store, service.directory(), &link_base, &nudge)? else {
                return Ok(None);
            };
            let id = message_id(&key, &nudge, &email);
            let mail = outgoing::notice(&email, &nudge.plan.address, &text.subject, &id, text.plain, text.html)?;
            store.mark_nudge(nudge.id, "sending", &id)?;
            Ok(Some((id, mail)))
        })
        .await??;
        let Some((id, mail)) = prepared else {
            return Ok(Step::Next);
        };
        // Left 'sending' by a crash: the server may have taken it already,
        // and then its copy is in the bot's mailbox.
        if resumed {
            match crate::email::was_sent(&self.email, &self.password, &id).await {
                Ok(true) => {
                    let detail = format!("{id} (recovered: its copy is in the bot's mailbox)");
                    mark(&self.service, nudge_id, "sent", detail).await?;
                    tracing::info!(nudge = nudge_id, "nudge found sent before a restart");
                    return Ok(Step::Next);
                }
                Ok(false) => {}
                // Cannot tell now: better late than twice.
                Err(e) => {
                    tracing::warn!(
                        nudge = nudge_id,
                        "cannot check whether nudge was sent: {e:#}; will retry"
                    );
                    return Ok(Step::Pause);
                }
            }
        }
        use lettre::AsyncTransport;
        let outcome = tokio::time::timeout(SEND_TIMEOUT, self.smtp.send(mail)).await;
        match outcome {
            Ok(Ok(_)) => {
                crate::failpoint::check(crate::failpoint::NUDGE_AFTER_SEND);
                mark(&self.service, nudge_id, "sent", id).await?;
                tracing::info!(nudge = nudge_id, to = %address, "nudge sent");
                Ok(Step::Next)
            }
            // The server refused this address for good (5xx): on the record
            // as failed, for the e-safety lead.
            Ok(Err(e)) if e.is_permanent() => {
                tracing::error!(nudge = nudge_id, to = %address, "nudge refused: {e}");
                mark(&self.service, nudge_id, "failed", e.to_string()).await?;
                Ok(Step::Next)
            }
            // Anything else (server away, timeout, 4xx): the nudge stays
            // 'sending' and is tried again after a pause; nothing dropped.
            Ok(Err(e)) => {
                tracing::warn!(nudge = nudge_id, "nudge not sent, will retry: {e}");
                Ok(Step::Pause)
            }
            Err(_) => {
                tracing::warn!(nudge = nudge_id, "the mail server did not answer in time; will retry");
                Ok(Step::Pause)
            }
        }
    }
}

/// Records what became of a nudge.
pub async fn mark(service: &Arc<Service>, id: i64, status: &'static str, detail: String) -> Result<()> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || service.store().mark_nudge(id, status, &detail)).await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::StaffEntry;
    use policybot_index::{PolicySource, parse_policy};

    fn register(store: &Store, version: &str, rule: &str) {
        let text = format!("ICT Policy\nVersion: {version}\n\nEmail\n\n1. Staff must use school email.\n2. {rule}\n");
        let mut policies = vec![parse_policy(&PolicySource {
            school: "oak",
            source: "ict.txt",
            text: &text,
            modified: None,
        })];
        store.register_versions(&mut policies).unwrap();
    }

    fn directory() -> Directory {
        let entry = |name: &str| StaffEntry {
            name: name.into(),
            school: "oak".into(),
            role: "Teacher".into(),
            matrix: None,
            email: vec![format!("{name}@oak.example")],
            prefer: None,
            line_manager: None,
        };
        Directory::new(vec![entry("amira"), entry("tom")], &["oak"]).unwrap()
    }

    #[test]
    fn outstanding_follows_the_live_version_and_the_ledger() {
        let store = Store::in_memory().unwrap();
        let directory = directory();
        register(&store, "1.0", "Staff must not use WhatsApp.");
        store
            .acknowledge("oak:amira", "oak", "ict-policy", "1.0", "link")
            .unwrap();
        let status = status(&directory, &store, Some("oak")).unwrap();
        assert_eq!((status[0].staff, status[0].acknowledged.len()), (2, 1));
        assert_eq!(status[0].outstanding[0].member.name, "tom");
        assert_eq!(status[0].outstanding[0].since, None);

        // A new version: Amira is due again, with what she last acknowledged.
        register(&store, "2.0", "Staff must not use WhatsApp or Signal.");
        let status = self::status(&directory, &store, Some("oak")).unwrap();
        assert_eq!(status[0].live.version, "2.0");
        assert_eq!(status[0].outstanding.len(), 2);
        let amira = status[0].outstanding.iter().find(|o| o.member.name == "amira").unwrap();
        assert_eq!(amira.since.as_deref(), Some("1.0"));
    }

    #[test]
    fn acknowledgements_are_plain_and_never_negated() {
        for yes in [
            "I acknowledge",
            "Acknowledged.",
            "I have read and understood it",
            "✅",
            "yes",
            "I acknowledge this policy, thanks",
        ] {
            assert!(is_acknowledgement(yes), "{yes}");
        }
        for no in [
            "I don't acknowledge this",
            "I cannot acknowledge it yet",
            "What changed?",
            "",
            "Not yet",
        ] {
            assert!(!is_acknowledgement(no), "{no}");
        }
    }

    #[test]
    fn a_link_works_for_its_nudge_only() {
        let store = Store::in_memory().unwrap();
        register(&store, "1.0", "Staff must not use WhatsApp.");
        let plan = |staff: &str| PlannedNudge {
            staff: staff.into(),
            school: "oak".into(),
            policy: "ict-policy".into(),
            version: "1.0".into(),
            since_version: None,
            attempt: 1,
            channel: "email".into(),
            address: format!("{staff}@oak.example"),
        };
        store
            .plan_campaign("now", None, &[plan("oak:amira"), plan("oak:tom")])
            .unwrap();
        let key = store.signing_key().unwrap();
        let nudges = store.unsent_nudges("email", 10).unwrap();
        let amira = token(&key, &nudges[0]);
        assert_eq!(verify(&store, &amira).unwrap().unwrap().plan.staff, "oak:amira");
        // Tom's id with Amira's signature, a made-up signature, nonsense: no.
        let (_, signature) = amira.split_once('-').unwrap();
        assert!(
            verify(&store, &format!("{}-{signature}", nudges[1].id))
                .unwrap()
                .is_none()
        );
        assert!(
            verify(&store, &format!("{}-{}", nudges[0].id, "0".repeat(32)))
                .unwrap()
                .is_none()
        );
        assert!(verify(&store, "garbage").unwrap().is_none());
        assert!(verify(&store, "999-abc").unwrap().is_none());

        let text = message(&store, "Amira", &nudges[0], "http://x/ack/1-ab").unwrap();
        assert!(text.subject.contains("ICT Policy (version 1.0)"));
        assert!(text.plain.contains("You have not acknowledged this policy before."));
    }
}
