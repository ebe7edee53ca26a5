use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The name of a target host as the configuration and policy rules know it
/// (`nas`, `web-1`), not its network address.
///
/// Names are 1–63 characters of ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, so they are safe in logs, URLs and
/// policy host patterns without quoting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct HostName(String);

/// Why a string is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostNameError {
    /// The name was empty.
    #[error("host name is empty")]
    Empty,
    /// The name was longer than 63 characters.
    #[error("host name `{0}…` is longer than 63 characters")]
    TooLong(String),
    /// The name held a character outside the allowed set.
    #[error("host name `{name}` contains `{ch}`: use letters, digits, `-`, `_` and `.`")]
    BadCharacter {
        /// The rejected name.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// The name started with a punctuation character.
    #[error("host name `{0}` must start with a letter or digit")]
    BadStart(String),
}

impl HostName {
    /// Parses a host name.
    ///
    /// # Errors
    /// A [`HostNameError`] saying what is wrong with the name.
    pub fn parse(name: &str) -> Result<HostName, HostNameError> {
        if name.is_empty() {
            return Err(HostNameError::Empty);
        }
        if name.chars().count() > 63 {
            return Err(HostNameError::TooLong(
                crate::text::truncate_chars(name, 63).to_owned(),
            ));
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(HostNameError::BadCharacter {
                name: name.to_owned(),
                ch,
            });
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(HostNameError::BadStart(name.to_owned()));
        }
        Ok(HostName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostName {
    type Err = HostNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostName::parse(s)
    }
}

// A host name is read wherever text is (log lines, SQL binds, lookups by
// name), so it derefs to its text; it is made only by `parse`.
impl std::ops::Deref for HostName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["nas", "web-1", "db_2", "host.lan", "7"] {
            assert_eq!(
                HostName::parse(ok).map(|h| h.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(HostName::parse(""), Err(HostNameError::Empty));
        assert!(matches!(
            HostName::parse("-x"),
            Err(HostNameError::BadStart(_))
        ));
        assert!(matches!(
            HostName::parse("a b"),
            Err(HostNameError::BadCharacter { ch: ' ', .. })
        ));
        assert!(matches!(
            HostName::parse("nas;rm"),
            Err(HostNameError::BadCharacter { ch: ';', .. })
        ));
        assert!(matches!(
            HostName::parse(&"a".repeat(64)),
            Err(HostNameError::TooLong(_))
        ));
        assert!(serde_json::from_str::<HostName>("\"bad name\"").is_err());
    }
}
