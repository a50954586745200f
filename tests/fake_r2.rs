//! A stand-in for Cloudflare R2 in front of moto, written from R2's S3 API compatibility page:
//! every object-versioning call (Get/PutBucketVersioning, ListObjectVersions, any request with
//! a `versionId`, a copy from a version), object lock, tagging and ACLs answer
//! `501 NotImplemented`, as R2 does. About one write per second per key: a second write to a
//! key within a second gets 429, and `throttle(n)` makes the next n writes get 429 (R2's answer
//! to bursts), with `Retry-After`. Everything else is forwarded to moto unchanged. Every
//! request is recorded, so tests can count lists, copies and writes per key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the stand-in saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path without the query, percent-decoded.
    pub path: String,
    pub query: String,
    /// `x-amz-copy-source`, for copies.
    pub copy_source: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    throttle: u32,
    last_write: HashMap<String, Instant>,
    /// Copies whose source contains this fail with 500 InternalError.
    fail_copies: Option<String>,
    /// GetBucketVersioning answers 200 with a body that is no S3 XML.
    garble_versioning: bool,
    /// ListObjectsV2 past its first page (a continuation token) fails with 500 InternalError.
    fail_continued_lists: bool,
}

#[derive(Clone)]
pub struct FakeR2 {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

/// How the stand-in answers versioning calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As R2: 501 NotImplemented.
    R2,
    /// As S3: forwarded to moto, whose GetBucketVersioning answer is fixed on the way back
    /// (moto 5.2.5 names its root `GetBucketVersioningResponse`, which S3 and the SDK call
    /// `VersioningConfiguration`).
    S3,
}

fn decode(s: &str) -> String {
    crate::support::percent_decode(s, false)
}

const NOT_IMPLEMENTED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code><Message>Not Implemented</Message></Error>";

impl FakeR2 {
    /// Starts the R2 stand-in on port 0 in front of `moto`.
    pub async fn start(moto: &str) -> FakeR2 {
        Self::start_as(moto, Mode::R2).await
    }

    /// The same proxy acting as S3 with versioning (the throttling and failures still apply).
    pub async fn start_s3(moto: &str) -> FakeR2 {
        Self::start_as(moto, Mode::S3).await
    }

    async fn start_as(moto: &str, mode: Mode) -> FakeR2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = moto.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, upstream) = (st.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &upstream, &st, mode).await;
                });
            }
        });
        FakeR2 { endpoint, state }
    }

    /// The next `n` writes are answered 429.
    pub fn throttle(&self, n: u32) {
        self.state.lock().unwrap().throttle = n;
    }

    /// Listings past their first page fail with 500 (as long as this is set).
    pub fn fail_continued_lists(&self, fail: bool) {
        self.state.lock().unwrap().fail_continued_lists = fail;
    }

    /// Copies whose source contains `part` fail with 500 (None: none fail).
    pub fn fail_copies(&self, part: Option<&str>) {
        self.state.lock().unwrap().fail_copies = part.map(str::to_string);
    }

    /// GetBucketVersioning answers 200 with garbage (as some S3 look-alikes do).
    pub fn garble_versioning(&self) {
        self.state.lock().unwrap().garble_versioning = true;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// No PUT or DELETE reached the stand-in (since the last `clear`).
    pub fn wrote_nothing(&self) -> bool {
        !self
            .seen()
            .iter()
            .any(|x| x.method == "PUT" || x.method == "DELETE")
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

/// Reads one HTTP/1.1 message head and body (by Content-Length) from `stream`.
async fn read_message(stream: &mut TcpStream, no_body: bool) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok());
    let mut body = buf[head_end..].to_vec();
    match length {
        _ if no_body => body.clear(),
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None if head.starts_with("HTTP/") => {
            // A response without a length: until the connection closes.
            loop {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None => body.clear(),
    }
    Some((head, body))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

async fn answer(stream: &mut TcpStream, status: u16, extra: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

async fn serve(mut client: TcpStream, upstream: &str, st: &Mutex<State>, mode: Mode) -> Option<()> {
    let (head, body) = read_message(&mut client, false).await?;
    let first = head.lines().next().unwrap_or_default().to_string();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (raw_path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = decode(raw_path);
    let copy_source = header(&head, "x-amz-copy-source").map(|c| decode(&c));
    let params: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or(p))
        .collect();
    let r2_lacks = [
        "versioning",
        "versions",
        "versionId",
        "object-lock",
        "tagging",
        "acl",
    ]
    .iter()
    .any(|p| params.contains(p))
        || copy_source
            .as_deref()
            .is_some_and(|c| c.contains("versionId="));
    let unsupported = mode == Mode::R2 && r2_lacks;
    let write = matches!(method.as_str(), "PUT" | "POST" | "DELETE");
    // Writes to one key count against its one-per-second budget; parts of a multipart upload
    // are separate writes of the upload, not of the key.
    let is_part = params.contains(&"partNumber") || params.contains(&"uploadId");
    let refusal = {
        let mut s = st.lock().unwrap();
        let failing = copy_source
            .as_deref()
            .is_some_and(|c| s.fail_copies.as_deref().is_some_and(|f| c.contains(f)))
            || (s.fail_continued_lists
                && method == "GET"
                && params.contains(&"continuation-token"));
        let refusal = if s.garble_versioning && params.contains(&"versioning") {
            Some(200)
        } else if unsupported {
            Some(501)
        } else if failing {
            Some(500)
        } else if write && s.throttle > 0 {
            s.throttle -= 1;
            Some(429)
        } else if write
            && !is_part
            && s.last_write
                .get(&path)
                .is_some_and(|t| t.elapsed() < Duration::from_millis(1000))
        {
            Some(429)
        } else {
            if write && !is_part {
                s.last_write.insert(path.clone(), Instant::now());
            }
            None
        };
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.to_string(),
            copy_source: copy_source.clone(),
            status: refusal.unwrap_or(0),
        });
        refusal
    };
    match refusal {
        Some(501) => {
            answer(&mut client, 501, "", NOT_IMPLEMENTED).await;
            return Some(());
        }
        Some(200) => {
            answer(
                &mut client,
                200,
                "",
                "<html><body>Bucket settings</body></html>",
            )
            .await;
            return Some(());
        }
        Some(500) => {
            answer(
                &mut client,
                500,
                "",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
            )
            .await;
            return Some(());
        }
        Some(status) => {
            answer(
                &mut client,
                status,
                "retry-after: 1\r\n",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>TooManyRequests</Code><Message>Reduce your concurrent request rate for the same object.</Message></Error>",
            )
            .await;
            return Some(());
        }
        _ => {}
    }
    // Forward to moto as it came, asking it to close after answering.
    let mut up = TcpStream::connect(upstream).await.ok()?;
    let mut forwarded = String::new();
    for (i, line) in head.trim_end_matches("\r\n\r\n").split("\r\n").enumerate() {
        if i > 0 {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("expect") {
                continue;
            }
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("connection: close\r\n\r\n");
    up.write_all(forwarded.as_bytes()).await.ok()?;
    up.write_all(&body).await.ok()?;
    let (rhead, mut rbody) = read_message(&mut up, method == "HEAD").await?;
    if mode == Mode::S3 && method == "GET" && params.contains(&"versioning") {
        let fixed = String::from_utf8_lossy(&rbody)
            .replace("GetBucketVersioningResponse", "VersioningConfiguration");
        rbody = fixed.into_bytes();
    }
    let status: u16 = rhead
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    {
        let mut s = st.lock().unwrap();
        if let Some(last) = s
            .seen
            .iter_mut()
            .rev()
            .find(|x| x.path == path && x.status == 0)
        {
            last.status = status;
        }
    }
    let mut out = String::new();
    for (i, line) in rhead.trim_end_matches("\r\n\r\n").split("\r\n").enumerate() {
        if i > 0 {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("connection")
                || name.eq_ignore_ascii_case("keep-alive")
                || name.eq_ignore_ascii_case("content-length")
            {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if method != "HEAD" {
        out.push_str(&format!("content-length: {}\r\n", rbody.len()));
    } else if let Some(len) = header(&rhead, "content-length") {
        out.push_str(&format!("content-length: {len}\r\n"));
    }
    out.push_str("connection: close\r\n\r\n");
    client.write_all(out.as_bytes()).await.ok()?;
    client.write_all(&rbody).await.ok()?;
    let _ = client.shutdown().await;
    Some(())
}
