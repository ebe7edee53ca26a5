use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How dangerous a command line is: a score from 0 to 100 and its level.
///
/// The level is derived from the score and cannot disagree with it, which is
/// why the fields are private and only [`Risk::new`] builds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[schema(description = "How dangerous a command line is: a score and the band it falls in.")]
pub struct Risk {
    /// The score, from 0 (harmless) to 100 (could lose a server or its data).
    #[schema(maximum = 100)]
    score: u8,
    /// The band the score falls in.
    level: RiskLevel,
}

/// The four bands a risk score falls into.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// 0–29: reads and harmless inspection.
    Low,
    /// 30–59: local changes that are easy to undo.
    Medium,
    /// 60–84: changes that are hard to undo, run other programs, or touch secrets.
    High,
    /// 85–100: could lose a server or its data.
    Critical,
}

/// A score outside 0..=100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// The score was above 100.
    #[error("risk score {0} is out of range: scores go from 0 to 100")]
    OutOfRange(u32),
}

impl Risk {
    /// The lowest possible risk.
    pub const NONE: Risk = Risk {
        score: 0,
        level: RiskLevel::Low,
    };
    /// The highest possible risk.
    pub const MAX: Risk = Risk {
        score: 100,
        level: RiskLevel::Critical,
    };

    /// A risk with the given score.
    ///
    /// # Errors
    /// [`RiskError::OutOfRange`] when the score is above 100.
    pub fn new(score: u32) -> Result<Risk, RiskError> {
        let score = u8::try_from(score)
            .ok()
            .filter(|s| *s <= 100)
            .ok_or(RiskError::OutOfRange(score))?;
        Ok(Risk {
            score,
            level: RiskLevel::of(score),
        })
    }

    /// A risk with the score clamped into 0..=100; for arithmetic on scores.
    pub fn saturating(score: i64) -> Risk {
        let score = score.clamp(0, 100) as u8;
        Risk {
            score,
            level: RiskLevel::of(score),
        }
    }

    /// The score, 0 to 100.
    pub fn score(self) -> u8 {
        self.score
    }

    /// The band the score falls in.
    pub fn level(self) -> RiskLevel {
        self.level
    }
}

impl<'de> Deserialize<'de> for Risk {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The level is re-derived so a stored or received risk can never carry
        // a level that contradicts its score.
        #[derive(Deserialize)]
        struct Raw {
            score: u32,
        }
        let raw = Raw::deserialize(d)?;
        Risk::new(raw.score).map_err(serde::de::Error::custom)
    }
}

impl RiskLevel {
    /// The level a score falls in.
    pub fn of(score: u8) -> RiskLevel {
        match score {
            0..=29 => RiskLevel::Low,
            30..=59 => RiskLevel::Medium,
            60..=84 => RiskLevel::High,
            _ => RiskLevel::Critical,
        }
    }

    /// The word used in JSON and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }
}

/// A word that is not one of `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown risk level `{0}`: expected low, medium, high or critical")]
pub struct UnknownRiskLevel(pub String);

impl std::str::FromStr for RiskLevel {
    type Err = UnknownRiskLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RiskLevel::Low,
            RiskLevel::Medium,
            RiskLevel::High,
            RiskLevel::Critical,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
        .ok_or_else(|| UnknownRiskLevel(s.to_owned()))
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.score, self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_read_back_their_words() {
        for score in [0, 45, 72, 95] {
            let level = RiskLevel::of(score);
            assert_eq!(level.as_str().parse(), Ok(level));
        }
        assert!("severe".parse::<RiskLevel>().is_err());
    }

    #[test]
    fn bands() {
        assert_eq!(Risk::new(0).map(Risk::level), Ok(RiskLevel::Low));
        assert_eq!(Risk::new(29).map(Risk::level), Ok(RiskLevel::Low));
        assert_eq!(Risk::new(30).map(Risk::level), Ok(RiskLevel::Medium));
        assert_eq!(Risk::new(60).map(Risk::level), Ok(RiskLevel::High));
        assert_eq!(Risk::new(85).map(Risk::level), Ok(RiskLevel::Critical));
        assert_eq!(Risk::new(100).map(Risk::level), Ok(RiskLevel::Critical));
        assert_eq!(Risk::new(101), Err(RiskError::OutOfRange(101)));
        assert_eq!(Risk::new(u32::MAX), Err(RiskError::OutOfRange(u32::MAX)));
    }

    #[test]
    fn json_level_is_rederived_from_score() {
        let r: Risk = serde_json::from_str(r#"{"score":90,"level":"low"}"#).expect("parse");
        assert_eq!(r.level(), RiskLevel::Critical);
        assert!(serde_json::from_str::<Risk>(r#"{"score":200}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Risk::new(42).expect("valid")).expect("ser"),
            r#"{"score":42,"level":"medium"}"#
        );
    }

    proptest! {
        #[test]
        fn saturating_always_in_range(s in any::<i64>()) {
            let r = Risk::saturating(s);
            prop_assert!(r.score() <= 100);
            prop_assert_eq!(r.level(), RiskLevel::of(r.score()));
        }
    }
}
