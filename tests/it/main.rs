//! End-to-end tests: the real `policybot` binary, run as staff and policy
//! authors would run it, against temporary configs and policy folders. Nothing
//! here writes into the repository.

mod support;

mod audit;
mod bad_input;
mod cli;
mod eval;
mod index;
