//! The dashboard end to end: `policybot serve` driven through headless
//! Chromium (chromedriver, WebDriver) as the e-safety lead uses it: sign in,
//! read the questions, ask one, review answers and unanswered questions, the
//! clause report, the chain status and the CSV export. Plain HTTP checks the
//! doors: no session means a redirect or 401, a stale form means 403.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test is
//! skipped with a note, except under CI, where it fails. Screenshots go to
//! `docs/screenshots/` when POLICYBOT_SCREENSHOTS is set (they are committed for
//! the README), otherwise into the sandbox.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{STAFF, SUGGEST_QUESTION, Sandbox, Serve, example_policies, in_ci, repo_dir, write};

const USER: &str = "hannah";
const PASSWORD: &str = "correct horse battery";
const WHATSAPP: &str = "Can I use WhatsApp to message parents?";
const PARKING: &str = "Where do I park my car for the staff parking permit?";
const ASKED_IN_BROWSER: &str = "Can I give my personal mobile number to parents?";
const WRONG_NOTE: &str = "should point to ParentLink first";
const GAP_NOTE: &str = "parking is in the staff handbook";
const CSV_HEADER: &str = "id,at,kind,school,asker,channel,reference,question,";

/// The whole browser session may take this long before the test gives up.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);
/// One page or element may take this long to appear.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn the_esafety_lead_reviews_answers_in_the_browser() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };

    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], STAFF);
    s.add_user(USER, "esafety-lead", PASSWORD);
    s.run(["ask", "--as", "A.Shah@oakfield.example", WHATSAPP])
        .assert_success();
    s.run(["ask", PARKING]).assert_success();
    s.run(["ask", SUGGEST_QUESTION]).assert_success();
    let events = s
        .run(["audit", "list", "--kind", "answered,declined,refused", "--json"])
        .assert_success()
        .json();
    assert_eq!(events[0]["kind"], "answered", "{events}");
    assert_eq!(events[0]["mode"], "answer", "{events}");
    assert_eq!(events[1]["kind"], "declined", "{events}");
    // A suggestion is unanswered for the lead: recorded as declined, with its mode.
    assert_eq!(events[2]["kind"], "declined", "{events}");
    assert_eq!(events[2]["mode"], "suggest", "{events}");
    let whatsapp_clause = events[0]["payload"]["citations"][0]["clause"]
        .as_str()
        .unwrap_or_else(|| panic!("the WhatsApp answer cites no clause: {events}"))
        .to_owned();
    let suggested_clause = events[2]["payload"]["citations"][0]["clause"]
        .as_str()
        .unwrap_or_else(|| panic!("the suggestion names no clause: {events}"))
        .to_owned();

    let server = Serve::start(&s);
    let addr = server.addr;
    let base = format!("http://{addr}");

    // The doors, without a browser.
    let r = http(addr, "GET", "/", None, "");
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/login"), "{r:?}");
    for page in ["/unanswered", "/clauses", "/audit", "/ask", "/export.csv"] {
        let r = http(addr, "GET", page, None, "");
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "GET {page}: {r:?}"
        );
    }
    let r = http(addr, "POST", "/review", None, "csrf=x&event=1&mark=wrong");
    assert_eq!(r.status, 401, "{r:?}");
    let r = http(addr, "POST", "/ask", None, "csrf=x&school=oakfield&question=hi");
    assert_eq!(r.status, 401, "{r:?}");
    let (login_cookie, token) = login_form(addr);
    let r = http(
        addr,
        "POST",
        "/login",
        Some(&login_cookie),
        &format!("csrf={token}&name={USER}&password=not+the+password"),
    );
    assert_eq!(r.status, 401, "{r:?}");
    let r = http(
        addr,
        "POST",
        "/login",
        Some(&login_cookie),
        &format!("csrf={token}&name={USER}&password={}", form_encode(PASSWORD)),
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")), "{r:?}");
    let cookie = r
        .cookie("policybot_session")
        .unwrap_or_else(|| panic!("no session cookie: {r:?}"));
    let r = http(addr, "GET", "/", Some(&cookie), "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(WHATSAPP), "{r:?}");
    let r = http(addr, "POST", "/review", Some(&cookie), "csrf=stale&event=1&mark=wrong");
    assert_eq!(r.status, 403, "a stale CSRF token is refused: {r:?}");

    let shots = screenshot_dir(&s);
    let driver = ChromeDriver::start(&chromedriver, &s);
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", s.policy_dir("chromium-profile").display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let steps = runtime.block_on(async {
        let client = ClientBuilder::rustls()
            .expect("rustls with the system's root certificates (Debian's ca-certificates)")
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}\n{}", driver.log()));
        // The steps run as their own task so that a failed assertion still
        // ends the browser session before the test reports it.
        let browser = Browser {
            client: client.clone(),
            base: base.clone(),
            shots: shots.clone(),
        };
        let clauses = [whatsapp_clause.clone(), suggested_clause.clone()];
        let config = s.config_path();
        let steps = tokio::spawn(async move {
            tokio::time::timeout(BROWSER_TIMEOUT, browser.session(&clauses, &config))
                .await
                .unwrap_or_else(|_| panic!("the browser session took longer than {BROWSER_TIMEOUT:?}"))
        })
        .await;
        let _ = client.close().await;
        steps
    });
    if let Err(e) = steps {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the browser steps did not finish: {e}"),
        }
    }

    for name in ["sign-in", "questions", "ask", "unanswered", "clauses", "audit"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}.png is a PNG");
    }
    s.run(["audit", "verify"]).assert_success();
    drop(driver);
    drop(server);
}

/// The browser, the dashboard's address and where screenshots go.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    /// `clauses`: the one the WhatsApp answer cites, the first one suggested.
    async fn session(&self, clauses: &[String; 2], config: &Path) {
        let [whatsapp_clause, suggested_clause] = clauses;
        self.viewport(1280, 900).await;

        // Not signed in: sent to the sign-in page.
        self.client.goto(&format!("{}/", self.base)).await.expect("opening /");
        self.page("Sign in").await;
        assert_eq!(self.path().await, "/login");
        self.shot("sign-in").await;
        self.find("input[name=name]").await.send_keys(USER).await.unwrap();
        self.find("input[name=password]")
            .await
            .send_keys(PASSWORD)
            .await
            .unwrap();
        self.follow(self.find("form[action='/login'] button[type=submit]").await)
            .await;

        // The questions asked so far.
        self.page("Questions and answers").await;
        assert_eq!(self.path().await, "/");
        let body = self.body_text().await;
        assert!(body.contains(WHATSAPP), "{body}");
        assert!(body.contains(PARKING), "{body}");
        assert!(body.contains("hannah (esafety-lead)"), "{body}");

        // Ask through the form: the answer quotes the policy.
        self.follow(self.find("a[href='/ask']").await).await;
        self.page("Ask").await;
        self.find("textarea[name=question]")
            .await
            .send_keys(ASKED_IN_BROWSER)
            .await
            .unwrap();
        self.follow(self.find("form[action='/ask'] button[type=submit]").await)
            .await;
        self.wait_for("main h2").await;
        let heading = self.find("main h2").await.text().await.unwrap();
        assert_eq!(heading, format!("“{ASKED_IN_BROWSER}”"));
        let reply = self.find("main blockquote").await.text().await.unwrap();
        assert!(
            reply.contains('“') && reply.contains('”'),
            "the reply quotes a clause: {reply}"
        );
        assert!(
            reply.contains("personal mobile number"),
            "the reply quotes the clause on mobile numbers: {reply}"
        );
        assert!(self.body_text().await.contains("Recorded as audit event"));
        self.shot("ask").await;

        // Not sure: the page says so with the mode's badge and the closest clauses.
        self.find("textarea[name=question]")
            .await
            .send_keys(SUGGEST_QUESTION)
            .await
            .unwrap();
        self.follow(self.find("form[action='/ask'] button[type=submit]").await)
            .await;
        self.wait_for("main span.mode").await;
        let badge = self.find("main span.mode").await.text().await.unwrap();
        assert_eq!(badge, "suggested");
        let reply = self.find("main blockquote").await.text().await.unwrap();
        assert!(reply.starts_with("I'm not sure which clause answers this"), "{reply}");
        assert!(reply.contains("Under ‘Don't:’ — “"), "{reply}");

        // Mark the WhatsApp answer wrong, with a note.
        self.follow(self.find("a[href='/']").await).await;
        self.page("Questions and answers").await;
        let row = format!("//tr[td[normalize-space()={}]]", xpath_literal(WHATSAPP));
        let body = self.body_text().await;
        assert!(
            body.contains(ASKED_IN_BROWSER),
            "the browser's question is listed: {body}"
        );
        self.find_xpath(&format!("{row}//input[@name='note']"))
            .await
            .send_keys(WRONG_NOTE)
            .await
            .unwrap();
        self.follow(
            self.find_xpath(&format!("{row}//button[@name='mark' and @value='wrong']"))
                .await,
        )
        .await;
        self.page("Questions and answers").await;
        let reviewed = self.find_xpath(&row).await.text().await.unwrap();
        assert!(reviewed.contains("marked wrong"), "{reviewed}");
        assert!(reviewed.contains(WRONG_NOTE), "{reviewed}");
        assert!(reviewed.contains("by hannah"), "{reviewed}");
        assert!(reviewed.contains("answered"), "the mode's badge: {reviewed}");
        let suggestion = self.row_text(SUGGEST_QUESTION).await;
        assert!(suggestion.contains("suggested"), "the mode's badge: {suggestion}");
        assert!(
            suggestion.contains(suggested_clause.as_str()),
            "the suggested clauses are listed: {suggestion}"
        );
        self.shot("questions").await;

        // The clause report counts the wrong answer against its clause.
        self.follow(self.find("a[href='/clauses']").await).await;
        self.page("Clauses cited").await;
        let clause_row = format!("//tr[td/span[normalize-space()={}]]", xpath_literal(whatsapp_clause));
        let cells = self
            .client
            .find_all(Locator::XPath(&format!("{clause_row}/td")))
            .await
            .unwrap();
        assert_eq!(cells.len(), 4, "clause {whatsapp_clause} has a row");
        let wrong = cells[3].text().await.unwrap();
        assert_eq!(wrong, "1", "marked wrong once: {}", self.body_text().await);
        self.shot("clauses").await;

        // The declined question is waiting on the unanswered page: a gap.
        self.follow(self.find("a[href='/unanswered']").await).await;
        self.page("Unanswered questions").await;
        let row = format!("//tr[td[normalize-space()={}]]", xpath_literal(PARKING));
        self.find_xpath(&format!("{row}//input[@name='note']"))
            .await
            .send_keys(GAP_NOTE)
            .await
            .unwrap();
        self.follow(
            self.find_xpath(&format!("{row}//button[@name='mark' and @value='gap']"))
                .await,
        )
        .await;
        self.page("Unanswered questions").await;
        assert_eq!(self.path().await, "/unanswered", "back on the unanswered page");
        let reviewed = self.find_xpath(&row).await.text().await.unwrap();
        assert!(reviewed.contains("marked gap"), "{reviewed}");
        assert!(reviewed.contains(GAP_NOTE), "{reviewed}");
        // A suggestion waits here too, with the clauses it offered.
        let suggestion = self.row_text(SUGGEST_QUESTION).await;
        assert!(suggestion.contains("suggested"), "the mode's badge: {suggestion}");
        assert!(
            suggestion.contains(suggested_clause.as_str()),
            "the suggested clauses are listed: {suggestion}"
        );
        self.shot("unanswered").await;

        // The chain is intact and counts what the command line counts.
        self.follow(self.find("a[href='/audit']").await).await;
        self.page("Audit log").await;
        let status = self.find("main p.ok").await.text().await.unwrap();
        let events: u64 = status
            .strip_prefix("Chain intact: ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no chain status: {status}"));
        let config = config.to_owned();
        let cli = tokio::task::spawn_blocking(move || {
            crate::support::run_in(
                config.parent().unwrap(),
                ["--config", config.to_str().unwrap(), "audit", "verify", "--json"],
            )
        })
        .await
        .unwrap();
        assert_eq!(cli.assert_success().json()["events"], events, "{status}");
        self.shot("audit").await;

        // The CSV export, fetched by the signed-in page.
        let fetched = self
            .client
            .execute(
                "return fetch('/export.csv').then(r => r.text().then(t => [r.status, r.headers.get('content-type'), t]));",
                vec![],
            )
            .await
            .expect("fetching /export.csv in the page");
        assert_eq!(fetched[0], 200, "{fetched}");
        assert_eq!(fetched[1], "text/csv; charset=utf-8", "{fetched}");
        let csv = fetched[2].as_str().unwrap_or_default();
        assert!(csv.starts_with(CSV_HEADER), "{csv}");
        assert!(csv.contains(",mode,"), "the mode is a column: {csv}");
        for question in [WHATSAPP, PARKING, ASKED_IN_BROWSER, SUGGEST_QUESTION] {
            assert!(csv.contains(question), "{question} is exported: {csv}");
        }
    }

    /// Sizes the window so that the page itself (and so each screenshot) is
    /// `width` x `height`: headless Chromium counts window chrome in the
    /// window size.
    async fn viewport(&self, width: u32, height: u32) {
        let script = "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];";
        let chrome = self.client.execute(script, vec![]).await.expect("measuring the window");
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0) as u32;
        self.client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .expect("setting the window size");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("measuring the page");
        assert_eq!(inner, json!([width, height]), "the page's size");
    }

    /// Clicks `element` and waits until the browser has left the page it was
    /// on: the next page can carry the same heading (a form posts back to its
    /// own page), so waiting for the heading alone could read the old page.
    async fn follow(&self, element: fantoccini::elements::Element) {
        let old_page = self.find("html").await;
        element.click().await.expect("clicking");
        let left = async {
            while old_page.tag_name().await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(STEP_TIMEOUT, left).await.is_err() {
            panic!("the click did not leave {}", self.describe().await);
        }
    }

    /// Waits for the page whose heading is `title`.
    async fn page(&self, title: &str) {
        self.wait_for_xpath(&format!("//main/h1[normalize-space()={}]", xpath_literal(title)))
            .await;
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_owned()
    }

    /// The text of the table row whose question is `question`.
    async fn row_text(&self, question: &str) -> String {
        let row = format!("//tr[td[normalize-space()={}]]", xpath_literal(question));
        self.find_xpath(&row).await.text().await.expect("the row's text")
    }

    async fn body_text(&self) -> String {
        self.find("body").await.text().await.expect("the page text")
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_for(css).await
    }

    async fn find_xpath(&self, xpath: &str) -> fantoccini::elements::Element {
        self.wait_for_xpath(xpath).await
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{css} not found ({e}) on {}", self.describe().await),
        }
    }

    async fn wait_for_xpath(&self, xpath: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{xpath} not found ({e}) on {}", self.describe().await),
        }
    }

    /// The current page, for a failure message.
    async fn describe(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let source = self.client.source().await.unwrap_or_default();
        format!("{url}:\n{source}")
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        write(&self.shots.join(format!("{name}.png")), png);
    }
}

/// Chromium and chromedriver, or None (with a note) when they are not
/// installed; under CI their absence is a failure.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = (find_program("chromium"), find_program("chromedriver"));
    if let (Some(chromium), Some(chromedriver)) = found {
        return Some((chromium, chromedriver));
    }
    let missing = "chromium and chromedriver (Debian packages chromium, chromium-driver)";
    if in_ci() {
        panic!("{missing} are not installed; CI must run the dashboard test in the browser");
    }
    eprintln!("note: {missing} not found; skipping the dashboard browser test");
    None
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where screenshots go: the repository's docs/screenshots when
/// POLICYBOT_SCREENSHOTS is set, otherwise the sandbox.
fn screenshot_dir(s: &Sandbox) -> PathBuf {
    let dir = if std::env::var_os("POLICYBOT_SCREENSHOTS").is_some() {
        repo_dir().join("docs").join("screenshots")
    } else {
        s.path().join("screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// chromedriver on a free loopback port, in its own process group so that the
/// browsers it starts end with it.
struct ChromeDriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ChromeDriver {
    fn start(program: &Path, s: &Sandbox) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = s.path().join("chromedriver.log");
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        loop {
            if TcpStream::connect(addr).is_ok() && http(addr, "GET", "/status", None, "").status == 200 {
                break driver;
            }
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "chromedriver did not start on port {port}\n{}",
                driver.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium it left running.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with the negated id of the process group this
        // test created for chromedriver; it touches nothing else.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A response read by [`http`].
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Set-Cookie line for cookie `name`, whole.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// `name=value` of cookie `name`, as a browser sends it back.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
    }
}

/// One HTTP/1.1 request without a browser: no cookie unless given, a form
/// body for POST. Redirects are not followed.
fn http(addr: SocketAddr, method: &str, path: &str, cookie: Option<&str>, form: &str) -> Response {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    exchange(stream, addr, method, path, cookie, form)
}

/// [`http`] from another loopback address (127.0.0.2…): another computer,
/// as far as the dashboard can tell.
fn http_from(from: Ipv4Addr, addr: SocketAddr, method: &str, path: &str, cookie: Option<&str>, form: &str) -> Response {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap_or_else(|e| panic!("connecting from {from} to {addr}: {e}"));
    stream.set_nonblocking(false).unwrap();
    exchange(stream, addr, method, path, cookie, form)
}

/// Sends the request on `stream` and reads the response. The request is
/// written from another thread, so a server that answers before reading
/// the whole body (413) is heard.
fn exchange(
    mut stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> Response {
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        request.push_str(&format!("Cookie: {c}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(form);
    let mut writer = stream.try_clone().unwrap();
    let written = std::thread::spawn(move || writer.write_all(request.as_bytes()));
    // Up to the end of the head, then Content-Length bytes (chromedriver
    // keeps the connection open), or to the end when there is no length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(n > 0, "{method} {path}: the connection closed before the headers ended");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP response: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = raw.split_off(head_end);
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut buf).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                assert!(n > 0, "{method} {path}: the body ended early");
                body.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            stream
                .read_to_end(&mut body)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    // Whether the server read all of a body it refused does not matter;
    // shutting the socket down ends a write still waiting.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = written.join();
    Response { status, headers, body }
}

/// `text` as an application/x-www-form-urlencoded value.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `text` as an XPath string literal.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// The sign-in page's pre-session cookie (`name=value`) and its form's
/// CSRF token.
fn login_form(addr: SocketAddr) -> (String, String) {
    let r = http(addr, "GET", "/login", None, "");
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r
        .cookie("policybot_login")
        .unwrap_or_else(|| panic!("no sign-in cookie: {r:?}"));
    let token = r
        .body
        .split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in the sign-in form: {r:?}"))
        .to_owned();
    (cookie, token)
}

/// A sandbox with the example school and the e-safety lead's account.
fn with_lead(extra: &str) -> Sandbox {
    let s = Sandbox::empty();
    s.write_config_with(&[("oakfield", &example_policies())], &format!("{STAFF}{extra}"));
    s.add_user(USER, "esafety-lead", PASSWORD);
    s
}

/// `audit list --kind login-failed --json`.
fn failed_sign_ins(s: &Sandbox) -> Vec<Value> {
    s.run(["audit", "list", "--kind", "login-failed", "--json"])
        .assert_success()
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

/// Failed and throttled sign-ins the events account for.
fn counted(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| e["payload"]["failed"].as_u64().unwrap_or(0) + e["payload"]["throttled"].as_u64().unwrap_or(0))
        .sum()
}

/// The store's size on disk, with its write-ahead log.
fn store_bytes(s: &Sandbox) -> u64 {
    let store = s.store_path();
    let wal = store.with_extension("sqlite3-wal");
    [store, wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Issue 14 item 2: sign-in attempts from anyone who can reach the page
/// grew the append-only log without limit (20 one-megabyte names: 20 rows,
/// 24 MB). Now a megabyte name is refused unread, and a client's failures
/// are at most two bounded events a minute.
#[test]
fn a_flood_of_failed_sign_ins_adds_little_to_the_audit_log() {
    let s = with_lead("");
    let server = Serve::start(&s);
    let addr = server.addr;
    let before_rows = s.run(["audit", "verify", "--json"]).assert_success().json()["events"]
        .as_u64()
        .unwrap();
    let before_bytes = store_bytes(&s);
    let (cookie, token) = login_form(addr);

    let megabyte = "n".repeat(1 << 20);
    for i in 0..5 {
        let r = http(
            addr,
            "POST",
            "/login",
            Some(&cookie),
            &format!("csrf={token}&name={i}{megabyte}&password=x"),
        );
        assert_eq!(r.status, 413, "{:?}", (r.status, &r.headers));
        assert!(r.body.contains("far too long"), "{}", r.body);
    }
    let attempts = 150u64;
    let (mut refused, mut throttled) = (0, 0);
    for i in 0..attempts {
        // As long as a sign-in body may be, every one different.
        let name = format!("{i}-{}", "a".repeat(3000));
        let r = http(
            addr,
            "POST",
            "/login",
            Some(&cookie),
            &format!("csrf={token}&name={name}&password=wrong+{i}"),
        );
        match r.status {
            401 => refused += 1,
            429 => throttled += 1,
            _ => panic!("attempt {i}: {r:?}"),
        }
    }
    assert_eq!(refused, 20, "the client is throttled after 20 failures");
    assert_eq!(refused + throttled, attempts);
    let recorded_at_once = failed_sign_ins(&s);
    assert!(
        (1..=2).contains(&recorded_at_once.len()),
        "the first failure of each minute is on disk at once: {recorded_at_once:?}"
    );

    // Stopping records the minute in progress.
    let status = server.stop_within(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let events = failed_sign_ins(&s);
    assert!(
        events.len() <= 4,
        "at most two events a minute: {} events",
        events.len()
    );
    assert_eq!(counted(&events), attempts, "every attempt is counted: {events:?}");
    for e in &events {
        assert_eq!(e["reference"], "127.0.0.1", "{e}");
        let size = e.to_string().len();
        assert!(size < 2048, "an event of {size} bytes: {e}");
        for name in e["payload"]["names"].as_array().unwrap() {
            assert!(name.as_str().unwrap().chars().count() <= 65, "{name}");
        }
    }
    let rows = s.run(["audit", "verify", "--json"]).assert_success().json()["events"]
        .as_u64()
        .unwrap();
    assert_eq!(rows - before_rows, events.len() as u64);
    let grown = store_bytes(&s).saturating_sub(before_bytes);
    assert!(
        grown < 256 * 1024,
        "5 MB of names and 450 kB of attempts grew the store by {grown} bytes"
    );
}

/// Issue 14 item 9: five wrong passwords locked a name out for 15 minutes,
/// even for the right password, so anyone could lock the e-safety lead out.
/// Now the guesser is throttled, not the name.
#[test]
fn a_guesser_cannot_lock_the_esafety_lead_out() {
    let s = with_lead("");
    let server = Serve::start(&s);
    let addr = server.addr;
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    let (cookie, token) = login_form(addr);
    let statuses: Vec<u16> = (0..12)
        .map(|i| {
            http_from(
                attacker,
                addr,
                "POST",
                "/login",
                Some(&cookie),
                &format!("csrf={token}&name={USER}&password=guess+{i}"),
            )
            .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|&s| s == 429), "{statuses:?}");
    // Even the right password is not tried from the guesser's address now…
    let r = http_from(
        attacker,
        addr,
        "POST",
        "/login",
        Some(&cookie),
        &format!("csrf={token}&name={USER}&password={}", form_encode(PASSWORD)),
    );
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("wait 15 minutes"), "{}", r.body);
    // …but from her own computer Hannah signs in.
    let hannah = Ipv4Addr::new(127, 0, 0, 2);
    let r = http_from(hannah, addr, "GET", "/login", None, "");
    let her_cookie = r.cookie("policybot_login").expect("a sign-in cookie");
    let (_, her_token) = r.body.split_once("name=\"csrf\" value=\"").unwrap();
    let her_token = her_token.split('"').next().unwrap();
    let r = http_from(
        hannah,
        addr,
        "POST",
        "/login",
        Some(&her_cookie),
        &format!("csrf={her_token}&name={USER}&password={}", form_encode(PASSWORD)),
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")), "{r:?}");
    assert!(r.cookie("policybot_session").is_some(), "{r:?}");

    // A guesser at many names is throttled for every name.
    let sprayer = Ipv4Addr::new(127, 0, 0, 3);
    let statuses: Vec<u16> = (0..25)
        .map(|i| {
            http_from(
                sprayer,
                addr,
                "POST",
                "/login",
                Some(&cookie),
                &format!("csrf={token}&name=user{i}&password=guess"),
            )
            .status
        })
        .collect();
    assert_eq!(&statuses[..20], &[401; 20], "{statuses:?}");
    assert_eq!(&statuses[20..], &[429; 5], "{statuses:?}");
}

/// Issue 14 item 8: an https `public_url` alone did not make the cookies
/// Secure.
#[test]
fn cookies_are_secure_when_the_dashboard_is_reached_over_https() {
    let s = with_lead("\n[dashboard]\npublic_url = \"https://policybot.oakfield.example\"\n");
    let server = Serve::start(&s);
    let addr = server.addr;
    let r = http(addr, "GET", "/login", None, "");
    let login_cookie = r.set_cookie("policybot_login").expect("a sign-in cookie");
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let (cookie, token) = login_form(addr);
    let r = http(
        addr,
        "POST",
        "/login",
        Some(&cookie),
        &format!("csrf={token}&name={USER}&password={}", form_encode(PASSWORD)),
    );
    let session = r.set_cookie("policybot_session").expect("a session cookie");
    assert!(session.contains("; Secure"), "{session}");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    drop(server);

    // Over plain http (the tests' own case) they cannot be: the browser
    // would never send them back.
    let s = with_lead("");
    let server = Serve::start(&s);
    let r = http(server.addr, "GET", "/login", None, "");
    let login_cookie = r.set_cookie("policybot_login").expect("a sign-in cookie");
    assert!(!login_cookie.contains("Secure"), "{login_cookie}");
}

/// Issue 14 item 12: no response forbade framing or sniffing, the sign-in
/// form had no CSRF token, and the diff page echoed what it was asked for.
#[test]
fn every_response_carries_security_headers_and_sign_in_needs_its_form() {
    let s = with_lead("");
    let server = Serve::start(&s);
    let addr = server.addr;

    // Another site's form cannot sign the browser in: no token, a token
    // without its cookie, or a cookie with another form's token.
    let (cookie, token) = login_form(addr);
    let (other_cookie, _) = login_form(addr);
    let credentials = format!("name={USER}&password={}", form_encode(PASSWORD));
    for (cookie, body) in [
        (Some(cookie.as_str()), credentials.clone()),
        (None, format!("csrf={token}&{credentials}")),
        (Some(other_cookie.as_str()), format!("csrf={token}&{credentials}")),
    ] {
        let r = http(addr, "POST", "/login", cookie, &body);
        assert_eq!(r.status, 403, "{cookie:?} {body}: {r:?}");
        assert!(r.cookie("policybot_session").is_none(), "{r:?}");
        assert!(r.body.contains("expired"), "{}", r.body);
    }
    let r = http(
        addr,
        "POST",
        "/login",
        Some(&cookie),
        &format!("csrf={token}&{credentials}"),
    );
    assert_eq!(r.status, 303, "{r:?}");
    let spent = r.set_cookie("policybot_login").expect("the sign-in cookie is cleared");
    assert!(spent.contains("Max-Age=0"), "{spent}");
    let session = r.cookie("policybot_session").expect("a session");

    let responses = [
        ("GET /login", http(addr, "GET", "/login", None, "")),
        ("GET / signed out", http(addr, "GET", "/", None, "")),
        ("GET / signed in", http(addr, "GET", "/", Some(&session), "")),
        ("GET /ask", http(addr, "GET", "/ask", Some(&session), "")),
        ("GET /nowhere", http(addr, "GET", "/nowhere", Some(&session), "")),
        ("POST /review", http(addr, "POST", "/review", None, "csrf=x")),
        (
            "GET /policies/diff",
            http(
                addr,
                "GET",
                "/policies/diff?school=oakfield&policy=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                Some(&session),
                "",
            ),
        ),
    ];
    for (what, r) in &responses {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}: {r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}: {r:?}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}: {r:?}");
        let csp = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no CSP: {r:?}"));
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "style-src 'sha256-",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{what}: {csp}");
    }
    let diff = &responses[6].1;
    assert_eq!(diff.status, 404, "{diff:?}");
    assert!(
        !diff.body.contains("script") && !diff.body.contains("alert"),
        "the diff page echoes its input: {}",
        diff.body
    );

    // The stylesheet the policy allows is the one the pages carry.
    let page = &responses[2].1.body;
    let style = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(css, _)| css)
        .expect("an inline stylesheet");
    let csp = responses[2].1.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("'sha256-{}'", base64_sha256(style))), "{csp}");
}

/// The SHA-256 of `text`, base64: the form CSP hashes take.
fn base64_sha256(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}
