//! Slowing down password guessing: failed logins are counted per login and per client
//! address; past a few, each further attempt waits longer, and past a hard cap attempts are
//! refused without asking the IMAP server at all.
//!
//! The per-login count is what stops guessing from many addresses, but it would also lock the
//! owner out. So a device that has logged in as the login before (a known DeviceId, see
//! [`KnownDevices`]) is judged by its own failures (per login and device) instead of the
//! login's: an attacker who does not know the DeviceId gains nothing, one who guessed it gets
//! `block_after` attempts per window on it, and the per-address count still applies to all.
//!
//! Pure logic with the time passed in, so that it is tested without waiting.

use serde::Deserialize;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[login_throttle]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Failures within the window that cost nothing (typos, a phone with an old password).
    pub free_failures: u32,
    /// Failures are counted from the first one for this long, then forgotten.
    pub window_seconds: u64,
    /// Beyond the free failures each attempt waits 1 s, 2 s, 4 s... up to this.
    pub max_delay_seconds: u64,
    /// From this many failures on, attempts are refused without asking the IMAP server
    /// until the window ends.
    pub block_after: u32,
    /// Logins and addresses tracked at most, each; the oldest are forgotten first.
    pub max_tracked: usize,
    /// The phone listener sits behind a proxy: take the client address from
    /// `X-Forwarded-For` (the address the proxy added, the last one) instead of the peer.
    pub trust_forwarded_for: bool,
    /// Devices (DeviceIds) remembered per login as having logged in successfully; a known
    /// device is not locked out by the login's failures, only by its own. 0: none remembered
    /// (the owner is locked out with the attacker).
    pub known_devices_per_login: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            free_failures: 5,
            window_seconds: 15 * 60,
            max_delay_seconds: 60,
            block_after: 20,
            max_tracked: 100_000,
            trust_forwarded_for: false,
            known_devices_per_login: 8,
        }
    }
}

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// Wait this long, then check the credentials.
    Delay(Duration),
    /// Do not check the credentials; the client may try again after this long.
    Refuse {
        retry_after: Duration,
    },
}

impl Verdict {
    /// The stricter of two verdicts.
    fn max(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Refuse { retry_after: a }, Verdict::Refuse { retry_after: b }) => {
                Verdict::Refuse { retry_after: a.max(b) }
            }
            (refuse @ Verdict::Refuse { .. }, _) | (_, refuse @ Verdict::Refuse { .. }) => refuse,
            (Verdict::Delay(a), Verdict::Delay(b)) => Verdict::Delay(a.max(b)),
            (delay @ Verdict::Delay(_), _) | (_, delay @ Verdict::Delay(_)) => delay,
            (Verdict::Proceed, Verdict::Proceed) => Verdict::Proceed,
        }
    }
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    tables: Mutex<Tables>,
}

struct Tables {
    logins: FailureTable<String>,
    addresses: FailureTable<IpAddr>,
    /// Failures of a known device of a login, by (login key, DeviceId).
    devices: FailureTable<(String, String)>,
    known: KnownDevices,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let max = settings.max_tracked.max(1);
        let per_login = settings.known_devices_per_login;
        LoginThrottle {
            settings,
            tables: Mutex::new(Tables {
                logins: FailureTable::new(max),
                addresses: FailureTable::new(max),
                devices: FailureTable::new(max),
                known: KnownDevices::new(max, per_login),
            }),
        }
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// How to treat an attempt for `login` from `client` (with the request's DeviceId, if it
    /// names one) at `now`: the stricter of what the address's failures and either the
    /// login's failures or, for a device known to have logged in as `login`, that device's
    /// own failures call for.
    pub fn check(
        &self,
        login: &str,
        device: Option<&str>,
        client: IpAddr,
        now: Instant,
    ) -> Verdict {
        let window = self.window();
        let key = login_key(login);
        let tables = self.tables();
        let by_address = tables.addresses.current(&address_key(client), now, window);
        let by_login = match device.filter(|device| tables.known.contains(&key, device)) {
            Some(device) => tables.devices.current(&(key, device.to_owned()), now, window),
            None => tables.logins.current(&key, now, window),
        };
        let verdict = self.verdict(by_login, now).max(self.verdict(by_address, now));
        crate::admin::metrics::global().login_verdict(&verdict);
        verdict
    }

    /// The server refused `login`'s password, sent from `client` (by `device`, if named).
    pub fn failed(&self, login: &str, device: Option<&str>, client: IpAddr, now: Instant) {
        let window = self.window();
        crate::admin::metrics::global().login(crate::admin::metrics::LoginEvent::Failed);
        let key = login_key(login);
        let mut tables = self.tables();
        if let Some(device) = device
            && tables.known.contains(&key, device)
        {
            tables.devices.record((key.clone(), device.to_owned()), now, window);
        }
        tables.logins.record(key, now, window);
        tables.addresses.record(address_key(client), now, window);
    }

    /// The login succeeded, and the device (if named) is known from now on. A known device's
    /// success forgives its own failures only: it says nothing about guesses from elsewhere,
    /// and forgiving those would give a guesser a fresh budget each time the owner's phone
    /// syncs. Otherwise the login's failures are forgiven (the owner's own typos). The
    /// address's failures never are: one good account must not launder guesses at others.
    pub fn succeeded(&self, login: &str, device: Option<&str>) {
        let key = login_key(login);
        let mut tables = self.tables();
        if let Some(device) = device {
            let known = tables.known.contains(&key, device);
            tables.devices.forget(&(key.clone(), device.to_owned()));
            tables.known.remember(&key, device);
            if known {
                return;
            }
        }
        tables.logins.forget(&key);
    }

    fn verdict(&self, failures: Option<&Failures>, now: Instant) -> Verdict {
        let Some(failures) = failures else { return Verdict::Proceed };
        let settings = &self.settings;
        if failures.count >= settings.block_after {
            let ends = failures.since + self.window();
            return Verdict::Refuse { retry_after: ends.saturating_duration_since(now) };
        }
        if failures.count < settings.free_failures {
            return Verdict::Proceed;
        }
        let doublings = (failures.count - settings.free_failures).min(32);
        let delay = Duration::from_secs(1u64 << doublings);
        Verdict::Delay(delay.min(Duration::from_secs(settings.max_delay_seconds)))
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.settings.window_seconds)
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // no code panics while holding the lock; if one did, the tables are still consistent
        crate::unpoisoned::lock(&self.tables)
    }
}

/// Logins differ in case only on paper: counted together, so that `Alice` and `alice` are
/// not two budgets for one guesser.
fn login_key(login: &str) -> String {
    login.to_lowercase()
}

/// IPv6 clients are counted per /64, the block one subscriber usually gets; IPv4-mapped
/// addresses as IPv4.
pub(crate) fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// DeviceIds that logged in successfully, per login key: at most `per_login` each (the least
/// recently successful goes first) and at most `max_logins` logins (the least recently
/// successful goes first). In memory only: after a restart a device is known again from its
/// first successful login (the cached password makes that the phone's next request).
struct KnownDevices {
    /// Login key -> (DeviceIds, most recent last; the login's last success, for eviction).
    logins: HashMap<String, (Vec<String>, u64)>,
    /// Counts successes, for least-recently-used eviction of whole logins.
    clock: u64,
    max_logins: usize,
    per_login: usize,
}

/// Longest DeviceId remembered (MS-ASCMD allows 32 characters; a longer one is not a phone's).
const MAX_DEVICE_ID: usize = 64;

impl KnownDevices {
    fn new(max_logins: usize, per_login: usize) -> Self {
        KnownDevices { logins: HashMap::new(), clock: 0, max_logins, per_login }
    }

    fn contains(&self, login: &str, device: &str) -> bool {
        self.logins.get(login).is_some_and(|(devices, _)| devices.iter().any(|d| d == device))
    }

    fn remember(&mut self, login: &str, device: &str) {
        if self.per_login == 0 || device.is_empty() || device.len() > MAX_DEVICE_ID {
            return;
        }
        self.clock += 1;
        if !self.logins.contains_key(login) && self.logins.len() >= self.max_logins {
            // evict the least recently successful eighth: one sort per max/8 new logins
            let mut used: Vec<u64> = self.logins.values().map(|(_, used)| *used).collect();
            used.sort_unstable();
            let evict = (self.max_logins / 8).max(1).min(used.len());
            if let Some(&cutoff) = used.get(evict - 1) {
                self.logins.retain(|_, (_, used)| *used > cutoff);
            }
        }
        let (devices, used) = self.logins.entry(login.to_owned()).or_default();
        *used = self.clock;
        devices.retain(|known| known != device);
        if devices.len() >= self.per_login {
            devices.remove(0);
        }
        devices.push(device.to_owned());
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// The first failure of the current window.
    since: Instant,
    last: Instant,
}

/// Failure counts by key, bounded: when full, expired entries go first, then the ones whose
/// last failure is oldest.
struct FailureTable<K> {
    entries: HashMap<K, Failures>,
    max: usize,
}

impl<K: Hash + Eq> FailureTable<K> {
    fn new(max: usize) -> Self {
        FailureTable { entries: HashMap::new(), max }
    }

    /// The failures of the window `now` is in, if any.
    fn current(&self, key: &K, now: Instant, window: Duration) -> Option<&Failures> {
        self.entries
            .get(key)
            .filter(|failures| now.saturating_duration_since(failures.since) < window)
    }

    fn record(&mut self, key: K, now: Instant, window: Duration) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.make_room(now, window);
        }
        let failures =
            self.entries.entry(key).or_insert(Failures { count: 0, since: now, last: now });
        if now.saturating_duration_since(failures.since) >= window {
            *failures = Failures { count: 0, since: now, last: now };
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops the expired entries, and if that is not enough the oldest eighth, so that a
    /// flood of new keys costs one sort per `max / 8` insertions rather than one per key.
    fn make_room(&mut self, now: Instant, window: Duration) {
        self.entries.retain(|_, failures| now.saturating_duration_since(failures.since) < window);
        if self.entries.len() < self.max {
            return;
        }
        let mut lasts: Vec<Instant> = self.entries.values().map(|failures| failures.last).collect();
        lasts.sort_unstable();
        let evict = (self.max / 8).max(1).min(lasts.len());
        if let Some(&cutoff) = lasts.get(evict - 1) {
            self.entries.retain(|_, failures| failures.last > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9));

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn fail(throttle: &LoginThrottle, login: &str, client: IpAddr, now: Instant, times: u32) {
        for _ in 0..times {
            throttle.failed(login, None, client, now);
        }
    }

    #[test]
    fn delays_double_after_the_free_failures_then_attempts_are_refused() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        let now = Instant::now();
        fail(&throttle, "alice@example.test", CLIENT, now, 4);
        assert_eq!(throttle.check("alice@example.test", None, CLIENT, now), Verdict::Proceed);
        let mut expected = Vec::new();
        let mut seen = Vec::new();
        for failures in 5..20 {
            throttle.failed("alice@example.test", None, CLIENT, now);
            seen.push(throttle.check("alice@example.test", None, CLIENT, now));
            let doublings = failures - 5;
            expected.push(Verdict::Delay(secs((1u64 << doublings).min(60))));
        }
        assert_eq!(seen, expected);
        assert_eq!(expected[0], Verdict::Delay(secs(1)));
        assert_eq!(expected[6], Verdict::Delay(secs(60)));
        throttle.failed("alice@example.test", None, CLIENT, now + secs(100));
        assert_eq!(
            throttle.check("alice@example.test", None, CLIENT, now + secs(100)),
            Verdict::Refuse { retry_after: secs(800) },
            "20 failures: refused until the window that began with the first one ends"
        );
        assert_eq!(
            throttle.check("alice@example.test", None, CLIENT, now + secs(900)),
            Verdict::Proceed
        );
    }

    #[test]
    fn login_and_address_are_counted_separately_and_the_stricter_wins() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        let now = Instant::now();
        // one address guessing many logins
        for n in 0..20 {
            throttle.failed(&format!("user{n}@example.test"), None, CLIENT, now);
        }
        assert!(matches!(
            throttle.check("new@example.test", None, CLIENT, now),
            Verdict::Refuse { .. }
        ));
        assert_eq!(throttle.check("new@example.test", None, OTHER, now), Verdict::Proceed);
        // many addresses guessing one login
        for n in 0..6u8 {
            let address = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, n));
            throttle.failed("bob@example.test", None, address, now);
        }
        assert_eq!(throttle.check("BOB@example.test", None, OTHER, now), Verdict::Delay(secs(2)));
    }

    #[test]
    fn success_forgives_the_login_but_not_the_address() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        let now = Instant::now();
        fail(&throttle, "alice@example.test", CLIENT, now, 7);
        throttle.succeeded("Alice@Example.test", None);
        assert_eq!(throttle.check("alice@example.test", None, OTHER, now), Verdict::Proceed);
        assert_eq!(
            throttle.check("alice@example.test", None, CLIENT, now),
            Verdict::Delay(secs(4))
        );
    }

    #[test]
    fn the_window_runs_from_the_first_failure() {
        let settings = ThrottleSettings { window_seconds: 60, ..ThrottleSettings::default() };
        let throttle = LoginThrottle::new(settings);
        let start = Instant::now();
        fail(&throttle, "a@b", CLIENT, start, 5);
        assert_eq!(throttle.check("a@b", None, CLIENT, start + secs(59)), Verdict::Delay(secs(1)));
        // a new window starts with the next failure, counting from one
        throttle.failed("a@b", None, CLIENT, start + secs(61));
        assert_eq!(throttle.check("a@b", None, CLIENT, start + secs(61)), Verdict::Proceed);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        let now = Instant::now();
        for n in 0..20u16 {
            let address: IpAddr = format!("2001:db8:1:2::{n:x}").parse().expect("address");
            throttle.failed(&format!("u{n}@x"), None, address, now);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("address");
        let next_64: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert!(matches!(throttle.check("v@x", None, same_64, now), Verdict::Refuse { .. }));
        assert_eq!(throttle.check("v@x", None, next_64, now), Verdict::Proceed);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        assert_eq!(address_key(mapped), CLIENT);
    }

    #[test]
    fn tables_stay_bounded_and_forget_the_oldest_first() {
        let settings = ThrottleSettings { max_tracked: 16, ..ThrottleSettings::default() };
        let throttle = LoginThrottle::new(settings);
        let start = Instant::now();
        fail(&throttle, "target@x", CLIENT, start, 6);
        for n in 0..1000u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            throttle.failed(
                &format!("spray{n}@x"),
                None,
                address,
                start + secs(1) + Duration::from_millis(u64::from(n)),
            );
        }
        let tables = throttle.tables();
        assert!(tables.logins.entries.len() <= 16 && tables.addresses.entries.len() <= 16);
        assert!(tables.logins.entries.contains_key("spray999@x"), "the newest stay");
        assert!(!tables.logins.entries.contains_key("target@x"), "the oldest go first");
    }

    #[test]
    fn a_known_device_is_judged_by_its_own_failures_not_the_logins() {
        let throttle = LoginThrottle::new(ThrottleSettings::default());
        let now = Instant::now();
        throttle.succeeded("alice@x", Some("PHONE1"));
        // distributed guessing without the DeviceId (or with another one) locks the login
        for n in 0..20u8 {
            let address = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, n));
            throttle.failed("alice@x", if n % 2 == 0 { None } else { Some("GUESS") }, address, now);
        }
        assert!(matches!(throttle.check("alice@x", None, OTHER, now), Verdict::Refuse { .. }));
        assert!(matches!(
            throttle.check("alice@x", Some("NEWPHONE"), OTHER, now),
            Verdict::Refuse { .. }
        ));
        // the owner's known device is not locked out (per login and device: no failures)
        assert_eq!(throttle.check("ALICE@x", Some("PHONE1"), OTHER, now), Verdict::Proceed);
        // a guessed DeviceId is throttled on its own count, and the address's count still holds
        for _ in 0..20 {
            throttle.failed("alice@x", Some("PHONE1"), OTHER, now);
        }
        assert!(matches!(
            throttle.check("alice@x", Some("PHONE1"), CLIENT, now),
            Verdict::Refuse { .. }
        ));
        // the owner's known device logging in again does not lift the lock on the login
        throttle.succeeded("alice@x", Some("PHONE1"));
        assert_eq!(throttle.check("alice@x", Some("PHONE1"), CLIENT, now), Verdict::Proceed);
        assert!(matches!(throttle.check("alice@x", None, CLIENT, now), Verdict::Refuse { .. }));
        // a new device that got in (the owner, with the password) does, as before
        throttle.succeeded("alice@x", Some("PHONE2"));
        assert_eq!(throttle.check("alice@x", None, CLIENT, now), Verdict::Proceed);
        assert!(
            matches!(throttle.check("alice@x", Some("PHONE2"), OTHER, now), Verdict::Refuse { .. }),
            "the address's own failures still count"
        );
    }

    #[test]
    fn known_devices_are_bounded_per_login_and_in_all() {
        let settings = ThrottleSettings {
            max_tracked: 16,
            known_devices_per_login: 2,
            ..ThrottleSettings::default()
        };
        let throttle = LoginThrottle::new(settings);
        for device in ["A", "B", "C"] {
            throttle.succeeded("a@x", Some(device));
        }
        for n in 0..100 {
            throttle.succeeded(&format!("u{n}@x"), Some("D"));
        }
        let tables = throttle.tables();
        assert!(tables.known.logins.len() <= 16);
        assert!(tables.known.contains("u99@x", "D"));
        assert!(!tables.known.contains("a@x", "C"), "the least recently successful logins go");
        drop(tables);
        throttle.succeeded("b@x", Some("A"));
        throttle.succeeded("b@x", Some("B"));
        throttle.succeeded("b@x", Some("C"));
        let tables = throttle.tables();
        assert!(!tables.known.contains("b@x", "A") && tables.known.contains("b@x", "C"));
    }
}
