//! `policybot eval … --json` prints exactly what `shared/eval/README.md` specifies.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{eval_report, read, shared_dir, str_field};

const SUMMARY_KEYS: &[&str] = &[
    "questions",
    "answerable",
    "recall_at_1",
    "recall_at_3",
    "mrr",
    "out_of_scope_declined",
    "answerable_declined",
    "verdict_accuracy",
    "confident_wrong",
    "suggested",
    "out_of_scope_confident",
];
const SHARES: &[&str] = &[
    "recall_at_1",
    "recall_at_3",
    "mrr",
    "out_of_scope_declined",
    "answerable_declined",
    "verdict_accuracy",
    "confident_wrong",
    "suggested",
    "out_of_scope_confident",
];
const RESULT_KEYS: &[&str] = &["id", "mode", "answered", "verdict", "citations"];
const MODES: &[&str] = &["answer", "suggest", "decline"];
const CITATION_KEYS: &[&str] = &["clause", "policy", "text"];
const VERDICTS: &[&str] = &["no", "yes", "conditional", "info", "none"];

#[track_caller]
fn assert_keys(value: &Value, expected: &[&str], what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    let got: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "{what} keys differ from the eval README: {value}");
}

#[test]
fn eval_json_has_exactly_the_specified_keys() {
    let Some(shared) = shared_dir() else { return };
    let questions = shared.join("eval").join("dev.yaml");
    let report = eval_report(&shared, &shared.join("corpus"));
    assert_keys(&report, &["summary", "results"], "the report");

    let summary = &report["summary"];
    assert_keys(summary, SUMMARY_KEYS, "summary");
    let count = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("summary.{k} is not a count: {summary}"))
    };
    let items = read(&questions).lines().filter(|l| l.starts_with("- id:")).count() as u64;
    assert_eq!(count("questions"), items, "every question of dev.yaml is scored");
    assert!(count("answerable") <= count("questions"));
    for k in SHARES {
        let x = summary[k]
            .as_f64()
            .unwrap_or_else(|| panic!("summary.{k} is not a number: {summary}"));
        assert!((0.0..=1.0).contains(&x), "summary.{k} = {x} is not a share");
    }

    let results = report["results"].as_array().expect("results is an array");
    assert_eq!(results.len() as u64, items, "one result per question");
    let mut ids = BTreeSet::new();
    for r in results {
        assert_keys(r, RESULT_KEYS, "a result");
        assert!(ids.insert(str_field(r, "id")), "duplicate result id: {r}");
        let mode = str_field(r, "mode");
        assert!(MODES.contains(&mode), "{r}");
        assert_eq!(
            r["answered"],
            mode == "answer",
            "answered is true exactly in mode answer: {r}"
        );
        assert!(VERDICTS.contains(&str_field(r, "verdict")), "{r}");
        let citations = r["citations"]
            .as_array()
            .unwrap_or_else(|| panic!("citations is not an array: {r}"));
        match mode {
            "decline" => assert!(citations.is_empty(), "a declined question has no citations: {r}"),
            _ => assert!(!citations.is_empty(), "an answer or a suggestion quotes a clause: {r}"),
        }
        if mode != "answer" {
            assert_eq!(r["verdict"], "none", "only a confident answer has a verdict: {r}");
        }
        assert!(citations.len() <= 3, "{r}");
        for c in citations {
            assert_keys(c, CITATION_KEYS, "a citation");
            for k in CITATION_KEYS {
                assert!(!str_field(c, k).is_empty(), "empty {k}: {c}");
            }
            assert!(
                str_field(c, "clause").starts_with(&format!("{}/", str_field(c, "policy"))),
                "{c}"
            );
        }
    }
}
