//! The embedder's vectors against sentence-transformers' own, made once by
//! `scripts/embed_reference.py` and committed (`fixtures/embed/reference.json`):
//! one text at a time, and all together through `embed_all` (batched, padded
//! to the longest, sorted by length). Texts past 256 tokens check truncation.
//!
//! The model comes from `POLICYBOT_MODEL_DIR` (CI installs it there). Without
//! it the test is skipped with a note, except under CI, where it fails.

use std::path::PathBuf;

use policybot_index::embed::{DIM, Embedder};
use serde_json::Value;

/// Per component, absolute. Both sides are float32; the rest is summation order.
const TOLERANCE: f32 = 1e-5;

fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("POLICYBOT_MODEL_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("CI").is_some() => {
            panic!("POLICYBOT_MODEL_DIR is not set; CI must check the embedder against the reference vectors")
        }
        None => {
            eprintln!("note: POLICYBOT_MODEL_DIR is not set; skipping the reference-vector test");
            None
        }
    }
}

fn reference() -> Vec<(String, Vec<f32>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/embed/reference.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let text = item["text"].as_str().unwrap().to_owned();
            let vector: Vec<f32> = item["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(vector.len(), DIM);
            (text, vector)
        })
        .collect()
}

/// The largest difference of any component, and the text it is in.
fn max_difference<'a>(reference: &'a [(String, Vec<f32>)], ours: &[Vec<f32>]) -> (f32, &'a str) {
    let mut worst = (0.0f32, "");
    for ((text, want), got) in reference.iter().zip(ours) {
        assert_eq!(got.len(), DIM);
        for (a, b) in want.iter().zip(got) {
            let d = (a - b).abs();
            if d > worst.0 {
                worst = (d, text.as_str());
            }
        }
    }
    worst
}

#[test]
fn vectors_match_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let embedder = Embedder::load(&dir).unwrap();
    let reference = reference();
    let texts: Vec<&str> = reference.iter().map(|(t, _)| t.as_str()).collect();

    let one_by_one: Vec<Vec<f32>> = texts.iter().map(|t| embedder.embed(t).unwrap()).collect();
    let (single, single_text) = max_difference(&reference, &one_by_one);
    let batched = embedder.embed_all(&texts, &mut |_, _| {}).unwrap();
    let (batch, batch_text) = max_difference(&reference, &batched);
    eprintln!(
        "max difference per component: one at a time {single:e} ({single_text:?}), batched {batch:e} ({batch_text:?})"
    );
    assert!(single <= TOLERANCE, "one at a time: {single:e} in {single_text:?}");
    assert!(batch <= TOLERANCE, "batched: {batch:e} in {batch_text:?}");
}
