//! Reranking candidates by how much of the question a clause covers.
//!
//! BM25 finds candidates; it cannot say whether a clause *answers* anything,
//! because its scores are not comparable across questions. Coverage is: the
//! share of the question's concepts, weighted by rarity (IDF), that the clause
//! contains in its own words (full credit), its headings or its surrounding
//! sentences (part credit). The answer is declined when coverage is low.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::clause::Clause;
use crate::query::Concept;

/// Credit for a concept found only in the clause's headings or only in the
/// sentences around it.
pub const HEADING_CREDIT: f32 = 0.6;
pub const CONTEXT_CREDIT: f32 = 0.5;
/// Credit per matched stem when only part of a multi-word alternative matches.
pub const PARTIAL_CREDIT: f32 = 0.3;
/// Credit when every word of a phrase occurs, but not together.
pub const SCATTERED_CREDIT: f32 = 0.6;
/// Weight of a question word that no policy and no thesaurus entry knows.
pub const UNKNOWN_WORD_FACTOR: f32 = 0.3;
/// How much the BM25 score (relative to the best candidate's) adds to the
/// coverage score.
pub const BM25_WEIGHT: f32 = 0.1;
/// A concept clearly found: the word itself, a synonym or a close broader term.
pub const CLEARLY_MATCHED: f32 = 0.75;
/// Share of the question's topical weight that lets one concept carry it.
pub const DOMINANT_SHARE: f32 = 0.5;
/// A concept counts as found in a clause from this match strength up.
pub const MATCHED: f32 = 0.55;
/// Concepts found in this share of all clauses or more ("use", "school",
/// "staff") are too generic to show a clause is on topic; rarer ones are the
/// question's ideas. A small index needs a few clauses before anything counts
/// as generic.
pub const GENERIC_SHARE: f32 = 0.15;
pub const GENERIC_MIN_CLAUSES: u64 = 4;
/// Matches count super-linearly, so one exact match outweighs two vague ones.
pub const MATCH_EXPONENT: f32 = 1.5;
/// Words in the sentence that asks weigh more than words in the story
/// around it: staff put the point of their message next to the question mark.
pub const ASKED_FACTOR: f32 = 2.0;
/// Clauses written for pupils, parents or visitors rank lower for staff.
pub const OTHER_AUDIENCE_FACTOR: f32 = 0.7;
/// How much focus moves the score: from ×(1−w) for a clause with none of
/// its words asked about to ×(1+w) for one made only of them.
pub const FOCUS_WEIGHT: f32 = 0.5;
/// Words of a reporting procedure: "should be reported to", "inform", "alert".
static REPORTING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:report\w*|inform\w*|alert\w*|tell|notify|contact|escalat\w*|discuss\w* with|refer\w*)\b")
        .expect("valid regex")
});
/// A statement of fact ("the school uses virus protection software") answers
/// "can I…?" less well than a rule does.
pub const STATEMENT_FACTOR: f32 = 0.85;
/// A clause that names a role answers "who do I tell?" better than one that does not.
pub const NAMES_SOMEONE_FACTOR: f32 = 1.2;
/// Clause length (in words) beyond which a mild penalty applies: long clauses
/// match many words by chance.
pub const LENGTH_FREE: usize = 35;
pub const LENGTH_PENALTY: f32 = 0.004;

/// One field's stems, in order (for phrases) and as a set (for words).
#[derive(Debug, Default)]
pub struct FieldStems {
    pub seq: Vec<String>,
    pub set: HashSet<String>,
}

impl FieldStems {
    pub fn new(seq: Vec<String>) -> Self {
        let set = seq.iter().cloned().collect();
        FieldStems { seq, set }
    }

    /// 1.0 when the stems occur here as a phrase, `SCATTERED_CREDIT` when all
    /// occur but apart, else the share found times `PARTIAL_CREDIT`.
    fn presence(&self, stems: &[String]) -> f32 {
        if stems.len() == 1 {
            return if self.set.contains(&stems[0]) { 1.0 } else { 0.0 };
        }
        if self.seq.windows(stems.len()).any(|w| w == stems) {
            return 1.0;
        }
        let found = stems.iter().filter(|s| self.set.contains(*s)).count();
        if found == stems.len() {
            SCATTERED_CREDIT
        } else {
            PARTIAL_CREDIT * found as f32 / stems.len() as f32
        }
    }
}

/// The stems of a clause's fields.
#[derive(Debug, Default)]
pub struct ClauseStems {
    pub text: FieldStems,
    pub heading: FieldStems,
    pub context: FieldStems,
}

/// Inverse document frequency, with unseen words counted as seen once: a word
/// no policy uses is as informative as the rarest word one does.
pub fn idf(doc_freq: u64, clause_count: u64) -> f32 {
    let df = doc_freq.max(1) as f32;
    (1.0 + (clause_count as f32 + 1.0) / (df + 0.5)).ln()
}

/// How well one concept is present, from 0 to 1.
pub fn concept_match(concept: &Concept, stems: &ClauseStems) -> f32 {
    let mut best = 0.0f32;
    for alt in &concept.alternatives {
        let value = stems
            .text
            .presence(&alt.stems)
            .max(HEADING_CREDIT * stems.heading.presence(&alt.stems))
            .max(CONTEXT_CREDIT * stems.context.presence(&alt.stems));
        best = best.max(value * alt.weight);
    }
    best
}

/// Weighted coverage of the concepts by a clause: (matched weight, per-concept match).
pub fn coverage(concepts: &[Concept], importance: &[f32], stems: &ClauseStems) -> (f32, Vec<f32>) {
    let per: Vec<f32> = concepts.iter().map(|c| concept_match(c, stems)).collect();
    let matched = per
        .iter()
        .zip(importance)
        .map(|(m, w)| m.powf(MATCH_EXPONENT) * w)
        .sum();
    (matched, per)
}

/// Each stem the question asks about, with the weight of the closest
/// alternative it belongs to. (Focus counts them all alike: weighting broader
/// terms down there measured worse.)
pub fn question_stems(concepts: &[Concept]) -> HashMap<&str, f32> {
    let mut out: HashMap<&str, f32> = HashMap::new();
    for alt in concepts.iter().flat_map(|c| &c.alternatives) {
        for s in &alt.stems {
            let w = out.entry(s.as_str()).or_insert(0.0);
            *w = w.max(alt.weight);
        }
    }
    out
}

/// Share of a clause's own content words that the question asked about: a
/// clause that is mostly about the question beats one that mentions it in passing.
pub fn focus(question_stems: &HashMap<&str, f32>, stems: &ClauseStems) -> f32 {
    let content: HashSet<&str> = stems
        .text
        .seq
        .iter()
        .map(String::as_str)
        .filter(|s| !crate::query::is_stopword(s))
        .collect();
    if content.is_empty() {
        return 0.0;
    }
    content.iter().filter(|s| question_stems.contains_key(*s)).count() as f32 / content.len() as f32
}

/// What kind of answer the question wants, as far as ranking cares.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuestionShape {
    /// "Who do I tell?": clauses naming someone answer it.
    pub asks_who: bool,
    /// "Can I…?": a rule answers it better than a statement of fact.
    pub permission: bool,
}

impl QuestionShape {
    pub fn of(question: &str) -> Self {
        QuestionShape {
            asks_who: crate::verdict::asks_who(question),
            permission: crate::verdict::question_kind(question) == crate::verdict::QuestionKind::Permission,
        }
    }
}

/// Ranking score: matched weight, adjusted for focus, audience, length, and
/// (for "who do I tell?" questions) whether the clause names someone.
pub fn rank_score(matched: f32, focus: f32, clause: &Clause, stems: &ClauseStems, shape: QuestionShape) -> f32 {
    let mut score = matched * (1.0 - FOCUS_WEIGHT + 2.0 * FOCUS_WEIGHT * focus);
    if shape.permission && clause.modality == crate::clause::Modality::Info {
        score *= STATEMENT_FACTOR;
    }
    if shape.asks_who && !crate::modality::roles_in(&clause.text).is_empty() {
        score *= NAMES_SOMEONE_FACTOR;
        if REPORTING.is_match(&clause.text) {
            score *= NAMES_SOMEONE_FACTOR;
        }
    }
    if for_other_audience(clause) {
        score *= OTHER_AUDIENCE_FACTOR;
    }
    let extra = stems.text.seq.len().saturating_sub(LENGTH_FREE) as f32;
    score / (1.0 + LENGTH_PENALTY * extra)
}

/// True when a clause is addressed to pupils, parents or visitors rather than
/// staff: by its heading ("Responsibilities of Children") or its voice
/// ("I will tell my teacher").
pub fn for_other_audience(clause: &Clause) -> bool {
    static HEADING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:responsibilities of|rules for|agreement for|guidance for|for)\s+(?:the\s+)?(?:children|pupils?|students?|parents?|parents/carers|carers|visitors?|contractors?|visitors/contractors)\b|\b(?:pupil|student|parent|child)(?:'s|s)?\s+(?:agreement|rules|acceptable use)")
            .expect("valid regex")
    });
    static VOICE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\b(?:my teacher|tell an adult|my parents?|my parent/carer|my class e-?mail|a responsible adult)\b",
        )
        .expect("valid regex")
    });
    static SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?:(?:for|in|at|during|when|whilst|while)\b[^,]{0,60}?,?\s+)?(?:all\s+)?(?:children|pupils|students|parents|parents/carers|visitors)\b")
            .expect("valid regex")
    });
    clause.heading_path.iter().any(|h| HEADING.is_match(h))
        || VOICE.is_match(&clause.text)
        || SUBJECT.is_match(clause.text.trim())
}
