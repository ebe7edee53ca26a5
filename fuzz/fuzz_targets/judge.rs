//! Any bytes as a command line: the engine must return a judgement, never
//! panic or overflow its stack, and never allow a line it could not parse.
#![no_main]

use std::sync::LazyLock;

use jarvis_core::Decision;
use jarvis_policy::{Policy, Request};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(|| Policy::shipped().expect("shipped policy loads"));

fuzz_target!(|data: &[u8]| {
    let command = String::from_utf8_lossy(data).into_owned();
    let j = POLICY.judge(&Request::new(command));
    if j.parse_error {
        assert_eq!(j.decision, Decision::Deny);
    }
});
