//! `jarvis mcp` and `/mcp`, driven by an MCP client that is not Jarvis's
//! (the Python SDK's, tests/mcp/client.py) against the sandbox host: the
//! tools a model sees, an allowed command's output, a pending one approved
//! while the tool waits, a denied one with the policy's reasons, a token
//! that may not propose, and the audit log naming the token and its person
//! for each. Over stdio on the local store, over stdio to a running
//! server, and over streamable HTTP.

use jarvis_tests::mcp::McpRun;
use jarvis_tests::server::{Person, Served, client};
use jarvis_tests::{Env, marker, sandbox};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The tools, by name, and nothing that decides: approving, rejecting,
/// running an approved action and rolling back stay with people.
const TOOLS: [&str; 5] = [
    "check_command",
    "get_action",
    "list_hosts",
    "propose_edit",
    "run_command",
];

fn run(command: &str) -> Value {
    json!({
        "tool": "run_command",
        "args": {
            "host": "sandbox",
            "command": command,
            "reason": "the MCP test asks",
        },
    })
}

/// The action id in a tool answer's structured content.
fn id_of(answer: &Value) -> String {
    answer["structured"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no action id in {answer:#}"))
        .to_owned()
}

/// The action id in a progress message ("… approve action ID …").
fn id_in(progress: &str) -> String {
    progress
        .split_whitespace()
        .map(|w| w.trim_end_matches(':'))
        .find(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        .unwrap_or_else(|| panic!("no action id in the progress message `{progress}`"))
        .to_owned()
}

fn check_tools(answer: &Value) {
    let mut names: Vec<&str> = answer["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {answer:#}"))
        .iter()
        .map(|t| t["name"].as_str().expect("a tool has a name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for t in answer["tools"].as_array().into_iter().flatten() {
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 40),
            "{t:#}"
        );
        assert_eq!(t["input_schema"]["type"], "object", "{t:#}");
    }
    let run = answer["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "run_command")
        .expect("run_command");
    assert_eq!(run["input_schema"]["required"], json!(["host", "command"]));
}

/// An allowed command ran: its output, inside the untrusted-output
/// markers, and a success.
fn check_ran(answer: &Value, m: &str) {
    assert_eq!(answer["is_error"], false, "{answer:#}");
    assert_eq!(answer["structured"]["state"], "succeeded", "{answer:#}");
    assert_eq!(answer["structured"]["exit_code"], 0, "{answer:#}");
    let text = answer["text"].as_str().expect("text");
    let start = text
        .find("<<<UNTRUSTED OUTPUT")
        .expect("the output is marked");
    assert!(text[start..].contains(m), "{text}");
}

/// A denied command: a tool error with the policy's reasons.
fn check_denied(answer: &Value) {
    assert_eq!(answer["is_error"], true, "{answer:#}");
    assert_eq!(answer["structured"]["state"], "denied", "{answer:#}");
    assert_eq!(answer["structured"]["decision"], "deny", "{answer:#}");
    assert!(
        answer["structured"]["reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{answer:#}"
    );
    assert!(
        answer["text"]
            .as_str()
            .is_some_and(|t| t.contains("wipe-root")),
        "{answer:#}"
    );
}

/// The token without `propose`: refused, with the API's words.
fn check_not_allowed(answer: &Value) {
    assert_eq!(answer["is_error"], true, "{answer:#}");
    let text = answer["text"].as_str().expect("text");
    assert!(text.contains("propose"), "{text}");
}

/// Every event of the action is the token's, and the action names the
/// person who made the token as accountable for it.
fn check_audited(env: &Env, id: &str, token: &str) {
    let show = env.show(id);
    assert_eq!(
        show["action"]["requester"],
        format!("token:{token}"),
        "{show:#}"
    );
    let accountable = show["action"]["accountable"].as_str().expect("accountable");
    assert!(accountable.starts_with("local:"), "{show:#}");
    let proposed = show["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "action.proposed")
        .unwrap_or_else(|| panic!("no action.proposed in {show:#}"));
    assert_eq!(proposed["actor"], format!("token:{token}"));
}

/// The refusal of the token that may not propose is on the record, with
/// the person who answers for it.
fn check_refusal_audited(events: &[Value], token: &str) {
    let refusal = events
        .iter()
        .find(|e| e["actor"] == format!("token:{token}"))
        .unwrap_or_else(|| panic!("no access.refused by token:{token} in {events:#?}"));
    assert!(
        refusal["payload"]["accountable"]
            .as_str()
            .is_some_and(|p| p.starts_with("local:")),
        "{refusal:#}"
    );
}

/// An allowed, a pending and a denied command.
fn three_runs(ran: &str, waits: &str, denied: &str) -> [Value; 3] {
    [
        run(&format!("echo {ran}")),
        run(&format!("touch /tmp/{waits}")),
        run(&format!("echo {denied}; rm -rf /")),
    ]
}

#[test]
fn over_stdio_on_the_local_store() {
    let env = Env::new("mcp-stdio", "", "");
    let agent = env.add_token("mcp-agent", "propose");
    let reader = env.add_token("mcp-reader", "read");
    let (ran, waits, denied) = (marker("mcp-ran"), marker("mcp-waits"), marker("mcp-denied"));
    let [allowed, pending, refused] = three_runs(&ran, &waits, &denied);
    let steps = json!([
        { "list_tools": true },
        allowed,
        pending,
        refused,
        { "tool": "list_hosts" },
    ]);
    let config = env.config.to_str().expect("utf-8 path");
    let log = env.dir().join("mcp-stdio.log");
    let client = McpRun::stdio(
        &steps,
        &["--config", config, "mcp", "--wait", "120"],
        &[("JARVIS_TOKEN", &agent)],
        &log,
    );
    check_tools(&client.answer(0));
    let allowed = client.answer(1);
    check_ran(&allowed, &ran);
    // The pending command waits; the operator approves it from the shell
    // (which runs it), and the waiting tool answers with its output.
    let progress = client.progress(2);
    assert!(progress.contains("approve"), "{progress}");
    let pending = id_in(&progress);
    let approved = env.jarvis(&["approve", &pending, "--reason", "fine by me"]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let after = client.answer(2);
    assert_eq!(after["is_error"], false, "{after:#}");
    assert_eq!(after["structured"]["state"], "succeeded", "{after:#}");
    assert!(
        after["text"]
            .as_str()
            .is_some_and(|t| t.contains("fine by me")),
        "{after:#}"
    );
    let refused = client.answer(3);
    check_denied(&refused);
    assert!(
        sandbox().guard_log_lines(&denied).is_empty(),
        "a denied command reached the host"
    );
    let hosts = client.answer(4);
    assert!(
        hosts["text"]
            .as_str()
            .is_some_and(|t| t.contains("sandbox")),
        "{hosts:#}"
    );
    client.finish();
    for id in [id_of(&allowed), pending, id_of(&refused)] {
        check_audited(&env, &id, "mcp-agent");
    }

    // A token that may only read: no proposal is made, and the refusal is
    // recorded under the token and its person.
    let steps = json!([run(&format!("echo {}", marker("mcp-read")))]);
    let log = env.dir().join("mcp-stdio-reader.log");
    let client = McpRun::stdio(
        &steps,
        &["--config", config, "mcp"],
        &[("JARVIS_TOKEN", &reader)],
        &log,
    );
    check_not_allowed(&client.answer(0));
    client.finish();
    check_refusal_audited(&env.audit("access.refused"), "mcp-reader");
}

#[test]
fn without_a_token_jarvis_mcp_says_how_to_get_one() {
    let env = Env::new("mcp-no-token", "", "");
    let out = env.jarvis(&["mcp"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jarvis tokens add") && err.contains("JARVIS_TOKEN"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_and_over_stdio_to_a_server() {
    // A request timeout shorter than the wait for a person below: a tool
    // call's answer is a stream that starts at once, so the server's
    // request timeout does not cut a wait for approval short.
    let s = Served::start(
        Env::new("mcp-http", "", ""),
        "[server]\nrequest_timeout_secs = 2\n",
        &[],
    );
    let password = s.add_user("alice", "approver");
    let agent = s.add_token("mcp-http-agent", "propose");
    let reader = s.add_token("mcp-http-reader", "read");
    let url = format!("{}/mcp", s.url);

    // No token, or a person's session: 401 before the protocol starts.
    let http = client();
    let r = http
        .post(&url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let alice = Person::sign_in(&s, "alice", &password).await;
    let r = alice
        .http
        .post(&url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("POST /mcp as a person");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (ran, waits, denied) = (marker("mcp-ran"), marker("mcp-waits"), marker("mcp-denied"));
    let [allowed, pending, refused] = three_runs(&ran, &waits, &denied);
    let steps = json!([{ "list_tools": true }, allowed, pending, refused]);
    let log = s.env.dir().join("mcp-http.log");
    let client = McpRun::http(&steps, &url, &agent, &log);
    check_tools(&client.answer(0));
    let allowed = client.answer(1);
    check_ran(&allowed, &ran);
    // Approved through the API by a person while the tool waits.
    let progress = client.progress(2);
    let pending = id_in(&progress);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let csrf = alice.csrf("/").await;
    let (status, body) = alice
        .api(
            &format!("/api/v1/actions/{pending}/approve"),
            &csrf,
            json!({ "reason": "go ahead" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let after = client.answer(2);
    assert_eq!(after["structured"]["state"], "succeeded", "{after:#}");
    assert!(
        after["structured"]["link"]
            .as_str()
            .is_none_or(|l| l.ends_with(&pending)),
        "{after:#}"
    );
    check_denied(&client.answer(3));
    client.finish();
    for id in [id_of(&allowed), pending] {
        check_audited(&s.env, &id, "mcp-http-agent");
    }

    // get_action shows the agent its own action, and not another's.
    let mine = id_of(&allowed);
    let other = s.add_token("mcp-http-other", "propose");
    let steps = json!([
        { "tool": "get_action", "args": { "id": mine } },
        { "tool": "get_action", "args": { "id": "../../hosts" } },
    ]);
    let client = McpRun::http(&steps, &url, &agent, &s.env.dir().join("mcp-get.log"));
    let own = client.answer(0);
    assert_eq!(own["is_error"], false, "{own:#}");
    assert!(
        own["text"].as_str().is_some_and(|t| t.contains(&ran)),
        "{own:#}"
    );
    assert_eq!(client.answer(1)["is_error"], true);
    client.finish();
    let steps = json!([{ "tool": "get_action", "args": { "id": mine } }]);
    let client = McpRun::http(&steps, &url, &other, &s.env.dir().join("mcp-other.log"));
    let theirs = client.answer(0);
    assert_eq!(theirs["is_error"], true, "{theirs:#}");
    assert!(
        !theirs["text"].as_str().unwrap_or_default().contains(&ran),
        "{theirs:#}"
    );
    client.finish();

    // The token that may only read, over HTTP.
    let steps = json!([run("uptime")]);
    let client = McpRun::http(&steps, &url, &reader, &s.env.dir().join("mcp-reader.log"));
    check_not_allowed(&client.answer(0));
    client.finish();
    check_refusal_audited(&s.audit("access.refused"), "mcp-http-reader");

    // `jarvis mcp --server`: the stdio server calling this one's API; its
    // pending command approved through the API while the tool waits.
    let (again, held) = (marker("mcp-remote"), marker("mcp-remote-waits"));
    let steps = json!([
        run(&format!("echo {again}")),
        run(&format!("touch /tmp/{held}")),
    ]);
    let config = s.env.config.to_str().expect("utf-8 path").to_owned();
    let client = McpRun::stdio(
        &steps,
        &["--config", &config, "mcp", "--server", &s.url],
        &[("JARVIS_TOKEN", &agent)],
        &s.env.dir().join("mcp-remote.log"),
    );
    let remote = client.answer(0);
    check_ran(&remote, &again);
    assert_eq!(
        remote["structured"]["link"],
        format!("{}/actions/{}", s.url, id_of(&remote))
    );
    let waiting = id_in(&client.progress(1));
    let (status, body) = alice
        .api(
            &format!("/api/v1/actions/{waiting}/approve"),
            &alice.csrf("/").await,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(client.answer(1)["structured"]["state"], "succeeded");
    client.finish();
    for id in [id_of(&remote), waiting] {
        check_audited(&s.env, &id, "mcp-http-agent");
    }
}
