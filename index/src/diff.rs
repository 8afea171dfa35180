//! What changed between two versions of a policy, clause by clause: the
//! "what changed" staff are shown when asked to acknowledge a new version.
//!
//! Clauses are matched in three rounds. A clause id covers its heading path
//! and text, so the same id means the same clause, unchanged. Then the same
//! text under another heading is a move. Then the remaining clauses are
//! paired by word similarity (best pairs first, a small bonus for the same
//! section or number), and a pair at least [`REWORDED_AT_LEAST`] alike is a
//! rewording; the rest were added or removed. Similarity is on words, not
//! characters, because a reader sees "may" becoming "must not" as two words
//! changed, whatever their length.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::clause::Clause;
use crate::text;

/// How alike (0–1, shared words in order) two clauses must be for the
/// newer to count as a rewording of the older rather than a new clause.
pub const REWORDED_AT_LEAST: f32 = 0.5;

/// One change, with clauses from the older (`from`) and newer (`to`) version.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change<'a> {
    Added {
        to: &'a Clause,
    },
    Removed {
        from: &'a Clause,
    },
    Reworded {
        from: &'a Clause,
        to: &'a Clause,
        similarity: f32,
        words: Vec<WordChange>,
    },
    /// The same words under another heading.
    Moved {
        from: &'a Clause,
        to: &'a Clause,
    },
}

impl Change<'_> {
    pub fn label(&self) -> &'static str {
        match self {
            Change::Added { .. } => "added",
            Change::Removed { .. } => "removed",
            Change::Reworded { .. } => "reworded",
            Change::Moved { .. } => "moved",
        }
    }

    /// The clause as it reads now, or as it read before it was removed.
    pub fn clause(&self) -> &Clause {
        match self {
            Change::Added { to } | Change::Reworded { to, .. } | Change::Moved { to, .. } => to,
            Change::Removed { from } => from,
        }
    }
}

/// A run of words kept, deleted or inserted by a rewording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "text", rename_all = "kebab-case")]
pub enum WordChange {
    Same(String),
    Deleted(String),
    Inserted(String),
}

/// The clause-level changes from one version of a policy to another, in the
/// order a reader meets them in the newer version (a removed clause where it
/// used to be).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff<'a> {
    pub changes: Vec<Change<'a>>,
    pub unchanged: usize,
}

impl PolicyDiff<'_> {
    pub fn count(&self, label: &str) -> usize {
        self.changes.iter().filter(|c| c.label() == label).count()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// "2 reworded, 1 added, 40 unchanged".
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = ["reworded", "added", "removed", "moved"]
            .iter()
            .filter_map(|label| match self.count(label) {
                0 => None,
                n => Some(format!("{n} {label}")),
            })
            .collect();
        parts.push(format!("{} unchanged", self.unchanged));
        parts.join(", ")
    }
}

pub fn diff<'a>(from: &'a [Clause], to: &'a [Clause]) -> PolicyDiff<'a> {
    // Index in `to` matched to each index in `from`.
    let mut pairs: HashMap<usize, usize> = HashMap::new();
    let mut taken: HashSet<usize> = HashSet::new();

    let by_id: HashMap<&str, usize> = to.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    for (i, clause) in from.iter().enumerate() {
        if let Some(&j) = by_id.get(clause.id.as_str())
            && taken.insert(j)
        {
            pairs.insert(i, j);
        }
    }
    let unchanged = pairs.len();

    let words_from: Vec<Vec<String>> = from.iter().map(|c| words(&c.text)).collect();
    let words_to: Vec<Vec<String>> = to.iter().map(|c| words(&c.text)).collect();

    let mut moved: HashSet<usize> = HashSet::new();
    for (i, old_words) in words_from.iter().enumerate() {
        if pairs.contains_key(&i) {
            continue;
        }
        if let Some(j) = (0..to.len()).find(|j| !taken.contains(j) && &words_to[*j] == old_words) {
            taken.insert(j);
            pairs.insert(i, j);
            moved.insert(i);
        }
    }

    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for i in (0..from.len()).filter(|i| !pairs.contains_key(i)) {
        for j in (0..to.len()).filter(|j| !taken.contains(j)) {
            let similarity = similarity(&words_from[i], &words_to[j]);
            if similarity >= REWORDED_AT_LEAST {
                let same_place = from[i].section() == to[j].section() || from[i].number == to[j].number;
                let bonus = if same_place { 0.1 } else { 0.0 };
                candidates.push((similarity + bonus, i, j));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, i, j) in candidates {
        if !pairs.contains_key(&i) && !taken.contains(&j) {
            taken.insert(j);
            pairs.insert(i, j);
        }
    }

    // Place each change by its position in the newer version; a removed
    // clause goes just after the clause that preceded it in the older one.
    let mut placed: Vec<((usize, usize, usize), Change<'a>)> = Vec::new();
    let mut after = 0;
    for (i, old) in from.iter().enumerate() {
        match pairs.get(&i) {
            Some(&j) => {
                after = j + 1;
                if old.id == to[j].id {
                    continue;
                }
                let change = if moved.contains(&i) {
                    Change::Moved { from: old, to: &to[j] }
                } else {
                    Change::Reworded {
                        from: old,
                        to: &to[j],
                        similarity: similarity(&words_from[i], &words_to[j]),
                        words: word_changes(&old.text, &to[j].text),
                    }
                };
                placed.push(((j, 1, 0), change));
            }
            None => placed.push(((after, 0, i), Change::Removed { from: old })),
        }
    }
    for (j, new) in to.iter().enumerate() {
        if !taken.contains(&j) {
            placed.push(((j, 1, 0), Change::Added { to: new }));
        }
    }
    placed.sort_by_key(|(key, _)| *key);
    PolicyDiff {
        changes: placed.into_iter().map(|(_, change)| change).collect(),
        unchanged,
    }
}

/// Normalised words, for comparing: "Don’t" and "Don't" are the same word.
fn words(text: &str) -> Vec<String> {
    text::normalize(text)
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Shared words in order, as a share of both clauses' words (Dice on the
/// longest common subsequence): 1 for the same words, 0 for none in common.
fn similarity(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    2.0 * lcs_table(a, b)[0][0] as f32 / (a.len() + b.len()) as f32
}

/// `t[i][j]`: length of the longest common subsequence of `a[i..]` and `b[j..]`.
fn lcs_table<T: PartialEq>(a: &[T], b: &[T]) -> Vec<Vec<u32>> {
    let mut t = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    t
}

/// The rewording as runs of words kept, deleted and inserted, in the words
/// as written (compared normalised, so a curly quote is not a change).
pub fn word_changes(from: &str, to: &str) -> Vec<WordChange> {
    let a: Vec<&str> = from.split_whitespace().collect();
    let b: Vec<&str> = to.split_whitespace().collect();
    let key = |w: &&str| text::normalize(w).to_lowercase();
    let ka: Vec<String> = a.iter().map(key).collect();
    let kb: Vec<String> = b.iter().map(key).collect();
    let t = lcs_table(&ka, &kb);
    let mut out: Vec<WordChange> = Vec::new();
    let mut push = |change: WordChange| {
        let merged = match (out.last_mut(), &change) {
            (Some(WordChange::Same(run)), WordChange::Same(w))
            | (Some(WordChange::Deleted(run)), WordChange::Deleted(w))
            | (Some(WordChange::Inserted(run)), WordChange::Inserted(w)) => {
                run.push(' ');
                run.push_str(w);
                true
            }
            _ => false,
        };
        if !merged {
            out.push(change);
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && ka[i] == kb[j] {
            push(WordChange::Same(b[j].to_owned()));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || t[i][j + 1] >= t[i + 1][j]) {
            push(WordChange::Inserted(b[j].to_owned()));
            j += 1;
        } else {
            push(WordChange::Deleted(a[i].to_owned()));
            i += 1;
        }
    }
    // Deletions read before insertions: "[-may-]{+must not+}".
    for k in 1..out.len() {
        if matches!(out[k - 1], WordChange::Inserted(_)) && matches!(out[k], WordChange::Deleted(_)) {
            out.swap(k - 1, k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PolicySource, parse_policy};

    fn clauses(text: &str) -> Vec<Clause> {
        parse_policy(&PolicySource {
            school: "s",
            source: "p.txt",
            text,
            modified: None,
        })
        .clauses
    }

    const BEFORE: &str = "ICT Policy\n\nEmail\n\n\
        1. Staff must use their school email account for school business.\n\
        2. Staff must not forward school email to personal accounts.\n\
        3. Staff may check email on a personal phone with a PIN.\n\n\
        Social media\n\n\
        4. Staff must not accept pupils as friends.\n";

    #[test]
    fn the_same_policy_has_no_changes() {
        let a = clauses(BEFORE);
        let d = diff(&a, &a);
        assert!(d.is_empty());
        assert_eq!(d.unchanged, a.len());
        assert_eq!(d.summary(), format!("{} unchanged", a.len()));
    }

    #[test]
    fn rewordings_additions_removals_and_moves_are_told_apart() {
        let after = "ICT Policy\n\nEmail\n\n\
            1. Staff must use their school email account for all school business.\n\
            2. Staff must not forward school email to personal accounts.\n\
            3. Staff must report a lost phone to the office the same day.\n\n\
            Social networking\n\n\
            4. Staff must not accept pupils as friends.\n";
        let (a, b) = (clauses(BEFORE), clauses(after));
        let d = diff(&a, &b);
        let labels: Vec<&str> = d.changes.iter().map(Change::label).collect();
        assert_eq!(labels, ["reworded", "removed", "added", "moved"], "{d:#?}");
        assert_eq!(d.unchanged, 1);
        let Change::Reworded { words, .. } = &d.changes[0] else {
            unreachable!()
        };
        assert!(words.contains(&WordChange::Inserted("all".into())), "{words:?}");
        assert_eq!(d.summary(), "1 reworded, 1 added, 1 removed, 1 moved, 1 unchanged");
    }

    #[test]
    fn word_changes_put_the_deletion_first_and_ignore_quote_styles() {
        let changes = word_changes("Staff may use it. Don’t share", "Staff must not use it. Don't share");
        assert_eq!(
            changes,
            [
                WordChange::Same("Staff".into()),
                WordChange::Deleted("may".into()),
                WordChange::Inserted("must not".into()),
                WordChange::Same("use it. Don't share".into()),
            ]
        );
    }
}
