//! Outbound HTTP, the one way Jarvis makes it: to the model endpoint (the
//! planner), to webhooks (the gateway's notices), and from `jarvis mcp
//! --server` to a running server's API.
//!
//! It owns what those two must agree on, so a fix lands in both:
//! - the client's configuration ([`client_builder`]): rustls on the ring
//!   provider with the platform's roots, handed to reqwest ready-made so no
//!   process-wide crypto provider is installed; redirects never followed,
//!   since a redirected POST is not the request that was meant; Jarvis's
//!   user agent;
//! - the retry rule ([`Backoff`], [`retry_after`]): capped exponential
//!   backoff with jitter, and a server's `Retry-After` honoured up to the
//!   same cap.
//!
//! It must never decide what to send, whether an answer is a success or
//! worth retrying (callers classify their own endpoints' answers), or hold
//! state between requests.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use reqwest;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The user agent every outbound request carries.
pub const USER_AGENT: &str = concat!("jarvis/", env!("CARGO_PKG_VERSION"));

/// The longest `Retry-After` taken at its word before the caller's own cap:
/// a day.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Why no HTTP client could be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The platform's certificate verifier or the TLS configuration could
    /// not be built (no usable root store, an unsupported provider).
    #[error("no TLS configuration: {0}")]
    Tls(String),
}

/// A reqwest client builder with Jarvis's TLS, redirect and user-agent
/// settings; the caller adds its timeouts and builds it.
///
/// # Errors
/// [`HttpError::Tls`] when the platform's verifier or the TLS
/// configuration cannot be built.
pub fn client_builder() -> Result<reqwest::ClientBuilder, HttpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| HttpError::Tls(format!("no certificate verifier: {e}")))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT))
}

/// How long to wait between attempts: `first × 2^(retry-1)`, at most
/// `max`, jittered down by up to half so that clients that failed together
/// do not retry together; a server's `Retry-After` instead, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry, before jitter.
    pub first: Duration,
    /// The longest wait, `Retry-After` included.
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry `retry` (1 for the first) without jitter: the
    /// most [`Backoff::wait`] waits when the server asked nothing.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `retry` (1 for the first): what the server
    /// asked for (`asked`, from [`retry_after`]) up to `max`, else the
    /// ceiling jittered down by up to half.
    pub fn wait(&self, retry: u32, asked: Option<Duration>) -> Duration {
        if let Some(asked) = asked {
            return asked.min(self.max);
        }
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        half + half.mul_f64(unit_fraction())
    }
}

/// A fraction in [0, 1) from the OS, or from the clock if it has none:
/// jitter needs spread, not secrecy.
fn unit_fraction() -> f64 {
    use rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 4];
    let n = match OsRng.try_fill_bytes(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    };
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

/// What a server's `Retry-After` asks for: seconds (a fraction allowed) or
/// an HTTP date, at most a day; `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER));
    }
    let when = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let seconds = (when - OffsetDateTime::now_utc()).as_seconds_f64();
    Some(Duration::from_secs_f64(
        seconds.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_is_capped_and_jitters_down_by_at_most_half() {
        let b = Backoff {
            first: Duration::from_secs(2),
            max: Duration::from_secs(300),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(2));
        assert_eq!(b.ceiling(2), Duration::from_secs(4));
        assert_eq!(b.ceiling(5), Duration::from_secs(32));
        assert_eq!(b.ceiling(9), Duration::from_secs(300));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(300));
        for retry in 1..=12 {
            let wait = b.wait(retry, None);
            let ceiling = b.ceiling(retry);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{retry}: {wait:?}");
        }
    }

    #[test]
    fn a_servers_wait_is_taken_up_to_the_cap() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(3),
        };
        assert_eq!(
            b.wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(b.wait(1, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            b.wait(7, Some(Duration::from_secs(60))),
            Duration::from_secs(3)
        );
    }

    fn asked(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
        retry_after(&headers)
    }

    #[test]
    fn retry_after_reads_seconds_fractions_and_dates() {
        assert_eq!(asked("3"), Some(Duration::from_secs(3)));
        assert_eq!(asked(" 2.5 "), Some(Duration::from_millis(2500)));
        assert_eq!(asked("0"), Some(Duration::ZERO));
        assert_eq!(asked("1000000"), Some(MAX_RETRY_AFTER));
        assert_eq!(asked("-1"), None);
        assert_eq!(asked("NaN"), None);
        assert_eq!(asked("soon"), None);
        assert_eq!(asked("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(120);
        let date = later.format(&Rfc2822).expect("date");
        let wait = asked(&date).expect("a date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn a_client_can_be_built() {
        client_builder().expect("builder").build().expect("client");
    }
}
