//! The tantivy index of clauses: persisted in a directory, kept in step with
//! the policy files incrementally, and searched with weighted fields.
//!
//! Each policy file contributes its clause documents plus one *manifest*
//! document holding a fingerprint of the file (content hash, school, parser
//! version). On [`ClauseIndex::sync`] a file whose fingerprint is unchanged is
//! left alone; a changed file has its documents replaced; a vanished file's
//! documents are deleted.

use std::collections::HashMap;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use crate::clause::Policy;
use crate::query::{self, Concept, TOKENIZER};

/// Bump when parsing or the schema changes, so existing indexes rebuild.
pub const FORMAT_VERSION: u32 = 1;

/// How much a match in each field counts, relative to the clause text.
pub const HEADING_BOOST: f32 = 0.5;
pub const CONTEXT_BOOST: f32 = 0.35;
pub const TITLE_BOOST: f32 = 0.15;

// Each message carries the text of the error inside it, which is therefore
// not also a `source`: a chain printed cause by cause would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index: {0}")]
    Tantivy(tantivy::TantivyError),
    #[error("index directory {path}: {error}")]
    Dir { path: String, error: std::io::Error },
    #[error("index directory {path}: {message}")]
    Open { path: String, message: String },
}

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError::Tantivy(e)
    }
}

#[derive(Clone, Copy)]
struct Fields {
    kind: Field,
    id: Field,
    school: Field,
    source: Field,
    fingerprint: Field,
    text: Field,
    heading: Field,
    context: Field,
    title: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let analysed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        kind: b.add_text_field("kind", STRING),
        id: b.add_text_field("id", STRING | STORED),
        school: b.add_text_field("school", STRING),
        source: b.add_text_field("source", STRING | STORED),
        fingerprint: b.add_text_field("fingerprint", STRING | STORED),
        text: b.add_text_field("text", analysed.clone()),
        heading: b.add_text_field("heading", analysed.clone()),
        context: b.add_text_field("context", analysed.clone()),
        title: b.add_text_field("title", analysed),
    };
    (b.build(), fields)
}

/// What a sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub unchanged: usize,
    pub reindexed: usize,
    pub removed: usize,
    pub clauses_written: usize,
}

pub struct ClauseIndex {
    /// Where the index lives (None in memory); clause vectors are kept beside it.
    dir: Option<std::path::PathBuf>,
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl ClauseIndex {
    /// Opens the index in `dir`, creating it if needed. An index written by an
    /// incompatible version is wiped and rebuilt on the next sync.
    pub fn open_in_dir(dir: &Path) -> Result<Self, IndexError> {
        let path = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|error| IndexError::Dir {
            path: path.clone(),
            error,
        })?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(|e| IndexError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(message)) => {
                return Err(IndexError::Open {
                    path,
                    message: format!("written by another version ({message}); delete the directory to rebuild"),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut opened = Self::with_index(index, fields)?;
        opened.dir = Some(dir.to_path_buf());
        Ok(opened)
    }

    /// The directory the index lives in; None for one in memory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// An index in memory, for tests, the evaluator and benchmarks.
    pub fn in_ram() -> Result<Self, IndexError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self, IndexError> {
        index.tokenizers().register(TOKENIZER, query::analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(ClauseIndex {
            dir: None,
            index,
            reader,
            fields,
        })
    }

    /// What the index holds for a policy file. It covers the parsed clause
    /// ids as well as the file's bytes, so a newer parser that cuts the same
    /// file differently re-indexes it instead of leaving stale ids behind.
    fn fingerprint(policy: &Policy) -> String {
        let ids: Vec<&str> = policy.clauses.iter().map(|c| c.id.as_str()).collect();
        let clauses = crate::parse::hex_hash(ids.join("\n").as_bytes(), 16);
        format!("v{FORMAT_VERSION}:{}:{}:{clauses}", policy.school, policy.content_hash)
    }

    fn manifest(&self) -> Result<HashMap<String, String>, IndexError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.kind, "manifest"),
            IndexRecordOption::Basic,
        );
        let n = (searcher.num_docs() as usize).max(1);
        let mut out = HashMap::new();
        for (_, addr) in searcher.search(&q, &TopDocs::with_limit(n).order_by_score())? {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get = |f| doc.get_first(f).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            out.insert(get(self.fields.source), get(self.fields.fingerprint));
        }
        Ok(out)
    }

    /// Brings the index in step with `policies`. `progress(done, total)` is
    /// called as policies are written.
    pub fn sync(
        &mut self,
        policies: &[Policy],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<SyncReport, IndexError> {
        let indexed = self.manifest()?;
        let mut report = SyncReport::default();
        let changed: Vec<&Policy> = policies
            .iter()
            .filter(|p| indexed.get(&source_key(p)).is_none_or(|fp| *fp != Self::fingerprint(p)))
            .collect();
        let wanted: std::collections::HashSet<String> = policies.iter().map(source_key).collect();
        let stale: Vec<&String> = indexed.keys().filter(|k| !wanted.contains(*k)).collect();
        report.unchanged = policies.len() - changed.len();
        if changed.is_empty() && stale.is_empty() {
            return Ok(report);
        }
        let total_clauses: usize = changed.iter().map(|p| p.clauses.len()).sum();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let mut writer: IndexWriter = self
            .index
            .writer_with_num_threads(threads, 64 * 1024 * 1024 * threads)?;
        let f = self.fields;
        for key in stale {
            writer.delete_term(Term::from_field_text(f.source, key));
            report.removed += 1;
        }
        let mut done = 0;
        for policy in changed {
            let key = source_key(policy);
            writer.delete_term(Term::from_field_text(f.source, &key));
            for c in &policy.clauses {
                let mut doc = TantivyDocument::default();
                doc.add_text(f.kind, "clause");
                doc.add_text(f.id, &c.id);
                doc.add_text(f.school, &c.school);
                doc.add_text(f.source, &key);
                doc.add_text(f.text, &c.text);
                doc.add_text(f.heading, c.heading_path.join(" \n "));
                if !c.context.is_empty() {
                    doc.add_text(f.context, &c.context);
                }
                doc.add_text(f.title, &c.policy_title);
                writer.add_document(doc)?;
                done += 1;
                if done % 4096 == 0 {
                    progress(done, total_clauses);
                }
            }
            let mut manifest = TantivyDocument::default();
            manifest.add_text(f.kind, "manifest");
            manifest.add_text(f.source, &key);
            manifest.add_text(f.fingerprint, Self::fingerprint(policy));
            writer.add_document(manifest)?;
            report.reindexed += 1;
        }
        report.clauses_written = done;
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        progress(done, total_clauses);
        Ok(report)
    }

    /// Number of clause documents (the N of inverse document frequency).
    pub fn clause_count(&self) -> u64 {
        let searcher = self.reader.searcher();
        searcher
            .doc_freq(&Term::from_field_text(self.fields.kind, "clause"))
            .unwrap_or(0)
    }

    /// How many clauses contain `stem` in their text.
    pub fn doc_freq(&self, stem: &str) -> u64 {
        self.reader
            .searcher()
            .doc_freq(&Term::from_field_text(self.fields.text, stem))
            .unwrap_or(0)
    }

    /// Up to `limit` clause ids of `school` by weighted BM25 over the concepts'
    /// stems, best first.
    pub fn candidates(
        &self,
        school: &str,
        concepts: &[Concept],
        limit: usize,
    ) -> Result<Vec<(String, f32)>, IndexError> {
        let f = self.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for concept in concepts {
            for alt in &concept.alternatives {
                let per_stem = alt.weight / alt.stems.len() as f32;
                for stem in &alt.stems {
                    for (field, boost) in [
                        (f.text, 1.0),
                        (f.heading, HEADING_BOOST),
                        (f.context, CONTEXT_BOOST),
                        (f.title, TITLE_BOOST),
                    ] {
                        let tq = TermQuery::new(Term::from_field_text(field, stem), IndexRecordOption::WithFreqs);
                        should.push((Occur::Should, Box::new(BoostQuery::new(Box::new(tq), boost * per_stem))));
                    }
                }
            }
        }
        if should.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let school_q = TermQuery::new(Term::from_field_text(f.school, school), IndexRecordOption::Basic);
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BoostQuery::new(Box::new(school_q), 0.0)) as Box<dyn Query>,
            ),
            (Occur::Must, Box::new(BooleanQuery::new(should))),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) {
                out.push((id.to_owned(), score));
            }
        }
        Ok(out)
    }
}

fn source_key(policy: &Policy) -> String {
    format!("{}\u{1}{}", policy.school, policy.source)
}
