//! Acknowledgement nudges over Matrix: each a notice in a direct chat with
//! the member of staff (made if there is none), from the persisted plan,
//! paced. The transaction id comes from the nudge, so a nudge sent again
//! after a crash is one event on the server. Acknowledgements come back as
//! a ✅ reaction or an "I acknowledge" reply (see `handlers.rs`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use matrix_sdk::Client;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedTransactionId, UserId};
use tokio::sync::watch;

use super::{Bot, CHANNEL};
use crate::nudge;

/// Sends Matrix nudges until the service stops; new campaigns are picked
/// up as they are planned.
pub async fn send(
    client: Client,
    bot: Arc<Bot>,
    link_base: String,
    pace: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let service = bot.service.clone();
        let batch = tokio::task::spawn_blocking(move || service.store().unsent_nudges(CHANNEL, 100)).await;
        let batch = match batch {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::error!("reading planned nudges: {e:#}");
                Vec::new()
            }
            Err(e) => {
                tracing::error!("reading planned nudges: {e}");
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                _ = stopping.wait_for(|&stop| stop) => return,
            }
        }
        for planned in batch {
            if *stopping.borrow() {
                return;
            }
            match send_one(&client, &bot, &link_base, planned).await {
                Ok(()) => {}
                // The homeserver is away or refusing for now: nothing is
                // dropped, the nudge stays planned and is tried again.
                Err(e) => {
                    tracing::warn!("matrix nudge not sent, will retry: {e:#}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(10)) => {}
                        _ = stopping.wait_for(|&stop| stop) => return,
                    }
                    break;
                }
            }
            tokio::time::sleep(pace).await;
        }
    }
}

async fn send_one(client: &Client, bot: &Arc<Bot>, link_base: &str, planned: crate::store::acks::Nudge) -> Result<()> {
    let id = planned.id;
    let service = bot.service.clone();
    let base = link_base.to_owned();
    let for_prepare = planned.clone();
    let prepared =
        tokio::task::spawn_blocking(move || nudge::prepare(service.store(), service.directory(), &base, &for_prepare))
            .await??;
    let Some((_, text)) = prepared else { return Ok(()) };
    let mark = |status: &'static str, detail: String| {
        let service = bot.service.clone();
        tokio::task::spawn_blocking(move || service.store().mark_nudge(id, status, &detail))
    };
    let Ok(user) = UserId::parse(&planned.plan.address) else {
        mark("failed", format!("'{}' is not a Matrix user id", planned.plan.address)).await??;
        return Ok(());
    };
    let room = match client.get_dm_room(&user) {
        Some(room) => room,
        None => client.create_dm(&user).await?,
    };
    let txn = OwnedTransactionId::from(format!("policybot-nudge-{id}"));
    mark("sending", txn.to_string()).await??;
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
            mark("sent", sent.response.event_id.to_string()).await??;
            tracing::info!(nudge = id, to = %user, "matrix nudge sent");
        }
        Err(e) if super::handlers::permanent(&e) => {
            mark("failed", e.to_string()).await??;
            tracing::error!(nudge = id, to = %user, "matrix nudge refused: {e}");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
