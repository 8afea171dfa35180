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
            None => json!({ "answered": false, "verdict": "none", "citations": [], "reply": exchange.reply }),
        };
        out["event"] = json!(exchange.event);
        out["outcome"] = json!(exchange.kind);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", exchange.reply);
    }
    Ok(())
}
