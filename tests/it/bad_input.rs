//! Bad policy files, bad questions and bad configs: each is named in a clear
//! message, the binary never panics, and nothing else is lost.

use std::path::PathBuf;

use crate::cli::PASSWORD_QUESTION;
use crate::support::{Run, Sandbox, clause_list, clauses_json, run_in, str_field, write};

/// 8 MiB: `policybot_index::corpus::MAX_POLICY_BYTES`.
const MAX_POLICY_BYTES: usize = 8 * 1024 * 1024;

/// A school with the example policy as `good.txt` plus one bad file.
fn with_bad_file(name: &str, contents: &[u8]) -> (Sandbox, PathBuf) {
    let (sandbox, dir) = Sandbox::with_copied_example();
    let bad = dir.join(name);
    write(&bad, contents);
    (sandbox, bad)
}

/// `index` still succeeds and indexes `policies` policies (the good one among
/// them), and a question the good policy answers is still answered from it.
#[track_caller]
fn assert_good_policy_survives(sandbox: &Sandbox, policies: u64) -> Run {
    let run = sandbox.run(["index"]);
    run.assert_success().assert_no_panic();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{policies} policies"))),
        "expected {policies} policies indexed: {run}"
    );
    let answer = sandbox.ask_json(PASSWORD_QUESTION);
    // Answered, or (when another policy of the school says something close)
    // suggested: either way the good policy's clause is quoted first.
    assert!(
        answer["mode"] == "answer" || answer["mode"] == "suggest",
        "the good policy no longer answers: {answer}"
    );
    let cited = &answer["citations"][0];
    assert!(str_field(cited, "text").contains("password"), "{answer}");
    run
}

#[test]
fn empty_file_is_reported_and_the_rest_indexed() {
    let (sandbox, bad) = with_bad_file("empty.txt", b"");
    let run = assert_good_policy_survives(&sandbox, 1);
    run.assert_reports(&bad, &["no clauses", "empty"]);
}

#[test]
fn binary_file_is_refused_and_the_rest_indexed() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    let (sandbox, bad) = with_bad_file("scanned-policy.txt", png);
    let run = assert_good_policy_survives(&sandbox, 1);
    run.assert_reports(&bad, &["not a text file", "binary"]);

    let clauses = run_in(sandbox.path(), ["clauses".as_ref(), bad.as_os_str()]);
    clauses.assert_failure();
    clauses.assert_reports(&bad, &["not a text file", "binary"]);
}

#[test]
fn invalid_utf8_is_decoded_with_a_warning_naming_the_line() {
    let latin1 = b"Rules\n\nKeep your password safe.\nStaff must lock the caf\xe9 laptop when they leave it.\n";
    let (sandbox, bad) = with_bad_file("latin1.txt", latin1);
    let run = assert_good_policy_survives(&sandbox, 2);
    let line = run.assert_reports(&bad, &["utf-8"]);
    assert!(line.contains("latin1.txt:4:"), "the warning names file:line: {line}");

    let clauses = run_in(sandbox.path(), ["clauses".as_ref(), bad.as_os_str(), "--json".as_ref()]);
    clauses.assert_success();
    let policy = clauses.json();
    let warned = policy["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|w| w[0] == 4 && w[1].as_str().is_some_and(|m| m.contains("UTF-8")));
    assert!(
        warned,
        "clauses --json carries the warning for line 4: {}",
        policy["warnings"]
    );
    let texts: Vec<&str> = clause_list(&policy).iter().map(|c| str_field(c, "text")).collect();
    assert!(
        texts.iter().any(|t| t.contains("Keep your password safe.")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("caf\u{fffd} laptop")),
        "the bad byte becomes U+FFFD: {texts:?}"
    );
}

#[test]
fn file_over_8_mib_is_refused_with_a_size_message() {
    let line = "Staff must lock their screens whenever they leave a computer unattended.\n";
    let mut big = line.repeat(MAX_POLICY_BYTES / line.len() + 1).into_bytes();
    big.truncate(MAX_POLICY_BYTES + 1);
    let (sandbox, bad) = with_bad_file("huge.txt", &big);
    let run = assert_good_policy_survives(&sandbox, 1);
    let message = run.assert_reports(&bad, &["larger than", "too large", "limit"]);
    assert!(
        message.contains("bytes") || message.contains("MiB") || message.contains("MB"),
        "{message}"
    );
}

#[test]
fn policy_without_headings_still_yields_clauses() {
    let text = "Staff must lock their screens when they leave a computer.\n\
                Never share your password with anyone.\n\n\
                Only encrypted USB sticks issued by the school may be used.\n";
    let (sandbox, file) = with_bad_file("no-headings.txt", text.as_bytes());
    let policy = clauses_json(&file);
    let clauses = clause_list(&policy);
    assert!(
        clauses.len() >= 2,
        "a policy without headings still has clauses: {policy}"
    );
    assert!(
        clauses
            .iter()
            .any(|c| str_field(c, "text").contains("encrypted USB sticks")),
        "{policy}"
    );
    assert!(clauses.iter().any(|c| c["modality"] == "must-not"), "{policy}");

    let run = assert_good_policy_survives(&sandbox, 2);
    assert!(
        !run.stderr.contains("no-headings.txt"),
        "nothing to report about it: {run}"
    );
    let check = sandbox.run(["index", "--check"]);
    check.assert_success();
}

#[test]
fn a_truncated_docx_and_a_damaged_pdf_are_named() {
    let (sandbox, docx) = with_bad_file("policy.docx", b"PK\x03\x04\x14\0\x06\0word/document.xml");
    let pdf = docx.with_file_name("policy.pdf");
    write(&pdf, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n");
    let run = assert_good_policy_survives(&sandbox, 1);
    run.assert_reports(&docx, &["not a .docx"]);
    run.assert_reports(&pdf, &["damaged PDF"]);
}

/// `index --check` with one bad file: non-zero exit, `file:...: message`
/// lines, no index written; then `index` still indexes the good files.
#[test]
fn index_check_fails_on_an_error_and_index_still_indexes_the_good_files() {
    let (sandbox, bad) = with_bad_file("image.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let check = sandbox.run(["index", "--check"]);
    check.assert_failure();
    let prefix = format!("{}:", bad.display());
    let line = check.stderr.lines().find(|l| l.starts_with(&prefix));
    let line = line.unwrap_or_else(|| panic!("expected a line starting with {prefix:?}: {check}"));
    assert!(
        line[prefix.len()..].trim().len() > 10,
        "the line says what is wrong: {line}"
    );
    assert!(!sandbox.index_dir().exists(), "--check must not write the index");

    let index = sandbox.index_json();
    assert_eq!(index["policies"], 1, "{index}");
    assert_eq!(index["index"]["reindexed"], 1, "{index}");
    let errors = index["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with(&prefix))),
        "{index}"
    );
    assert_good_policy_survives(&sandbox, 1);
}

#[test]
fn index_check_passes_on_good_policies() {
    let (sandbox, _) = Sandbox::with_copied_example();
    let check = sandbox.run(["index", "--check"]);
    check.assert_success();
    assert!(check.stderr.trim().is_empty(), "nothing to report: {check}");
    assert!(!sandbox.index_dir().exists(), "--check must not write the index");
}

#[test]
fn empty_question_is_refused_clearly() {
    let sandbox = Sandbox::example();
    for question in ["", "   ", "\n\t"] {
        let run = sandbox.run(["ask", question]);
        run.assert_failure();
        run.assert_stderr_contains(&["question is empty"]);
        assert!(run.stdout.is_empty(), "{run}");
    }
}

#[test]
fn ten_kilobyte_question_is_answered_or_declined() {
    let sentence = "Can I share my password with a colleague who covers my class when I am off sick? ";
    let question: String = sentence
        .repeat(10 * 1024 / sentence.len() + 1)
        .chars()
        .take(10 * 1024)
        .collect();
    assert_eq!(question.len(), 10 * 1024);
    let sandbox = Sandbox::example();
    let answer = sandbox.ask_json(&question);
    assert!(answer["answered"].is_boolean(), "{answer}");
    assert!(!str_field(&answer, "reply").is_empty(), "{answer}");
    let run = sandbox.run(["ask", question.as_str()]);
    run.assert_success().assert_no_panic();
    assert!(!run.stdout.trim().is_empty(), "{run}");
}

#[test]
fn unknown_school_lists_the_configured_schools() {
    let sandbox = Sandbox::empty();
    let other = sandbox.policy_dir("other");
    write(&other.join("ict.txt"), "ICT\n\nStaff must lock their screens.\n");
    sandbox.write_config(&[("oakfield", &crate::support::example_policies()), ("riverside", &other)]);
    let run = sandbox.run(["ask", PASSWORD_QUESTION, "--school", "nowhere"]);
    run.assert_failure();
    run.assert_stderr_contains(&["unknown school", "nowhere", "oakfield", "riverside"]);
}

#[test]
fn missing_config_file_is_named() {
    let sandbox = Sandbox::empty();
    let missing = sandbox.path().join("no-such-config.toml");
    let run = run_in(
        sandbox.path(),
        ["--config".as_ref(), missing.as_os_str(), "index".as_ref()],
    );
    run.assert_failure();
    run.assert_stderr_contains(&[&missing.display().to_string()]);

    // Without --config the default path is named, relative to the working directory.
    let run = run_in(sandbox.path(), ["ask", PASSWORD_QUESTION]);
    run.assert_failure();
    run.assert_stderr_contains(&["config/policybot.toml"]);
}

#[track_caller]
fn assert_config_refused(toml: &str, words: &[&str]) {
    let sandbox = Sandbox::empty();
    write(&sandbox.config_path(), toml);
    for args in [&["index"][..], &["ask", PASSWORD_QUESTION][..]] {
        let run = sandbox.run(args);
        run.assert_failure();
        run.assert_stderr_contains(&[&sandbox.config_path().display().to_string()]);
        run.assert_stderr_contains(words);
    }
}

#[test]
fn malformed_config_is_refused_clearly() {
    assert_config_refused("index_dir = \n[[school]\nid = \"x\"\n", &["parse", "line 2"]);
    assert_config_refused(
        "index_dir = \"idx\"\npolicy_dir = \"p\"\n",
        &["unknown field", "policy_dir"],
    );
    assert_config_refused("index_dir = \"idx\"\n", &["no [[school]]"]);
}

#[test]
fn a_wrong_email_section_is_refused_clearly() {
    let school = "[[school]]\nid = \"s\"\npolicies = \"p\"\n";
    let servers = "imap = { host = \"127.0.0.1\", port = 993, tls = \"implicit\" }\n\
                   smtp = { host = \"127.0.0.1\", port = 587, tls = \"starttls\" }\n";
    assert_config_refused(
        &format!("[email]\naddress = \"policy@x.example\"\n{servers}\n{school}"),
        &["[email] needs password"],
    );
    assert_config_refused(
        &format!("[email]\naddress = \"policy\"\npassword = \"p\"\n{servers}\n{school}"),
        &["not an email address"],
    );
    assert_config_refused(
        &format!("[email]\naddress = \"policy@x.example\"\npassword = \"p\"\nidle_minutes = 45\n{servers}\n{school}"),
        &["idle_minutes must be 1 to 29"],
    );
    assert_config_refused(
        &format!(
            "[email]\naddress = \"policy@x.example\"\npassword = \"p\"\n\
             imap = {{ host = \"h\", port = 993, tls = \"ssl\" }}\n{school}"
        ),
        &["unknown variant", "ssl"],
    );
}

/// The example policy as Windows saves "Unicode" text: UTF-16 with a BOM,
/// either byte order (and UTF-8 with a BOM), reads exactly like the UTF-8.
#[test]
fn utf16_and_bom_policies_read_like_utf8() {
    let (sandbox, dir) = Sandbox::with_copied_example();
    let good = dir.join("good.txt");
    let original = clauses_json(&good);
    let text = std::fs::read_to_string(&good).unwrap();
    let utf16 = |big_endian: bool| -> Vec<u8> {
        std::iter::once('\u{feff}')
            .chain(text.chars())
            .collect::<String>()
            .encode_utf16()
            .flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() })
            .collect()
    };
    let mut utf8_bom = b"\xEF\xBB\xBF".to_vec();
    utf8_bom.extend_from_slice(text.as_bytes());
    let other = sandbox.policy_dir("other");
    for (name, bytes) in [
        ("utf16le.txt", utf16(false)),
        ("utf16be.txt", utf16(true)),
        ("utf8bom.txt", utf8_bom),
    ] {
        let file = other.join(name);
        write(&file, bytes);
        let run = run_in(
            sandbox.path(),
            ["clauses".as_ref(), file.as_os_str(), "--json".as_ref()],
        );
        run.assert_success();
        assert!(run.stderr.trim().is_empty(), "nothing to warn about: {run}");
        let policy = run.json();
        assert_eq!(policy["title"], original["title"], "{name}");
        let texts = |p: &serde_json::Value| -> Vec<String> {
            clause_list(p).iter().map(|c| str_field(c, "text").to_owned()).collect()
        };
        assert_eq!(texts(&policy), texts(&original), "{name}");
    }
}

/// Bytes that are not text (no NUL bytes, so not caught as binary) are
/// refused with a message naming the file, not read as hundreds of garbage
/// clauses.
#[test]
fn random_bytes_are_refused_as_not_text() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let noise: Vec<u8> = (0..200 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 255) as u8 + 1
        })
        .collect();
    let (sandbox, bad) = with_bad_file("noise.txt", &noise);
    let run = assert_good_policy_survives(&sandbox, 1);
    run.assert_reports(&bad, &["not a text file"]);

    let clauses = run_in(sandbox.path(), ["clauses".as_ref(), bad.as_os_str()]);
    clauses.assert_failure();
    let line = clauses.assert_reports(&bad, &["not a text file"]);
    assert!(line.contains("letters"), "it says why: {line}");
    assert!(clauses.stdout.is_empty(), "no clauses printed: {clauses}");
}

/// A file with nothing to index is an error for `clauses` (non-zero, naming
/// the file), as it is for `index --check`.
#[test]
fn empty_and_headings_only_files_have_no_clauses() {
    let sandbox = Sandbox::empty();
    let dir = sandbox.policy_dir("policies");
    for (name, text) in [
        ("empty.txt", ""),
        ("blank.txt", "\n\n   \n"),
        ("headings.md", "# ICT Policy\n\n## Email\n\n## Passwords\n"),
        ("headings.txt", "ICT POLICY\n\n1. Introduction\n\n2. Email\n"),
    ] {
        let file = dir.join(name);
        write(&file, text);
        let run = run_in(sandbox.path(), ["clauses".as_ref(), file.as_os_str()]);
        run.assert_failure();
        run.assert_reports(&file, &["no clauses found"]);
        assert_eq!(
            run.stderr.matches("no clauses found").count(),
            1,
            "said once, as an error: {run}"
        );
    }
    sandbox.write_config(&[("school", &dir)]);
    let check = sandbox.run(["index", "--check"]);
    check.assert_failure();
    for name in ["empty.txt", "headings.md", "headings.txt"] {
        check.assert_reports(&dir.join(name), &["no clauses found"]);
    }
}

/// A folder is not a policy, whatever its name: one message for a folder
/// called `x.txt` and one called `x`.
#[test]
fn a_folder_is_not_a_policy_whatever_its_name() {
    let sandbox = Sandbox::empty();
    for name in ["policy.txt", "policy"] {
        let dir = sandbox.policy_dir(name);
        let run = run_in(sandbox.path(), ["clauses".as_ref(), dir.as_os_str()]);
        run.assert_failure();
        let line = run.assert_reports(&dir, &["not a policy file (a folder)"]);
        assert!(!run.stderr.to_lowercase().contains("is a directory"), "{line}");
    }
}

/// A thesaurus the config names must be there: every command refuses a
/// missing one (naming the file and the setting) rather than answering
/// without it; a malformed one is named too.
#[test]
fn a_missing_or_malformed_thesaurus_is_refused() {
    let (sandbox, _) = Sandbox::with_copied_example();
    let missing = sandbox.path().join("no-such-thesaurus.toml");
    // A top-level setting, so before the [[school]] tables.
    let toml = std::fs::read_to_string(sandbox.config_path()).unwrap();
    write(
        &sandbox.config_path(),
        format!("thesaurus = \"no-such-thesaurus.toml\"\n{toml}"),
    );
    for args in [
        &["index"][..],
        &["index", "--check"][..],
        &["ask", PASSWORD_QUESTION][..],
    ] {
        let run = sandbox.run(args);
        run.assert_failure();
        run.assert_stderr_contains(&["thesaurus", &missing.display().to_string()]);
        assert!(run.stdout.is_empty(), "{run}");
    }

    write(&missing, "[[group]]\nterms = [\"pupil\", \"child\"\n");
    let run = sandbox.run(["ask", PASSWORD_QUESTION]);
    run.assert_failure();
    run.assert_stderr_contains(&["thesaurus", &missing.display().to_string(), "line 2"]);

    // The shipped thesaurus, named by the setting, works.
    let shipped = crate::support::repo_dir().join("config/thesaurus.toml");
    write(&missing, std::fs::read(shipped).unwrap());
    let answer = sandbox.ask_json(PASSWORD_QUESTION);
    assert_eq!(answer["answered"], true, "{answer}");
}

/// Issue 14 item 11: a 3 MB Ask form was answered 400 "the form was
/// incomplete". Every form too large for what it holds gets 413, saying so.
#[test]
fn an_oversized_dashboard_form_is_refused_as_too_large() {
    use crate::support::{Serve, get_page, http, login_form, sign_in};

    let s = Sandbox::example();
    s.add_user("hannah", "esafety-lead", "a long test password");
    let server = Serve::start(&s);
    let addr = server.addr.to_string();
    let cookie = sign_in(&addr, "hannah", "a long test password");
    let page = get_page(&addr, &cookie, "/ask");
    let csrf = page
        .split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .expect("the ask form's token");
    let huge = "x".repeat(3 * 1024 * 1024);
    let post = |path: &str, cookie: &str, body: &str| {
        http(
            &addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    for (path, body) in [
        ("/ask", format!("csrf={csrf}&school=oakfield&question={huge}")),
        ("/review", format!("csrf={csrf}&event=1&mark=wrong&note={huge}")),
        ("/logout", format!("csrf={csrf}&x={huge}")),
    ] {
        let r = post(path, &cookie, &body);
        assert!(r.starts_with("HTTP/1.1 413"), "{path}: {}", &r[..r.len().min(600)]);
        assert!(r.contains("too large"), "{path}: {r}");
    }
    let (login_cookie, token) = login_form(&addr);
    let r = post(
        "/login",
        &login_cookie,
        &format!("csrf={token}&name=hannah&password={huge}"),
    );
    assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(600)]);
    assert!(r.contains("far too long"), "{r}");
    // A question of a normal size still works after all that.
    let r = post(
        "/ask",
        &cookie,
        &format!("csrf={csrf}&school=oakfield&question=Can+I+share+my+password%3F"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{}", &r[..r.len().min(600)]);
}
