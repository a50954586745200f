//! The HTTP client every remote call goes through: a connect timeout and a total timeout, so a
//! service that accepts the connection and never answers costs a bounded wait, never a hang.

use std::time::Duration;

/// How long a TCP (and TLS) connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no HTTP client could be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct HttpError(#[source] reqwest::Error);

/// A client whose every request ends within `total` (connect, send, headers and body).
pub fn client(total: Duration) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(total))
        .timeout(total)
        .build()
        .map_err(HttpError)
}

/// A failed request in words: a timeout says after how long, an unreachable host says so.
/// URLs are left out (they may carry credentials).
pub fn describe(e: &reqwest::Error, total: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {} s", total.as_secs_f64())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off or could not be read".to_string()
    } else {
        // reqwest's Display walks no source chain; the innermost cause says most.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("no answer ({cause})")
    }
}
