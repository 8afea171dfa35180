//! `policybot ask "question"`: one question, answered as a member of staff.

use anyhow::{Result, bail};
use policybot_index::Asker;

use crate::config::Config;
use crate::load;

pub fn run(config: &Config, question: &str, school: Option<&str>, json: bool) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty: ask something like \"Can I use WhatsApp to message parents on a trip?\"");
    }
    let school = config.school(school)?;
    let (engine, read, _) = load::from_config(config)?;
    for problem in read.errors.iter().chain(&read.warnings) {
        eprintln!("{problem}");
    }
    let answer = engine.answer(
        question,
        &Asker {
            school: &school.id,
            name: None,
        },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{}", answer.reply);
    }
    Ok(())
}
