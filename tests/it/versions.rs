//! Policy versions while the service runs: a saved policy is live within
//! seconds and answers cite its version; `policy diff` and the dashboard say
//! what changed; a broken save keeps the last good version live (also after
//! a restart); the audit log keeps the history right.

use std::time::{Duration, Instant};

use crate::support::{Sandbox, Serve, get_page, http, read, sign_in, write};

const PASSWORD: &str = "a long test password";
const QUESTION: &str = "Can I use WhatsApp to contact parents?";
const OLD_ITEM: &str = "Use WhatsApp, Facebook Messenger or any other personal messaging app";
const NEW_ITEM: &str = "Use WhatsApp, Signal, Facebook Messenger or any other personal messaging app";

/// Asks through the dashboard's form, as the running service answers.
fn ask(addr: &str, cookie: &str, question: &str) -> String {
    let form = get_page(addr, cookie, "/ask");
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no csrf token on the ask page: {form}"));
    let body = format!(
        "csrf={csrf}&school=school&question={}",
        question.replace(' ', "+").replace('?', "%3F")
    );
    http(
        addr,
        &format!(
            "POST /ask HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Polls a dashboard page until it contains `wanted`; how long that took.
fn wait_for_page(addr: &str, cookie: &str, path: &str, wanted: &str) -> Duration {
    let started = Instant::now();
    loop {
        let page = get_page(addr, cookie, path);
        if page.contains(wanted) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} never showed {wanted:?}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_policy_saved_while_serving_is_live_in_seconds_and_a_broken_save_changes_nothing() {
    let (s, dir) = Sandbox::with_copied_example();
    let policy = dir.join("good.txt");
    write(
        &s.config_path(),
        format!("watch_seconds = 1\n{}", read(&s.config_path())),
    );
    s.add_user("hannah", "esafety-lead", PASSWORD);
    let original = read(&policy);
    assert!(original.contains("Version:\t2026-09-01") && original.contains(OLD_ITEM));

    let mut server = Serve::start(&s);
    let addr = server.addr.to_string();
    let cookie = sign_in(&addr, "hannah", PASSWORD);
    wait_for_page(&addr, &cookie, "/policies", "2026-09-01");
    let before = ask(&addr, &cookie, QUESTION);
    assert!(
        before.contains("version 2026-09-01") && before.contains(OLD_ITEM),
        "{before}"
    );

    // A new version is saved: live within seconds, and answers cite it.
    write(
        &policy,
        original
            .replace("Version:\t2026-09-01", "Version:\t2027-01-05")
            .replace(OLD_ITEM, NEW_ITEM),
    );
    let saved = Instant::now();
    server.wait_for_line("policybot: policies reloaded: 1 re-indexed", Duration::from_secs(30));
    println!("a saved policy was live after {:?}", saved.elapsed());
    wait_for_page(&addr, &cookie, "/policies", "2027-01-05");
    let after = ask(&addr, &cookie, QUESTION);
    assert!(
        after.contains("version 2027-01-05") && after.contains(NEW_ITEM),
        "{after}"
    );

    // What changed, on the dashboard and in the terminal.
    let policies = get_page(&addr, &cookie, "/policies");
    assert!(policies.contains("what changed since 2026-09-01"), "{policies}");
    let slug = "oakfield-primary-school-staff-ict-acceptable-use-policy";
    let page = get_page(
        &addr,
        &cookie,
        &format!("/policies/diff?school=school&policy={slug}&from=2026-09-01&to=2027-01-05"),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("<ins>Signal,</ins>") && page.contains("reworded"),
        "{page}"
    );
    let diff = s
        .run(["policy", "diff", "school", "acceptable use"])
        .assert_success()
        .stdout
        .clone();
    assert!(diff.contains("version 2026-09-01 → version 2027-01-05"), "{diff}");
    assert!(diff.contains("REWORDED") && diff.contains("{+Signal,+}"), "{diff}");
    let json = s
        .run(["policy", "diff", "school", slug, "--from", "2026-09-01", "--json"])
        .assert_success()
        .json();
    assert_eq!(json["to"], "2027-01-05");
    assert!(json["summary"].as_str().unwrap().starts_with("2 reworded"), "{json}");

    // A broken save: the error is on the dashboard, the last good version
    // stays live.
    write(&policy, b"\x00\x01\x02 not a policy \x00\xff".repeat(100));
    server.wait_for_line(
        "policybot: policies reloaded: 0 re-indexed, 0 removed, 1 unchanged, 1 error(s)",
        Duration::from_secs(30),
    );
    wait_for_page(&addr, &cookie, "/policies", "stays live until the file is fixed");
    let page = get_page(&addr, &cookie, "/policies");
    assert!(
        page.contains("good.txt") && page.contains("could not be read"),
        "{page}"
    );
    let still = ask(&addr, &cookie, QUESTION);
    assert!(
        still.contains("version 2027-01-05") && still.contains(NEW_ITEM),
        "{still}"
    );

    // The answer given under the first version still shows the words it
    // quoted, though the policy has changed since.
    let clauses = get_page(&addr, &cookie, "/clauses");
    assert!(
        clauses.contains(OLD_ITEM) && clauses.contains("since changed"),
        "{clauses}"
    );
    // A "Don't" item is quoted under its list's head there too.
    assert!(clauses.contains("Under ‘Don't:’"), "{clauses}");
    let status = server.stop_within(Duration::from_secs(10));
    assert!(status.success(), "serve exited with {status}");

    // After a restart the broken file still falls back to its last good version.
    let run = s.run(["ask", QUESTION]);
    run.assert_success().assert_stderr_contains(&["good.txt", "stays live"]);
    assert!(run.stdout.contains("version 2027-01-05"), "{}", run.stdout);

    // The audit log: each version going live, each answer citing the
    // version it quoted, and the chain intact.
    let events = s.run(["audit", "list", "--json"]).assert_success().json();
    let events = events.as_array().unwrap();
    let went_live: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "policy-version")
        .map(|e| e["payload"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(went_live, ["2026-09-01", "2027-01-05"], "{events:?}");
    let cited: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "answered")
        .map(|e| e["payload"]["citations"][0]["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        cited,
        ["2026-09-01", "2027-01-05", "2027-01-05", "2027-01-05"],
        "{events:?}"
    );
    s.run(["audit", "verify"]).assert_success();
}

#[test]
fn two_files_of_one_policy_are_one_policy_the_one_saved_last() {
    let (s, dir) = Sandbox::with_copied_example();
    let newer = dir.join("good-new.txt");
    std::thread::sleep(Duration::from_millis(20));
    write(&newer, read(&dir.join("good.txt")).replace(OLD_ITEM, NEW_ITEM));
    let run = s.run(["ask", QUESTION]);
    run.assert_success().assert_stderr_contains(&[
        "good.txt: skipped: the same policy",
        "good-new.txt, which was saved later",
    ]);
    assert!(run.stdout.contains(NEW_ITEM), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("Use WhatsApp").count(),
        1,
        "answered once: {}",
        run.stdout
    );
}

#[test]
fn a_new_version_plans_one_campaign_and_the_digest_says_where_things_stand() {
    let (s, dir) = Sandbox::with_copied_example();
    let policy = dir.join("good.txt");
    write(
        &s.config_path(),
        format!(
            "{}\n[acknowledgements]\nescalate_after = 1\n\n[email]\naddress = \"policy@oakfield.example\"\npassword = \"x\"\n\
             imap = {{ host = \"127.0.0.1\", port = 1, tls = \"none\" }}\nsmtp = {{ host = \"127.0.0.1\", port = 1, tls = \"none\" }}\n\n\
             [[staff]]\nname = \"Amira Shah\"\nschool = \"school\"\nrole = \"Teacher\"\nemail = [\"a.shah@oakfield.example\"]\n",
            read(&s.config_path())
        ),
    );
    // The first version the bot sees waits for the schedule.
    let digest = s.run(["acks", "--digest"]).assert_success().stdout.clone();
    assert!(
        digest.contains("version 2026-09-01: 0 of 1 staff have acknowledged it (0%)"),
        "{digest}"
    );
    assert!(digest.contains("Amira Shah: not yet (0 nudge(s) sent)"), "{digest}");
    let campaigns = |s: &Sandbox| {
        s.run(["audit", "list", "--kind", "campaign", "--json"])
            .assert_success()
            .json()
    };
    assert_eq!(campaigns(&s).as_array().unwrap().len(), 0);

    // A new version: whichever command reads it first plans its campaign, once.
    write(
        &policy,
        read(&policy)
            .replace("Version:\t2026-09-01", "Version:\t2027-01-05")
            .replace(OLD_ITEM, NEW_ITEM),
    );
    s.run(["policy", "versions", "school"]).assert_success();
    s.run(["nudge", "--dry-run"]).assert_success();
    let planned = campaigns(&s);
    let planned = planned.as_array().unwrap();
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(planned[0]["payload"]["reason"], "new version");
    assert_eq!(
        planned[0]["payload"]["slot"],
        "version school/oakfield-primary-school-staff-ict-acceptable-use-policy/2027-01-05"
    );
    assert_eq!(planned[0]["payload"]["planned"], 1);
    let dry = s.run(["nudge", "--dry-run"]).assert_success().stdout.clone();
    assert!(dry.contains("a nudge is already waiting to be sent"), "{dry}");
}
