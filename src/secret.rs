//! A string that never prints: `Debug`/`Display` show `***`, so a secret can sit in any
//! struct that gets logged or put in an error without leaking.
//!
//! Second line of defence: every secret value this process holds is also remembered, and
//! the places text leaves the process (log lines, the final error, a panic report) pass
//! through [`redact`], so even a value that escaped its wrapper — formatted by a
//! dependency, echoed in an upstream error — prints as `[redacted]`.

use std::collections::VecDeque;
use std::sync::RwLock;

use serde::{Deserialize, Deserializer, Serialize};

/// An app secret, access token or password. Read it with [`Secret::expose`], only at the
/// point where it goes on the wire or to disk.
#[derive(Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Values shorter than this are not redacted (they would blank out ordinary words).
const MIN_REDACTED: usize = 6;
/// How many values are remembered; a long-running worker refreshes tokens for many shops,
/// and the oldest (long expired) are the ones to forget.
const REMEMBERED: usize = 4096;

static KNOWN: RwLock<VecDeque<String>> = RwLock::new(VecDeque::new());

fn remember(value: &str) {
    if value.len() < MIN_REDACTED {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if known.iter().any(|k| k == value) {
        return;
    }
    if known.len() == REMEMBERED {
        known.pop_front();
    }
    known.push_back(value.to_string());
}

/// `text` with every secret value this process has held replaced by `[redacted]`.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for k in known.iter() {
        if out.contains(k.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(k.as_str(), "[redacted]"));
        }
    }
    out
}

impl Secret {
    /// Wraps a secret value (and remembers it for [`redact`]).
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        remember(&s);
        Secret(s)
    }
    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_prints() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn held_values_are_redacted_wherever_they_appear() {
        let s: super::Secret = serde_json::from_str("\"tok-9f8e7d6c\"").unwrap();
        let _short = super::Secret::new("abc");
        assert_eq!(
            super::redact("got tok-9f8e7d6c back, twice: tok-9f8e7d6c; abc stays"),
            "got [redacted] back, twice: [redacted]; abc stays"
        );
        assert_eq!(s.expose(), "tok-9f8e7d6c");
    }
}
