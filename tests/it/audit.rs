//! The audit log through the binary: every question recorded, unknown askers
//! refused on the record, the chain verified, tampering named, exports, and a
//! crash (kill -9) in the middle of writing that loses and doubles nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BIN, STAFF, Sandbox, example_policies, read};

fn sandbox() -> Sandbox {
    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], STAFF);
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
    let s = sandbox();
    for q in [
        "Can I share my password?",
        "Can I use a memory stick?",
        "Can I post photos of pupils?",
    ] {
        s.run(["ask", q]).assert_success();
    }
    s.run(["audit", "verify"]).assert_success();
    let conn = rusqlite::Connection::open(s.store_path()).unwrap();
    // The database refuses edits and deletions outright…
    assert!(
        conn.execute("UPDATE audit_events SET payload = '{}' WHERE id = 2", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_events WHERE id = 2", []).is_err());
    // …and someone who removes that guard is still caught by the chain.
    conn.execute_batch("DROP TRIGGER audit_events_only_redact;").unwrap();
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
        json.as_array().unwrap().iter().any(|e| e["kind"] == "exported"),
        "the CSV export was recorded"
    );
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
