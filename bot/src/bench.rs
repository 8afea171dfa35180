//! `policybot bench`: generated corpus, index build throughput, answer latency.

use anyhow::Result;

pub fn run(_clauses: usize, _questions: usize, _json: bool) -> Result<()> {
    anyhow::bail!("bench: not yet")
}
