//! The one canonical text of a JSON value: object keys sorted by their
//! bytes at every level, no whitespace, strings and numbers as serde_json
//! writes them.
//!
//! Hashes are taken over it and compared across versions: the audit chain
//! (each event's payload) and the guard's container fingerprints (a
//! snapshot's settings, checked for drift before a rollback). It must
//! therefore never change its output for any value, never depend on the
//! order a map type keeps, and never do I/O.

use serde_json::Value;

/// The canonical text of `v`: object keys sorted, no spaces. It does not
/// depend on how serde_json orders maps in this build.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level_and_nothing_is_spaced() {
        let v: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [1, "x"], "c": null}}"#).expect("json");
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    /// The bytes hashes were taken over: a change here breaks every
    /// stored audit chain and makes every container snapshot look drifted.
    #[test]
    fn the_text_is_fixed_to_the_byte() {
        let v: Value = serde_json::from_str(
            r#"{"é": "a\"b\\c\n\u0001\u001f\u007f€😀", "B": [], "a": {}, "Z": [true, false, null],
                "n": [0, -1, 1.5, 1e300, -0.0, 18446744073709551615, -9223372036854775808],
                "\u0000k": "</script>"}"#,
        )
        .expect("json");
        assert_eq!(
            canonical_json(&v),
            "{\"\\u0000k\":\"</script>\",\"B\":[],\"Z\":[true,false,null],\"a\":{},\
             \"n\":[0,-1,1.5,1e+300,-0.0,18446744073709551615,-9223372036854775808],\
             \"é\":\"a\\\"b\\\\c\\n\\u0001\\u001f\u{7f}€😀\"}"
        );
        assert_eq!(canonical_json(&Value::Null), "null");
        assert_eq!(canonical_json(&Value::String(String::new())), "\"\"");
    }
}
