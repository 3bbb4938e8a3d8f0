//! Durations written in config and pipeline files (`"30s"`, `"500ms"`, `"15m"`,
//! `"30days"`): the one parser, and serde helpers so a duration field is parsed once, when
//! its file loads (`#[serde(with = "crate::duration")]`, or
//! `#[serde(default, deserialize_with = "crate::duration::option::deserialize")]` for an
//! optional one).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration such as `"30s"`, `"500ms"` or `"30days"`; the error shows the value,
/// what is wrong with it and good examples.
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); e.g. \"30s\" or \"500ms\""))
}

/// Deserializes a duration written as a string (see [`parse`]).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// An optional duration field: absent is `None` (with `#[serde(default)]`).
pub mod option {
    use std::time::Duration;

    use serde::Deserializer;

    /// Deserializes a present duration (see [`super::parse`]) as `Some`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30days"), Ok(Duration::from_secs(30 * 86_400)));
        let e = parse("soon").unwrap_err();
        assert!(e.starts_with("\"soon\" is not a duration ("), "{e}");
        assert!(e.ends_with("); e.g. \"30s\" or \"500ms\""), "{e}");
    }
}
