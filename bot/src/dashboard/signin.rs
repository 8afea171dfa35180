//! Sign-in throttling, and what the audit log records of failed sign-ins.
//!
//! The e-safety lead must not be locked out by someone typing her name with
//! wrong passwords, so nothing is throttled per name alone: failures count
//! per client and name (a guesser at one name) and per client (a guesser at
//! many names), and the right password from another client still works.
//! A client is an IPv4 address or an IPv6 /64, the block one home or
//! server usually has.
//!
//! The audit log is append-only, so what strangers can write to it must be
//! bounded: a client's failures are kept per minute. The first one of the
//! minute is recorded at once (a single failed sign-in is on disk
//! straight away); the rest of that minute become one `login-failed` event
//! when the minute is over, with their count and up to [`NAMES_KEPT`]
//! distinct names, each cut to [`NAME_CHARS_KEPT`] characters. So a client
//! causes at most two rows a minute, of bounded size, however hard it tries.
//!
//! Memory is bounded too: windows forget failures older than [`WINDOW`],
//! a client's windows hold at most [`PER_CLIENT`] failures, and at most
//! [`MAX_CLIENTS`] clients are tracked (the one idle longest is forgotten
//! first; its pending failures are recorded, not lost).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::store::audit::{Kind, NewEvent};

/// How long a failure counts against a client.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed per client and name within [`WINDOW`].
pub const PER_NAME: usize = 5;
/// Failures allowed per client, whatever the names, within [`WINDOW`].
pub const PER_CLIENT: usize = 20;
/// Clients tracked at once.
pub const MAX_CLIENTS: usize = 10_000;
/// Distinct names an aggregated event lists.
pub const NAMES_KEPT: usize = 3;
/// A name in an event is cut to this many characters.
pub const NAME_CHARS_KEPT: usize = 64;

/// Whether a sign-in may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too many failures from this client, for this name or for any.
    Throttled,
}

/// The client a request counts against: the address, or its /64 for IPv6.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut bits = v6.octets();
                bits[8..].fill(0);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// `name` cut to [`NAME_CHARS_KEPT`] characters, control characters shown
/// as U+FFFD, for the audit log.
pub fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(NAME_CHARS_KEPT)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if name.chars().nth(NAME_CHARS_KEPT).is_some() {
        shown.push('…');
    }
    shown
}

/// One client's recent failures and its unrecorded minute.
#[derive(Default)]
struct Client {
    /// Failures within [`WINDOW`], oldest first, at most [`PER_CLIENT`]:
    /// when, and a hash of the name (a few bytes, however long the name).
    failures: VecDeque<(Instant, u64)>,
    /// Last time anything happened, for forgetting idle clients first.
    seen: Option<Instant>,
    pending: Option<Minute>,
}

/// The failed and throttled sign-ins of one client in one minute that are
/// not in the audit log yet.
struct Minute {
    minute: i64,
    failed: u64,
    throttled: u64,
    names: Vec<String>,
}

impl Client {
    fn forget_old(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            self.failures.pop_front();
        }
    }

    fn gate(&self, name: u64) -> Gate {
        let for_name = self.failures.iter().filter(|(_, n)| *n == name).count();
        if self.failures.len() >= PER_CLIENT || for_name >= PER_NAME {
            Gate::Throttled
        } else {
            Gate::Open
        }
    }

    /// This minute's bucket; a bucket of an earlier minute is handed back
    /// for recording.
    fn minute(&mut self, minute: i64) -> (&mut Minute, Option<Minute>) {
        let closed = self.pending.take_if(|m| m.minute != minute);
        let current = self.pending.get_or_insert_with(|| Minute {
            minute,
            failed: 0,
            throttled: 0,
            names: Vec::new(),
        });
        (current, closed)
    }
}

#[derive(Default)]
pub struct SignIns {
    clients: HashMap<IpAddr, Client>,
    /// Keyed per process, so names cannot be chosen to collide.
    names: RandomState,
}

impl SignIns {
    /// Whether `name` may be tried from `ip` now. A throttled attempt is
    /// counted for the minute's event.
    pub fn check(&mut self, ip: IpAddr, name: &str, now: Instant, minute: i64, record: &mut Vec<NewEvent>) -> Gate {
        let key = client_of(ip);
        let Some(client) = self.clients.get_mut(&key) else {
            return Gate::Open;
        };
        client.forget_old(now);
        let gate = client.gate(self.names.hash_one(name));
        if gate == Gate::Throttled {
            client.seen = Some(now);
            let (current, closed) = client.minute(minute);
            current.throttled += 1;
            keep_name(&mut current.names, shown_name(name));
            record.extend(closed.map(|m| event(key, &m)));
        }
        gate
    }

    /// A wrong name or password from `ip`. Pushes the events to record now:
    /// the first failure of the client's minute, and any earlier minute
    /// still pending.
    pub fn failed(&mut self, ip: IpAddr, name: &str, now: Instant, minute: i64, record: &mut Vec<NewEvent>) {
        let key = client_of(ip);
        if !self.clients.contains_key(&key) && self.clients.len() >= MAX_CLIENTS {
            self.evict(now, record);
        }
        let hash = self.names.hash_one(name);
        let client = self.clients.entry(key).or_default();
        client.forget_old(now);
        client.seen = Some(now);
        if client.failures.len() >= PER_CLIENT {
            client.failures.pop_front();
        }
        client.failures.push_back((now, hash));
        let shown = shown_name(name);
        let fresh = client.pending.as_ref().is_none_or(|m| m.minute != minute);
        let (current, closed) = client.minute(minute);
        record.extend(closed.map(|m| event(key, &m)));
        if fresh {
            // The first of the minute goes to the log at once, alone; the
            // (empty) bucket now open says the minute has started.
            record.push(event(
                key,
                &Minute {
                    minute,
                    failed: 1,
                    throttled: 0,
                    names: vec![shown],
                },
            ));
        } else {
            current.failed += 1;
            keep_name(&mut current.names, shown);
        }
    }

    /// The right password from `ip` for `name`: its failures at that name
    /// are forgotten (the client's total stays, so one account cannot be
    /// used to reset guessing at others).
    pub fn succeeded(&mut self, ip: IpAddr, name: &str) {
        let hash = self.names.hash_one(name);
        if let Some(client) = self.clients.get_mut(&client_of(ip)) {
            client.failures.retain(|(_, n)| *n != hash);
        }
    }

    /// The events of minutes before `minute` (all of them when `None`: the
    /// service is stopping), and clients with nothing left to remember
    /// forgotten.
    pub fn closed(&mut self, now: Instant, minute: Option<i64>, record: &mut Vec<NewEvent>) {
        self.clients.retain(|key, client| {
            if let Some(m) = client
                .pending
                .take_if(|m| minute.is_none_or(|current| m.minute < current))
            {
                record.extend(has_events(&m).then(|| event(*key, &m)));
            }
            client.forget_old(now);
            !client.failures.is_empty() || client.pending.is_some()
        });
    }

    /// Forgets the client idle longest, recording its pending minute.
    fn evict(&mut self, now: Instant, record: &mut Vec<NewEvent>) {
        self.closed(now, Some(i64::MIN), record);
        if self.clients.len() < MAX_CLIENTS {
            return;
        }
        let oldest = self.clients.iter().min_by_key(|(_, c)| c.seen).map(|(k, _)| *k);
        if let Some(key) = oldest
            && let Some(client) = self.clients.remove(&key)
            && let Some(m) = client.pending
            && has_events(&m)
        {
            record.push(event(key, &m));
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.len()
    }
}

fn has_events(m: &Minute) -> bool {
    m.failed > 0 || m.throttled > 0
}

fn keep_name(names: &mut Vec<String>, shown: String) {
    if names.len() < NAMES_KEPT && !names.contains(&shown) {
        names.push(shown);
    }
}

/// The audit event for a client's minute.
fn event(client: IpAddr, m: &Minute) -> NewEvent {
    let at = time::OffsetDateTime::from_unix_timestamp(m.minute * 60)
        .map(crate::store::audit::format_time)
        .unwrap_or_default();
    NewEvent {
        asker: m.names.first().map(|n| format!("dashboard:{n}")).unwrap_or_default(),
        channel: "dashboard".into(),
        reference: client.to_string(),
        ..NewEvent::new(
            Kind::LoginFailed,
            json!({ "minute": at, "failed": m.failed, "throttled": m.throttled, "names": m.names }),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn fail(s: &mut SignIns, ip: IpAddr, name: &str, now: Instant, minute: i64) -> Vec<NewEvent> {
        let mut events = Vec::new();
        assert_eq!(
            s.check(ip, name, now, minute, &mut events),
            Gate::Open,
            "{name} from {ip}"
        );
        s.failed(ip, name, now, minute, &mut events);
        events
    }

    fn gate(s: &mut SignIns, ip: IpAddr, name: &str, now: Instant) -> Gate {
        s.check(ip, name, now, 0, &mut Vec::new())
    }

    /// Failed plus throttled sign-ins the events account for.
    fn counted(events: &[NewEvent]) -> u64 {
        events
            .iter()
            .map(|e| e.payload["failed"].as_u64().unwrap() + e.payload["throttled"].as_u64().unwrap())
            .sum()
    }

    #[test]
    fn wrong_passwords_throttle_the_guesser_not_the_user() {
        let mut s = SignIns::default();
        let now = Instant::now();
        for _ in 0..PER_NAME {
            fail(&mut s, A, "hannah", now, 0);
        }
        assert_eq!(gate(&mut s, A, "hannah", now), Gate::Throttled);
        // Hannah herself, at her own computer, is not locked out.
        assert_eq!(gate(&mut s, B, "hannah", now), Gate::Open);
        // The guesser may still get one other name wrong…
        assert_eq!(gate(&mut s, A, "other", now), Gate::Open);
        // …and nothing is held against anyone after the window.
        assert_eq!(gate(&mut s, A, "hannah", now + WINDOW), Gate::Open);
    }

    #[test]
    fn many_names_from_one_client_throttle_the_client() {
        let mut s = SignIns::default();
        let now = Instant::now();
        for i in 0..PER_CLIENT {
            fail(&mut s, A, &format!("name{i}"), now, 0);
        }
        assert_eq!(gate(&mut s, A, "anyone", now), Gate::Throttled);
        assert_eq!(gate(&mut s, B, "anyone", now), Gate::Open);
    }

    #[test]
    fn the_right_password_forgets_that_names_failures() {
        let mut s = SignIns::default();
        let now = Instant::now();
        for _ in 0..PER_NAME - 1 {
            fail(&mut s, A, "hannah", now, 0);
        }
        s.succeeded(A, "hannah");
        for _ in 0..PER_NAME - 1 {
            fail(&mut s, A, "hannah", now, 0);
        }
        assert_eq!(gate(&mut s, A, "hannah", now), Gate::Open);
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1));
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xffff, 9, 9, 9));
        let elsewhere = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(client_of(one), client_of(other));
        assert_ne!(client_of(one), client_of(elsewhere));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(client_of(mapped), A);
        let mut s = SignIns::default();
        let now = Instant::now();
        for _ in 0..PER_NAME {
            fail(&mut s, one, "hannah", now, 0);
        }
        assert_eq!(gate(&mut s, other, "hannah", now), Gate::Throttled);
    }

    #[test]
    fn a_flood_makes_two_bounded_events_a_minute() {
        let mut s = SignIns::default();
        let now = Instant::now();
        let huge = "x".repeat(100_000);
        let mut events = Vec::new();
        for i in 0..1000 {
            let name = format!("{i}\n{huge}");
            let mut recorded = Vec::new();
            if s.check(A, &name, now, 7, &mut recorded) == Gate::Open {
                s.failed(A, &name, now, 7, &mut recorded);
            }
            events.extend(recorded);
        }
        assert_eq!(events.len(), 1, "only the first is recorded at once");
        assert_eq!(events[0].payload["failed"], 1);
        assert_eq!(events[0].reference, "192.0.2.1");
        s.closed(now, Some(7), &mut events);
        assert_eq!(events.len(), 1, "the minute is not over");
        s.closed(now, Some(8), &mut events);
        assert_eq!(events.len(), 2);
        let summary = &events[1].payload;
        assert_eq!(summary["failed"], PER_CLIENT as u64 - 1, "{summary}");
        assert_eq!(summary["throttled"], 1000 - PER_CLIENT as u64, "{summary}");
        assert_eq!(counted(&events), 1000);
        let names = summary["names"].as_array().unwrap();
        assert_eq!(names.len(), NAMES_KEPT);
        for name in names {
            let name = name.as_str().unwrap();
            assert_eq!(name.chars().count(), NAME_CHARS_KEPT + 1, "cut, with an ellipsis");
            assert!(!name.contains('\n'));
        }
        for e in &events {
            assert!(e.payload.to_string().len() + e.asker.len() < 1024, "{:?}", e.payload);
        }
        // Nothing more to say about that minute.
        s.closed(now, None, &mut events);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn each_minute_is_its_own_event_and_stopping_records_the_last() {
        let mut s = SignIns::default();
        let now = Instant::now();
        let mut events = Vec::new();
        for minute in 0..3 {
            for _ in 0..3 {
                events.extend(fail(&mut s, A, &format!("n{minute}"), now, minute));
            }
        }
        // Minutes 0 and 1: first at once, then two more when the next began.
        assert_eq!(events.len(), 5);
        s.closed(now, None, &mut events);
        assert_eq!(events.len(), 6);
        assert_eq!(counted(&events), 9);
    }

    #[test]
    fn invented_clients_cannot_fill_memory_or_lose_events() {
        let mut s = SignIns::default();
        let now = Instant::now();
        let mut events = Vec::new();
        for i in 0..MAX_CLIENTS as u32 + 500 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..2 {
                events.extend(fail(&mut s, ip, "hannah", now, 0));
            }
        }
        assert!(s.tracked() <= MAX_CLIENTS, "{} tracked", s.tracked());
        s.closed(now, None, &mut events);
        assert_eq!(counted(&events), 2 * (MAX_CLIENTS as u64 + 500));
        // Clients whose failures are all old are forgotten.
        fail(&mut s, A, "hannah", now, 0);
        s.closed(now + WINDOW, Some(1), &mut events);
        assert_eq!(s.tracked(), 0);
    }
}
