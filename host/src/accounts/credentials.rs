//! The password an account was last verified with, compared without leaking where it differs.

use std::time::{Duration, Instant};

/// A password the IMAP server accepted at `verified_at`. Lives only in host memory and never
/// shows in logs (no `Debug` of the bytes).
pub struct VerifiedPassword {
    password: Vec<u8>,
    verified_at: Instant,
}

impl std::fmt::Debug for VerifiedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPassword").field("verified_at", &self.verified_at).finish()
    }
}

impl VerifiedPassword {
    pub fn new(password: &[u8], verified_at: Instant) -> Self {
        VerifiedPassword { password: password.to_vec(), verified_at }
    }

    /// The bytes, for a new LOGIN of the account's pool.
    pub fn bytes(&self) -> &[u8] {
        &self.password
    }

    /// Whether `presented` is this password and was verified less than `ttl` before `now`.
    pub fn accepts(&self, presented: &[u8], now: Instant, ttl: Duration) -> bool {
        // compare first, whatever the age, so that the timing tells nothing about the cache
        let equal = constant_time_eq(&self.password, presented);
        equal && self.is_fresh(now, ttl)
    }

    /// Verified less than `ttl` before `now`.
    pub fn is_fresh(&self, now: Instant, ttl: Duration) -> bool {
        now.saturating_duration_since(self.verified_at) < ttl
    }
}

/// Equality whose running time depends on the lengths only, not on where the bytes differ
/// (a guesser must not learn the password's prefix from response times).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_within_the_ttl_is_accepted() {
        let start = Instant::now();
        let ttl = Duration::from_secs(300);
        let verified = VerifiedPassword::new(b"correct horse", start);
        assert!(verified.accepts(b"correct horse", start, ttl));
        assert!(verified.accepts(b"correct horse", start + Duration::from_secs(299), ttl));
        assert!(!verified.accepts(b"correct horse", start + ttl, ttl));
        assert!(!verified.accepts(b"correct horsE", start, ttl));
        assert!(!verified.accepts(b"correct hors", start, ttl));
        assert!(!verified.accepts(b"", start, ttl));
        // a clock that seems to go backwards counts as fresh, not as a panic
        if let Some(earlier) = start.checked_sub(Duration::from_secs(1)) {
            assert!(verified.accepts(b"correct horse", earlier, ttl));
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let verified = VerifiedPassword::new(b"hunter2", Instant::now());
        assert!(!format!("{verified:?}").contains("hunter2"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
