//! `policybot` as a library: the service, its store, channels and pages. The
//! `policybot` binary (`main.rs`) only parses arguments and dispatches here;
//! the fuzz targets (`fuzz/`) reach the parsers that read untrusted input
//! through it.

// matrix-sdk's futures are deep: proving a spawned sync task is Send needs
// more than the default limit.
#![recursion_limit = "256"]

pub mod backoff;
pub mod bench;
pub mod bench_audit;
pub mod bench_campaign;
pub mod bench_dashboard;
pub mod bench_email;
pub mod bench_embed;
pub mod bench_import;
pub mod bench_matrix;
pub mod campaigns;
pub mod cmd_ask;
pub mod cmd_audit;
pub mod cmd_clauses;
pub mod cmd_index;
pub mod cmd_model;
pub mod cmd_nudge;
pub mod cmd_policy;
pub mod cmd_serve;
pub mod cmd_user;
pub mod commands;
pub mod config;
pub mod conversation;
pub mod dashboard;
pub mod directory;
pub mod email;
pub mod eval;
pub mod failpoint;
pub mod load;
pub mod matrix;
pub mod model;
pub mod nudge;
pub mod schedule;
pub mod service;
pub mod store;
pub mod watch;
