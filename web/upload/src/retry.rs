//! When to try again: exponential backoff with full jitter, and the
//! server's own `Retry-After`.
//!
//! Attempt n waits a random time between zero and
//! `min(max, initial × 2ⁿ)` ("full jitter"), so many agents that lost the
//! same server do not come back in lockstep. A `Retry-After` on 429 or 503
//! replaces that wait, up to a cap, so a misbehaving header cannot stall
//! uploads for days.

use std::time::{Duration, SystemTime};

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first wait.
    pub initial: Duration,
    /// Upper bound of any computed wait.
    pub max: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// The waits of one run of failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
}

impl Backoff {
    /// A backoff with no failure yet.
    pub fn new(policy: RetryPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// The wait after one more failure; `retry_after` is the server's wish.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let exponent = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        if let Some(wait) = retry_after {
            return wait.min(self.policy.max_retry_after);
        }
        let ceiling = self
            .policy
            .initial
            .saturating_mul(1 << exponent)
            .min(self.policy.max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_bounded() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        };
        let mut backoff = Backoff::new(policy);
        for n in 0..40 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << n.min(30))
                .min(Duration::from_secs(1));
            assert!(backoff.next(None) <= ceiling);
        }
        assert_eq!(backoff.failures(), 40);
        assert_eq!(
            backoff.next(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff.next(Some(Duration::from_secs(900))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
