//! Slowing down when the bucket says so. R2 allows about one write per second per key and
//! answers bursts (and busy listings) with 429; S3 says `SlowDown` (503). The SDK's own retries
//! do not cover a 429, so every call that may meet one goes through [`throttled`]: it waits
//! what `Retry-After` asks (capped), else an exponential backoff with full jitter.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Attempts of one request while the bucket keeps answering "slow down".
pub const ATTEMPTS: u32 = 8;

/// The longest wait drbot honours from a `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The first backoff; each next one doubles, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// How long to wait before trying again, when the error says "slow down".
pub fn slow_down<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
    attempt: u32,
) -> Option<Duration> {
    let SdkError::ServiceError(s) = e else {
        return None;
    };
    let response = s.raw();
    let status = response.status().as_u16();
    let code = s.err().code().unwrap_or_default();
    let throttled = status == 429
        || code == "SlowDown"
        || code == "TooManyRequests"
        || (status == 503 && code != "NotImplemented");
    if !throttled {
        return None;
    }
    let asked = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER));
    // A `Retry-After: 0` from a key that allows one write a second would be refused again at
    // once: never wait less than the backoff.
    Some(asked.map_or_else(|| backoff(attempt), |a| a.max(backoff(attempt))))
}

/// Exponential backoff with full jitter: a random wait up to `BASE · 2^attempt`, capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(jitter())
}

/// A number in [0.5, 1): random enough to spread retries, from the standard library's
/// per-process random hasher keys.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    0.5 + (h.finish() >> 11) as f64 / (1u64 << 53) as f64 / 2.0
}

/// Runs `call` until it succeeds, fails otherwise, or has been throttled [`ATTEMPTS`] times.
pub async fn throttled<T, E, F, Fut>(mut call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt + 1 < ATTEMPTS => match slow_down(&e, attempt) {
                Some(wait) => {
                    tracing::debug!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "bucket asked to slow down"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempt in 0..40 {
            let b = backoff(attempt);
            let ceiling = BASE_BACKOFF
                .saturating_mul(1u32 << attempt.min(16))
                .min(MAX_BACKOFF);
            assert!(b >= ceiling / 2 && b <= ceiling, "{attempt}: {b:?}");
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(5)).collect();
        assert!(spread.len() > 1, "retries must not all wait the same");
    }
}
