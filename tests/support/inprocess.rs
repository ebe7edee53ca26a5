//! The gateway and its HTTP server in this test process, with its one
//! host `sandbox` answered by the in-process fake guard
//! (`jarvis_exec::fake`): the pipeline, the API and the live updates
//! without sshd, Docker or a `jarvis` binary.
//!
//! It owns only the wiring of a test's app (config, store, people and
//! tokens, the server task). It must never reach a real host, and never
//! go around the gateway: actions are proposed, judged, approved and run
//! through the same API and pipeline as `jarvis serve`'s, only the
//! transport under the executor is the fake.

use std::time::{Duration, Instant};

use jarvis_core::{Role, TokenScope};
use jarvis_exec::fake::FakeGuard;
use jarvis_gateway::auth;
use jarvis_gateway::server::{ServeOptions, serve};
use jarvis_store::{NewSession, Store};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue};
use tokio::sync::oneshot;

use crate::TempDir;
use crate::server::{Agent, Person, client, free_port};

/// A running in-process app.
pub struct App {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A bearer token of scope `propose` (its actor is `token:planner`).
    pub propose_token: String,
    /// A bearer token of scope `read` (its actor is `token:dashboard`).
    pub read_token: String,
    /// The approver `alice`, signed in: no token may decide, so approvals
    /// go through a person's session, as in the browser.
    pub approver: Person,
    /// The CSRF token of `alice`'s session, for [`Person::api`].
    pub csrf: String,
    /// The store the gateway writes (another handle on the same database).
    pub store: Store,
    /// The fake guard answering for `sandbox`.
    pub guard: FakeGuard,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

impl App {
    /// An agent holding the `propose` token.
    pub fn agent(&self) -> Agent {
        Agent {
            http: client(),
            url: self.url.clone(),
            token: self.propose_token.clone(),
        }
    }

    /// An agent holding the `read` token.
    pub fn reader(&self) -> Agent {
        Agent {
            http: client(),
            url: self.url.clone(),
            token: self.read_token.clone(),
        }
    }

    /// `alice` approves action `id` through the API: status and body.
    pub async fn approve(&self, id: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.approver
            .api(
                &format!("/api/v1/actions/{id}/approve"),
                &self.csrf,
                serde_json::json!({}),
            )
            .await
    }

    /// The audit log's event kinds for action `id`, oldest first.
    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        let events = self
            .store
            .events(&jarvis_store::AuditFilter {
                action_id: Some(id.to_owned()),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("audit events read");
        events.into_iter().rev().map(|e| e.kind).collect()
    }

    /// Waits until the audit log holds an event of `kind` for action `id`
    /// (some are written after the action's state moved, such as the
    /// guard's account of a lost run); panics after a minute.
    pub async fn wait_event(&self, id: &str, kind: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let kinds = self.event_kinds(id).await;
            if kinds.iter().any(|k| k == kind) {
                return;
            }
            assert!(Instant::now() < deadline, "no {kind} for {id}: {kinds:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A user `name` of `role`, signed in (a session as the login form
    /// makes one).
    pub async fn person(&self, name: &str, role: Role) -> Person {
        let (secret, _) = session(&self.store, name, role).await;
        signed_in(&self.url, &secret)
    }

    /// A new API token `name` of `scope`, as `jarvis tokens add` makes one.
    pub async fn add_token(&self, name: &str, scope: TokenScope) -> String {
        token(&self.store, name, scope).await
    }

    /// An agent holding a new token `name` of `scope`.
    pub async fn agent_named(&self, name: &str, scope: TokenScope) -> Agent {
        Agent {
            http: client(),
            url: self.url.clone(),
            token: self.add_token(name, scope).await,
        }
    }

    /// The audit events of `kind`, newest first, in the shape
    /// `jarvis audit list --json` prints them (the payload as JSON).
    pub async fn audit(&self, kind: &str) -> Vec<serde_json::Value> {
        let events = self
            .store
            .events(&jarvis_store::AuditFilter {
                kind: Some(kind.to_owned()),
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .expect("audit events read");
        events
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action_id": e.action_id,
                    "host": e.host,
                    "kind": e.kind,
                    "payload": serde_json::from_str::<serde_json::Value>(&e.payload)
                        .expect("a JSON payload"),
                })
            })
            .collect()
    }

    /// Stops the server and waits for it to finish, as a shutdown does.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An app whose config is one host `sandbox` (kernel wall required,
/// snapshots on) with `extra` TOML appended; `tag` names its directory.
/// Its guard answers as a healthy host until the test scripts it.
pub async fn spawn_app(tag: &str, extra: &str) -> App {
    spawn_app_on(tag, extra, FakeGuard::new("sandbox")).await
}

/// As [`spawn_app`], on `guard`, scripted before the gateway first asks
/// the host anything (its kernel wall is asked at start).
pub async fn spawn_app_on(tag: &str, extra: &str, guard: FakeGuard) -> App {
    let dir = TempDir::new(tag);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").expect("write known_hosts");
    let config_path = dir.path().join("jarvis.toml");
    let text = format!(
        "[store]\ndata_dir = \"data\"\n\n[hosts.sandbox]\n\
         destination = \"jarvis@sandbox.invalid\"\nknown_hosts = \"{}\"\n\
         tags = [\"test\"]\nenforcement = \"required\"\n\n[hosts.sandbox.snapshots]\n\n{extra}\n",
        known_hosts.display(),
    );
    std::fs::write(&config_path, text).expect("write config");
    let config = jarvis_gateway::Config::load(&config_path).expect("config loads");
    let db = dir.path().join("jarvis.db");
    let url = format!("sqlite://{}", db.display());
    let store = Store::connect(&url).await.expect("store opens");
    let gw = {
        let guard = guard.clone();
        jarvis_gateway::Gateway::open_with_transports(config, store, true, move |_| {
            guard.transport()
        })
        .await
        .expect("gateway opens")
    };
    let store = gw.store().clone();

    let propose_token = token(&store, "planner", TokenScope::Propose).await;
    let read_token = token(&store, "dashboard", TokenScope::Read).await;
    let (secret, csrf) = session(&store, "alice", Role::Approver).await;

    let port = free_port();
    let bind = format!("127.0.0.1:{port}").parse().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let options = ServeOptions {
            bind,
            audit_key: None,
        };
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = serve(gw, options, shutdown).await {
            panic!("the in-process server stopped: {e}");
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&url).await;

    let approver = signed_in(&url, &secret);
    App {
        url,
        propose_token,
        read_token,
        approver,
        csrf,
        store,
        guard,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

/// A person's client at `url` holding the session cookie `secret`.
fn signed_in(url: &str, secret: &str) -> Person {
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&format!("jarvis_session={secret}")).expect("a cookie"),
    );
    Person {
        http: jarvis_http::client_builder()
            .expect("TLS configuration")
            .default_headers(headers)
            .build()
            .expect("http client"),
        url: url.to_owned(),
    }
}

/// A new API token `name` of `scope`, as `jarvis tokens add` makes one.
async fn token(store: &Store, name: &str, scope: TokenScope) -> String {
    let token = auth::new_api_token();
    store
        .create_token(name, scope, &auth::digest(&token), "test")
        .await
        .expect("token created");
    token
}

/// A user `name` of `role` with a session, as a sign-in makes one (the
/// login form's password check is left out: it is not what these tests
/// are about, and hashing a password costs seconds in a debug build).
/// The session's cookie secret and CSRF token.
async fn session(store: &Store, name: &str, role: Role) -> (String, String) {
    store
        .create_user(name, role, "not-a-password-hash", "test")
        .await
        .expect("user created");
    let secret = auth::new_secret();
    let csrf = auth::csrf_token();
    let expires = jarvis_store::OffsetDateTime::now_utc() + time_hours(8);
    store
        .create_session(&NewSession {
            id_hash: auth::digest(&secret),
            user: name.to_owned(),
            csrf: csrf.clone(),
            expires_at: jarvis_store::timestamp(expires),
            remote: None,
        })
        .await
        .expect("session created");
    (secret, csrf)
}

fn time_hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// Waits until `/healthz` answers 200, or panics after a minute.
async fn wait_healthy(url: &str) {
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the in-process server did not become healthy at {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
