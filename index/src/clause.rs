//! The clause model: the smallest unit of a policy a member of staff can be
//! held to, with everything a citation needs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a clause asks of staff. Includes what its heading implies: an item of
/// a "Don't" list is a prohibition even when it reads "Use personal email…".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modality {
    MustNot,
    Must,
    Should,
    May,
    Info,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::MustNot => "must-not",
            Modality::Must => "must",
            Modality::Should => "should",
            Modality::May => "may",
            Modality::Info => "info",
        }
    }

    /// An obligation (must or should), as opposed to a ban, a permission or a fact.
    pub fn is_obligation(self) -> bool {
        matches!(self, Modality::Must | Modality::Should)
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One clause of one policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clause {
    /// Stable id: `school/policy/hash`, where the hash covers the heading path,
    /// the normalised text and the occurrence of that text under that heading.
    /// Same text in the same place gives the same id after re-indexing, and
    /// editing one clause leaves every other id alone.
    pub id: String,
    pub school: String,
    /// Slug of the policy title, unique within a school.
    pub policy: String,
    pub policy_title: String,
    pub policy_version: String,
    /// Headings from the outermost in, including a list lead-in ("Do", "I will not", …).
    pub heading_path: Vec<String>,
    /// The policy's own number for this clause ("6.0", "a.", "3)"), if it has one.
    pub number: Option<String>,
    /// Position of the clause within its section, from 1; used in citations.
    pub ordinal: usize,
    /// The clause exactly as written, wrapped lines joined with single spaces.
    pub text: String,
    /// Sentences around the clause in the same paragraph or list lead-in. Used for
    /// ranking only, never quoted as the answer.
    pub context: String,
    /// First and last line of the clause in the source file, from 1.
    pub lines: (usize, usize),
    pub modality: Modality,
    /// For an item of a prohibition list, the list's head as written, without
    /// its colon ("Don't", "When contacting parents, staff must not"): the
    /// item alone ("Use personal email…") reads like permission, so every
    /// answer quoting it shows the head first. Older stored versions lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_head: Option<String>,
}

impl Clause {
    /// The innermost heading that names a section, skipping list lead-ins such as "Do".
    pub fn section(&self) -> &str {
        self.heading_path
            .iter()
            .rev()
            .find(|h| !crate::parse::is_list_mode_heading(h) && !h.ends_with(':'))
            .or_else(|| self.heading_path.last())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// "Westgate ICT Acceptable Use Policy, 'Email', clause 4 — version 2026-09-01"
    pub fn citation(&self) -> String {
        format!(
            "{}, {} — version {}",
            self.policy_title,
            self.place(),
            self.policy_version
        )
    }

    /// Where the clause is within its policy: "'Email', clause 4", naming the
    /// Do/Don't list it belongs to.
    pub fn place(&self) -> String {
        let section = self.section();
        let number = match &self.number {
            Some(n) => n.trim_end_matches(['.', ')']).to_owned(),
            None => self.ordinal.to_string(),
        };
        let mut out = String::new();
        if !section.is_empty() {
            out.push_str(&format!("'{section}', "));
        }
        out.push_str(&format!("clause {number}"));
        // An item of a "Don't" list reads as a permission when quoted alone.
        if let Some(list) = self
            .heading_path
            .last()
            .filter(|h| crate::parse::is_list_mode_heading(h))
        {
            out.push_str(&format!(" (in the “{list}” list)"));
        }
        out
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub school: String,
    pub slug: String,
    pub title: String,
    pub version: String,
    /// Whether `version` is the policy's own ("Version: 3.1", "Reviewed
    /// Spring 2025") rather than made up from the file's date and content.
    #[serde(default)]
    pub version_declared: bool,
    /// Where the policy came from (a path, for messages and re-indexing).
    pub source: String,
    /// Hash of the source bytes; the index re-reads a file when this changes.
    pub content_hash: String,
    pub clauses: Vec<Clause>,
    /// Role → named person, from the policy's own contact table
    /// ("Online Safety Lead:\tKate Beattie").
    pub contacts: Vec<(String, String)>,
    /// Problems found while parsing, as (line, message); the rest still parses.
    pub warnings: Vec<(usize, String)>,
}
