//! Waiting between retries when a server is away, and waiting that ends
//! early when the service stops: doubling from a second up
//! to a minute, so a homeserver that comes back is found quickly and one that
//! stays down is not hammered.

use std::time::Duration;

use tokio::sync::watch;

const FIRST: Duration = Duration::from_secs(1);
const MOST: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MOST);
        wait
    }

    /// After a success: the next failure waits a second again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }

    /// Whether the wait just taken was the first since the last success.
    pub fn is_first_retry(&self) -> bool {
        self.next == FIRST * 2
    }
}

/// Sleeps for `wait`; true when shutdown came first (or nobody can send it
/// any more).
pub async fn sleep_or_stop(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// Resolves once shutdown is asked for.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_and_reset() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_wait(), FIRST);
        assert!(b.is_first_retry());
        b.next_wait();
        assert!(!b.is_first_retry());
    }
}
