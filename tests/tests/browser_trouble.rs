//! Trouble is visible where people look, in headless Chromium at a phone's
//! and a desktop's width: a gateway that tells nobody when an action waits
//! says so on the queue; the hosts page says how each host is in words and
//! checks one on request; the policy page shows the rules in effect and
//! judges a command typed in; an audit log edited behind Jarvis's back is a
//! banner on every page within seconds, "verify now" finds each break and
//! marks its row, and once the log is put back the banner goes as soon as
//! it is verified again (not five minutes later). A decision made twice is
//! answered in words. Screenshots of the broken chain go to
//! docs/screenshots/.

use std::process::Command;
use std::time::{Duration, Instant};

use jarvis_tests::browser::{Browser, DESKTOP, PHONE};
use jarvis_tests::server::{Agent, Person, Served};
use jarvis_tests::{Env, marker};
use reqwest::StatusCode;
use serde_json::json;

const SIZES: [(&str, (u32, u32)); 2] = [("phone", PHONE), ("desktop", DESKTOP)];

/// Runs SQL on the served gateway's database behind its back.
fn sql(s: &Served, statements: &str) {
    let db = s.env.dir().join("data").join("jarvis.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(statements)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3 {statements}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page fits its width: nothing pushes it sideways.
async fn fits(browser: &Browser, what: &str) {
    let v = browser
        .eval(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    let (scroll, inner) = (v[0].as_u64().expect("width"), v[1].as_u64().expect("width"));
    assert!(
        scroll <= inner,
        "{what}: {scroll} px wide in a {inner} px window"
    );
}

/// Whether an element matching `css` is on the page now.
async fn present(browser: &Browser, css: &str) -> bool {
    browser
        .eval(
            "return document.querySelector(arguments[0]) !== null",
            vec![json!(css)],
        )
        .await
        .as_bool()
        .unwrap_or(false)
}

/// Loads `url` again until an element matching `css` is there (a page's
/// view of the chain is current within ten seconds), up to `within`.
async fn reload_until(browser: &Browser, url: &str, css: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        browser.goto(url).await;
        if present(browser, css).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{css}` on {url} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trouble_is_visible_where_people_look() {
    let tag = "browser-trouble";
    let s = Served::start(Env::new(tag, "", ""), "", &[]);
    let password = s.add_user("alice", "approver");
    let victor_password = s.add_user("victor", "viewer");
    let agent = Agent::new(&s, s.add_token("planner", "propose"));

    let mut browser = Browser::start().await;
    browser.set_timeout(Duration::from_secs(30));
    browser.set_size(PHONE.0, PHONE.1).await;
    browser
        .sign_in(&format!("{}/", s.url), "alice", &password, "#queue-items")
        .await;

    for (size, (w, h)) in SIZES {
        browser.set_size(w, h).await;

        // No webhook is configured: the queue says nobody will be told.
        browser.goto(&format!("{}/", s.url)).await;
        let notice = browser.text("#notify-missing").await;
        assert!(
            notice.contains("Nobody will be told when an action waits")
                && notice.contains("[[notify]]")
                && notice.contains("jarvis.toml"),
            "{size}: {notice}"
        );
        fits(&browser, &format!("{size} queue")).await;

        // Hosts: check now, and the answer in words.
        browser.goto(&format!("{}/hosts", s.url)).await;
        browser
            .click("article[data-host=\"sandbox\"] form.check-now button")
            .await;
        let flash = browser.text(".flash.success").await;
        assert!(
            flash.contains("sandbox answered just now") && flash.contains("git "),
            "{size}: {flash}"
        );
        assert!(!flash.contains("git git"), "{size}: {flash}");
        let card = browser.text("article[data-host=\"sandbox\"]").await;
        assert!(card.contains("healthy"), "{size}: {card}");
        for jargon in ["closed", "probing", " bytes", "git git"] {
            assert!(!card.contains(jargon), "{size}: {jargon:?} in {card}");
        }
        assert!(
            card.contains("MiB") || card.contains("KiB"),
            "{size}: {card}"
        );
        fits(&browser, &format!("{size} hosts")).await;

        // Policy: the rules in effect, the defaults, and the try-it box.
        browser.goto(&format!("{}/policy", s.url)).await;
        assert_eq!(browser.text("#default-decision").await, "needs a person");
        assert!(browser.text("#max-risk").await.contains("of 100"));
        let rules = browser.text("#policy-rules").await;
        assert!(
            rules.contains("deny-disk-formatting")
                && rules.contains("refused")
                && rules.contains("runs unattended"),
            "{size}: {rules}"
        );
        browser.fill("textarea#command", "docker ps").await;
        browser.click("#policy-try button[type=\"submit\"]").await;
        browser.wait_text("#decision", "runs unattended").await;
        browser
            .fill("textarea#command", "mkfs.ext4 /dev/sdb1")
            .await;
        browser.click("#policy-try button[type=\"submit\"]").await;
        browser.wait_text("#decision", "refused").await;
        let why = browser.text("#policy-result ul.reasons").await;
        assert!(
            !why.contains('`'),
            "{size}: code spans, not backticks: {why}"
        );
        assert!(
            present(&browser, "#policy-result ul.reasons code").await,
            "{size}: the quoted command is code"
        );
        fits(&browser, &format!("{size} policy")).await;
    }

    // A decision made twice is answered in words, not a status code.
    let m = marker("twice");
    let pending = agent
        .propose(&format!("touch /tmp/jarvis-trouble-{m}"))
        .await;
    assert_eq!(pending["state"], "pending_approval", "{pending:#}");
    let id = pending["id"].as_str().expect("id").to_owned();
    let person = Person::sign_in(&s, "alice", &password).await;
    let csrf = person.csrf(&format!("/actions/{id}")).await;
    let deny = format!("/actions/{id}/deny");
    let (status, _, _) = person
        .form(&deny, &[("csrf", &csrf), ("reason", "not now")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = person.form(&deny, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for s in [
        "<h1>Already decided</h1>",
        "it was rejected already",
        "It was rejected by alice",
    ] {
        assert!(page.contains(s), "missing {s}\n{page}");
    }
    assert!(
        !page.contains("Conflict") && !page.contains(">409<"),
        "{page}"
    );

    // Edit an event behind Jarvis's back.
    let seq = 3;
    let actor: String = {
        let out = Command::new("sqlite3")
            .arg(s.env.dir().join("data").join("jarvis.db"))
            .arg(format!("SELECT actor FROM audit_events WHERE seq = {seq}"))
            .output()
            .expect("sqlite3 runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(!actor.is_empty() && !actor.contains('\''), "{actor:?}");
    sql(
        &s,
        &format!(
            "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'someone-else' WHERE seq = {seq};"
        ),
    );

    // Every page says so, for everyone signed in: the queue first.
    browser.set_size(PHONE.0, PHONE.1).await;
    let queue = format!("{}/", s.url);
    reload_until(&browser, &queue, "#chain-banner", Duration::from_secs(30)).await;
    for (size, (w, h)) in SIZES {
        browser.set_size(w, h).await;
        browser.goto(&queue).await;
        let banner = browser.text("#chain-banner").await;
        assert!(
            banner.contains("The audit log fails verification")
                && banner.contains(&format!("It breaks at event #{seq}"))
                && banner.contains("jarvis audit verify"),
            "{size}: {banner}"
        );
        assert!(present(&browser, "#chain-banner a[href^=\"/audit\"]").await);
        fits(&browser, &format!("{size} queue with the banner")).await;
        for path in ["/hosts", "/policy", "/actions", "/chat"] {
            browser.goto(&format!("{}{path}", s.url)).await;
            browser.wait_for("#chain-banner").await;
        }
    }
    let viewer = Person::sign_in(&s, "victor", &victor_password).await;
    let (_, page) = viewer.page("/").await;
    assert!(page.contains("id=\"chain-banner\""), "a viewer sees it too");
    assert!(
        !page.contains("notify-missing"),
        "the notice is for those who decide"
    );
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.goto(&queue).await;
    browser.shoot("trouble-banner").await;

    // The audit page: verify now lists the break and marks its row.
    for (size, (w, h)) in SIZES {
        browser.set_size(w, h).await;
        browser.goto(&format!("{}/audit", s.url)).await;
        browser.click("#verify-now button").await;
        let flash = browser.text(".flash.error").await;
        assert!(
            flash.contains("Verified just now") && flash.contains(&format!("event #{seq}")),
            "{size}: {flash}"
        );
        browser.wait_for("#chain-status.broken").await;
        let breaks = browser.text("#chain-breaks").await;
        assert!(
            breaks.contains(&format!("event #{seq}")),
            "{size}: {breaks}"
        );
        browser
            .click(&format!("#chain-breaks li[data-seq=\"{seq}\"] a"))
            .await;
        let row = browser
            .wait_for(&format!("tr#event-{seq}.broken-row"))
            .await;
        let text = row.text().await.expect("row text");
        assert!(text.contains("The chain breaks here"), "{size}: {text}");
        assert!(text.contains("someone-else"), "{size}: {text}");
        let shown = browser
            .eval(
                "var r = document.querySelector(arguments[0]).getBoundingClientRect(); \
                 return r.bottom > 0 && r.top < window.innerHeight && r.width > 0",
                vec![json!(format!("tr#event-{seq}"))],
            )
            .await;
        assert_eq!(shown, json!(true), "{size}: the broken row is in view");
        fits(&browser, &format!("{size} audit")).await;
    }
    browser.shoot("trouble-audit").await;

    // Put the event back: verify now turns it green, and the banner goes at once.
    sql(
        &s,
        &format!(
            "UPDATE audit_events SET actor = '{actor}' WHERE seq = {seq}; \
             CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;"
        ),
    );
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.goto(&format!("{}/audit", s.url)).await;
    browser.click("#verify-now button").await;
    let flash = browser.text(".flash.success").await;
    assert!(flash.contains("Chain intact"), "{flash}");
    browser.wait_for("#chain-status.ok").await;
    assert!(!present(&browser, "#chain-banner").await);
    assert!(!present(&browser, "#chain-breaks").await);
    browser.goto(&queue).await;
    browser.wait_for("#queue-items").await;
    assert!(!present(&browser, "#chain-banner").await, "gone at once");

    // A viewer may not verify or check: the forms are not offered, and a
    // forged post is refused and audited.
    let (_, page) = viewer.page("/audit").await;
    assert!(!page.contains("verify-now"));
    let (_, page) = viewer.page("/hosts").await;
    assert!(!page.contains("check-now"));
    let csrf = viewer.csrf("/audit").await;
    let (status, _, page) = viewer.form("/audit/verify", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("victor is a viewer and may not verify the audit log"));
    let (status, _, _) = viewer
        .form("/hosts/sandbox/check", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = person
        .form(
            "/hosts/nowhere/check",
            &[("csrf", &person.csrf("/hosts").await)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    browser.close().await;
}
