//! Question → search concepts.
//!
//! A question is reduced to its content words. Each becomes a *concept*: the
//! word's stem plus what the thesaurus says staff mean by it, so "memory stick"
//! also looks for "USB" and "removable media". Misspelt words are corrected
//! against the vocabulary of the indexed policies first.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer};

use crate::text;
use crate::thesaurus::{SYNONYM_WEIGHT, Thesaurus};

/// Name of the tokenizer registered on the index.
pub const TOKENIZER: &str = "policy_en";

/// Words that carry no topic: function words and the chatter of a question
/// typed on a phone ("just", "ok", "obvs").
const STOPWORDS: &str = "\
    whos under talking talk sounds sound seems looks \
    own \
    a able about above actually after again ago all allowed already alright also although always am an and any \
    anybody anyone anything anyway are arent around as ask asked asking at basically bc be because been before \
    being best better bit bits both btw but by came can cant catch cheers come comes coming completely confused \
    cos could couldnt couple coz cute definitely did didnt do does doesnt doing done dont during each early easier \
    easy else etc even ever every everybody everyone everything fab fairly few fine for forget forgetting forgot \
    fri friday from funny fw fwd gave genuinely get gets getting given go goes going gone gonna good got great \
    guess had happen happens happy has hasnt have havent he hello her here hers hes hey hi him his hiya honestly \
    hope how huge i id if ill im in into is isnt it its ive just keeps kept know last lately later let like \
    literally little loads lol lot lots love loved lovely made make makes making manage managed massive may maybe \
    me mean means might min mine mins minute minutes mon monday more much must my near need needed needs new next \
    nice no nor normally not nothing now obvs of off often ok okay on once one only onto or other our ours out \
    over panicking paranoid per please pls policy pop popped pretty probably put quick quickly quite rather re \
    really recently right round rule rules said sat saturday say says seriously she shes should shouldnt since so \
    some somebody someone something sometimes soon sorry start started starting stay still stuff subject such sun \
    sunday suppose supposed sure tbh than thank thanks that thats the their theirs them then there theres these \
    they theyll theyre thing things think thinking this those though thought through thru thurs thursday tiny tmrw \
    tmw to today tomorrow tomoz tonight too took totally tried try trying tues tuesday twice unsure until up us \
    usually very via wanna want wanted wants was wasnt way ways we wed wednesday weds week weeks well went were \
    weve what whats when where whether which while who whole whom whose why will with within without wk wknd wks \
    wonder wondering wont worried worry would wouldnt x xx yeah yes yesterday yet you your youre yours \
";

static STOPWORD_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| STOPWORDS.split_whitespace().collect());

/// Places and groups that, before a device word, only say whose device it is.
const PLACE_MODIFIERS: &[&str] = &[
    "class",
    "classroom",
    "staffroom",
    "office",
    "hall",
    "library",
    "reception",
    "nursery",
    "ks1",
    "ks2",
    "year",
    "group",
    "department",
    "team",
    "work",
    "home",
];

/// Devices and accounts, the heads of phrases like "class PC" or "work phone".
const DEVICES: &[&str] = &[
    "pc",
    "pcs",
    "computer",
    "computers",
    "laptop",
    "laptops",
    "ipad",
    "ipads",
    "tablet",
    "tablets",
    "chromebook",
    "chromebooks",
    "camera",
    "cameras",
    "phone",
    "phones",
    "mobile",
    "email",
    "account",
    "printer",
    "iwb",
    "whiteboard",
    "desktop",
    "device",
    "devices",
];

/// "2", "2hrs", "yr4", "y6", "yr11s", "ks2": numbers and year groups say which
/// children or when, not what the question is about.
fn is_number_or_year_group(word: &str) -> bool {
    let digits = word.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let prefix = &word[..word.len() - digits.len()];
    let rest = digits.trim_start_matches(|c: char| c.is_ascii_digit());
    let has_digits = rest.len() < digits.len();
    has_digits
        && matches!(prefix, "" | "y" | "yr" | "year" | "ks" | "p")
        && matches!(
            rest,
            "" | "s" | "hrs" | "hr" | "h" | "pm" | "am" | "th" | "st" | "nd" | "rd" | "mins" | "min"
        )
}

pub fn is_stopword(word: &str) -> bool {
    STOPWORD_SET.contains(word)
}

/// The analyzer used for every indexed field and every question: simple word
/// split, lowercase, English (Snowball) stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Rewrites text so the tokenizer and [`text::words`] agree: apostrophes inside
/// words vanish ("school's" → "schools") and short prefixes join their word
/// ("e-mail" → "email", "co-ordinator" → "coordinator").
pub fn prepare(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if matches!(c, '\'' | '’') && prev.is_alphanumeric() {
            continue;
        }
        if c == '-' && next.is_alphabetic() && prev.is_alphabetic() {
            let start = out.rfind(|ch: char| !ch.is_alphabetic()).map_or(0, |p| p + 1);
            let prefix = &out[start..];
            if prefix.len() == 1 || prefix.eq_ignore_ascii_case("co") {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Stems of `text` as the index sees them.
pub fn stems(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let prepared = prepare(text);
    let mut stream = analyzer.token_stream(&prepared);
    let mut out = Vec::new();
    while let Some(tok) = stream.next() {
        out.push(tok.text.clone());
    }
    out
}

/// One alternative way a concept can be found in a clause: all of its stems.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    pub stems: Vec<String>,
    /// 1.0 for the word the member of staff used; less for thesaurus terms.
    pub weight: f32,
}

/// A content word (or thesaurus phrase) of the question, with its alternatives.
#[derive(Debug, Clone)]
pub struct Concept {
    /// The words as the member of staff wrote them (after spelling correction).
    pub label: String,
    pub alternatives: Vec<Alternative>,
    /// Whether the word stands in the sentence that asks ("…who do I report
    /// it to?") rather than in the story before it.
    pub asked: bool,
}

impl Concept {
    pub fn all_stems(&self) -> impl Iterator<Item = &str> {
        self.alternatives
            .iter()
            .flat_map(|a| a.stems.iter().map(String::as_str))
    }
}

/// Known words and their frequencies, for spelling correction.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// Bucketed by first character so a lookup scans a small slice.
    by_initial: HashMap<char, Vec<(String, u32)>>,
    known: HashSet<String>,
}

impl Vocabulary {
    pub fn add(&mut self, word: &str, count: u32) {
        if self.known.insert(word.to_owned()) {
            if let Some(first) = word.chars().next() {
                self.by_initial.entry(first).or_default().push((word.to_owned(), count));
            }
        } else if let Some(first) = word.chars().next()
            && let Some(entry) = self
                .by_initial
                .get_mut(&first)
                .and_then(|v| v.iter_mut().find(|(w, _)| w == word))
        {
            entry.1 += count;
        }
    }

    pub fn contains(&self, word: &str) -> bool {
        self.known.contains(word)
    }

    /// The most frequent known word within edit distance 1 (2 for long words)
    /// that shares the first letter, if the word is not known itself.
    pub fn correct(&self, word: &str) -> Option<&str> {
        let len = word.chars().count();
        if len < 5 || self.known.contains(word) || word.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
        let max = if len >= 8 { 2 } else { 1 };
        let first = word.chars().next()?;
        let bucket = self.by_initial.get(&first)?;
        let mut best: Option<(&str, usize, u32)> = None;
        for (cand, count) in bucket {
            let clen = cand.chars().count();
            // A word seen once is as likely a rare word as the one meant.
            if clen.abs_diff(len) > max || clen < 4 || *count < 2 {
                continue;
            }
            let d = damerau(word, cand, max);
            if d <= max {
                let better = match best {
                    None => true,
                    Some((_, bd, bc)) => d < bd || (d == bd && *count > bc),
                };
                if better {
                    best = Some((cand, d, *count));
                }
            }
        }
        best.map(|(w, _, _)| w)
    }
}

/// Optimal-string-alignment distance, giving up (returning max+1) early.
fn damerau(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The question's concepts, in the order staff wrote them.
pub fn concepts(
    question: &str,
    thesaurus: &Thesaurus,
    vocabulary: &Vocabulary,
    analyzer: &mut TextAnalyzer,
) -> Vec<Concept> {
    let (words, asked) = asked_words(&prepare(question));
    let words: Vec<String> = words
        .into_iter()
        .map(|w| match vocabulary.correct(&w) {
            Some(fixed) if !is_stopword(&w) && !thesaurus_knows(thesaurus, analyzer, &w) => fixed.to_owned(),
            _ => w,
        })
        .collect();
    let word_stems: Vec<String> = words.iter().map(|w| stem_word(analyzer, w)).collect();
    let matches = thesaurus.matches(&words, &word_stems);
    let mut out: Vec<Concept> = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut i = 0;
    let mut next_match = matches.iter().peekable();
    while i < words.len() {
        let (len, expansions) = match next_match.peek() {
            Some((start, len, exp)) if *start == i => {
                next_match.next();
                (*len, Some(*exp))
            }
            _ => (1, None),
        };
        let phrase = &words[i..i + len];
        let phrase_key = &word_stems[i..i + len];
        let in_question = asked[i..i + len].iter().any(|a| *a);
        i += len;
        if len == 1 && (is_stopword(&phrase[0]) || is_number_or_year_group(&phrase[0])) {
            continue;
        }
        // "the class PC", "the staffroom computer": the place only says whose
        // device it is; the device is the topic.
        if len == 1
            && PLACE_MODIFIERS.contains(&phrase[0].as_str())
            && words.get(i).is_some_and(|w| DEVICES.contains(&w.as_str()))
        {
            continue;
        }
        let own = phrase_stems(analyzer, phrase);
        let mut alternatives = Vec::new();
        if !own.is_empty() && !thesaurus.is_exclusive(phrase_key) {
            alternatives.push(Alternative {
                stems: own.clone(),
                weight: 1.0,
            });
        }
        for (exp, relation) in expansions.unwrap_or(&[]) {
            let stems = phrase_stems(analyzer, exp);
            if stems.is_empty() || alternatives.iter().any(|a: &Alternative| a.stems == stems) {
                continue;
            }
            alternatives.push(Alternative {
                stems,
                weight: relation.weight(),
            });
        }
        if alternatives.is_empty() || !seen.insert(alternatives[0].stems.clone()) {
            continue;
        }
        // "facebook/tiktok", "picture … pics": one idea asked about twice. A
        // word that is an alternative of an earlier concept joins it instead
        // of counting double.
        let own = &alternatives[0].stems;
        let synonym = |a: &Alternative, stems: &[String]| a.weight >= SYNONYM_WEIGHT && a.stems == stems;
        if let Some(twin) = out.iter_mut().find(|c| {
            c.alternatives.iter().any(|a| synonym(a, own))
                || alternatives.iter().any(|a| synonym(a, &c.alternatives[0].stems))
        }) {
            twin.label.push('/');
            twin.label.push_str(&phrase.join(" "));
            twin.asked |= in_question;
            for alt in alternatives {
                match twin.alternatives.iter_mut().find(|a| a.stems == alt.stems) {
                    Some(existing) => existing.weight = existing.weight.max(alt.weight),
                    None => twin.alternatives.push(alt),
                }
            }
            continue;
        }
        out.push(Concept {
            label: phrase.join(" "),
            alternatives,
            asked: in_question,
        });
    }
    out
}

/// The words of a question, each flagged when it stands in a sentence that
/// ends with a question mark. Without a question mark, every word is asked.
fn asked_words(question: &str) -> (Vec<String>, Vec<bool>) {
    let mut words = Vec::new();
    let mut asked = Vec::new();
    let any_mark = question.contains('?');
    for sentence in question.split_inclusive(['.', '!', '?', '\n']) {
        let is_question = !any_mark || sentence.trim_end().ends_with('?');
        for w in text::words(sentence) {
            words.push(w);
            asked.push(is_question);
        }
    }
    (words, asked)
}

/// Stems of a phrase. A single stopword has none; a phrase keeps its small
/// words, since "at work" must not match every clause with "work" in it.
fn phrase_stems(analyzer: &mut TextAnalyzer, phrase: &[String]) -> Vec<String> {
    if phrase.len() == 1 && is_stopword(&phrase[0]) {
        return Vec::new();
    }
    phrase.iter().flat_map(|w| stems(analyzer, w)).collect()
}

fn thesaurus_knows(thesaurus: &Thesaurus, analyzer: &mut TextAnalyzer, word: &str) -> bool {
    let written = [word.to_owned()];
    !thesaurus.matches(&written, &[stem_word(analyzer, word)]).is_empty()
}

/// One word's stem (the word itself if the analyzer drops it).
pub fn stem_word(analyzer: &mut TextAnalyzer, word: &str) -> String {
    stems(analyzer, word)
        .into_iter()
        .next()
        .unwrap_or_else(|| word.to_owned())
}

/// Keys a thesaurus by stems, as [`concepts`] expects.
pub fn stem_thesaurus(thesaurus: Thesaurus) -> Thesaurus {
    let mut analyzer = analyzer();
    thesaurus.keyed_by(&mut |w| stem_word(&mut analyzer, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_joins_prefixes_and_apostrophes() {
        assert_eq!(
            prepare("the school's e-mail co-ordinator, well-known"),
            "the schools email coordinator, well-known"
        );
    }

    #[test]
    fn spelling_is_corrected_to_known_words() {
        let mut v = Vocabulary::default();
        v.add("chromebooks", 3);
        v.add("chromebook", 2);
        v.add("something", 1);
        assert_eq!(v.correct("chromebok"), Some("chromebook"));
        assert_eq!(v.correct("somthing"), None, "a word seen once is no correction");
        assert_eq!(v.correct("parking"), None);
    }

    #[test]
    fn concepts_carry_thesaurus_alternatives() {
        let t = stem_thesaurus(Thesaurus::from_toml("[[group]]\nterms = [\"memory stick\", \"usb\"]\n").unwrap());
        let mut a = analyzer();
        let c = concepts("Can I just use a memory stick?", &t, &Vocabulary::default(), &mut a);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, vec!["use", "memory stick"]);
        assert_eq!(c[1].alternatives[1].stems, vec!["usb"]);
    }
}
