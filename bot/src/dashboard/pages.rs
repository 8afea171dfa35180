//! The dashboard's pages. maud escapes everything interpolated, so a question
//! containing `<script>` is shown as text.

use std::collections::{BTreeMap, HashMap};

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::AppState;
use crate::service::{Exchange, PolicyStatus};
use crate::store::audit::{ClauseCount, Event, Verification};
use crate::store::examples::Example;
use crate::store::users::{self, Session};
use crate::store::versions::VersionInfo;
use policybot_index::diff::{Change, PolicyDiff, WordChange};
use policybot_index::{Mode, Policy};

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1f4e79;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto;font-size:.9rem}
main{padding:1rem 1.2rem;max-width:1200px}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #dde1e6;padding:.45rem;vertical-align:top;text-align:left;font-size:.92rem}
blockquote{margin:.3rem 0;padding:.3rem .6rem;border-left:3px solid #1f4e79;background:#eef3f8;white-space:pre-wrap}
.verdict{font-weight:700;text-transform:uppercase;font-size:.8rem}.no{color:#a40e26}.yes{color:#1a7f37}
.conditional{color:#9a6700}.none{color:#57606a}.refused{color:#57606a}
form.inline{display:inline}input,select,button,textarea{font:inherit}button{cursor:pointer}
del{background:#ffebe9;color:#a40e26}ins{background:#dafbe1;color:#1a7f37;text-decoration:none}
.ok{color:#1a7f37;font-weight:700}.bad{color:#a40e26;font-weight:700}.muted{color:#57606a;font-size:.85rem}
.mode{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:.6rem;border:1px solid}
.mode.answered{color:#1a7f37}.mode.suggested{color:#9a6700}.mode.declined{color:#57606a}
ul.suggested{margin:.3rem 0;padding-left:1.1rem;font-size:.85rem}
";

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — policybot" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    span { "policybot" }
                    @if let Some(s) = session {
                        a href="/" { "Questions" }
                        a href="/unanswered" { "Unanswered" }
                        a href="/clauses" { "Clauses" }
                        a href="/policies" { "Policies" }
                        a href="/acks" { "Acknowledgements" }
                        a href="/audit" { "Audit log" }
                        a href="/ask" { "Ask" }
                        a href="/export.csv" { "Export CSV" }
                        span.who {
                            (s.user.name) " (" (s.user.role) ") "
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The Content-Security-Policy source for the one stylesheet, inline in
/// every page: `sha256-` and the base64 of its SHA-256.
pub fn style_hash() -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(STYLE.as_bytes());
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The sign-in form; `token` is the pre-session CSRF token its cookie holds.
pub fn login(token: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.bad { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                p { label { "Name " input name="name" autocomplete="username" maxlength=(users::MAX_NAME_CHARS) required; } }
                p { label { "Password " input name="password" type="password" autocomplete="current-password" maxlength=(users::MAX_PASSWORD_BYTES) required; } }
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn school_filter(state: &AppState, session: &Session, current: Option<&str>, search: Option<&str>) -> Markup {
    html! {
        form method="get" {
            @if session.user.school.is_none() {
                label { "School "
                    select name="school" {
                        option value="" { "all" }
                        @for (id, name) in &state.schools {
                            option value=(id) selected[current == Some(id.as_str())] { (name) }
                        }
                    }
                }
                " "
            }
            label { "Search " input name="q" value=(search.unwrap_or("")); }
            " " button type="submit" { "Filter" }
        }
    }
}

/// Says so under a question that was cut to what the engine reads.
/// A clause quoted as every channel quotes it: an item of a "Don't" list
/// under its list's head, so a ban never reads as permission.
fn quoted(clause: &policybot_index::Clause) -> Markup {
    html! {
        @if let Some(head) = &clause.list_head { p.muted { "Under ‘" (head) ":’" } }
        blockquote { (clause.text) }
    }
}

fn cut_mark(e: &Event) -> Markup {
    html! {
        @if let Some(chars) = e.payload["cut"]["chars"].as_u64() {
            br; span.muted {
                "(cut: the first " (policybot_index::engine::MAX_QUESTION_CHARS) " of " (chars) " characters were read and recorded)"
            }
        }
        @if e.payload["empty"] == true { span.muted { "(empty: nothing to answer)" } }
    }
}

/// The mode of a reply as a badge: answered, suggested or declined.
fn mode_badge(mode: Option<Mode>) -> Markup {
    let label = match mode {
        Some(Mode::Answer) => "answered",
        Some(Mode::Suggest) => "suggested",
        Some(Mode::Decline) => "declined",
        None => return html! {},
    };
    html! { span class={ "mode " (label) } { (label) } }
}

/// The clauses a suggestion offered, by reference and id (the id is what
/// the "covered by clause" review takes), from the recorded event.
fn suggested_clauses(e: &Event) -> Markup {
    let citations = match (e.mode, e.payload["citations"].as_array()) {
        (Some(Mode::Suggest), Some(citations)) if !citations.is_empty() => citations,
        _ => return html! {},
    };
    let field = |c: &Value, k: &str| c[k].as_str().unwrap_or("").to_owned();
    html! {
        ul.suggested {
            @for c in citations {
                li {
                    (field(c, "title")) ", ‘" (field(c, "section")) "’, clause " (field(c, "number"))
                    " " span.muted { (field(c, "clause")) }
                }
            }
        }
    }
}

fn verdict_of(e: &Event) -> &str {
    match e.kind.as_str() {
        "refused" => "refused",
        _ => e.payload["verdict"].as_str().unwrap_or(""),
    }
}

/// The id of the list of a school's clauses the clause fields offer.
fn clause_list_id(school: &str) -> String {
    format!("clauses-{school}")
}

/// Every live clause of the schools of `events`, each as a list the clause
/// id fields offer: typing part of a clause's words or place finds its id
/// (the browser searches the labels; no script). One list per school, not
/// per row.
fn clause_lists(state: &AppState, events: &[Event]) -> Markup {
    let schools: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "answered" | "declined"))
        .map(|e| e.school.as_str())
        .collect();
    let engine = state.service.engine();
    html! {
        @for school in schools {
            datalist id=(clause_list_id(school)) {
                @for policy in engine.policies().iter().filter(|p| p.school == school) {
                    @for clause in &policy.clauses {
                        option value=(clause.id) label=(clause_label(clause)) {}
                    }
                }
            }
        }
    }
}

/// A clause in a few words: its place and the start of its text.
fn clause_label(clause: &policybot_index::Clause) -> String {
    const SHOWN: usize = 90;
    let text: String = clause.text.chars().take(SHOWN).collect();
    let more = if clause.text.chars().count() > SHOWN { "…" } else { "" };
    format!("{}, {} — {text}{more}", clause.policy_title, clause.place())
}

/// A review's buttons; `clause` is the placeholder of the clause id field,
/// for marks that name the clause that answers, offering the school's
/// clauses ([`clause_lists`]).
fn review_form(session: &Session, e: &Event, back: &str, marks: &[(&str, &str)], clause: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action="/review" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="event" value=(e.id);
            input type="hidden" name="back" value=(back);
            @if let Some(placeholder) = clause {
                input name="clause" placeholder=(placeholder) size="18" list=(clause_list_id(&e.school)); " "
            }
            input name="note" placeholder="note" size="14";
            @for (mark, label) in marks {
                " " button type="submit" name="mark" value=(mark) { (label) }
            }
        }
    }
}

fn review_mark(state: &AppState, reviews: &HashMap<i64, Value>, id: i64) -> Markup {
    html! {
        @if let Some(r) = reviews.get(&id) {
            span class=(if r["mark"] == "wrong" || r["mark"] == "gap" { "bad" } else { "ok" }) {
                "marked " (r["mark"].as_str().unwrap_or(""))
            }
            @if let Some(note) = r["note"].as_str().filter(|n| !n.is_empty()) { " — " (note) }
            @if let Some(clause) = r["clause"].as_str().filter(|c| !c.is_empty()) {
                @if r["mark"] == "wrong" { " — the right clause is " } @else { " — clause " }
                @match state.service.engine().clause(clause) {
                    Some(c) => { (c.citation()) " " span.muted { (clause) } },
                    None => (clause),
                }
            }
            " " span.muted { "by " (r["by"].as_str().unwrap_or("")) }
        }
    }
}

pub fn recent(
    state: &AppState,
    session: &Session,
    events: &[Event],
    reviews: &HashMap<i64, Value>,
    school: Option<&str>,
    search: Option<&str>,
) -> Markup {
    layout(
        "Questions and answers",
        Some(session),
        html! {
            (school_filter(state, session, school, search))
            p.muted { (events.len()) " most recent (up to 200)" }
            (clause_lists(state, events))
            table {
                tr { th { "#" } th { "When" } th { "Who" } th { "Question" } th { "Verdict" } th { "Answer given" } th { "Review" } }
                @for e in events {
                    tr {
                        td { (e.id) }
                        td.muted { (e.at.get(..16).unwrap_or(&e.at)) }
                        td { (e.asker) br; span.muted { (e.school) " · " (e.channel) } }
                        td { (e.question.as_deref().unwrap_or("[redacted]")) (cut_mark(e)) }
                        td {
                            // A suggestion has no verdict: its badge says what it is.
                            @if e.mode != Some(Mode::Suggest) {
                                span class={ "verdict " (verdict_of(e)) } { (verdict_of(e)) } br;
                            }
                            (mode_badge(e.mode))
                            (suggested_clauses(e))
                        }
                        td { blockquote { (e.payload["reply"].as_str().unwrap_or("")) } }
                        td {
                            (review_mark(state, reviews, e.id))
                            @if e.kind == "answered" {
                                br; (review_form(session, e, "recent", &[("correct", "Correct"), ("wrong", "Wrong")], Some("right clause, if wrong")))
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn unanswered(state: &AppState, session: &Session, events: &[Event], reviews: &HashMap<i64, Value>) -> Markup {
    // Grouped by the section that came nearest: that is the policy's "topic".
    let mut groups: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        // A suggestion's topic is its first clause's section, written as
        // the engine writes a decline's nearest section.
        let first = &e.payload["citations"][0];
        let topic = match (e.payload["nearest_section"].as_str(), first["section"].as_str()) {
            (Some(nearest), _) => nearest.to_owned(),
            (None, Some(section)) => format!("'{section}' in {}", first["title"].as_str().unwrap_or("")),
            (None, None) => "no section came close".to_owned(),
        };
        groups.entry(topic).or_default().push(e);
    }
    layout(
        "Unanswered questions",
        Some(session),
        html! {
            p.muted {
                "Questions no clause answered confidently — declined, or with the closest clauses suggested — grouped by "
                "the nearest section. Mark each as covered by a clause the bot missed (type some of its words to find it), "
                "or as a gap in the policy. A question marked covered is kept as an example for the clause: the bot "
                "answers questions close to it with that clause."
            }
            (clause_lists(state, events))
            @for (topic, items) in &groups {
                h2 { (topic) " (" (items.len()) ")" }
                table {
                    @for e in items {
                        tr {
                            td { (e.id) }
                            td.muted { (e.at.get(..16).unwrap_or(&e.at)) br; (e.school) }
                            td { (e.question.as_deref().unwrap_or("[redacted]")) (cut_mark(e)) }
                            td { (mode_badge(e.mode)) (suggested_clauses(e)) }
                            td {
                                (review_mark(state, reviews, e.id)) br;
                                (review_form(session, e, "unanswered", &[("covered", "Covered by clause"), ("gap", "Policy gap")], Some("clause")))
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A clause by its id as the live policies have it, or just its id.
fn clause_named(state: &AppState, id: &str) -> Markup {
    html! {
        @if let Some(clause) = state.service.engine().clause(id) {
            (clause.citation()) (quoted(clause))
        } @else {
            (id) span.muted { " (no longer in the current policy: this example is not used)" }
        }
    }
}

/// The review form named a clause the question's school does not have.
pub fn not_a_clause(session: &Session, clause: &str, school: &str) -> Markup {
    layout(
        "Not a clause",
        Some(session),
        html! {
            p.bad { "“" (clause) "” is not a clause of " (school) "’s policies. Nothing was recorded." }
            p { "Copy the clause id (shown under each clause on the " a href="/clauses" { "Clauses" } " page, and in "
                code { "policybot clauses" } ") and mark the question again." }
        },
    )
}

/// Questions the lead kept as examples, by clause, each with its remove
/// button.
fn examples_markup(state: &AppState, session: &Session, examples: &[Example]) -> Markup {
    let mut by_clause: BTreeMap<(&str, &str), Vec<&Example>> = BTreeMap::new();
    for x in examples {
        by_clause.entry((&x.school, &x.clause)).or_default().push(x);
    }
    html! {
        h2 { "Questions kept as examples" }
        p.muted {
            "Questions marked “covered by clause …”, or answers marked wrong with the right clause: "
            "a later question close to one of them gets its clause as a strong candidate. "
            "Removing one is recorded in the audit log. Retention removes them with their question's text."
        }
        @if by_clause.is_empty() { p.muted { "None yet." } }
        @for ((school, id), items) in &by_clause {
            div.examples {
                h3 { (clause_named(state, id)) span.muted { (school) " · " (id) } }
                table {
                    @for x in items {
                        tr {
                            td { (x.question) }
                            td.muted { "marked by " (x.by) " at " (x.at.get(..16).unwrap_or(&x.at)) br; "question #" (x.question_event) }
                            td {
                                form.inline method="post" action="/examples/remove" {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="event" value=(x.question_event);
                                    input type="hidden" name="clause" value=(x.clause);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn clause_report(state: &AppState, session: &Session, rows: &[ClauseCount], examples: &[Example]) -> Markup {
    layout(
        "Clauses cited",
        Some(session),
        html! {
            p.muted { "Each clause given as the first answer, how often, and how reviews marked those answers. Clauses marked wrong come first." }
            table {
                tr { th { "Clause" } th { "Cited" } th { "Marked correct" } th { "Marked wrong" } }
                @for ClauseCount { clause: id, version, cited, correct, wrong } in rows {
                    tr {
                        td {
                            @if let Some(clause) = state.service.engine().clause(id) {
                                (clause.citation()) (quoted(clause))
                            } @else if let Ok(Some(clause)) = state.service.store().clause_in_version(id, version) {
                                (clause.citation()) span.muted { " (since changed or removed)" }
                                (quoted(&clause))
                            } @else {
                                (id) " — version " (version) span.muted { " (no longer in the current policy)" }
                            }
                            span.muted { (id) }
                        }
                        td { (cited) } td { (correct) } td class=(if *wrong > 0 { "bad" } else { "" }) { (wrong) }
                    }
                }
            }
            (examples_markup(state, session, examples))
        },
    )
}

pub fn policies(session: &Session, listed: &[(VersionInfo, Vec<VersionInfo>)], status: &PolicyStatus) -> Markup {
    layout(
        "Policies",
        Some(session),
        html! {
            @if !status.errors.is_empty() || !status.kept.is_empty() {
                h2.bad { "Policy files that could not be read" }
                p.muted { "Checked " (status.checked_at) ". Staff are answered from the last good version until the file is fixed." }
                ul {
                    @for problem in status.errors.iter().chain(&status.kept) { li { (problem) } }
                }
            }
            table {
                tr { th { "Policy" } th { "Live version" } th { "Clauses" } th { "Earlier versions" } }
                @for (live, history) in listed {
                    tr {
                        td { (live.title) br; span.muted { (live.school) " · " (live.source) } }
                        td { (live.version) br; span.muted { "first seen " (live.first_seen) } }
                        td { (live.clauses) }
                        td {
                            @for older in history.iter().rev().filter(|v| v.version != live.version) {
                                a href=(format!("/policies/diff?school={}&policy={}&from={}&to={}",
                                    url(&live.school), url(&live.policy), url(&older.version), url(&live.version))) {
                                    "what changed since " (older.version)
                                }
                                br;
                            }
                        }
                    }
                }
            }
            @if !status.warnings.is_empty() {
                h2 { "Warnings" }
                ul.muted { @for w in &status.warnings { li { (w) } } }
            }
        },
    )
}

/// The changes of a policy diff, each with its place and the words
/// deleted and inserted: on the diff page, in nudges, on the acknowledgement
/// form.
pub fn changes_markup(changes: &PolicyDiff<'_>) -> Markup {
    html! {
            @for change in &changes.changes {
                div.change {
                    h3 { (change.label()) " — " (change.clause().place()) }
                    @match change {
                        Change::Added { to } => blockquote { ins { (to.text) } },
                        Change::Removed { from } => blockquote { del { (from.text) } },
                        Change::Moved { from, .. } => { p.muted { "Moved from " (from.place()) } blockquote { (from.text) } },
                        Change::Reworded { words, .. } => blockquote {
                            @for (i, run) in words.iter().enumerate() {
                                @if i > 0 { " " }
                                @match run {
                                    WordChange::Same(w) => (w),
                                    WordChange::Deleted(w) => del { (w) },
                                    WordChange::Inserted(w) => ins { (w) },
                                }
                            }
                        },
                    }
                }
            }
    }
}

pub fn ack_status(session: &Session, status: &[crate::nudge::PolicyStatus<'_>], nudges: &[(String, usize)]) -> Markup {
    layout(
        "Acknowledgements",
        Some(session),
        html! {
            p.muted { "Who has read and acknowledged the live version of each policy. Staff come from the staff list: leavers drop off, new starters appear." }
            @if !nudges.is_empty() {
                p { "Nudges: " @for (i, (state, n)) in nudges.iter().enumerate() { @if i > 0 { ", " } (n) " " (state) } "." }
            }
            @for policy in status {
                h2 { (policy.live.title) " — version " (policy.live.version) }
                @let done = policy.acknowledged.len();
                @let percent = if policy.staff == 0 { 100.0 } else { 100.0 * done as f64 / policy.staff as f64 };
                p class=(if done == policy.staff { "ok" } else { "" }) {
                    (done) " of " (policy.staff) " staff (" (format!("{percent:.0}")) "%) have acknowledged it."
                }
                @if !policy.outstanding.is_empty() {
                    table {
                        tr { th { "Not yet acknowledged" } th { "Last acknowledged" } th { "Nudges sent" } }
                        @for o in &policy.outstanding {
                            tr {
                                td { (o.member.name) span.muted { " " (o.member.role) } }
                                td { (o.since.as_deref().map_or("never".to_owned(), |v| format!("version {v}"))) }
                                td { (o.nudged) @if o.pending { span.muted { " (one waiting to be sent)" } } }
                            }
                        }
                    }
                }
                @if !policy.acknowledged.is_empty() {
                    details {
                        summary { "Acknowledged (" (done) ")" }
                        ul { @for (member, ack) in &policy.acknowledged { li { (member.name) " — " (ack.at) " by " (ack.how) } } }
                    }
                }
            }
        },
    )
}

/// A page for a bad or stale acknowledgement link.
pub fn ack_invalid(message: &str) -> Markup {
    layout("Acknowledgement", None, html! { p.bad { (message) } })
}

/// The one-page acknowledgement form a nudge links to: what changed since
/// the version last acknowledged, the whole policy, and the button.
pub fn ack_form(
    token: &str,
    name: &str,
    policy: &Policy,
    changed: Option<(&Policy, &PolicyDiff<'_>)>,
    done: Option<&crate::store::acks::Ack>,
) -> Markup {
    layout(
        &format!("{} — version {}", policy.title, policy.version),
        None,
        html! {
            @match done {
                Some(ack) => p.ok { "Thank you, " (name) ". Your acknowledgement of version " (policy.version) " was recorded at " (ack.at) "." },
                None => p { "Dear " (name) ", please read version " strong { (policy.version) } " of this policy and confirm you have read it." },
            }
            @if let Some((older, changes)) = changed {
                h2 { "What changed since version " (older.version) ", which you acknowledged" }
                p { (changes.summary()) "." }
                (changes_markup(changes))
            }
            details open[changed.is_none()] {
                summary { "The whole policy (" (policy.clauses.len()) " clauses)" }
                @for clause in &policy.clauses {
                    p {
                        span.muted { (clause.place()) } br;
                        @if let Some(head) = &clause.list_head { span.muted { "Under ‘" (head) ":’ — " } }
                        (clause.text)
                    }
                }
            }
            @if done.is_none() {
                form method="post" action=(format!("/ack/{token}")) {
                    p { label { input type="checkbox" name="read" required; " I have read and understood version " (policy.version) " of " (policy.title) "." } }
                    button type="submit" { "I acknowledge" }
                }
            }
        },
    )
}

/// Percent-encodes a query parameter value.
fn url(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn policy_diff(session: &Session, older: &Policy, newer: &Policy, changes: &PolicyDiff<'_>) -> Markup {
    layout(
        &format!("What changed in {}", newer.title),
        Some(session),
        html! {
            p { "Version " strong { (older.version) } " → version " strong { (newer.version) } ": " (changes.summary()) "." }
            (changes_markup(changes))
        },
    )
}

/// The chain's state, and (for users who see every school) the latest mails
/// the email channel did not answer, with why.
pub fn audit(session: &Session, v: &Verification, age: std::time::Duration, unanswered_mail: &[Event]) -> Markup {
    layout(
        "Audit log",
        Some(session),
        html! {
            @match &v.broken {
                None => p.ok { "Chain intact: " (v.events) " events, none edited, inserted or deleted." },
                Some((id, why)) => p.bad { "Chain BROKEN at event " (id) ": " (why) }
            }
            @for g in &v.guards {
                p.bad { "Guard trigger " (g) ": run " code { "policybot audit guard" } "." }
            }
            p { "Head of the log: " code { (v.head) } }
            p.muted {
                "Checked " (age.as_secs()) " s ago. Every event carries the SHA-256 of the event before it; "
                code { "policybot audit verify" } " checks the same from the command line. "
                "The head (last event and its hash) is also in every digest mail and export: "
                code { "policybot audit verify --head ID:HASH" } " with a head written down earlier shows the log still holds it, "
                "so deleting the newest events is caught by anyone who kept an older one."
            }
            @if !unanswered_mail.is_empty() {
                h2 { "Mail not answered" }
                p.muted { "Auto-replies, lists, bounces, loops, senders the school's mail server did not vouch for, unknown senders, and replies over the hourly cap: recorded, never answered." }
                table {
                    tr { th { "When" } th { "From" } th { "Why" } th { "Message-ID" } }
                    @for e in unanswered_mail {
                        tr {
                            td { (e.at) } td { (e.asker) }
                            td { (e.payload["reason"].as_str().unwrap_or("")) }
                            td.muted { (e.reference) }
                        }
                    }
                }
            }
        },
    )
}

pub fn ask(state: &AppState, session: &Session, result: Option<(&str, &Exchange)>) -> Markup {
    layout(
        "Ask",
        Some(session),
        html! {
            form method="post" action="/ask" {
                input type="hidden" name="csrf" value=(session.csrf);
                @if session.user.school.is_none() {
                    label { "School " select name="school" {
                        @for (id, name) in &state.schools { option value=(id) { (name) } }
                    } }
                } @else {
                    input type="hidden" name="school" value=(session.user.school.clone().unwrap_or_default());
                }
                p { textarea name="question" rows="3" cols="70" required placeholder="Can I use WhatsApp to message parents on a trip?" {} }
                button type="submit" { "Ask" }
            }
            @if let Some((question, x)) = result {
                h2 { "“" (question) "”" }
                p { (mode_badge(x.mode)) }
                blockquote { (x.reply) }
                p.muted {
                    "Recorded as audit event " (x.event)
                    @if x.empty { ", as an empty question (nothing to answer)" }
                    "."
                    @if let Some(chars) = x.cut {
                        " The question was " (chars) " characters long: only the first "
                        (policybot_index::engine::MAX_QUESTION_CHARS) " were read and recorded."
                    }
                }
            }
        },
    )
}
