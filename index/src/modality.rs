//! What a clause asks of staff: must / must-not / should / may / info.
//!
//! The earliest modal phrase in a clause decides ("Images must be stored on the
//! school network and never transferred…" is an obligation). List items take
//! the modality of their list heading when they are bare imperatives: under
//! "Don't", "Use personal email…" is a prohibition.

use std::sync::LazyLock;

use regex::Regex;

use crate::clause::Modality;
use crate::text;

/// Modal phrases, longest first within each position so "must not" beats "must".
const PHRASES: &[(&str, Modality)] = &[
    ("under no circumstances", Modality::MustNot),
    ("must not", Modality::MustNot),
    ("mustn't", Modality::MustNot),
    ("must never", Modality::MustNot),
    ("should not", Modality::MustNot),
    ("shouldn't", Modality::MustNot),
    ("should never", Modality::MustNot),
    ("will not", Modality::MustNot),
    ("won't", Modality::MustNot),
    ("will never", Modality::MustNot),
    ("do not", Modality::MustNot),
    ("don't", Modality::MustNot),
    ("may not", Modality::MustNot),
    ("cannot", Modality::MustNot),
    ("can not", Modality::MustNot),
    ("are not permitted", Modality::MustNot),
    ("is not permitted", Modality::MustNot),
    ("not allowed", Modality::MustNot),
    ("is prohibited", Modality::MustNot),
    ("are prohibited", Modality::MustNot),
    ("is forbidden", Modality::MustNot),
    ("never", Modality::MustNot),
    ("no comments", Modality::MustNot),
    ("must", Modality::Must),
    ("will ensure", Modality::Must),
    ("ensure", Modality::Must),
    ("have to", Modality::Must),
    ("has to", Modality::Must),
    ("is required", Modality::Must),
    ("are required", Modality::Must),
    ("are expected to", Modality::Must),
    ("is to be", Modality::Must),
    ("are to", Modality::Must),
    ("i will", Modality::Must),
    ("always", Modality::Must),
    ("should", Modality::Should),
    ("are advised", Modality::Should),
    ("we recommend", Modality::Should),
    ("is recommended", Modality::Should),
    ("may use", Modality::May),
    ("may access", Modality::May),
    ("may take", Modality::May),
    ("may be used", Modality::May),
    ("can be used", Modality::May),
    ("are permitted", Modality::May),
    ("is permitted", Modality::May),
    ("are allowed", Modality::May),
    ("is allowed", Modality::May),
    ("is acceptable", Modality::May),
    ("are able to", Modality::May),
    ("is able to", Modality::May),
    ("will have the opportunity", Modality::May),
    ("will have access", Modality::May),
    ("it is your own choice", Modality::May),
];

/// Verbs that open an instruction in a list item ("Ensure…", "Use…", "Report…").
const IMPERATIVES: &[&str] = &[
    "access",
    "accept",
    "add",
    "adhere",
    "alert",
    "align",
    "allow",
    "ask",
    "avoid",
    "back",
    "be",
    "bring",
    "change",
    "check",
    "comply",
    "conform",
    "consider",
    "contact",
    "continue",
    "create",
    "delete",
    "disclose",
    "distribute",
    "do",
    "download",
    "enable",
    "encrypt",
    "ensure",
    "follow",
    "forward",
    "give",
    "hand",
    "have",
    "hide",
    "inform",
    "install",
    "keep",
    "leave",
    "lock",
    "log",
    "look",
    "make",
    "model",
    "notify",
    "obtain",
    "open",
    "post",
    "promote",
    "protect",
    "put",
    "raise",
    "read",
    "record",
    "refer",
    "remain",
    "remember",
    "remind",
    "report",
    "request",
    "respect",
    "respond",
    "return",
    "seek",
    "send",
    "set",
    "share",
    "sign",
    "speak",
    "store",
    "store",
    "switch",
    "take",
    "tell",
    "think",
    "turn",
    "update",
    "upload",
    "use",
    "utilise",
    "utilize",
    "visit",
    "wear",
    "write",
];

const LEADING_ADVERBS: &[&str] = &[
    "always",
    "immediately",
    "only",
    "please",
    "also",
    "promptly",
    "regularly",
];

/// The modality a clause's own words give it, if any.
pub fn of_text(clause: &str) -> Option<Modality> {
    let t = format!(" {} ", text::normalize(clause));
    let mut found: Vec<(usize, usize, Modality)> = Vec::new();
    for (phrase, m) in PHRASES {
        let needle = format!(" {phrase} ");
        if let Some(pos) = find_word(&t, &needle) {
            found.push((pos, pos + phrase.len(), *m));
        }
    }
    // The earliest phrase decides, but a phrase overlapping it that reaches
    // further wins: "i will" + "will not" is "i will not".
    let first = found.iter().map(|f| f.0).min()?;
    let first_end = found.iter().filter(|f| f.0 == first).map(|f| f.1).max()?;
    let best = found
        .iter()
        .filter(|f| f.0 < first_end)
        .max_by_key(|f| (f.1, std::cmp::Reverse(f.0)));
    best.map(|f| f.2)
}

/// Finds `needle` (padded with spaces) treating punctuation as word breaks.
fn find_word(haystack: &str, needle: &str) -> Option<usize> {
    static PUNCT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[,.;:()\[\]!?]").expect("valid regex"));
    let spaced = PUNCT.replace_all(haystack, " ");
    spaced.find(needle)
}

/// The modality of a list item, given the modality its list heading implies.
pub fn of_item(item: &str, implied: Option<Modality>) -> Modality {
    let own = of_text(item);
    let imperative = starts_with_imperative(item);
    match implied {
        // Under "Don't"/"I will not" a bare instruction is a prohibition; an item
        // that carries its own modal ("School accounts are to be used…") keeps it.
        Some(Modality::MustNot) if imperative || own.is_none() => Modality::MustNot,
        Some(Modality::MustNot) => own.unwrap_or(Modality::MustNot),
        Some(m) => match own {
            Some(own) if !imperative => own,
            Some(Modality::MustNot) => Modality::MustNot,
            _ => m,
        },
        None => match own {
            _ if imperative => {
                if starts_negated(item) {
                    Modality::MustNot
                } else {
                    Modality::Must
                }
            }
            Some(Modality::MustNot) => Modality::MustNot,
            Some(own) => own,
            None => Modality::Info,
        },
    }
}

fn starts_negated(item: &str) -> bool {
    let ws = text::words(item);
    matches!(ws.first().map(String::as_str), Some("dont" | "never"))
        || matches!(
            (ws.first().map(String::as_str), ws.get(1).map(String::as_str)),
            (Some("do"), Some("not"))
        )
}

fn starts_with_imperative(item: &str) -> bool {
    let ws = text::words(item);
    let mut it = ws.iter().map(String::as_str).peekable();
    while it.peek().is_some_and(|w| LEADING_ADVERBS.contains(w)) {
        it.next();
    }
    let first = it.next();
    match first {
        Some("dont") | Some("never") => true,
        Some(w) => IMPERATIVES.contains(&w),
        None => false,
    }
}

/// True when text names a role a member of staff could ask ("Online Safety Lead",
/// "Headteacher", "Data Protection Officer").
pub fn names_a_role(text: &str) -> bool {
    static ROLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:lead|leader|officer|co-?ordinator|manager|head ?teacher|principal|dsl|dpo|governor|technician|administrator|bursar|business manager)\b").expect("valid regex")
    });
    ROLE.is_match(text)
}

/// Roles a clause mentions, as written ("the Headteacher", "Computing Lead (Kate Beattie)").
pub fn roles_in(clause: &str) -> Vec<String> {
    static ROLE_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:(?:[A-Z][A-Za-z&/-]*|and|of|the)\s+){0,5}(?:Lead|Leader|Officer|Co-?ordinators?|Coordinators?|Manager|Headteacher|Head teacher|Principal|DSL|DPO|Technician|Team|SLT|coordinator|co-ordinator)(?:\s*\([A-Z][^)]{1,40}\))?")
            .expect("valid regex")
    });
    let mut out: Vec<String> = Vec::new();
    for m in ROLE_PHRASE.find_iter(clause) {
        let role = m.as_str().trim();
        let role = role
            .trim_start_matches("the ")
            .trim_start_matches("and ")
            .trim_start_matches("of ");
        let role = role.trim();
        if role.split_whitespace().count() == 1 && role.chars().all(|c| c.is_lowercase()) {
            continue;
        }
        if !out.iter().any(|r| r == role) {
            out.push(role.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_modal_wins() {
        assert_eq!(
            of_text("Images must be stored on the network and never transferred."),
            Some(Modality::Must)
        );
        assert_eq!(
            of_text("Software must not be installed unless licensed."),
            Some(Modality::MustNot)
        );
        assert_eq!(of_text("I will not share my passwords."), Some(Modality::MustNot));
        assert_eq!(of_text("I will use my school email."), Some(Modality::Must));
        assert_eq!(of_text("Laptops are covered by insurance."), None);
    }

    #[test]
    fn list_heading_implies_modality() {
        assert_eq!(
            of_item(
                "Use personal email addresses to contact parents.",
                Some(Modality::MustNot)
            ),
            Modality::MustNot
        );
        assert_eq!(
            of_item("Ensure your screen is locked.", Some(Modality::Must)),
            Modality::Must
        );
        assert_eq!(of_item("Report concerns to the DSL.", None), Modality::Must);
        assert_eq!(of_item("Do not take images of children.", None), Modality::MustNot);
    }

    #[test]
    fn roles_are_found() {
        let roles = roles_in("please see Computing Lead (Kate Beattie) or the Headteacher.");
        assert_eq!(roles, vec!["Computing Lead (Kate Beattie)", "Headteacher"]);
    }
}
