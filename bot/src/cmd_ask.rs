//! `policybot ask "question"`: one question, answered as a member of staff
//! and recorded in the audit log like any other.

use anyhow::{Result, bail};
use serde_json::json;

use crate::config::Config;
use crate::load;
use crate::service::{Channel, Who};

pub fn run(config: &Config, question: &str, school: Option<&str>, asker: Option<&str>, json: bool) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty: ask something like \"Can I use WhatsApp to message parents on a trip?\"");
    }
    let school = config.school(school)?;
    let (service, status, _) = load::service(config)?;
    for problem in status.problems() {
        eprintln!("{problem}");
    }
    // One question from the command line still answers: the person asking
    // is at the machine and is told, and `serve` (which answers everyone)
    // refuses to start on such a log. Only the guards are checked: the full
    // chain check reads every event.
    let guards = service.store().guard_problems()?;
    if !guards.is_empty() {
        eprintln!(
            "warning: the audit log's guard triggers are not in place ({}): run `policybot audit verify`, then `policybot audit guard`",
            guards.join("; ")
        );
    }
    // `--as` asks as someone on the staff list, the way a channel would.
    let who = match asker {
        Some(id) if id.starts_with('@') => Who::Matrix(id),
        Some(address) => Who::Email(address),
        None => Who::Local {
            school: &school.id,
            asker: "local",
        },
    };
    let exchange = service.answer(question, &who, Channel::Cli, "")?;
    if json {
        let mut out = match &exchange.answer {
            Some(answer) => serde_json::to_value(answer)?,
            // Refused, or an empty question: nothing was quoted.
            None => {
                json!({ "mode": "decline", "answered": false, "verdict": "none", "citations": [], "reply": exchange.reply })
            }
        };
        out["event"] = json!(exchange.event);
        out["outcome"] = json!(exchange.kind);
        out["empty"] = json!(exchange.empty);
        if let Some(chars) = exchange.cut {
            out["cut"] = json!({ "chars": chars, "kept": policybot_index::engine::MAX_QUESTION_CHARS });
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", exchange.reply);
        // On stderr, so the reply alone is what a script reads.
        eprintln!(
            "(recorded as audit event {}{})",
            exchange.event,
            if exchange.empty { ", an empty question" } else { "" }
        );
    }
    Ok(())
}
