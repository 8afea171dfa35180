//! The e-safety lead's corrections teach the bot (issue 15, item 5): a
//! question the bot did not answer with the right clause is marked on the
//! dashboard as covered by it; a later question close to it (by sentence
//! embedding) is answered with that clause.
//!
//! Needs the answer model (all-MiniLM-L6-v2, unpacked) in the directory
//! POLICYBOT_MODEL_DIR names, handed to `serve` in the same variable.
//! Without it the test is skipped with a note, except under CI, where it
//! fails.

use std::ffi::OsStr;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::{
    STAFF, Sandbox, Serve, clause_list, example_policies, example_policy, get_page, http, in_ci, run_in, sign_in,
};

const USER: &str = "hannah";
const PASSWORD: &str = "correct horse battery";

/// A member of staff's question the policy answers (section 2: "Copy in
/// your line manager when an email exchange with a parent becomes difficult
/// or hostile") in words it does not use. Written for this test, not taken
/// from the evaluation sets. Before the lead's correction the engine offers
/// other email clauses.
const ASKED: &str = "A parent has started being quite abusive in her emails to me, how should I handle it?";
/// The same question as another member of staff puts it. Before the
/// correction the engine answers it, wrongly, with "Check the recipient
/// list…".
const PARAPHRASE: &str = "A parent keeps sending me abusive emails. What should I do?";
/// The clause that answers both.
const RIGHT_CLAUSE: &str = "email exchange with a parent becomes difficult or hostile";

fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("POLICYBOT_MODEL_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Some(dir),
        other => {
            let why = match other {
                Some(dir) => format!("POLICYBOT_MODEL_DIR={} is not a directory", dir.display()),
                None => "POLICYBOT_MODEL_DIR is not set".to_owned(),
            };
            assert!(!in_ci(), "{why}: CI must run the test of the lead's examples");
            eprintln!("note: {why}; skipping the test of the lead's examples");
            None
        }
    }
}

/// The session's CSRF token, from any page's sign-out form.
fn csrf(addr: &str, cookie: &str) -> String {
    let page = get_page(addr, cookie, "/ask");
    page.split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {page}"))
        .to_owned()
}

fn post(addr: &str, cookie: &str, path: &str, form: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
}

fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Asks through the dashboard's Ask form of the running bot; the audit
/// event recording the exchange.
fn ask(s: &Sandbox, addr: &str, cookie: &str, csrf: &str, question: &str) -> Value {
    let page = post(
        addr,
        cookie,
        "/ask",
        &format!("csrf={csrf}&school=oakfield&question={}", form_encode(question)),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let id: i64 = page
        .split_once("Recorded as audit event ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the Ask page names no audit event: {page}"));
    let events = s
        .run(["audit", "list", "--kind", "answered,declined", "--json"])
        .assert_success()
        .json();
    events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("event {id} is not in the log: {events}"))
        .clone()
}

fn first_clause(event: &Value) -> &str {
    event["payload"]["citations"][0]["clause"].as_str().unwrap_or("")
}

#[test]
fn a_question_the_lead_marks_covered_by_a_clause_teaches_the_bot_that_clause() {
    let Some(model) = model_dir() else {
        return;
    };
    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], STAFF);
    s.add_user(USER, "esafety-lead", PASSWORD);
    let policies = example_policy();
    let policy = run_in(
        policies.parent().unwrap(),
        [
            OsStr::new("clauses"),
            policies.as_os_str(),
            OsStr::new("--school"),
            OsStr::new("oakfield"),
            OsStr::new("--json"),
        ],
    )
    .assert_success()
    .json();
    let right = clause_list(&policy)
        .iter()
        .find(|c| c["text"].as_str().unwrap_or("").contains(RIGHT_CLAUSE))
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("no clause says {RIGHT_CLAUSE:?}: {policy}"))
        .to_owned();

    let server = Serve::start_with_env(&s, &[("POLICYBOT_MODEL_DIR", model.to_str().unwrap())]);
    let addr = server.addr.to_string();
    let cookie = sign_in(&addr, USER, PASSWORD);
    let csrf = csrf(&addr, &cookie);

    // 1. Asked: not answered with the right clause.
    let asked = ask(&s, &addr, &cookie, &csrf, ASKED);
    assert!(
        !(asked["kind"] == "answered" && first_clause(&asked) == right),
        "the bot already answers {ASKED:?} with {right}: choose a question it does not know yet\n{asked}"
    );

    // 2. The lead corrects it through the dashboard's form: "covered by
    // clause X" for an unanswered question, "wrong — the right clause is X"
    // for an answer with another clause.
    let mark = if asked["kind"] == "declined" {
        "covered"
    } else {
        "wrong"
    };
    let reviewed = post(
        &addr,
        &cookie,
        "/review",
        &format!(
            "csrf={csrf}&event={}&mark={mark}&clause={}&note=&back=unanswered",
            asked["id"],
            form_encode(&right)
        ),
    );
    assert!(reviewed.starts_with("HTTP/1.1 303"), "{reviewed}");
    let clauses = get_page(&addr, &cookie, "/clauses");
    assert!(
        clauses.contains("Questions kept as examples") && clauses.contains(ASKED),
        "the Clauses page shows the example: {clauses}"
    );
    s.run(["audit", "verify"]).assert_success();

    // 3. The same question in other words: answered, with that clause.
    let later = ask(&s, &addr, &cookie, &csrf, PARAPHRASE);
    assert_eq!(
        (later["kind"].as_str(), first_clause(&later)),
        (Some("answered"), right.as_str()),
        "{PARAPHRASE:?} should be answered with the clause the lead named for {ASKED:?}\n{later}\n{}",
        server.log()
    );
    if let Some(mode) = later["payload"].get("mode") {
        assert_eq!(mode, "answer", "{later}");
    }
}
