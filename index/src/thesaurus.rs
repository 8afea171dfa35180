//! A domain thesaurus of general school and ICT vocabulary, applied to questions
//! at query time. Staff write "memory stick", "insta", "my hotmail"; policies
//! write "removable media", "social networking sites", "personal email".
//!
//! The file is TOML with two kinds of entry:
//!
//! ```toml
//! # Words and phrases that mean the same thing: each finds the others.
//! [[group]]
//! terms = ["pupil", "child", "student", "kid"]
//!
//! # One-way: a specific word also searches for the general ones.
//! [[expand]]
//! from = ["whatsapp", "messenger"]
//! to = ["messaging app", "text messaging", "personal device"]
//! ```

use std::collections::HashMap;

use serde::Deserialize;

use crate::text;

// The TOML error's text is in the message, so it is not also a `source`: a
// chain printed cause by cause would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ThesaurusError {
    #[error("thesaurus: {0}")]
    Toml(toml::de::Error),
    #[error("thesaurus: empty term in entry {0}")]
    EmptyTerm(usize),
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    group: Vec<Group>,
    #[serde(default)]
    expand: Vec<Expand>,
}

#[derive(Deserialize)]
struct Group {
    terms: Vec<String>,
}

#[derive(Deserialize)]
struct Expand {
    from: Vec<String>,
    to: Vec<String>,
    /// How close the broader terms are, 0–1 (default: [`BROADER_WEIGHT`]).
    weight: Option<f32>,
    /// The staff word is ambiguous in policies ("teams"): search only for
    /// the expansions, never for the word itself.
    #[serde(default)]
    exclusive: bool,
}

/// Default weight of a synonym and of a broader term, relative to the word
/// staff used.
pub const SYNONYM_WEIGHT: f32 = 0.85;
pub const BROADER_WEIGHT: f32 = 0.55;

/// A phrase as lowercase words.
pub type Phrase = Vec<String>;

/// A thesaurus phrase found in a question: (start word, length, expansions).
pub type Match<'a> = (usize, usize, &'a [(Phrase, Relation)]);

/// Query-time expansions keyed by phrase (as lowercase words).
#[derive(Debug, Default, Clone)]
pub struct Thesaurus {
    entries: HashMap<Phrase, Vec<(Phrase, Relation)>>,
    /// For a stemmed key, the phrases as the thesaurus wrote them.
    written: HashMap<Phrase, Vec<Phrase>>,
    exclusive: std::collections::HashSet<Phrase>,
    longest: usize,
}

/// How an expansion relates to the word the member of staff used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relation {
    /// Same meaning (a group).
    Synonym,
    /// A broader term (an expand entry), with its weight.
    Broader(f32),
}

impl Relation {
    pub fn weight(self) -> f32 {
        match self {
            Relation::Synonym => SYNONYM_WEIGHT,
            Relation::Broader(w) => w,
        }
    }
}

impl Thesaurus {
    pub fn from_toml(source: &str) -> Result<Self, ThesaurusError> {
        let file: File = toml::from_str(source).map_err(ThesaurusError::Toml)?;
        let mut t = Thesaurus::default();
        let phrase = |s: &str| text::words(s);
        for (i, g) in file.group.iter().enumerate() {
            let terms: Vec<Phrase> = g.terms.iter().map(|s| phrase(s)).collect();
            if terms.iter().any(Vec::is_empty) {
                return Err(ThesaurusError::EmptyTerm(i + 1));
            }
            for a in &terms {
                for b in &terms {
                    if a != b {
                        t.add(a.clone(), b.clone(), Relation::Synonym);
                    }
                }
            }
        }
        for (i, e) in file.expand.iter().enumerate() {
            let from: Vec<Phrase> = e.from.iter().map(|s| phrase(s)).collect();
            let to: Vec<Phrase> = e.to.iter().map(|s| phrase(s)).collect();
            if from.iter().chain(&to).any(Vec::is_empty) {
                return Err(ThesaurusError::EmptyTerm(file.group.len() + i + 1));
            }
            let weight = e.weight.unwrap_or(BROADER_WEIGHT).clamp(0.05, 1.0);
            if e.exclusive {
                t.exclusive.extend(from.iter().cloned());
            }
            for a in &from {
                for b in &to {
                    t.add(a.clone(), b.clone(), Relation::Broader(weight));
                }
            }
        }
        Ok(t)
    }

    fn add(&mut self, from: Phrase, to: Phrase, relation: Relation) {
        self.longest = self.longest.max(from.len());
        let list = self.entries.entry(from).or_default();
        if !list.iter().any(|(p, _)| *p == to) {
            list.push((to, relation));
        }
    }

    /// Every key phrase, for spelling correction against known vocabulary.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .flatten()
            .chain(self.entries.values().flatten().flat_map(|(p, _)| p))
            .map(String::as_str)
    }

    /// Finds thesaurus phrases in a question, longest first, without overlaps.
    /// `keys` are the words as the thesaurus is keyed (stems, after
    /// [`Thesaurus::keyed_by`]); `words` are the words as written, which must be
    /// an inflection of a key as written ("teachers" for "teacher", not
    /// "managed" for "manager", though both stem to "manag…").
    /// Returns (start, len, expansions).
    pub fn matches(&self, words: &[String], keys: &[String]) -> Vec<Match<'_>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let mut found = None;
            for len in (1..=self.longest.min(keys.len() - i)).rev() {
                let key = &keys[i..i + len];
                let Some(exp) = self.entries.get(key) else { continue };
                let written = &words[i..i + len];
                let inflects = match self.written.get(key) {
                    Some(forms) => forms
                        .iter()
                        .any(|f| f.iter().zip(written).all(|(a, b)| same_word(a, b))),
                    None => true,
                };
                if inflects {
                    found = Some((i, len, exp.as_slice()));
                    break;
                }
            }
            match found {
                Some(m) => {
                    i += m.1;
                    out.push(m);
                }
                None => i += 1,
            }
        }
        out
    }

    /// The same thesaurus keyed by stemmed phrases, so "teachers", "texting"
    /// and "messaged" find the entries written as "teacher", "text", "message".
    /// Expansions stay as written; they are stemmed when searched for.
    pub fn keyed_by(self, stem: &mut dyn FnMut(&str) -> String) -> Thesaurus {
        let mut key = |p: &Phrase| p.iter().map(|w| stem(w)).collect::<Phrase>();
        let mut out = Thesaurus {
            longest: self.longest,
            ..Default::default()
        };
        for (from, exps) in self.entries {
            let stemmed = key(&from);
            out.written.entry(stemmed.clone()).or_default().push(from);
            let list = out.entries.entry(stemmed).or_default();
            for (to, relation) in exps {
                match list.iter_mut().find(|(p, _)| *p == to) {
                    Some(existing) if existing.1.weight() < relation.weight() => existing.1 = relation,
                    Some(_) => {}
                    None => list.push((to, relation)),
                }
            }
        }
        out.exclusive = self.exclusive.iter().map(&mut key).collect();
        out
    }

    /// Whether a phrase must not be searched for as itself.
    pub fn is_exclusive(&self, phrase: &[String]) -> bool {
        self.exclusive.contains(phrase)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether two words are inflections of one another: plural, possessive,
/// past tense or -ing form ("texting"/"text", "messaged"/"message",
/// "parking"/"park"), but not derivations ("manager"/"managed").
pub fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let a = bases(a);
    bases(b).iter().any(|x| a.contains(x))
}

fn bases(word: &str) -> Vec<String> {
    let mut out = vec![word.to_owned()];
    let mut push = |s: String| {
        if s.chars().count() >= 2 && !out.contains(&s) {
            out.push(s);
        }
    };
    if let Some(stem) = word.strip_suffix("ies") {
        push(format!("{stem}y"));
    }
    for suffix in ["'s", "s", "es", "ed", "d", "ing"] {
        if let Some(stem) = word.strip_suffix(suffix) {
            push(stem.to_owned());
            if suffix == "ing" || suffix == "ed" {
                push(format!("{stem}e"));
                // "dropped" → "drop", "chatting" → "chat"
                let mut chars: Vec<char> = stem.chars().collect();
                if chars.len() >= 2 && chars[chars.len() - 1] == chars[chars.len() - 2] {
                    chars.pop();
                    push(chars.into_iter().collect());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_symmetric_and_expand_is_one_way() {
        let t = Thesaurus::from_toml(
            "[[group]]\nterms = [\"memory stick\", \"usb stick\"]\n[[expand]]\nfrom = [\"insta\"]\nto = [\"social media\"]\n",
        )
        .unwrap();
        let ws = text::words("can I use a memory stick or insta");
        let m = t.matches(&ws, &ws);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, 4);
        assert_eq!(m[0].2[0].0, vec!["usb", "stick"]);
        let sm = text::words("social media");
        assert!(t.matches(&sm, &sm).is_empty());
        let us = text::words("usb stick");
        assert!(!t.matches(&us, &us).is_empty());
    }

    #[test]
    fn inflections_are_the_same_word_derivations_are_not() {
        assert!(same_word("teachers", "teacher"));
        assert!(same_word("messaged", "message"));
        assert!(same_word("texting", "text"));
        assert!(same_word("parking", "park"));
        assert!(same_word("dropped", "drop"));
        assert!(!same_word("managed", "manager"));
        assert!(!same_word("removable", "remove"));
        assert!(!same_word("allowed", "allowance"));
    }

    #[test]
    fn bad_toml_is_an_error() {
        assert!(Thesaurus::from_toml("[[group]]\nterms = 3").is_err());
        assert!(Thesaurus::from_toml("[[group]]\nterms = [\"\"]").is_err());
    }
}
