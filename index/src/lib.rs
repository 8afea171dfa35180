//! policybot's core: policies into clauses, the clause index, ranking,
//! verdicts and answer rendering. No I/O beyond reading policy files and the
//! index directory; the `policybot` binary does everything else.

pub mod clause;
pub mod modality;
pub mod parse;
pub mod text;

pub use clause::{Clause, Modality, Policy};
pub use parse::{PolicySource, parse_policy};
pub mod corpus;
pub mod diff;
pub mod docx;
pub mod embed;
pub mod engine;
pub mod pdf;
pub mod query;
pub mod rank;
pub mod render;
pub mod search;
pub mod thesaurus;
pub mod vectors;
pub mod verdict;

pub use engine::{Answer, AnswerError, Asker, Citation, Engine, Example, Mode, Settings};
pub use search::{ClauseIndex, IndexError, SyncReport};
pub use thesaurus::Thesaurus;
pub use verdict::Verdict;
