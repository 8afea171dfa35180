//! The event handlers: invites, messages, and messages the bot could not
//! decrypt. Each decides whether the event is for the bot, then hands the
//! question to the service and sends its reply.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use matrix_sdk::event_handler::Ctx;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::reaction::OriginalSyncReactionEvent;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, OriginalSyncRoomMessageEvent, Relation, ReplyWithinThread, RoomMessageEventContent,
};
use matrix_sdk::ruma::{EventId, MilliSecondsSinceUnixEpoch, OwnedTransactionId, RoomId};
use matrix_sdk::{Client, Room, RoomMemberships, RoomState};
use serde_json::json;

use super::message::{self, Read, Said};
use super::{Bot, CHANNEL};
use crate::backoff::Backoff;
use crate::service::{Channel, Who};
use crate::store::audit::{Kind, NewEvent, sha256_hex};
use crate::{conversation, nudge};

pub fn register(client: &Client, bot: Arc<Bot>) {
    client.add_event_handler_context(bot);
    client.add_event_handler(on_invite);
    client.add_event_handler(on_message);
    client.add_event_handler(on_undecryptable);
    client.add_event_handler(on_reaction);
}

const UNDECRYPTABLE: &str = "I couldn't decrypt your message, so I can't answer it. Please send it again; if this \
keeps happening, ask me in a direct message or tell your e-safety lead.";

async fn on_invite(event: StrippedRoomMemberEvent, room: Room, Ctx(bot): Ctx<Arc<Bot>>) {
    if event.state_key != bot.own || event.content.membership != MembershipState::Invite {
        return;
    }
    if room.state() != RoomState::Invited {
        return;
    }
    let inviter = event.sender.clone();
    let on_staff = bot.service.directory().by_matrix(inviter.as_str()).is_some();
    let allowed = bot.room_allowed(room.room_id(), Some(inviter.server_name()));
    if on_staff && allowed {
        match join(&room).await {
            Ok(()) => {
                remember_join(&bot, room.room_id());
                tracing::info!(room = %room.room_id(), %inviter, "joined");
            }
            Err(e) => tracing::warn!(room = %room.room_id(), "could not join: {e:#}"),
        }
        return;
    }
    let reason = if on_staff {
        "the room is not on the bot's allow-list"
    } else {
        "the inviter is not on the staff list"
    };
    tracing::warn!(room = %room.room_id(), %inviter, reason, "refusing an invite");
    if let Err(e) = room.leave().await {
        tracing::warn!(room = %room.room_id(), "could not refuse the invite: {e}");
    }
    let reference = format!("invite {} {}", room.room_id(), inviter);
    let service = bot.service.clone();
    let record = tokio::task::spawn_blocking(move || -> Result<()> {
        if service.store().exchange_for(CHANNEL, &reference)?.is_some() {
            return Ok(());
        }
        let mut refused = NewEvent::new(Kind::Refused, json!({ "invite": reference, "reason": reason }));
        refused.asker = format!("unknown:{inviter}");
        refused.channel = CHANNEL.to_owned();
        refused.reference = reference;
        service.record_event(refused)?;
        Ok(())
    })
    .await;
    if let Ok(Err(e)) | Err(e) = record.map_err(anyhow::Error::from) {
        tracing::error!("recording a refused invite: {e:#}");
    }
}

/// Joins, retrying: Synapse can report an invite before the room is ready
/// to be joined.
async fn join(room: &Room) -> Result<()> {
    let mut backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        match room.join().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(room = %room.room_id(), "join failed ({e}), retrying");
                tokio::time::sleep(backoff.next_wait()).await;
            }
            Err(e) => bail!(e),
        }
    }
}

/// When the bot joined each room: messages from before that are history and
/// are never answered.
fn remember_join(bot: &Bot, room: &RoomId) {
    let now = MilliSecondsSinceUnixEpoch::now().get().to_string();
    if let Err(e) = bot.service.store().set_channel_state(CHANNEL, &joined_key(room), &now) {
        tracing::error!(%room, "remembering the join: {e:#}");
    }
}

fn joined_key(room: &RoomId) -> String {
    format!("joined {room}")
}

/// Whether an event in `room` is older than the bot's presence there.
fn from_before_joining(bot: &Bot, room: &RoomId, at: MilliSecondsSinceUnixEpoch) -> bool {
    if bot.catching_up.load(Ordering::SeqCst) {
        return true;
    }
    let joined = bot
        .service
        .store()
        .channel_state(CHANNEL, &joined_key(room))
        .ok()
        .flatten();
    joined
        .and_then(|j| j.parse::<u64>().ok())
        .is_some_and(|j| u64::from(at.get()) < j)
}

/// A room with the bot and one other member (joined or invited). The
/// member list is fetched once per room, then kept up to date by sync.
async fn is_direct(room: &Room) -> bool {
    match room.members(RoomMemberships::ACTIVE).await {
        Ok(members) => members.len() <= 2,
        Err(_) => room.active_members_count() <= 2,
    }
}

async fn on_message(event: OriginalSyncRoomMessageEvent, room: Room, Ctx(bot): Ctx<Arc<Bot>>) {
    if event.sender == bot.own || room.state() != RoomState::Joined {
        return;
    }
    if from_before_joining(&bot, room.room_id(), event.origin_server_ts) {
        return;
    }
    let handled = match message::read(&event.content) {
        Read::Ignored => return,
        Read::Text(said) => handle_message(&bot, &room, &event, &said).await,
        Read::Edit { of, now } => handle_edit(&bot, &room, &event, &of, &now).await,
    };
    if let Err(e) = handled {
        tracing::error!(event = %event.event_id, room = %room.room_id(), "answering: {e:#}");
    }
}

/// What the bot says to an edit of a question it has answered: its answer
/// is to the question as first sent.
const ANSWER_STANDS: &str = "You edited your message after I answered it: my answer is to what it said \
first. To ask what it says now, send it as a new message.";

/// An edited message. An edit of a question not answered yet (a mention
/// added in a staff room, say) is answered as the question now reads, in
/// its place; after that, or if it was answered already, the sender is told
/// once that the answer stands for the first version.
async fn handle_edit(
    bot: &Arc<Bot>,
    room: &Room,
    edit: &OriginalSyncRoomMessageEvent,
    of: &EventId,
    now: &Said,
) -> Result<()> {
    let store = bot.service.store();
    let stands = format!("edited {of}");
    if store.delivered(CHANNEL, &stands)? {
        return Ok(());
    }
    // The original says where the conversation is (its thread) and who
    // asked: only its sender may edit it, and only messages from after the
    // bot joined are questions.
    let fetched = room.event(of, None).await.context("fetching the edited message")?;
    let original: OriginalSyncRoomMessageEvent = fetched
        .raw()
        // Only a message can be edited into a message.
        .deserialize_as_unchecked()
        .context("the edited message is not a message")?;
    if original.sender != edit.sender || from_before_joining(bot, room.room_id(), original.origin_server_ts) {
        return Ok(());
    }
    if !store.delivered(CHANNEL, original.event_id.as_str())? {
        return handle_message(bot, room, &original, now).await;
    }
    let content = RoomMessageEventContent::notice_plain(ANSWER_STANDS);
    let content = if is_direct(room).await {
        content.make_reply_to(edit, ForwardThread::Yes, AddMentions::No)
    } else {
        // The answer is in the thread on the question.
        content.make_for_thread(&original, ReplyWithinThread::No, AddMentions::No)
    };
    send(bot, room, content, &stands).await
}

/// Answers `event` (a question, or the message an edit changed), which says
/// `said`.
async fn handle_message(bot: &Arc<Bot>, room: &Room, event: &OriginalSyncRoomMessageEvent, said: &Said) -> Result<()> {
    let direct = is_direct(room).await;
    let thread_root = match &event.content.relates_to {
        Some(Relation::Thread(thread)) => Some(thread.event_id.clone()),
        _ => None,
    };
    // Group rooms: a thread (new or continued) per question. Direct chats:
    // the thread if there is one, else the chat itself.
    let conversation_key = match (&thread_root, direct) {
        (Some(root), _) => format!("{} {root}", room.room_id()),
        (None, true) => room.room_id().to_string(),
        (None, false) => format!("{} {}", room.room_id(), event.event_id),
    };
    let store = bot.service.store();
    let mentioned = said.mentions.as_ref().is_some_and(|m| m.user_ids.contains(&bot.own))
        || bot.names.mentioned_in(&said.text, said.html.as_deref());
    let in_our_thread = thread_root.is_some() && store.answered_in(CHANNEL, &conversation_key)?;
    if !(direct || mentioned || in_our_thread) {
        return Ok(());
    }
    let reference = event.event_id.to_string();
    if store.delivered(CHANNEL, &reference)? {
        return Ok(());
    }

    let text = bot.names.strip_address(&said.text).to_owned();
    let sender = event.sender.to_string();
    // "I acknowledge" in a direct chat: a reply to a nudge acknowledges that
    // nudge, anything else the latest nudge sent to them.
    if direct && nudge::is_acknowledgement(&text) {
        let replied_to = match &event.content.relates_to {
            Some(Relation::Reply(r)) => Some(r.in_reply_to.event_id.to_string()),
            _ => None,
        };
        let service = bot.service.clone();
        let who = sender.clone();
        let reply = tokio::task::spawn_blocking(move || -> Result<Option<crate::commands::Reply>> {
            let store = service.store();
            let found = match replied_to {
                Some(id) => store.nudge_sent_as(CHANNEL, &id)?,
                None => store.latest_nudge_to(CHANNEL, &who)?,
            };
            found
                .map(|n| nudge::acknowledge_by_reply(&service, &n, &who, CHANNEL))
                .transpose()
        })
        .await??;
        if let Some(reply) = reply {
            let content = RoomMessageEventContent::notice_html(reply.plain, reply.html).make_reply_to(
                event,
                ForwardThread::Yes,
                AddMentions::No,
            );
            return send(bot, room, content, &reference).await;
        }
    }
    let service = bot.service.clone();
    let asked = reference.clone();
    let reply = tokio::task::spawn_blocking(move || {
        conversation::respond(
            &service,
            &Who::Matrix(&sender),
            Channel::Matrix,
            &asked,
            &conversation_key,
            &text,
        )
    })
    .await??;
    // A thank-you needs no answer.
    let Some(reply) = reply else { return Ok(()) };
    let content = RoomMessageEventContent::notice_html(reply.plain, reply.html);
    let content = if direct {
        content.make_reply_to(event, ForwardThread::Yes, AddMentions::No)
    } else {
        content.make_for_thread(event, ReplyWithinThread::Yes, AddMentions::No)
    };
    send(bot, room, content, &reference).await
}

async fn on_undecryptable(event: OriginalSyncRoomEncryptedEvent, room: Room, Ctx(bot): Ctx<Arc<Bot>>) {
    if event.sender == bot.own || room.state() != RoomState::Joined {
        return;
    }
    if from_before_joining(&bot, room.room_id(), event.origin_server_ts) {
        return;
    }
    tracing::warn!(event = %event.event_id, room = %room.room_id(), sender = %event.sender, "could not decrypt");
    // In a group room the message may not even be for the bot: tell each
    // sender once rather than answer every message.
    if !is_direct(&room).await {
        let key = (room.room_id().to_owned(), event.sender.clone());
        let mut told = bot.told_undecryptable.lock().unwrap_or_else(|p| p.into_inner());
        if !told.insert(key) {
            return;
        }
    }
    let reference = format!("undecryptable {}", event.event_id);
    match bot.service.store().delivered(CHANNEL, &reference) {
        Ok(false) => {}
        Ok(true) => return,
        Err(e) => {
            tracing::error!("{e:#}");
            return;
        }
    }
    let content = RoomMessageEventContent::notice_plain(format!("{}: {UNDECRYPTABLE}", event.sender))
        .add_mentions(Mentions::with_user_ids([event.sender.clone()]));
    if let Err(e) = send(&bot, &room, content, &reference).await {
        tracing::error!(room = %room.room_id(), "telling {} their message was unreadable: {e:#}", event.sender);
    }
}

/// A ✅ (or 👍) on a nudge acknowledges it, for the person who reacted if
/// it was theirs.
async fn on_reaction(event: OriginalSyncReactionEvent, room: Room, Ctx(bot): Ctx<Arc<Bot>>) {
    if event.sender == bot.own || room.state() != RoomState::Joined {
        return;
    }
    if from_before_joining(&bot, room.room_id(), event.origin_server_ts) {
        return;
    }
    let key = event.content.relates_to.key.trim_end_matches('\u{fe0f}');
    if !["✅", "✔", "☑", "👍"].contains(&key) {
        return;
    }
    let reference = format!("reaction {}", event.event_id);
    let service = bot.service.clone();
    let (nudged, sender) = (event.content.relates_to.event_id.to_string(), event.sender.to_string());
    let reply = tokio::task::spawn_blocking(move || -> Result<Option<crate::commands::Reply>> {
        let store = service.store();
        if store.delivered(CHANNEL, &reference)? {
            return Ok(None);
        }
        store
            .nudge_sent_as(CHANNEL, &nudged)?
            .map(|n| nudge::acknowledge_by_reply(&service, &n, &sender, CHANNEL))
            .transpose()
    })
    .await;
    let reply = match reply {
        Ok(Ok(Some(reply))) => reply,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => return tracing::error!(event = %event.event_id, "acknowledging by reaction: {e:#}"),
        Err(e) => return tracing::error!(event = %event.event_id, "acknowledging by reaction: {e}"),
    };
    let content = RoomMessageEventContent::notice_html(reply.plain, reply.html);
    if let Err(e) = send(&bot, &room, content, &format!("reaction {}", event.event_id)).await {
        tracing::error!(room = %room.room_id(), "thanking for an acknowledgement: {e:#}");
    }
}

/// Most attempts at sending one reply before it is left for the next run
/// (the sync token has not moved past it, so it comes round again).
const SEND_ATTEMPTS: usize = 8;

/// Sends a reply, retrying while the homeserver is away, and records its
/// delivery. The transaction id is derived from the message answered, so a
/// retried send (even after a restart) is one event on the server.
async fn send(bot: &Bot, room: &Room, content: RoomMessageEventContent, reference: &str) -> Result<()> {
    let txn = OwnedTransactionId::from(format!("policybot-{}", &sha256_hex(reference)[..32]));
    let mut backoff = Backoff::default();
    let mut attempt = 1;
    loop {
        match room.send(content.clone()).with_transaction_id(txn.clone()).await {
            Ok(_) => break,
            Err(e) if attempt < SEND_ATTEMPTS && !bot.stopping() && !permanent(e.as_client_api_error()) => {
                let wait = backoff.next_wait();
                tracing::warn!(room = %room.room_id(), "sending a reply failed ({e}); retrying in {}s", wait.as_secs());
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => {
                // Keep the sync token where it is, so the message comes round again.
                bot.undelivered.store(true, Ordering::SeqCst);
                bail!("sending the reply to {reference}: {e}");
            }
        }
    }
    bot.service.store().mark_delivered(CHANNEL, reference)?;
    Ok(())
}

/// A refusal the server will repeat however often we ask (not in the room,
/// forbidden), as opposed to a rate limit or a server that is away.
pub(super) fn permanent(error: Option<&matrix_sdk::ruma::api::error::Error>) -> bool {
    error.is_some_and(|e| {
        let status = e.status_code.as_u16();
        (400..500).contains(&status) && status != 429
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggestion_is_sent_with_its_clauses_in_both_bodies() {
        let reply = crate::conversation::tests::suggestion_reply();
        let content = RoomMessageEventContent::notice_html(reply.plain.clone(), reply.html.clone());
        let sent = serde_json::to_value(&content).unwrap();
        assert_eq!(sent["msgtype"], "m.notice", "{sent}");
        assert_eq!(sent["body"], reply.plain.as_str(), "{sent}");
        assert_eq!(sent["format"], "org.matrix.custom.html", "{sent}");
        assert_eq!(sent["formatted_body"], reply.html.as_str(), "{sent}");
    }
}
