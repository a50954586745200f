//! A local fake of the parts of Discord drbot uses, following Discord's documented payloads:
//! `GET /gateway`, command registration, interaction callbacks and edits, channel messages and
//! reactions over HTTP; and a gateway over ws:// that says HELLO, takes IDENTIFY, sends READY,
//! answers heartbeats, and dispatches the events a test injects.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const APP_ID: u64 = 99;
pub const BOT_ID: u64 = 4242;

/// One HTTP request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: Instant,
    /// What the fake answered (a created message, with its id).
    pub reply: Value,
}

/// How REST calls whose path contains a given text misbehave (a broken Discord).
#[derive(Clone, Debug)]
pub enum Hostile {
    /// 429 with this `Retry-After` header (and the same in the body's `retry_after`).
    RateLimited(String),
    /// 500 with a 10 MB body.
    Huge,
    /// Accepts the request and never answers.
    Silent,
}

/// Interaction tokens: when each was born (its interaction's callback), and how long they live
/// (Discord: 15 minutes; a test sets seconds).
#[derive(Debug, Default)]
pub struct Tokens {
    life: Option<Duration>,
    born: std::collections::HashMap<String, Instant>,
}

/// The running fake.
pub struct FakeDiscord {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Seen>>>,
    events: mpsc::UnboundedSender<Value>,
    pub identified: Arc<Mutex<Option<Value>>>,
    hostile: Arc<Mutex<Vec<(String, Hostile)>>>,
    tokens: Arc<Mutex<Tokens>>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", http.local_addr().unwrap());
        let ws_url = format!("ws://{}", ws.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let identified = Arc::new(Mutex::new(None));
        let (events, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let seen = requests.clone();
        let url = ws_url.clone();
        let hostile: Arc<Mutex<Vec<(String, Hostile)>>> = Arc::default();
        let bad = hostile.clone();
        let tokens: Arc<Mutex<Tokens>> = Arc::default();
        let clock = tokens.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = http.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let url = url.clone();
                let bad = bad.clone();
                let clock = clock.clone();
                tokio::spawn(async move {
                    let _ = serve_http(stream, seen, url, bad, clock).await;
                });
            }
        });
        let ident = identified.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = ws.accept().await else {
                    return;
                };
                let rx = rx.clone();
                let ident = ident.clone();
                let url = ws_url.clone();
                tokio::spawn(async move {
                    let _ = serve_gateway(stream, rx, ident, url).await;
                });
            }
        });
        FakeDiscord {
            base,
            requests,
            events,
            identified,
            hostile,
            tokens,
        }
    }

    /// Interaction tokens die this long after their interaction's callback: every webhook call
    /// with one after that is refused 401, `50027 Invalid Webhook Token`, as Discord does.
    pub fn token_lifetime(&self, life: Duration) {
        self.tokens.lock().unwrap().life = Some(life);
    }

    /// From now on, REST calls whose path contains `path` misbehave as `how`.
    pub fn hostile(&self, path: &str, how: Hostile) {
        self.hostile.lock().unwrap().push((path.to_string(), how));
    }

    /// Milliseconds from each interaction's dispatch (`sent`, by interaction id) to its first
    /// callback reaching the fake; waits until there are `total` of them, or `within` passes.
    #[allow(dead_code)] // the benchmarks' (bot/benches), not the tests'
    pub async fn ack_latencies(
        &self,
        sent: &std::collections::HashMap<u64, Instant>,
        total: usize,
        within: std::time::Duration,
    ) -> Vec<f64> {
        let until = Instant::now() + within;
        loop {
            let latencies: Vec<f64> = self
                .seen()
                .into_iter()
                .filter_map(|r| {
                    let id: u64 = r
                        .path
                        .strip_prefix("/api/v10/interactions/")?
                        .split('/')
                        .next()?
                        .parse()
                        .ok()?;
                    let at = sent.get(&id)?;
                    Some(r.at.duration_since(*at).as_secs_f64() * 1000.0)
                })
                .collect();
            if latencies.len() >= total || Instant::now() >= until {
                return latencies;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Discord behaves again.
    pub fn heal(&self) {
        self.hostile.lock().unwrap().clear();
    }

    /// Dispatches a gateway event (`t`, `d`).
    pub fn dispatch(&self, t: &str, d: Value) {
        let _ = self.events.send(json!({ "t": t, "d": d }));
    }

    /// Waits until a request matching `pred` arrives (at most `within`).
    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&Seen) -> bool) -> Option<Seen> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(s) = self
                .requests
                .lock()
                .unwrap()
                .iter()
                .find(|s| pred(s))
                .cloned()
            {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// All requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }
}

/// Which of Discord's documented limits a message payload breaks, if any: content 2000; at most
/// 10 embeds; title 256, description 4096, 25 fields (name 256, value 1024), 6000 characters
/// across a message's embeds; 5 action rows.
pub fn limits_broken(body: &Value) -> Option<String> {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let data = if body.get("data").is_some() {
        &body["data"]
    } else {
        body
    };
    if len(&data["content"]) > 2000 {
        return Some("content: must be 2000 or fewer in length".into());
    }
    let embeds = data["embeds"].as_array().cloned().unwrap_or_default();
    if embeds.len() > 10 {
        return Some("embeds: at most 10".into());
    }
    let mut total = 0;
    for e in &embeds {
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if len(&e["title"]) > 256 || len(&e["description"]) > 4096 || fields.len() > 25 {
            return Some("embed title, description or fields over the limit".into());
        }
        total += len(&e["title"]) + len(&e["description"]);
        for f in &fields {
            if len(&f["name"]) > 256 || len(&f["value"]) > 1024 || len(&f["value"]) == 0 {
                return Some("embed field name or value over the limit (or empty)".into());
            }
            total += len(&f["name"]) + len(&f["value"]);
        }
    }
    if total > 6000 {
        return Some("embeds: 6000 characters at most across a message".into());
    }
    if data["components"].as_array().is_some_and(|c| c.len() > 5) {
        return Some("components: at most 5 action rows".into());
    }
    None
}

/// A multipart/form-data upload as Discord reads it: the `payload_json` part is the message,
/// each `files[n]` part an attachment (its name, size, and its text when it is text). A payload
/// that is not JSON is kept as the raw text, which the limits check then refuses.
fn from_multipart(raw: &[u8], boundary: &str) -> Value {
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from.min(hay.len())..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut payload = Value::Null;
    let mut files = Vec::new();
    let mut at = 0;
    while let Some(start) = find(raw, delimiter.as_bytes(), at) {
        let part_start = start + delimiter.len();
        if raw[part_start..].starts_with(b"--") {
            break;
        }
        let Some(end) = find(raw, delimiter.as_bytes(), part_start) else {
            break;
        };
        let part = &raw[part_start..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let headers = String::from_utf8_lossy(&part[..split]).to_string();
            let data = &part[split + 4..];
            let field = |key: &str| {
                headers
                    .split(&format!("{key}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_string)
            };
            match (field("name").as_deref(), field("filename")) {
                (Some("payload_json"), _) => {
                    payload = serde_json::from_slice(data).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(data).into_owned())
                    });
                }
                (_, Some(name)) => files.push(json!({
                    "name": name,
                    "size": data.len(),
                    "text": String::from_utf8_lossy(data),
                })),
                _ => {}
            }
        }
        at = end;
    }
    if let Value::Object(m) = &mut payload {
        m.insert("_files".into(), Value::Array(files));
    }
    payload
}

fn message(id: u64, channel: &str, content: &str) -> Value {
    json!({
        "id": id.to_string(), "channel_id": channel, "guild_id": "1",
        "author": { "id": BOT_ID.to_string(), "username": "drbot", "discriminator": "0", "global_name": null, "avatar": null, "bot": true },
        "content": content, "timestamp": "2026-11-25T03:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0, "components": []
    })
}

async fn serve_http(
    stream: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    ws_url: String,
    hostile: Arc<Mutex<Vec<(String, Hostile)>>>,
    tokens: Arc<Mutex<Tokens>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        let mut content_type = String::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("content-type") {
                    content_type = v.trim().to_string();
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        // JSON; for uploads (multipart/form-data, as Discord documents them) the `payload_json`
        // part, with the files under `_files` (name, size, text).
        let body: Value = match content_type
            .split_once("boundary=")
            .filter(|_| content_type.starts_with("multipart/form-data"))
        {
            Some((_, boundary)) => from_multipart(&body, boundary.trim_matches('"')),
            None => serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        };
        let content = body["content"].as_str().unwrap_or_default().to_string();
        let at = Instant::now();
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bad = hostile
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| path.contains(p.as_str()))
            .map(|(_, h)| h.clone());
        if let Some(how) = bad {
            seen.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                body: Value::Null,
                at: Instant::now(),
                reply: json!({ "hostile": format!("{how:?}") }),
            });
            let (head, text) = match how {
                Hostile::Silent => {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return Ok(());
                }
                Hostile::RateLimited(v) => {
                    let body = format!(
                        "{{\"message\": \"You are being rate limited.\", \"retry_after\": {}, \"global\": false}}",
                        v.parse::<f64>().map_or("1".to_string(), |_| v.clone())
                    );
                    (
                        format!(
                            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: {v}\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        ),
                        body,
                    )
                }
                Hostile::Huge => {
                    let body =
                        format!("{{\"message\": \"{}\", \"code\": 0}}", "x".repeat(10 << 20));
                    (
                        format!(
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        ),
                        body,
                    )
                }
            };
            write.write_all(head.as_bytes()).await?;
            write.write_all(text.as_bytes()).await?;
            continue;
        }
        // An interaction's token is born with its callback and dies after its lifetime.
        let segments: Vec<&str> = path
            .split('?')
            .next()
            .unwrap_or_default()
            .split('/')
            .collect();
        let expired = {
            let mut t = tokens.lock().unwrap();
            if let ["", "api", "v10", "interactions", _, token, "callback"] = segments.as_slice() {
                t.born.entry(token.to_string()).or_insert(at);
            }
            match (segments.as_slice(), t.life) {
                (["", "api", "v10", "webhooks", _, token, ..], Some(life)) => t
                    .born
                    .get(*token)
                    .is_some_and(|b| at.duration_since(*b) > life),
                _ => false,
            }
        };
        // Discord's documented message limits: a payload that breaks one is refused with
        // 50035 "Invalid Form Body", as the real API does.
        let too_big = limits_broken(&body);
        let (status, reply) = if expired {
            (
                401,
                json!({ "message": "Invalid Webhook Token", "code": 50027 }),
            )
        } else if let Some(why) = too_big {
            (
                400,
                json!({ "message": "Invalid Form Body", "code": 50035, "errors": { "_errors": [{ "code": "BASE_TYPE_MAX_LENGTH", "message": why }] } }),
            )
        } else if path.ends_with("/gateway") || path.contains("/gateway?") {
            (200, json!({ "url": ws_url }))
        } else if method == "PUT" && path.contains("/commands") {
            (200, json!([]))
        } else if path.contains("/callback")
            || path.contains("/reactions/")
            || path.contains("/pins/")
            || method == "DELETE"
        {
            (204, Value::Null)
        } else if method == "POST" && path.ends_with("/threads") {
            let parent = path.split('/').nth(4).unwrap_or("2").to_string();
            (
                200,
                json!({ "id": (1500 + n).to_string(), "type": 11, "guild_id": "1", "parent_id": parent,
                        "name": body["name"], "owner_id": BOT_ID.to_string() }),
            )
        } else if method == "POST" && path.starts_with("/api/v10/webhooks/") {
            // An interaction follow-up.
            (200, message(7000 + n, "2", &content))
        } else if path.contains("/messages") {
            let channel = path.split('/').nth(4).unwrap_or("2").to_string();
            (200, message(7000 + n, &channel, &content))
        } else {
            (404, json!({ "message": "404: Not Found", "code": 0 }))
        };
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            body,
            at,
            reply: reply.clone(),
        });
        let text = if reply.is_null() {
            String::new()
        } else {
            reply.to_string()
        };
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            text.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(text.as_bytes()).await?;
    }
}

async fn serve_gateway(
    stream: TcpStream,
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>>,
    identified: Arc<Mutex<Option<Value>>>,
    ws_url: String,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    ws.send(Message::Text(
        json!({ "op": 10, "d": { "heartbeat_interval": 41250 } }).to_string(),
    ))
    .await?;
    let mut seq = 0u64;
    let mut events = events.lock().await;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(Ok(msg)) = incoming else { return Ok(()) };
                let Message::Text(text) = msg else { continue };
                let v: Value = serde_json::from_str(&text)?;
                match v["op"].as_u64() {
                    Some(1) => ws.send(Message::Text(json!({ "op": 11 }).to_string())).await?,
                    Some(2) => {
                        *identified.lock().unwrap() = Some(v.clone());
                        seq += 1;
                        let ready = json!({
                            "op": 0, "t": "READY", "s": seq,
                            "d": {
                                "v": 10,
                                "user": { "id": BOT_ID.to_string(), "username": "drbot", "discriminator": "0", "global_name": null, "avatar": null, "bot": true },
                                "guilds": [{ "id": "1", "unavailable": true }],
                                "session_id": "fake-session",
                                "resume_gateway_url": ws_url,
                                "application": { "id": APP_ID.to_string(), "flags": 0 }
                            }
                        });
                        ws.send(Message::Text(ready.to_string())).await?;
                    }
                    _ => {}
                }
            }
            event = events.recv() => {
                let Some(mut e) = event else { return Ok(()) };
                seq += 1;
                e["op"] = json!(0);
                e["s"] = json!(seq);
                ws.send(Message::Text(e.to_string())).await?;
            }
        }
    }
}

/// Channel 2 is the incident channel; ids from 1000 up are threads under it; others are
/// unrelated text channels.
fn channel_json(channel: u64) -> Value {
    if channel >= 1000 {
        json!({ "id": channel.to_string(), "type": 11, "parent_id": "2" })
    } else {
        json!({ "id": channel.to_string(), "type": 0 })
    }
}

/// `/incident declare`'s interaction data.
pub fn declare(scenario: &str, severity: &str, title: &str) -> Value {
    json!({ "id": "701", "name": "incident", "type": 1, "options": [{
    "name": "declare", "type": 1, "options": [
        { "name": "scenario", "type": 3, "value": scenario },
        { "name": "severity", "type": 3, "value": severity },
        { "name": "title", "type": 3, "value": title }
    ]}]})
}

/// `drbot serve` of `d` on this fake, once its slash commands are registered.
pub async fn serve_on(fake: &FakeDiscord, d: &crate::support::Drbot) -> std::process::Child {
    let serve = d
        .command()
        .arg("serve")
        .env("DISCORD_TOKEN", "fake.bot.token")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    fake.wait_for(std::time::Duration::from_secs(30), |r| {
        r.method == "PUT" && r.path.contains("/commands")
    })
    .await
    .expect("slash commands registered");
    serve
}

/// A slash-command interaction from a guild member, as Discord sends it.
pub fn command(id: u64, user: u64, name: &str, roles: &[u64], channel: u64, data: Value) -> Value {
    json!({
        "id": id.to_string(), "application_id": APP_ID.to_string(), "type": 2,
        "token": format!("tok{id}"), "version": 1,
        "guild_id": "1", "channel_id": channel.to_string(),
        "channel": channel_json(channel),
        "member": {
            "user": { "id": user.to_string(), "username": name, "discriminator": "0", "global_name": null, "avatar": null },
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0,
            "permissions": "0"
        },
        "data": data,
        "locale": "en-US", "guild_locale": "en-US", "app_permissions": "0",
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
        "attachment_size_limit": 8388608
    })
}

/// A reaction added by a guild member, as MESSAGE_REACTION_ADD sends it.
pub fn reaction(
    user: u64,
    name: &str,
    roles: &[u64],
    channel: u64,
    message: &str,
    emoji: &str,
) -> Value {
    json!({
        "user_id": user.to_string(), "channel_id": channel.to_string(), "message_id": message,
        "guild_id": "1", "message_author_id": BOT_ID.to_string(),
        "member": {
            "user": { "id": user.to_string(), "username": name, "discriminator": "0", "global_name": null, "avatar": null },
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0
        },
        "emoji": { "id": null, "name": emoji },
        "burst": false, "burst_colors": [], "type": 0
    })
}

/// A button click on a message, as Discord sends it (a component interaction).
pub fn click(
    id: u64,
    user: u64,
    name: &str,
    roles: &[u64],
    channel: u64,
    custom_id: &str,
) -> Value {
    let mut v = command(
        id,
        user,
        name,
        roles,
        channel,
        json!({ "custom_id": custom_id, "component_type": 2 }),
    );
    v["type"] = json!(3);
    v["message"] = message(9000 + id, &channel.to_string(), "Approval needed");
    v
}

/// A modal's submission, as Discord sends it: one text input per (custom id, value).
pub fn modal_submit(
    id: u64,
    user: u64,
    name: &str,
    roles: &[u64],
    channel: u64,
    custom_id: &str,
    inputs: &[(&str, &str)],
) -> Value {
    let rows: Vec<Value> = inputs
        .iter()
        .map(|(k, v)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": k, "value": v }] }))
        .collect();
    let mut v = command(
        id,
        user,
        name,
        roles,
        channel,
        json!({ "custom_id": custom_id, "components": rows }),
    );
    v["type"] = json!(5);
    v
}

/// A TCP proxy that holds every answer from `upstream` back for `delay`: a slow bucket.
pub async fn slow_proxy(upstream: &str, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                let mut first = [0u8; 1];
                if sr.read_exact(&mut first).await.is_ok() {
                    tokio::time::sleep(delay).await;
                    let _ = cw.write_all(&first).await;
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                }
            });
        }
    });
    addr
}
