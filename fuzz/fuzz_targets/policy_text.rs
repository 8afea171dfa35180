//! Policy file bytes (.txt/.md) → decoding → clauses: what `policybot
//! clauses` and the indexer do with a file someone saved into a policy folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policybot_index::corpus::policy_from_bytes;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = policy_from_bytes("fuzz", "fuzz.txt", data, Some("2026-09-01")) else {
        return;
    };
    for clause in &policy.clauses {
        assert!(!clause.text.trim().is_empty(), "an empty clause");
        let _ = clause.citation();
        let _ = clause.section();
    }
    // A policy compared with itself changes nothing.
    let diff = policybot_index::diff::diff(&policy.clauses, &policy.clauses);
    assert!(diff.is_empty(), "a policy differs from itself");
});
