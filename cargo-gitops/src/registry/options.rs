//! The settings of the built-in registry client, with their documented defaults: the retry
//! budget of one operation (attempts, deadline, backoff), timeouts, and the bounds on tag
//! pagination and blob transfer speed. It decides nothing by itself: `transport` spends the
//! budget, `client` applies the bounds.

use std::time::Duration;

/// The retry budget of one operation (a lookup, a manifest read or write, a blob upload or
/// download, one page of tags): 429, 5xx, dropped connections and cut bodies are tried again
/// until `attempts` tries have failed, and nothing of the operation (requests, body reads,
/// waits) runs past `budget` after it started.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The operation's deadline, counted from its start: a request still running then is cut,
    /// and no wait that would end after it is begun. Blob transfers get more (see
    /// `ClientOptions::min_blob_rate`).
    pub budget: Duration,
    /// The first wait; each further wait doubles, with jitter.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            budget: Duration::from_secs(60),
            base_delay: Duration::from_millis(250),
        }
    }
}

/// Transport settings of the built-in client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// The longest wait for any single read once connected.
    pub read_timeout: Duration,
    /// Pages of a tag list read before giving up.
    pub max_tag_pages: usize,
    /// The slowest blob transfer accepted, in bytes per second: a blob's operation may take
    /// `retry.budget` plus its size at this rate.
    pub min_blob_rate: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            max_tag_pages: 1000,
            min_blob_rate: 1024 * 1024,
        }
    }
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, plus up to half of that again.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = exponential.mul_f64(f64::from(nanos % 1000) / 2000.0);
    exponential + jitter
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let base = Duration::from_millis(100);
        assert!(backoff(base, 1) >= base && backoff(base, 1) <= base * 3 / 2);
        assert!(backoff(base, 3) >= base * 4);
        assert!(backoff(base, 40) <= base * 1024 * 3 / 2);
    }

    #[test]
    fn the_default_budget_is_the_documented_one() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts, 5);
        assert_eq!(policy.budget, Duration::from_secs(60));
        // The waits between five attempts, jitter included, fit well inside the deadline.
        let waits: Duration = (1..policy.attempts)
            .map(|a| policy.base_delay * (1 << (a - 1)) * 3 / 2)
            .sum();
        assert!(waits < Duration::from_secs(6), "{waits:?}");
        let options = ClientOptions::default();
        assert_eq!(options.max_tag_pages, 1000);
        assert_eq!(options.min_blob_rate, 1024 * 1024);
    }
}
