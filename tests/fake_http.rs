//! A small scripted HTTP server for the stakeholder channels (Resend, a status page webhook):
//! records every request with its headers, answers from a per-path script (status, body,
//! Retry-After, delay), and otherwise 200 with a Resend-style `{"id": …}`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct State {
    hits: Vec<Hit>,
    script: HashMap<String, VecDeque<Answer>>,
    default_delay: Duration,
}

#[derive(Clone)]
pub struct FakeHttp {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl FakeHttp {
    pub async fn start() -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
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
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let length: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let is_head = method == "HEAD";
                        let answer = {
                            let mut s = st.lock().unwrap();
                            s.hits.push(Hit {
                                method,
                                path: path.clone(),
                                headers,
                                body,
                            });
                            let default = Answer {
                                status: 200,
                                body: json!({ "id": format!("fake-{}", s.hits.len()) }),
                                retry_after: None,
                                delay: s.default_delay,
                            };
                            s.script
                                .get_mut(&path)
                                .and_then(VecDeque::pop_front)
                                .unwrap_or(default)
                        };
                        tokio::time::sleep(answer.delay).await;
                        let text = answer.body.to_string();
                        let retry = answer
                            .retry_after
                            .map(|r| format!("retry-after: {r}\r\n"))
                            .unwrap_or_default();
                        let head = format!(
                            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\n\r\n",
                            answer.status,
                            text.len()
                        );
                        // A HEAD is answered without its body, as HTTP says.
                        let body = if is_head { "" } else { text.as_str() };
                        if write.write_all(head.as_bytes()).await.is_err()
                            || write.write_all(body.as_bytes()).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        FakeHttp { base, state }
    }

    /// Queues answers for a path, used in order before the default.
    pub fn script(&self, path: &str, answers: Vec<Answer>) {
        self.state
            .lock()
            .unwrap()
            .script
            .insert(path.to_string(), answers.into());
    }

    /// Every answer waits this long (a slow service).
    pub fn slow(&self, delay: Duration) {
        self.state.lock().unwrap().default_delay = delay;
    }

    /// What the service acted on, as Resend does: one delivery per idempotency key (a repeat
    /// of a key gets the first answer back and sends nothing).
    pub fn delivered(&self, path: &str) -> usize {
        let mut keys: Vec<String> = self
            .hits(path)
            .into_iter()
            .map(|h| {
                h.headers
                    .get("idempotency-key")
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}
