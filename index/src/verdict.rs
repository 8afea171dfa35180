//! The one-word verdict: what the cited clause means for the member of staff.
//!
//! Two inputs decide it: the kind of question ("can I…?" asks for permission,
//! "who do I tell?" asks for information) and what the clause does (bans,
//! obliges, permits, states), including its conditions ("unless", "without
//! prior consent") and restrictions ("only", "not a personal device").

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::clause::Modality;
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    No,
    Yes,
    Conditional,
    Info,
    /// Declined: no clause answers the question.
    None,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::No => "no",
            Verdict::Yes => "yes",
            Verdict::Conditional => "conditional",
            Verdict::Info => "info",
            Verdict::None => "none",
        }
    }

    /// The verdict in plain words, for the first line of a reply.
    pub fn headline(self) -> &'static str {
        match self {
            Verdict::No => "No — the policy does not allow this.",
            Verdict::Yes => "Yes — the policy allows this.",
            Verdict::Conditional => "Only under conditions — the policy allows this only as the clause below says.",
            Verdict::Info => "Here is what the policy says.",
            Verdict::None => "The policy does not answer this.",
        }
    }
}

/// What the question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionKind {
    /// "Can I…?", "Is it OK to…?", "Will the insurance pay?": a yes/no question.
    Permission,
    /// "Who do I tell?", "How often…?", "What happens now?", "Do I need to…?"
    Information,
}

pub fn question_kind(question: &str) -> QuestionKind {
    static PERMISSION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:can|could|may|might|shall)\s+(?:i|we|staff|you|they|teachers?|he|she|parents?|colleagues?)\b|\b(?:is|would|will)\s+(?:it|that|this)\s+(?:be\s+)?(?:ok|okay|alright|all right|fine|acceptable|allowed|permitted|a problem|an issue)\b|\b(?:am i|are we|are staff|is staff|are teachers)\s+(?:allowed|permitted|able)\b|\bok(?:ay)?\s+(?:to|for|if)\b|\ballowed\s+to\b|\brules?\s+(?:on|about|for)\b|\bany rules\b|\bis\s+(?:it|that|this)\s+(?:against|banned|ok)\b|\b(?:can|could)\s+(?:my|a|the|our)\b|\bno-no\b|\bbanned\b|\bwill (?:the|it|they)\b")
            .expect("valid regex")
    });
    static INFORMATION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:^|[.?!]\s*|\b(?:and|so|but)\s+)(?:who|whom|whose|what|how|where|when|which|why)\b|\b(?:do|does|should)\s+(?:i|we|staff)\s+(?:need|have)\s+to\b|\bwho\s+(?:do|should|can|needs|must|to)\b|\bwhat\s+(?:do|should|happens|now)\b")
            .expect("valid regex")
    });
    // The question sentence decides: the last one with a question mark, else all of it.
    let normalized = text::normalize(question);
    let asked: &str = normalized
        .split_inclusive(['?'])
        .rfind(|s| s.contains('?'))
        .map(|s| s.rsplit(['.', '!', '\n']).next().unwrap_or(s))
        .unwrap_or(&normalized);
    let asked = asked.trim();
    let info_at = INFORMATION.find(asked).map(|m| m.start());
    let perm_at = PERMISSION.find(asked).map(|m| m.start());
    match (info_at, perm_at) {
        (Some(i), Some(p)) if i < p => QuestionKind::Information,
        (Some(_), None) => QuestionKind::Information,
        (None, None) if INFORMATION.is_match(&normalized) && !PERMISSION.is_match(&normalized) => {
            QuestionKind::Information
        }
        _ => QuestionKind::Permission,
    }
}

/// "Who do I tell?", "who needs to know?", "what am I supposed to do?":
/// questions answered by a procedure, usually someone to report to.
pub fn asks_who(question: &str) -> bool {
    static WHO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\bwho(?:m|se)?\b|\breport(?:ed|ing)?\b|\btell\b|\binform\b|\blet\s+\w+\s+know\b|\bwhat\s+(?:do|should|can|must)\s+(?:i|we)\s+do\b|\bwhat\s+am\s+i\s+(?:supposed|meant|expected)\s+to\s+do\b|\bwhat\s+happens\b|\bwhat\s+(?:is|'s)\s+the\s+procedure\b",
        )
        .expect("valid regex")
    });
    question_kind(question) == QuestionKind::Information && WHO.is_match(question)
}

static CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:unless|except(?:\s+in)?|without\s+(?:the\s+)?(?:prior\s+|express\s+|written\s+)?(?:permission|consent|approval|authori[sz]ation|agreement)|with(?:\s+the)?\s+(?:prior\s+|express\s+|written\s+)?(?:permission|consent|approval|agreement|authori[sz]ation)|only\s+(?:when|if|with|after|once|where|be used in)|provided\s+(?:that|by)?|as long as|subject to|before\b|wherever possible|whenever possible|if possible|where possible|approved\s+(?:by|for)|authori[sz]ed\s+by|agreed\s+(?:with|by|in)|deemed\b.*\bby|extenuating|exceptional circumstances|in an emergency|as a last resort|discussed with|permission\s+(?:of|from)|consent\s+(?:of|from)|approval\s+(?:of|from)|seek\s+(?:approval|consent|permission)|have\s+(?:parental\s+)?consent|licen[cs]es?\s+(?:are|is)\s+held|but\s+(?:must|should|will need to|need to|have to)|as soon as possible|asap)\b")
        .expect("valid regex")
});

/// Words that grant discretion: the member of staff decides.
static DISCRETION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:as and when|if (?:i|you) feel|when (?:i|you) feel|it is your own choice|at (?:your|my) discretion|(?:i|you) (?:may|can) choose|will have the opportunity)\b")
        .expect("valid regex")
});

/// A restriction: the clause allows something only in a narrower form than asked.
static RESTRICTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\bonly\b|\bnot\s+(?:a|an|the|partners|other|personal|family)\b|\bnever\b|\bno\s+other\b|\bexclusively\b",
    )
    .expect("valid regex")
});

/// The question proposes the opposite of what an obligation requires.
static CONTRARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:leave|leaving|left)\b.*\b(?:logged in|on|unlocked|open|unattended)\b|\bturn(?:ing)?\s+(?:it\s+|them\s+)?off\b|\bswitch(?:ing)?\s+(?:it\s+|them\s+)?off\b|\bdisabl\w*|\bbypass\w*|\bskip\w*|\bignor\w*|\bwithout\b|\binstead of\b|\bnot bother|\bget round|\bget around|\bunlock\w*")
        .expect("valid regex")
});

/// The question is about something personal where the clause requires school-owned.
static PERSONAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:my own|own (?:phone|laptop|device|computer|tablet|ipad|car)|personal|my (?:phone|mobile|iphone|android|hotmail|gmail|laptop at home)|hotmail|gmail|whatsapp|home (?:pc|computer|laptop)|husband|wife|partner|family)\b")
        .expect("valid regex")
});
static SCHOOL_OWNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bschool[- ]owned\b|\bprovided by (?:the )?school\b|\bschool (?:equipment|devices?|mobile devices?|cameras?|digital cameras|email|e-mail|accounts?|network|systems?)\b|\bdedicated school\b|\bapproved (?:and secure )?(?:text|email|channels?|e-mail|messaging)\b")
        .expect("valid regex")
});

/// Text after the first condition word ("unless they request otherwise" → "they request otherwise").
fn exception_text(clause: &str) -> Option<&str> {
    static EXCEPTION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\b(?:unless|except|other than)\b").expect("valid regex"));
    EXCEPTION.find(clause).map(|m| &clause[m.end()..])
}

/// Decides the verdict for a question answered by `clause_text` (the part of
/// the clause that best matched) with modality `modality`. `overlaps` tells
/// whether some text shares a topic word with the question.
pub fn decide(question: &str, clause_text: &str, modality: Modality, overlaps: &dyn Fn(&str) -> bool) -> Verdict {
    if question_kind(question) == QuestionKind::Information {
        return Verdict::Info;
    }
    let has_condition = CONDITION.is_match(clause_text);
    let exception = exception_text(clause_text);
    // "except <somewhere>" names where the ban does not apply: if the question
    // is not about that place, the ban stands.
    let exception_applies = exception.is_some_and(overlaps);
    let is_except = exception.is_some() && !clause_text.to_lowercase().contains("unless");
    match modality {
        Modality::MustNot => {
            if is_except && !exception_applies {
                Verdict::No
            } else if has_condition {
                Verdict::Conditional
            } else {
                Verdict::No
            }
        }
        Modality::May => {
            // "Only encrypted sticks issued by the school may be used" is a
            // permission with strings attached, not a yes.
            if (has_condition && !exception_applies) || RESTRICTION.is_match(clause_text) {
                Verdict::Conditional
            } else {
                Verdict::Yes
            }
        }
        Modality::Must | Modality::Should => {
            let opposite =
                CONTRARY.is_match(question) || (PERSONAL.is_match(question) && SCHOOL_OWNED.is_match(clause_text));
            if opposite {
                Verdict::No
            } else if DISCRETION.is_match(clause_text) {
                Verdict::Yes
            } else if has_condition {
                Verdict::Conditional
            } else if RESTRICTION.is_match(clause_text) {
                Verdict::No
            } else {
                Verdict::Conditional
            }
        }
        Modality::Info => {
            if exception_applies || DISCRETION.is_match(clause_text) {
                Verdict::Yes
            } else if RESTRICTION.is_match(clause_text) || text::normalize(clause_text).contains(" not ") {
                Verdict::No
            } else if has_condition {
                Verdict::Conditional
            } else {
                Verdict::Info
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_kinds() {
        use QuestionKind::*;
        assert_eq!(question_kind("Can I use my phone on the trip?"), Permission);
        assert_eq!(question_kind("Who do I report it to?"), Information);
        assert_eq!(question_kind("Saw something awful. What do I do?"), Information);
        assert_eq!(question_kind("How often should I change my password?"), Information);
        assert_eq!(question_kind("is it ok to leave the PC logged in?"), Permission);
        assert_eq!(question_kind("Do I need to put a disclaimer on my blog?"), Information);
    }

    #[test]
    fn procedure_questions() {
        assert!(asks_who("A pupil saw something awful. Who do I report it to?"));
        assert!(asks_who("someone posted a nasty comment. what am i supposed to do?"));
        assert!(!asks_who("Can I tell parents the trip is late?"));
    }

    #[test]
    fn restricted_permissions_are_conditional() {
        let none = |_: &str| false;
        let clause = "Only encrypted USB sticks issued by the school may be used to store school data.";
        assert_eq!(
            decide("Can I use a memory stick?", clause, Modality::May, &none),
            Verdict::Conditional
        );
        assert_eq!(
            decide(
                "Can I use the staff wifi?",
                "Staff may use the staff wifi.",
                Modality::May,
                &none
            ),
            Verdict::Yes
        );
    }

    #[test]
    fn verdicts_follow_clause_and_question() {
        let none = |_: &str| false;
        let q = "Can I install this game?";
        assert_eq!(
            decide(
                q,
                "Software must not be installed unless licences are held.",
                Modality::MustNot,
                &none
            ),
            Verdict::Conditional
        );
        assert_eq!(
            decide(q, "Do not install games.", Modality::MustNot, &none),
            Verdict::No
        );
        assert_eq!(
            decide(
                "Is it ok to leave my PC logged in?",
                "Always log out or lock your computer.",
                Modality::Must,
                &none
            ),
            Verdict::No
        );
        assert_eq!(
            decide("Who do I tell?", "Report it to the DSL.", Modality::Must, &none),
            Verdict::Info
        );
        assert_eq!(
            decide(
                "Can I post photos on Facebook?",
                "Staff must not share images except on the school website with consent.",
                Modality::MustNot,
                &none
            ),
            Verdict::No
        );
    }
}
