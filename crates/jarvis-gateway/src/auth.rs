//! Passwords, sessions, API tokens, CSRF tokens and the login limiter.
//!
//! This module owns the secrets of signing in: hashing and checking
//! passwords (argon2id), minting session, API and CSRF secrets from the
//! operating system's random source, the digests that are all the store ever
//! keeps of them, and the limiter that slows down password guessing.
//!
//! It must never log a password, a secret or a token, never put one in a
//! `Debug` or error message, never compare a secret with `==` (only in
//! constant time), never fall back to a weaker random source, and never ship
//! a default password: first passwords come from [`generate_password`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The shortest password a person may choose, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password a person may choose, in characters.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The prefix of every API token, so a leaked one is recognisable by secret
/// scanners and cannot be mistaken for a session cookie.
pub const API_TOKEN_PREFIX: &str = "jrv_";

// OWASP's argon2id recommendation (Password Storage Cheat Sheet): 19 MiB,
// two passes, one lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

// A stored hash names its own parameters. These ceilings leave room to raise
// ours later while keeping a corrupted or planted row from making one login
// allocate gigabytes (an allocation failure aborts the process, it does not
// return an error) or spin for minutes.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;

// 32 symbols, so each random byte gives exactly five bits without bias. No
// 0/o, 1/l: they are the pairs people misread on a phone screen.
const PASSWORD_ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";
const PASSWORD_GROUPS: usize = 5;
const PASSWORD_GROUP_LEN: usize = 5;
// Five bits per symbol; the promise of at least 100 bits is kept at compile
// time if someone shortens the format.
const _: () = assert!(PASSWORD_GROUPS * PASSWORD_GROUP_LEN * 5 >= 100);

/// Why a password could not be accepted or hashed. No variant carries the
/// password or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A chosen password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: use at least {min} characters")]
    TooShort {
        /// The minimum length, in characters.
        min: usize,
    },
    /// A chosen password is longer than [`MAX_PASSWORD_CHARS`].
    #[error("the password is too long: use at most {max} characters")]
    TooLong {
        /// The maximum length, in characters.
        max: usize,
    },
    /// A chosen password repeats one character.
    #[error("the password is one character repeated: choose a real passphrase")]
    OneCharacter,
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// Argon2 refused to hash (its message names parameters, never input).
    #[error("could not hash the password: {0}")]
    Hash(String),
}

fn argon2() -> Argon2<'static> {
    // Params::new only fails for values outside argon2's limits; ours are
    // constants well inside them, so the fallback is never taken (and would
    // be argon2's own defaults, which are the same OWASP numbers).
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id (m = 19 MiB, t = 2, p = 1) and a fresh
/// 16-byte salt from the operating system, returning a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`) that records its own parameters.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. False, never a panic,
/// for a malformed hash, an algorithm other than argon2id, or parameters
/// beyond sane ceilings. The final comparison is constant-time.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    // Only argon2id: accepting argon2i/argon2d rows would let a planted hash
    // downgrade the side-channel resistance we chose.
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Spends the time of one [`verify_password`] against a hash with the
/// current parameters, and discards the result. Call it when the user name
/// is unknown so that answer takes as long as a wrong password and user
/// names cannot be enumerated by timing.
///
/// The dummy hash is computed on first use; calling `burn_verify("")` once
/// at start-up moves that one-time cost out of the first real login.
pub fn burn_verify(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password(&generate_password()).ok());
    match dummy {
        Some(phc) => {
            let _ = verify_password(phc, password);
        }
        // Hashing costs the same as verifying, so this keeps the timing even
        // if the dummy could not be made.
        None => {
            let _ = hash_password(password);
        }
    }
}

/// A new random password for a person to type: five groups of five
/// characters from a 32-symbol alphabet of lowercase letters and digits
/// without look-alikes, dash-separated (`k7m2x-…`): 125 bits of entropy.
///
/// Panics only if the operating system's random source fails: there is no
/// safe weaker fallback for a password.
pub fn generate_password() -> String {
    let mut bytes = [0u8; PASSWORD_GROUPS * PASSWORD_GROUP_LEN];
    OsRng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(PASSWORD_GROUPS * (PASSWORD_GROUP_LEN + 1));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % PASSWORD_GROUP_LEN == 0 {
            out.push('-');
        }
        out.push(char::from(PASSWORD_ALPHABET[usize::from(b & 0x1f)]));
    }
    out
}

/// Checks a password a person chose: at least [`MIN_PASSWORD_CHARS`] and at
/// most [`MAX_PASSWORD_CHARS`] characters, and not one character repeated.
pub fn check_new_password(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    let mut it = password.chars();
    if let Some(first) = it.next()
        && it.all(|c| c == first)
    {
        return Err(AuthError::OneCharacter);
    }
    Ok(())
}

/// A new secret: 32 random bytes from the operating system, base64url
/// without padding (43 characters). Used for session cookies, API tokens
/// and CSRF tokens.
///
/// Panics only if the operating system's random source fails.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The lowercase hex SHA-256 of a secret: what the store keeps of a session
/// or API token, so a copy of the database signs no one in. A plain hash is
/// enough (no argon2) because the secret has 256 bits of entropy.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token: [`API_TOKEN_PREFIX`] followed by [`new_secret`]. Show it
/// once; store only its [`digest`].
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", new_secret())
}

/// The token in an `Authorization` header value of the form
/// `Bearer jrv_…`: the scheme is case-insensitive and surrounding spaces are
/// ignored. `None` for any other scheme, a token without the `jrv_` prefix,
/// an empty token, whitespace inside the token, or characters outside
/// base64url (which no token we issue contains).
pub fn bearer(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    let body = token.strip_prefix(API_TOKEN_PREFIX)?;
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(token)
}

/// A new CSRF token (a [`new_secret`]), bound to one session.
pub fn csrf_token() -> String {
    new_secret()
}

/// Whether a submitted CSRF token equals the session's, compared in
/// constant time. Different lengths answer false at once, which reveals
/// only the length (fixed for tokens we issue). An empty expected token
/// never matches, so a session without one cannot be satisfied by an empty
/// form field.
pub fn csrf_matches(expected: &str, given: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// How many failed sign-ins the [`LoginLimiter`] tolerates.
///
/// A user name is slowed down, never locked out: anyone may send a wrong
/// password for any name, so a lock on names would let a stranger keep a
/// person out for as long as they liked. Past `per_user` failures each
/// further attempt for the name waits, the wait doubling from
/// `first_delay` up to `max_delay`, so guessing stays slow while the
/// person waits at most `max_delay`. A client address (the guesser's own)
/// is locked for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per user name within `window` before each attempt waits.
    pub per_user: u32,
    /// Failures per client address within `window` before it is locked.
    pub per_address: u32,
    /// How long failures are remembered: an address's from the first of a
    /// run, a user name's from the last one.
    pub window: Duration,
    /// How long an address stays locked.
    pub lockout: Duration,
    /// The first wait for a user name past its free failures.
    pub first_delay: Duration,
    /// The longest wait for a user name.
    pub max_delay: Duration,
}

impl Default for LoginLimits {
    /// 5 failures per user, then waits of 1 s doubling to at most 60 s; 20
    /// per address in 15 minutes, then the address is locked 15 minutes.
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// What happens to an entry past its free failures.
#[derive(Clone, Copy)]
enum Penalty {
    /// Locked for this long; then a fresh count.
    Lockout(Duration),
    /// Each further failure waits longer (the user name's slow-down).
    Backoff { first: Duration, max: Duration },
}

/// What a lock applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockScope {
    /// The user name had too many failures.
    User,
    /// The client address had too many failures.
    Address,
}

impl LockScope {
    /// `user` or `address`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::User => "user",
            LockScope::Address => "address",
        }
    }
}

impl fmt::Display for LockScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused sign-in attempt: the user name must wait, or the address is
/// locked, for `retry_after` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins for this {by}: try again in {} s", ceil_secs(*retry_after))]
pub struct Locked {
    /// How long until the wait or the lock ends.
    pub retry_after: Duration,
    /// Whether the user name waits or the address is locked.
    pub by: LockScope,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The most user names and the most addresses each remembered at once.
pub const MAX_TRACKED: usize = 10_000;

// Longer than any sensible setting; keeps `Instant + Duration` from
// overflowing (which panics) on a nonsensical configuration.
const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Counts failed sign-ins per user name and per client address and locks
/// either for a while once it has too many. Shared by all request handlers
/// (it is `Send + Sync`; state sits behind one mutex).
///
/// Use: [`check`](Self::check) before verifying a password (a locked
/// attempt is refused without touching argon2), [`failed`](Self::failed)
/// after any failure, including an unknown user name,
/// [`succeeded`](Self::succeeded) after a success.
///
/// User names are compared trimmed and lowercased, and kept only as a
/// SHA-256, so a spray of long names costs 32 bytes each. IPv6 addresses
/// count per /64 (one subscriber's usual allocation, so rotating addresses
/// within it gains nothing); IPv4-mapped IPv6 addresses count as the IPv4
/// address. Memory is bounded: entries whose window and lock have passed are
/// swept, and each map holds at most [`MAX_TRACKED`] entries, evicting
/// unlocked entries (oldest activity first) before locked ones.
pub struct LoginLimiter {
    limits: LoginLimits,
    capacity: usize,
    state: Mutex<State>,
}

impl fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("LoginLimiter")
            .field("limits", &self.limits)
            .field("users_tracked", &state.users.len())
            .field("addresses_tracked", &state.addrs.len())
            .finish()
    }
}

struct State {
    users: HashMap<[u8; 32], Entry>,
    addrs: HashMap<IpAddr, Entry>,
    last_sweep: Option<Instant>,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn locked_at(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|&until| until > now)
            .map(|until| until - now)
    }

    /// Whether the entry may be forgotten: not waiting, and its window over
    /// (a user name's counted from its last failure, since a slow-down
    /// must not end while failures keep coming).
    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.locked_at(now).is_none()
            && now.saturating_duration_since(self.window_start) >= window
            && now.saturating_duration_since(self.last) >= window
    }

    fn fail(&mut self, now: Instant, limit: u32, window: Duration, penalty: Penalty) {
        if self.locked_at(now).is_some() {
            // Already waiting: the caller should have been refused by check.
            // Extending the wait here would let anyone keep a victim's
            // account closed forever with one request per wait.
            return;
        }
        let fresh = match penalty {
            // A finished lock or window starts a new count.
            Penalty::Lockout(_) => {
                self.locked_until.is_some()
                    || now.saturating_duration_since(self.window_start) >= window
            }
            // A slow-down ends only after a quiet window.
            Penalty::Backoff { .. } => now.saturating_duration_since(self.last) >= window,
        };
        if fresh {
            self.failures = 0;
            self.window_start = now;
            self.locked_until = None;
        }
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        if self.failures >= limit {
            let wait = match penalty {
                Penalty::Lockout(lockout) => lockout,
                Penalty::Backoff { first, max } => {
                    let doublings = (self.failures - limit).min(31);
                    first.saturating_mul(1 << doublings).min(max)
                }
            };
            self.locked_until = Some(now + wait);
        }
    }
}

impl LoginLimiter {
    /// A limiter with these limits. Counts of zero are raised to one, and
    /// the window and lockout are capped at 366 days.
    pub fn new(limits: LoginLimits) -> Self {
        Self::with_capacity(limits, MAX_TRACKED)
    }

    fn with_capacity(limits: LoginLimits, capacity: usize) -> Self {
        let max_delay = limits.max_delay.min(MAX_PERIOD);
        let limits = LoginLimits {
            per_user: limits.per_user.max(1),
            per_address: limits.per_address.max(1),
            window: limits.window.min(MAX_PERIOD),
            lockout: limits.lockout.min(MAX_PERIOD),
            first_delay: limits.first_delay.min(max_delay),
            max_delay,
        };
        LoginLimiter {
            limits,
            capacity: capacity.max(1),
            state: Mutex::new(State {
                users: HashMap::new(),
                addrs: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    /// The limits in force (after the adjustments of [`new`](Self::new)).
    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can at worst leave one counter
        // stale; refusing every login from then on would be worse.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a sign-in attempt for `user` from `addr` may go ahead. When
    /// both are locked, the longer wait is reported.
    pub fn check(&self, user: &str, addr: IpAddr, now: Instant) -> Result<(), Locked> {
        let mut state = self.lock();
        self.sweep_if_due(&mut state, now);
        let by_user = state
            .users
            .get(&user_key(user))
            .and_then(|e| e.locked_at(now))
            .map(|retry_after| Locked {
                retry_after,
                by: LockScope::User,
            });
        let by_addr = state
            .addrs
            .get(&addr_key(addr))
            .and_then(|e| e.locked_at(now))
            .map(|retry_after| Locked {
                retry_after,
                by: LockScope::Address,
            });
        match (by_user, by_addr) {
            (None, None) => Ok(()),
            (Some(l), None) | (None, Some(l)) => Err(l),
            (Some(u), Some(a)) => Err(if a.retry_after > u.retry_after { a } else { u }),
        }
    }

    /// Records a failed sign-in for `user` from `addr`. Call it for unknown
    /// user names too, so guessing names is limited like guessing passwords.
    pub fn failed(&self, user: &str, addr: IpAddr, now: Instant) {
        let mut state = self.lock();
        self.sweep_if_due(&mut state, now);
        let limits = self.limits;
        let capacity = self.capacity;
        let State { users, addrs, .. } = &mut *state;
        let slow_down = Penalty::Backoff {
            first: limits.first_delay,
            max: limits.max_delay,
        };
        record(
            users,
            user_key(user),
            now,
            (limits.per_user, slow_down),
            limits.window,
            capacity,
        );
        record(
            addrs,
            addr_key(addr),
            now,
            (limits.per_address, Penalty::Lockout(limits.lockout)),
            limits.window,
            capacity,
        );
    }

    /// Records a successful sign-in: forgets the user name's failures.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        // The address keeps its count: one account the attacker controls
        // must not reset the budget for guessing everyone else's.
        let _ = addr;
        self.lock().users.remove(&user_key(user));
    }

    fn sweep_if_due(&self, state: &mut State, now: Instant) {
        let due = state
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= self.limits.window);
        if due {
            sweep(&mut state.users, now, self.limits.window);
            sweep(&mut state.addrs, now, self.limits.window);
            state.last_sweep = Some(now);
        }
    }
}

fn user_key(user: &str) -> [u8; 32] {
    Sha256::digest(user.trim().to_lowercase().as_bytes()).into()
}

fn addr_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}

fn sweep<K>(map: &mut HashMap<K, Entry>, now: Instant, window: Duration) {
    map.retain(|_, e| !e.expired(now, window));
}

fn record<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, Entry>,
    key: K,
    now: Instant,
    (limit, penalty): (u32, Penalty),
    window: Duration,
    capacity: usize,
) {
    if !map.contains_key(&key) && map.len() >= capacity {
        sweep(map, now, window);
        if map.len() >= capacity {
            evict_one(map, now);
        }
    }
    map.entry(key)
        .or_insert(Entry {
            failures: 0,
            window_start: now,
            last: now,
            locked_until: None,
        })
        .fail(now, limit, window, penalty);
}

fn evict_one<K: std::hash::Hash + Eq + Copy>(map: &mut HashMap<K, Entry>, now: Instant) {
    // Unlocked entries go first, oldest activity first; a lock is evicted
    // only when every entry is locked, and then the one ending soonest. So a
    // flood of fresh names cannot release a lock already earned.
    let victim = map
        .iter()
        .min_by_key(|(_, e)| match e.locked_at(now) {
            None => (false, e.last),
            Some(_) => (true, e.locked_until.unwrap_or(e.last)),
        })
        .map(|(k, _)| *k);
    if let Some(k) = victim {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert!(!verify_password(&phc, ""));
    }

    #[test]
    fn same_password_gets_different_salts() {
        let a = hash_password("same password here").expect("hash");
        let b = hash_password("same password here").expect("hash");
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        let good = hash_password("pw-for-malformed").expect("hash");
        let bad = [
            String::new(),
            "$".into(),
            "not a hash".into(),
            "$argon2id$".into(),
            "$argon2id$v=19$m=19456,t=2,p=1$".into(),
            good[..good.len() - 5].into(),
            good.replace("argon2id", "argon2i"),
            good.replace("m=19456", "m=4194304"),
            good.replace("t=2", "t=1000"),
            good.replace("p=1", "p=4096"),
            format!("{good}$extra"),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".into(),
        ];
        for bad in &bad {
            assert!(!verify_password(bad, "pw-for-malformed"), "{bad}");
        }
    }

    #[test]
    fn burn_verify_runs_without_panicking() {
        burn_verify("");
        burn_verify("anything at all");
    }

    #[test]
    fn generated_passwords_have_the_promised_shape() {
        let alphabet: HashSet<char> = PASSWORD_ALPHABET.iter().map(|&b| char::from(b)).collect();
        assert_eq!(alphabet.len(), 32);
        for c in ['0', '1', 'o', 'l'] {
            assert!(!alphabet.contains(&c));
        }
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let p = generate_password();
            assert_eq!(p.len(), 29, "{p}");
            let groups: Vec<&str> = p.split('-').collect();
            assert_eq!(groups.len(), 5);
            for g in groups {
                assert_eq!(g.len(), 5);
                assert!(g.chars().all(|c| alphabet.contains(&c)), "{p}");
            }
            check_new_password(&p).expect("generated passwords pass the chosen-password check");
            seen.extend(p.chars().filter(|&c| c != '-'));
            assert!(seen.len() <= 32);
        }
        // 5000 draws from 32 symbols: every symbol shows up.
        assert_eq!(seen.len(), 32);
        assert_ne!(generate_password(), generate_password());
    }

    #[test]
    fn chosen_password_rules() {
        assert_eq!(
            check_new_password("short"),
            Err(AuthError::TooShort { min: 12 })
        );
        assert_eq!(
            check_new_password("elevenchars"),
            Err(AuthError::TooShort { min: 12 })
        );
        assert_eq!(check_new_password("twelve chars"), Ok(()));
        // Characters, not bytes: 12 multi-byte characters are enough, 11 not.
        assert_eq!(
            check_new_password(&"é".repeat(11)),
            Err(AuthError::TooShort { min: 12 })
        );
        assert_eq!(check_new_password("éèêëéèêëéèêë"), Ok(()));
        assert_eq!(
            check_new_password(&"aaaaaaaaaaab".repeat(100)),
            Err(AuthError::TooLong { max: 1024 })
        );
        assert_eq!(check_new_password(&"ab".repeat(512)), Ok(()));
        assert_eq!(
            check_new_password("aaaaaaaaaaaaaaaa"),
            Err(AuthError::OneCharacter)
        );
        assert_eq!(check_new_password(""), Err(AuthError::TooShort { min: 12 }));
        let msg = AuthError::TooShort { min: 12 }.to_string();
        assert!(msg.contains("at least 12"), "{msg}");
    }

    #[test]
    fn secrets_tokens_and_digests() {
        let s = new_secret();
        assert_eq!(s.len(), 43);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(s, new_secret());
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = new_api_token();
        assert!(t.starts_with("jrv_"));
        assert_eq!(t.len(), 47);
        assert_eq!(bearer(&format!("Bearer {t}")), Some(t.as_str()));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer jrv_abc-_9"), Some("jrv_abc-_9"));
        assert_eq!(bearer("bearer jrv_abc"), Some("jrv_abc"));
        assert_eq!(bearer("BEARER   jrv_abc  "), Some("jrv_abc"));
        assert_eq!(bearer("  Bearer\tjrv_abc"), Some("jrv_abc"));
        assert_eq!(bearer("Bearer abc"), None);
        assert_eq!(bearer("Bearer jrv_"), None);
        assert_eq!(bearer("Bearer jrv_abc def"), None);
        assert_eq!(bearer("Bearer jrv_abc\tdef"), None);
        assert_eq!(bearer("Bearer jrv_ab\u{a0}c"), None);
        assert_eq!(bearer("Bearer jrv_ab=c"), None);
        assert_eq!(bearer("Basic jrv_abc"), None);
        assert_eq!(bearer("Bearerjrv_abc"), None);
        assert_eq!(bearer("jrv_abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer(""), None);
        assert_eq!(bearer("Bearer JRV_abc"), None);
    }

    #[test]
    fn csrf_comparison() {
        let t = csrf_token();
        assert_eq!(t.len(), 43);
        assert!(csrf_matches(&t, &t.clone()));
        assert!(!csrf_matches(&t, &t[..42]));
        assert!(!csrf_matches(&t, &format!("{t}x")));
        assert!(!csrf_matches(&t, ""));
        assert!(!csrf_matches("", ""));
        assert!(!csrf_matches(&t, &csrf_token()));
    }

    #[test]
    fn errors_never_mention_the_password() {
        let Err(e) = check_new_password("hunter2") else {
            panic!("should be refused")
        };
        assert!(!e.to_string().contains("hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    fn limits() -> LoginLimits {
        LoginLimits::default()
    }

    #[test]
    fn defaults() {
        let l = LoginLimits::default();
        assert_eq!((l.per_user, l.per_address), (5, 20));
        assert_eq!(l.window, Duration::from_secs(900));
        assert_eq!(l.lockout, Duration::from_secs(900));
        assert_eq!(
            (l.first_delay, l.max_delay),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
    }

    #[test]
    fn a_user_name_slows_down_and_is_never_locked_out() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..4 {
            lim.failed("alice", A, t0 + Duration::from_secs(i));
            assert_eq!(lim.check("alice", A, t0 + Duration::from_secs(i)), Ok(()));
        }
        // The fifth failure: a wait of one second, from any address.
        let mut now = t0 + Duration::from_secs(10);
        lim.failed("alice", A, now);
        let wait = lim.check("alice", B, now).expect_err("waits");
        assert_eq!(wait.by, LockScope::User);
        assert_eq!(wait.retry_after, Duration::from_secs(1));
        assert!(wait.to_string().contains("1 s"), "{wait}");
        // Another user is unaffected.
        assert_eq!(lim.check("bob", B, now), Ok(()));
        // Each failure after a wait doubles the next, up to a minute; the
        // person can always try again once it has passed.
        let mut expected = Duration::from_secs(1);
        for _ in 0..10 {
            now += expected;
            assert_eq!(lim.check("alice", A, now), Ok(()), "after {expected:?}");
            lim.failed("alice", A, now);
            expected = (expected * 2).min(Duration::from_secs(60));
            let wait = lim.check("alice", A, now).expect_err("waits");
            assert_eq!(wait.retry_after, expected);
        }
        assert_eq!(expected, Duration::from_secs(60));
        // A success forgets the name's failures.
        now += expected;
        lim.succeeded("alice", A);
        lim.failed("alice", A, now);
        assert_eq!(lim.check("alice", A, now), Ok(()));
    }

    #[test]
    fn failures_while_waiting_do_not_extend_the_wait() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for _ in 0..5 {
            lim.failed("alice", A, t0);
        }
        // A stranger's attempts during the wait change nothing.
        for i in 0..100 {
            lim.failed("alice", B, t0 + Duration::from_millis(i * 5));
        }
        let wait = lim
            .check("alice", A, t0 + Duration::from_millis(500))
            .expect_err("waits");
        assert_eq!(wait.retry_after, Duration::from_millis(500));
        assert_eq!(lim.check("alice", A, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_slow_down_ends_after_a_quiet_window() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        let mut now = t0;
        for _ in 0..8 {
            now += Duration::from_secs(60);
            lim.failed("alice", A, now);
        }
        // Failures kept coming past the first window: still slowed down.
        assert!(now - t0 > Duration::from_secs(400));
        lim.failed("alice", A, now + Duration::from_secs(120));
        assert!(
            lim.check("alice", A, now + Duration::from_secs(120))
                .is_err()
        );
        // Fifteen quiet minutes: a fresh budget.
        let later = now + Duration::from_secs(120 + 900);
        lim.failed("alice", A, later);
        assert_eq!(lim.check("alice", A, later), Ok(()));
    }

    #[test]
    fn window_expiry_resets_the_count() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for _ in 0..4 {
            lim.failed("alice", A, t0);
        }
        let t1 = t0 + Duration::from_secs(901);
        lim.failed("alice", A, t1);
        assert_eq!(lim.check("alice", A, t1), Ok(()));
        for _ in 0..3 {
            lim.failed("alice", A, t1);
        }
        assert_eq!(lim.check("alice", A, t1), Ok(()));
        lim.failed("alice", A, t1);
        assert!(lim.check("alice", A, t1).is_err());
    }

    #[test]
    fn user_names_are_normalised_and_unknown_names_count() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for name in ["Alice", " alice", "ALICE ", "alice", "\taLiCe\n"] {
            lim.failed(name, A, t0);
        }
        assert_eq!(
            lim.check("alice", B, t0).map_err(|l| l.by),
            Err(LockScope::User)
        );
        // A name no account has is limited all the same.
        for _ in 0..5 {
            lim.failed("nobody-by-this-name", B, t0);
        }
        assert!(lim.check("Nobody-By-This-Name", B, t0).is_err());
    }

    #[test]
    fn address_locks_across_user_names() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..19 {
            lim.failed(&format!("user{i}"), A, t0);
        }
        assert_eq!(lim.check("someone", A, t0), Ok(()));
        lim.failed("user19", A, t0);
        let locked = lim.check("someone", A, t0).expect_err("locked");
        assert_eq!(locked.by, LockScope::Address);
        assert_eq!(lim.check("someone", B, t0), Ok(()));
    }

    #[test]
    fn longer_lock_is_reported_when_both_are_locked() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..20 {
            lim.failed(&format!("u{i}"), A, t0);
        }
        let t1 = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            lim.failed("target", B, t1);
        }
        // The address lock ends at t0+900, the user's wait at t1+1.
        let locked = lim.check("target", A, t1).expect_err("locked");
        assert_eq!(locked.by, LockScope::Address);
        assert_eq!(locked.retry_after, Duration::from_secs(840));
        let locked = lim.check("target", B, t1).expect_err("waits");
        assert_eq!(locked.by, LockScope::User);
        assert_eq!(locked.retry_after, Duration::from_secs(1));
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for _ in 0..4 {
            lim.failed("alice", A, t0);
        }
        for i in 0..15 {
            lim.failed(&format!("x{i}"), A, t0);
        }
        lim.succeeded(" Alice", A);
        // The user count is gone: four more failures do not lock her.
        for _ in 0..4 {
            lim.failed("bob", B, t0);
        }
        for _ in 0..4 {
            lim.failed("alice", B, t0);
        }
        assert_eq!(lim.check("alice", B, t0), Ok(()));
        // The address had 19 failures; one more locks it.
        lim.failed("carol", A, t0);
        assert_eq!(
            lim.check("carol", A, t0).map_err(|l| l.by),
            Err(LockScope::Address)
        );
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..20u16 {
            let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i));
            lim.failed(&format!("u{i}"), a, t0);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(lim.check("x", same_64, t0).is_err());
        assert_eq!(lim.check("x", other_64, t0), Ok(()));

        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(addr_key(mapped), A);
        for i in 0..20 {
            lim.failed(&format!("m{i}"), mapped, t0);
        }
        assert!(lim.check("x", A, t0).is_err());
    }

    #[test]
    fn old_entries_are_swept() {
        let lim = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..100 {
            lim.failed(&format!("spray{i}"), B, t0);
        }
        {
            let s = lim.lock();
            assert_eq!(s.users.len(), 100);
            assert_eq!(s.addrs.len(), 1);
        }
        // Past both the window and the address lock.
        let _ = lim.check("x", A, t0 + Duration::from_secs(1801));
        let s = lim.lock();
        assert_eq!(s.users.len(), 0);
        assert_eq!(s.addrs.len(), 0);
    }

    #[test]
    fn maps_are_capped_and_locks_survive_a_spray() {
        let lim = LoginLimiter::with_capacity(limits(), 50);
        let t0 = Instant::now();
        for _ in 0..5 {
            lim.failed("victim", A, t0);
        }
        // Many names from many addresses, all inside the window.
        for i in 0..1000u32 {
            let addr = IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + i));
            lim.failed(
                &format!("random-{i}"),
                addr,
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        {
            let s = lim.lock();
            assert!(s.users.len() <= 50);
            assert!(s.addrs.len() <= 50);
        }
        assert_eq!(
            lim.check("victim", B, t0 + Duration::from_millis(999))
                .map_err(|l| l.by),
            Err(LockScope::User)
        );
        // The default capacity is the documented one.
        assert_eq!(LoginLimiter::new(limits()).capacity, MAX_TRACKED);
    }

    #[test]
    fn zero_limits_and_huge_periods_are_made_safe() {
        let lim = LoginLimiter::new(LoginLimits {
            per_user: 0,
            per_address: 0,
            window: Duration::MAX,
            lockout: Duration::MAX,
            first_delay: Duration::MAX,
            max_delay: Duration::MAX,
        });
        assert_eq!(lim.limits().per_user, 1);
        let t0 = Instant::now();
        lim.failed("a", A, t0);
        assert!(lim.check("a", A, t0).is_err());
    }

    #[test]
    fn limiter_is_send_sync_and_debug_shows_no_names() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LoginLimiter>();
        let lim = LoginLimiter::new(limits());
        lim.failed("secret-user-name", A, Instant::now());
        let dbg = format!("{lim:?}");
        assert!(!dbg.contains("secret-user-name"), "{dbg}");
        assert!(dbg.contains("users_tracked: 1"), "{dbg}");
    }
}
