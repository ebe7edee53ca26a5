//! Rolling back in headless Chromium, at phone and desktop widths: the
//! confirmation page lists what comes back and what does not before
//! anything happens; a rollback over later changes stops before changing
//! anything, says what changed, and offers Force on the same page; an
//! action that changed nothing says "Nothing to undo" instead of offering
//! a rollback. Screenshots of the confirmation and the stop go to
//! docs/screenshots/.

use std::time::Duration;

use jarvis_tests::Env;
use jarvis_tests::browser::{Browser, DESKTOP, PHONE};
use jarvis_tests::fixtures::{HostContainer, HostRepo};
use jarvis_tests::server::{Person, Served};
use reqwest::StatusCode;
use serde_json::json;

/// Runs `command` on the sandbox with the CLI, approving it if it waits;
/// returns the id of the action, which succeeded.
fn act(s: &Served, cwd: Option<&str>, command: &str) -> String {
    let mut args = vec!["run", "--host", "sandbox"];
    if let Some(cwd) = cwd {
        args.extend(["--cwd", cwd]);
    }
    args.extend(["--", command]);
    let out = s.env.jarvis(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let id = jarvis_tests::action_id(&stderr);
    if out.status.code() == Some(3) {
        let out = s.env.jarvis(&["approve", &id]);
        assert!(
            out.status.success(),
            "approve {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(out.status.success(), "{command}: {stderr}");
    }
    assert_eq!(s.env.show(&id)["action"]["state"], "succeeded");
    id
}

/// HEAD of a repository, as the page quotes it (7 hex digits).
fn short_head(repo: &HostRepo) -> String {
    repo.git(&["rev-parse", "--short=7", "HEAD"])
}

/// Whether an element matching `css` is on the page now.
async fn present(browser: &Browser, css: &str) -> bool {
    browser
        .eval(
            "return document.querySelector(arguments[0]) !== null",
            vec![css.into()],
        )
        .await
        .as_bool()
        .unwrap_or(false)
}

/// Whether the element matching `css` fits the viewport's width (nothing to
/// scroll sideways for on a phone).
async fn fits(browser: &Browser, css: &str) -> bool {
    browser
        .eval(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
             return r.left >= 0 && r.right <= document.documentElement.clientWidth + 1;",
            vec![css.into()],
        )
        .await
        .as_bool()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_stop_force_and_nothing_to_undo_in_the_browser() {
    let tag = "browser-rb";
    // One approver is enough for a plain rollback, and asking is that
    // approval: Confirm runs it. Force still takes the full rule.
    let s = Served::start(
        Env::with_snapshots(tag, ""),
        "[approvals]\nrollback = \"one-approver\"\n",
        &[],
    );
    let password = s.add_user("alice", "approver");
    let repo = HostRepo::new(tag);
    let drifting = HostRepo::new("browser-rb-drift");
    let container = HostContainer::new(tag);
    let before = repo.state();
    let head_before = short_head(&repo);
    let cwd = repo.path.display().to_string();
    let changed = act(&s, Some(&cwd), "git commit -qam 'change the port'");
    let drift_before = drifting.state();
    let drift_cwd = drifting.path.display().to_string();
    let drift_head = short_head(&drifting);
    let drifted = act(&s, Some(&drift_cwd), "git commit -qam 'change the port'");
    let restarted = act(&s, None, &format!("docker restart -t 1 {}", container.name));

    let mut browser = Browser::start().await;
    browser.set_timeout(Duration::from_secs(30));
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.goto(&format!("{}/", s.url)).await;
    browser.wait_for("form#login").await;
    browser.fill("input#username", "alice").await;
    browser.fill("input#password", &password).await;
    browser.click("button#login-submit").await;
    browser.wait_for("#queue-items").await;

    // The action page leads to a confirmation, which lists what comes back
    // and what does not, at both widths, before anything happens.
    browser.goto(&format!("{}/actions/{changed}", s.url)).await;
    browser.click("a.rollback").await;
    let back = format!(
        "git repository {} back to {head_before} (branch main)",
        repo.path.display()
    );
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        browser.wait_text("ul.comes-back", &back).await;
        browser
            .wait_text("ul.comes-back", "this command: HEAD moved from")
            .await;
        browser
            .wait_text("ul.not-back", "anything the command did outside these")
            .await;
        browser
            .wait_text("#confirm .note", "It runs as soon as you confirm")
            .await;
        assert!(present(&browser, "#confirm a.cancel").await);
        assert!(fits(&browser, "#confirm button.rollback.confirm").await);
    }
    assert_ne!(repo.state(), before, "looking changed nothing");
    browser.shoot("rollback-confirm").await;
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.click("#confirm button.rollback.confirm").await;
    browser
        .wait_text(
            ".flash.success",
            &format!(
                "Rolled back: git repository {} is back as the snapshot found it.",
                repo.path.display()
            ),
        )
        .await;
    browser.wait_text("#state", "succeeded").await;
    assert_eq!(repo.state(), before, "the repository is as it was");

    // A later change: the rollback stops before changing anything, says
    // what changed, and offers Force on the same page.
    drifting.git(&["commit", "-q", "--allow-empty", "-m", "later"]);
    let later = drifting.state();
    let later_head = short_head(&drifting);
    browser
        .goto(&format!("{}/actions/{drifted}/rollback", s.url))
        .await;
    browser.click("#confirm button.rollback.confirm").await;
    let stopped = format!(
        "Stopped before changing anything: git repository {} changed since this action ran (HEAD moved",
        drifting.path.display()
    );
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        browser
            .wait_text("#rollback-stopped .stopped-message", &stopped)
            .await;
        browser
            .wait_text("#rollback-stopped ul.changed-since", &later_head)
            .await;
        browser
            .wait_text(
                "#rollback-stopped .force-overwrites",
                "overwrites what changed since",
            )
            .await;
        assert!(fits(&browser, "#force-form button.force").await);
        assert!(!present(&browser, "#confirm").await, "no plain confirm");
    }
    assert_eq!(drifting.state(), later, "nothing was changed");
    browser.shoot("rollback-stopped").await;
    browser.set_size(PHONE.0, PHONE.1).await;
    // The stopped rollback is recorded as refused, not failed.
    let show = s.env.show(&drifted);
    assert_eq!(show["action"]["state"], "succeeded");
    browser.click("#force-form button.force").await;
    // Forced, it takes the full rule: it waits, and alice approves it.
    browser.wait_text(".flash.info", "waits for approval").await;
    browser.wait_text("#state", "waiting for approval").await;
    browser.click("form.decide button.approve").await;
    browser.wait_text("#state", "succeeded").await;
    assert_eq!(
        drifting.state(),
        drift_before,
        "forced back to {drift_head}"
    );

    // A restart changed nothing the snapshot covers: nothing to undo, on
    // the action page and on the rollback page, and no rollback offered.
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        browser
            .goto(&format!("{}/actions/{restarted}", s.url))
            .await;
        browser
            .wait_text(
                ".rollback-note",
                "Nothing to undo: it changed nothing that can be put back.",
            )
            .await;
        assert!(!present(&browser, "a.rollback").await);
        browser
            .goto(&format!("{}/actions/{restarted}/rollback", s.url))
            .await;
        browser
            .wait_text(
                "#nothing-to-undo",
                "Nothing to undo: it changed nothing that can be put back.",
            )
            .await;
        browser
            .wait_text("#nothing-to-undo ul.left-alone", &container.name)
            .await;
        assert!(!present(&browser, "form.rollback").await);
    }
    browser.close().await;

    // Asked for anyway through the API, it says so, and makes nothing.
    let alice = Person::sign_in(&s, "alice", &password).await;
    let csrf = alice.csrf("/").await;
    let (status, body) = alice
        .api(
            &format!("/api/v1/actions/{restarted}/rollback"),
            &csrf,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing to undo")
                && e.contains("it changed nothing that can be put back")),
        "{body:#}"
    );
    assert_eq!(s.env.show(&restarted)["action"]["state"], "succeeded");
}
