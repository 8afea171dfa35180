//! End-to-end tests: the real `policybot` binary, run as staff and policy
//! authors would run it, against temporary configs and policy folders. Nothing
//! here writes into the repository, except the dashboard test's screenshots
//! when POLICYBOT_SCREENSHOTS is set.

// matrix-sdk's futures are deep: proving the staff client's sync task is Send
// needs more than the default limit.
#![recursion_limit = "256"]

mod support;

mod audit;
mod bad_input;
mod cli;
mod dashboard;
mod documents;
mod email;
mod eval;
mod index;
mod mailserver;
mod matrix;
mod model;
mod serve;
mod synapse;
mod teach;
mod versions;
