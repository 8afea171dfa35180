//! The e-safety lead's dashboard: server-rendered HTML (maud escapes every
//! value), no JavaScript. Only signed-in users see anything; every form carries
//! the session's CSRF token; sign-ins are rate limited and recorded.

mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::service::{Channel, Service, Who};
use crate::store::audit::{Filter, Kind, NewEvent, Verification};
use crate::store::users::Session;

/// A diff's changes as HTML (for nudges by email).
pub fn changes_html(changes: &policybot_index::diff::PolicyDiff<'_>) -> String {
    pages::changes_markup(changes).into_string()
}

const COOKIE_NAME: &str = "policybot_session";
/// Failed sign-ins allowed per address and name within [`LOGIN_WINDOW`].
const LOGIN_ATTEMPTS: usize = 5;
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct AppState {
    pub service: Arc<Service>,
    /// (id, name) of every configured school.
    pub schools: Vec<(String, String)>,
    /// Send cookies with `Secure` (when the dashboard is served over HTTPS).
    pub secure_cookies: bool,
    failed_logins: Mutex<HashMap<String, Vec<Instant>>>,
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
            failed_logins: Mutex::new(HashMap::new()),
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
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .with_state(state)
}

// ------------------------------------------------------------------ auth

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE_NAME && !v.is_empty()).then(|| v.to_owned())
        })
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
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::SignIn => redirect("/login"),
            Denied::Unauthorized => (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
            Denied::Incomplete => (StatusCode::BAD_REQUEST, "the form was incomplete").into_response(),
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
    name: String,
    password: String,
}

async fn login_form() -> Response {
    pages::login(None).into_response()
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let key = format!("{}|{}", peer.ip(), form.name);
    {
        let mut failed = state.failed_logins.lock().unwrap_or_else(|p| p.into_inner());
        let recent = failed.entry(key.clone()).or_default();
        recent.retain(|t| t.elapsed() < LOGIN_WINDOW);
        if recent.len() >= LOGIN_ATTEMPTS {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(Some("Too many attempts: wait 15 minutes.")),
            )
                .into_response();
        }
    }
    let state2 = state.clone();
    let (name, password) = (form.name.clone(), form.password);
    let checked = tokio::task::spawn_blocking(move || state2.service.store().check_password(&name, &password)).await;
    let user = match checked {
        Ok(Ok(user)) => user,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e.into()),
    };
    let record = |ok: bool| {
        state.service.record_event(NewEvent {
            asker: format!("dashboard:{}", form.name),
            channel: "dashboard".into(),
            reference: peer.ip().to_string(),
            ..NewEvent::new(Kind::SignedIn, json!({ "ok": ok }))
        })
    };
    let Some(user) = user else {
        state
            .failed_logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .push(Instant::now());
        if let Err(e) = record(false) {
            return internal(e);
        }
        return (
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That name and password do not match.")),
        )
            .into_response();
    };
    let token = match state
        .service
        .store()
        .create_session(&user)
        .and_then(|t| record(true).map(|_| t))
    {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        8 * 3600
    );
    let mut response = redirect("/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, v);
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
    let Ok(Form(form)) = form else {
        return Err(Denied::Incomplete);
    };
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
    match state.service.store().clause_counts(filter.school.as_deref()) {
        Ok(rows) => pages::clause_report(&state, &session, &rows).into_response(),
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
        Err(e) => (StatusCode::NOT_FOUND, format!("{e:#}")).into_response(),
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
    let allowed: &[&str] = match state.service.store().event(form.event) {
        Ok(Some(e)) if visible_school(&session, Some(&e.school)).as_deref() == Some(e.school.as_str()) => {
            match e.kind.as_str() {
                "answered" => &["correct", "wrong"],
                "declined" => &["covered", "gap"],
                _ => &[],
            }
        }
        Ok(_) => &[],
        Err(e) => return internal(e),
    };
    if !allowed.contains(&form.mark.as_str()) {
        return (StatusCode::BAD_REQUEST, "that event cannot be given that review").into_response();
    }
    let recorded = state.service.record_event(NewEvent {
        school: visible_school(&session, None).unwrap_or_default(),
        asker: format!("dashboard:{}", session.user.name),
        channel: "dashboard".into(),
        reference: form.event.to_string(),
        ..NewEvent::new(
            Kind::Reviewed,
            json!({ "mark": form.mark, "note": form.note.trim(), "clause": form.clause.trim(), "by": session.user.name }),
        )
    });
    match recorded {
        Ok(_) => redirect(if form.back == "unanswered" { "/unanswered" } else { "/" }),
        Err(e) => internal(e),
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
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
