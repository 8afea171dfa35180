//! `policybot serve` as a process: ready line, retention applied at start,
//! HTML escaping of what staff typed, and a clean stop on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::{Sandbox, Serve, example_policies, get_page, read, sign_in, write};

#[test]
fn serve_escapes_what_staff_typed_applies_retention_and_stops_cleanly_on_sigterm() {
    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], "");
    // Top-level keys go before the [[school]] tables.
    write(
        &s.config_path(),
        format!("retention_days = 0\n{}", read(&s.config_path())),
    );
    s.add_user("hannah", "esafety-lead", "a long test password");
    let old = "Can I use WhatsApp to message parents?";
    s.run(["ask", old]).assert_success();
    std::thread::sleep(Duration::from_millis(20));

    let server = Serve::start(&s);
    let addr = server.addr.to_string();

    // Retention ran at start: the question asked before is redacted, and the
    // chain still verifies.
    let started = Instant::now();
    loop {
        let events = s.run(["audit", "list", "--json"]).assert_success().json();
        if events.as_array().unwrap().iter().any(|e| e["kind"] == "redacted") {
            assert!(events[0]["question"].is_null(), "{events}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "retention never ran: {events}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.run(["audit", "verify"]).assert_success();

    // What staff type is shown as text, never as markup.
    s.run(["ask", "<script>alert('hi')</script> can I use my phone?"])
        .assert_success();
    let cookie = sign_in(&addr, "hannah", "a long test password");
    let page = get_page(&addr, &cookie, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("&lt;script&gt;alert("), "the question is escaped");
    assert!(
        !page.contains("<script>alert("),
        "no markup from a question reaches the page"
    );

    // SIGTERM: the server finishes and exits with success.
    let status = server.stop_within(Duration::from_secs(10));
    assert!(status.success(), "serve exited with {status}");
}
