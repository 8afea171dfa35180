//! End-to-end tests: the real `policybot` binary, run as staff and policy
//! authors would run it, against temporary configs and policy folders. Nothing
//! here writes into the repository, except the dashboard test's screenshots
//! when POLICYBOT_SCREENSHOTS is set.

mod support;

mod audit;
mod bad_input;
mod cli;
mod dashboard;
mod eval;
mod index;
mod serve;
