//! The HTTP exchange of one completion: up to `retries + 1` attempts, each
//! sent with reqwest and its answer read as it comes, the text handed on
//! piece by piece.
//!
//! Which failures are tried again, and why:
//! - before the answer began (no connection, a timeout before the first
//!   event, a 429 or 5xx, a connection dropped before any event): as
//!   before streaming, by jarvis-http's rule (backoff with jitter, a
//!   server's `Retry-After`), except a refused connection, where nothing
//!   listens;
//! - after it began but before any of its text was handed on (tool call
//!   pieces, a role, usage): the whole request again, since nothing was
//!   shown and the pieces are thrown away;
//! - after text was handed on: never. A second answer would show its text
//!   again, and need not be the same text; the error
//!   ([`ModelError::BrokeOffShown`]) says so.
//!
//! A malformed answer or chunk, a refusal (4xx) and an answer over
//! [`MAX_ANSWER`] are never tried again.
//!
//! Timeouts: `first_byte` bounds the wait from sending to the first event
//! of the answer (or the first piece of a whole answer); `idle` bounds each
//! wait for the next one. A comment line (a keep-alive) does not count as
//! an event: a server that only says it is alive is not answering. There
//! is no whole-answer timeout, so a long answer that keeps coming is never
//! cut; `MAX_ANSWER` bounds it instead.

use std::time::Duration;

use jarvis_http::reqwest;
use jarvis_http::{Backoff, retry_after};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use tokio::time::{Instant, timeout_at};

use super::delta::{Assembly, Chunk, ChunkError, endpoint_words};
use super::sse::{Decoder, SseEvent};
use super::wire::{WireCompletion, reply_from};
use super::{cap, error_chain, scrub};
use crate::model::{ModelError, Reply, Saying, span};

/// The most of an answer read, in bytes: far beyond any completion, and a
/// bound on what a server that never stops can make the client hold.
pub(super) const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// The most of an error's body read, in bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How one completion is sent and read.
pub(super) struct Exchange {
    pub(super) http: reqwest::Client,
    /// `BASE/chat/completions`.
    pub(super) url: String,
    /// The base URL as errors name it.
    pub(super) endpoint: String,
    pub(super) key: Option<String>,
    pub(super) first_byte: Duration,
    pub(super) idle: Duration,
    pub(super) retries: u32,
    pub(super) backoff: Backoff,
}

/// What one attempt came to.
enum Attempt {
    /// The whole answer.
    Answered(Reply),
    /// A failure worth another attempt, and how long the endpoint asked us
    /// to wait (`Retry-After`), if it did.
    Transient(Transient, Option<Duration>),
    /// A failure no retry can mend.
    Fatal(ModelError),
}

/// A failure worth another attempt.
enum Transient {
    RateLimited,
    ServerError {
        status: StatusCode,
        message: String,
    },
    /// Nothing of the answer within the first-byte timeout.
    Timeout,
    /// The connection failed before the answer began.
    Dropped(String),
    /// The answer began, then broke off before any text was shown.
    BrokeOff(String),
}

impl Transient {
    fn describe(&self) -> String {
        match self {
            Transient::RateLimited => "rate limited (429)".to_owned(),
            Transient::ServerError { status, message } => format!("{status}: {message}"),
            Transient::Timeout => "no answer in time".to_owned(),
            Transient::Dropped(reason) | Transient::BrokeOff(reason) => reason.clone(),
        }
    }
}

/// How an answer is being read: whether it has begun (an event, or a
/// piece of a whole answer, came) and whether text was handed on.
#[derive(Default)]
struct Progress {
    began: bool,
    shown: bool,
    read: usize,
}

impl Exchange {
    /// One completion of the request `body`, its text handed to `saying` as
    /// it comes.
    pub(super) async fn complete(
        &self,
        body: &[u8],
        saying: Saying<'_>,
    ) -> Result<Reply, ModelError> {
        let attempts = self.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let (transient, retry_after) = match self.attempt(body, &mut *saying).await {
                Attempt::Answered(reply) => return Ok(reply),
                Attempt::Fatal(error) => return Err(error),
                Attempt::Transient(transient, retry_after) => (transient, retry_after),
            };
            if attempt >= attempts {
                return Err(self.give_up(transient, attempts));
            }
            let wait = self.backoff.wait(attempt, retry_after);
            tracing::warn!(
                endpoint = %self.endpoint,
                attempt,
                of = attempts,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "model endpoint: {}; retrying",
                transient.describe(),
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request, its answer read to the end.
    async fn attempt(&self, body: &[u8], saying: Saying<'_>) -> Attempt {
        let mut request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(key) = self.key.as_deref().filter(|k| !k.is_empty()) {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        let deadline = Instant::now() + self.first_byte;
        let response = match timeout_at(deadline, request.send()).await {
            Err(_elapsed) => return Attempt::Transient(Transient::Timeout, None),
            Ok(Err(e)) if e.is_connect() => {
                return Attempt::Fatal(ModelError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: error_chain(&e.without_url()),
                });
            }
            Ok(Err(e)) if e.is_timeout() => return Attempt::Transient(Transient::Timeout, None),
            Ok(Err(e)) => {
                return Attempt::Transient(Transient::Dropped(error_chain(&e.without_url())), None);
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return self.refusal(response, deadline).await;
        }
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        if streamed {
            self.read_stream(response, deadline, saying).await
        } else {
            // An endpoint that does not stream answers the whole
            // completion at once, as it did before streaming was asked for.
            self.read_whole(response, deadline, saying).await
        }
    }

    /// A streamed answer, event by event.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        mut deadline: Instant,
        saying: Saying<'_>,
    ) -> Attempt {
        let mut decoder = Decoder::default();
        let mut assembly = Assembly::default();
        let mut progress = Progress::default();
        let mut events: Vec<SseEvent> = Vec::new();
        loop {
            let ended = match self
                .next_piece(&mut response, deadline, &mut progress)
                .await
            {
                Ok(Some(bytes)) => decoder.feed(&bytes, &mut events).map(|()| false),
                Ok(None) => decoder.finish(&mut events).map(|()| true),
                Err(attempt) => return attempt,
            };
            let ended = match ended {
                Ok(ended) => ended,
                Err(e) => return self.malformed(e.to_string()),
            };
            for event in events.drain(..) {
                progress.began = true;
                deadline = Instant::now() + self.idle;
                match assembly.take(&event) {
                    Ok(Chunk::Done) => return Attempt::Answered(assembly.into_reply()),
                    Ok(Chunk::Quiet) => {}
                    Ok(Chunk::Text(piece)) => {
                        progress.shown = true;
                        saying(&piece);
                    }
                    Err(ChunkError::Malformed(reason)) => return self.malformed(reason),
                    Err(ChunkError::Reported(words)) => {
                        let words = cap(&scrub(&words, self.key.as_deref()));
                        return self.broke_off(
                            &progress,
                            format!("the endpoint reported an error in its answer: {words}"),
                        );
                    }
                }
            }
            if ended {
                if assembly.finished() {
                    return Attempt::Answered(assembly.into_reply());
                }
                let reason = if progress.began {
                    "the stream ended before the answer did"
                } else {
                    "the stream ended before the answer began"
                };
                return self.broke_off(&progress, reason.to_owned());
            }
        }
    }

    /// A whole answer, read to its end, then handed on at once.
    async fn read_whole(
        &self,
        mut response: reqwest::Response,
        mut deadline: Instant,
        saying: Saying<'_>,
    ) -> Attempt {
        let mut body = Vec::new();
        let mut progress = Progress::default();
        loop {
            match self
                .next_piece(&mut response, deadline, &mut progress)
                .await
            {
                Ok(Some(bytes)) => {
                    progress.began = true;
                    deadline = Instant::now() + self.idle;
                    body.extend_from_slice(&bytes);
                }
                Ok(None) => break,
                Err(attempt) => return attempt,
            }
        }
        let completion: WireCompletion = match serde_json::from_slice(&body) {
            Ok(completion) => completion,
            Err(e) => return self.malformed(e.to_string()),
        };
        match reply_from(completion, &self.endpoint) {
            Ok(reply) => {
                if !reply.message.content.is_empty() {
                    saying(&reply.message.content);
                }
                Attempt::Answered(reply)
            }
            Err(error) => Attempt::Fatal(error),
        }
    }

    /// The next piece of the body before `deadline`: `None` at its end, or
    /// what the attempt came to when reading failed.
    async fn next_piece(
        &self,
        response: &mut reqwest::Response,
        deadline: Instant,
        progress: &mut Progress,
    ) -> Result<Option<Vec<u8>>, Attempt> {
        let piece = match timeout_at(deadline, response.chunk()).await {
            Err(_elapsed) if progress.began => {
                let reason = format!("nothing came for {}", span(self.idle));
                return Err(self.broke_off(progress, reason));
            }
            Err(_elapsed) => return Err(Attempt::Transient(Transient::Timeout, None)),
            Ok(Err(e)) if progress.began => {
                let reason = format!("the connection broke: {}", error_chain(&e.without_url()));
                return Err(self.broke_off(progress, reason));
            }
            Ok(Err(e)) => {
                let reason = error_chain(&e.without_url());
                return Err(Attempt::Transient(Transient::Dropped(reason), None));
            }
            Ok(Ok(piece)) => piece,
        };
        let Some(piece) = piece else {
            return Ok(None);
        };
        progress.read = progress.read.saturating_add(piece.len());
        if progress.read > MAX_ANSWER {
            return Err(self.malformed(format!(
                "the answer is longer than {} MiB",
                MAX_ANSWER / (1024 * 1024)
            )));
        }
        Ok(Some(piece.to_vec()))
    }

    /// An answer that broke off: tried again if nothing was shown, else an
    /// error that says why it was not.
    fn broke_off(&self, progress: &Progress, reason: String) -> Attempt {
        if progress.shown {
            Attempt::Fatal(ModelError::BrokeOffShown {
                endpoint: self.endpoint.clone(),
                reason,
            })
        } else {
            Attempt::Transient(Transient::BrokeOff(reason), None)
        }
    }

    fn malformed(&self, reason: String) -> Attempt {
        Attempt::Fatal(ModelError::Malformed {
            endpoint: self.endpoint.clone(),
            reason,
        })
    }

    /// A status other than 2xx: its body read (within the first-byte
    /// timeout) for the endpoint's words, and classified.
    async fn refusal(&self, mut response: reqwest::Response, deadline: Instant) -> Attempt {
        let status = response.status();
        let headers: HeaderMap = response.headers().clone();
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(piece))) => body.extend_from_slice(&piece),
                Ok(Ok(None)) => break,
                Err(_elapsed) => return Attempt::Transient(Transient::Timeout, None),
                Ok(Err(e)) => {
                    let reason = error_chain(&e.without_url());
                    return Attempt::Transient(Transient::Dropped(reason), None);
                }
            }
        }
        let retry_after = retry_after(&headers);
        let message = cap(&scrub(&error_message(status, &body), self.key.as_deref()));
        if status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Transient(Transient::RateLimited, retry_after)
        } else if status.is_server_error() {
            Attempt::Transient(Transient::ServerError { status, message }, retry_after)
        } else {
            Attempt::Fatal(ModelError::Refused {
                endpoint: self.endpoint.clone(),
                status: status.as_u16(),
                message,
            })
        }
    }

    /// The error after the last attempt failed with `last`.
    fn give_up(&self, last: Transient, attempts: u32) -> ModelError {
        let endpoint = self.endpoint.clone();
        match last {
            Transient::RateLimited => ModelError::RateLimited { endpoint, attempts },
            Transient::Timeout => ModelError::Timeout {
                endpoint,
                after: self.first_byte,
            },
            Transient::ServerError { status, message } => ModelError::Failing {
                endpoint,
                status: status.as_u16(),
                attempts,
                message,
            },
            Transient::Dropped(reason) => ModelError::Unreachable {
                endpoint,
                reason: format!("{reason} ({attempts} attempts)"),
            },
            Transient::BrokeOff(reason) => ModelError::BrokeOff {
                endpoint,
                attempts,
                reason,
            },
        }
    }
}

/// The endpoint's own words for a failure ([`endpoint_words`]), else the
/// body's text, else the status's reason.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Some(words) = serde_json::from_slice(body)
        .ok()
        .and_then(|json| endpoint_words(&json))
    {
        return words;
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        text
    }
}
