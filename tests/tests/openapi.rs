//! The OpenAPI document of `/api/v1` held against the server that serves
//! it, in process (`spawn_app`): it is OpenAPI 3.1, names every route the
//! API answers with its methods and no other, says who may call each, and
//! the server's real answers have the statuses it lists and match its
//! schemas field for field.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jarvis_exec::fake::Reply;
use jarvis_tests::inprocess::{App, spawn_app};
use jarvis_tests::server::client;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The API as README.md promises it, and the document itself: path, and
/// the methods it answers.
const API: [(&str, &[&str]); 13] = [
    ("/api/v1/actions", &["get", "post"]),
    ("/api/v1/actions/{id}", &["get"]),
    ("/api/v1/actions/{id}/approve", &["post"]),
    ("/api/v1/actions/{id}/deny", &["post"]),
    ("/api/v1/actions/{id}/rollback", &["post"]),
    ("/api/v1/actions/{id}/run", &["post"]),
    ("/api/v1/audit", &["get"]),
    ("/api/v1/audit/verify", &["get"]),
    ("/api/v1/events", &["get"]),
    ("/api/v1/hosts", &["get"]),
    ("/api/v1/openapi.json", &["get"]),
    ("/api/v1/policy/check", &["post"]),
    ("/api/v1/whoami", &["get"]),
];

/// The decisions: a person's, through a session; no token may make them.
const DECISIONS: [&str; 4] = [
    "/api/v1/actions/{id}/approve",
    "/api/v1/actions/{id}/deny",
    "/api/v1/actions/{id}/rollback",
    "/api/v1/actions/{id}/run",
];

fn id_of(action: &Value) -> String {
    action["id"].as_str().expect("an action id").to_owned()
}

/// `GET /api/v1/openapi.json` with no credentials, parsed.
async fn document(app: &App) -> Value {
    let r = client()
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .expect("GET /api/v1/openapi.json");
    assert_eq!(r.status(), StatusCode::OK, "the document needs no token");
    let kind = r.headers()["content-type"]
        .to_str()
        .expect("a content type");
    assert!(kind.starts_with("application/json"), "{kind}");
    r.json().await.expect("the document is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_every_route_and_who_may_call_it() {
    let app = spawn_app("oa-document", "").await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item")
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let promised: BTreeMap<String, BTreeSet<String>> = API
        .iter()
        .map(|(path, methods)| {
            let methods = methods.iter().map(|m| (*m).to_owned()).collect();
            ((*path).to_owned(), methods)
        })
        .collect();
    assert_eq!(documented, promised);

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    let mut operation_ids = BTreeSet::new();
    for (path, methods) in API {
        for method in methods {
            let op = &doc["paths"][path][method];
            let name = format!("{method} {path}");
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(operation_ids.insert(id.to_owned()), "{id} twice");
            for field in ["summary", "description"] {
                let text = op[field].as_str().unwrap_or_default();
                assert!(text.trim().len() > 10, "{name} has no {field}");
            }
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}"
            );
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} {status} has no description"
                );
            }
            // Who may call it, by scheme and the scope or role it needs.
            let security: Vec<(String, Vec<String>)> = op["security"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .flat_map(|r| r.as_object().expect("a requirement"))
                        .map(|(scheme, needs)| {
                            let needs = needs
                                .as_array()
                                .expect("scopes")
                                .iter()
                                .map(|n| n.as_str().expect("a scope").to_owned())
                                .collect();
                            (scheme.clone(), needs)
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (scheme, _) in &security {
                assert!(schemes.contains_key(scheme), "{name} names {scheme}");
            }
            let needs = |scheme: &str| {
                security
                    .iter()
                    .find(|(s, _)| s == scheme)
                    .map(|(_, needs)| needs.clone())
            };
            if path == "/api/v1/openapi.json" {
                assert!(security.is_empty(), "the document is public: {security:?}");
            } else if DECISIONS.contains(&path) {
                assert_eq!(
                    needs("session"),
                    Some(vec!["approver".to_owned()]),
                    "{name}"
                );
                assert_eq!(needs("bearer"), None, "no token decides: {name}");
            } else if *method == "post" && path == "/api/v1/actions" {
                assert_eq!(needs("bearer"), Some(vec!["propose".to_owned()]), "{name}");
                assert_eq!(
                    needs("session"),
                    Some(vec!["approver".to_owned()]),
                    "{name}"
                );
            } else {
                assert_eq!(needs("bearer"), Some(vec!["read".to_owned()]), "{name}");
                assert_eq!(needs("session"), Some(vec!["viewer".to_owned()]), "{name}");
            }
            if !security.is_empty() {
                assert!(responses.contains_key("401"), "{name} does not say 401");
            }
            if path.contains("{id}") {
                let id = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == "id")
                    .unwrap_or_else(|| panic!("{name} does not describe `id`"));
                assert_eq!(id["in"], "path");
                assert_eq!(id["required"], true);
            }
        }
    }
    // Every reference leads somewhere.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} leads nowhere"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_every_documented_route_and_no_other_method() {
    let app = spawn_app("oa-routes", "").await;
    let id = id_of(&app.agent().propose("touch /tmp/jarvis-openapi").await);
    let http = client();
    for (path, methods) in API {
        let url = format!("{}{}", app.url, path.replace("{id}", &id));
        for method in ["get", "post", "put", "patch", "delete"] {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let mut request = http.request(verb, &url).bearer_auth(&app.read_token);
            if method != "get" {
                request = request.json(&json!({}));
            }
            let status = request.send().await.expect("a request").status();
            if methods.contains(&method) {
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but answered {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented but answered"
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_documented_schemas() {
    let app = spawn_app("oa-answers", "").await;
    let doc = document(&app).await;
    app.guard
        .on_command("uptime", Reply::ok(" 10:00 up 3 days\n"));
    let agent = app.agent();
    let reader = app.reader();
    let mut events = client()
        .get(format!("{}/api/v1/events", app.url))
        .bearer_auth(&app.read_token)
        .send()
        .await
        .expect("GET /api/v1/events");
    assert_eq!(events.status(), StatusCode::OK);

    // Proposed, run and read.
    let (status, body) = agent
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "uptime", "reason": "is it up?" }),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions", status, &body);
    assert_eq!(status, StatusCode::CREATED);
    let ran = id_of(&body["action"]);
    let done = agent.wait_state(&ran, "succeeded").await;
    holds(&doc, "get", "/api/v1/actions/{id}", StatusCode::OK, &done);
    assert!(done["run"]["stdout"]["text"].is_string(), "{done:#}");

    // The live stream said so: an action's change and its output.
    let mut seen = String::new();
    let mut kinds = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(kinds.contains("action") && kinds.contains("output")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no action and output events; the stream said:\n{seen}"))
            .expect("the stream reads")
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        while let Some((event, rest)) = seen.split_once("\n\n") {
            let (name, data) = sse_event(event);
            let schema = match name.as_str() {
                "action" => json!({ "$ref": "#/components/schemas/LiveAction" }),
                "output" => json!({ "$ref": "#/components/schemas/LiveOutput" }),
                other => panic!("an event the document does not name: {other:?}"),
            };
            let data: Value = serde_json::from_str(&data).expect("JSON data");
            let errors = conform(&doc, &data, &schema);
            assert!(errors.is_empty(), "{name} event {data:#}: {errors:#?}");
            kinds.insert(name);
            seen = rest.to_owned();
        }
    }

    // Sent again with its key: the same action.
    let keyed = |key: &'static str| {
        agent
            .http
            .post(format!("{}/api/v1/actions", app.url))
            .bearer_auth(&agent.token)
            .header("idempotency-key", key)
            .json(&json!({ "host": "sandbox", "command": "touch /tmp/jarvis-openapi-key" }))
            .send()
    };
    for want in [StatusCode::CREATED, StatusCode::OK] {
        let r = keyed("openapi-key-1").await.expect("POST");
        let status = r.status();
        let body: Value = r.json().await.expect("JSON");
        assert_eq!(status, want, "{body:#}");
        holds(&doc, "post", "/api/v1/actions", status, &body);
    }

    // A person approves one and denies another.
    let approved = id_of(&agent.propose("touch /tmp/jarvis-openapi-approve").await);
    let (status, body) = app.approve(&approved).await;
    holds(&doc, "post", "/api/v1/actions/{id}/approve", status, &body);
    assert_eq!(status, StatusCode::OK);
    let denied = id_of(&agent.propose("touch /tmp/jarvis-openapi-deny").await);
    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{denied}/deny"),
            &app.csrf,
            json!({ "reason": "not today" }),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions/{id}/deny", status, &body);
    assert_eq!(status, StatusCode::OK);

    // A change with a snapshot, rolled back.
    let (status, body) = agent
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "git commit -qam 'port 9090'", "cwd": "/srv/app" }),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions", status, &body);
    let changed = id_of(&body["action"]);
    app.approve(&changed).await;
    agent.wait_state(&changed, "succeeded").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let (status, v) = reader.get(&format!("/api/v1/actions/{changed}")).await;
        holds(&doc, "get", "/api/v1/actions/{id}", status, &v);
        if !v["snapshot"]["after"].is_null() {
            break v;
        }
        assert!(Instant::now() < deadline, "no after-state: {v:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(shown["snapshot"]["manifest"].is_object(), "{shown:#}");
    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{changed}/rollback"),
            &app.csrf,
            json!({}),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions/{id}/rollback", status, &body);
    assert_eq!(status, StatusCode::ACCEPTED, "{body:#}");

    // Refusals and failures, each with its documented status and body.
    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{ran}/rollback"),
            &app.csrf,
            json!({}),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions/{id}/rollback", status, &body);
    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{denied}/run"),
            &app.csrf,
            json!({}),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions/{id}/run", status, &body);
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = reader
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "uptime" }),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions", status, &body);
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = agent
        .post(
            "/api/v1/actions",
            json!({ "host": "no such host!", "command": "uptime" }),
        )
        .await;
    holds(&doc, "post", "/api/v1/actions", status, &body);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = client()
        .get(format!("{}/api/v1/actions", app.url))
        .send()
        .await
        .expect("GET");
    let status = r.status();
    let body: Value = r.json().await.expect("JSON");
    holds(&doc, "get", "/api/v1/actions", status, &body);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = reader
        .get("/api/v1/actions/0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10")
        .await;
    holds(&doc, "get", "/api/v1/actions/{id}", status, &body);
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The reads.
    for (path, want) in [
        ("/api/v1/actions", StatusCode::OK),
        (
            "/api/v1/actions?state=pending_approval&limit=5",
            StatusCode::OK,
        ),
        ("/api/v1/actions?state=nonsense", StatusCode::BAD_REQUEST),
        ("/api/v1/audit", StatusCode::OK),
        ("/api/v1/audit?kind=action.&limit=3", StatusCode::OK),
        ("/api/v1/audit?since=yesterday", StatusCode::BAD_REQUEST),
        ("/api/v1/audit/verify", StatusCode::OK),
        ("/api/v1/hosts", StatusCode::OK),
        ("/api/v1/whoami", StatusCode::OK),
    ] {
        let (status, body) = reader.get(path).await;
        assert_eq!(status, want, "{path}: {body:#}");
        let route = path.split_once('?').map_or(path, |(route, _)| route);
        holds(&doc, "get", route, status, &body);
    }
    for (body, want) in [
        (json!({ "command": "rm -rf /" }), StatusCode::OK),
        (
            json!({ "command": "docker ps", "host": "sandbox" }),
            StatusCode::OK,
        ),
        (
            json!({ "command": "ls", "host": "bad host" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "host": "sandbox" }), StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = reader.post("/api/v1/policy/check", body).await;
        assert_eq!(status, want, "{answer:#}");
        holds(&doc, "post", "/api/v1/policy/check", status, &answer);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_a_limit_refuses_matches_its_429() {
    let app = spawn_app("oa-429", "[limits]\nrate_per_minute = 1\nburst = 1\n").await;
    let doc = document(&app).await;
    let agent = app.agent();
    let mut refused = None;
    for _ in 0..3 {
        let r = agent
            .http
            .post(format!("{}/api/v1/actions", app.url))
            .bearer_auth(&agent.token)
            .json(&json!({ "host": "sandbox", "command": "uptime" }))
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let wait = r.headers().get("retry-after").cloned();
        let body: Value = r.json().await.expect("JSON");
        holds(&doc, "post", "/api/v1/actions", status, &body);
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((wait, body));
            break;
        }
    }
    let (wait, body) = refused.expect("a limit refused a proposal");
    assert!(wait.is_some(), "Retry-After is documented");
    assert!(body["refused"]["code"].is_string(), "{body:#}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_check_finds_what_departs_from_the_document() {
    let app = spawn_app("oa-checker", "").await;
    let doc = document(&app).await;
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let action = app.agent().propose("uptime").await;
    let proposed = json!({
        "action": action,
        "judgement": { "command": "uptime", "decision": "allow",
            "risk": { "score": 0, "level": "low" }, "reasons": [], "rules": [], "parse_error": false },
        "snapshot": "no snapshot: the command only reads",
        "expires_at": null,
        "link": null,
    });
    assert_eq!(
        conform(&doc, &proposed, &schema("Proposed")),
        Vec::<String>::new()
    );
    let mut departures = Vec::new();
    for (pointer, change) in [
        ("/action/state", json!("nonsense")),
        ("/judgement/risk/score", json!(101)),
        ("/judgement/rules", json!("not a list")),
        ("/snapshot", json!(null)),
        ("/unnamed", json!(1)),
    ] {
        let mut body = proposed.clone();
        let (parent, field) = pointer.rsplit_once('/').expect("a pointer");
        body.pointer_mut(parent).expect("a parent")[field] = change;
        departures.push((pointer, conform(&doc, &body, &schema("Proposed"))));
    }
    let mut body = proposed.clone();
    body.as_object_mut().expect("an object").remove("action");
    departures.push(("no /action", conform(&doc, &body, &schema("Proposed"))));
    for (what, errors) in departures {
        assert!(!errors.is_empty(), "{what} was not found");
    }
    // Both shapes of a refused rollback, and neither of another.
    let rollback = schema("RollbackConflict");
    assert!(conform(&doc, &json!({ "error": "nothing to undo" }), &rollback).is_empty());
    assert!(!conform(&doc, &json!({ "error": 1 }), &rollback).is_empty());
    assert!(!conform(&doc, &json!({ "stopped": true }), &rollback).is_empty());
    app.stop().await;
}

/// Holds an answer to the document: its status is one the operation
/// lists, and its body matches that status's schema.
fn holds(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let name = format!("{method} {path}");
    let response = &doc["paths"][path][method]["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{name} answered {status}, which the document does not list: {body:#}"
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{name} {status} has no JSON schema");
    let errors = conform(doc, body, schema);
    assert!(
        errors.is_empty(),
        "{name} {status} does not match its schema: {errors:#?}\n{body:#}"
    );
}

/// The name and data of one server-sent event.
fn sse_event(event: &str) -> (String, String) {
    let mut name = String::new();
    let mut data = String::new();
    for line in event.lines() {
        if let Some(n) = line.strip_prefix("event:") {
            name = n.trim().to_owned();
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    (name, data)
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Where `value` departs from `schema` (resolved in `doc`): what JSON
/// Schema says of the keywords utoipa writes (`$ref`, `allOf`, `oneOf`,
/// `anyOf`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties`, `items`, `minimum`, `maximum`), and one thing
/// more: an object is closed to the fields its schema names (with all the
/// branches of an `allOf`), so a field the server sends that the document
/// leaves out is found too.
fn conform(doc: &Value, value: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, value, schema, "", &BTreeSet::new(), &mut errors);
    errors
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} is not a schema reference"));
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The fields an object schema names, through its references and
/// `allOf`.
fn named_fields(doc: &Value, schema: &Value, out: &mut BTreeSet<String>) {
    let schema = resolve(doc, schema);
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
    for branch in schema["allOf"].as_array().into_iter().flatten() {
        named_fields(doc, branch, out);
    }
}

fn check(
    doc: &Value,
    value: &Value,
    schema: &Value,
    at: &str,
    also: &BTreeSet<String>,
    errors: &mut Vec<String>,
) {
    let schema = resolve(doc, schema);
    let at_or_root = if at.is_empty() { "/" } else { at };
    if let Some(branches) = schema["allOf"].as_array() {
        let mut fields = also.clone();
        named_fields(doc, schema, &mut fields);
        for b in branches {
            check(doc, value, b, at, &fields, errors);
        }
    }
    for (word, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(branches) = schema[word].as_array() {
            let fitting = branches
                .iter()
                .filter(|b| {
                    let mut e = Vec::new();
                    check(doc, value, b, at, also, &mut e);
                    e.is_empty()
                })
                .count();
            if (exactly_one && fitting != 1) || fitting == 0 {
                errors.push(format!(
                    "{at_or_root}: fits {fitting} of the {word} branches"
                ));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => vec![],
        };
        let is = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.contains(&is) || (is == "integer" && types.contains(&"number"));
        if !fits {
            errors.push(format!("{at_or_root}: a {is}, not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at_or_root}: {value} is none of {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|min| n < min) {
            errors.push(format!("{at_or_root}: {n} is below the minimum"));
        }
        if schema["maximum"].as_f64().is_some_and(|max| n > max) {
            errors.push(format!("{at_or_root}: {n} is above the maximum"));
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(doc, v, item, &format!("{at}/{i}"), &BTreeSet::new(), errors);
        }
    }
    let Value::Object(fields) = value else {
        return;
    };
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().expect("a field name");
        if !fields.contains_key(name) {
            errors.push(format!("{at_or_root}: `{name}` is required but missing"));
        }
    }
    let props = schema["properties"].as_object();
    for (name, v) in fields {
        let here = format!("{at}/{name}");
        match (
            props.and_then(|p| p.get(name)),
            schema.get("additionalProperties"),
        ) {
            (Some(s), _) => check(doc, v, s, &here, &BTreeSet::new(), errors),
            (None, Some(extra)) if extra.is_object() => {
                check(doc, v, extra, &here, &BTreeSet::new(), errors);
            }
            // Closed: the schema names fields, and this is none of them.
            (None, _) if props.is_some() && !also.contains(name) => {
                errors.push(format!("{here}: a field the schema does not name"));
            }
            (None, _) => {}
        }
    }
}
