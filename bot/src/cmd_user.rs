//! `policybot user add NAME --role ROLE`: dashboard accounts for the e-safety
//! lead, the head, an inspector.

use std::io::BufRead;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::store::Store;
use crate::store::users::{self, Role};

pub fn add(config: &Config, name: &str, role: Role, school: Option<&str>) -> Result<()> {
    // Everything on the command line is checked before the password is
    // asked for (clap has checked the role).
    users::check_name(name).with_context(|| format!("user name {name:?}"))?;
    if let Some(s) = school {
        config.school(Some(s))?;
    }
    // The password comes on standard input, never on the command line where
    // other users of the machine could read it.
    eprintln!("password for {name} (at least 10 characters), then Enter:");
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password given on standard input");
    }
    let store = Store::open(&config.store)?;
    let user = store.add_user(name, role, school, password)?;
    println!(
        "added {} ({}{})",
        user.name,
        user.role,
        user.school
            .as_deref()
            .map(|s| format!(", school {s}"))
            .unwrap_or_default()
    );
    Ok(())
}
