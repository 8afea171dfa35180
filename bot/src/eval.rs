//! `policybot eval FILE --corpus DIR`: scores retrieval, declines and verdicts
//! exactly as `shared/eval/README.md` specifies.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use policybot_index::text::normalize;
use policybot_index::{Answer, Asker, ClauseIndex, Engine, Mode, Settings, Thesaurus};
use serde::{Deserialize, Serialize};

use crate::load;

#[derive(Debug, Deserialize)]
pub struct Item {
    pub id: String,
    pub question: String,
    pub policy: String,
    #[serde(default)]
    pub gold: Vec<String>,
    pub verdict: String,
    pub kind: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub questions: usize,
    pub answerable: usize,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub mrr: f64,
    pub out_of_scope_declined: f64,
    /// Answerable questions in mode decline only: a suggestion is not a decline.
    pub answerable_declined: f64,
    /// Answerable questions answered (mode answer) with the gold verdict.
    pub verdict_accuracy: f64,
    /// Answerable questions answered (mode answer) whose first citation misses:
    /// the failure that misleads, so it is reported on its own.
    pub confident_wrong: f64,
    /// Answerable questions in mode suggest.
    pub suggested: f64,
    /// Out-of-scope questions answered (mode answer).
    pub out_of_scope_confident: f64,
}

#[derive(Debug, Serialize)]
pub struct CitedClause {
    pub clause: String,
    pub policy: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct ItemResult {
    pub id: String,
    pub mode: Mode,
    /// `mode == Mode::Answer`; kept because the evaluation README specifies it.
    pub answered: bool,
    pub verdict: String,
    pub citations: Vec<CitedClause>,
    /// Why it scored as it did; in the JSON only with `--diagnostics`, so the
    /// default output is exactly what the evaluation README specifies.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    /// Rank (from 1) of the first citation containing a gold substring.
    pub hit_rank: Option<usize>,
    pub confidence: f32,
    pub support: f32,
    pub concepts_matched: usize,
    pub concepts: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub results: Vec<ItemResult>,
}

pub fn load_items(file: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let items: Vec<Item> =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {} as a list of questions", file.display()))?;
    Ok(items)
}

/// The school a question is asked for: its corpus file's name without the extension.
fn school_of(item: &Item) -> &str {
    item.policy
        .rsplit_once('.')
        .map_or(item.policy.as_str(), |(stem, _)| stem)
}

pub fn engine_for_corpus(dir: &Path, thesaurus: Thesaurus, settings: Settings) -> Result<Engine> {
    let sources = load::corpus_sources(dir)?;
    let read = load::read_sources(&sources);
    for e in &read.errors {
        eprintln!("{e}");
    }
    let (engine, _) = load::engine(read.policies, ClauseIndex::in_ram()?, thesaurus, settings)?;
    Ok(engine)
}

pub fn run(engine: &Engine, items: &[Item]) -> Result<Report> {
    let mut results = Vec::new();
    let (mut hits1, mut hits3, mut rr, mut verdict_ok, mut declined_answerable) = (0, 0, 0.0, 0, 0);
    let (mut oos, mut oos_declined, mut oos_confident, mut answerable) = (0, 0, 0, 0);
    let (mut confident_wrong, mut suggested) = (0, 0);
    let schools: BTreeSet<&str> = items.iter().map(school_of).collect();
    for school in schools {
        if !engine.has_school(school) {
            bail!("the corpus has no policy for school '{school}'");
        }
    }
    for item in items {
        let answer: Answer = engine
            .answer(
                &item.question,
                &Asker {
                    school: school_of(item),
                    name: None,
                },
            )
            .with_context(|| format!("question {}", item.id))?;
        let gold: Vec<String> = item.gold.iter().map(|g| normalize(g)).collect();
        // Citations count for recall whether answered or suggested: the
        // person sees them either way. A decline carries none.
        let hit_rank = answer
            .citations
            .iter()
            .position(|c| {
                let text = normalize(&c.text);
                gold.iter().any(|g| text.contains(g.as_str()))
            })
            .map(|p| p + 1)
            .filter(|_| answer.mode != Mode::Decline);
        let confident = answer.mode == Mode::Answer;
        if item.kind == "out_of_scope" {
            oos += 1;
            oos_declined += usize::from(!confident);
            oos_confident += usize::from(confident);
        } else {
            answerable += 1;
            declined_answerable += usize::from(answer.mode == Mode::Decline);
            suggested += usize::from(answer.mode == Mode::Suggest);
            confident_wrong += usize::from(confident && hit_rank != Some(1));
            hits1 += usize::from(hit_rank == Some(1));
            hits3 += usize::from(hit_rank.is_some_and(|r| r <= 3));
            rr += hit_rank.map_or(0.0, |r| 1.0 / r as f64);
            verdict_ok += usize::from(confident && answer.verdict.as_str() == item.verdict);
        }
        results.push(ItemResult {
            id: item.id.clone(),
            mode: answer.mode,
            answered: answer.mode == Mode::Answer,
            verdict: answer.verdict.as_str().to_owned(),
            citations: answer
                .citations
                .iter()
                .map(|c| CitedClause {
                    clause: c.clause_id.clone(),
                    policy: c.school.clone(),
                    text: c.text.clone(),
                })
                .collect(),
            diagnostics: Some(Diagnostics {
                hit_rank,
                confidence: answer.confidence,
                support: answer.support,
                concepts_matched: answer.concepts_matched,
                concepts: answer.concepts,
            }),
        });
    }
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { round(n as f64 / d as f64) };
    let summary = Summary {
        questions: items.len(),
        answerable,
        recall_at_1: share(hits1, answerable),
        recall_at_3: share(hits3, answerable),
        mrr: if answerable == 0 {
            0.0
        } else {
            round(rr / answerable as f64)
        },
        out_of_scope_declined: share(oos_declined, oos),
        answerable_declined: share(declined_answerable, answerable),
        verdict_accuracy: share(verdict_ok, answerable),
        confident_wrong: share(confident_wrong, answerable),
        suggested: share(suggested, answerable),
        out_of_scope_confident: share(oos_confident, oos),
    };
    Ok(Report { summary, results })
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Prints the engine's reasoning for one question of the file.
pub fn explain(engine: &Engine, items: &[Item], id: &str) -> Result<()> {
    let item = items
        .iter()
        .find(|i| i.id == id)
        .with_context(|| format!("no question {id}"))?;
    println!(
        "{} [{} {}] gold: {:?}",
        item.question, item.kind, item.verdict, item.gold
    );
    print!(
        "{}",
        engine.explain(
            &item.question,
            &Asker {
                school: school_of(item),
                name: None
            },
            8
        )?
    );
    Ok(())
}

/// Human-readable report: the figures, then every question that missed.
pub fn print(report: &Report, items: &[Item]) {
    let s = &report.summary;
    println!("questions {}  answerable {}", s.questions, s.answerable);
    println!(
        "recall@1 {:.3}  recall@3 {:.3}  mrr {:.3}",
        s.recall_at_1, s.recall_at_3, s.mrr
    );
    println!(
        "answerable: declined {:.3}  suggested {:.3}  confident wrong {:.3}  verdict accuracy {:.3}",
        s.answerable_declined, s.suggested, s.confident_wrong, s.verdict_accuracy
    );
    println!(
        "out of scope: declined or suggested {:.3}  answered confidently {:.3}",
        s.out_of_scope_declined, s.out_of_scope_confident
    );
    for (item, r) in items.iter().zip(&report.results) {
        let (hit_rank, confidence) = r
            .diagnostics
            .as_ref()
            .map_or((None, 0.0), |d| (d.hit_rank, d.confidence));
        let ok = if item.kind == "out_of_scope" {
            r.mode != Mode::Answer
        } else {
            r.mode == Mode::Answer && hit_rank == Some(1) && r.verdict == item.verdict
        };
        if ok {
            continue;
        }
        println!(
            "\n{} [{}] expected {} got {} {} (hit {hit_rank:?}, conf {confidence:.2}): {}",
            item.id,
            item.kind,
            item.verdict,
            r.mode.as_str(),
            r.verdict,
            item.question.replace('\n', " ")
        );
        for c in r.citations.iter().take(3) {
            println!("   -> {}", c.text.chars().take(150).collect::<String>());
        }
    }
}
