//! The email channel against real Dovecot (IMAP, IDLE, implicit TLS) and
//! Postfix (SMTP submission with STARTTLS and AUTH): staff mail the bot and
//! read its replies in their own mailboxes. Without the servers the tests are
//! skipped with a note, except under CI, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::Value;

use crate::mailserver::{DOMAIN, MailServer};
use policybot_index::render::SUGGEST_HEADLINE;

use crate::support::{
    SUGGEST_QUESTION, Sandbox, Serve, acknowledged, example_policies, get_page, quoted_passages, repo_dir, sign_in,
    toml_string, unique, wait_until,
};

const PASSWORD: &str = "a-test-password";
/// How long replies may take to arrive before the test gives up (not a
/// performance bound: the bench measures latency).
const REPLY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the bot is given to stay quiet where it must.
const QUIET: Duration = Duration::from_secs(3);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const AUTH_SERVER: &str = "mail.example.test";

const WHATSAPP: &str = "Can I use WhatsApp to message parents on a school trip?";

/// A reply as the member of staff receives it.
#[derive(Debug)]
struct Received {
    /// Message-IDs here are without their angle brackets.
    message_id: String,
    in_reply_to: String,
    references: Vec<String>,
    subject: String,
    text: String,
    html: String,
    auto_submitted: String,
}

fn parse_received(raw: &[u8]) -> Received {
    let m = MessageParser::default().parse(raw).expect("a delivered mail parses");
    let ids = |v: &mail_parser::HeaderValue<'_>| match v {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    };
    Received {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        in_reply_to: ids(m.in_reply_to()).join(" "),
        references: ids(m.references()),
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
        auto_submitted: m.header_raw("Auto-Submitted").unwrap_or_default().trim().to_owned(),
    }
}

/// The mail servers, a sandbox whose config points the bot at them, and the
/// members of staff's mailboxes.
struct Setup {
    server: MailServer,
    s: Sandbox,
}

impl Setup {
    /// `extra` is more `[email]` settings, given the servers' ports
    /// (`imap`, `smtp` and the TLS ones).
    fn new(
        staff: &[&str],
        strangers: &[&str],
        replies_per_hour: u32,
        extra: impl Fn(&MailServer) -> String,
    ) -> Option<Setup> {
        Setup::on(MailServer::start()?, staff, strangers, replies_per_hour, extra)
    }

    fn on(
        server: MailServer,
        staff: &[&str],
        strangers: &[&str],
        replies_per_hour: u32,
        extra: impl Fn(&MailServer) -> String,
    ) -> Option<Setup> {
        let extra = extra(&server);
        server.add_user("policy", PASSWORD);
        for user in staff.iter().chain(strangers) {
            server.add_user(user, PASSWORD);
        }
        let s = Sandbox::empty();
        let staff_toml: String = staff
            .iter()
            .map(|user| {
                format!(
                    "\n[[staff]]\nname = {}\nschool = \"oakfield\"\nrole = \"Teacher\"\nemail = [{}]\n",
                    toml_string(user),
                    toml_string(&format!("{user}@{DOMAIN}"))
                )
            })
            .collect();
        s.write_config_with(
            &[("oakfield", &example_policies())],
            &format!(
                r#"
[email]
address = "policy@{DOMAIN}"
name = "Oakfield policy bot"
password = {password}
ca_file = {ca}
trusted_authserv_id = "{AUTH_SERVER}"
replies_per_hour = {replies_per_hour}
max_message_bytes = 1000000
{extra}
{staff_toml}"#,
                password = toml_string(PASSWORD),
                ca = toml_string(&server.ca().to_string_lossy()),
            ),
        );
        Some(Setup { server, s })
    }

    fn start_bot(&self) -> Serve {
        self.start_bot_with(&[])
    }

    fn start_bot_with(&self, envs: &[(&str, &str)]) -> Serve {
        let mut envs = envs.to_vec();
        envs.push(("POLICYBOT_LOG", "info,policybot=debug"));
        let mut bot = Serve::start_with_env(&self.s, &envs);
        bot.wait_for_line("policybot: email connected as", REPLY_TIMEOUT);
        bot
    }

    /// Sends a mail to the bot and returns its Message-ID (without brackets).
    fn ask(&self, from: &str, mail: Mail) -> String {
        let (id, raw) = mail.build(from);
        self.server
            .submit(&format!("{from}@{DOMAIN}"), &format!("policy@{DOMAIN}"), &raw);
        id
    }

    fn replies(&self, user: &str) -> Vec<Received> {
        self.server
            .mailbox(user)
            .iter()
            .map(|raw| parse_received(raw))
            .collect()
    }

    /// Waits for the reply to the mail `id` in `user`'s mailbox.
    fn reply_to(&self, user: &str, id: &str) -> Received {
        let started = Instant::now();
        loop {
            if let Some(found) = self.replies(user).into_iter().find(|r| r.in_reply_to == id) {
                return found;
            }
            assert!(
                started.elapsed() < REPLY_TIMEOUT,
                "no reply to {id} for {user} within {REPLY_TIMEOUT:?}\n{}\n{}",
                self.server.log(),
                self.bot_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What every run of the bot logged.
    fn bot_logs(&self) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(self.s.path())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("serve-")));
        logs.sort();
        logs.iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The audit events recorded for a mail.
    fn audit(&self, id: &str) -> Vec<Value> {
        let listed = self.s.run(["audit", "list", "--json"]).assert_success().json();
        let wanted = format!("<{id}>");
        listed
            .as_array()
            .expect("audit list --json is an array")
            .iter()
            .filter(|e| e["reference"] == wanted.as_str())
            .cloned()
            .collect()
    }
}

/// A mail to the bot, as a test writes it.
#[derive(Clone)]
struct Mail {
    subject: String,
    headers: Vec<String>,
    content_type: String,
    body: Vec<u8>,
    /// Leave out the Authentication-Results the school's server would add.
    unauthenticated: bool,
}

impl Mail {
    fn text(subject: &str, body: &str) -> Mail {
        Mail {
            subject: subject.to_owned(),
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8".into(),
            body: body.as_bytes().to_vec(),
            unauthenticated: false,
        }
    }

    /// The body of `tests/fixtures/mail/<name>.eml`, a reply laid out the
    /// way a real mail client lays it out, with its MIME headers; the
    /// addresses and threading headers are the test's.
    fn fixture(name: &str, subject: &str) -> Mail {
        let path = repo_dir().join("tests/fixtures/mail").join(format!("{name}.eml"));
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a fixture has a header block");
        let header = String::from_utf8_lossy(&raw[..split])
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        let mut mail = Mail::text(subject, "");
        mail.body = raw[split + 4..].to_vec();
        for line in header.split("\r\n") {
            let (name, value) = line.split_once(':').unwrap_or_default();
            if name.eq_ignore_ascii_case("content-type") {
                mail.content_type = value.trim().to_owned();
            } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
                mail.headers.push(line.to_owned());
            }
        }
        mail
    }

    fn header(mut self, header: &str) -> Mail {
        self.headers.push(header.to_owned());
        self
    }

    fn build(&self, from: &str) -> (String, Vec<u8>) {
        let id = format!("t{}.{}@{DOMAIN}", unique(), std::process::id());
        let mut raw = format!(
            "From: {from} <{from}@{DOMAIN}>\r\nTo: policy@{DOMAIN}\r\nSubject: {}\r\nMessage-ID: <{id}>\r\n\
             Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: {}\r\n",
            self.subject, self.content_type
        );
        if !self.unauthenticated {
            raw.push_str(&format!(
                "Authentication-Results: {AUTH_SERVER}; dmarc=pass header.from={DOMAIN}\r\n"
            ));
        }
        for header in &self.headers {
            raw.push_str(header);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(&self.body);
        (id, raw)
    }
}

/// IMAP with TLS from the start, SMTP upgraded with STARTTLS.
fn imaps_and_starttls(server: &MailServer) -> String {
    format!(
        "imap = {{ host = \"127.0.0.1\", port = {}, tls = \"implicit\" }}\n\
         smtp = {{ host = \"127.0.0.1\", port = {}, tls = \"starttls\" }}",
        server.imaps, server.smtp
    )
}

#[test]
fn staff_ask_the_bot_by_email() {
    let Some(setup) = Setup::new(&["amira", "tom"], &["stranger"], 50, imaps_and_starttls) else {
        return;
    };
    let bot = setup.start_bot();

    // A question gets the clause, quoted and cited, as a threaded reply in
    // plain text and HTML, marked as automatic.
    let asked = setup.ask(
        "amira",
        Mail::text("WhatsApp on trips", &format!("Hi,\n\n{WHATSAPP}\n\nThanks,\nAmira\n")),
    );
    let reply = setup.reply_to("amira", &asked);
    assert_eq!(reply.subject, "Re: WhatsApp on trips");
    assert_eq!(reply.auto_submitted, "auto-replied");
    assert!(
        reply.text.contains('“') && reply.text.contains("Oakfield"),
        "{}",
        reply.text
    );
    assert!(reply.html.contains("<blockquote>"), "{}", reply.html);
    let events = setup.audit(&asked);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap_or_default()).collect();
    assert!(kinds.contains(&"sent"), "{events:?}");
    let exchange = events
        .iter()
        .find(|e| e["kind"] == "answered" || e["kind"] == "declined");
    let exchange = exchange.unwrap_or_else(|| panic!("the question is on the record: {events:?}"));
    assert_eq!(exchange["question"], WHATSAPP, "the question is the new text only");
    assert_eq!(exchange["channel"], "email");

    // A follow-up in the thread is read with the question before it.
    let follow_up = setup.ask(
        "amira",
        Mail::text(
            "Re: WhatsApp on trips",
            &format!(
                "What about on a school phone?\n\nOn Fri, 27 Nov 2026, Oakfield policy bot wrote:\n> {}\n",
                reply.text.lines().next().unwrap_or_default()
            ),
        )
        .header(&format!("In-Reply-To: <{asked}>"))
        .header(&format!("References: <{asked}>")),
    );
    let second = setup.reply_to("amira", &follow_up);
    assert_eq!(second.references.first().map(String::as_str), Some(asked.as_str()));
    let question = setup
        .audit(&follow_up)
        .iter()
        .find_map(|e| e["question"].as_str().map(str::to_owned));
    let question = question.unwrap_or_default();
    assert!(
        question.contains("WhatsApp") && question.contains("school phone"),
        "{question}"
    );

    // HTML only, in Latin-1, with an attachment and a subject-only mail.
    let mut html = Mail::text("photos", "");
    html.content_type = "multipart/mixed; boundary=b".into();
    html.body = b"--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<html><body><p>Can I take photos of \
pupils on my own phone during the caf\xe9 visit?</p></body></html>\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"form.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b--\r\n"
        .to_vec();
    let html_id = setup.ask("tom", html);
    let html_reply = setup.reply_to("tom", &html_id);
    assert!(
        html_reply.text.contains("I don't open attachments (form.bin)"),
        "{}",
        html_reply.text
    );
    let subject_only = setup.ask("tom", Mail::text("Can I use a memory stick to take reports home?", ""));
    let subject_reply = setup.reply_to("tom", &subject_only);
    assert!(subject_reply.text.contains('“'), "{}", subject_reply.text);

    // Not sure: the closest clauses, each after its list's head, no verdict,
    // marked unanswered; the plain body is the reply on the record.
    let unsure = setup.ask("tom", Mail::text("coat", &format!("{SUGGEST_QUESTION}\n")));
    let suggestion = setup.reply_to("tom", &unsure);
    let text = suggestion.text.replace("\r\n", "\n");
    assert!(text.starts_with(SUGGEST_HEADLINE), "{text}");
    assert!(text.contains("Under ‘Don't:’ — “"), "{text}");
    assert!(text.contains("marked unanswered for the e-safety lead"), "{text}");
    assert!(
        suggestion.html.contains("<p>Under ‘Don&#39;t:’</p><blockquote>"),
        "{}",
        suggestion.html
    );
    assert!(!suggestion.html.contains("Also relevant"), "{}", suggestion.html);
    let events = setup.audit(&unsure);
    let exchange = events.iter().find(|e| e["kind"] == "declined");
    let exchange = exchange.unwrap_or_else(|| panic!("a suggestion is recorded as declined: {events:?}"));
    assert_eq!(exchange["mode"], "suggest", "{exchange}");
    assert_eq!(
        exchange["payload"]["reply"].as_str(),
        Some(text.trim_end()),
        "{exchange}"
    );

    // A thank-you in the thread is not a question: no reply.
    let thanks = setup.ask(
        "amira",
        Mail::text("Re: WhatsApp on trips", "Thanks, that's really helpful!\n\nAmira")
            .header(&format!("In-Reply-To: <{follow_up}>"))
            .header(&format!("References: <{asked}> <{follow_up}>")),
    );

    // Auto-replies and unknown senders: nothing, or one polite refusal.
    let auto = setup.ask(
        "amira",
        Mail::text("Out of office", "I am away until Monday.").header("Auto-Submitted: auto-replied"),
    );
    let strangers: Vec<String> = (0..2)
        .map(|_| setup.ask("stranger", Mail::text("Hello", WHATSAPP)))
        .collect();
    // The mail server may deliver the two in either order: whichever comes
    // first gets the refusal.
    wait_until(REPLY_TIMEOUT, "both stranger mails to be dealt with", || {
        strangers.iter().all(|id| {
            setup
                .audit(id)
                .iter()
                .any(|e| e["kind"] == "sent" || e["kind"] == "ignored")
        })
    });
    wait_until(REPLY_TIMEOUT, "the refusal to arrive", || {
        !setup.replies("stranger").is_empty()
    });
    wait_until(REPLY_TIMEOUT, "the auto-reply to be dealt with", || {
        setup.audit(&auto).iter().any(|e| e["kind"] == "ignored")
    });
    wait_until(REPLY_TIMEOUT, "the thank-you to be dealt with", || {
        setup.audit(&thanks).iter().any(|e| e["kind"] == "ignored")
    });
    std::thread::sleep(QUIET);
    let refusals = setup.replies("stranger");
    assert_eq!(refusals.len(), 1, "one refusal per unknown address: {refusals:?}");
    assert!(refusals[0].text.contains("staff list"), "{}", refusals[0].text);
    assert!(
        setup.replies("amira").iter().all(|r| r.in_reply_to != auto),
        "no reply to an auto-reply"
    );
    assert!(
        setup.replies("amira").iter().all(|r| r.in_reply_to != thanks),
        "no reply to a thank-you"
    );
    // The e-safety lead sees what was not answered, and why.
    setup.s.add_user("hannah", "esafety-lead", PASSWORD);
    let addr = bot.addr.to_string();
    let audit_page = get_page(&addr, &sign_in(&addr, "hannah", PASSWORD), "/audit");
    assert!(audit_page.contains("Mail not answered"), "{audit_page}");
    assert!(audit_page.contains("Auto-Submitted: auto-replied"), "{audit_page}");
    assert!(
        audit_page.contains("not on the staff list (already told)"),
        "{audit_page}"
    );
    bot.stop_within(STOP_TIMEOUT);

    // A crash after the reply was accepted, before the mail was flagged:
    // after a restart the mail is neither answered twice nor dropped.
    let crashing = setup.start_bot_with(&[("POLICYBOT_FAILPOINT", "email-after-send")]);
    let crash_id = setup.ask(
        "tom",
        Mail::text("Screens", "Can pupils bring their own laptops to school?"),
    );
    let status = crashing.wait_exit(REPLY_TIMEOUT);
    assert!(!status.success(), "the failpoint aborts the process");
    let after_crash = setup.ask(
        "tom",
        Mail::text("USB", "Can I plug a personal USB stick into a school computer?"),
    );
    let bot = setup.start_bot();
    setup.reply_to("tom", &after_crash);
    std::thread::sleep(QUIET);
    let answers_to_crashed = setup
        .replies("tom")
        .iter()
        .filter(|r| r.in_reply_to == crash_id)
        .count();
    assert_eq!(answers_to_crashed, 1, "answered exactly once across the crash");

    // The mail server goes away and comes back: the bot reconnects and
    // answers what arrived.
    setup.server.stop();
    std::thread::sleep(Duration::from_secs(2));
    setup.server.restart();
    let after_restart = setup.ask(
        "amira",
        Mail::text("Passwords", "Can I share my password with a supply teacher?"),
    );
    setup.reply_to("amira", &after_restart);
    let log = bot.log();
    bot.stop_within(STOP_TIMEOUT);
    assert!(!log.contains("panicked"), "{log}");
}

/// The question recorded for a mail, and who it is recorded as asking.
fn recorded_question(setup: &Setup, id: &str) -> (String, String) {
    let events = setup.audit(id);
    let exchange = events
        .iter()
        .find(|e| e["kind"] == "answered" || e["kind"] == "declined")
        .unwrap_or_else(|| panic!("the question is on the record: {events:?}"));
    let field = |name: &str| exchange[name].as_str().unwrap_or_default().to_owned();
    (field("asker"), field("question"))
}

#[test]
fn replies_from_real_mail_clients_are_answered_about_their_new_text() {
    let Some(setup) = Setup::new(&["amira", "tom"], &[], 50, imaps_and_starttls) else {
        return;
    };
    let bot = setup.start_bot();
    let asked = setup.ask("amira", Mail::text("WhatsApp on trips", WHATSAPP));
    let first = setup.reply_to("amira", &asked);
    let in_thread = |mail: Mail, parents: &[&str]| {
        mail.header(&format!("In-Reply-To: <{}>", parents[parents.len() - 1]))
            .header(&format!(
                "References: {}",
                parents.iter().map(|p| format!("<{p}>")).collect::<Vec<_>>().join(" ")
            ))
    };
    // Each client's reply quotes the WhatsApp answer below a new question;
    // the bot answers the new question, and records it alone.
    for (user, fixture, question, clause_word) in [
        (
            "amira",
            "outlook-web-html-only",
            "Can I take photos of pupils on my own phone during the school trip?",
            "photograph",
        ),
        (
            "tom",
            "gmail-reply",
            "Can I share my password with a supply teacher for the day?",
            "password",
        ),
        (
            "amira",
            "outlook-desktop",
            "Can I post about the trip on my personal Facebook after we get back?",
            "social media",
        ),
    ] {
        let id = setup.ask(
            user,
            in_thread(
                Mail::fixture(fixture, "Re: WhatsApp on trips"),
                &[&asked, &first.message_id],
            ),
        );
        let reply = setup.reply_to(user, &id);
        assert_eq!(reply.subject, "Re: WhatsApp on trips");
        let (asker, recorded) = recorded_question(&setup, &id);
        assert_eq!(recorded, question, "{fixture}: the new text, without the quoted thread");
        assert_eq!(asker, format!("oakfield:{user}"));
        let quoted = quoted_passages(&reply.text).join(" ").to_lowercase();
        assert!(
            quoted.contains(clause_word) && !quoted.contains("whatsapp"),
            "{fixture}: the answer quotes the clause about the new question: {}",
            reply.text
        );
        // A signature logo the HTML shows is not an attachment left unread.
        assert!(!reply.text.contains("attachments"), "{fixture}: {}", reply.text);
    }
    bot.stop_within(STOP_TIMEOUT);
    assert!(!setup.bot_logs().contains("panicked"));
}

#[test]
fn a_colleague_s_follow_up_in_a_thread_is_read_with_their_own_question() {
    let Some(setup) = Setup::new(&["amira", "tom"], &[], 50, imaps_and_starttls) else {
        return;
    };
    let bot = setup.start_bot();
    let asked = setup.ask("amira", Mail::text("WhatsApp on trips", WHATSAPP));
    let first = setup.reply_to("amira", &asked);
    let reply_in_thread = |from: &str, body: &str, parent: &str| {
        setup.ask(
            from,
            Mail::text("Re: WhatsApp on trips", body)
                .header(&format!("In-Reply-To: <{parent}>"))
                .header(&format!("References: <{asked}> <{parent}>")),
        )
    };
    // Tom, copied in, asks about himself in Amira's thread.
    let ipad = "What about on my own iPad?";
    let toms = reply_in_thread(
        "tom",
        &format!(
            "{ipad}\n\nOn Fri, 27 Nov 2026, Oakfield policy bot wrote:\n> {}\n",
            first.text.lines().next().unwrap_or_default()
        ),
        &first.message_id,
    );
    setup.reply_to("tom", &toms);
    assert_eq!(
        recorded_question(&setup, &toms),
        ("oakfield:tom".to_owned(), ipad.to_owned()),
        "Tom is not recorded as asking Amira's question, nor answered about it"
    );
    // Amira's own follow-up is still read with her question.
    let hers = reply_in_thread("amira", "What about on a school phone?", &first.message_id);
    setup.reply_to("amira", &hers);
    let (asker, question) = recorded_question(&setup, &hers);
    assert_eq!(asker, "oakfield:amira");
    assert!(
        question.contains("WhatsApp") && question.contains("school phone"),
        "{question}"
    );
    bot.stop_within(STOP_TIMEOUT);
}

#[test]
fn without_idle_the_bot_polls_and_can_ignore_strangers() {
    let Some(server) = MailServer::without_idle() else {
        return;
    };
    let plain = |server: &MailServer| {
        format!(
            "poll_seconds = 1\nunknown_senders = \"ignore\"\nimap = {{ host = \"127.0.0.1\", port = {}, tls = \"none\" }}\n\
             smtp = {{ host = \"127.0.0.1\", port = {}, tls = \"none\" }}",
            server.imap, server.smtp
        )
    };
    let setup = Setup::on(server, &["amira"], &["stranger"], 50, plain).expect("a setup");
    let mut bot = Serve::start_with_env(&setup.s, &[]);
    let connected = bot.wait_for_line("policybot: email connected as", REPLY_TIMEOUT);
    assert!(connected.ends_with("(polling)"), "{connected}");
    // With unknown_senders = "ignore", a stranger gets nothing at all.
    let stranger = setup.ask("stranger", Mail::text("WhatsApp", WHATSAPP));
    let asked = setup.ask("amira", Mail::text("WhatsApp", WHATSAPP));
    assert!(setup.reply_to("amira", &asked).text.contains('“'));
    wait_until(REPLY_TIMEOUT, "the stranger's mail to be dealt with", || {
        setup.audit(&stranger).iter().any(|e| e["kind"] == "ignored")
    });
    std::thread::sleep(QUIET);
    assert!(setup.replies("stranger").is_empty(), "nothing for an unknown sender");
    bot.stop_within(STOP_TIMEOUT);
}

/// What the bot must do with one mail of the hostile batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Reply,
    Nothing,
}

#[test]
fn a_hostile_batch_is_answered_exactly_once_across_a_crash() {
    const STAFF: [&str; 6] = ["s1", "s2", "s3", "s4", "s5", "s6"];
    const CAP: u32 = 30;
    let mut staff: Vec<&str> = STAFF.to_vec();
    staff.push("flood");
    let Some(setup) = Setup::new(&staff, &["stranger"], CAP, |server| {
        // The other way round: IMAP upgraded with STARTTLS, SMTP with TLS
        // from the start; and mail moved once dealt with.
        format!(
            "imap = {{ host = \"127.0.0.1\", port = {}, tls = \"starttls\" }}\n\
             smtp = {{ host = \"127.0.0.1\", port = {}, tls = \"implicit\" }}\n\
             after_reply = \"move\"",
            server.imap, server.smtps
        )
    }) else {
        return;
    };
    let questions = [
        WHATSAPP,
        "Can I take photos of pupils on my own phone?",
        "Can I use a memory stick to take reports home?",
        "Can I accept a friend request from a parent on Facebook?",
        "What should I do if a pupil shows me an upsetting message?",
        "Can I let a supply teacher use my login?",
        "Can I check my personal email on a school laptop?",
        "Can I download a game for the class on the interactive whiteboard?",
    ];
    // (sender, envelope sender, mail, expectation)
    let mut batch: Vec<(String, String, Mail, Expect)> = Vec::new();
    let legit = |i: usize, mail: Mail| {
        let who = STAFF[i % STAFF.len()].to_owned();
        (who.clone(), format!("{who}@{DOMAIN}"), mail, Expect::Reply)
    };
    for i in 0..63 {
        batch.push(legit(i, Mail::text("Question", questions[i % questions.len()])));
    }
    for i in 0..10 {
        let mut m = Mail::text("html", "");
        m.content_type = "text/html; charset=utf-8".into();
        m.body = format!(
            "<div><b>{}</b><br>Sent from my iPhone</div>",
            questions[i % questions.len()]
        )
        .into_bytes();
        batch.push(legit(i, m));
    }
    for i in 0..10 {
        // Says UTF-8, is Latin-1; or names a charset nobody knows.
        let mut m = Mail::text("charset", "");
        m.content_type = if i % 2 == 0 {
            "text/plain; charset=utf-8"
        } else {
            "text/plain; charset=x-klingon"
        }
        .into();
        m.body = b"Can I use my own phone on the caf\xe9 trip? \xff\xfe".to_vec();
        batch.push(legit(i, m));
    }
    for i in 0..10 {
        let mut m = Mail::text("with a file", "");
        m.content_type = "multipart/mixed; boundary=z".into();
        let binary: Vec<u8> = (0..2000u32).map(|n| (n * 7 % 256) as u8).collect();
        m.body = [
            format!("--z\r\nContent-Type: text/plain\r\n\r\n{}\r\n--z\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\n", questions[i % questions.len()]).into_bytes(),
            binary,
            b"\r\n--z--\r\n".to_vec(),
        ]
        .concat();
        batch.push(legit(i, m));
    }
    for i in 0..4 {
        let line = "Can I use WhatsApp? ".repeat(4) + "\n";
        batch.push(legit(i, Mail::text("huge", &line.repeat(1_200_000 / line.len()))));
    }
    let nothing = |who: &str, envelope: &str, mail: Mail| (who.to_owned(), envelope.to_owned(), mail, Expect::Nothing);
    for i in 0..15 {
        let who = STAFF[i % STAFF.len()];
        let header = [
            "Auto-Submitted: auto-replied",
            "Auto-Submitted: auto-generated",
            "X-Autoreply: yes",
        ][i % 3];
        batch.push(nothing(
            who,
            &format!("{who}@{DOMAIN}"),
            Mail::text("Automatic reply", WHATSAPP).header(header),
        ));
    }
    for i in 0..15 {
        let who = STAFF[i % STAFF.len()];
        let header = ["Precedence: bulk", "List-Id: <staff.example.test>", "Precedence: junk"][i % 3];
        batch.push(nothing(
            who,
            &format!("{who}@{DOMAIN}"),
            Mail::text("Newsletter", WHATSAPP).header(header),
        ));
    }
    for _ in 0..10 {
        batch.push(nothing(
            "MAILER-DAEMON",
            "",
            Mail::text("Undelivered Mail Returned to Sender", WHATSAPP),
        ));
    }
    for i in 0..5 {
        let who = STAFF[i % STAFF.len()];
        batch.push(nothing(
            who,
            &format!("{who}@{DOMAIN}"),
            Mail::text("Re: Question", WHATSAPP).header(&format!("X-Loop: policy@{DOMAIN}")),
        ));
        batch.push(nothing(
            "policy",
            &format!("policy@{DOMAIN}"),
            Mail::text("Re: Question", WHATSAPP),
        ));
    }
    for i in 0..15 {
        // A staff address, but the school's server says it was not them.
        let who = STAFF[i % STAFF.len()];
        let mut m = Mail::text("Question", WHATSAPP);
        m.unauthenticated = true;
        let m = match i % 3 {
            0 => m.header(&format!("Authentication-Results: {AUTH_SERVER}; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from={DOMAIN}")),
            1 => m.header(&format!("Authentication-Results: mx.evil.example; dmarc=pass header.from={DOMAIN}")),
            _ => m,
        };
        batch.push(nothing(who, "attacker@evil.example", m));
    }
    for _ in 0..3 {
        batch.push((
            "stranger".into(),
            format!("stranger@{DOMAIN}"),
            Mail::text("Hi", WHATSAPP),
            Expect::Reply,
        ));
    }
    for _ in 0..(CAP + 5) {
        batch.push((
            "flood".into(),
            format!("flood@{DOMAIN}"),
            Mail::text("Again", WHATSAPP),
            Expect::Reply,
        ));
    }
    // The stranger gets one refusal; the flood stops at the cap.
    let mut bot = Some(setup.start_bot());
    let mut expected_replies: BTreeMap<String, Expect> = BTreeMap::new();
    let mut senders: BTreeMap<String, String> = BTreeMap::new();
    let total = batch.len();
    for (n, (who, envelope, mail, expect)) in batch.into_iter().enumerate() {
        let (id, raw) = mail.build(&who);
        setup.server.submit(&envelope, &format!("policy@{DOMAIN}"), &raw);
        expected_replies.insert(id.clone(), expect);
        senders.insert(id, who);
        // A crash in the middle of the batch.
        if n == total / 2 {
            wait_until(REPLY_TIMEOUT, "some replies before the crash", || {
                STAFF.iter().map(|u| setup.server.mailbox(u).len()).sum::<usize>() >= 20
            });
            bot.take().unwrap().kill();
        }
    }
    assert!(total >= 200, "{total} mails");
    let bot = setup.start_bot();
    let legit: BTreeSet<&String> = expected_replies
        .iter()
        .filter(|(id, e)| **e == Expect::Reply && !["stranger", "flood"].contains(&senders[*id].as_str()))
        .map(|(id, _)| id)
        .collect();
    let replies_by_id = || {
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        for user in staff.iter().chain(&["stranger"]) {
            for r in setup.replies(user) {
                *by_id.entry(r.in_reply_to).or_default() += 1;
            }
        }
        by_id
    };
    wait_until(REPLY_TIMEOUT, "every legitimate mail answered", || {
        let by_id = replies_by_id();
        legit.iter().all(|id| by_id.contains_key(*id))
    });
    // Everything handled: every mail of the batch is on the record.
    wait_until(REPLY_TIMEOUT, "every mail on the record", || {
        let listed = setup.s.run(["audit", "list", "--json"]).assert_success().json();
        let recorded: BTreeSet<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "sent" || e["kind"] == "ignored")
            .filter_map(|e| e["reference"].as_str().map(|r| r.trim_matches(['<', '>']).to_owned()))
            .collect();
        expected_replies.keys().all(|id| recorded.contains(id))
    });
    std::thread::sleep(QUIET);
    let by_id = replies_by_id();
    for (id, expect) in &expected_replies {
        let count = by_id.get(id).copied().unwrap_or(0);
        match (expect, senders[id].as_str()) {
            (Expect::Nothing, who) => assert_eq!(count, 0, "{who} {id} must get no reply"),
            (Expect::Reply, "stranger" | "flood") => assert!(count <= 1, "{id} answered {count} times"),
            (Expect::Reply, who) => assert_eq!(count, 1, "{who} {id} answered {count} times"),
        }
    }
    assert_eq!(setup.replies("stranger").len(), 1, "one refusal for an unknown sender");
    assert_eq!(
        setup.replies("flood").len(),
        CAP as usize,
        "replies per hour are capped"
    );
    let log = bot.log();
    bot.stop_within(STOP_TIMEOUT);
    assert!(!log.contains("panicked"), "{log}");
    setup.s.run(["audit", "verify"]).assert_success();
    // Moved once dealt with: the inbox is empty, the Processed folder holds the batch.
    assert_eq!(setup.server.mailbox("policy").len(), 0);
    let processed: Vec<Received> = setup
        .server
        .folder("policy", "Processed")
        .iter()
        .map(|m| parse_received(m))
        .collect();
    let copies = processed
        .iter()
        .filter(|m| m.message_id.starts_with("policybot."))
        .count();
    assert_eq!(processed.len() - copies, total, "every mail of the batch was moved");
    assert_eq!(
        copies,
        by_id.values().sum::<usize>(),
        "the bot keeps a copy of each reply"
    );
}

/// The acknowledgement link in a nudge's plain text.
fn ack_link(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.contains("/ack/"))
        .unwrap_or_else(|| panic!("no acknowledgement link in the nudge:\n{text}"))
        .to_owned()
}

fn http_request(addr: &str, method: &str, path: &str, body: &str) -> String {
    crate::support::http(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn staff_are_nudged_by_email_and_acknowledge_by_link() {
    let Some(setup) = Setup::new(&["amira", "tom"], &["lead"], 50, imaps_and_starttls) else {
        return;
    };
    let s = &setup.s;
    s.add_user("hannah", "esafety-lead", "a long test password");
    // Tom's line manager is Amira.
    let config = crate::support::read(&s.config_path())
        .replace("name = \"tom\"\n", "name = \"tom\"\nline_manager = \"amira\"\n");
    crate::support::write(
        &s.config_path(),
        format!("{config}\n[acknowledgements]\nescalate_after = 1\ndigest_to = [\"lead@{DOMAIN}\"]\n"),
    );

    // Who would be nudged, and why; nothing is sent by a dry run.
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert!(dry.contains("amira <amira@") && dry.contains("by email"), "{dry}");
    assert!(
        dry.contains("has not acknowledged this policy") && dry.contains("2 nudge(s) would be planned"),
        "{dry}"
    );

    // A campaign is planned, then sent by the running bot.
    let planned = s.run(["nudge", "--now"]).assert_success().stdout.clone();
    assert!(planned.starts_with("campaign 1: 2 nudge(s) planned"), "{planned}");
    // Planning again changes nothing: those nudges are waiting already.
    let again = s.run(["nudge", "--now"]).assert_success().stdout.clone();
    assert!(again.starts_with("nobody to nudge"), "{again}");

    let bot = setup.start_bot();
    let addr = bot.addr.to_string();
    let nudge_for = |user: &str| {
        let mut found = None;
        wait_until(REPLY_TIMEOUT, "the nudge", || {
            found = setup
                .replies(user)
                .into_iter()
                .find(|m| m.subject.starts_with("Please acknowledge:"));
            found.is_some()
        });
        found.unwrap()
    };
    let nudge = nudge_for("amira");
    assert!(
        nudge
            .subject
            .contains("Staff ICT Acceptable Use Policy (version 2026-09-01)"),
        "{nudge:?}"
    );
    assert_eq!(nudge.auto_submitted, "auto-generated");
    assert!(nudge.text.starts_with("Dear amira,"), "{}", nudge.text);
    assert!(nudge.html.contains("Read it and acknowledge"), "{}", nudge.html);
    let toms = nudge_for("tom");

    // The link opens a one-page form; a link with a forged signature does not.
    let link = ack_link(&nudge.text);
    let path = &link[link.find("/ack/").unwrap()..];
    assert!(link.starts_with(&format!("http://{addr}/ack/")), "{link}");
    let form = http_request(&addr, "GET", path, "");
    assert!(form.starts_with("HTTP/1.1 200"), "{form}");
    assert!(
        form.contains("I acknowledge") && form.contains("Use WhatsApp, Facebook Messenger"),
        "{form}"
    );
    let forged = format!("{}0000", &path[..path.len() - 4]);
    assert!(http_request(&addr, "GET", &forged, "").starts_with("HTTP/1.1 404"));
    assert!(http_request(&addr, "POST", &forged, "read=on").starts_with("HTTP/1.1 404"));
    let done = http_request(&addr, "POST", path, "read=on");
    assert!(
        done.contains("Thank you, amira. Your acknowledgement of version 2026-09-01 was recorded"),
        "{done}"
    );
    // A second press records nothing more.
    http_request(&addr, "POST", path, "read=on");

    let ledger = s.run(["acks", "--json"]).assert_success().json();
    let ledger = ledger.as_array().unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["staff"], "oakfield:amira");
    assert_eq!(ledger[0]["how"], "link");
    let csv = s.run(["acks", "--csv"]).assert_success().stdout.clone();
    assert!(
        csv.starts_with("name,staff,school,policy,version,at,how\namira,oakfield:amira,oakfield,"),
        "{csv}"
    );

    // The e-safety lead's view: half the staff, and who is outstanding.
    let cookie = sign_in(&addr, "hannah", "a long test password");
    let page = get_page(&addr, &cookie, "/acks");
    assert!(page.contains("1 of 2 staff (50%) have acknowledged it"), "{page}");
    assert!(page.contains("<td>tom") && page.contains("2 sent"), "{page}");

    // Tom is due a second nudge; Amira is done.
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert!(
        !dry.contains("amira <") && dry.contains("tom <tom@") && dry.contains("(nudge 2)"),
        "{dry}"
    );

    // The e-safety lead's digest: Tom is escalated after one unanswered nudge.
    let digest = s.run(["acks", "--digest"]).assert_success().stdout.clone();
    assert!(digest.contains("1 of 2 staff have acknowledged it (50%)"), "{digest}");
    assert!(
        digest.contains("Not answered after 1 or more nudges") && digest.contains("  - tom (Teacher)"),
        "{digest}"
    );
    assert!(digest.contains("nudges unanswered; line manager amira"), "{digest}");
    let mailed = s.run(["acks", "--digest", "--mail"]).assert_success().stdout.clone();
    assert_eq!(mailed.trim(), format!("digest mailed to lead@{DOMAIN}, amira@{DOMAIN}"));
    let mut received = None;
    wait_until(REPLY_TIMEOUT, "the digest", || {
        received = setup
            .replies("lead")
            .into_iter()
            .find(|m| m.subject.starts_with("Policy acknowledgements"));
        received.is_some()
    });
    assert!(received.unwrap().text.contains("  - tom (Teacher)"));
    wait_until(REPLY_TIMEOUT, "the line manager's list", || {
        setup
            .replies("amira")
            .iter()
            .any(|m| m.subject == "Policy acknowledgements: please follow up" && m.text.contains("  - tom (Teacher)"))
    });

    // Amira cannot acknowledge for Tom by replying to his nudge; Tom can.
    let reply_to_toms = |text: &str| {
        Mail::text(&format!("Re: {}", toms.subject), text).header(&format!("In-Reply-To: <{}>", toms.message_id))
    };
    let spoof = setup.ask("amira", reply_to_toms("I acknowledge"));
    let refused = setup.reply_to("amira", &spoof);
    assert!(
        refused
            .text
            .contains("only record an acknowledgement from the person the reminder was sent to"),
        "{}",
        refused.text
    );
    let id = setup.ask("tom", reply_to_toms("I acknowledge.\n\nTom"));
    let thanks = setup.reply_to("tom", &id);
    assert!(
        thanks
            .text
            .starts_with("Thank you. Your acknowledgement of Oakfield Primary School"),
        "{}",
        thanks.text
    );
    assert_eq!(acknowledged(s), ["oakfield:amira link", "oakfield:tom email"]);

    // Each nudge went out exactly once, and the record says so.
    for user in ["amira", "tom"] {
        let nudges = setup
            .replies(user)
            .into_iter()
            .filter(|m| m.subject.starts_with("Please acknowledge:"))
            .count();
        assert_eq!(nudges, 1, "{user} got {nudges} nudges");
    }
    let events = s
        .run(["audit", "list", "--kind", "acknowledged,campaign", "--json"])
        .assert_success()
        .json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["campaign", "acknowledged", "acknowledged"], "{events}");
    s.run(["audit", "verify"]).assert_success();
    let status = bot.stop_within(STOP_TIMEOUT);
    assert!(status.success(), "serve exited with {status}");
}

#[test]
fn a_campaign_killed_mid_send_loses_and_doubles_no_nudge() {
    const STAFF: usize = 40;
    let users: Vec<String> = (0..STAFF).map(|i| format!("staff{i:02}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let Some(setup) = Setup::new(&names, &[], 50, imaps_and_starttls) else {
        return;
    };
    let s = &setup.s;
    // Paced at 10 a second, so the campaign is still going when it is killed.
    let config = crate::support::read(&s.config_path());
    crate::support::write(
        &s.config_path(),
        format!("{config}\n[acknowledgements]\nnudges_per_minute = 600\n"),
    );
    let planned = s.run(["nudge", "--now"]).assert_success().stdout.clone();
    assert!(
        planned.starts_with(&format!("campaign 1: {STAFF} nudge(s) planned")),
        "{planned}"
    );
    let nudges = |user: &str| {
        setup
            .replies(user)
            .into_iter()
            .filter(|m| m.subject.starts_with("Please acknowledge:"))
            .count()
    };
    let delivered = || names.iter().filter(|u| nudges(u) > 0).count();

    // The worst moment: the server took a nudge, the store has not recorded it.
    let crashing = setup.start_bot_with(&[("POLICYBOT_FAILPOINT", "nudge-after-send")]);
    let status = crashing.wait_exit(REPLY_TIMEOUT);
    assert!(!status.success(), "the failpoint aborts the bot");
    // Then a kill -9 at an arbitrary point of the campaign.
    let bot = setup.start_bot();
    wait_until(REPLY_TIMEOUT, "a few nudges", || delivered() >= 5);
    bot.kill();
    assert!(delivered() < STAFF, "the campaign was still going when killed");

    let bot = setup.start_bot();
    wait_until(REPLY_TIMEOUT, "every nudge", || delivered() == STAFF);
    std::thread::sleep(QUIET);
    for user in &names {
        assert_eq!(nudges(user), 1, "{user} got {} nudges", nudges(user));
    }
    // The nudge the failpoint left unrecorded was found in the bot's
    // mailbox (its Bcc copy), not sent again.
    assert!(
        setup.bot_logs().contains("nudge found sent before a restart"),
        "{}",
        setup.bot_logs()
    );
    // The record agrees: every nudge sent once, everyone due a second one.
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert_eq!(dry.matches("(nudge 2)").count(), STAFF, "{dry}");
    let status = bot.stop_within(STOP_TIMEOUT);
    assert!(status.success(), "serve exited with {status}");
}
