//! The e-safety lead's dashboard: server-rendered HTML (maud escapes every
//! value), no JavaScript. Only signed-in users see anything; every form carries
//! the session's CSRF token (the sign-in form a pre-session one); sign-ins are
//! throttled and recorded (`signin.rs`). Every response carries headers that
//! forbid framing, sniffing, referrers and any script; form bodies are
//! bounded (413 beyond).

mod pages;
mod signin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Query, State};
use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::service::{Channel, Service, Who};
use crate::store::audit::{Filter, Kind, NewEvent, Verification};
use crate::store::examples::EXAMPLE_MARKS;
use crate::store::users::{self, Session};

/// A diff's changes as HTML (for nudges by email).
pub fn changes_html(changes: &policybot_index::diff::PolicyDiff<'_>) -> String {
    pages::changes_markup(changes).into_string()
}

const COOKIE_NAME: &str = "policybot_session";
/// The pre-session cookie the sign-in form's token must match: another site
/// cannot read it, so it cannot sign a browser in to an account of its own.
const LOGIN_COOKIE: &str = "policybot_login";
/// How long a sign-in form stays valid.
const LOGIN_FORM_SECONDS: u32 = 3600;

/// The largest form body accepted: a question or a review note is a few
/// kilobytes at most.
pub const FORM_LIMIT: usize = 64 * 1024;
/// The largest sign-in body: a name and a password, percent-encoded.
pub const LOGIN_LIMIT: usize = 8 * 1024;

pub struct AppState {
    pub service: Arc<Service>,
    /// (id, name) of every configured school.
    pub schools: Vec<(String, String)>,
    /// Send cookies with `Secure` (when the dashboard is served over HTTPS).
    pub secure_cookies: bool,
    sign_ins: Mutex<signin::SignIns>,
    /// The last full check of the chain: it reads every event, so the page
    /// shows a recent result rather than re-reading 100k rows per view.
    verified: Mutex<Option<(Instant, Verification)>>,
}

/// How old a chain check the audit page may show.
const VERIFY_EVERY: Duration = Duration::from_secs(30);

impl AppState {
    pub fn new(service: Arc<Service>, schools: Vec<(String, String)>, secure_cookies: bool) -> Self {
        AppState {
            service,
            schools,
            secure_cookies,
            sign_ins: Mutex::new(signin::SignIns::default()),
            verified: Mutex::new(None),
        }
    }

    /// The chain's status, checked afresh when the last check is older than
    /// [`VERIFY_EVERY`]; with how old the result is.
    fn verification(&self) -> anyhow::Result<(Verification, Duration)> {
        let mut cached = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, v)) = cached.as_ref().filter(|(at, _)| at.elapsed() < VERIFY_EVERY) {
            return Ok((v.clone(), at.elapsed()));
        }
        let v = self.service.store().verify()?;
        *cached = Some((Instant::now(), v.clone()));
        Ok((v, Duration::ZERO))
    }

    fn sign_ins(&self) -> std::sync::MutexGuard<'_, signin::SignIns> {
        self.sign_ins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records failed sign-ins of minutes that are over (all of them when
    /// `stopping`).
    fn record_closed_sign_ins(&self, stopping: bool) {
        let mut events = Vec::new();
        let minute = (!stopping).then(unix_minute);
        self.sign_ins().closed(Instant::now(), minute, &mut events);
        self.record_all(events);
    }

    /// Appends `events`; a failure is logged, not returned: the sign-in
    /// page is answered either way.
    fn record_all(&self, events: Vec<NewEvent>) {
        for event in events {
            if let Err(e) = self.service.record_event(event) {
                tracing::error!("recording failed sign-ins: {e:#}");
            }
        }
    }

    /// `; Secure` when cookies must only travel over HTTPS.
    fn secure(&self) -> &'static str {
        if self.secure_cookies { "; Secure" } else { "" }
    }
}

/// Minutes since the Unix epoch: the bucket failed sign-ins are counted in.
fn unix_minute() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp().div_euclid(60)
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(recent))
        .route("/unanswered", get(unanswered))
        .route("/clauses", get(clause_report))
        .route("/audit", get(audit_status))
        .route("/acks", get(ack_status))
        .route("/ack/{token}", get(ack_form).post(ack_submit))
        .route("/policies", get(policies))
        .route("/policies/diff", get(policy_diff))
        .route("/export.csv", get(export_csv))
        .route("/ask", get(ask_form).post(ask))
        .route("/review", post(review))
        .route("/examples/remove", post(remove_example))
        .route(
            "/login",
            get(login_form).post(login).layer(DefaultBodyLimit::max(LOGIN_LIMIT)),
        )
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// What every response says about itself: no framing (clickjacking), no
/// content sniffing, no referrer (acknowledgement links carry their token in
/// the path), and a policy that allows no script at all and only the pages'
/// own stylesheet (by its hash). `connect-src 'self'` lets tools driving a
/// browser (the end-to-end test) fetch the CSV export; no script of ours
/// runs.
static CONTENT_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; style-src '{}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        pages::style_hash()
    );
    HeaderValue::from_str(&policy).expect("a header value")
});

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CONTENT_SECURITY_POLICY, CONTENT_POLICY.clone());
    response
}

// ------------------------------------------------------------------ auth

/// The value of cookie `name`, if set and not empty.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE_NAME)
}

fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie_token(headers)?;
    state.service.store().session(&token).ok().flatten()
}

/// Why a request was turned away.
enum Denied {
    /// A page view without a session: go to the sign-in page.
    SignIn,
    /// Anything else without a session.
    Unauthorized,
    /// A form whose CSRF token is not the session's.
    StaleForm,
    /// A form missing fields.
    Incomplete,
    /// A body over [`FORM_LIMIT`] (or [`LOGIN_LIMIT`]).
    TooLarge,
}

impl From<FormRejection> for Denied {
    fn from(rejection: FormRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Denied::TooLarge
        } else {
            Denied::Incomplete
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::SignIn => redirect("/login"),
            Denied::Unauthorized => (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
            Denied::Incomplete => (StatusCode::BAD_REQUEST, "the form was incomplete").into_response(),
            Denied::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "this form is too large: at most {} KB is accepted; shorten the text and try again",
                    FORM_LIMIT / 1024
                ),
            )
                .into_response(),
            Denied::StaleForm => (
                StatusCode::FORBIDDEN,
                "this form has expired: reload the page and try again",
            )
                .into_response(),
        }
    }
}

/// The signed-in session, or why not.
fn require(state: &AppState, headers: &HeaderMap, page: bool) -> Result<Session, Denied> {
    match session(state, headers) {
        Some(s) => Ok(s),
        None if page => Err(Denied::SignIn),
        None => Err(Denied::Unauthorized),
    }
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

fn check_csrf(session: &Session, token: &str) -> Result<(), Denied> {
    if token == session.csrf {
        Ok(())
    } else {
        Err(Denied::StaleForm)
    }
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!("dashboard: {e:#}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong; it has been logged",
    )
        .into_response()
}

/// Schools a user may see: theirs, or all.
fn visible_school(session: &Session, requested: Option<&str>) -> Option<String> {
    match &session.user.school {
        Some(own) => Some(own.clone()),
        None => requested.filter(|s| !s.is_empty()).map(str::to_owned),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    /// Missing is refused like a wrong token (403), not as incomplete.
    #[serde(default)]
    csrf: String,
    name: String,
    password: String,
}

/// The sign-in form's token: the browser's pre-session cookie when it has a
/// well-formed one (another tab's form stays valid), else a new one.
fn login_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(token) => (token, false),
        None => (users::random_token(), true),
    }
}

/// The sign-in page with `status` and `error`, carrying `token` in the form
/// (and setting it as the pre-session cookie when `new`).
fn login_page(state: &AppState, status: StatusCode, (token, new): (String, bool), error: Option<&str>) -> Response {
    let mut response = (status, pages::login(&token, error)).into_response();
    if new {
        let cookie = format!(
            "{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age={LOGIN_FORM_SECONDS}{}",
            state.secure()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

async fn login_form(State(state): State<Shared>, headers: HeaderMap) -> Response {
    login_page(&state, StatusCode::OK, login_token(&headers), None)
}

/// The two strings are equal, in time that does not depend on where they
/// differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let token = login_token(&headers);
    let form = match form.map_err(Denied::from) {
        Ok(Form(form)) => form,
        Err(Denied::TooLarge) => {
            let error = "That name or password is far too long.";
            return login_page(&state, StatusCode::PAYLOAD_TOO_LARGE, token, Some(error));
        }
        Err(denied) => return denied.into_response(),
    };
    // Login CSRF: the form must come from a page this browser was given.
    if token.1 || !same_token(&token.0, &form.csrf) {
        let error = "This sign-in form had expired: please try again.";
        return login_page(&state, StatusCode::FORBIDDEN, token, Some(error));
    }
    let ip = peer.ip();
    let mut events = Vec::new();
    let gate = state
        .sign_ins()
        .check(ip, &form.name, Instant::now(), unix_minute(), &mut events);
    state.record_all(events);
    if gate == signin::Gate::Throttled {
        let error = "Too many failed sign-ins from here: wait 15 minutes, or sign in from another device.";
        return login_page(&state, StatusCode::TOO_MANY_REQUESTS, token, Some(error));
    }
    // A name or password no account can have is not worth a password check.
    let plausible = users::check_name(&form.name).is_ok() && form.password.len() <= users::MAX_PASSWORD_BYTES;
    let user = if plausible {
        let state2 = state.clone();
        let (name, password) = (form.name.clone(), form.password);
        match tokio::task::spawn_blocking(move || state2.service.store().check_password(&name, &password)).await {
            Ok(Ok(user)) => user,
            Ok(Err(e)) => return internal(e),
            Err(e) => return internal(e.into()),
        }
    } else {
        None
    };
    let Some(user) = user else {
        let mut events = Vec::new();
        state
            .sign_ins()
            .failed(ip, &form.name, Instant::now(), unix_minute(), &mut events);
        state.record_all(events);
        let error = "That name and password do not match.";
        return login_page(&state, StatusCode::UNAUTHORIZED, token, Some(error));
    };
    state.sign_ins().succeeded(ip, &form.name);
    let token = match state.service.store().create_session(&user).and_then(|t| {
        state
            .service
            .record_event(NewEvent {
                asker: format!("dashboard:{}", user.name),
                channel: "dashboard".into(),
                reference: ip.to_string(),
                ..NewEvent::new(Kind::SignedIn, json!({ "ok": true }))
            })
            .map(|_| t)
    }) {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let secure = state.secure();
    let session = format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        users::SESSION_HOURS * 3600
    );
    // The sign-in form's token is spent.
    let spent = format!("{LOGIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0{secure}");
    let mut response = redirect("/");
    for cookie in [session, spent] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// A form that carries the session's CSRF token.
trait Posted {
    fn csrf(&self) -> &str;
}

impl Posted for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The checks every POST passes, in order: signed in (401), then a complete
/// form (400: a stranger learns nothing about the fields), then the form's
/// CSRF token (403).
fn posted<T: Posted>(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
) -> Result<(Session, T), Denied> {
    let session = require(state, headers, false)?;
    let Form(form) = form?;
    check_csrf(&session, form.csrf())?;
    Ok((session, form))
}

async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Err(r) = posted(&state, &headers, form) {
        return r.into_response();
    }
    if let Some(token) = cookie_token(&headers) {
        let _ = state.service.store().end_session(&token);
    }
    let mut response = redirect("/login");
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("policybot_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

// ------------------------------------------------------------------ pages

#[derive(Deserialize, Default)]
struct ListQuery {
    school: Option<String>,
    q: Option<String>,
}

/// The latest review of each of `events`.
fn reviews(state: &AppState, events: &[crate::store::audit::Event]) -> anyhow::Result<HashMap<i64, serde_json::Value>> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    state.service.store().latest_reviews(&ids)
}

async fn recent(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let filter = Filter {
        school: visible_school(&session, q.school.as_deref()),
        search: q.q.clone(),
        kinds: vec!["answered", "declined", "refused"],
        newest_first: true,
        limit: Some(200),
        ..Filter::default()
    };
    match state.service.store().list(&filter).and_then(|events| {
        let reviews = reviews(&state, &events)?;
        Ok((events, reviews))
    }) {
        Ok((events, reviews)) => {
            pages::recent(&state, &session, &events, &reviews, q.school.as_deref(), q.q.as_deref()).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn unanswered(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let filter = Filter {
        school: visible_school(&session, q.school.as_deref()),
        unanswered: true,
        newest_first: true,
        limit: Some(500),
        ..Filter::default()
    };
    match state.service.store().list(&filter).and_then(|events| {
        let reviews = reviews(&state, &events)?;
        Ok((events, reviews))
    }) {
        Ok((events, reviews)) => pages::unanswered(&state, &session, &events, &reviews).into_response(),
        Err(e) => internal(e),
    }
}

async fn clause_report(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let filter = Filter {
        school: visible_school(&session, q.school.as_deref()),
        kinds: vec!["answered"],
        ..Filter::default()
    };
    let store = state.service.store();
    match store
        .clause_counts(filter.school.as_deref())
        .and_then(|rows| Ok((rows, store.examples(filter.school.as_deref())?)))
    {
        Ok((rows, examples)) => pages::clause_report(&state, &session, &rows, &examples).into_response(),
        Err(e) => internal(e),
    }
}

/// The live version of each policy, with its history, and what the last
/// reading of the policy files found (a broken file, the version kept live).
async fn policies(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let school = visible_school(&session, q.school.as_deref());
    let store = state.service.store();
    let listed = store.live_versions(school.as_deref()).and_then(|live| {
        live.into_iter()
            .map(|v| {
                let history = store.policy_versions(&v.school, &v.policy)?;
                Ok((v, history))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    });
    match listed {
        Ok(listed) => pages::policies(&session, &listed, &state.service.policy_status()).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    school: String,
    policy: String,
    from: Option<String>,
    to: Option<String>,
}

/// What changed between two versions of a policy: the page staff will be
/// shown when asked to acknowledge a new version.
async fn policy_diff(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<DiffQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if session.user.school.as_ref().is_some_and(|own| own != &q.school) {
        return (StatusCode::FORBIDDEN, "that school's policies are not yours to see").into_response();
    }
    let store = state.service.store();
    match crate::cmd_policy::pair(store, &q.school, &q.policy, q.from.as_deref(), q.to.as_deref()) {
        Ok((older, newer)) => {
            let changes = policybot_index::diff::diff(&older.clauses, &newer.clauses);
            pages::policy_diff(&session, &older, &newer, &changes).into_response()
        }
        Err(e) => {
            // The error names what was asked for: not echoed to the browser.
            tracing::debug!("policy diff: {e:#}");
            (StatusCode::NOT_FOUND, "no such policy or version").into_response()
        }
    }
}

/// Acknowledgement status per live policy version: % complete, who is
/// outstanding and how often they were nudged.
async fn ack_status(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let school = visible_school(&session, q.school.as_deref());
    let store = state.service.store();
    match crate::nudge::status(state.service.directory(), store, school.as_deref())
        .and_then(|status| Ok((status, store.nudge_counts()?)))
    {
        Ok((status, nudges)) => pages::ack_status(&session, &status, &nudges).into_response(),
        Err(e) => internal(e),
    }
}

/// What an acknowledgement link shows: needs no sign-in, the signed link is
/// the member of staff's credential for that one policy version.
async fn ack_form(State(state): State<Shared>, axum::extract::Path(token): axum::extract::Path<String>) -> Response {
    ack_page(&state, &token, false)
}

async fn ack_submit(State(state): State<Shared>, axum::extract::Path(token): axum::extract::Path<String>) -> Response {
    ack_page(&state, &token, true)
}

fn ack_page(state: &AppState, token: &str, acknowledge: bool) -> Response {
    let store = state.service.store();
    let nudge = match crate::nudge::verify(store, token) {
        Ok(Some(nudge)) => nudge,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                pages::ack_invalid("This acknowledgement link is not valid. Use the link in your most recent reminder, or ask your e-safety lead."),
            )
                .into_response();
        }
        Err(e) => return internal(e),
    };
    let Some(member) = state.service.directory().by_id(&nudge.plan.staff) else {
        return (
            StatusCode::GONE,
            pages::ack_invalid("This link was for someone no longer on the staff list."),
        )
            .into_response();
    };
    let shown = (|| -> anyhow::Result<_> {
        if acknowledge {
            store.acknowledge(
                &nudge.plan.staff,
                &nudge.plan.school,
                &nudge.plan.policy,
                &nudge.plan.version,
                "link",
            )?;
        }
        let done = store.acknowledgement_of(&nudge.plan)?;
        let policy = store.policy_version(&nudge.plan.school, &nudge.plan.policy, &nudge.plan.version)?;
        let older = match &nudge.plan.since_version {
            Some(v) => store.policy_version(&nudge.plan.school, &nudge.plan.policy, v)?,
            None => None,
        };
        Ok((done, policy, older))
    })();
    match shown {
        Ok((done, Some(policy), older)) => {
            let changes = older
                .as_ref()
                .map(|o| policybot_index::diff::diff(&o.clauses, &policy.clauses));
            pages::ack_form(
                token,
                &member.name,
                &policy,
                older.as_ref().zip(changes.as_ref()),
                done.as_ref(),
            )
            .into_response()
        }
        Ok((_, None, _)) => internal(anyhow::anyhow!(
            "{} version {} is not in the store",
            nudge.plan.policy,
            nudge.plan.version
        )),
        Err(e) => internal(e),
    }
}

/// Mails not answered, newest first, shown on the audit page.
const UNANSWERED_MAIL_SHOWN: usize = 50;

async fn audit_status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    // Unanswered mail belongs to no school: only users who see every
    // school see it.
    let unanswered_mail = match session.user.school {
        Some(_) => Ok(Vec::new()),
        None => state.service.store().list(&Filter {
            kinds: vec!["ignored"],
            newest_first: true,
            limit: Some(UNANSWERED_MAIL_SHOWN),
            ..Filter::default()
        }),
    };
    match (state.verification(), unanswered_mail) {
        (Ok((v, age)), Ok(mail)) => pages::audit(&session, &v, age, &mail).into_response(),
        (Err(e), _) | (_, Err(e)) => internal(e),
    }
}

async fn export_csv(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let session = match require(&state, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let filter = Filter {
        school: visible_school(&session, q.school.as_deref()),
        kinds: vec!["answered", "declined", "refused"],
        ..Filter::default()
    };
    let mut out = Vec::new();
    let written = crate::cmd_audit::write_csv(state.service.store(), &filter, &mut out).and_then(|rows| {
        state.service.record_event(NewEvent {
            school: filter.school.clone().unwrap_or_default(),
            asker: format!("dashboard:{}", session.user.name),
            channel: "dashboard".into(),
            ..NewEvent::new(Kind::Exported, json!({ "format": "csv", "rows": rows }))
        })
    });
    match written {
        Ok(_) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (
                    CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"policybot-audit.csv\""),
                ),
            ],
            out,
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct ReviewForm {
    csrf: String,
    event: i64,
    /// correct, wrong, covered, gap
    mark: String,
    #[serde(default)]
    note: String,
    /// For covered and wrong: the clause that answers (a clause id of the
    /// question's school), kept with the question as an example.
    #[serde(default)]
    clause: String,
    #[serde(default)]
    back: String,
}

impl Posted for ReviewForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn review(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<ReviewForm>, FormRejection>,
) -> Response {
    let (session, form) = match posted(&state, &headers, form) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    // Answers are marked correct or wrong; unanswered questions covered or a gap.
    let question = match state.service.store().event(form.event) {
        Ok(Some(e)) if visible_school(&session, Some(&e.school)).as_deref() == Some(e.school.as_str()) => Some(e),
        Ok(_) => None,
        Err(e) => return internal(e),
    };
    let allowed: &[&str] = match question.as_ref().map(|e| e.kind.as_str()) {
        Some("answered") => &["correct", "wrong"],
        Some("declined") => &["covered", "gap"],
        _ => &[],
    };
    let Some(question) = question.filter(|_| allowed.contains(&form.mark.as_str())) else {
        return (StatusCode::BAD_REQUEST, "that event cannot be given that review").into_response();
    };
    // "Covered by clause X" and "wrong — the right clause is X" name a
    // clause of the question's own school, live now: it becomes an example
    // the engine learns from, so a mistyped id is refused, not kept.
    let clause = form.clause.trim();
    let clause = if EXAMPLE_MARKS.contains(&form.mark.as_str()) {
        clause
    } else {
        ""
    };
    if !clause.is_empty()
        && state
            .service
            .engine()
            .clause(clause)
            .is_none_or(|c| c.school != question.school)
    {
        return (
            StatusCode::BAD_REQUEST,
            pages::not_a_clause(&session, clause, &question.school),
        )
            .into_response();
    }
    let recorded = state.service.record_event(NewEvent {
        school: visible_school(&session, None).unwrap_or_default(),
        asker: format!("dashboard:{}", session.user.name),
        channel: "dashboard".into(),
        reference: form.event.to_string(),
        ..NewEvent::new(
            Kind::Reviewed,
            json!({ "mark": form.mark, "note": form.note.trim(), "clause": clause, "by": session.user.name }),
        )
    });
    if let Err(e) = recorded {
        return internal(e);
    }
    examples_changed(&state).await;
    redirect(if form.back == "unanswered" { "/unanswered" } else { "/" })
}

#[derive(Deserialize)]
struct RemoveExampleForm {
    csrf: String,
    /// The question's audit event id.
    event: i64,
    /// The clause the example is for, as the page showed it: a page shown
    /// before a newer review changed the example removes nothing.
    clause: String,
}

impl Posted for RemoveExampleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Removes a question kept as an example (the Clauses page's button): an
/// audit event, and the engine updated.
async fn remove_example(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<RemoveExampleForm>, FormRejection>,
) -> Response {
    let (session, form) = match posted(&state, &headers, form) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    let example = match state.service.store().example(form.event) {
        Ok(Some(x))
            if x.clause == form.clause
                && visible_school(&session, Some(&x.school)).as_deref() == Some(x.school.as_str()) =>
        {
            x
        }
        Ok(_) => return (StatusCode::NOT_FOUND, "no such example (removed already?)").into_response(),
        Err(e) => return internal(e),
    };
    let recorded = state.service.record_event(NewEvent {
        school: example.school.clone(),
        asker: format!("dashboard:{}", session.user.name),
        channel: "dashboard".into(),
        reference: example.question_event.to_string(),
        ..NewEvent::new(
            Kind::ExampleRemoved,
            json!({ "clause": example.clause, "by": session.user.name, "marked_by": example.by }),
        )
    });
    if let Err(e) = recorded {
        return internal(e);
    }
    examples_changed(&state).await;
    redirect("/clauses")
}

/// Gives the engine the examples after a change. Off the async threads:
/// the engine may embed every example. The change is recorded whatever
/// happens here; an engine that missed it gets it with the next change or
/// reload, so a failure is logged, not shown.
async fn examples_changed(state: &Shared) {
    let state = state.clone();
    match tokio::task::spawn_blocking(move || state.service.examples_changed()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("giving the engine the lead's examples: {e:#}"),
        Err(e) => tracing::error!("giving the engine the lead's examples: {e}"),
    }
}

async fn ask_form(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match require(&state, &headers, true) {
        Ok(session) => pages::ask(&state, &session, None).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct AskForm {
    csrf: String,
    school: String,
    question: String,
}

impl Posted for AskForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn ask(State(state): State<Shared>, headers: HeaderMap, form: Result<Form<AskForm>, FormRejection>) -> Response {
    let (session, form) = match posted(&state, &headers, form) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    let Some(school) =
        visible_school(&session, Some(&form.school)).filter(|s| state.schools.iter().any(|(id, _)| id == s))
    else {
        return (StatusCode::BAD_REQUEST, "choose one of your schools").into_response();
    };
    let state2 = state.clone();
    let question = form.question.clone();
    let asker = format!("dashboard:{}", session.user.name);
    let exchange = tokio::task::spawn_blocking(move || {
        state2.service.answer(
            &question,
            &Who::Local {
                school: &school,
                asker: &asker,
            },
            Channel::Dashboard,
            "",
        )
    })
    .await;
    match exchange {
        Ok(Ok(x)) => pages::ask(&state, &session, Some((&form.question, &x))).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e.into()),
    }
}

/// Serves the dashboard on `addr` until `shutdown` completes.
pub async fn serve(
    state: Shared,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Failed sign-ins of a minute are recorded once it is over, and the
    // last minute's when the dashboard stops.
    let recorder = tokio::spawn({
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                let state = state.clone();
                let _ = tokio::task::spawn_blocking(move || state.record_closed_sign_ins(false)).await;
            }
        }
    });
    let served = axum::serve(
        listener,
        router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    recorder.abort();
    let _ = tokio::task::spawn_blocking(move || state.record_closed_sign_ins(true)).await;
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use policybot_index::corpus::policy_from_bytes;
    use policybot_index::{ClauseIndex, Engine, Settings, Thesaurus};
    use tower::ServiceExt;

    use super::*;
    use crate::directory::Directory;
    use crate::store::Store;
    use crate::store::users::Role;

    const POLICY: &[u8] =
        b"Oakfield ICT Policy\n\nEmail\n\nDon't\n\n- Use personal email addresses to contact parents.\n\n\
Photographs\n\nPhotographs of pupils must only be taken on school devices and stored on the school network.\n";

    /// The dashboard of a one-school service on an in-memory store, and the
    /// e-safety lead's session cookie and CSRF token.
    fn dashboard() -> (Shared, String, String) {
        let policy = policy_from_bytes("oakfield", "ict.txt", POLICY, None).unwrap();
        let (engine, _) = Engine::new(
            vec![policy],
            ClauseIndex::in_ram().unwrap(),
            Thesaurus::from_toml(crate::config::DEFAULT_THESAURUS).unwrap(),
            Settings::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let store = Store::in_memory().unwrap();
        let user = store
            .add_user("hannah", Role::EsafetyLead, None, "a long test password")
            .unwrap();
        let token = store.create_session(&user).unwrap();
        let csrf = store.session(&token).unwrap().unwrap().csrf;
        let service = Service::new(engine, Directory::default(), store);
        let state = Arc::new(AppState::new(
            Arc::new(service),
            vec![("oakfield".into(), "Oakfield".into())],
            false,
        ));
        (state, format!("{COOKIE_NAME}={token}"), csrf)
    }

    async fn send(state: &Shared, method: &str, path: &str, cookie: &str, form: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn ask(state: &Shared, question: &str) -> crate::service::Exchange {
        state
            .service
            .answer(
                question,
                &Who::Local {
                    school: "oakfield",
                    asker: "local",
                },
                Channel::Cli,
                "",
            )
            .unwrap()
    }

    fn clause_about(state: &Shared, word: &str) -> String {
        let engine = state.service.engine();
        let clause = engine.policies()[0]
            .clauses
            .iter()
            .find(|c| c.text.contains(word))
            .unwrap_or_else(|| panic!("no clause says {word:?}"));
        clause.id.clone()
    }

    #[tokio::test]
    async fn the_lead_marks_questions_as_examples_sees_them_on_the_clauses_page_and_removes_them() {
        let (state, cookie, csrf) = dashboard();
        let photos = clause_about(&state, "Photographs");
        let email = clause_about(&state, "email");
        let parking = ask(&state, "Where do I park my car?");
        assert_eq!(parking.kind, "declined", "{parking:?}");
        let answered = ask(&state, "Can I use my personal email to contact parents?");
        assert_eq!(answered.kind, "answered", "{answered:?}");

        // The clause field offers the school's clauses, searchable by
        // their words.
        let (status, page) = send(&state, "GET", "/unanswered", &cookie, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("list=\"clauses-oakfield\""), "{page}");
        assert!(
            page.contains(&format!("<option value=\"{photos}\" label=\"Oakfield ICT Policy, ")),
            "{page}"
        );

        // Covered by a clause: kept as an example, the engine told.
        let (status, _) = send(
            &state,
            "POST",
            "/review",
            &cookie,
            &format!(
                "csrf={csrf}&event={}&mark=covered&clause={photos}&note=&back=unanswered",
                parking.event
            ),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let store = state.service.store();
        let kept = store.example(parking.event).unwrap().expect("kept as an example");
        assert_eq!((kept.clause.as_str(), kept.by.as_str()), (photos.as_str(), "hannah"));
        assert_eq!(state.service.engine().examples_for(&photos).len(), 1);

        // An answer marked wrong names the right clause; a clause id that
        // is not the school's is refused and nothing is recorded.
        let events = store.event_count().unwrap();
        let (status, body) = send(
            &state,
            "POST",
            "/review",
            &cookie,
            &format!("csrf={csrf}&event={}&mark=wrong&clause=oakfield%2Fnope", answered.event),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("is not a clause of oakfield"), "{body}");
        assert_eq!(store.event_count().unwrap(), events);
        let (status, _) = send(
            &state,
            "POST",
            "/review",
            &cookie,
            &format!("csrf={csrf}&event={}&mark=wrong&clause={photos}", answered.event),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(state.service.engine().examples_for(&photos).len(), 2);
        assert!(state.service.engine().examples_for(&email).is_empty());
        let (_, page) = send(&state, "GET", "/", &cookie, "").await;
        assert!(page.contains("the right clause is"), "{page}");

        // The Clauses page shows each example with its remove button.
        let (status, page) = send(&state, "GET", "/clauses", &cookie, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Questions kept as examples"), "{page}");
        assert!(page.contains("Where do I park my car?"), "{page}");
        assert!(page.contains("Photographs of pupils must only be taken"), "{page}");
        assert!(page.contains("action=\"/examples/remove\""), "{page}");

        // Removing: a stale form is refused; then it goes, on the record.
        let remove = format!("event={}&clause={photos}", parking.event);
        let (status, _) = send(
            &state,
            "POST",
            "/examples/remove",
            &cookie,
            &format!("csrf=stale&{remove}"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = send(&state, "POST", "/examples/remove", "", &format!("csrf={csrf}&{remove}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = send(
            &state,
            "POST",
            "/examples/remove",
            &cookie,
            &format!("csrf={csrf}&{remove}"),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(store.example(parking.event).unwrap(), None);
        assert_eq!(state.service.engine().examples_for(&photos).len(), 1);
        let (status, _) = send(
            &state,
            "POST",
            "/examples/remove",
            &cookie,
            &format!("csrf={csrf}&{remove}"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "removed already");
        let removed = store
            .list(&Filter {
                kinds: vec!["example-removed"],
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].reference, parking.event.to_string());
        assert_eq!(removed[0].payload["clause"], photos.as_str());
        let (_, page) = send(&state, "GET", "/clauses", &cookie, "").await;
        assert!(!page.contains("Where do I park my car?"), "{page}");
        assert!(store.verify().unwrap().ok());
    }

    #[tokio::test]
    async fn a_reloaded_engine_is_given_the_examples_in_the_store() {
        let (state, cookie, csrf) = dashboard();
        let photos = clause_about(&state, "Photographs");
        let parking = ask(&state, "Where do I park my car?");
        let form = format!("csrf={csrf}&event={}&mark=covered&clause={photos}", parking.event);
        assert_eq!(
            send(&state, "POST", "/review", &cookie, &form).await.0,
            StatusCode::SEE_OTHER
        );
        // A reloaded engine (policy files changed) gets them too.
        let policy = policy_from_bytes("oakfield", "ict.txt", POLICY, None).unwrap();
        let (engine, _) = Engine::new(
            vec![policy],
            ClauseIndex::in_ram().unwrap(),
            Thesaurus::from_toml(crate::config::DEFAULT_THESAURUS).unwrap(),
            Settings::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert!(engine.examples_for(&photos).is_empty());
        state.service.replace_engine(engine, Default::default());
        let given = state.service.engine().examples_for(&photos);
        assert_eq!(given.len(), 1);
        assert_eq!(given[0].question, "Where do I park my car?");
    }
}
