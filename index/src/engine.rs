//! The answer core: `answer(question, asker) -> Answer`.
//!
//! Question → concepts (query.rs) → BM25 candidates from the asker's school
//! only (search.rs) → coverage rerank (rank.rs) → decline or cite → verdict
//! from the best-matching part of the top clause (verdict.rs) → reply text.
//! Deterministic: the same policies and question give the same answer.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tantivy::tokenizer::TextAnalyzer;

use std::sync::Arc;

use crate::clause::{Clause, Modality, Policy};
use crate::embed::{DIM, EmbedError, Embedder, cosine};
use crate::modality;
use crate::query::{self, Concept, Vocabulary};
use crate::rank::{self, ClauseStems, FieldStems};
use crate::render;
use crate::search::{ClauseIndex, IndexError, SyncReport};
use crate::text;
use crate::thesaurus::Thesaurus;
use crate::vectors::{ClauseVectors, VectorReport};
use crate::verdict::{self, Verdict};

/// Questions longer than this are cut before analysis; nobody types more, and
/// a pasted essay must not slow the bot for everyone else.
pub const MAX_QUESTION_CHARS: usize = 2000;

/// Below the answer threshold but at least this share of it, the closest
/// clauses are suggested rather than the question declined.
const SUGGEST_SHARE: f32 = 0.5;

/// The part of a question the engine reads: trimmed, and at most
/// [`MAX_QUESTION_CHARS`] characters. The service stores no more than this.
pub fn part_read(question: &str) -> &str {
    let question = question.trim();
    match question.char_indices().nth(MAX_QUESTION_CHARS) {
        Some((end, _)) => &question[..end],
        None => question,
    }
}

/// Who is asking: only their school's clauses may answer.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub school: &'a str,
    pub name: Option<&'a str>,
}

/// Tunable thresholds. The defaults are what the README's figures were measured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// BM25 candidates reranked per question.
    pub candidates: usize,
    /// Decline below this share of the question's weighted concepts covered.
    pub min_coverage: f32,
    /// Decline below this absolute matched weight (sum of IDF of matched concepts).
    pub min_matched: f32,
    /// Decline unless the clause matches this many of the question's
    /// non-generic concepts (or all of them, if it has fewer).
    pub min_concepts: usize,
    pub max_citations: usize,
    /// Further citations must score at least this share of the first.
    pub citation_ratio: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            candidates: 40,
            min_coverage: 0.15,
            min_matched: 0.0,
            min_concepts: 2,
            max_citations: 3,
            citation_ratio: 0.6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("no policies are indexed for school '{0}'")]
    UnknownSchool(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// One cited clause.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    pub clause_id: String,
    pub school: String,
    pub policy: String,
    pub policy_title: String,
    pub policy_version: String,
    pub section: String,
    pub clause_number: String,
    /// The clause word for word.
    pub text: String,
    /// The head of the prohibition list the clause is an item of ("Don't"),
    /// shown before the quote: the item alone reads like permission.
    pub list_head: Option<String>,
    /// "Policy title, 'Section', clause 4 — version …"
    pub reference: String,
    pub lines: (usize, usize),
    pub modality: Modality,
    pub score: f32,
}

/// How sure the engine is, and so what the reply does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Confident: the clause that answers, quoted, with a verdict.
    Answer,
    /// Not sure which clause answers: up to three closest, no verdict; the
    /// question is marked unanswered for the e-safety lead.
    Suggest,
    /// Nothing in the school's policies is close: no clause is quoted.
    Decline,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Answer => "answer",
            Mode::Suggest => "suggest",
            Mode::Decline => "decline",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Answer, Mode::Suggest, Mode::Decline]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    pub school: String,
    pub mode: Mode,
    /// `mode == Mode::Answer`: a clause was quoted with a verdict.
    pub answered: bool,
    pub verdict: Verdict,
    /// Share of the question's weighted concepts the first citation covers, 0–1.
    pub confidence: f32,
    /// How many of the question's concepts the first citation matches.
    pub concepts_matched: usize,
    /// How many concepts the question has.
    pub concepts: usize,
    /// The first citation's matched weight (sum of the IDF of the concepts it covers).
    pub support: f32,
    pub citations: Vec<Citation>,
    /// When declined: the section whose clause came closest.
    pub nearest_section: Option<String>,
    /// People the cited clause (or, when declined, the policy) names to ask.
    pub contacts: Vec<String>,
    /// What a human reads.
    pub reply: String,
}

/// How much a question's concept counts.
struct ConceptWeight {
    /// For ranking: rarity, doubled in the asking sentence, discounted for
    /// words no policy or thesaurus knows.
    weight: f32,
    /// Not a word most clauses share.
    topical: bool,
}

struct Scored {
    slot: usize,
    score: f32,
    /// The lexical score alone (coverage, focus, shape, BM25).
    lexical: f32,
    /// Cosine of the question with the clause's text, and with it under its headings.
    sim_text: f32,
    sim_head: f32,
    /// Cosine of the question with the closest of the lead's examples for this clause.
    example: f32,
    matched: f32,
    coverage: f32,
    /// Concepts this clause matches at least half-way.
    concepts_matched: usize,
    /// It clearly matches a concept that outweighs the rest of the question.
    dominant: bool,
    /// How well it matches each concept, 0–1.
    per: Vec<f32>,
}

/// Clauses taken from embedding nearest neighbours, beside BM25's.
const SEMANTIC_CANDIDATES: usize = 20;
/// How much a standard deviation of embedding similarity (among the
/// candidates) counts against the lexical score scaled to the best
/// candidate's. Chosen on the dev set, checked school by school.
const SIMILARITY_WEIGHT: f32 = 0.2;
/// Below this cosine between the question and its closest clause, with few
/// of its words found either, nothing in the policies is near: decline
/// rather than suggest. Set a margin below every answerable dev question
/// (the lowest closest-clause cosine there is 0.30): a decline hides an answer.
const DECLINE_BELOW_SIMILARITY: f32 = 0.2;
/// A question this close to one of the lead's examples for a clause (a
/// paraphrase) is answered by that clause: the lead has said it answers.
const EXAMPLE_MATCH: f32 = 0.75;
/// Enough to put an example's clause first.
const EXAMPLE_BOOST: f32 = 2.0;

impl Scored {
    /// The closer of the clause's two vectors to the question.
    fn similarity(&self) -> f32 {
        self.sim_text.max(self.sim_head)
    }

    /// A lead's example for this clause is a paraphrase of the question.
    fn is_example(&self) -> bool {
        self.example >= EXAMPLE_MATCH
    }
}

/// Scores candidates by words and meaning together: the lexical score
/// relative to the best candidate's (0–1), plus the embedding similarity in
/// standard deviations from the candidates' mean, plus the lead's examples.
/// Both halves are scaled within the question, so neither's raw range (BM25
/// and coverage grow with a question's length; cosines crowd 0.2–0.6)
/// decides alone.
fn fuse(scored: &mut [Scored]) {
    let n = scored.len().max(1) as f32;
    let best_lexical = scored.iter().map(|s| s.lexical).fold(0.0f32, f32::max);
    let best_lexical = if best_lexical > 0.0 { best_lexical } else { 1.0 };
    let mean = scored.iter().map(Scored::similarity).sum::<f32>() / n;
    let spread = (scored.iter().map(|s| (s.similarity() - mean).powi(2)).sum::<f32>() / n).sqrt();
    let spread = if spread > 1e-6 { spread } else { 1.0 };
    for s in scored.iter_mut() {
        let example = if s.is_example() { EXAMPLE_BOOST } else { 0.0 };
        s.score = s.lexical / best_lexical + SIMILARITY_WEIGHT * (s.similarity() - mean) / spread + example;
    }
}

struct SemanticScores {
    /// Clause id → (cosine with its text, cosine with it under its headings).
    sims: HashMap<String, (f32, f32)>,
    /// The school's clauses closest to the question, best first.
    nearest: Vec<String>,
    /// Clause id → cosine with the closest of the lead's examples for it.
    examples: HashMap<String, f32>,
}

/// A question ranked against its school's clauses (see [`Engine::rank`]).
struct Ranking {
    /// Ranked with sentence embeddings as well as words.
    semantic: bool,
    concepts: Vec<Concept>,
    importance: Vec<f32>,
    topical: Vec<bool>,
    candidates: Vec<(String, f32)>,
    scored: Vec<Scored>,
}

/// A question the e-safety lead marked as answered by a clause ("covered by
/// clause X" on the dashboard): later questions close to it get the clause
/// as a strong candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub school: String,
    pub clause_id: String,
    pub question: String,
}

/// A school's clause vectors side by side, for nearest-neighbour search.
#[derive(Default)]
struct SchoolVectors {
    ids: Vec<String>,
    /// `ids.len() * DIM` floats each: clause text, clause under its headings.
    text: Vec<f32>,
    headed: Vec<f32>,
}

/// The sentence-embedding side of retrieval.
struct Semantic {
    embedder: Arc<Embedder>,
    by_school: HashMap<String, SchoolVectors>,
}

pub struct Engine {
    policies: Vec<Policy>,
    semantic: Option<Semantic>,
    /// The lead's examples, replaced as a whole when they change, each with
    /// its question's vector once the engine has the model.
    examples: std::sync::RwLock<Vec<(Example, Option<Vec<f32>>)>>,
    /// Clause id → (policy, clause) position.
    slots: HashMap<String, (usize, usize)>,
    schools: HashSet<String>,
    index: ClauseIndex,
    thesaurus: Thesaurus,
    vocabulary: Vocabulary,
    /// Words that occur in some policy (the vocabulary minus the thesaurus).
    policy_words: HashSet<String>,
    analyzer: TextAnalyzer,
    settings: Settings,
}

impl Engine {
    /// Brings `index` in step with `policies` and returns the engine with the report.
    pub fn new(
        policies: Vec<Policy>,
        mut index: ClauseIndex,
        thesaurus: Thesaurus,
        settings: Settings,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, SyncReport), IndexError> {
        let report = index.sync(&policies, progress)?;
        let thesaurus = query::stem_thesaurus(thesaurus);
        let mut slots = HashMap::new();
        let mut vocabulary = Vocabulary::default();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for (p, policy) in policies.iter().enumerate() {
            for (c, clause) in policy.clauses.iter().enumerate() {
                slots.insert(clause.id.clone(), (p, c));
                for w in text::words(&query::prepare(&clause.text)) {
                    *counts.entry(w).or_default() += 1;
                }
            }
        }
        let policy_words: HashSet<String> = counts.keys().cloned().collect();
        for w in thesaurus.words() {
            *counts.entry(w.to_owned()).or_default() += 1;
        }
        let mut sorted: Vec<(String, u32)> = counts.into_iter().collect();
        sorted.sort();
        for (w, n) in sorted {
            vocabulary.add(&w, n);
        }
        let schools = policies.iter().map(|p| p.school.clone()).collect();
        let engine = Engine {
            policies,
            semantic: None,
            examples: Default::default(),
            slots,
            schools,
            index,
            thesaurus,
            vocabulary,
            policy_words,
            analyzer: query::analyzer(),
            settings,
        };
        Ok((engine, report))
    }

    /// Replaces the lead's examples (all schools). Examples naming a clause
    /// no longer in the policies are kept but never match.
    /// A question already embedded keeps its vector: the service passes every
    /// example on each change, and only the new ones need the model.
    pub fn set_examples(&self, examples: Vec<Example>) {
        let mut kept = self.examples.write().unwrap_or_else(|e| e.into_inner());
        let known: HashMap<&str, &Vec<f32>> = kept
            .iter()
            .filter_map(|(e, v)| Some((e.question.as_str(), v.as_ref()?)))
            .collect();
        let with_vectors = examples
            .into_iter()
            .map(|e| {
                let vector = match (known.get(e.question.as_str()), &self.semantic) {
                    (Some(v), _) => Some((*v).clone()),
                    (None, Some(semantic)) => semantic.embedder.embed(&e.question).ok(),
                    (None, None) => None,
                };
                (e, vector)
            })
            .collect();
        *kept = with_vectors;
    }

    /// Adds sentence embeddings to retrieval: every clause is embedded (or
    /// its vectors reused from beside the index, when its text is unchanged).
    pub fn with_embedder(
        mut self,
        embedder: Arc<Embedder>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, VectorReport), AnswerError> {
        let (vectors, report) = ClauseVectors::sync(self.index.dir(), &self.policies, &embedder, progress)?;
        let mut by_school: HashMap<String, SchoolVectors> = HashMap::new();
        for clause in self.policies.iter().flat_map(|p| &p.clauses) {
            if let Some((text, headed)) = vectors.get(&clause.id) {
                let school = by_school.entry(clause.school.clone()).or_default();
                school.ids.push(clause.id.clone());
                school.text.extend_from_slice(text);
                school.headed.extend_from_slice(headed);
            }
        }
        self.semantic = Some(Semantic { embedder, by_school });
        let examples = self
            .examples
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(e, _)| e.clone())
            .collect();
        self.set_examples(examples);
        Ok((self, report))
    }

    /// The lead's examples for one clause.
    pub fn examples_for(&self, clause_id: &str) -> Vec<Example> {
        let examples = self.examples.read().unwrap_or_else(|e| e.into_inner());
        examples
            .iter()
            .filter(|(e, _)| e.clause_id == clause_id)
            .map(|(e, _)| e.clone())
            .collect()
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn has_school(&self, school: &str) -> bool {
        self.schools.contains(school)
    }

    pub fn clause(&self, id: &str) -> Option<&Clause> {
        self.slots.get(id).map(|&(p, c)| &self.policies[p].clauses[c])
    }

    /// A clause with up to `radius` neighbours either side from the same
    /// section, in policy order, and the clause's position among them: what
    /// a member of staff reads to see a clause in its context.
    pub fn section_around(&self, id: &str, radius: usize) -> Option<(&Policy, Vec<&Clause>, usize)> {
        let &(p, c) = self.slots.get(id)?;
        let policy = &self.policies[p];
        let clause = &policy.clauses[c];
        let same_section = |other: &&Clause| other.heading_path == clause.heading_path;
        let before: Vec<&Clause> = policy.clauses[..c]
            .iter()
            .rev()
            .take_while(same_section)
            .take(radius)
            .collect();
        let after = policy.clauses[c + 1..].iter().take_while(same_section).take(radius);
        let at = before.len();
        let clauses = before
            .into_iter()
            .rev()
            .chain(std::iter::once(clause))
            .chain(after)
            .collect();
        Some((policy, clauses, at))
    }

    fn policy_of(&self, clause: &Clause) -> Option<&Policy> {
        self.slots.get(&clause.id).map(|&(p, _)| &self.policies[p])
    }

    fn stems_of(&self, analyzer: &mut TextAnalyzer, clause: &Clause) -> ClauseStems {
        ClauseStems {
            text: FieldStems::new(query::stems(analyzer, &clause.text)),
            heading: FieldStems::new(query::stems(analyzer, &clause.heading_path.join(" \n "))),
            context: FieldStems::new(query::stems(analyzer, &clause.context)),
        }
    }

    /// Answers a question for a member of staff of `asker.school`.
    pub fn answer(&self, question: &str, asker: &Asker<'_>) -> Result<Answer, AnswerError> {
        let question = question.trim();
        if question.chars().all(|c| !c.is_alphanumeric()) {
            return Err(AnswerError::EmptyQuestion);
        }
        if !self.has_school(asker.school) {
            return Err(AnswerError::UnknownSchool(asker.school.to_owned()));
        }
        let question = part_read(question).to_owned();
        let mut analyzer = self.analyzer.clone();
        let Ranking {
            semantic,
            concepts,
            importance,
            topical,
            candidates,
            scored,
        } = self.rank(&question, asker, &mut analyzer)?;
        let clause_at = |s: &Scored| self.clause(&candidates[s.slot].0).expect("candidate clause exists");

        // An answer must find the question's ideas in the clause: two of them
        // (one if the question has only one that is not generic), and enough
        // of the question overall.
        let meaningful = topical.iter().filter(|t| **t).count();
        let required = meaningful.min(self.settings.min_concepts);
        let top = scored.first();
        let words_answer = |t: &Scored| {
            (t.concepts_matched >= required.max(1) || (t.concepts_matched == 1 && t.dominant))
                && t.coverage >= self.settings.min_coverage
                && t.matched >= self.settings.min_matched
        };
        // With embeddings, an answer needs two independent rankings to agree:
        // the clause comes first by its words and first by its meaning, and
        // its words answer. Either alone is wrong too often on questions
        // nobody tuned for; when they disagree, the closest clauses are
        // suggested instead. The lead's example for a clause vouches for it.
        let answered = top.is_some_and(|t| {
            if !semantic {
                return words_answer(t);
            }
            t.is_example()
                || (words_answer(t)
                    && scored.iter().all(|s| s.lexical <= t.lexical)
                    && scored.iter().all(|s| s.similarity() <= t.similarity()))
        });
        let best_similarity = scored.iter().map(Scored::similarity).fold(0.0f32, f32::max);
        let near = top.is_some_and(|t| {
            t.coverage >= self.settings.min_coverage * SUGGEST_SHARE
                || (semantic && best_similarity >= DECLINE_BELOW_SIMILARITY)
        });
        if !answered
            && near
            && let Some(top) = top
        {
            let citations = scored
                .iter()
                .take(self.settings.max_citations)
                .filter(|s| semantic || s.coverage >= top.coverage * SUGGEST_SHARE)
                .map(|s| self.citation(clause_at(s), s.score))
                .collect();
            return Ok(self.suggested(question, asker, citations, top.coverage));
        }
        if !answered {
            let nearest = top.map(&clause_at);
            let mut answer = self.declined(question, asker, nearest, top.map_or(0.0, |t| t.coverage));
            answer.support = top.map_or(0.0, |t| t.matched);
            answer.concepts_matched = top.map_or(0, |t| t.concepts_matched);
            answer.concepts = concepts.len();
            return Ok(answer);
        }
        let top = top.expect("answered implies a candidate");
        let top_clause = clause_at(top);
        let mut citations = vec![self.citation(top_clause, top.score)];
        for s in scored.iter().skip(1) {
            if citations.len() >= self.settings.max_citations {
                break;
            }
            if s.score < top.score * self.settings.citation_ratio || s.coverage < self.settings.min_coverage * 0.8 {
                break;
            }
            citations.push(self.citation(clause_at(s), s.score));
        }
        let verdict = self.verdict(&question, top_clause, &concepts, &importance, &mut analyzer);
        let contacts = self.contacts(top_clause);
        let mut answer = Answer {
            question,
            school: asker.school.to_owned(),
            mode: Mode::Answer,
            answered: true,
            verdict,
            confidence: top.coverage.min(1.0),
            support: top.matched,
            concepts_matched: top.concepts_matched,
            concepts: concepts.len(),
            citations,
            nearest_section: None,
            contacts,
            reply: String::new(),
        };
        answer.reply = render::plain_answer(&answer);
        Ok(answer)
    }

    /// The question's concepts and weights, and every candidate clause of the
    /// asker's school scored, best first. `answer` and `explain` share it, so
    /// what `explain` shows is the order `answer` used.
    fn rank(&self, question: &str, asker: &Asker<'_>, analyzer: &mut TextAnalyzer) -> Result<Ranking, AnswerError> {
        let concepts = query::concepts(question, &self.thesaurus, &self.vocabulary, analyzer);
        let weighed = self.weigh(&concepts);
        let importance: Vec<f32> = weighed.iter().map(|w| w.weight).collect();
        let topical: Vec<bool> = weighed.iter().map(|w| w.topical).collect();
        let total: f32 = importance.iter().sum();
        let topical_total: f32 = importance
            .iter()
            .zip(&topical)
            .filter(|(_, t)| **t)
            .map(|(w, _)| w)
            .sum();
        let mut candidates = self
            .index
            .candidates(asker.school, &concepts, self.settings.candidates)?;
        let semantic = self.semantic_scores(question, asker.school)?;
        if let Some(sem) = &semantic {
            let mut known: HashSet<String> = candidates.iter().map(|c| c.0.clone()).collect();
            let examples = sem
                .examples
                .iter()
                .filter(|(_, sim)| **sim >= EXAMPLE_MATCH)
                .map(|(id, _)| id);
            for id in sem.nearest.iter().chain(examples) {
                if known.insert(id.clone()) {
                    candidates.push((id.clone(), 0.0));
                }
            }
        }
        let shape = rank::QuestionShape::of(question);
        let question_stems = rank::question_stems(&concepts);
        let mut scored: Vec<Scored> = Vec::new();
        let best_bm25 = candidates.first().map_or(1.0, |c| c.1.max(1e-6));
        for (rank_in_bm25, (id, bm25)) in candidates.iter().enumerate() {
            let Some(clause) = self.clause(id) else {
                continue;
            };
            let stems = self.stems_of(analyzer, clause);
            let (matched, per) = rank::coverage(&concepts, &importance, &stems);
            let concepts_matched = per
                .iter()
                .zip(&topical)
                .filter(|(m, t)| **m >= rank::MATCHED && **t)
                .count();
            // One idea can carry a question ("pics off Google Images" is about
            // copyright) when it outweighs the rest and is clearly there.
            let dominant = per
                .iter()
                .zip(&importance)
                .zip(&topical)
                .any(|((m, w), t)| *t && *m >= rank::CLEARLY_MATCHED && *w >= rank::DOMINANT_SHARE * topical_total);
            let focus = rank::focus(&question_stems, &stems);
            // BM25 (field weights, term frequencies) nudges the order; the
            // coverage score leads, and BM25 rank breaks exact ties.
            let score = rank::rank_score(matched, focus, clause, &stems, shape)
                * (1.0 + rank::BM25_WEIGHT * bm25 / best_bm25)
                - rank_in_bm25 as f32 * 1e-4;
            let coverage = if total > 0.0 { matched / total } else { 0.0 };
            let (sim_text, sim_head) = semantic
                .as_ref()
                .and_then(|s| s.sims.get(id.as_str()).copied())
                .unwrap_or((0.0, 0.0));
            let example = semantic
                .as_ref()
                .and_then(|s| s.examples.get(id.as_str()).copied())
                .unwrap_or(0.0);
            scored.push(Scored {
                slot: rank_in_bm25,
                score,
                lexical: score,
                sim_text,
                sim_head,
                example,
                matched,
                coverage,
                concepts_matched,
                dominant,
                per,
            });
        }
        if semantic.is_some() {
            fuse(&mut scored);
        }
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(Ranking {
            semantic: semantic.is_some(),
            concepts,
            importance,
            topical,
            candidates,
            scored,
        })
    }

    /// The question against every clause of the school by embedding: each
    /// clause's two cosines, the nearest clauses, and the lead's examples.
    fn semantic_scores(&self, question: &str, school: &str) -> Result<Option<SemanticScores>, AnswerError> {
        let Some(semantic) = &self.semantic else {
            return Ok(None);
        };
        let Some(vectors) = semantic.by_school.get(school) else {
            return Ok(None);
        };
        let q = semantic.embedder.embed(question)?;
        let mut sims = HashMap::with_capacity(vectors.ids.len());
        let mut order: Vec<(f32, usize)> = Vec::with_capacity(vectors.ids.len());
        for (i, id) in vectors.ids.iter().enumerate() {
            let text = cosine(&q, &vectors.text[i * DIM..(i + 1) * DIM]);
            let headed = cosine(&q, &vectors.headed[i * DIM..(i + 1) * DIM]);
            sims.insert(id.clone(), (text, headed));
            order.push((text.max(headed), i));
        }
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        let nearest = order
            .iter()
            .take(SEMANTIC_CANDIDATES)
            .map(|&(_, i)| vectors.ids[i].clone())
            .collect();
        let mut examples: HashMap<String, f32> = HashMap::new();
        for (example, v) in self.examples.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let Some(v) = v else { continue };
            if example.school == school && sims.contains_key(&example.clause_id) {
                let sim = cosine(&q, v);
                let best = examples.entry(example.clause_id.clone()).or_insert(sim);
                *best = best.max(sim);
            }
        }
        Ok(Some(SemanticScores {
            sims,
            nearest,
            examples,
        }))
    }

    /// Why the engine ranked as it did: the question's concepts with their
    /// weights, then the best candidates with their coverage. For policy
    /// authors and for tuning; not shown to staff.
    pub fn explain(&self, question: &str, asker: &Asker<'_>, top: usize) -> Result<String, AnswerError> {
        let mut analyzer = self.analyzer.clone();
        let Ranking {
            concepts,
            importance,
            candidates,
            scored,
            ..
        } = self.rank(question, asker, &mut analyzer)?;
        let mut out = String::new();
        for (c, w) in concepts.iter().zip(&importance) {
            let alts: Vec<String> = c
                .alternatives
                .iter()
                .map(|a| format!("{}@{:.2}", a.stems.join("+"), a.weight))
                .collect();
            out.push_str(&format!(
                "concept {:<20} weight {:>5.2}  {}\n",
                c.label,
                w,
                alts.join(" ")
            ));
        }
        for s in scored.iter().take(top) {
            let (id, bm25) = &candidates[s.slot];
            let text: String = self
                .clause(id)
                .map(|c| c.text.chars().take(110).collect())
                .unwrap_or_default();
            let hits: Vec<String> = concepts
                .iter()
                .zip(&s.per)
                .filter(|(_, m)| **m > 0.0)
                .map(|(c, m)| format!("{}:{:.2}", c.label, m))
                .collect();
            out.push_str(&format!(
                "{:6.2} cov {:.2} bm25 {bm25:5.2} | {}\n        {text}\n",
                s.score,
                s.coverage,
                hits.join(" ")
            ));
        }
        Ok(out)
    }

    /// A concept's weight: the rarity (IDF) of the idea, which is the rarity
    /// of its most common synonym: "pics" is as common as "photographs",
    /// however rarely a policy spells it that way. Words that neither any
    /// policy nor the thesaurus knows ("frog", "scavenger") are the story
    /// around the question, not its topic, and weigh less.
    /// Each concept's weight, and whether it is topical (rarer than
    /// [`Engine::is_generic`]: "use" and "staff" are not).
    fn weigh(&self, concepts: &[Concept]) -> Vec<ConceptWeight> {
        let n = self.index.clause_count();
        // A phrase is at most as common as its rarest word.
        let doc_freq = |stems: &[String]| stems.iter().map(|s| self.index.doc_freq(s)).min().unwrap_or(0);
        concepts
            .iter()
            .map(|c| {
                // The commonest way of saying it: "pics" is as common as
                // "photographs", however rarely a policy spells it that way.
                let df = c
                    .alternatives
                    .iter()
                    .filter(|a| a.weight >= crate::thesaurus::SYNONYM_WEIGHT)
                    .map(|a| doc_freq(&a.stems))
                    .max()
                    .unwrap_or_else(|| doc_freq(&c.alternatives[0].stems));
                let weight = rank::idf(df, n);
                let topical = !self.is_generic(df);
                let known = c.alternatives.len() > 1
                    || c.label
                        .split(['/', ' '])
                        .all(|w| self.policy_words.contains(w) || query::is_stopword(w));
                let asked = if c.asked { rank::ASKED_FACTOR } else { 1.0 };
                let unknown = if known { 1.0 } else { rank::UNKNOWN_WORD_FACTOR };
                ConceptWeight {
                    weight: weight * asked * unknown,
                    topical,
                }
            })
            .collect()
    }

    /// Whether a word in `doc_freq` clauses is too common to be anyone's topic.
    fn is_generic(&self, doc_freq: u64) -> bool {
        let n = self.index.clause_count();
        doc_freq >= ((n as f32 * rank::GENERIC_SHARE) as u64).max(rank::GENERIC_MIN_CLAUSES)
    }

    fn declined(&self, question: String, asker: &Asker<'_>, nearest: Option<&Clause>, coverage: f32) -> Answer {
        let nearest_section = nearest.map(|c| format!("'{}' in {}", c.section(), c.policy_title));
        let contacts = self
            .policies
            .iter()
            .filter(|p| p.school == asker.school)
            .flat_map(|p| p.contacts.iter())
            .filter(|(role, _)| {
                let r = role.to_lowercase();
                r.contains("safety") || r.contains("safeguarding") || r.contains("computing") || r.contains("ict")
            })
            .map(|(role, name)| format!("{role}: {name}"))
            .take(2)
            .collect();
        let mut answer = Answer {
            question,
            school: asker.school.to_owned(),
            mode: Mode::Decline,
            answered: false,
            verdict: Verdict::None,
            confidence: coverage.min(1.0),
            support: 0.0,
            concepts_matched: 0,
            concepts: 0,
            citations: Vec::new(),
            nearest_section,
            contacts,
            reply: String::new(),
        };
        answer.reply = render::plain_declined(&answer);
        answer
    }

    /// The closest clauses, quoted without a verdict: the engine is not sure
    /// which of them (if any) answers.
    fn suggested(&self, question: String, asker: &Asker<'_>, citations: Vec<Citation>, confidence: f32) -> Answer {
        let mut answer = self.declined(question, asker, None, confidence);
        answer.mode = Mode::Suggest;
        answer.citations = citations;
        answer.reply = render::plain_suggestion(&answer);
        answer
    }

    fn citation(&self, clause: &Clause, score: f32) -> Citation {
        Citation {
            clause_id: clause.id.clone(),
            school: clause.school.clone(),
            policy: clause.policy.clone(),
            policy_title: clause.policy_title.clone(),
            policy_version: clause.policy_version.clone(),
            section: clause.section().to_owned(),
            clause_number: clause.number.clone().unwrap_or_else(|| clause.ordinal.to_string()),
            text: clause.text.clone(),
            list_head: clause.list_head.clone(),
            reference: clause.citation(),
            lines: clause.lines,
            modality: clause.modality,
            score,
        }
    }

    /// The verdict comes from the part of the clause that matched best: a
    /// bullet like "I will adhere to the terms of use I will not share my
    /// passwords" answers a password question with its second half.
    fn verdict(
        &self,
        question: &str,
        clause: &Clause,
        concepts: &[Concept],
        importance: &[f32],
        analyzer: &mut TextAnalyzer,
    ) -> Verdict {
        let implied = clause
            .heading_path
            .last()
            .filter(|h| crate::parse::is_list_mode_heading(h))
            .map(|_| clause.modality);
        let segments = segments(&clause.text);
        let best = segments
            .iter()
            .map(|seg| {
                let stems = ClauseStems {
                    text: FieldStems::new(query::stems(analyzer, seg)),
                    ..Default::default()
                };
                (seg.as_str(), rank::coverage(concepts, importance, &stems).0)
            })
            .fold(None::<(&str, f32)>, |acc, cur| match acc {
                Some(a) if a.1 >= cur.1 => Some(a),
                _ => Some(cur),
            })
            .map(|(s, _)| s)
            .unwrap_or(&clause.text);
        let modality = match implied {
            Some(m) => m,
            None => {
                let m = modality::of_item(best, None);
                if m == Modality::Info { clause.modality } else { m }
            }
        };
        // Topic words only: a generic word ("school") shared with an exception
        // ("except the school website") says nothing about whether it applies.
        let question_stems: HashSet<String> = concepts
            .iter()
            .flat_map(|c| {
                c.alternatives
                    .iter()
                    .filter(|a| a.weight >= crate::thesaurus::SYNONYM_WEIGHT)
            })
            .flat_map(|a| a.stems.iter())
            .filter(|s| !query::is_stopword(s) && !self.is_generic(self.index.doc_freq(s)))
            .cloned()
            .collect();
        let base = analyzer.clone();
        let overlaps = |t: &str| {
            query::stems(&mut base.clone(), t)
                .iter()
                .any(|s| question_stems.contains(s))
        };
        verdict::decide(question, best, modality, &overlaps)
    }

    fn contacts(&self, clause: &Clause) -> Vec<String> {
        let known = self.policy_of(clause).map(|p| p.contacts.as_slice()).unwrap_or(&[]);
        modality::roles_in(&clause.text)
            .into_iter()
            .map(|role| {
                if role.contains('(') {
                    return role;
                }
                match known.iter().find(|(key, _)| same_role(key, &role)) {
                    Some((_, name)) => format!("{role} ({name})"),
                    None => role,
                }
            })
            .collect()
    }
}

/// Whether a policy's contact-table role and a role named in a clause are the
/// same: equal ignoring case, or one is the other's initials ("DSL" for
/// "Designated Safeguarding Lead").
fn same_role(key: &str, role: &str) -> bool {
    let initials = |s: &str| -> String {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !matches!(w.to_lowercase().as_str(), "and" | "of" | "the" | "for"))
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase()
    };
    let is_acronym = |s: &str| s.len() >= 2 && s.chars().all(|c| c.is_ascii_uppercase());
    key.eq_ignore_ascii_case(role)
        || (is_acronym(role) && initials(key) == role)
        || (is_acronym(key) && initials(role) == key)
}

/// Sentences of a clause, with "I will …" statements run together in one
/// sentence ("…the terms of use I will not share…") split apart. A statement
/// after a comma ("As and when I feel it necessary, I will…") stays whole.
fn segments(text_: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sentence in text::sentences(text_) {
        let mut rest = sentence;
        loop {
            let cut = ["I will ", "I must ", "I understand "]
                .iter()
                .filter_map(|m| rest[1..].find(m).map(|p| p + 1))
                .filter(|&p| !rest[..p].trim_end().ends_with(','))
                .min();
            match cut {
                Some(p) => {
                    out.push(rest[..p].trim().to_owned());
                    rest = &rest[p..];
                }
                None => {
                    out.push(rest.trim().to_owned());
                    break;
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::policy_from_bytes;

    /// The shipped thesaurus: the engine is only as good as its vocabulary.
    const THESAURUS: &str = include_str!("../../config/thesaurus.toml");

    const NORTH: &str = "North School ICT Policy\nVersion: 3\n\nDevices\n\nDo\n\n- Lock your screen when you leave your desk.\n\nDon't\n\n- Use personal email addresses to contact parents.\n- Plug in a USB stick that has not been virus checked.\n\nSoftware\n\nSoftware must not be installed unless the IT Manager has approved it.\n";
    const SOUTH: &str =
        "South School ICT Policy\n\nEmail\n\n- Staff may use personal email addresses to contact parents.\n";

    fn engine() -> Engine {
        let policies = vec![
            policy_from_bytes("north", "north.txt", NORTH.as_bytes(), Some("2026-09-01")).unwrap(),
            policy_from_bytes("south", "south.txt", SOUTH.as_bytes(), Some("2026-09-01")).unwrap(),
        ];
        let thesaurus = Thesaurus::from_toml(THESAURUS).unwrap();
        Engine::new(
            policies,
            ClauseIndex::in_ram().unwrap(),
            thesaurus,
            Settings::default(),
            &mut |_, _| {},
        )
        .unwrap()
        .0
    }

    fn ask(e: &Engine, school: &str, q: &str) -> Answer {
        e.answer(q, &Asker { school, name: None }).unwrap()
    }

    /// The engine with sentence embeddings, when the model is installed
    /// (`POLICYBOT_MODEL_DIR`); with CI set a missing model fails the test.
    fn semantic_engine() -> Option<Engine> {
        let embedder = crate::embed::test_model()?;
        Some(engine().with_embedder(embedder, &mut |_, _| {}).unwrap().0)
    }

    #[test]
    fn with_embeddings_a_clause_in_other_words_is_suggested_and_the_agreed_one_answered() {
        let Some(e) = semantic_engine() else { return };
        // Every word of the clause: both rankings agree, so it is answered.
        let a = ask(&e, "north", "Can I use personal email addresses to contact parents?");
        assert_eq!(a.mode, Mode::Answer, "{a:?}");
        assert!(a.citations[0].text.contains("personal email"), "{a:?}");
        assert_eq!(a.verdict, Verdict::No);
        // None of the clause's words: meaning alone finds it, but is not
        // trusted with a verdict.
        let a = ask(&e, "north", "my laptop display should go dark when I walk off, right?");
        assert_eq!(a.mode, Mode::Suggest, "{a:?}");
        assert_eq!(a.verdict, Verdict::None);
        assert!(a.citations.iter().any(|c| c.text.contains("Lock your screen")), "{a:?}");
        assert!(a.reply.starts_with(crate::render::SUGGEST_HEADLINE), "{}", a.reply);
        // Nothing near: declined, no clause quoted.
        let a = ask(&e, "north", "What time does the kitchen serve lunch on Fridays?");
        assert_ne!(a.mode, Mode::Answer, "{a:?}");
    }

    #[test]
    fn the_leads_example_makes_its_clause_the_answer_to_a_paraphrase() {
        let Some(e) = semantic_engine() else { return };
        let question = "is it ok to put a new app on the class computer?";
        let software = e
            .policies()
            .iter()
            .flat_map(|p| &p.clauses)
            .find(|c| c.text.starts_with("Software must not be installed"))
            .unwrap()
            .id
            .clone();
        e.set_examples(vec![Example {
            school: "north".into(),
            clause_id: software.clone(),
            question: "Can I put a new app on the class computer?".into(),
        }]);
        let a = ask(&e, "north", question);
        assert_eq!(a.mode, Mode::Answer, "{a:?}");
        assert_eq!(a.citations[0].clause_id, software);
        // Another school's example never answers here.
        let a = ask(&e, "south", question);
        assert!(a.citations.iter().all(|c| c.school == "south"), "{a:?}");
    }

    #[test]
    fn answers_quote_the_clause_of_the_askers_school_only() {
        let e = engine();
        let north = ask(&e, "north", "Can I email parents from my personal email address?");
        assert!(north.answered);
        assert_eq!(north.verdict, Verdict::No, "a Don't item is a prohibition");
        assert_eq!(
            north.citations[0].text,
            "Use personal email addresses to contact parents."
        );
        assert!(north.citations.iter().all(|c| c.school == "north"));
        assert!(
            north
                .reply
                .contains("“Use personal email addresses to contact parents.”")
        );
        assert!(north.reply.contains("version 3"));
        let south = ask(&e, "south", "Can I email parents from my personal email address?");
        assert_eq!(south.citations[0].school, "south");
        assert_eq!(south.verdict, Verdict::Yes);
    }

    #[test]
    fn a_dont_item_is_quoted_under_its_head() {
        let e = engine();
        let north = ask(&e, "north", "Can I email parents from my personal email address?");
        let cited = &north.citations[0];
        assert_eq!(cited.list_head.as_deref(), Some("Don't"));
        assert_eq!(
            cited.text, "Use personal email addresses to contact parents.",
            "word for word"
        );
        assert!(
            north
                .reply
                .contains("\n\nUnder ‘Don't:’ — “Use personal email addresses to contact parents.”\n— "),
            "{}",
            north.reply
        );
        let html = render::html(&north);
        assert!(
            html.contains("<p>Under ‘Don&#39;t:’</p><blockquote>Use personal email addresses"),
            "{html}"
        );
        // An item of a Do list, or of no list, reads right alone.
        let south = ask(&e, "south", "Can I email parents from my personal email address?");
        assert_eq!(south.citations[0].list_head, None);
        assert!(!south.reply.contains("Under "), "{}", south.reply);
        let lock = ask(&e, "north", "Should I lock my screen when I leave my desk?");
        assert!(lock.citations[0].text.starts_with("Lock your screen"));
        assert_eq!(lock.citations[0].list_head, None);
    }

    #[test]
    fn a_clause_is_shown_with_its_neighbours_from_the_same_section() {
        let e = engine();
        let north = e.policies().iter().find(|p| p.school == "north").unwrap();
        let usb = north.clauses.iter().find(|c| c.text.contains("USB")).unwrap();
        let (policy, clauses, at) = e.section_around(&usb.id, 2).unwrap();
        assert_eq!(policy.title, north.title);
        let texts: Vec<&str> = clauses.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Use personal email addresses to contact parents.",
                "Plug in a USB stick that has not been virus checked."
            ],
            "the Don't list, not the Do list before it"
        );
        assert_eq!(at, 1);
        assert!(e.section_around("north/nope/0", 2).is_none());
    }

    #[test]
    fn conditions_make_a_conditional_verdict() {
        let e = engine();
        let a = ask(&e, "north", "Can I install some new software on my laptop?");
        assert!(a.answered);
        assert!(a.citations[0].text.starts_with("Software must not be installed unless"));
        assert_eq!(a.verdict, Verdict::Conditional);
    }

    #[test]
    fn thesaurus_finds_policy_words() {
        let e = engine();
        let a = ask(&e, "north", "Is it ok to plug in a memory stick a parent gave me?");
        assert!(a.answered, "{a:?}");
        assert!(a.citations[0].text.contains("USB stick"));
    }

    #[test]
    fn off_topic_questions_are_declined_plainly() {
        let e = engine();
        let a = ask(&e, "north", "Who do I ask about booking annual leave for a wedding?");
        assert!(!a.answered, "{a:?}");
        assert_eq!(a.verdict, Verdict::None);
        assert!(a.citations.is_empty());
        assert!(a.reply.starts_with("I couldn't find a clause"));
    }

    #[test]
    fn bad_questions_are_errors_or_answers_never_panics() {
        let e = engine();
        assert!(matches!(
            e.answer(
                "  ?! ",
                &Asker {
                    school: "north",
                    name: None
                }
            ),
            Err(AnswerError::EmptyQuestion)
        ));
        assert!(matches!(
            e.answer("Can I?", &Asker { school: "west", name: None }),
            Err(AnswerError::UnknownSchool(s)) if s == "west"
        ));
        let long = "can I use my personal email to contact parents ".repeat(250);
        assert!(long.len() > 10_000);
        let _ = ask(&e, "north", &long);
    }

    #[test]
    fn answers_are_deterministic() {
        let e = engine();
        let q = "Can I email parents from my personal email address?";
        let a = serde_json_like(&ask(&e, "north", q));
        let b = serde_json_like(&ask(&e, "north", q));
        assert_eq!(a, b);
    }

    fn serde_json_like(a: &Answer) -> String {
        format!(
            "{:?}",
            (
                a.answered,
                a.verdict,
                &a.reply,
                a.citations.iter().map(|c| &c.clause_id).collect::<Vec<_>>()
            )
        )
    }

    #[test]
    fn roles_match_their_initials() {
        assert!(same_role("Designated Safeguarding Lead", "DSL"));
        assert!(same_role("Data Protection Officer", "DPO"));
        assert!(same_role("online safety lead", "Online Safety Lead"));
        assert!(!same_role("Data Protection Officer", "DSL"));
    }

    #[test]
    fn segments_split_run_on_statements() {
        let s = segments("When using the wireless I will adhere to the terms I will not share my passwords.");
        assert_eq!(
            s,
            vec![
                "When using the wireless",
                "I will adhere to the terms",
                "I will not share my passwords."
            ]
        );
    }
}
