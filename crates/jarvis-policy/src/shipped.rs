//! The shipped knowledge base as the build split it (see `build.rs`): one
//! unit per program, per option table and per table's override pins, and
//! the sensitive paths, each looked up by name and read the first time a
//! line needs it.
//!
//! A unit that does not read is treated as absent by its callers (an
//! unknown program, a node with no table), which waits for a person; the
//! test suite reads and compiles every unit, so that never happens to a
//! shipped build.

use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// The unit of a program name or alias.
pub(crate) fn program(name: &str) -> Option<usize> {
    PROGRAM_NAMES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| PROGRAM_NAMES[i].1 as usize)
}

/// Every shipped program name and alias.
pub(crate) fn program_names() -> impl Iterator<Item = &'static str> {
    PROGRAM_NAMES.iter().map(|(n, _)| *n)
}

/// The index of an option table.
pub(crate) fn table(key: &str) -> Option<usize> {
    TABLES.binary_search_by(|(k, _)| (*k).cmp(key)).ok()
}

/// The override pins of a table key, as JSON.
pub(crate) fn overrides(key: &str) -> Option<&'static str> {
    OVERRIDES
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .map(|i| OVERRIDES[i].1)
}

/// One slot per unit, filled when the unit is first needed; `None` inside
/// for a unit that did not read or compile.
pub(crate) type Cells<T> = Box<[OnceLock<Option<Arc<T>>>]>;

/// `n` empty slots.
pub(crate) fn cells<T>(n: usize) -> Cells<T> {
    std::iter::repeat_with(OnceLock::new).take(n).collect()
}

/// Reads one unit.
pub(crate) fn read<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indexes_are_sorted_for_binary_search() {
        assert!(PROGRAM_NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(TABLES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            PROGRAM_NAMES
                .iter()
                .all(|(_, u)| (*u as usize) < PROGRAMS.len())
        );
    }

    #[test]
    fn names_and_aliases_find_their_program() {
        let vim = program("vim").expect("vim is shipped");
        assert_eq!(PROGRAMS[vim].0, "vim");
        assert_eq!(program("vi").map(|u| PROGRAMS[u].0), Some("vim"));
        assert_eq!(program("no-such-program"), None);
        assert!(table("git log").is_some());
        assert!(FILES.contains(&"policies/default.toml"));
        assert!(
            RULE_FILES
                .iter()
                .any(|(f, _)| *f == "policies/default.toml")
        );
    }
}
