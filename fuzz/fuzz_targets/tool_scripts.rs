//! Any bytes as the script of a tool with a language of its own (sed, awk,
//! jq, yq): each reader must return, never panic, and the engine must never
//! let a script its reader could not follow run unattended.
#![no_main]

use std::sync::LazyLock;

use jarvis_core::Decision;
use jarvis_policy::script::ScriptEffects;
use jarvis_policy::{Policy, Request, awk, jq, sed};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(|| Policy::shipped().expect("shipped policy loads"));

type Reader = fn(&[String]) -> ScriptEffects;

const TOOLS: &[(&str, Reader)] = &[
    ("sed", sed::effects),
    ("awk", awk::effects),
    ("jq", jq::effects_jq),
    ("yq", jq::effects_yq),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (tool, read) = TOOLS[usize::from(pick) % TOOLS.len()];
    let script = String::from_utf8_lossy(rest).into_owned();
    let effects = read(&[script.clone(), "input.txt".to_owned()]);
    // The same script judged as a whole line, quoted as one word.
    let quoted = format!("{tool} '{}' input.txt", script.replace('\'', r"'\''"));
    let j = POLICY.judge(&Request::new(quoted));
    if effects.unreadable || !effects.runs.is_empty() || effects.writes_unknown {
        assert_ne!(j.decision, Decision::Allow, "{tool}: {script:?}");
    }
});
