//! Proposes and decides actions in a loop until killed: the victim process
//! of the "a killed process leaves no torn event" test.
//!
//! Usage: append_loop DATABASE_URL

use jarvis_core::{ActionId, ActionState};
use jarvis_store::{NewAction, Store};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: append_loop DATABASE_URL");
    let store = Store::connect(&url).await.expect("store");
    loop {
        let a = store
            .create_action(&NewAction {
                id: ActionId::new(),
                requester: "agent:victim".into(),
                host: None,
                command: "docker restart grafana".into(),
                cwd: None,
                timeout_secs: None,
                kind: jarvis_core::ActionKind::Command,
                edit: None,
                rollback_of: None,
                plan: None,
                purpose: None,
            })
            .await
            .expect("create");
        store
            .transition(
                a.id,
                ActionState::Proposed,
                ActionState::Approved,
                "gateway",
                None,
                json!({"output": "x".repeat(2000)}),
            )
            .await
            .expect("approve");
    }
}
