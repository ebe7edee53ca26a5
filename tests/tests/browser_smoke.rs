//! The browser harness itself, against a tiny local HTTP server: a page
//! with a form and an external script is loaded, filled in, submitted, and
//! screenshotted at phone and desktop widths.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

use jarvis_tests::browser::{Browser, DESKTOP, PHONE};
use jarvis_tests::workspace;

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Smoke</title>
<style>
  body { font-family: "DejaVu Sans", sans-serif; margin: 1rem; }
  .wide { display: flex; gap: 1rem; } .wide p { flex: 1; }
  @media (max-width: 600px) { .wide { display: block; } }
</style>
<script src="/app.js" defer></script>
</head><body>
<h1>Approval queue (smoke)</h1>
<p id="js">script not loaded</p>
<form method="post" action="/greet">
  <label>Name <input id="name" name="name" value="placeholder"></label>
  <button id="go" type="submit">Send</button>
</form>
<div class="wide">ROWS</div>
</body></html>"#;

const APP_JS: &str = r#"document.getElementById("js").textContent = "script loaded: " + navigator.userAgent.includes("Chrome");"#;

/// Answers one HTTP/1.1 request on `s`.
fn serve(mut s: TcpStream) {
    let mut r = BufReader::new(s.try_clone().expect("clone stream"));
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = r.read_exact(&mut body);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, content) = match (method, path) {
        ("GET", "/") => {
            let rows = (1..=40)
                .map(|i| format!("<p>Row {i}: systemctl restart grafana on nas, waiting.</p>"))
                .collect::<String>();
            ("200 OK", "text/html", FORM_PAGE.replace("ROWS", &rows))
        }
        ("GET", "/app.js") => ("200 OK", "text/javascript", APP_JS.to_owned()),
        ("POST", "/greet") => {
            let form = String::from_utf8_lossy(&body);
            let name = form
                .split('&')
                .find_map(|kv| kv.strip_prefix("name="))
                .unwrap_or("")
                .replace('+', " ");
            let name: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
            (
                "200 OK",
                "text/html",
                format!(
                    "<!doctype html><meta charset=utf-8><title>Hi</title>\
                     <h1 id=greeting>Hello, {name}</h1>"
                ),
            )
        }
        _ => ("404 Not Found", "text/plain", "not found".to_owned()),
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{content}",
        content.len()
    );
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let data = std::fs::read(path).expect("read screenshot");
    assert!(
        data.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

#[tokio::test]
async fn drives_a_form_and_takes_screenshots() {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("browser-smoke");
    let _ = std::fs::remove_dir_all(&out);

    let mut b = Browser::start().await;
    b.set_size(PHONE.0, PHONE.1).await;
    assert_eq!(b.viewport().await, PHONE);
    b.goto(&format!("{base}/")).await;
    b.wait_text("#js", "script loaded: true").await;
    assert_eq!(b.text("h1").await, "Approval queue (smoke)");
    b.fill("#name", "Ada").await;
    let typed = b
        .eval("return document.getElementById('name').value;", vec![])
        .await;
    assert_eq!(typed, "Ada");
    let phone = out.join("form-phone.png");
    b.screenshot(&phone).await;
    // The whole page, not just the viewport; and the viewport is back.
    let (w, h) = png_size(&phone);
    assert_eq!(w, PHONE.0);
    assert!(h > PHONE.1, "phone shot is {w}x{h}: not the full page");
    assert_eq!(b.viewport().await, PHONE);

    b.set_size(DESKTOP.0, DESKTOP.1).await;
    let desktop = out.join("form-desktop.png");
    b.screenshot(&desktop).await;
    assert_eq!(png_size(&desktop).0, DESKTOP.0);

    b.click("#go").await;
    b.wait_text("#greeting", "Hello, Ada").await;
    assert!(b.url().await.ends_with("/greet"), "at {}", b.url().await);
    let greeted = out.join("greeted-desktop.png");
    b.screenshot(&greeted).await;
    assert_eq!(png_size(&greeted), DESKTOP);
    b.close().await;

    // A second browser after the first is gone, dropped without close().
    let b = Browser::start().await;
    b.goto(&format!("{base}/")).await;
    b.wait_for("#go").await;
    drop(b);
    eprintln!("browser smoke took {:?}", started.elapsed());
}
