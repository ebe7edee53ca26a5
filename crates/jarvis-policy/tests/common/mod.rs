//! The policies and the judging call the policy suites share: the shipped
//! policy, and one that allows every program up to the top risk, so that
//! only the guardrails and the "never unattended" facts stand in the way
//! (what it does not allow, no policy allows).
//!
//! Each suite is its own test binary and uses a part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::LazyLock;

use jarvis_policy::{Judgement, Policy, Request};

pub static SHIPPED: LazyLock<Policy> =
    LazyLock::new(|| Policy::shipped().expect("the shipped policy loads"));

pub static ALLOW_ALL: LazyLock<Policy> = LazyLock::new(|| {
    policy(
        r#"
[defaults]
decision = "allow"
auto_allow_max_risk = 100

[[rule]]
id = "everything"
decision = "allow"
command = "*"
reason = "test: allow all"
"#,
    )
});

/// A policy from one file's text.
pub fn policy(text: &str) -> Policy {
    Policy::from_texts(vec![(PathBuf::from("test.toml"), text.to_owned())])
        .expect("test policy loads")
}

/// `line` judged by `p`, with no host and no working directory.
pub fn judge(p: &Policy, line: &str) -> Judgement {
    p.judge(&Request::new(line))
}

/// `line` judged by `p` as if run from `cwd`.
pub fn judge_in(p: &Policy, line: &str, cwd: &str) -> Judgement {
    p.judge(&Request {
        command: line.to_owned(),
        host: None,
        cwd: Some(cwd.to_owned()),
    })
}
