//! Incremental indexing and stable clause ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Sandbox, clause_list, clauses_json, copy, example_policy, read, str_field, write};

const SECOND_POLICY: &str = "Staff Laptop Loan Policy\n\nVersion: 2026-01-10\n\n1. Loans\n\n\
- Staff must sign the loan register before taking a laptop home.\n\
- Loaned laptops must be returned by the last day of term.\n";

/// A sandbox whose school has two policies: the example and a short second one.
fn two_policies() -> (Sandbox, PathBuf, PathBuf) {
    let (sandbox, dir) = Sandbox::with_copied_example();
    let second = dir.join("laptop-loans.txt");
    write(&second, SECOND_POLICY);
    (sandbox, dir.join("good.txt"), second)
}

/// (re-indexed, unchanged, removed) from `index --json`.
#[track_caller]
fn counts(report: &Value) -> (u64, u64, u64) {
    let index = &report["index"];
    let n = |k: &str| {
        index[k]
            .as_u64()
            .unwrap_or_else(|| panic!("index.{k} is not a count: {report}"))
    };
    (n("reindexed"), n("unchanged"), n("removed"))
}

#[track_caller]
fn replace_in(file: &Path, from: &str, to: &str) {
    let text = read(file);
    assert!(text.contains(from), "{} does not contain {from:?}", file.display());
    write(file, text.replacen(from, to, 1));
}

#[test]
fn indexing_twice_reports_everything_unchanged() {
    let (sandbox, _, _) = two_policies();
    let first = sandbox.index_json();
    assert_eq!(counts(&first), (2, 0, 0), "first run indexes both policies: {first}");
    assert!(first["clauses"].as_u64().unwrap_or(0) > 0, "{first}");

    let second = sandbox.index_json();
    assert_eq!(counts(&second), (0, 2, 0), "second run has nothing to do: {second}");
    assert_eq!(second["clauses"], first["clauses"]);

    let text = sandbox.run(["index"]);
    text.assert_success();
    assert!(
        text.stdout.contains("0 re-indexed"),
        "the text report says what was re-indexed:\n{}",
        text.stdout
    );
    assert!(text.stdout.contains("2 unchanged"), "{}", text.stdout);
}

#[test]
fn editing_one_policy_reindexes_only_that_file() {
    let (sandbox, _, second) = two_policies();
    assert_eq!(counts(&sandbox.index_json()), (2, 0, 0));

    replace_in(&second, "by the last day of term", "by the last Friday of term");
    let report = sandbox.index_json();
    assert_eq!(
        counts(&report),
        (1, 1, 0),
        "only the edited file is re-indexed: {report}"
    );
    assert_eq!(counts(&sandbox.index_json()), (0, 2, 0), "and then it is up to date");

    let answer = sandbox.ask_json("When do I have to return a loaned laptop?");
    let cited: Vec<&str> = answer["citations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| str_field(c, "text"))
        .collect();
    assert!(
        cited.iter().any(|t| t.contains("last Friday of term")),
        "answers come from the edited text: {answer}"
    );
    assert!(
        !cited.iter().any(|t| t.contains("last day of term")),
        "the old text is gone from the index: {answer}"
    );
}

#[test]
fn removing_a_policy_removes_it_from_the_index() {
    let (sandbox, _, second) = two_policies();
    assert_eq!(counts(&sandbox.index_json()), (2, 0, 0));
    std::fs::remove_file(&second).expect("remove");
    let report = sandbox.index_json();
    assert_eq!(counts(&report), (0, 1, 1), "{report}");
}

/// (heading path, text) → id, for every clause of a `clauses --json` document.
fn ids_by_place(policy: &Value) -> HashMap<(String, String), String> {
    clause_list(policy)
        .iter()
        .map(|c| {
            (
                (c["heading_path"].to_string(), str_field(c, "text").to_owned()),
                str_field(c, "id").to_owned(),
            )
        })
        .collect()
}

#[test]
fn editing_a_clause_keeps_the_other_clause_ids() {
    let sandbox = Sandbox::empty();
    let file = sandbox.policy_dir("policies").join("ict.txt");
    copy(&example_policy(), &file);
    let before = clauses_json(&file);
    let edited = "Passwords must be at least 14 characters long";
    replace_in(&file, "Passwords must be at least 12 characters long", edited);
    let after = clauses_json(&file);

    let (before_ids, after_ids) = (ids_by_place(&before), ids_by_place(&after));
    assert_eq!(clause_list(&before).len(), clause_list(&after).len());
    let mut unchanged = 0;
    for (place, id) in &before_ids {
        if let Some(new_id) = after_ids.get(place) {
            assert_eq!(id, new_id, "the id of an unchanged clause changed: {place:?}");
            unchanged += 1;
        }
    }
    assert_eq!(unchanged, before_ids.len() - 1, "exactly one clause was edited");

    let sharing = |p: &Value| {
        clause_list(p)
            .iter()
            .find(|c| str_field(c, "text").starts_with("Never share your password"))
            .map(|c| str_field(c, "id").to_owned())
            .expect("the password-sharing clause")
    };
    assert_eq!(
        sharing(&before),
        sharing(&after),
        "a neighbour of the edited clause keeps its id"
    );

    let edited_id = |p: &Value, prefix: &str| {
        clause_list(p)
            .iter()
            .find(|c| str_field(c, "text").starts_with(prefix))
            .map(|c| str_field(c, "id").to_owned())
            .expect("the edited clause")
    };
    assert_ne!(
        edited_id(&before, "Passwords must be at least 12"),
        edited_id(&after, edited),
        "the edited clause gets a new id"
    );
}
