//! Who may connect and what they may read: users with argon2 password hashes (or a
//! password from the environment), roles that list the schemas they may read, bearer
//! tokens handed out by the Handshake, and brakes on repeated wrong passwords — per user
//! name and per client address.
//!
//! argon2 is deliberately slow (tens of milliseconds of CPU and ~19 MiB per check), so
//! [`Access::login_from`] runs it on tokio's blocking pool, a few checks at a time, never
//! on the async workers that serve queries.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};

use crate::secret::Secret;

/// How a user's password is checked.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An argon2 PHC string (`$argon2id$v=19$…`), as printed by `shoplake hash-password`.
    Argon2(String),
    /// A password held in memory (from an env var or the legacy `serve.password`).
    Plain(Secret),
}

/// A Flight SQL user.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role name (for the audit log and errors).
    pub role: String,
    /// Schemas the role may read.
    pub schemas: BTreeSet<String>,
    /// Password check.
    pub credential: Credential,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (`anonymous` when the server has no users).
    pub user: String,
    /// Role name.
    pub role: String,
    /// Schemas the caller may read.
    pub schemas: Arc<BTreeSet<String>>,
}

impl Principal {
    /// Whether the caller may read `schema` (`information_schema` is always readable: it
    /// only lists what the caller can see).
    pub fn may_read(&self, schema: &str) -> bool {
        schema == "information_schema" || self.schemas.contains(schema)
    }
}

/// Why a login failed (the message is safe to send: it never echoes the password).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong user or password.
    #[error("wrong user name or password")]
    Wrong,
    /// Too many wrong attempts recently.
    #[error("too many failed logins for {0:?}; try again in {1}s")]
    Locked(String, u64),
    /// Too many wrong attempts recently from one client address (or IPv6 /64): the
    /// address, the limit, the window in seconds and the seconds left.
    #[error("too many failed logins from {0} (limit {1} within {2}s); try again in {3}s")]
    AddressLocked(String, usize, u64, u64),
}

/// Failed logins allowed per user name within [`FAIL_WINDOW`] before it is locked out
/// for the rest of the window.
pub const MAX_FAILURES: usize = 5;
/// Failed logins allowed per client address within [`FAIL_WINDOW`] (whatever names they
/// tried) before the address may not log in for the rest of the window; see
/// [`Access::with_address_limit`]. Twice [`MAX_FAILURES`], so one user mistyping their
/// own password meets the (more specific) name lock first, while guessing across many
/// names from one place is stopped.
pub const MAX_ADDRESS_FAILURES: usize = 2 * MAX_FAILURES;
/// The window over which wrong passwords are counted.
pub const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Names (or addresses) with recent failures kept before old ones are pruned.
const MAX_TRACKED_NAMES: usize = 10_000;
/// How long a bearer token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Recent wrong attempts per key (a user name or a client address), with a limit per
/// [`FAIL_WINDOW`].
#[derive(Debug)]
struct Failures<K> {
    limit: usize,
    recent: Mutex<HashMap<K, Vec<Instant>>>,
}

impl<K: Hash + Eq> Failures<K> {
    fn new(limit: usize) -> Failures<K> {
        Failures {
            limit,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` must still wait when it has reached the limit within the window.
    fn locked<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut f = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let recent = f.get_mut(key)?;
        recent.retain(|t| now.duration_since(*t) < FAIL_WINDOW);
        if recent.len() < self.limit {
            return None;
        }
        Some(FAIL_WINDOW.saturating_sub(now.duration_since(recent[0])))
    }

    /// Counts a wrong attempt by `key` at `now`.
    fn record(&self, key: K, now: Instant) {
        let mut f = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() >= MAX_TRACKED_NAMES {
            // Guessing many names (or from many addresses) must not grow memory: forget
            // keys whose failures are all older than the window.
            f.retain(|_, ts| ts.iter().any(|t| now.duration_since(*t) < FAIL_WINDOW));
        }
        f.entry(key).or_default().push(now);
    }
}

/// The key wrong attempts from `ip` are counted under: the IPv4 address (also when it
/// arrives IPv4-mapped), or the IPv6 /64 — one host usually holds a whole /64, so
/// counting single IPv6 addresses would be no brake at all.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn show_client(key: IpAddr) -> String {
    match key {
        IpAddr::V6(_) => format!("{key}/64"),
        IpAddr::V4(_) => key.to_string(),
    }
}

/// Users, tokens and the failed-login brakes.
#[derive(Debug)]
pub struct Access {
    users: HashMap<String, User>,
    all_schemas: Arc<BTreeSet<String>>,
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    /// Wrong passwords per user name.
    names: Failures<String>,
    /// Wrong passwords per client address ([`client_key`]).
    addresses: Failures<IpAddr>,
    /// Password checks running on the blocking pool at once: argon2 is CPU- and
    /// memory-bound, so more than one per core only queues inside the OS and multiplies
    /// memory (a burst of logins must not start hundreds of 19 MiB checks).
    checks: tokio::sync::Semaphore,
}

impl Access {
    /// `users` may be empty: then every caller is `anonymous` with every schema in
    /// `all_schemas` (bind to loopback then).
    pub fn new(users: Vec<User>, all_schemas: impl IntoIterator<Item = String>) -> Access {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Access {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            all_schemas: Arc::new(all_schemas.into_iter().collect()),
            tokens: Mutex::new(HashMap::new()),
            names: Failures::new(MAX_FAILURES),
            addresses: Failures::new(MAX_ADDRESS_FAILURES),
            checks: tokio::sync::Semaphore::new(cores),
        }
    }

    /// The same, refusing a client address after `max_failures` wrong passwords within
    /// [`FAIL_WINDOW`] instead of [`MAX_ADDRESS_FAILURES`] (at least 1).
    pub fn with_address_limit(mut self, max_failures: usize) -> Access {
        self.addresses = Failures::new(max_failures.max(1));
        self
    }

    /// Whether callers must authenticate.
    pub fn required(&self) -> bool {
        !self.users.is_empty()
    }

    /// The caller when no users are configured.
    pub fn anonymous(&self) -> Principal {
        Principal {
            user: "anonymous".into(),
            role: "admin".into(),
            schemas: self.all_schemas.clone(),
        }
    }

    /// Checks a user name and password on the calling thread (it blocks for the length
    /// of an argon2 check: in async code use [`Access::login_from`]). Wrong attempts are
    /// counted per user name (known or not, so the answer does not reveal which names
    /// exist); after [`MAX_FAILURES`] within [`FAIL_WINDOW`] even the right password is
    /// refused until the window passes.
    pub fn login(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        let now = Instant::now();
        self.admit(None, user, now)?;
        let credential = self.users.get(user).map(|u| u.credential.clone());
        let matched = password_matches(credential.as_ref(), password);
        self.conclude(None, user, matched, now)
    }

    /// [`Access::login`] for a caller at `client` (when known): the password check runs
    /// on tokio's blocking pool, at most one per core at a time, and wrong attempts are
    /// also counted per client address — after the address limit
    /// ([`MAX_ADDRESS_FAILURES`], or [`Access::with_address_limit`]) within
    /// [`FAIL_WINDOW`], every login from that address is refused, right password or
    /// not, until the window passes. Successful logins count against nothing, and other
    /// addresses are unaffected. The limits are checked again after waiting for a check
    /// slot, so a flood of parallel attempts from a locked address stops there instead of
    /// hashing.
    pub async fn login_from(
        &self,
        client: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Result<Principal, AuthError> {
        let client = client.map(client_key);
        self.admit(client, user, Instant::now())?;
        let _slot = self
            .checks
            .acquire()
            .await
            .expect("the check semaphore is never closed");
        let now = Instant::now();
        self.admit(client, user, now)?;
        let credential = self.users.get(user).map(|u| u.credential.clone());
        let password = password.to_string();
        let matched =
            tokio::task::spawn_blocking(move || password_matches(credential.as_ref(), &password))
                .await
                // A check that did not finish (the runtime is shutting down) is a refusal.
                .unwrap_or(false);
        self.conclude(client, user, matched, now)
    }

    /// Refuses a login up front when its address or its name is locked out.
    fn admit(&self, client: Option<IpAddr>, user: &str, now: Instant) -> Result<(), AuthError> {
        if let Some(key) = client
            && let Some(wait) = self.addresses.locked(&key, now)
        {
            return Err(AuthError::AddressLocked(
                show_client(key),
                self.addresses.limit,
                FAIL_WINDOW.as_secs(),
                wait.as_secs().max(1),
            ));
        }
        if let Some(wait) = self.names.locked(user, now) {
            return Err(AuthError::Locked(user.to_string(), wait.as_secs().max(1)));
        }
        Ok(())
    }

    /// The caller when the password `matched`; otherwise counts the failure against the
    /// name and the address.
    fn conclude(
        &self,
        client: Option<IpAddr>,
        user: &str,
        matched: bool,
        now: Instant,
    ) -> Result<Principal, AuthError> {
        match self.users.get(user).filter(|_| matched) {
            Some(u) => Ok(Principal {
                user: u.name.clone(),
                role: u.role.clone(),
                schemas: Arc::new(u.schemas.clone()),
            }),
            None => {
                self.names.record(user.to_string(), now);
                if let Some(key) = client {
                    self.addresses.record(key, now);
                }
                Err(AuthError::Wrong)
            }
        }
    }

    /// A new bearer token for `p`.
    pub fn issue(&self, p: Principal) -> String {
        let token = hex::encode(rand::random::<[u8; 24]>());
        let mut t = self.tokens.lock().expect("token lock");
        let now = Instant::now();
        t.retain(|_, (_, at)| now.duration_since(*at) < TOKEN_TTL);
        t.insert(token.clone(), (p, now));
        token
    }

    /// The caller a bearer token belongs to, if it is known and fresh.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        let t = self.tokens.lock().expect("token lock");
        t.get(token)
            .filter(|(_, at)| at.elapsed() < TOKEN_TTL)
            .map(|(p, _)| p.clone())
    }
}

/// Whether `password` matches `credential` (blocking: argon2). An unknown user (`None`)
/// is checked against a dummy hash, as slow as a real check, so timing does not tell
/// which names exist; it never matches.
fn password_matches(credential: Option<&Credential>, password: &str) -> bool {
    match credential {
        Some(c) => verify(c, password),
        None => {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let phc = DUMMY.get_or_init(|| hash_password("not a user"));
            verify(&Credential::Argon2(phc.clone()), password);
            false
        }
    }
}

fn verify(c: &Credential, password: &str) -> bool {
    match c {
        Credential::Plain(s) => bool::from(subtle::ConstantTimeEq::ct_eq(
            password.as_bytes(),
            s.expose().as_bytes(),
        )),
        Credential::Argon2(phc) => PasswordHash::new(phc).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        }),
    }
}

/// An argon2id PHC string for `password` (what `[[serve.users]] password_hash` holds).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Checks that `phc` is a parseable argon2 hash (for config validation).
pub fn valid_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let schemas = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Access::new(
            vec![
                User {
                    name: "ana".into(),
                    role: "analyst".into(),
                    schemas: schemas(&["marts"]),
                    credential: Credential::Argon2(hash_password("s3cret")),
                },
                User {
                    name: "eng".into(),
                    role: "engineer".into(),
                    schemas: schemas(&["raw", "staging", "marts"]),
                    credential: Credential::Plain(Secret::new("pw")),
                },
            ],
            ["raw", "staging", "marts"].map(String::from),
        )
    }

    #[test]
    fn argon2_and_plain_passwords() {
        let a = access();
        let p = a.login("ana", "s3cret").unwrap();
        assert_eq!(p.role, "analyst");
        assert!(p.may_read("marts") && !p.may_read("raw"));
        assert!(p.may_read("information_schema"));
        assert_eq!(a.login("ana", "S3cret"), Err(AuthError::Wrong));
        assert_eq!(a.login("eng", "pw").unwrap().role, "engineer");
        assert_eq!(a.login("nobody", "pw"), Err(AuthError::Wrong));
        assert!(valid_hash(&hash_password("x")));
        assert!(!valid_hash("plain text"));
    }

    #[test]
    fn repeated_wrong_passwords_lock_the_name() {
        let a = access();
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("ana", "guess"), Err(AuthError::Wrong));
        }
        // Locked: even the right password waits for the window to pass.
        assert!(matches!(
            a.login("ana", "s3cret"),
            Err(AuthError::Locked(..))
        ));
        // Other users are not affected.
        assert!(a.login("eng", "pw").is_ok());
    }

    #[tokio::test]
    async fn repeated_wrong_passwords_lock_the_address() {
        let a = access().with_address_limit(3);
        let here: IpAddr = "10.0.0.7".parse().unwrap();
        let there: IpAddr = "10.0.0.8".parse().unwrap();
        // A right password counts against nothing.
        assert!(a.login_from(Some(here), "eng", "pw").await.is_ok());
        // Wrong passwords spread over names (none reaches the name lock) …
        for name in ["eng", "ana", "nobody"] {
            assert_eq!(
                a.login_from(Some(here), name, "guess").await,
                Err(AuthError::Wrong)
            );
        }
        // … lock the address: even the right password is refused, naming the limit.
        let err = a.login_from(Some(here), "eng", "pw").await.unwrap_err();
        assert!(matches!(err, AuthError::AddressLocked(..)), "{err}");
        assert!(
            err.to_string()
                .starts_with("too many failed logins from 10.0.0.7 (limit 3 within 60s)"),
            "{err}"
        );
        // Other addresses, and callers without an address, are not affected.
        assert!(a.login_from(Some(there), "eng", "pw").await.is_ok());
        assert!(a.login("eng", "pw").is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.7"), key("10.0.0.7"));
        assert_eq!(show_client(key("2001:db8:1:2::1")), "2001:db8:1:2::/64");
    }

    #[test]
    fn tokens_map_back_to_the_principal() {
        let a = access();
        let p = a.login("eng", "pw").unwrap();
        let t = a.issue(p.clone());
        assert_eq!(a.bearer(&t), Some(p));
        assert_eq!(a.bearer("forged"), None);
    }
}
