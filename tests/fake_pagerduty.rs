//! A local stand-in of PagerDuty's Events API v2, written from its documentation:
//! `POST /v2/enqueue` takes one event (`routing_key` of 32 characters, `event_action` trigger,
//! acknowledge or resolve, `dedup_key` up to 255 characters, and for a trigger a `payload` with
//! `summary` up to 1024 characters, `source` and `severity` critical|error|warning|info) and
//! answers 202 `{status, message, dedup_key}`; anything else is 400 "invalid event". Events with
//! one dedup key are one alert: a second trigger of an open alert pages nobody again.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One event the stand-in accepted or refused.
#[derive(Clone, Debug)]
pub struct Event {
    pub body: Value,
    pub status: u16,
}

#[derive(Clone)]
pub struct FakePagerDuty {
    pub base: String,
    events: Arc<Mutex<Vec<Event>>>,
}

/// Why PagerDuty would refuse this event, if it would.
fn invalid(e: &Value) -> Option<String> {
    let s = |k: &str| e[k].as_str();
    if s("routing_key").is_none_or(|k| k.len() != 32) {
        return Some("routing_key must be a 32 character integration key".into());
    }
    let action = s("event_action").unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Some("event_action must be trigger, acknowledge or resolve".into());
    }
    if s("dedup_key").is_some_and(|k| k.chars().count() > 255) {
        return Some("dedup_key is longer than 255 characters".into());
    }
    if action != "trigger" && s("dedup_key").is_none() {
        return Some("dedup_key is required to acknowledge or resolve".into());
    }
    if action == "trigger" {
        let p = &e["payload"];
        let summary = p["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 1024 {
            return Some("payload.summary is required, at most 1024 characters".into());
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            return Some("payload.source is required".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            return Some("payload.severity must be critical, error, warning or info".into());
        }
    }
    None
}

impl FakePagerDuty {
    pub async fn start() -> FakePagerDuty {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let seen = events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or_default().to_string();
                        let path = parts.next().unwrap_or_default().to_string();
                        let mut length = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let (status, answer) = if path != "/v2/enqueue" {
                            (404, json!({ "status": "not found" }))
                        } else if method != "POST" {
                            (405, json!({ "status": "method not allowed" }))
                        } else {
                            match serde_json::from_slice::<Value>(&body) {
                                Err(_) => (
                                    400,
                                    json!({ "status": "invalid event", "message": "Event object is invalid", "errors": ["not JSON"] }),
                                ),
                                Ok(e) => {
                                    let (status, answer) = match invalid(&e) {
                                        Some(why) => (
                                            400,
                                            json!({ "status": "invalid event", "message": "Event object is invalid", "errors": [why] }),
                                        ),
                                        None => (
                                            202,
                                            json!({ "status": "success", "message": "Event processed", "dedup_key": e["dedup_key"] }),
                                        ),
                                    };
                                    seen.lock().unwrap().push(Event { body: e, status });
                                    (status, answer)
                                }
                            }
                        };
                        let text = answer.to_string();
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            text.len()
                        );
                        let text = if method == "HEAD" { "" } else { text.as_str() };
                        if write.write_all(head.as_bytes()).await.is_err()
                            || write.write_all(text.as_bytes()).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        FakePagerDuty { base, events }
    }

    /// Every event received, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// The accepted events of this action.
    pub fn accepted(&self, action: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e.status == 202 && e.body["event_action"] == action)
            .map(|e| e.body)
            .collect()
    }

    /// Alerts opened: distinct dedup keys of accepted triggers (a repeat pages nobody).
    pub fn alerts(&self) -> usize {
        let mut keys: Vec<String> = self
            .accepted("trigger")
            .iter()
            .map(|e| e["dedup_key"].as_str().unwrap_or_default().to_string())
            .collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }
}
