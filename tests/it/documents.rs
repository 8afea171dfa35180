//! Policies as Word documents: the example policy converted to .docx by a
//! real converter (pandoc, from Debian) reads as the same clauses as the
//! .txt. Without pandoc the test is skipped with a note, except under CI,
//! where it fails.

use std::process::Command;

use serde_json::Value;

use crate::support::{Sandbox, clause_list, clauses_json, example_policy, in_ci, read, write};

/// The example policy as markdown pandoc renders line for line: hard line
/// breaks, no smart quotes, and the tab-separated contact block as a table.
fn as_markdown(text: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.contains('\t') {
            let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
            if !in_table {
                out.push_str(&format!(
                    "\n| {} |\n|{}\n",
                    cells.join(" | "),
                    "---|".repeat(cells.len())
                ));
                in_table = true;
                continue;
            }
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            continue;
        }
        if in_table {
            out.push('\n');
            in_table = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn pandoc(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    let out = Command::new("pandoc")
        .args(["-f", "markdown-smart+hard_line_breaks", "-t", "docx", "-o"])
        .arg(to)
        .arg(from)
        .output()
        .map_err(|e| format!("running pandoc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What a reader of the policy holds to: each clause's text, where it sits
/// and its number and modality.
fn clauses(policy: &Value) -> Vec<(String, String, String, String)> {
    clause_list(policy)
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap_or_default().to_owned(),
                c["heading_path"].to_string(),
                c["number"].to_string(),
                c["modality"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_word_document_reads_as_the_same_clauses_as_the_text() {
    let s = Sandbox::empty();
    let dir = s.policy_dir("policies");
    let text = read(&example_policy());
    write(&dir.join("ict.txt"), &text);
    let markdown = dir.join("ict.md.src");
    write(&markdown, as_markdown(&text));
    let docx = dir.join("ict.docx");
    if let Err(e) = pandoc(&markdown, &docx) {
        assert!(!in_ci(), "pandoc must convert the policy in CI: {e}");
        eprintln!("note: skipping the .docx test, pandoc did not run: {e}");
        return;
    }
    let from_text = clauses_json(&dir.join("ict.txt"));
    let from_word = clauses_json(&docx);
    let (a, b) = (clauses(&from_text), clauses(&from_word));
    for (i, (t, w)) in a.iter().zip(&b).enumerate() {
        assert_eq!(t, w, "clause {i} differs");
    }
    assert_eq!(a.len(), b.len(), "as many clauses");
    assert_eq!(from_text["version"], from_word["version"]);
    assert_eq!(from_text["title"], from_word["title"]);
    assert_eq!(from_text["contacts"], from_word["contacts"]);
}

#[test]
fn broken_word_files_are_named_and_explained() {
    let (s, dir) = Sandbox::with_copied_example();
    write(&dir.join("corrupt.docx"), b"PK\x03\x04 this is not really a zip");
    write(
        &dir.join("protected.docx"),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 an encrypted OLE file",
    );
    let run = s.run(["index"]);
    run.assert_success();
    run.assert_stderr_contains(&["corrupt.docx: not a .docx", "protected.docx: password-protected"]);
}
