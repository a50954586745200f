//! A stand-in for Meilisearch written from its documented API (v1.x): `/health` without a
//! key, everything else behind `Authorization: Bearer <master key>` (missing: 401
//! `missing_authorization_header`; wrong: 403 `invalid_api_key`); errors as
//! `{message, code, type, link}`; `/version`, `/indexes/{uid}/stats` (404 `index_not_found`),
//! `/tasks` with its filters, `/tasks/{uid}`, `POST /dumps` and `POST /indexes/{uid}/documents`
//! answering 202 with a task that goes enqueued → processing → succeeded (or failed). And a
//! stand-in of the platform API whose `POST /admin/reindex` (bearer ADMIN_TOKEN) feeds the index
//! in batches, with `/healthz` and the web's `/api/health`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Req {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

type Handler = Arc<dyn Fn(Req) -> (u16, Value, Duration) + Send + Sync>;

async fn one(mut s: TcpStream, handler: Handler) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let first = lines.next()?.to_string();
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), decode(v))
        })
        .collect();
    let (status, value, delay) = handler(Req {
        method,
        path: decode(path),
        query,
        headers,
        body,
    });
    tokio::time::sleep(delay).await;
    let text = value.to_string();
    let out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    s.write_all(out.as_bytes()).await.ok()?;
    s.shutdown().await.ok()
}

fn decode(s: &str) -> String {
    crate::support::percent_decode(s, true)
}

async fn serve(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let h = handler.clone();
            tokio::spawn(one(s, h));
        }
    });
    base
}

fn error(status: u16, code: &str, kind: &str, message: &str) -> (u16, Value, Duration) {
    (
        status,
        json!({
            "message": message,
            "code": code,
            "type": kind,
            "link": format!("https://docs.meilisearch.com/errors#{code}")
        }),
        Duration::ZERO,
    )
}

#[derive(Clone, Debug)]
struct Task {
    uid: u64,
    index: Option<String>,
    kind: String,
    status: String,
    docs: Vec<u64>,
    enqueued_at: DateTime<Utc>,
    fail: bool,
    details: Value,
    error: Value,
}

impl Task {
    fn json(&self) -> Value {
        json!({
            "uid": self.uid, "indexUid": self.index, "status": self.status, "type": self.kind,
            "details": self.details, "error": self.error,
            "enqueuedAt": self.enqueued_at.to_rfc3339(), "startedAt": null, "finishedAt": null,
            "duration": null, "canceledBy": null
        })
    }
}

#[derive(Default)]
pub struct MeiliState {
    /// Document ids per index (an addition with an id already there replaces it, as in
    /// Meilisearch).
    pub indexes: BTreeMap<String, std::collections::BTreeSet<u64>>,
    /// Every answer but `/health` waits this long (a server that hangs).
    pub hang: Duration,
    tasks: Vec<Task>,
    /// The next document batches fail.
    pub fail_documents: bool,
    /// `/health` answers 500 (as when it must restart).
    pub unavailable: bool,
    /// Where a finished dump is written as `<dumpUid>.dump` (Meilisearch's `--dump-dir`).
    pub dump_dir: Option<std::path::PathBuf>,
    /// The task queue does not move (an instance busy with something long).
    pub stalled: bool,
    /// The next dump tasks fail, as Meilisearch's do when its dump directory cannot be written.
    pub fail_dumps: bool,
    /// Every answer but `/health` carries this many bytes more (a proxy or a broken build
    /// answering far more than the API documents).
    pub padding: usize,
}

#[derive(Clone)]
pub struct FakeMeili {
    pub host: String,
    pub key: String,
    pub state: Arc<Mutex<MeiliState>>,
}

impl FakeMeili {
    pub async fn start(key: &str) -> FakeMeili {
        let state = Arc::new(Mutex::new(MeiliState::default()));
        let st = state.clone();
        let master = key.to_string();
        let handler: Handler = Arc::new(move |r: Req| handle(&st, &master, r));
        let host = serve(handler).await;
        // The task queue: one step every 100 ms.
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut s = st.lock().unwrap();
                advance(&mut s);
            }
        });
        FakeMeili {
            host,
            key: key.to_string(),
            state,
        }
    }

    pub fn set_documents(&self, index: &str, n: usize) {
        self.state
            .lock()
            .unwrap()
            .indexes
            .insert(index.to_string(), (0..n as u64).collect());
    }

    /// Tasks it has been given.
    pub fn tasks(&self) -> usize {
        self.state.lock().unwrap().tasks.len()
    }

    /// Tasks not finished yet.
    pub fn unfinished(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .tasks
            .iter()
            .filter(|t| t.status == "enqueued" || t.status == "processing")
            .count()
    }
}

fn advance(s: &mut MeiliState) {
    if s.stalled {
        return;
    }
    if let Some(t) = s.tasks.iter_mut().find(|t| t.status == "processing") {
        let t = t.clone();
        let done = s.tasks.iter_mut().find(|x| x.uid == t.uid).unwrap();
        if t.fail && t.kind == "dumpCreation" {
            done.status = "failed".to_string();
            done.error = json!({
                "message": "Permission denied (os error 13)",
                "code": "internal", "type": "internal",
                "link": "https://docs.meilisearch.com/errors#internal"
            });
        } else if t.fail {
            done.status = "failed".to_string();
            done.error = json!({
                "message": "Document identifier `null` is invalid.",
                "code": "invalid_document_id", "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#invalid_document_id"
            });
        } else {
            done.status = "succeeded".to_string();
            if t.kind == "dumpCreation"
                && let Some(dir) = &s.dump_dir
                && let Some(uid) = t.details.get("dumpUid").and_then(Value::as_str)
            {
                let _ = std::fs::write(
                    dir.join(format!("{uid}.dump")),
                    format!("MEILIDUMP {uid}\n").repeat(1000),
                );
            }
            if t.kind == "documentAdditionOrUpdate" {
                let idx = t.index.clone().unwrap_or_default();
                s.indexes
                    .entry(idx)
                    .or_default()
                    .extend(t.docs.iter().copied());
            }
        }
        return;
    }
    if let Some(t) = s.tasks.iter_mut().find(|t| t.status == "enqueued") {
        t.status = "processing".to_string();
    }
}

fn handle(st: &Mutex<MeiliState>, master: &str, r: Req) -> (u16, Value, Duration) {
    let padding = st.lock().unwrap().padding;
    let health = r.path == "/health";
    let (status, mut value, wait) = handle_api(st, master, r);
    if padding > 0
        && !health
        && let Some(o) = value.as_object_mut()
    {
        o.insert("padding".to_string(), Value::String("x".repeat(padding)));
    }
    (status, value, wait)
}

fn handle_api(st: &Mutex<MeiliState>, master: &str, r: Req) -> (u16, Value, Duration) {
    let mut s = st.lock().unwrap();
    if r.path == "/health" {
        if s.unavailable {
            return error(500, "internal", "internal", "Meilisearch must restart.");
        }
        return (200, json!({"status": "available"}), Duration::ZERO);
    }
    match r.headers.get("authorization") {
        None => {
            return error(
                401,
                "missing_authorization_header",
                "auth",
                "The Authorization header is missing. It must use the bearer authorization method.",
            );
        }
        Some(a) if a != &format!("Bearer {master}") => {
            return error(
                403,
                "invalid_api_key",
                "auth",
                "The provided API key is invalid.",
            );
        }
        _ => {}
    }
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let now = Utc::now();
    let hang = s.hang;
    let (status, value, delay) = match (r.method.as_str(), segs.as_slice()) {
        ("GET", ["version"]) => (
            200,
            json!({"commitSha": "b46889b5f0f2f8b91438a08a358ba8f05fc09fc1", "commitDate": "2024-11-14T10:00:00Z", "pkgVersion": "1.11.3"}),
            Duration::ZERO,
        ),
        ("GET", ["indexes", uid, "stats"]) => match s.indexes.get(*uid).map(|ids| ids.len()) {
            Some(n) => {
                let indexing = s
                    .tasks
                    .iter()
                    .any(|t| t.index.as_deref() == Some(*uid) && t.status == "processing");
                (
                    200,
                    json!({"numberOfDocuments": n, "isIndexing": indexing, "fieldDistribution": {}}),
                    Duration::ZERO,
                )
            }
            None => error(
                404,
                "index_not_found",
                "invalid_request",
                &format!("Index `{uid}` not found."),
            ),
        },
        ("GET", ["tasks"]) => {
            let after = match r.query.get("afterEnqueuedAt") {
                Some(v) => match DateTime::parse_from_rfc3339(v) {
                    Ok(t) => Some(t.with_timezone(&Utc)),
                    Err(_) => {
                        return error(
                            400,
                            "invalid_task_after_enqueued_at",
                            "invalid_request",
                            &format!("`{v}` is an invalid date-time."),
                        );
                    }
                },
                None => None,
            };
            let list = |k: &str| {
                r.query
                    .get(k)
                    .map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            };
            let (statuses, indexes) = (list("statuses"), list("indexUids"));
            let matching: Vec<&Task> = s
                .tasks
                .iter()
                .rev()
                .filter(|t| statuses.as_ref().is_none_or(|v| v.contains(&t.status)))
                .filter(|t| {
                    indexes
                        .as_ref()
                        .is_none_or(|v| t.index.as_ref().is_some_and(|i| v.contains(i)))
                })
                .filter(|t| after.is_none_or(|a| t.enqueued_at > a))
                .collect();
            let limit: usize = r
                .query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(20);
            (
                200,
                json!({
                    "results": matching.iter().take(limit).map(|t| t.json()).collect::<Vec<_>>(),
                    "total": matching.len(), "limit": limit, "from": matching.first().map(|t| t.uid), "next": null
                }),
                Duration::ZERO,
            )
        }
        ("GET", ["tasks", uid]) => match uid
            .parse::<u64>()
            .ok()
            .and_then(|u| s.tasks.iter().find(|t| t.uid == u))
        {
            Some(t) => (200, t.json(), Duration::ZERO),
            None => error(
                404,
                "task_not_found",
                "invalid_request",
                &format!("Task `{uid}` not found."),
            ),
        },
        ("POST", ["dumps"]) => {
            let uid = s.tasks.len() as u64;
            let fail = s.fail_dumps;
            s.tasks.push(Task {
                uid,
                index: None,
                kind: "dumpCreation".into(),
                status: "enqueued".into(),
                docs: Vec::new(),
                enqueued_at: now,
                fail,
                details: json!({"dumpUid": format!("{}", now.format("%Y%m%d-%H%M%S%3f"))}),
                error: Value::Null,
            });
            (
                202,
                json!({"taskUid": uid, "indexUid": null, "status": "enqueued", "type": "dumpCreation", "enqueuedAt": now.to_rfc3339()}),
                Duration::ZERO,
            )
        }
        ("POST", ["indexes", uid, "documents"]) => {
            let Ok(Value::Array(docs)) = serde_json::from_slice::<Value>(&r.body) else {
                return error(
                    400,
                    "malformed_payload",
                    "invalid_request",
                    "The json payload provided is malformed.",
                );
            };
            let id = s.tasks.len() as u64;
            let fail = s.fail_documents;
            s.tasks.push(Task {
                uid: id,
                index: Some(uid.to_string()),
                kind: "documentAdditionOrUpdate".into(),
                status: "enqueued".into(),
                docs: docs
                    .iter()
                    .filter_map(|d| d.get("id").and_then(Value::as_u64))
                    .collect(),
                enqueued_at: now,
                fail,
                details: json!({"receivedDocuments": docs.len()}),
                error: Value::Null,
            });
            (
                202,
                json!({"taskUid": id, "indexUid": uid, "status": "enqueued", "type": "documentAdditionOrUpdate", "enqueuedAt": now.to_rfc3339()}),
                Duration::ZERO,
            )
        }
        _ => error(404, "not_found", "invalid_request", "Not found."),
    };
    (status, value, delay.max(hang))
}

/// The platform API (and web app): `/healthz`, `/api/health`, and `/admin/reindex`, which
/// empties nothing and feeds `count` documents to the index in batches of 100.
#[derive(Clone)]
pub struct FakePlatform {
    pub base: String,
    pub state: Arc<Mutex<PlatformState>>,
}

#[derive(Default)]
pub struct PlatformState {
    /// `/healthz` and `/api/health` answer this status (200 by default).
    pub health_status: Option<u16>,
    /// And wait this long first.
    pub health_delay: Duration,
    /// `/admin/reindex` answers this instead of starting.
    pub reindex_status: Option<u16>,
    pub reindex_calls: Vec<Option<String>>,
}

impl FakePlatform {
    pub async fn start(meili: &FakeMeili, token: &str, index: &str, count: usize) -> FakePlatform {
        let state = Arc::new(Mutex::new(PlatformState::default()));
        let st = state.clone();
        let (host, key, index, token) = (
            meili.host.clone(),
            meili.key.clone(),
            index.to_string(),
            token.to_string(),
        );
        let handler: Handler = Arc::new(move |r: Req| {
            let mut s = st.lock().unwrap();
            match (r.method.as_str(), r.path.as_str()) {
                ("GET", "/healthz") | ("GET", "/api/health") => {
                    let status = s.health_status.unwrap_or(200);
                    let word = if status == 200 { "ok" } else { "degraded" };
                    (status, json!({"status": word}), s.health_delay)
                }
                // The platform's upload test (an upload to the media bucket and back), with the
                // admin token.
                ("POST", "/uploads/test") => {
                    if r.headers.get("authorization") != Some(&format!("Bearer {token}")) {
                        return (401, json!({"error": "unauthorized"}), Duration::ZERO);
                    }
                    (200, json!({"ok": true}), Duration::ZERO)
                }
                ("POST", "/admin/reindex") => {
                    let auth = r.headers.get("authorization").cloned();
                    s.reindex_calls.push(auth.clone());
                    if auth != Some(format!("Bearer {token}")) {
                        return (401, json!({"error": "unauthorized"}), Duration::ZERO);
                    }
                    if let Some(st) = s.reindex_status {
                        return (
                            st,
                            json!({"error": "reindex failed to start: database unreachable"}),
                            Duration::ZERO,
                        );
                    }
                    let (host, key, index) = (host.clone(), key.clone(), index.clone());
                    tokio::spawn(async move {
                        let client = reqwest::Client::new();
                        // A real platform takes a moment to read the database before its
                        // first batch: drbot must not call the reindex done meanwhile.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let mut sent = 0;
                        while sent < count {
                            let n = 100.min(count - sent);
                            let docs: Vec<Value> = (sent..sent + n)
                                .map(|i| json!({"id": i, "title": format!("artwork {i}")}))
                                .collect();
                            let _ = client
                                .post(format!("{host}/indexes/{index}/documents"))
                                .bearer_auth(&key)
                                .json(&docs)
                                .send()
                                .await;
                            sent += n;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    });
                    (202, json!({"status": "started"}), Duration::ZERO)
                }
                _ => (404, json!({"error": "not found"}), Duration::ZERO),
            }
        });
        let base = serve(handler).await;
        FakePlatform { base, state }
    }
}
