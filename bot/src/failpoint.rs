//! Crash points for the exactly-once tests: with `POLICYBOT_FAILPOINT` set
//! to a point's name, the process aborts there, at the worst moment for a
//! send (the server took the message, the store has not recorded it).

/// The email channel took a reply and recorded it, before the question is
/// flagged as answered.
pub const EMAIL_AFTER_SEND: &str = "email-after-send";

/// A channel's server took a nudge, before it is recorded as sent.
pub const NUDGE_AFTER_SEND: &str = "nudge-after-send";

/// Aborts the process if the failpoint `name` is set.
pub fn check(name: &str) {
    if std::env::var("POLICYBOT_FAILPOINT").as_deref() == Ok(name) {
        eprintln!("policybot: failpoint {name}: aborting");
        std::process::abort();
    }
}
