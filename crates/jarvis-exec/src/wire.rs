//! How the protocol reads an action id off the wire: once, through
//! [`ActionId`]'s own parse (a UUID version 7, as the gateway makes them),
//! with an error that names the field. A request or manifest whose id the
//! gateway did not make is refused where it is decoded, and everything past
//! that holds an id that is only hex digits and dashes.
//!
//! `ActionId`'s own `Deserialize` reads any UUID (it is the `Uuid` one), so
//! the protocol's fields name this reader instead.

use jarvis_core::ActionId;
use jarvis_core::text::truncate_chars;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// How much of a refused value an error repeats: a request may be 120 KiB,
/// and the refusal is logged.
const SHOWN: usize = 64;

/// Reads an `action_id` field.
pub(crate) fn action_id<'de, D: Deserializer<'de>>(d: D) -> Result<ActionId, D::Error> {
    let text =
        String::deserialize(d).map_err(|e| D::Error::custom(format_args!("`action_id`: {e}")))?;
    text.parse().map_err(|_| {
        D::Error::custom(format_args!(
            "`action_id`: `{}` is not an action id (a UUID version 7, as the gateway makes them)",
            truncate_chars(&text, SHOWN).escape_debug()
        ))
    })
}
