//! The HTTP client every remote call goes through: a connect timeout and a total timeout, so a
//! service that accepts the connection and never answers costs a bounded wait, never a hang.

use std::time::Duration;

/// How long a TCP (and TLS) connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer's body drbot reads from a service; the rest is never read, so an
/// answer of any size costs at most this much memory.
pub const MAX_BODY: usize = 64 * 1024;

/// An answer's body, read up to a limit.
#[derive(Debug)]
pub struct Body {
    /// What was read: all of it, or the first `limit` bytes.
    pub bytes: Vec<u8>,
    /// Whether there was more than the limit (the rest was not read).
    pub cut: bool,
}

impl Body {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads at most `limit` bytes of `resp`'s body. A body that breaks off is an error; one
/// longer than `limit` is cut there, and says so.
pub async fn read_bounded(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Body { bytes, cut: true });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body { bytes, cut: false })
}

/// At most `limit` bytes of `resp`'s body as text, for a message: whatever could be read
/// before it broke off, if it did.
pub async fn bounded_text(mut resp: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(limit - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

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
