//! A minimal client of the Docker Engine API over its unix socket.
//!
//! The `docker` CLI cannot create a container from the full `Config` and
//! `HostConfig` that inspect returns, which a rollback needs, so the guard
//! speaks HTTP/1.1 to the engine itself: one request per connection
//! (`Connection: close`), the whole answer read to the end.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::GuardError;

/// Where the engine listens when `DOCKER_HOST` does not say.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The time limit of a request unless the caller gives one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read; inspect and change lists stay far below it.
const MAX_RESPONSE: u64 = 256 << 20;

/// A connection target: the socket and the API version prefix.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
    /// `/v1.41`, as the engine reported; empty for unversioned paths.
    prefix: String,
}

/// An answer: the HTTP status and the body as JSON (`Null` when empty, a
/// string when it is not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// Whether the engine did what was asked (2xx), or found it already
    /// done (304: a container already started or stopped).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) || self.status == 304
    }

    /// The engine's own words for a failure.
    pub fn message(&self) -> String {
        let text = match &self.body {
            Value::Object(o) => o.get("message").and_then(Value::as_str).unwrap_or(""),
            Value::String(s) => s.as_str(),
            _ => "",
        };
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            text.to_owned()
        }
    }
}

impl Engine {
    /// The engine of `DOCKER_HOST` (a `unix://` address) or the default
    /// socket, with the API version it reports.
    ///
    /// # Errors
    /// `DOCKER_HOST` is not a unix socket, or the engine does not answer.
    pub fn connect() -> Result<Engine, GuardError> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
                Some(path) => PathBuf::from(path),
                None => {
                    return Err(GuardError::Engine(format!(
                        "DOCKER_HOST={host} is not a unix socket; the guard reaches the Docker engine only through one"
                    )));
                }
            },
            _ => PathBuf::from(DEFAULT_SOCKET),
        };
        let mut engine = Engine {
            socket,
            prefix: String::new(),
        };
        let version = engine.call("GET", "/version", None, DEFAULT_TIMEOUT)?;
        if !version.ok() {
            return Err(GuardError::Engine(format!(
                "the Docker engine at {} refused GET /version: {}",
                engine.socket.display(),
                version.message()
            )));
        }
        // Pinning the version the engine speaks keeps the shapes of
        // inspect and create the same across client and engine upgrades.
        if let Some(v) = version.body.get("ApiVersion").and_then(Value::as_str)
            && !v.is_empty()
            && v.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            engine.prefix = format!("/v{v}");
        }
        Ok(engine)
    }

    /// The API version in use, such as `1.41`; empty when unversioned.
    #[cfg(test)]
    pub fn api_version(&self) -> &str {
        self.prefix.trim_start_matches("/v")
    }

    /// Sends one request; `path` starts with `/` and is already encoded
    /// (see [`enc`]).
    ///
    /// # Errors
    /// The socket cannot be reached, the engine takes longer than
    /// `timeout` or answers something that is not HTTP. An HTTP error status
    /// is a [`Reply`], not an error.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, GuardError> {
        let what = format!("{method} {path}");
        let fail = |e: std::io::Error| {
            GuardError::Engine(
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    format!(
                        "the Docker engine did not answer {what} within {}s",
                        timeout.as_secs()
                    )
                } else {
                    format!(
                        "cannot talk to the Docker engine at {} ({what}): {e}",
                        self.socket.display()
                    )
                },
            )
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(fail)?;
        stream.set_read_timeout(Some(timeout)).map_err(fail)?;
        stream.set_write_timeout(Some(timeout)).map_err(fail)?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: jarvis-guard\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.prefix,
            payload.len()
        );
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(fail)?;
        stream.write_all(payload.as_bytes()).map_err(fail)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE + 1)
            .read_to_end(&mut raw)
            .map_err(fail)?;
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(GuardError::Engine(format!(
                "the Docker engine's answer to {what} is larger than {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        parse_response(&raw)
            .map_err(|e| GuardError::Engine(format!("the Docker engine's answer to {what} {e}")))
    }
}

/// Parses a whole HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Result<Reply, &'static str> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("has no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "has headers that are not text")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("has no status line")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err("ends before its Content-Length"),
            None => rest.to_vec(),
        }
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok(Reply { status, body })
}

/// Joins the chunks of a chunked transfer encoding.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("has a chunk without a size line")?;
        let size_line = std::str::from_utf8(&rest[..eol]).map_err(|_| "has a bad chunk size")?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "has a bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            return Err("ends inside a chunk");
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
}

/// Percent-encodes a path segment or query value: everything but letters,
/// digits and `-._~`.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_a_length_or_chunks_are_read_whole() {
        let plain = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"message\":\"no such\"}\nextra";
        let reply = parse_response(plain).expect("plain");
        assert_eq!(reply.status, 404);
        assert_eq!(reply.message(), "no such");
        assert!(!reply.ok());

        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n[1, 2\r\n3;x=y\r\n, 3\r\n1\r\n]\r\n0\r\n\r\n";
        let reply = parse_response(chunked).expect("chunked");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, serde_json::json!([1, 2, 3]));

        let empty = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_response(empty).expect("empty").body, Value::Null);
        let text = b"HTTP/1.1 500 Internal\r\nContent-Length: 5\r\n\r\noops\n";
        assert_eq!(parse_response(text).expect("text").message(), "oops");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab")
                .is_err()
        );
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(enc("jarvis-snapshots:a.b_c~"), "jarvis-snapshots%3Aa.b_c~");
        assert_eq!(enc("a/b c"), "a%2Fb%20c");
    }
}
