//! `policybot nudge` and `policybot acks`: who still has to acknowledge which
//! policy version, a campaign of nudges to ask them, and the ledger of who
//! did.

use anyhow::{Result, bail};

use crate::config::Config;
use crate::load;
use crate::nudge;
use crate::store::Store;

pub fn nudge(config: &Config, dry_run: bool, now: bool, school: Option<&str>, json: bool) -> Result<()> {
    if dry_run == now {
        bail!("say --dry-run (who would be nudged, and why) or --now (plan the nudges; `serve` sends them)");
    }
    let store = Store::open(&config.store)?;
    // The versions staff must acknowledge are the ones on disk now.
    let (_, status) = load::live_policies(config, &store, &[])?;
    for problem in status.problems() {
        eprintln!("{problem}");
    }
    let school = school
        .map(|s| config.school(Some(s)).map(|s| s.id.clone()))
        .transpose()?;
    let directory = config.directory()?;
    let due = nudge::due(config, &directory, &store, school.as_deref())?;
    let (reachable, unreachable): (Vec<_>, Vec<_>) = due.iter().partition(|d| d.nudge.channel != "none");
    let (pending, to_plan): (Vec<_>, Vec<_>) = reachable.into_iter().partition(|d| d.pending);
    if dry_run {
        if json {
            println!("{}", serde_json::to_string_pretty(&due)?);
            return Ok(());
        }
        for d in &to_plan {
            println!(
                "{} <{}> by {}: {} — {} (nudge {})",
                d.name, d.nudge.address, d.nudge.channel, d.title, d.why, d.nudge.attempt
            );
        }
        for d in &pending {
            println!("{}: {} — a nudge is already waiting to be sent", d.name, d.title);
        }
        for d in &unreachable {
            println!(
                "{}: {} — {}, but cannot be reached: no channel the bot runs ([email], [matrix]) has an address for them",
                d.name, d.title, d.why
            );
        }
        println!(
            "{} nudge(s) would be planned; {} already waiting; {} cannot be reached",
            to_plan.len(),
            pending.len(),
            unreachable.len()
        );
        return Ok(());
    }
    let planned = nudge::plan(config, &directory, &store, school.as_deref(), None, "now", None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&planned)?);
    } else {
        match planned.campaign {
            Some(id) => println!(
                "campaign {id}: {} nudge(s) planned; `policybot serve` sends them ({} per minute)",
                planned.planned, config.acknowledgements.nudges_per_minute
            ),
            None => println!("nobody to nudge: everyone has acknowledged, or a nudge is already waiting"),
        }
        if planned.unreachable > 0 {
            println!(
                "{} cannot be reached (no email address or Matrix id the bot can use)",
                planned.unreachable
            );
        }
    }
    Ok(())
}

pub fn acks(config: &Config, school: Option<&str>, policy: Option<&str>, csv: bool, json: bool) -> Result<()> {
    let store = Store::open(&config.store)?;
    let school = school
        .map(|s| config.school(Some(s)).map(|s| s.id.clone()))
        .transpose()?;
    let policy = match (&school, policy) {
        (Some(school), Some(p)) => Some(crate::cmd_policy::resolve(&store, school, p)?),
        (None, Some(p)) => Some(p.to_owned()),
        _ => None,
    };
    let directory = config.directory()?;
    let name = |id: &str| {
        directory
            .by_id(id)
            .map_or_else(|| format!("{id} (not on the staff list now)"), |m| m.name.clone())
    };
    let ledger = store.acknowledgements(school.as_deref(), policy.as_deref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&ledger)?);
    } else if csv {
        let mut out = csv::Writer::from_writer(std::io::stdout());
        out.write_record(["name", "staff", "school", "policy", "version", "at", "how"])?;
        for a in &ledger {
            out.write_record([
                &name(&a.staff),
                &a.staff,
                &a.school,
                &a.policy,
                &a.version,
                &a.at,
                &a.how,
            ])?;
        }
        out.flush()?;
    } else {
        for a in &ledger {
            println!(
                "{}  {}  {} version {}  by {}",
                a.at,
                name(&a.staff),
                a.policy,
                a.version,
                a.how
            );
        }
        println!("{} acknowledgement(s)", ledger.len());
    }
    Ok(())
}

/// The digest the e-safety lead is mailed at each scheduled campaign;
/// with `mail`, mailed to `digest_to` now.
pub fn digest(config: &Config, mail: bool) -> Result<()> {
    let (service, status, _) = load::service(config)?;
    for problem in status.problems() {
        eprintln!("{problem}");
    }
    if !mail {
        print!("{}", crate::campaigns::digest(config, &service)?.0);
        return Ok(());
    }
    if config.email.is_none() || config.acknowledgements.digest_to.is_empty() {
        bail!("mailing the digest needs [email] and [acknowledgements] digest_to");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let slot = format!("asked {}", crate::store::audit::now());
    let sent = crate::campaigns::send_digest(config, &service, &slot, runtime.handle())?;
    println!("digest mailed to {}", sent.join(", "));
    Ok(())
}
