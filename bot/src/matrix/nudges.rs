//! Acknowledgement nudges over Matrix: each a notice in a direct chat with
//! the member of staff (made if there is none), from the persisted plan,
//! paced (`nudge::send_planned`). The transaction id comes
//! from the nudge, so a nudge sent again after a crash is one event on the
//! server. Acknowledgements come back as a ✅ reaction or an "I acknowledge"
//! reply (see `handlers.rs`).
//!
//! A batch's direct chats are made before its nudges are sent (see
//! `before_batch`), and made here rather than with matrix-sdk's `create_dm`:
//! that reads the account's whole `m.direct` list from the server and
//! writes it back for every chat it makes, and the homeserver then syncs it
//! back, so with thousands of staff each nudge took longer than the last
//! (4.6 nudges/s at first, ~1/s after 3,000). The chat each member of staff
//! is nudged in is kept in the store, and new chats are added to `m.direct`
//! once per batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::events::direct::DirectEventContent;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedTransactionId, OwnedUserId, UserId};
use matrix_sdk::{Client, Room, RoomState};
use tokio::sync::watch;

use super::{Bot, CHANNEL};
use crate::nudge::{self, Deliver, Sending, Step};
use crate::store::acks::Nudge;

/// One nudge at a time: each is encrypted for a member of staff the bot
/// has not met, and matrix-sdk holds a send back while another send's
/// device-key query is in flight (5 s per nudge at four in flight, before
/// chats were made ahead of a batch). Synapse making the chats, at a full
/// core, is what limits a campaign now, not the bot's sends.
const IN_FLIGHT: usize = 1;

/// Sends Matrix nudges until the service stops; new campaigns are picked
/// up as they are planned.
pub async fn send(client: Client, bot: Arc<Bot>, link_base: String, pace: Duration, stopping: watch::Receiver<bool>) {
    let service = bot.service.clone();
    let sender = Arc::new(MatrixSender {
        client,
        bot,
        link_base,
        new_chats: Mutex::default(),
    });
    let sending = Sending {
        channel: CHANNEL,
        in_flight: IN_FLIGHT,
        pace,
    };
    if let Err(e) = nudge::send_planned(service, sending, sender, stopping).await {
        tracing::error!("matrix nudges stopped: {e:#}");
    }
}

struct MatrixSender {
    client: Client,
    bot: Arc<Bot>,
    link_base: String,
    /// Direct chats made since `m.direct` was last written.
    new_chats: Mutex<Vec<(OwnedUserId, OwnedRoomId)>>,
}

impl Deliver for MatrixSender {
    async fn deliver(&self, nudge: Nudge) -> Result<Step> {
        self.bot.nudging();
        let id = nudge.id;
        match self.one(nudge).await {
            Ok(()) => Ok(Step::Next),
            // The homeserver is away or refusing for now: nothing is
            // dropped, the nudge stays planned and is tried again.
            Err(e) => {
                tracing::warn!(nudge = id, "matrix nudge not sent, will retry: {e:#}");
                Ok(Step::Pause)
            }
        }
    }

    /// Makes the batch's new direct chats before any of its nudges is
    /// sent. The bot learns a new member's devices from a key query its
    /// sync sends once it sees them in an encrypted room, and a send waits
    /// for that query (up to 5 s); with the chats made first, one query
    /// covers the batch before the sends begin.
    async fn before_batch(&self, batch: &[Nudge]) {
        let service = &self.bot.service;
        for nudge in batch {
            self.bot.nudging();
            match nudge::still_needed(service.store(), service.directory(), nudge) {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => continue,
                Err(e) => {
                    tracing::warn!("reading the ledger: {e:#}");
                    return;
                }
            }
            let Ok(user) = UserId::parse(&nudge.plan.address) else {
                continue;
            };
            match self.direct_chat(&user).await {
                // Refused: its nudge is recorded as failed when delivered.
                Ok(_) | Err(ChatError::Refused(_)) => {}
                // The homeserver is away: the nudges will wait anyway.
                Err(ChatError::Other(e)) => {
                    tracing::warn!("making direct chats for nudges: {e:#}");
                    return;
                }
            }
        }
    }

    async fn after_batch(&self) {
        let chats = std::mem::take(&mut *self.new_chats.lock().expect("lock poisoned"));
        if chats.is_empty() {
            return;
        }
        if let Err(e) = self.mark_direct(&chats).await {
            // Only the bot account's own view of its chats: the store knows
            // which chat each nudge went to. Tried again after the next batch.
            tracing::warn!("could not list {} new direct chats in m.direct: {e}", chats.len());
            self.new_chats.lock().expect("lock poisoned").extend(chats);
        }
    }
}

impl MatrixSender {
    async fn one(&self, planned: Nudge) -> Result<()> {
        let id = planned.id;
        let service = self.bot.service.clone();
        let base = self.link_base.clone();
        let for_prepare = planned.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            nudge::prepare(service.store(), service.directory(), &base, &for_prepare)
        })
        .await??;
        let Some((_, text)) = prepared else { return Ok(()) };
        let service = &self.bot.service;
        let Ok(user) = UserId::parse(&planned.plan.address) else {
            let detail = format!("'{}' is not a Matrix user id", planned.plan.address);
            return nudge::mark(service, id, "failed", detail).await;
        };
        let room = match self.direct_chat(&user).await {
            Ok(room) => room,
            Err(ChatError::Refused(e)) => {
                tracing::error!(nudge = id, to = %user, "no direct chat with them: {e}");
                return nudge::mark(service, id, "failed", format!("no direct chat: {e}")).await;
            }
            Err(ChatError::Other(e)) => return Err(e),
        };
        let txn = OwnedTransactionId::from(format!("policybot-nudge-{id}"));
        nudge::mark(service, id, "sending", txn.to_string()).await?;
        let content = RoomMessageEventContent::notice_html(
            format!("{}\n\n{}", text.subject, text.plain),
            format!(
                "<p><strong>{}</strong></p>{}",
                policybot_index::render::escape(&text.subject),
                text.html
            ),
        );
        match room.send(content).with_transaction_id(txn).await {
            Ok(sent) => {
                crate::failpoint::check(crate::failpoint::NUDGE_AFTER_SEND);
                nudge::mark(service, id, "sent", sent.response.event_id.to_string()).await?;
                tracing::info!(nudge = id, to = %user, "matrix nudge sent");
            }
            Err(e) if super::handlers::permanent(e.as_client_api_error()) => {
                nudge::mark(service, id, "failed", e.to_string()).await?;
                tracing::error!(nudge = id, to = %user, "matrix nudge refused: {e}");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The direct chat `user` is nudged in: the one made for them before
    /// (kept in the store), else one the account already lists as direct
    /// with them, else a new one, encrypted, with them invited.
    async fn direct_chat(&self, user: &UserId) -> Result<Room, ChatError> {
        let store = || self.bot.service.store();
        let key = format!("direct chat {user}");
        let recorded = store()
            .channel_state(CHANNEL, &key)?
            .and_then(|id| OwnedRoomId::try_from(id).ok());
        let existing = match &recorded {
            Some(id) => match self
                .client
                .get_room(id)
                .filter(|room| room.state() == RoomState::Joined)
            {
                Some(room) => Some(room),
                // Made just before a crash, before the client's own store
                // kept it (or the bot was made to leave): the same chat, so
                // a nudge sent again is not a second message.
                None => match self.client.join_room_by_id(id).await {
                    Ok(room) => Some(room),
                    Err(e) if super::handlers::permanent(e.as_client_api_error()) => None,
                    Err(e) => return Err(ChatError::Other(e.into())),
                },
            },
            None => self.client.get_dm_room(user),
        };
        if let Some(room) = existing {
            if recorded.as_deref() != Some(room.room_id()) {
                store().set_channel_state(CHANNEL, &key, room.room_id().as_str())?;
            }
            invite_back(&room, user).await?;
            return Ok(room);
        }
        let mut request = create_room::v3::Request::new();
        request.invite = vec![user.to_owned()];
        request.is_direct = true;
        request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
        request.initial_state = vec![
            InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults())
                .to_raw_any(),
        ];
        let made = match self.client.send(request).await {
            Ok(made) => made,
            Err(e) if super::handlers::permanent(e.as_client_api_error()) => {
                return Err(ChatError::Refused(e.to_string()));
            }
            Err(e) => return Err(ChatError::Other(e.into())),
        };
        let room_id = made.room_id;
        store().set_channel_state(CHANNEL, &key, room_id.as_str())?;
        self.new_chats
            .lock()
            .expect("lock poisoned")
            .push((user.to_owned(), room_id.clone()));
        // The room as the client knows it, now rather than when sync brings
        // it: a send into a room sync has just brought waits 5 s for the
        // device-key query sync started for the invited member (they have no
        // devices yet). Joining a room the bot is in changes nothing on the
        // server.
        let room = self.client.join_room_by_id(&room_id).await?;
        Ok(room)
    }

    /// Adds new direct chats to the account's `m.direct` list in one write.
    async fn mark_direct(&self, chats: &[(OwnedUserId, OwnedRoomId)]) -> Result<()> {
        let account = self.client.account();
        let mut content: DirectEventContent = account
            .fetch_account_data_static::<DirectEventContent>()
            .await?
            .map(|raw| raw.deserialize())
            .transpose()?
            .unwrap_or_default();
        for (user, room) in chats {
            let rooms = content.entry(user.clone().into()).or_default();
            if !rooms.contains(room) {
                rooms.push(room.clone());
            }
        }
        account.set_account_data(content).await?;
        Ok(())
    }
}

/// Someone who left their direct chat with the bot (or turned down its
/// invitation) is invited back to it, rather than nudged in an empty room.
async fn invite_back(room: &Room, user: &UserId) -> Result<(), ChatError> {
    let left = room
        .get_member_no_sync(user)
        .await
        .ok()
        .flatten()
        .is_some_and(|member| *member.membership() == MembershipState::Leave);
    if !left {
        return Ok(());
    }
    tracing::info!(room = %room.room_id(), %user, "inviting them back to their direct chat for a nudge");
    match room.invite_user_by_id(user).await {
        Ok(()) => Ok(()),
        Err(e) if super::handlers::permanent(e.as_client_api_error()) => Err(ChatError::Refused(e.to_string())),
        Err(e) => Err(ChatError::Other(e.into())),
    }
}

/// Why there is no direct chat to nudge someone in.
enum ChatError {
    /// The homeserver will not make one (no such user, not allowed).
    Refused(String),
    /// Away or failing for now: try again later.
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for ChatError {
    fn from(e: E) -> Self {
        ChatError::Other(e.into())
    }
}
