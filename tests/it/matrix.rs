//! The Matrix channel against a real Synapse: a member of staff (a second
//! matrix-sdk client, driven by the test) asks `policybot serve` in a direct
//! message, in a group room, in an encrypted room; the bot is restarted, and
//! then Synapse is. Without Synapse the test is skipped with a note, except
//! under CI, where it fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use matrix_sdk::ruma::events::relation::Thread;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId, UserId};
use matrix_sdk::{Client, Room};
use policybot_index::render::SUGGEST_HEADLINE;
use serde_json::Value;

use crate::support::{SUGGEST_QUESTION, Sandbox, Serve, acknowledged, example_policies, toml_string, wait_until};
use crate::synapse::Synapse;

const PASSWORD: &str = "a test password";
/// How long a reply may take before the test gives up (not a performance
/// bound: the bench measures latency).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the bot may take to finish what it is doing when told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the bot is given to stay quiet where it must.
const QUIET: Duration = Duration::from_secs(3);

const WHATSAPP: &str = "Can I use WhatsApp to message parents on a school trip?";

#[test]
fn staff_ask_the_bot_in_matrix() {
    let Some(synapse) = Synapse::start() else { return };
    let s = bot_sandbox(&synapse);
    synapse.register("mallory", PASSWORD);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(conversation(&synapse, &s));
}

async fn conversation(synapse: &Synapse, s: &Sandbox) {
    let mut bot = start_bot(s);
    let bot_id: OwnedUserId = "@policybot:localhost".try_into().unwrap();
    let amira = Member::login(&synapse.url, "amira").await;
    let tom = Member::login(&synapse.url, "tom").await;
    let mallory = Member::login(&synapse.url, "mallory").await;

    // A direct message gets the clause, quoted, with its citation, as a
    // notice replying to the question.
    let dm = amira.client.create_dm(&bot_id).await.expect("creating a DM");
    amira.wait_for_member(&dm, &bot_id, MembershipState::Join).await;
    let asked = amira.say_text(&dm, WHATSAPP).await;
    let reply = amira.reply_to(&asked).await;
    assert_eq!(reply.sender, bot_id);
    assert!(reply.notice, "the bot answers with a notice: {reply:?}");
    assert!(
        reply.body.contains('“') && reply.body.contains("Oakfield"),
        "{}",
        reply.body
    );
    let html = reply.html.as_deref().unwrap_or_default();
    assert!(
        html.contains("<blockquote>"),
        "the formatted body quotes the clause: {html}"
    );
    let recorded = audit(s, &asked);
    assert_eq!(recorded["channel"], "matrix");
    assert_eq!(recorded["asker"], "oakfield:amira-shah");
    assert!(recorded["kind"] == "answered" || recorded["kind"] == "declined");

    // A follow-up is asked with the question before it.
    let follow_up = amira.say_text(&dm, "what about on a school phone?").await;
    amira.reply_to(&follow_up).await;
    let question = audit(s, &follow_up)["question"].as_str().unwrap_or_default().to_owned();
    assert!(
        question.contains("WhatsApp") && question.contains("school phone"),
        "{question}"
    );

    // Commands.
    let help = amira.say_text(&dm, "help").await;
    assert!(amira.reply_to(&help).await.body.contains("Commands"));
    let policies = amira.say_text(&dm, "policies").await;
    assert!(amira.reply_to(&policies).await.body.contains("Oakfield"));

    // Not sure: the closest clauses, each after its list's head, no verdict,
    // marked unanswered, in both bodies; the plain one is the reply on the
    // record.
    let unsure = amira.say_text(&dm, SUGGEST_QUESTION).await;
    let suggestion = amira.reply_to(&unsure).await;
    assert!(suggestion.body.starts_with(SUGGEST_HEADLINE), "{}", suggestion.body);
    assert!(suggestion.body.contains("Under ‘Don't:’ — “"), "{}", suggestion.body);
    let html = suggestion.html.as_deref().unwrap_or_default();
    assert!(html.contains("<p>Under ‘Don&#39;t:’</p><blockquote>"), "{html}");
    assert!(html.contains("marked unanswered for the e-safety lead"), "{html}");
    assert!(!html.contains("Also relevant"), "{html}");
    let recorded = audit(s, &unsure);
    assert_eq!(
        (&recorded["kind"], &recorded["mode"]),
        (&"declined".into(), &"suggest".into()),
        "{recorded}"
    );
    assert_eq!(recorded["payload"]["reply"], suggestion.body.as_str(), "{recorded}");

    // A group room: silence unless mentioned; mentioned, the answer comes in
    // a thread, where a follow-up needs no mention.
    let group = amira.create_room(&[&bot_id, tom.id()]).await;
    amira.wait_for_member(&group, &bot_id, MembershipState::Join).await;
    tom.client.join_room_by_id(group.room_id()).await.expect("tom joins");
    amira.wait_for_member(&group, tom.id(), MembershipState::Join).await;
    let chatter = amira.say_text(&group, WHATSAPP).await;
    let mention = RoomMessageEventContent::text_plain(format!("policybot: {WHATSAPP}"))
        .add_mentions(Mentions::with_user_ids([bot_id.clone()]));
    let mentioned = amira.say(&group, mention).await;
    let in_thread = amira.reply_to(&mentioned).await;
    assert_eq!(
        in_thread.thread.as_ref(),
        Some(&mentioned),
        "the answer starts a thread: {in_thread:?}"
    );
    assert!(amira.replies_to(&chatter).is_empty(), "no answer without a mention");
    let mut source = RoomMessageEventContent::text_plain("source");
    source.relates_to = Some(Relation::Thread(Thread::plain(mentioned.clone(), in_thread.id.clone())));
    let source = tom.say(&group, source).await;
    let full = tom.reply_to(&source).await;
    assert!(
        full.body.contains('▶'),
        "source shows the cited clause among its neighbours: {}",
        full.body
    );
    tokio::time::sleep(QUIET).await;
    assert!(
        amira.replies_to(&chatter).is_empty(),
        "still no answer without a mention"
    );

    // An encrypted room: the staff client reads the answer.
    let secret = amira.create_room(&[]).await;
    secret.enable_encryption().await.expect("enabling encryption");
    secret.invite_user_by_id(&bot_id).await.expect("inviting the bot");
    amira.wait_for_member(&secret, &bot_id, MembershipState::Join).await;
    let encrypted = amira.say_text(&secret, WHATSAPP).await;
    let decrypted = amira.reply_to(&encrypted).await;
    assert!(decrypted.encrypted, "the bot answers in the encrypted room encrypted");
    assert!(decrypted.body.contains('“'), "{}", decrypted.body);

    // An invite from someone not on the staff list is refused.
    let unknown = mallory.create_room(&[&bot_id]).await;
    mallory.wait_for_member(&unknown, &bot_id, MembershipState::Leave).await;

    // A restart answers nothing twice, and a message that arrives while the
    // bot is down is answered once it is back.
    assert!(bot.stop_within(STOP_TIMEOUT).success(), "the bot stops cleanly");
    let while_down = amira
        .say_text(&dm, "Can I give pupils my personal mobile number?")
        .await;
    bot = start_bot(s);
    amira.reply_to(&while_down).await;
    tokio::time::sleep(QUIET).await;
    for question in [
        &asked,
        &follow_up,
        &help,
        &policies,
        &mentioned,
        &encrypted,
        &while_down,
    ] {
        assert_eq!(amira.replies_to(question).len(), 1, "one answer to {question}");
    }

    // Synapse goes away mid-conversation and comes back: the bot reconnects
    // and answers, once.
    synapse.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    synapse.restart();
    let after = amira.say_text(&dm, "Can I plug in a memory stick from home?").await;
    amira.reply_to(&after).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(amira.replies_to(&after).len(), 1);
    assert_eq!(amira.replies_to(&asked).len(), 1);

    // Rate limited by the homeserver (M_LIMIT_EXCEEDED with retry_after_ms),
    // the bot waits as told and every question still gets one answer.
    limit_messages(synapse, "@policybot:localhost").await;
    let mut burst = Vec::new();
    for question in [WHATSAPP, "Can I plug in a memory stick from home?", "help"] {
        burst.push(amira.say_text(&dm, question).await);
    }
    for question in &burst {
        amira.reply_to(question).await;
    }
    tokio::time::sleep(QUIET).await;
    for question in &burst {
        assert_eq!(amira.replies_to(question).len(), 1, "one answer to {question}");
    }
    assert!(
        synapse.log().contains("LimitExceeded") || synapse.log().contains("Ratelimit"),
        "the homeserver did rate-limit the bot"
    );

    assert!(bot.stop_within(STOP_TIMEOUT).success());
    let verify = s.run(["audit", "verify"]);
    verify.assert_success();
}

/// What Element sends: a reply to the bot's answer carries the answer,
/// quoted, in `body` and in `<mx-reply>`, and an edit carries its new text
/// in `m.new_content`. The bot answers what the person typed, and an edit
/// once.
#[test]
fn replies_and_edits_from_real_clients_are_read_as_typed() {
    let Some(synapse) = Synapse::start() else { return };
    let s = bot_sandbox(&synapse);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bot = start_bot(&s);
        let bot_id: OwnedUserId = "@policybot:localhost".try_into().unwrap();
        let amira = Member::login(&synapse.url, "amira").await;
        let tom = Member::login(&synapse.url, "tom").await;
        let dm = amira.client.create_dm(&bot_id).await.expect("creating a DM");
        amira.wait_for_member(&dm, &bot_id, MembershipState::Join).await;
        let asked = amira.say_text(&dm, WHATSAPP).await;
        let answer = amira.reply_to(&asked).await;

        // A rich reply to the answer, with both fallbacks, asks something new.
        let typed = "Can I plug in a memory stick from home?";
        let reply = amira.say_raw(&dm, element_reply(&dm, &answer, typed)).await;
        let answered = amira.reply_to(&reply).await;
        let question = audit(&s, &reply)["question"].as_str().unwrap_or_default().to_owned();
        let quoted = answer.body.lines().next().unwrap_or_default();
        assert!(
            question.contains("memory stick") && !question.contains(quoted),
            "the question is what Amira typed, not the answer she replied to: {question}"
        );
        assert_ne!(answered.body, answer.body, "a new answer, about the new text");

        // An edit of an answered question: told once that the answer is to
        // the first version.
        let edit = element_edit(&asked, "Can I use WhatsApp to message parents from home?", None);
        let first_edit = amira.say_raw(&dm, edit.clone()).await;
        let stands = amira.reply_to(&first_edit).await;
        assert!(stands.body.starts_with("You edited your message"), "{}", stands.body);
        let second_edit = amira.say_raw(&dm, edit).await;
        tokio::time::sleep(QUIET).await;
        assert!(amira.replies_to(&second_edit).is_empty(), "told once");
        assert_eq!(amira.replies_to(&asked).len(), 1, "the question is not answered again");

        // In a staff room, a question edited to mention the bot is answered
        // then, as it reads now, in a thread on it; once.
        let group = amira.create_room(&[&bot_id, tom.id()]).await;
        amira.wait_for_member(&group, &bot_id, MembershipState::Join).await;
        tom.client.join_room_by_id(group.room_id()).await.expect("tom joins");
        amira.wait_for_member(&group, tom.id(), MembershipState::Join).await;
        let unaddressed = amira.say_text(&group, typed).await;
        tokio::time::sleep(QUIET).await;
        assert!(amira.replies_to(&unaddressed).is_empty(), "no answer without a mention");
        let mention = format!("policybot: {typed}");
        let addressed = amira
            .say_raw(&group, element_edit(&unaddressed, &mention, Some(&bot_id)))
            .await;
        let in_thread = amira.reply_to(&unaddressed).await;
        assert_eq!(in_thread.thread.as_ref(), Some(&unaddressed), "{in_thread:?}");
        let question = audit(&s, &unaddressed)["question"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(question.contains("memory stick"), "{question}");
        tokio::time::sleep(QUIET).await;
        assert_eq!(amira.replies_to(&unaddressed).len(), 1);
        assert!(amira.replies_to(&addressed).is_empty());

        assert!(bot.stop_within(STOP_TIMEOUT).success());
        s.run(["audit", "verify"]).assert_success();
    });
}

/// A reply as Element builds it: `m.in_reply_to`, and the message replied
/// to quoted in both `body` and `formatted_body`.
fn element_reply(room: &Room, to: &Seen, typed: &str) -> Value {
    let mut lines = to.body.lines();
    let mut quoted = format!("> <{}> {}", to.sender, lines.next().unwrap_or_default());
    for line in lines {
        quoted.push_str(&format!("\n> {line}"));
    }
    let html = to.html.clone().unwrap_or_else(|| to.body.replace('\n', "<br>"));
    serde_json::json!({
        "msgtype": "m.text",
        "body": format!("{quoted}\n\n{typed}"),
        "format": "org.matrix.custom.html",
        "formatted_body": format!(
            "<mx-reply><blockquote><a href=\"https://matrix.to/#/{room}/{id}?via=localhost\">In reply to</a> \
             <a href=\"https://matrix.to/#/{sender}\">{sender}</a><br>{html}</blockquote></mx-reply>{typed}",
            room = room.room_id(),
            id = to.id,
            sender = to.sender,
        ),
        "m.relates_to": { "m.in_reply_to": { "event_id": to.id } },
        "m.mentions": { "user_ids": [to.sender] },
    })
}

/// An edit as Element builds it: a "* " fallback, and the new text in
/// `m.new_content` (with the mentions it now has).
fn element_edit(of: &OwnedEventId, text: &str, mentioning: Option<&OwnedUserId>) -> Value {
    let mentions = match mentioning {
        Some(user) => serde_json::json!({ "user_ids": [user] }),
        None => serde_json::json!({}),
    };
    serde_json::json!({
        "msgtype": "m.text",
        "body": format!(" * {text}"),
        "m.new_content": { "msgtype": "m.text", "body": text, "m.mentions": mentions },
        "m.mentions": mentions,
        "m.relates_to": { "rel_type": "m.replace", "event_id": of },
    })
}

/// Lets `user` send one message a second, with no burst, through Synapse's admin
/// API (as a throwaway admin account).
async fn limit_messages(synapse: &Synapse, user: &str) {
    let admin = synapse.register_admin("ratelimit-admin", PASSWORD);
    let token = admin["access_token"].as_str().expect("an admin token");
    let url = format!("{}/_synapse/admin/v1/users/{user}/override_ratelimit", synapse.url);
    let response = matrix_sdk::reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .body(r#"{"messages_per_second": 1, "burst_count": 1}"#)
        .send()
        .await
        .expect("setting a rate limit");
    let status = response.status();
    assert!(
        status.is_success(),
        "override_ratelimit: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// The example school with the bot on `synapse` and two members of staff,
/// Amira and Tom, known by their Matrix ids; registers all three there.
fn bot_sandbox(synapse: &Synapse) -> Sandbox {
    for user in ["policybot", "amira", "tom"] {
        synapse.register(user, PASSWORD);
    }
    let s = Sandbox::empty();
    s.write_config_with(
        &[("oakfield", &example_policies())],
        &format!(
            r#"{matrix}
[[staff]]
name = "Amira Shah"
school = "oakfield"
role = "Year 4 teacher"
matrix = "@amira:localhost"

[[staff]]
name = "Tom Okafor"
school = "oakfield"
role = "Designated Safeguarding Lead"
matrix = "@tom:localhost"
"#,
            matrix = matrix_config(synapse, &s),
        ),
    );
    s
}

/// The `[matrix]` section: the bot's account on `synapse`, its state in the
/// sandbox.
fn matrix_config(synapse: &Synapse, s: &Sandbox) -> String {
    format!(
        "[matrix]\nhomeserver = {url}\nuser = \"@policybot:localhost\"\npassword = {password}\nstate_dir = {state}\n",
        url = toml_string(&synapse.url),
        password = toml_string(PASSWORD),
        state = toml_string(&s.path().join("matrix").to_string_lossy()),
    )
}

fn start_bot(s: &Sandbox) -> Serve {
    let mut bot = Serve::start(s);
    bot.wait_for_line("policybot: matrix connected", REPLY_TIMEOUT);
    bot
}

/// The exchange the audit log recorded for a Matrix event.
fn audit(s: &Sandbox, event: &OwnedEventId) -> Value {
    let listed = s.run(["audit", "list", "--json"]);
    listed.assert_success();
    let events = listed.json();
    let found: Vec<&Value> = events
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| e["reference"] == event.as_str())
        .collect();
    assert_eq!(found.len(), 1, "one audit event for {event}: {events:#}");
    found[0].clone()
}

#[test]
fn staff_are_nudged_in_matrix_and_acknowledge_with_a_reaction_or_a_reply() {
    let Some(synapse) = Synapse::start() else { return };
    let s = bot_sandbox(&synapse);
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert!(dry.contains("Amira Shah <@amira:localhost> by matrix"), "{dry}");
    let planned = s.run(["nudge", "--now"]).assert_success().stdout.clone();
    assert!(planned.starts_with("campaign 1: 2 nudge(s) planned"), "{planned}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Staff are signed in on their devices before the nudges go out (an
        // encrypted nudge is readable on the devices they had then).
        let amira = Member::login(&synapse.url, "amira").await;
        let tom = Member::login(&synapse.url, "tom").await;
        let bot = start_bot(&s);
        let amiras = amira.nudge(1).await;
        assert!(
            amiras
                .body
                .contains("Staff ICT Acceptable Use Policy (version 2026-09-01)"),
            "{}",
            amiras.body
        );
        assert!(
            amiras.body.contains("/ack/") && amiras.body.contains("react to this message with ✅"),
            "{}",
            amiras.body
        );
        let toms = tom.nudge(1).await;
        // A chat made for a nudge is a direct chat for them too (the invite
        // says so), and the next nudge goes into the same chat.
        let chat = amira.client.get_room(&amiras.room).expect("the nudge's room");
        assert!(
            chat.is_direct().await.expect("is_direct"),
            "the nudge's room is not a direct chat"
        );
        let again = s.run(["nudge", "--now"]).assert_success().stdout.clone();
        assert!(again.starts_with("campaign 2: 2 nudge(s) planned"), "{again}");
        let reminder = amira.nudge(2).await;
        assert_eq!(reminder.room, amiras.room, "a second direct chat was made");
        // Tom leaves the chat; the next nudge invites him back into it.
        tom.nudge(2).await;
        let chat = tom.client.get_room(&toms.room).expect("the nudge's room");
        chat.leave().await.expect("leaving");
        // The bot's sync sees the leave long before its sender looks again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let third = s.run(["nudge", "--now"]).assert_success().stdout.clone();
        assert!(third.starts_with("campaign 3: 2 nudge(s) planned"), "{third}");
        let back = tom.nudge(3).await;
        assert_eq!(back.room, toms.room, "Tom was not invited back into his direct chat");

        // Amira reacts ✅ to her nudge; Tom just says so in the chat.
        let room = amira.client.get_room(&amiras.room).expect("the nudge's room");
        room.send(ReactionEventContent::new(Annotation::new(
            amiras.id.clone(),
            "✅".into(),
        )))
        .await
        .expect("reacting");
        amira.wait_for_notice("Thank you. Your acknowledgement of").await;
        let room = tom.client.get_room(&toms.room).expect("the nudge's room");
        tom.say_text(&room, "I acknowledge").await;
        tom.wait_for_notice("Thank you. Your acknowledgement of").await;

        assert_eq!(
            acknowledged(&s),
            ["oakfield:amira-shah matrix", "oakfield:tom-okafor matrix"]
        );
        let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
        assert!(dry.starts_with("0 nudge(s) would be planned"), "{dry}");
        let status = bot.stop_within(STOP_TIMEOUT);
        assert!(status.success(), "serve exited with {status}");
    });
}

/// A message as a member of staff's client saw it.
#[derive(Debug, Clone)]
struct Seen {
    id: OwnedEventId,
    room: matrix_sdk::ruma::OwnedRoomId,
    sender: OwnedUserId,
    notice: bool,
    encrypted: bool,
    body: String,
    html: Option<String>,
    thread: Option<OwnedEventId>,
    in_reply_to: Option<OwnedEventId>,
}

/// A member of staff: a matrix-sdk client that keeps syncing, across a
/// Synapse restart too, and remembers every message it sees.
struct Member {
    client: Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    sync: tokio::task::JoinHandle<()>,
}

impl Member {
    async fn login(url: &str, user: &str) -> Member {
        let client = Client::builder().homeserver_url(url).build().await.expect("a client");
        client
            .matrix_auth()
            .login_username(user, PASSWORD)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{user} logs in: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
            let sink = sink.clone();
            async move {
                let (body, html, notice) = match &event.content.msgtype {
                    MessageType::Notice(n) => (n.body.clone(), n.formatted.as_ref().map(|f| f.body.clone()), true),
                    MessageType::Text(t) => (t.body.clone(), t.formatted.as_ref().map(|f| f.body.clone()), false),
                    _ => return,
                };
                let (thread, in_reply_to) = match &event.content.relates_to {
                    Some(Relation::Thread(t)) => (
                        Some(t.event_id.clone()),
                        t.in_reply_to.as_ref().map(|r| r.event_id.clone()),
                    ),
                    Some(Relation::Reply(r)) => (None, Some(r.in_reply_to.event_id.clone())),
                    _ => (None, None),
                };
                let encrypted = room.encryption_state().is_encrypted();
                sink.lock().unwrap().push(Seen {
                    id: event.event_id.clone(),
                    room: room.room_id().to_owned(),
                    sender: event.sender.clone(),
                    notice,
                    encrypted,
                    body,
                    html,
                    thread,
                    in_reply_to,
                });
            }
        });
        client.sync_once(SyncSettings::default()).await.expect("first sync");
        let syncing = client.clone();
        let sync = tokio::spawn(async move {
            loop {
                if let Err(e) = syncing
                    .sync(SyncSettings::default().timeout(Duration::from_secs(5)))
                    .await
                {
                    tracing_note(&e.to_string());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Member { client, seen, sync }
    }

    fn id(&self) -> &UserId {
        self.client.user_id().expect("logged in")
    }

    async fn create_room(&self, invite: &[&UserId]) -> Room {
        let mut request = CreateRoom::new();
        request.invite = invite.iter().map(|u| (*u).to_owned()).collect();
        self.client.create_room(request).await.expect("creating a room")
    }

    async fn say_text(&self, room: &Room, text: &str) -> OwnedEventId {
        self.say(room, RoomMessageEventContent::text_plain(text)).await
    }

    async fn say(&self, room: &Room, content: RoomMessageEventContent) -> OwnedEventId {
        room.send(content).await.expect("sending a message").response.event_id
    }

    /// Sends a message's content as a client built it, field for field.
    async fn say_raw(&self, room: &Room, content: Value) -> OwnedEventId {
        room.send_raw("m.room.message", content)
            .await
            .expect("sending a message")
            .response
            .event_id
    }

    /// Waits until `user`'s membership of `room` is `state`.
    async fn wait_for_member(&self, room: &Room, user: &UserId, state: MembershipState) {
        let started = Instant::now();
        loop {
            let _ = room.sync_members().await;
            if let Ok(Some(member)) = room.get_member(user).await
                && *member.membership() == state
            {
                return;
            }
            assert!(
                started.elapsed() < REPLY_TIMEOUT,
                "{user} did not reach {state} in {}",
                room.room_id()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The first reply to `event` (in a thread or as a reply), waiting for it.
    async fn reply_to(&self, event: &OwnedEventId) -> Seen {
        let started = Instant::now();
        loop {
            if let Some(reply) = self.replies_to(event).into_iter().next() {
                return reply;
            }
            assert!(started.elapsed() < REPLY_TIMEOUT, "no reply to {event}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Joins the direct chat the bot invites them to and waits for the
    /// `number`th nudge in it.
    async fn nudge(&self, number: usize) -> Seen {
        let started = Instant::now();
        loop {
            for room in self.client.invited_rooms() {
                let _ = room.join().await;
            }
            let found = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.notice && m.body.starts_with("Please acknowledge:"))
                .nth(number - 1)
                .cloned();
            if let Some(seen) = found {
                return seen;
            }
            assert!(started.elapsed() < REPLY_TIMEOUT, "no nudge for {}", self.id());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a notice from the bot that starts with `text`.
    async fn wait_for_notice(&self, text: &str) -> Seen {
        let started = Instant::now();
        loop {
            if let Some(seen) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.notice && m.body.starts_with(text))
            {
                return seen.clone();
            }
            assert!(
                started.elapsed() < REPLY_TIMEOUT,
                "no notice {text:?} for {}",
                self.id()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn replies_to(&self, event: &OwnedEventId) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.notice && m.in_reply_to.as_ref() == Some(event))
            .cloned()
            .collect()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

fn tracing_note(message: &str) {
    eprintln!("staff client sync: {message}");
}

#[test]
fn a_matrix_campaign_killed_mid_send_loses_and_doubles_no_nudge() {
    const STAFF: usize = 20;
    let Some(synapse) = Synapse::start() else { return };
    let users: Vec<String> = (0..STAFF).map(|i| format!("staff{i:02}")).collect();
    let accounts: Vec<String> = users.iter().cloned().chain(["policybot".to_owned()]).collect();
    synapse.register_many(PASSWORD, &accounts);
    let s = Sandbox::empty();
    let mut staff = String::new();
    for user in &users {
        staff.push_str(&format!(
            "\n[[staff]]\nname = \"{user}\"\nschool = \"oakfield\"\nrole = \"Teacher\"\nmatrix = \"@{user}:localhost\"\n"
        ));
    }
    // Paced at 5 a second, so the campaign is still going when it is killed.
    s.write_config_with(
        &[("oakfield", &example_policies())],
        &format!(
            "{}\n[acknowledgements]\nnudges_per_minute = 300\n{staff}",
            matrix_config(&synapse, &s)
        ),
    );
    let planned = s.run(["nudge", "--now"]).assert_success().stdout.clone();
    assert!(
        planned.starts_with(&format!("campaign 1: {STAFF} nudge(s) planned")),
        "{planned}"
    );
    let delivered = || nudges_in_direct_chats(&synapse);

    // The worst moment: Synapse took a nudge, the store has not recorded it.
    let crashing = Serve::start_with_env(&s, &[("POLICYBOT_FAILPOINT", "nudge-after-send")]);
    let status = crashing.wait_exit(REPLY_TIMEOUT);
    assert!(!status.success(), "the failpoint aborts the bot");
    assert_eq!(delivered().len(), 1, "the failpoint comes after the first nudge");
    // Then a kill -9 at an arbitrary point of the campaign.
    let bot = start_bot(&s);
    wait_until(REPLY_TIMEOUT, "a few nudges", || delivered().len() >= 5);
    bot.kill();
    assert!(delivered().len() < STAFF, "the campaign was still going when killed");

    let bot = start_bot(&s);
    wait_until(REPLY_TIMEOUT, "every nudge", || delivered().len() == STAFF);
    std::thread::sleep(QUIET);
    let delivered = delivered();
    for user in &users {
        let nudges = delivered.get(&format!("@{user}:localhost")).copied().unwrap_or(0);
        assert_eq!(nudges, 1, "{user} got {nudges} nudges");
    }
    // The record agrees: every nudge sent once, everyone due a second one.
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert_eq!(dry.matches("(nudge 2)").count(), STAFF, "{dry}");
    let status = bot.stop_within(STOP_TIMEOUT);
    assert!(status.success(), "serve exited with {status}");
}

/// Per member of staff, the bot's messages in the rooms it invited them to,
/// as Synapse holds them (what a client would show, whatever the bot's own
/// store says).
fn nudges_in_direct_chats(synapse: &Synapse) -> std::collections::HashMap<String, usize> {
    let db = rusqlite::Connection::open_with_flags(synapse.database(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("Synapse's database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut query = db
        .prepare(
            "SELECT m.user_id, COUNT(e.event_id) FROM room_memberships m
             JOIN events e ON e.room_id = m.room_id
             WHERE m.membership = 'invite' AND m.sender = '@policybot:localhost'
               AND e.sender = '@policybot:localhost' AND e.type = 'm.room.encrypted'
             GROUP BY m.user_id",
        )
        .unwrap();
    query
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}
