//! The pipeline, the API's refusal paths, rollback and live updates, in
//! process: the real gateway and router on a fresh SQLite store, with the
//! host answered by the fake guard. Nothing here needs the sandbox; what
//! only a real host shows stays in the sandbox tests.

use jarvis_tests::inprocess::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_command_runs_on_the_transport() {
    let app = spawn_app("ip-allowed", "").await;
    app.guard
        .on_command("uptime", jarvis_exec::fake::Reply::ok(" 10:00 up 3 days\n"));
    let agent = app.agent();
    let action = agent.propose("uptime").await;
    let id = action["id"].as_str().expect("id");
    let done = agent.wait_state(id, "succeeded").await;
    println!("{done:#}");
    println!("{:?}", app.guard.requests());
    println!("{:?}", app.event_kinds(id).await);
}
