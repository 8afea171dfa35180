//! The Matrix channel: staff ask in a direct message, or mention the bot in a
//! staff room, and get the quoted clause back as a notice in the thread.
//!
//! Event handlers are registered on one `matrix-sdk` client, like the SDK's
//! example bots; each is a thin adapter over [`Service::answer`]. The sync
//! loop keeps its own sync token in the store and moves it on only after
//! every event in a sync has been handled, so a crash or restart replays the
//! unhandled events. The audit log (keyed by event id) and the deliveries
//! table make that replay harmless: a replayed message reuses its recorded
//! exchange and a delivered reply is not sent again. Replies carry a
//! transaction id derived from the event id, so even a send that reached the
//! server just before a crash is not doubled.

mod handlers;
pub mod message;
mod nudges;
pub mod routing;
mod session;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId, ServerName};
use matrix_sdk::{Client, RoomState};
use tokio::sync::watch;

use crate::backoff::{Backoff, sleep_or_stop};
use crate::config::Matrix;
use crate::service::Service;
use routing::{AllowList, Names};

/// The store's name for this channel (audit events, deliveries, state).
pub const CHANNEL: &str = "matrix";

/// How long one sync waits on the server for news.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// At most one sync a second while a campaign is being sent: making a chat
/// per member of staff wakes sync four times a nudge, which would keep the
/// homeserver computing syncs, whose cost grows with every room the bot is
/// in. Otherwise the next sync starts at once: a question that came while
/// the bot waited out the second waited with it (p50 563 ms, against 36
/// ms without the wait).
const MIN_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// How long after its last nudge a campaign still counts as being sent
/// (a batch's chats are made, then its nudges go out at the campaign's pace).
const CAMPAIGN_SETTLES: Duration = Duration::from_secs(10);

/// How often the joined rooms are checked against the allow-list (and at
/// start).
const ROOM_CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// How acknowledgement nudges go out: where their links point, and how
/// often one may be sent.
pub struct Nudging {
    pub link_base: String,
    pub pace: Duration,
}

/// What the handlers share.
pub struct Bot {
    service: Arc<Service>,
    own: OwnedUserId,
    names: Names,
    allowed: AllowList,
    /// Set while the first sync of a new bot is handled: everything in it is
    /// history from before the bot was here.
    catching_up: AtomicBool,
    /// Set when a reply could not be sent: the sync token then stays put.
    undelivered: AtomicBool,
    /// Senders already told in a group room that their message could not be
    /// decrypted, so the room is not flooded with notices.
    told_undecryptable: Mutex<HashSet<(OwnedRoomId, OwnedUserId)>>,
    /// When nudges were last being sent (see [`MIN_SYNC_INTERVAL`]).
    nudged_at: Mutex<Option<Instant>>,
    shutdown: watch::Receiver<bool>,
}

impl Bot {
    fn room_allowed(&self, room: &RoomId, inviter_server: Option<&ServerName>) -> bool {
        self.allowed.allows(
            room.as_str(),
            room.server_name().map(ServerName::as_str),
            inviter_server.map(ServerName::as_str),
        )
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A campaign's nudges are going out now.
    fn nudging(&self) {
        *self.nudged_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn campaign_running(&self) -> bool {
        self.nudged_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < CAMPAIGN_SETTLES)
    }
}

/// Runs the Matrix channel until `shutdown` turns true. A homeserver that is
/// down or goes away is retried with backoff; nothing here ends the service.
pub async fn run(
    service: Arc<Service>,
    config: Matrix,
    nudging: Nudging,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let state_dir = config
        .state_dir
        .clone()
        .context("[matrix] state_dir is resolved when the config loads")?;
    let mut backoff = Backoff::default();
    let client = loop {
        match session::connect(&config, &state_dir).await {
            Ok(client) => break client,
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!("matrix: {e:#}; retrying in {}s", wait.as_secs());
                if sleep_or_stop(wait, &mut shutdown).await {
                    return Ok(());
                }
            }
        }
    };
    let own = client.user_id().context("logged in without a user id")?.to_owned();
    let display_name = client.account().get_display_name().await.ok().flatten();
    let allowed = AllowList {
        rooms: config.allowed_rooms.clone(),
        servers: config.allowed_servers.clone(),
        own_server: own.server_name().to_string(),
    };
    let bot = Arc::new(Bot {
        names: Names::new(own.as_str(), display_name.as_deref(), &config.names),
        own,
        service: service.clone(),
        allowed,
        catching_up: AtomicBool::new(false),
        undelivered: AtomicBool::new(false),
        told_undecryptable: Mutex::default(),
        nudged_at: Mutex::default(),
        shutdown: shutdown.clone(),
    });
    handlers::register(&client, bot.clone());
    let sender = tokio::spawn(nudges::send(
        client.clone(),
        bot.clone(),
        nudging.link_base,
        nudging.pace,
        shutdown.clone(),
    ));
    let synced = sync_loop(&client, &bot, &mut shutdown).await;
    sender.abort();
    synced
}

async fn sync_loop(client: &Client, bot: &Arc<Bot>, shutdown: &mut watch::Receiver<bool>) -> Result<()> {
    let store = || bot.service.store();
    let mut token = store().channel_state(CHANNEL, "since")?;
    bot.catching_up.store(token.is_none(), Ordering::SeqCst);
    let mut backoff = Backoff::default();
    let mut connected = false;
    let mut rooms_checked: Option<Instant> = None;
    loop {
        let settings = match &token {
            Some(t) => SyncSettings::default().token(t.clone()),
            None => SyncSettings::default(),
        }
        .timeout(SYNC_TIMEOUT);
        let started = Instant::now();
        let result = tokio::select! {
            result = client.sync_once(settings) => result,
            _ = shutdown.changed() => return Ok(()),
        };
        match result {
            Ok(_) if bot.undelivered.swap(false, Ordering::SeqCst) => {
                // A reply did not go out: sync again from the same point
                // later; what was delivered is not sent twice.
                let wait = backoff.next_wait();
                tracing::warn!(
                    "a reply is undelivered; syncing again from the same point in {}s",
                    wait.as_secs()
                );
                if sleep_or_stop(wait, shutdown).await {
                    return Ok(());
                }
            }
            Ok(response) => {
                // Every event in this sync has been handled: move on.
                store().set_channel_state(CHANNEL, "since", &response.next_batch)?;
                token = Some(response.next_batch);
                bot.catching_up.store(false, Ordering::SeqCst);
                backoff.reset();
                // Every ten minutes, not at every sync: a campaign makes a
                // room per member of staff and wakes sync several times a
                // nudge.
                if rooms_checked.is_none_or(|at| at.elapsed() >= ROOM_CHECK_INTERVAL) {
                    leave_rooms_not_allowed(client, bot).await;
                    rooms_checked = Some(Instant::now());
                }
                if !connected {
                    connected = true;
                    // The line scripts and tests wait for.
                    println!(
                        "policybot: matrix connected as {} (device {})",
                        bot.own,
                        client.device_id().map(|d| d.as_str()).unwrap_or("?")
                    );
                    tracing::info!(user = %bot.own, "matrix connected");
                }
            }
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!("matrix sync failed: {e}; retrying in {}s", wait.as_secs());
                if connected {
                    connected = false;
                    println!("policybot: matrix disconnected, retrying");
                }
                if sleep_or_stop(wait, shutdown).await {
                    return Ok(());
                }
            }
        }
        let pause = if bot.campaign_running() {
            MIN_SYNC_INTERVAL.saturating_sub(started.elapsed())
        } else {
            Duration::ZERO
        };
        if bot.stopping() || sleep_or_stop(pause, shutdown).await {
            return Ok(());
        }
    }
}

/// Leaves joined rooms the configuration does not allow (an allow-list that
/// shrank, or a room joined outside the bot).
async fn leave_rooms_not_allowed(client: &Client, bot: &Bot) {
    for room in client.rooms() {
        // A room id without a server (room version 12) says nothing about
        // where the room lives; the invite was checked when it came.
        let judged = room.room_id().server_name().is_some();
        if room.state() == RoomState::Joined && judged && !bot.room_allowed(room.room_id(), None) {
            tracing::warn!(room = %room.room_id(), "leaving a room the configuration does not allow");
            if let Err(e) = room.leave().await {
                tracing::warn!(room = %room.room_id(), "could not leave: {e}");
            }
        }
    }
}

/// Keeps matrix-sdk from logging an expected absence as an error.
/// matrix-sdk logs every failed request at ERROR before handing the error
/// to its caller, including the 404 "Account data not found" of its own
/// start-up reads (no secret storage, no key backup, no `m.direct` list yet),
/// which those callers take as "none" (three ERROR lines per start of a
/// bot or a bench client). A 404 is always handed back: a caller to which
/// it is a failure reports it, with its context.
pub struct ExpectedAbsence;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ExpectedAbsence {
    fn event_enabled(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        if event.metadata().target() != "matrix_sdk::http_client" {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        !is_expected_absence(&message.0)
    }
}

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// A request error that is the homeserver saying "there is none"
/// (`M_NOT_FOUND`), as matrix-sdk's request log words it.
fn is_expected_absence(message: &str) -> bool {
    message.contains("status_code: 404") && message.contains("kind: NotFound")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects the messages of the events that get through.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Kept {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let mut message = Message::default();
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }

    #[test]
    fn an_absent_account_data_event_is_not_logged_as_an_error() {
        let kept = Kept::default();
        let subscriber = tracing_subscriber::registry().with(kept.clone()).with(ExpectedAbsence);
        tracing::subscriber::with_default(subscriber, || {
            // As matrix-sdk 0.18 logs it (http_client/mod.rs), for Synapse.
            tracing::error!(
                target: "matrix_sdk::http_client",
                "Error while sending request: Api(Server(MatrixError(Error {{ status_code: 404, body: \
                 Standard(StandardErrorBody {{ kind: NotFound, message: \"Account data not found\" }}) }})))"
            );
            tracing::error!(
                target: "matrix_sdk::http_client",
                "Error while sending request: Api(Server(MatrixError(Error {{ status_code: 403, body: \
                 Standard(StandardErrorBody {{ kind: Forbidden, message: \"Invalid password\" }}) }})))"
            );
            tracing::error!(target: "policybot::matrix", "status_code: 404 kind: NotFound, ours");
        });
        let kept = kept.0.lock().unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept[0].contains("Forbidden") && kept[1].contains("ours"));
    }
}
