//! Which mails the bot must not answer, decided from headers alone (RFC 3834:
//! never answer a machine), and whether the sender is who the From line says.
//! Pure functions, so every rule is tested without a mail server.

use std::fmt;

use super::mail::Mail;

/// Why a mail gets no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// No usable From address.
    NoSender,
    /// From the bot's own address.
    OwnAddress,
    /// `Auto-Submitted` other than `no` (auto-replies, out-of-office).
    AutoSubmitted(String),
    /// `Precedence: bulk`, `list` or `junk`.
    Precedence(String),
    /// A mailing list (`List-Id`, `List-Unsubscribe`…).
    MailingList,
    /// `X-Loop` names the bot: its own reply came back.
    Loop,
    /// A bounce or a robot's address (mailer-daemon, postmaster, no-reply…).
    AutomatedSender(String),
    /// An empty Return-Path (`<>`): a bounce or a notification.
    NullReturnPath,
    /// The bot's own mail server did not vouch for the From domain.
    NotAuthenticated(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NoSender => write!(f, "no sender address"),
            Skip::OwnAddress => write!(f, "sent from the bot's own address"),
            Skip::AutoSubmitted(v) => write!(f, "automatic mail (Auto-Submitted: {v})"),
            Skip::Precedence(v) => write!(f, "bulk mail (Precedence: {v})"),
            Skip::MailingList => write!(f, "mailing-list mail"),
            Skip::Loop => write!(f, "a mail loop (X-Loop names the bot)"),
            Skip::AutomatedSender(a) => write!(f, "automated sender {a}"),
            Skip::NullReturnPath => write!(f, "empty Return-Path (a bounce or notification)"),
            Skip::NotAuthenticated(why) => write!(f, "sender not authenticated: {why}"),
        }
    }
}

/// What the checks need from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The bot's own address, lower-case.
    pub own_address: String,
    /// The authserv-id of the school's own mail server, lower-case.
    pub trusted_authserv_id: Option<String>,
}

/// Local parts that belong to robots, never to a member of staff.
const ROBOT_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "bounce",
    "bounces",
    "listserv",
    "majordomo",
];

const LIST_HEADERS: &[&str] = &[
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-owner",
    "list-archive",
];

/// The first reason not to answer `mail`, if there is one.
pub fn screen(mail: &Mail, rules: &Rules) -> Result<(), Skip> {
    let Some(from) = mail.from.as_deref().filter(|a| a.contains('@')) else {
        return Err(Skip::NoSender);
    };
    if from == rules.own_address {
        return Err(Skip::OwnAddress);
    }
    if mail
        .header_values("x-loop")
        .any(|v| v.to_lowercase().contains(&rules.own_address))
    {
        return Err(Skip::Loop);
    }
    if let Some(v) = mail
        .header_values("auto-submitted")
        .map(token)
        .find(|v| v.as_str() != "no")
    {
        return Err(Skip::AutoSubmitted(v));
    }
    // Microsoft's and others' own marks of an automatic reply.
    if mail.header_values("x-auto-response-suppress").any(|v| {
        let v = v.to_lowercase();
        v.contains("all") || v.contains("autoreply") || v.contains("oof")
    }) || mail.header_values("x-autoreply").next().is_some()
        || mail.header_values("x-autorespond").next().is_some()
    {
        return Err(Skip::AutoSubmitted("an auto-reply header".into()));
    }
    if let Some(v) = mail
        .header_values("precedence")
        .map(token)
        .find(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
    {
        return Err(Skip::Precedence(v));
    }
    if LIST_HEADERS.iter().any(|h| mail.header_values(h).next().is_some()) {
        return Err(Skip::MailingList);
    }
    let local = from.split('@').next().unwrap_or_default();
    if ROBOT_LOCAL_PARTS.contains(&local) || local.starts_with("owner-") || local.ends_with("-request") {
        return Err(Skip::AutomatedSender(from.to_owned()));
    }
    if mail.header_values("return-path").any(|v| {
        v.trim_matches(|c: char| c.is_whitespace() || c == '<' || c == '>')
            .is_empty()
    }) {
        return Err(Skip::NullReturnPath);
    }
    if let Some(server) = &rules.trusted_authserv_id {
        authenticated(mail, from, server).map_err(Skip::NotAuthenticated)?;
    }
    Ok(())
}

/// The first word of a header value, lower-case ("auto-replied; by=…" →
/// "auto-replied").
fn token(value: &str) -> String {
    value
        .split([';', '(', ' ', '\t'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// Whether the school's own server (`server`, its authserv-id) vouched for
/// the From address: DMARC passed, or DKIM or SPF passed for the From
/// domain. Authentication-Results written by any other server are ignored
/// (anyone can write one); the school's server removes forged ones carrying
/// its own id (RFC 8601 §5).
fn authenticated(mail: &Mail, from: &str, server: &str) -> Result<(), String> {
    let domain = from.rsplit('@').next().unwrap_or_default();
    let mut seen = false;
    for header in mail.header_values("authentication-results") {
        let results = AuthResults::parse(header);
        if results.authserv_id != server {
            continue;
        }
        seen = true;
        if results.vouches_for(domain) {
            return Ok(());
        }
    }
    Err(if seen {
        format!("{server} did not pass DMARC, DKIM or SPF for {domain}")
    } else {
        format!("no Authentication-Results from {server}")
    })
}

/// One Authentication-Results header (RFC 8601), as far as trust needs it.
#[derive(Debug)]
struct AuthResults {
    authserv_id: String,
    results: Vec<MethodResult>,
}

/// `dkim=pass header.d=oakfield.example`: a method, its result, and its
/// properties.
#[derive(Debug)]
struct MethodResult {
    method: String,
    result: String,
    properties: Vec<(String, String)>,
}

impl AuthResults {
    fn parse(header: &str) -> AuthResults {
        let text = without_comments(header).to_lowercase();
        let mut parts = text.split(';');
        let authserv_id = parts
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let results = parts
            .filter_map(|part| {
                let mut words = part.split_whitespace();
                let (method, result) = words.next()?.split_once('=')?;
                let properties = words
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect();
                Some(MethodResult {
                    method: method.to_owned(),
                    result: result.to_owned(),
                    properties,
                })
            })
            .collect();
        AuthResults { authserv_id, results }
    }

    fn vouches_for(&self, domain: &str) -> bool {
        let aligned = |value: &str| {
            let d = value.rsplit('@').next().unwrap_or(value);
            d == domain || domain.ends_with(&format!(".{d}")) || d.ends_with(&format!(".{domain}"))
        };
        self.results.iter().any(|r| {
            let prop = |key: &str| r.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            r.result == "pass"
                && match r.method.as_str() {
                    "dmarc" => prop("header.from").is_none_or(aligned),
                    "dkim" => prop("header.d").or(prop("header.i")).is_some_and(aligned),
                    "spf" => prop("smtp.mailfrom").is_some_and(aligned),
                    _ => false,
                }
        })
    }
}

/// The header without (comments), which may hold anything.
fn without_comments(text: &str) -> String {
    let mut depth = 0usize;
    text.chars()
        .filter(|&c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(trusted: Option<&str>) -> Rules {
        Rules {
            own_address: "policy@oakfield.example".into(),
            trusted_authserv_id: trusted.map(str::to_owned),
        }
    }

    fn mail(from: &str, headers: &[(&str, &str)]) -> Mail {
        Mail {
            from: Some(from.into()),
            headers: headers.iter().map(|(n, v)| (n.to_lowercase(), (*v).into())).collect(),
            ..Mail::default()
        }
    }

    #[test]
    fn people_are_answered_and_machines_are_not() {
        let r = rules(None);
        let staff = "a.shah@oakfield.example";
        assert_eq!(screen(&mail(staff, &[("Auto-Submitted", "no")]), &r), Ok(()));
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Skip);
        let cases: &[Case<'_>] = &[
            ("policy@oakfield.example", &[], Skip::OwnAddress),
            (
                staff,
                &[("Auto-Submitted", "auto-replied (vacation)")],
                Skip::AutoSubmitted("auto-replied".into()),
            ),
            (staff, &[("Precedence", "bulk")], Skip::Precedence("bulk".into())),
            (staff, &[("List-Id", "<staff.oakfield.example>")], Skip::MailingList),
            (staff, &[("X-Loop", "policy@oakfield.example")], Skip::Loop),
            (staff, &[("Return-Path", "<>")], Skip::NullReturnPath),
            (
                staff,
                &[("X-Auto-Response-Suppress", "All")],
                Skip::AutoSubmitted("an auto-reply header".into()),
            ),
            (
                "mailer-daemon@oakfield.example",
                &[],
                Skip::AutomatedSender("mailer-daemon@oakfield.example".into()),
            ),
            (
                "no-reply@parentmail.example",
                &[],
                Skip::AutomatedSender("no-reply@parentmail.example".into()),
            ),
            (
                "staff-request@lists.example",
                &[],
                Skip::AutomatedSender("staff-request@lists.example".into()),
            ),
        ];
        for (from, headers, expected) in cases {
            assert_eq!(
                screen(&mail(from, headers), &r),
                Err(expected.clone()),
                "{from} {headers:?}"
            );
        }
        assert_eq!(
            screen(
                &Mail {
                    from: None,
                    ..Mail::default()
                },
                &r
            ),
            Err(Skip::NoSender)
        );
    }

    #[test]
    fn only_our_servers_authentication_results_count() {
        let r = rules(Some("mx.oakfield.example"));
        let staff = "a.shah@oakfield.example";
        let ours_pass = (
            "Authentication-Results",
            "mx.oakfield.example; dmarc=pass header.from=oakfield.example",
        );
        let ours_fail = (
            "Authentication-Results",
            "mx.oakfield.example; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=oakfield.example",
        );
        let forged_pass = (
            "Authentication-Results",
            "mx.evil.example; dmarc=pass header.from=oakfield.example",
        );
        let dkim_pass = (
            "Authentication-Results",
            "mx.oakfield.example (Postfix); dkim=pass (2048-bit key) header.d=oakfield.example header.s=sel",
        );
        let spf_other = (
            "Authentication-Results",
            "mx.oakfield.example; spf=pass smtp.mailfrom=bulk@evil.example",
        );
        assert_eq!(screen(&mail(staff, &[ours_pass]), &r), Ok(()));
        assert_eq!(screen(&mail(staff, &[dkim_pass]), &r), Ok(()));
        assert!(matches!(
            screen(&mail(staff, &[ours_fail]), &r),
            Err(Skip::NotAuthenticated(_))
        ));
        assert!(matches!(
            screen(&mail(staff, &[forged_pass, ours_fail]), &r),
            Err(Skip::NotAuthenticated(_))
        ));
        assert!(
            matches!(screen(&mail(staff, &[spf_other]), &r), Err(Skip::NotAuthenticated(_))),
            "SPF for another domain says nothing about the From line"
        );
        assert!(matches!(screen(&mail(staff, &[]), &r), Err(Skip::NotAuthenticated(_))));
        assert_eq!(screen(&mail(staff, &[]), &rules(None)), Ok(()), "no check configured");
    }
}
