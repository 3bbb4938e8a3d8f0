//! Who may connect and what they may read: users with argon2 password hashes (or a
//! password from the environment), roles that list the schemas they may read, bearer
//! tokens handed out by the Handshake, and a brake on repeated wrong passwords.

use std::collections::{BTreeSet, HashMap};
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
}

/// Failed logins allowed per user name within [`FAIL_WINDOW`] before it is locked out
/// for the rest of the window.
pub const MAX_FAILURES: usize = 5;
/// The window over which wrong passwords are counted.
pub const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Names with recent failures kept before old ones are pruned.
const MAX_TRACKED_NAMES: usize = 10_000;
/// How long a bearer token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Users, tokens and the failed-login brake.
#[derive(Debug)]
pub struct Access {
    users: HashMap<String, User>,
    all_schemas: Arc<BTreeSet<String>>,
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Access {
    /// `users` may be empty: then every caller is `anonymous` with every schema in
    /// `all_schemas` (bind to loopback then).
    pub fn new(users: Vec<User>, all_schemas: impl IntoIterator<Item = String>) -> Access {
        Access {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            all_schemas: Arc::new(all_schemas.into_iter().collect()),
            tokens: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
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

    /// Checks a user name and password. Wrong attempts are counted per user name (known
    /// or not, so the answer does not reveal which names exist); after
    /// [`MAX_FAILURES`] within [`FAIL_WINDOW`] even the right password is refused until
    /// the window passes.
    pub fn login(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        let now = Instant::now();
        {
            let mut f = self.failures.lock().expect("failure lock");
            let recent = f.entry(user.to_string()).or_default();
            recent.retain(|t| now.duration_since(*t) < FAIL_WINDOW);
            if recent.len() >= MAX_FAILURES {
                let wait = FAIL_WINDOW.saturating_sub(now.duration_since(recent[0]));
                return Err(AuthError::Locked(user.to_string(), wait.as_secs().max(1)));
            }
        }
        let ok = match self.users.get(user) {
            Some(u) => verify(&u.credential, password).then_some(u),
            None => {
                // As slow as a real check, so timing does not tell which names exist.
                static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let phc = DUMMY.get_or_init(|| hash_password("not a user"));
                verify(&Credential::Argon2(phc.clone()), password);
                None
            }
        };
        match ok {
            Some(u) => Ok(Principal {
                user: u.name.clone(),
                role: u.role.clone(),
                schemas: Arc::new(u.schemas.clone()),
            }),
            None => {
                let mut f = self.failures.lock().expect("failure lock");
                if f.len() >= MAX_TRACKED_NAMES {
                    // Guessing many names must not grow memory: forget names whose
                    // failures are all older than the window.
                    f.retain(|_, ts| ts.iter().any(|t| now.duration_since(*t) < FAIL_WINDOW));
                }
                f.entry(user.to_string()).or_default().push(now);
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

    #[test]
    fn tokens_map_back_to_the_principal() {
        let a = access();
        let p = a.login("eng", "pw").unwrap();
        let t = a.issue(p.clone());
        assert_eq!(a.bearer(&t), Some(p));
        assert_eq!(a.bearer("forged"), None);
    }
}
