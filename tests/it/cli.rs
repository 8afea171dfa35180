//! `ask` and `clauses` on the shipped example school, as staff and policy
//! authors use them.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::{
    EXAMPLE_VERSION, SUGGEST_QUESTION, Sandbox, clause_list, clauses_json, example_policy, example_policy_text,
    normalize_ws, quoted_passages, run_in, str_field,
};

pub const WHATSAPP_QUESTION: &str = "Can I use WhatsApp to message the parents in my class?";
pub const PASSWORD_QUESTION: &str = "Can I share my password with a colleague?";
// Staff parking, asked here before, now draws a suggestion (a clause on
// laptops left in parked cars): annual leave is as far from the ICT policy.
const OFF_TOPIC_QUESTION: &str = "How much annual leave do I get?";

const VERDICTS: &[&str] = &["no", "yes", "conditional", "info", "none"];
const MODALITIES: &[&str] = &["must-not", "must", "should", "may", "info"];

/// The reply quotes at least one clause, every quote is in the policy word for
/// word, the first is about `topic`, and the citation names the policy version.
#[track_caller]
fn assert_quotes_policy(reply: &str, topic: &str) {
    let policy = example_policy_text();
    let quotes = quoted_passages(reply);
    assert!(!quotes.is_empty(), "the reply quotes no clause:\n{reply}");
    for quote in &quotes {
        assert!(
            policy.contains(&normalize_ws(quote)),
            "quoted text is not word for word from the policy: {quote:?}\nreply:\n{reply}"
        );
    }
    assert!(
        quotes[0].to_lowercase().contains(topic),
        "the first quoted clause is not about {topic:?}: {:?}\nreply:\n{reply}",
        quotes[0]
    );
    assert!(
        reply.contains(EXAMPLE_VERSION),
        "the citation does not give the policy version:\n{reply}"
    );
}

#[test]
fn ask_whatsapp_question_quotes_the_clause() {
    let run = Sandbox::example().run(["ask", WHATSAPP_QUESTION]);
    run.assert_success();
    assert_quotes_policy(&run.stdout, "whatsapp");
}

#[test]
fn ask_password_sharing_question_quotes_the_clause() {
    let run = Sandbox::example().run(["ask", PASSWORD_QUESTION]);
    run.assert_success();
    assert_quotes_policy(&run.stdout, "password");
}

/// The fields a caller of `ask --json` relies on, checked for any answer.
#[track_caller]
fn assert_answer_shape(answer: &Value) {
    let mode = str_field(answer, "mode");
    assert!(
        ["answer", "suggest", "decline"].contains(&mode),
        "unknown mode {mode:?}: {answer}"
    );
    assert_eq!(
        answer["answered"],
        mode == "answer",
        "answered is true exactly in mode answer: {answer}"
    );
    let verdict = str_field(answer, "verdict");
    assert!(VERDICTS.contains(&verdict), "unknown verdict {verdict:?}: {answer}");
    let confidence = answer["confidence"]
        .as_f64()
        .unwrap_or_else(|| panic!("confidence is not a number: {answer}"));
    assert!(
        (0.0..=1.0).contains(&confidence),
        "confidence {confidence} is outside 0-1"
    );
    let citations = answer["citations"]
        .as_array()
        .unwrap_or_else(|| panic!("citations is not an array: {answer}"));
    assert!(citations.len() <= 3, "more than 3 citations: {answer}");
    assert!(!str_field(answer, "reply").trim().is_empty(), "empty reply: {answer}");
}

#[test]
fn ask_json_has_the_answer_fields() {
    let sandbox = Sandbox::example();
    let policy = example_policy_text();
    for (question, topic) in [(WHATSAPP_QUESTION, "whatsapp"), (PASSWORD_QUESTION, "password")] {
        let answer = sandbox.ask_json(question);
        assert_answer_shape(&answer);
        assert_eq!(answer["answered"], true, "{question}: not answered: {answer}");
        assert_eq!(answer["verdict"], "no", "{question}: the policy forbids this: {answer}");
        let citations = answer["citations"].as_array().expect("citations");
        assert!(
            !citations.is_empty(),
            "{question}: answered without a citation: {answer}"
        );
        assert!(
            str_field(&citations[0], "text").to_lowercase().contains(topic),
            "{question}: first citation: {answer}"
        );
        let reply = str_field(&answer, "reply");
        for c in citations {
            let text = str_field(c, "text");
            assert!(
                policy.contains(&normalize_ws(text)),
                "citation is not word for word: {text:?}"
            );
            assert!(
                reply.contains(text),
                "the reply does not quote the cited clause {text:?}:\n{reply}"
            );
            assert!(
                str_field(c, "reference").contains(EXAMPLE_VERSION),
                "reference without version: {c}"
            );
        }
    }
}

#[test]
fn ask_json_suggests_the_closest_clauses_when_not_sure() {
    let sandbox = Sandbox::example();
    let policy = example_policy_text();
    let answer = sandbox.ask_json(SUGGEST_QUESTION);
    assert_answer_shape(&answer);
    assert_eq!(answer["mode"], "suggest", "{answer}");
    assert_eq!(answer["verdict"], "none", "a suggestion has no verdict: {answer}");
    assert_eq!(
        answer["outcome"], "declined",
        "unanswered for the e-safety lead: {answer}"
    );
    let citations = answer["citations"].as_array().expect("citations");
    assert!((1..=3).contains(&citations.len()), "{answer}");
    for c in citations {
        assert!(policy.contains(&normalize_ws(str_field(c, "text"))), "{c}");
    }
    assert!(
        str_field(&answer, "reply").starts_with("I'm not sure which clause answers this"),
        "{answer}"
    );
}

#[test]
fn ask_off_topic_question_is_declined_plainly() {
    let sandbox = Sandbox::example();
    let answer = sandbox.ask_json(OFF_TOPIC_QUESTION);
    assert_answer_shape(&answer);
    assert_eq!(
        answer["answered"], false,
        "an off-topic question was answered: {answer}"
    );
    assert_eq!(answer["mode"], "decline", "{answer}");
    assert_eq!(answer["verdict"], "none", "{answer}");
    assert_eq!(
        answer["citations"].as_array().map(Vec::len),
        Some(0),
        "a declined answer cites nothing: {answer}"
    );

    let run = sandbox.run(["ask", OFF_TOPIC_QUESTION]);
    run.assert_success();
    let reply = run.stdout.to_lowercase().replace('’', "'");
    assert!(
        [
            "couldn't find",
            "could not find",
            "does not answer",
            "doesn't answer",
            "does not cover"
        ]
        .iter()
        .any(|p| reply.contains(p)),
        "the reply does not say plainly that the policy has no answer:\n{}",
        run.stdout
    );
    assert!(
        quoted_passages(&run.stdout).is_empty(),
        "a declined reply quotes a clause:\n{}",
        run.stdout
    );
}

#[test]
fn clauses_lists_the_example_policy() {
    let policy = example_policy();
    let run = run_in(policy.parent().unwrap(), ["clauses".as_ref(), policy.as_os_str()]);
    run.assert_success();
    assert!(run.stdout.contains(EXAMPLE_VERSION), "no version in:\n{}", run.stdout);
    assert!(
        run.stdout.contains("Never share your password with anyone"),
        "a clause is missing:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("must-not"), "no modality shown:\n{}", run.stdout);
}

#[test]
fn clauses_json_gives_id_modality_and_heading_path() {
    let policy = clauses_json(&example_policy());
    let clauses = clause_list(&policy);
    assert!(!clauses.is_empty(), "no clauses: {policy}");
    let mut ids = HashSet::new();
    for c in clauses {
        let id = str_field(c, "id");
        assert!(!id.is_empty(), "empty id: {c}");
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        assert!(MODALITIES.contains(&str_field(c, "modality")), "unknown modality: {c}");
        let path = c["heading_path"]
            .as_array()
            .unwrap_or_else(|| panic!("heading_path is not an array: {c}"));
        assert!(
            !path.is_empty() && path.iter().all(Value::is_string),
            "bad heading_path: {c}"
        );
    }

    let donts: Vec<&Value> = clauses
        .iter()
        .filter(|c| {
            c["heading_path"]
                .as_array()
                .and_then(|p| p.last())
                .and_then(Value::as_str)
                == Some("Don't")
        })
        .collect();
    assert_eq!(donts.len(), 5, "the example's \"Don't\" list has 5 items: {donts:?}");
    for c in donts {
        assert_eq!(
            c["modality"], "must-not",
            "an item of a \"Don't\" list is a prohibition: {c}"
        );
    }
}

/// An item of a "Don't" list quoted alone reads like permission: every
/// answer shows the list's head before the quote, which stays word for word.
#[test]
fn ask_quotes_a_dont_item_under_its_head() {
    let sandbox = Sandbox::empty();
    let dir = sandbox.policy_dir("policies");
    crate::support::write(
        &dir.join("staff-code.txt"),
        "Staff Code of Conduct\nVersion: 2\n\nEmail\n\nDo:\n\n- Use your school email account for all school business.\n\nDon't:\n\n- Use your personal email address to contact parents.\n- Forward school email to a personal account.\n",
    );
    sandbox.write_config(&[("school", &dir)]);
    let question = "Can I use my personal email address to contact parents?";
    let run = sandbox.run(["ask", question]);
    run.assert_success();
    assert!(
        run.stdout
            .contains("Under ‘Don't:’ — “Use your personal email address to contact parents.”"),
        "{run}"
    );
    let answer = sandbox.ask_json(question);
    let cited = &answer["citations"][0];
    assert_eq!(cited["list_head"], "Don't", "{answer}");
    assert_eq!(
        cited["text"], "Use your personal email address to contact parents.",
        "the quote itself is unchanged: {answer}"
    );
    assert!(str_field(&answer, "reply").contains("Under ‘Don't:’"), "{answer}");
}

/// An error is printed once: no cause repeated under "Caused by:", no
/// backtrace (people running the command have no RUST_BACKTRACE).
#[test]
fn errors_are_printed_once_without_a_backtrace() {
    let sandbox = Sandbox::empty();
    let docx = sandbox.path().join("policy.docx");
    crate::support::write(&docx, b"PK\x03\x04\x14\0\x06\0word/document.xml");
    let missing = sandbox.path().join("missing.txt");
    for (file, says) in [(&docx, "not a .docx"), (&missing, "no such file")] {
        let run = run_in(sandbox.path(), ["clauses".as_ref(), file.as_os_str()]);
        run.assert_failure();
        run.assert_reports(file, &[says]);
        let lower = run.stderr.to_lowercase();
        assert_eq!(lower.matches(says).count(), 1, "said once: {run}");
        assert!(!lower.contains("backtrace"), "{run}");
        assert!(!lower.contains("caused by"), "nothing else to say: {run}");
    }
}

/// `policybot user add ARGS…`: (success, stdout, stderr).
fn user_add(s: &Sandbox, args: &[&str], password: &str) -> (bool, String, String) {
    let out = s.user_add(args, password);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 14 item 14: `user add ''` made a user with an empty name, and an
/// unknown role was refused only after the password had been typed.
#[test]
fn user_add_checks_the_name_and_role_before_asking_for_the_password() {
    let s = Sandbox::example();
    let long = "n".repeat(65);
    for (name, why) in [
        ("", "empty"),
        ("   ", "space"),
        (" hannah", "space"),
        ("han\u{7}nah", "control character"),
        ("han\nnah", "control character"),
        (long.as_str(), "longer than 64"),
    ] {
        let (ok, stdout, stderr) = user_add(&s, &[name, "--role", "head"], "a long enough password");
        assert!(!ok, "{name:?} was accepted: {stdout}");
        assert!(stderr.contains(why), "{name:?}: {stderr}");
        assert!(
            !stderr.contains("password for"),
            "{name:?}: the password was asked for first: {stderr}"
        );
    }
    let (ok, _, stderr) = user_add(&s, &["hannah", "--role", "janitor"], "a long enough password");
    assert!(!ok);
    assert!(
        stderr.contains("invalid value 'janitor'") && stderr.contains("esafety-lead"),
        "the role is refused, naming the roles: {stderr}"
    );
    assert!(
        !stderr.contains("password for"),
        "the password was asked for first: {stderr}"
    );

    // A good name and role: the password is asked for, and the user added.
    let (ok, stdout, stderr) = user_add(
        &s,
        &["Hannah Price", "--role", "esafety-lead"],
        "a long enough password",
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("password for Hannah Price"), "{stderr}");
    assert_eq!(stdout.trim(), "added Hannah Price (esafety-lead)");
}
