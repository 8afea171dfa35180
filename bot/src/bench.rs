//! `policybot bench`: index build throughput and answer latency on a generated corpus.
//!
//! Why it exists: the bot has two performance budgets on its target machine
//! (2 cores) that tests cannot see. Re-indexing every school's policies must
//! run at 50k clauses/s or better, so a full rebuild stays a matter of seconds;
//! and a member of staff must get an answer with a p99 of 5 ms or less, so the
//! bot feels instant even while it serves a whole trust. Real policies are too
//! few to measure that scale, so the bench writes AUP-like policy text itself
//! (numbered sections, "Do"/"Don't" lists, bullets, wrapped paragraphs) and
//! staff-style questions (with typos and off-topic ones), from a fixed-seed
//! PRNG so every run measures the same corpus, and drives them through the same
//! parser, index and engine as `policybot ask`.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use policybot_index::corpus::policy_from_bytes;
use policybot_index::{Asker, ClauseIndex, Engine, Policy, Settings, Thesaurus};
use serde_json::json;

use crate::config::DEFAULT_THESAURUS;
use crate::load::bar;

/// Fixed seed: the same corpus and questions on every run.
const SEED: u64 = 0x5EED_B07C_2026_0901;
/// One policy per school of about this many clauses.
const CLAUSES_PER_SCHOOL: usize = 250;
/// Untimed questions asked first, so caches and lazy statics are warm.
const WARM_UP: usize = 50;
/// Modification date stamped on generated policies (used in version labels).
const MODIFIED: &str = "2026-09-01";

const TARGET_BUILD_RATE: f64 = 50_000.0;
const TARGET_P99_MS: f64 = 5.0;

pub fn run(clauses: usize, questions: usize, model: Option<&std::path::Path>, json: bool) -> Result<()> {
    if clauses == 0 {
        bail!("bench: --clauses must be at least 1");
    }
    let mut rng = Rng::new(SEED);
    let generated = generate_corpus(&mut rng, clauses);
    let parse_start = Instant::now();
    let policies = parse_corpus(&generated)?;
    let parse_seconds = parse_start.elapsed().as_secs_f64();
    let schools: Vec<String> = generated.into_iter().map(|g| g.school).collect();
    let total: usize = policies.iter().map(|p| p.clauses.len()).sum();

    // The in-RAM figure is kept for comparison; the on-disk index is what
    // `policybot index` builds, so it is the one reported and queried.
    let in_ram = build(policies.clone(), ClauseIndex::in_ram()?, "RAM index")?;
    drop(in_ram.engine);
    let dir = tempfile::TempDir::new().context("creating a temporary index directory")?;
    let on_disk = build(policies, ClauseIndex::open_in_dir(dir.path())?, "disk index")?;

    let asked = generate_questions(&mut rng, questions + WARM_UP);
    let asks: Vec<(String, &str)> = asked
        .into_iter()
        .map(|q| (q, schools[rng.below(schools.len())].as_str()))
        .collect();
    let latency = measure_latency(&on_disk.engine, &asks)?;
    let semantic = match model {
        Some(model) => Some(semantic(on_disk.engine, dir.path(), model, &asks)?),
        None => None,
    };

    let parse_rate = rate(total, parse_seconds);
    let build_rate = rate(total, on_disk.seconds);
    let build_pass = build_rate >= TARGET_BUILD_RATE;
    let p99_pass = latency.p99 <= TARGET_P99_MS;
    if json {
        let report = json!({
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "corpus": {
                "clauses": total,
                "schools": schools.len(),
                "parse_seconds": parse_seconds,
                "parse_clauses_per_sec": parse_rate,
            },
            "build": {
                "index": "disk",
                "seconds": on_disk.seconds,
                "clauses_per_sec": build_rate,
                "in_ram_seconds": in_ram.seconds,
                "in_ram_clauses_per_sec": rate(total, in_ram.seconds),
            },
            "latency_ms": {
                "questions": latency.timed,
                "warm_up": WARM_UP,
                "p50": latency.p50,
                "p95": latency.p95,
                "p99": latency.p99,
                "max": latency.max,
                "mean": latency.mean,
            },
            "answered": latency.answered,
            "model": model.map(|m| m.display().to_string()),
            "declined": latency.timed - latency.answered,
            "answered_share": latency.answered_share(),
            "targets": {
                "build_clauses_per_sec": TARGET_BUILD_RATE,
                "build_pass": build_pass,
                "p99_ms": TARGET_P99_MS,
                "p99_pass": p99_pass,
            },
        });
        println!("{report}");
    } else {
        println!(
            "corpus: {total} clauses in {} schools (parse {}, {} clauses/s)",
            schools.len(),
            seconds(parse_seconds),
            per_sec(parse_rate)
        );
        println!(
            "index build: {}, {} clauses/s (on disk; in RAM {}, {} clauses/s)",
            seconds(on_disk.seconds),
            per_sec(build_rate),
            seconds(in_ram.seconds),
            per_sec(rate(total, in_ram.seconds))
        );
        println!(
            "answer latency over {} questions: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (answered {:.0}%)",
            latency.timed,
            latency.p50,
            latency.p95,
            latency.p99,
            latency.max,
            latency.answered_share() * 100.0
        );
        // The README's table rows these figures back, to paste as printed.
        println!("README rows:");
        println!(
            "| index build (on disk) | {:.0}k clauses/s | ≥ {:.0}k clauses/s |",
            build_rate / 1000.0,
            TARGET_BUILD_RATE / 1000.0
        );
        println!(
            "| answer latency p50 / p95 / p99 | {:.2} / {:.2} / {:.2} ms | p99 ≤ {TARGET_P99_MS} ms |",
            latency.p50, latency.p95, latency.p99
        );
        println!(
            "targets: build >= {}k clauses/s: {}, p99 <= {TARGET_P99_MS} ms: {}",
            TARGET_BUILD_RATE / 1000.0,
            pass(build_pass),
            pass(p99_pass)
        );
    }
    if let Some(s) = semantic {
        s.print(total, json);
    }
    drop(dir);
    Ok(())
}

// ---------------------------------------------------------------- measuring

/// Issue 15's budgets for the hybrid engine (2 cores, 100k clauses).
const TARGET_SEMANTIC_P99_MS: f64 = 25.0;
const TARGET_MODEL_LOAD_MS: f64 = 300.0;
const TARGET_EMBED_RATE: f64 = 300.0;
const TARGET_RSS_MB: f64 = 400.0;

/// The hybrid engine on the same corpus and index.
struct Semantic {
    load_ms: f64,
    embedded: usize,
    embed_seconds: f64,
    reused: usize,
    reuse_seconds: f64,
    latency: Latency,
    rss_mb: f64,
}

/// Loads the model, embeds every clause (then again with nothing changed:
/// the vectors are read back from beside the index), and times answers with
/// the question's own embedding; the resident memory is read last.
fn semantic(
    engine: Engine,
    index_dir: &std::path::Path,
    model: &std::path::Path,
    asks: &[(String, &str)],
) -> Result<Semantic> {
    let start = Instant::now();
    let embedder = std::sync::Arc::new(policybot_index::embed::Embedder::load(model)?);
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let policies = engine.policies().to_vec();
    let embed = |engine: Engine, what: &str| -> Result<(Engine, policybot_index::vectors::VectorReport, f64)> {
        let progress = bar(0, what);
        let mut tick = |done: usize, total: usize| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        };
        let start = Instant::now();
        let (engine, report) = engine.with_embedder(embedder.clone(), &mut tick)?;
        progress.finish_and_clear();
        Ok((engine, report, start.elapsed().as_secs_f64()))
    };
    let (engine, first, embed_seconds) = embed(engine, "embedding")?;
    drop(engine);
    let thesaurus = Thesaurus::from_toml(DEFAULT_THESAURUS).context("parsing the built-in thesaurus")?;
    let (engine, _) = Engine::new(
        policies,
        ClauseIndex::open_in_dir(index_dir)?,
        thesaurus,
        Settings::default(),
        &mut |_, _| {},
    )?;
    let (engine, again, reuse_seconds) = embed(engine, "re-reading")?;
    ensure!(
        again.embedded == 0,
        "nothing changed, yet {} clauses were embedded again",
        again.embedded
    );
    let latency = measure_latency(&engine, asks)?;
    Ok(Semantic {
        load_ms,
        embedded: first.embedded,
        embed_seconds,
        reused: again.reused,
        reuse_seconds,
        latency,
        rss_mb: resident_mb(),
    })
}

/// This process's resident memory now, in MB (Linux; 0 elsewhere).
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl Semantic {
    fn print(&self, clauses: usize, json: bool) {
        let rate = rate(self.embedded, self.embed_seconds);
        let l = &self.latency;
        if json {
            let report = json!({"semantic": {
                "clauses": clauses,
                "model_load_ms": self.load_ms,
                "embedded": self.embedded,
                "embed_seconds": self.embed_seconds,
                "embed_clauses_per_sec": rate,
                "reused": self.reused,
                "reuse_seconds": self.reuse_seconds,
                "latency_ms": {"questions": l.timed, "p50": l.p50, "p95": l.p95, "p99": l.p99, "max": l.max},
                "resident_mb": self.rss_mb,
                "targets": {
                    "p99_ms": TARGET_SEMANTIC_P99_MS, "model_load_ms": TARGET_MODEL_LOAD_MS,
                    "embed_clauses_per_sec": TARGET_EMBED_RATE, "resident_mb": TARGET_RSS_MB,
                },
            }});
            println!("{report}");
            return;
        }
        println!(
            "with the answer model: load {:.0} ms; {} clauses embedded in {} ({:.0} clauses/s, two vectors each); \
             again with nothing changed: {} reused in {}",
            self.load_ms,
            self.embedded,
            seconds(self.embed_seconds),
            rate,
            self.reused,
            seconds(self.reuse_seconds)
        );
        println!(
            "hybrid answer latency over {} questions (question embedded included): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms; resident {:.0} MB",
            l.timed, l.p50, l.p95, l.p99, l.max, self.rss_mb
        );
        println!("README rows:");
        println!(
            "| model load | {:.0} ms | ≤ {TARGET_MODEL_LOAD_MS:.0} ms |",
            self.load_ms
        );
        println!("| clause embedding (first index) | {rate:.0} clauses/s | ≥ {TARGET_EMBED_RATE:.0} clauses/s |");
        println!(
            "| re-index, nothing changed | {} clauses reused in {} | only changed clauses embedded |",
            self.reused,
            seconds(self.reuse_seconds)
        );
        println!(
            "| hybrid answer p50 / p95 / p99 | {:.2} / {:.2} / {:.2} ms | p99 ≤ {TARGET_SEMANTIC_P99_MS} ms |",
            l.p50, l.p95, l.p99
        );
        println!("| resident memory | {:.0} MB | ≤ {TARGET_RSS_MB:.0} MB |", self.rss_mb);
        println!(
            "targets: load {}, embedding {}, p99 {}, memory {}",
            pass(self.load_ms <= TARGET_MODEL_LOAD_MS),
            pass(rate >= TARGET_EMBED_RATE),
            pass(l.p99 <= TARGET_SEMANTIC_P99_MS),
            pass(self.rss_mb <= TARGET_RSS_MB)
        );
    }
}

fn parse_corpus(generated: &[GeneratedPolicy]) -> Result<Vec<Policy>> {
    generated
        .iter()
        .map(|g| {
            policy_from_bytes(&g.school, &g.source, g.text.as_bytes(), Some(MODIFIED))
                .with_context(|| format!("parsing generated policy {}", g.source))
        })
        .collect()
}

struct Build {
    engine: Engine,
    seconds: f64,
}

/// Times `Engine::new`, which syncs `index` with `policies`.
fn build(policies: Vec<Policy>, index: ClauseIndex, what: &str) -> Result<Build> {
    let thesaurus = Thesaurus::from_toml(DEFAULT_THESAURUS).context("parsing the built-in thesaurus")?;
    let clauses: usize = policies.iter().map(|p| p.clauses.len()).sum();
    let progress = bar(clauses as u64, what);
    let mut tick = |done: usize, _total: usize| progress.set_position(done as u64);
    let start = Instant::now();
    let (engine, report) = Engine::new(policies, index, thesaurus, Settings::default(), &mut tick)?;
    let seconds = start.elapsed().as_secs_f64();
    progress.finish_and_clear();
    ensure!(
        report.clauses_written == clauses,
        "{what}: wrote {} clauses of {clauses}",
        report.clauses_written
    );
    Ok(Build { engine, seconds })
}

/// Answer times in milliseconds.
struct Latency {
    timed: usize,
    answered: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Latency {
    fn answered_share(&self) -> f64 {
        if self.timed == 0 {
            0.0
        } else {
            self.answered as f64 / self.timed as f64
        }
    }
}

/// Asks the first [`WARM_UP`] questions untimed, then times every other
/// `Engine::answer` call on its own, on this one thread.
fn measure_latency(engine: &Engine, asks: &[(String, &str)]) -> Result<Latency> {
    let warm = WARM_UP.min(asks.len());
    for (question, school) in &asks[..warm] {
        engine.answer(question, &Asker { school, name: None })?;
    }
    let mut millis = Vec::with_capacity(asks.len() - warm);
    let mut answered = 0;
    for (question, school) in &asks[warm..] {
        let asker = Asker { school, name: None };
        let start = Instant::now();
        let answer = engine.answer(question, &asker);
        let elapsed = start.elapsed();
        if answer
            .with_context(|| format!("answering {question:?} for {school}"))?
            .answered
        {
            answered += 1;
        }
        millis.push(elapsed.as_secs_f64() * 1e3);
    }
    millis.sort_by(f64::total_cmp);
    let mean = if millis.is_empty() {
        0.0
    } else {
        millis.iter().sum::<f64>() / millis.len() as f64
    };
    Ok(Latency {
        timed: millis.len(),
        answered,
        p50: percentile(&millis, 50.0),
        p95: percentile(&millis, 95.0),
        p99: percentile(&millis, 99.0),
        max: millis.last().copied().unwrap_or(0.0),
        mean,
    })
}

/// Nearest-rank percentile `p` (0–100) of ascending `sorted`; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn rate(count: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        f64::INFINITY
    }
}

fn per_sec(rate: f64) -> String {
    match rate {
        r if r >= 10_000.0 => format!("{:.0}k", r / 1000.0),
        r if r >= 1_000.0 => format!("{:.1}k", r / 1000.0),
        r => format!("{r:.0}"),
    }
}

fn seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.2} s")
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

// ---------------------------------------------------------------- randomness

/// xorshift64*: tiny, deterministic, and plenty random enough for text.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`; `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------- vocabulary

const PLACES: &[&str] = &[
    "Oakfield",
    "Riverside",
    "Hillcrest",
    "Meadowbank",
    "Ashworth",
    "Kingsway",
    "Brookside",
    "Elmhurst",
    "Westgate",
    "Fairfield",
    "Greenacres",
    "Holly Bank",
    "Larkrise",
    "Millbrook",
    "Northfield",
    "Parkside",
    "Queensbury",
    "Redwood",
    "Stonebridge",
    "Thornhill",
    "Woodlands",
    "Castleford",
    "Beechwood",
    "Abbey Lane",
    "Willow Green",
];
const SCHOOL_KINDS: &[&str] = &[
    "Primary",
    "Infant",
    "Junior",
    "High",
    "Community",
    "Academy",
    "Secondary",
    "Middle",
];
const FIRST_NAMES: &[&str] = &[
    "Priya", "Tom", "Hannah", "Gareth", "Sam", "Aisha", "David", "Chloe", "Imran", "Rachel", "Owen", "Fiona",
];
const SURNAMES: &[&str] = &[
    "Raman", "Okafor", "Price", "Lloyd", "Ellis", "Khan", "Hughes", "Walsh", "Patel", "Murray", "Jones", "Byrne",
];
const TITLES: &[&str] = &["Mrs", "Mr", "Ms", "Dr"];
const ROLES: &[&str] = &[
    "Headteacher",
    "Online Safety Lead",
    "Designated Safeguarding Lead",
    "Data Protection Officer",
    "IT Technician",
];
const SECTION_TITLES: &[&str] = &[
    "Email and communication",
    "Social media",
    "Photographs and video",
    "Passwords and account security",
    "Mobile phones and personal devices",
    "Laptops and portable equipment",
    "Removable media",
    "Internet use and filtering",
    "Data protection",
    "School trips and visits",
    "Reporting concerns",
    "Remote learning",
    "Software and apps",
    "Cyberbullying",
    "Artificial intelligence tools",
    "Printing and confidential waste",
    "Monitoring of ICT use",
    "Leaving the school",
];
const SUBSECTION_TITLES: &[&str] = &[
    "Staff accounts",
    "Pupil accounts",
    "Working at home",
    "On trips and visits",
    "Supply staff and volunteers",
    "Exceptions",
    "Breaches of this policy",
    "Guidance for new staff",
];
/// Singular; the plural adds an "s".
const DEVICES: &[&str] = &[
    "school laptop",
    "school iPad",
    "school camera",
    "Chromebook",
    "school tablet",
    "visualiser",
    "desktop computer",
];
const PERSONAL_DEVICES: &[&str] = &[
    "own phone",
    "personal mobile phone",
    "personal tablet",
    "smartwatch",
    "home laptop",
    "personal camera",
];
const STORAGE: &[&str] = &[
    "USB stick",
    "memory stick",
    "pen drive",
    "portable hard drive",
    "SD card",
];
const DATA: &[&str] = &[
    "pupil data",
    "pupil reports",
    "SEN records",
    "safeguarding records",
    "parent contact details",
    "assessment data",
    "medical information",
    "staff personnel files",
    "login details",
    "passwords",
];
const MEDIA: &[&str] = &[
    "photographs of pupils",
    "videos of pupils",
    "images of children",
    "class photos",
    "recordings of lessons",
];
const CHANNELS: &[&str] = &[
    "social media",
    "WhatsApp",
    "Facebook",
    "Instagram",
    "TikTok",
    "Snapchat",
    "personal email",
    "text message",
    "Facebook Messenger",
];
const SCHOOL_CHANNELS: &[&str] = &[
    "school email",
    "ParentLink",
    "Microsoft Teams",
    "Google Classroom",
    "the school website",
    "the school app",
];
const AUDIENCES: &[&str] = &[
    "parents",
    "pupils",
    "parents and carers",
    "former pupils",
    "visitors",
    "volunteers",
    "supply staff",
    "family members",
    "friends",
];
const CONTEXTS: &[&str] = &[
    "on school trips",
    "on residential visits",
    "at home",
    "in the classroom",
    "in the staffroom",
    "during lessons",
    "outside school hours",
    "at sports fixtures",
    "in public places",
    "on public transport",
    "at parents' evening",
    "in the playground",
    "during school performances",
];
const PEOPLE: &[&str] = &[
    "the Headteacher",
    "the Designated Safeguarding Lead",
    "the Online Safety Lead",
    "the IT Technician",
    "the Data Protection Officer",
    "your line manager",
    "the school business manager",
    "a member of the senior leadership team",
];
const CONCERNS: &[&str] = &[
    "a lost or stolen device",
    "a suspected data breach",
    "an inappropriate website",
    "a message from a pupil on social media",
    "a problem with the web filtering",
    "any cyberbullying incident",
    "a concern about a child's safety online",
    "a virus or suspicious email",
    "a phishing email",
    "an image of a pupil posted online",
];
const FILTERED: &[&str] = &[
    "gambling sites",
    "social networking sites",
    "streaming services",
    "gaming websites",
    "chat rooms",
    "file-sharing sites",
];
const SOFTWARE: &[&str] = &[
    "software",
    "apps",
    "browser extensions",
    "games",
    "screen recording tools",
    "AI chatbots",
];
const SHARE_VERBS: &[(&str, &str)] = &[
    ("share", "with"),
    ("send", "to"),
    ("forward", "to"),
    ("disclose", "to"),
    ("show", "to"),
];
const INCIDENTS: &[&str] = &[
    "a pupil sees something inappropriate",
    "a parent messages me on Facebook",
    "I click a link in a phishing email",
    "my laptop is stolen",
    "I think my password has been hacked",
    "a child shows me something upsetting online",
    "a pupil is being bullied on WhatsApp",
    "I lose a USB stick with pupil data on it",
];
/// Questions no AUP answers: the bot should decline them.
const OFF_TOPIC: &[&str] = &[
    "What time does the canteen open?",
    "Where do I park for parents' evening?",
    "How many days of annual leave do I get?",
    "Can I wear trainers on PE days?",
    "Who organises the Christmas fair?",
    "What is the dress code for staff?",
    "Is there a staff meeting on Monday?",
    "How do I claim mileage for a course?",
];

fn cap(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- corpus

struct GeneratedPolicy {
    school: String,
    source: String,
    text: String,
}

/// About `clauses` clauses over `clauses / 250` schools (at least one), one
/// staff AUP per school.
fn generate_corpus(rng: &mut Rng, clauses: usize) -> Vec<GeneratedPolicy> {
    let schools = clauses.div_ceil(CLAUSES_PER_SCHOOL).max(1);
    (0..schools)
        .map(|i| {
            let target = clauses / schools + usize::from(i < clauses % schools);
            generate_policy(rng, i + 1, target)
        })
        .collect()
}

fn generate_policy(rng: &mut Rng, number: usize, target: usize) -> GeneratedPolicy {
    let school = format!("school-{number:04}");
    let name = format!("{} {} School", rng.pick(PLACES), rng.pick(SCHOOL_KINDS));
    let mut w = Writer {
        text: String::with_capacity(target * 110),
        planned: 0,
        target,
    };
    w.line(&format!("{name} — Staff ICT Acceptable Use Policy"));
    w.blank();
    // Tab rows: each is a clause, and the role rows name the school's contacts.
    w.table_row("Version", MODIFIED);
    for role in ROLES {
        let person = format!("{} {} {}", rng.pick(TITLES), rng.pick(FIRST_NAMES), rng.pick(SURNAMES));
        w.table_row(role, &person);
    }
    w.blank();
    let mut section = 0;
    while w.room() > 0 {
        section += 1;
        write_section(rng, &mut w, section);
    }
    w.blank();
    w.line("Signed ______________________   Date __________");
    GeneratedPolicy {
        source: format!("{school}/staff-aup.txt"),
        school,
        text: w.text,
    }
}

/// Policy text under construction, counting the clauses the parser will make of it.
struct Writer {
    text: String,
    planned: usize,
    target: usize,
}

impl Writer {
    fn room(&self) -> usize {
        self.target.saturating_sub(self.planned)
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    fn table_row(&mut self, key: &str, value: &str) {
        if self.room() > 0 {
            self.line(&format!("{key}:\t{value}"));
            self.planned += 1;
        }
    }

    /// A paragraph of up to `sentences` sentences, sometimes wrapped as a Word export would.
    fn paragraph(&mut self, rng: &mut Rng, sentences: usize) {
        let n = sentences.min(self.room());
        if n == 0 {
            return;
        }
        let text: Vec<String> = (0..n).map(|_| statement(rng)).collect();
        let wrap_at = if rng.chance(40) { 80 } else { usize::MAX };
        for line in wrap(&text.join(" "), wrap_at) {
            self.line(&line);
        }
        self.blank();
        self.planned += n;
    }

    /// A bulleted list of up to `items` items made by `item`.
    fn list(&mut self, rng: &mut Rng, items: usize, item: fn(&mut Rng) -> String) {
        let n = items.min(self.room());
        let glyph = if rng.chance(80) { "-" } else { "•" };
        let spaced = rng.chance(30);
        for _ in 0..n {
            let text = item(rng);
            let wrap_at = if rng.chance(20) { 70 } else { usize::MAX };
            for (i, line) in wrap(&text, wrap_at).into_iter().enumerate() {
                if i == 0 {
                    self.line(&format!("{glyph} {line}"));
                } else {
                    self.line(&format!("  {line}"));
                }
            }
            if spaced {
                self.blank();
            }
        }
        self.blank();
        self.planned += n;
    }
}

/// Breaks `text` into lines of about `width` characters, only before a
/// lowercase word with at least four words (30 characters) after the break,
/// so that every continuation line reads as a wrapped line and never as a
/// heading, item or form field.
fn wrap(text: &str, width: usize) -> Vec<String> {
    // Words a signature block starts with ("class ____", "date ____").
    const FORM_WORDS: &[&str] = &[
        "class", "pupil", "parent", "carer", "name", "date", "role", "position", "print", "sign",
    ];
    let words: Vec<&str> = text.split(' ').collect();
    let mut lines = Vec::new();
    let mut line = String::new();
    for (i, word) in words.iter().enumerate() {
        let bare = word.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
        let breakable = word.starts_with(|c: char| c.is_ascii_lowercase())
            && !FORM_WORDS.contains(&bare)
            && words.len() - i >= 4
            && words[i..].iter().map(|w| w.len() + 1).sum::<usize>() > 30;
        if !line.is_empty() && line.len() + 1 + word.len() > width && breakable {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn write_section(rng: &mut Rng, w: &mut Writer, number: usize) {
    w.line(&format!("{number}. {}", rng.pick(SECTION_TITLES)));
    w.blank();
    let intro = rng.range(1, 3);
    w.paragraph(rng, intro);
    match rng.below(4) {
        0 => {
            w.line(rng.pick(&["Do", "Always"]));
            w.blank();
            let n = rng.range(3, 6);
            w.list(rng, n, do_item);
            if w.room() > 0 {
                w.line(rng.pick(&["Don't", "Never", "Staff must not"]));
                w.blank();
                let n = rng.range(3, 6);
                w.list(rng, n, dont_item);
            }
        }
        1 => {
            let n = rng.range(4, 8);
            w.list(rng, n, statement);
        }
        2 => {
            for sub in 1..=rng.range(1, 2) {
                if w.room() == 0 {
                    break;
                }
                w.line(&format!("{number}.{sub} {}", rng.pick(SUBSECTION_TITLES)));
                w.blank();
                let sentences = rng.range(1, 2);
                w.paragraph(rng, sentences);
                let n = rng.range(2, 5);
                w.list(rng, n, statement);
            }
        }
        _ => {
            for _ in 0..rng.range(1, 2) {
                let sentences = rng.range(1, 3);
                w.paragraph(rng, sentences);
            }
        }
    }
    if rng.chance(30) {
        // A closing paragraph, which also ends the scope of any list above.
        w.paragraph(rng, 1);
    }
}

/// A policy sentence with a modal: a paragraph sentence or a list item.
fn statement(rng: &mut Rng) -> String {
    match rng.below(16) {
        0 => {
            let (verb, to) = SHARE_VERBS[rng.below(SHARE_VERBS.len())];
            format!("Staff must not {verb} {} {to} {}.", rng.pick(DATA), rng.pick(AUDIENCES))
        }
        1 => format!(
            "Staff must not use {} to contact {} {}.",
            rng.pick(CHANNELS),
            rng.pick(AUDIENCES),
            rng.pick(CONTEXTS)
        ),
        2 => format!(
            "Always lock your {} when you leave it unattended {}.",
            rng.pick(DEVICES),
            rng.pick(CONTEXTS)
        ),
        3 => format!(
            "Only take {} {} with permission from {}.",
            rng.pick(MEDIA),
            rng.pick(CONTEXTS),
            rng.pick(PEOPLE)
        ),
        4 => format!(
            "{} must be stored on the school network and never on a {}.",
            cap(rng.pick(DATA)),
            rng.pick(STORAGE)
        ),
        5 => format!("Report {} to {} immediately.", rng.pick(CONCERNS), rng.pick(PEOPLE)),
        6 => format!(
            "{}s may be used {} for school business only.",
            cap(rng.pick(DEVICES)),
            rng.pick(CONTEXTS)
        ),
        7 => format!(
            "Passwords must be at least {} characters long and changed every {}.",
            rng.range(8, 14),
            rng.pick(&["term", "half term", "year"])
        ),
        8 => format!(
            "The web filtering system blocks {}; requests to unblock a site should be made to {}.",
            rng.pick(FILTERED),
            rng.pick(PEOPLE)
        ),
        9 => format!(
            "Never leave a {} in a car or unattended {}.",
            rng.pick(DEVICES),
            rng.pick(CONTEXTS)
        ),
        10 => format!(
            "Personal devices are not permitted {} unless agreed with {}.",
            rng.pick(CONTEXTS),
            rng.pick(PEOPLE)
        ),
        11 => format!("Encrypt any {} that holds {}.", rng.pick(STORAGE), rng.pick(DATA)),
        12 => format!(
            "{} taken {} must be deleted from the {} once they are uploaded to the school network.",
            cap(rng.pick(MEDIA)),
            rng.pick(CONTEXTS),
            rng.pick(DEVICES)
        ),
        13 => format!(
            "Use of {} {} is monitored by {}.",
            rng.pick(SCHOOL_CHANNELS),
            rng.pick(CONTEXTS),
            rng.pick(PEOPLE)
        ),
        14 => format!(
            "Staff should not install {} on a {} without approval from {}.",
            rng.pick(SOFTWARE),
            rng.pick(DEVICES),
            rng.pick(PEOPLE)
        ),
        _ => format!(
            "Staff should use {} to communicate with {} {}.",
            rng.pick(SCHOOL_CHANNELS),
            rng.pick(AUDIENCES),
            rng.pick(CONTEXTS)
        ),
    }
}

/// A bare instruction for a "Do"/"Always" list.
fn do_item(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => format!("Lock your screen when you leave your {} unattended.", rng.pick(DEVICES)),
        1 => format!(
            "Use your school email account for all correspondence with {}.",
            rng.pick(AUDIENCES)
        ),
        2 => format!("Check the recipient list before sending {} by email.", rng.pick(DATA)),
        3 => format!("Report {} to {}.", rng.pick(CONCERNS), rng.pick(PEOPLE)),
        4 => format!("Keep {} on the school network or in a locked cupboard.", rng.pick(DATA)),
        5 => format!("Log out of {} at the end of each session.", rng.pick(SCHOOL_CHANNELS)),
        6 => format!("Store {} only on the school network.", rng.pick(MEDIA)),
        7 => format!(
            "Ask {} before installing {} on a {}.",
            rng.pick(PEOPLE),
            rng.pick(SOFTWARE),
            rng.pick(DEVICES)
        ),
        8 => format!(
            "Speak to {} if you are unsure whether {} can be shared.",
            rng.pick(PEOPLE),
            rng.pick(MEDIA)
        ),
        _ => format!("Use {} to contact {}.", rng.pick(SCHOOL_CHANNELS), rng.pick(AUDIENCES)),
    }
}

/// A bare instruction for a "Don't"/"Never" list: prohibited by its heading.
fn dont_item(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => format!("Use {} to contact {}.", rng.pick(CHANNELS), rng.pick(AUDIENCES)),
        1 => format!("Give your personal mobile number to {}.", rng.pick(AUDIENCES)),
        2 => format!("Share {} {}.", rng.pick(DATA), rng.pick(CONTEXTS)),
        3 => format!("Plug a personal {} into a {}.", rng.pick(STORAGE), rng.pick(DEVICES)),
        4 => format!(
            "Accept friend requests from {} on {}.",
            rng.pick(AUDIENCES),
            rng.pick(CHANNELS)
        ),
        5 => format!("Post {} on {}.", rng.pick(MEDIA), rng.pick(CHANNELS)),
        6 => format!("Leave a {} logged in {}.", rng.pick(DEVICES), rng.pick(CONTEXTS)),
        7 => format!("Take {} on your {}.", rng.pick(MEDIA), rng.pick(PERSONAL_DEVICES)),
        8 => "Forward school emails to a personal email account.".to_owned(),
        _ => format!("Lend your {} to {}.", rng.pick(DEVICES), rng.pick(AUDIENCES)),
    }
}

// ---------------------------------------------------------------- questions

/// `n` questions as staff type them: mostly about the corpus's topics, one in
/// ten off-topic, some in lower case without a question mark, some with a typo.
/// `n` varied staff questions, the same every run (the embedder bench times them too).
pub(crate) fn sample_questions(n: usize) -> Vec<String> {
    generate_questions(&mut Rng::new(SEED), n)
}

fn generate_questions(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let q = question(rng);
            let q = if rng.chance(25) { casual(&q) } else { q };
            if rng.chance(20) { typo(rng, &q) } else { q }
        })
        .collect()
}

fn question(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 | 1 => format!(
            "Can I use my {} to take photos {}?",
            rng.pick(&["phone", "own phone", "personal phone", "iPhone", "mobile"]),
            rng.pick(CONTEXTS)
        ),
        2 => format!("Who do I tell if {}?", rng.pick(INCIDENTS)),
        3 => format!("Can I share {} with {}?", rng.pick(DATA), rng.pick(AUDIENCES)),
        4 => format!(
            "Am I allowed to message {} on {}?",
            rng.pick(AUDIENCES),
            rng.pick(CHANNELS)
        ),
        5 => format!("Is it ok to put {} on a {}?", rng.pick(DATA), rng.pick(STORAGE)),
        6 => format!("What should I do if I lose my {}?", rng.pick(DEVICES)),
        7 => format!(
            "Do I need permission to post {} on {}?",
            rng.pick(MEDIA),
            rng.pick(CHANNELS)
        ),
        8 => format!("Can I take my {} home at the weekend?", rng.pick(DEVICES)),
        9 => rng
            .pick(&[
                "How long does my password have to be?",
                "How often do I have to change my password?",
            ])
            .to_owned(),
        10 => format!(
            "Can I accept a friend request from {}?",
            rng.pick(&["a former pupil", "a parent", "a pupil's mum", "an ex-pupil"])
        ),
        11 => format!("Can I install {} on my {}?", rng.pick(SOFTWARE), rng.pick(DEVICES)),
        12 => format!("Why are {} blocked at school?", rng.pick(FILTERED)),
        13 => format!("Can I give my mobile number to {}?", rng.pick(AUDIENCES)),
        14 => format!("Is it ok to email {} from my personal account?", rng.pick(DATA)),
        15 => format!(
            "Can I join the class WhatsApp group for {}?",
            rng.pick(&["parents", "the trip", "year 6 parents"])
        ),
        16 => format!("Can I use a {} on my school laptop?", rng.pick(STORAGE)),
        17 => format!("Who checks what I do on {}?", rng.pick(SCHOOL_CHANNELS)),
        _ => rng.pick(OFF_TOPIC).to_owned(),
    }
}

/// "who do I tell if …" as typed in a hurry: lower-case start, no question mark.
fn casual(question: &str) -> String {
    let mut chars = question.trim_end_matches('?').chars();
    chars
        .next()
        .map(|f| f.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One slip of the finger in a word of five letters or more: two letters
/// swapped, one dropped or one doubled.
fn typo(rng: &mut Rng, question: &str) -> String {
    let mut words: Vec<String> = question.split(' ').map(str::to_owned).collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].chars().filter(char::is_ascii_alphabetic).count() >= 5)
        .collect();
    if long.is_empty() {
        return question.to_owned();
    }
    let i = long[rng.below(long.len())];
    let mut chars: Vec<char> = words[i].chars().collect();
    let letters = chars.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters < 3 {
        return question.to_owned();
    }
    // Never the first letter: people rarely get that wrong.
    let at = rng.range(1, letters - 2);
    match rng.below(3) {
        0 => chars.swap(at, at + 1),
        1 => {
            chars.remove(at);
        }
        _ => chars.insert(at, chars[at]),
    }
    words[i] = chars.into_iter().collect();
    words.join(" ")
}

/// Questions staff ask, varied so the bot does real work for each (the
/// channel benches).
pub const STAFF_QUESTIONS: &[&str] = &[
    "Can I use WhatsApp to message parents on a school trip?",
    "Can I give pupils my personal mobile number?",
    "Can I plug in a memory stick from home?",
    "Can I take photos of pupils on my own phone?",
    "Can I use my personal email to contact parents?",
    "Who do I tell if a pupil sees something upsetting online?",
    "Can I install software on my school laptop?",
    "Can I accept a friend request from a pupil on Facebook?",
];

/// p50/p95/p99/max of a set of latencies in milliseconds, for reports.
pub fn latency_summary(millis: &mut [f64]) -> serde_json::Value {
    millis.sort_by(f64::total_cmp);
    json!({
        "timed": millis.len(),
        "p50_ms": percentile(millis, 50.0),
        "p95_ms": percentile(millis, 95.0),
        "p99_ms": percentile(millis, 99.0),
        "max_ms": millis.last().copied().unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn generated_corpus_parses_to_the_planned_clauses() {
        let mut rng = Rng::new(SEED);
        let generated = generate_corpus(&mut rng, 1000);
        assert_eq!(generated.len(), 4);
        let policies = parse_corpus(&generated).unwrap();
        for p in &policies {
            assert_eq!(p.clauses.len(), 250, "{}", generated[0].text);
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            assert_eq!(p.contacts.len(), ROLES.len());
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let a = generate_questions(&mut Rng::new(SEED), 20);
        let b = generate_questions(&mut Rng::new(SEED), 20);
        assert_eq!(a, b);
    }
}
