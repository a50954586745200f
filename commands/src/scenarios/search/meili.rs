//! Meilisearch's HTTP API, as documented (v1.x): `/health` (no key), everything else with
//! `Authorization: Bearer <key>`; errors are `{message, code, type, link}`; writes answer
//! 202 with a task followed through `/tasks`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::context::Engine;
use crate::http;

/// Why a call to Meilisearch did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum MeiliError {
    /// No `[search]` in the config, or its variables unset.
    #[error("{0}")]
    NotConfigured(String),
    /// No answer: unreachable, timed out, broken off.
    #[error("Meilisearch at {host} {why}")]
    Unreachable {
        /// The host, without credentials.
        host: String,
        /// `cannot connect`, `timed out after 10 s`.
        why: String,
    },
    /// Meilisearch answered with its error JSON.
    #[error("Meilisearch answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Its `code` (`invalid_api_key`, `index_not_found`).
        code: String,
        /// Its `message`.
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("Meilisearch answered {status} with something unreadable: {body}")]
    Garbled {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

impl MeiliError {
    /// Its `code`, when Meilisearch gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MeiliError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One Meilisearch task.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its uid.
    pub uid: u64,
    /// Its index, if any.
    #[serde(default)]
    pub index_uid: Option<String>,
    /// enqueued, processing, succeeded, failed, canceled.
    pub status: String,
    /// Its type (`dumpCreation`, `documentAdditionOrUpdate`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific details (`dumpUid`, `receivedDocuments`).
    #[serde(default)]
    pub details: Option<Value>,
    /// The error, for a failed task.
    #[serde(default)]
    pub error: Option<Value>,
    /// When it was enqueued.
    #[serde(default)]
    pub enqueued_at: Option<DateTime<Utc>>,
}

impl Task {
    /// Its error in one line: `message (code)`.
    pub fn error_text(&self) -> String {
        self.error
            .as_ref()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message"),
                    e.get("code").and_then(Value::as_str).unwrap_or("no code")
                )
            })
            .unwrap_or_else(|| "no error given".to_string())
    }
}

/// A page of `/tasks`.
#[derive(Clone, Debug, Deserialize)]
pub struct Tasks {
    /// The tasks.
    pub results: Vec<Task>,
    /// How many match the filter.
    #[serde(default)]
    pub total: Option<u64>,
}

/// `/indexes/{uid}/stats`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Documents in the index.
    pub number_of_documents: u64,
    /// Whether it is indexing now.
    #[serde(default)]
    pub is_indexing: bool,
}

/// A Meilisearch server.
pub struct Meili {
    client: reqwest::Client,
    timeout: Duration,
    host: String,
    key: Option<String>,
    shown: String,
}

impl Meili {
    /// The configured server (`[search] host_env`, `key_env`).
    pub fn of(engine: &Engine) -> Result<Meili, MeiliError> {
        let s = engine.config().search.as_ref().ok_or_else(|| {
            MeiliError::NotConfigured(
                "No Meilisearch is configured: add [search] (and MEILI_HOST, MEILI_MASTER_KEY)."
                    .to_string(),
            )
        })?;
        let env = engine.env();
        let host = env(&s.host_env)
            .filter(|h| !h.trim().is_empty())
            .ok_or_else(|| {
                MeiliError::NotConfigured(format!(
                    "Meilisearch's address is not set: put it in {}.",
                    s.host_env
                ))
            })?;
        let key = env(&s.key_env).filter(|k| !k.is_empty());
        Meili::new(host.trim(), key, Duration::from_secs(s.timeout_secs))
    }

    /// A server at `host` with `key`; each request ends within `timeout`.
    pub fn new(host: &str, key: Option<String>, timeout: Duration) -> Result<Meili, MeiliError> {
        let client = http::client(timeout).map_err(|e| MeiliError::NotConfigured(e.to_string()))?;
        Ok(Meili {
            client,
            timeout,
            host: host.trim_end_matches('/').to_string(),
            key,
            shown: crate::redact::redact_url(host.trim_end_matches('/')),
        })
    }

    /// The host as it may be shown.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: bool,
    ) -> Result<Value, MeiliError> {
        let mut req = self.client.request(method, format!("{}{path}", self.host));
        if auth && let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.map_err(|e| MeiliError::Unreachable {
            host: self.shown.clone(),
            why: http::describe(&e, self.timeout),
        })?;
        let status = r.status().as_u16();
        let read =
            http::read_bounded(r, http::MAX_BODY)
                .await
                .map_err(|e| MeiliError::Unreachable {
                    host: self.shown.clone(),
                    why: http::describe(&e, self.timeout),
                })?;
        let body = read.text();
        if read.cut {
            return Err(MeiliError::Garbled {
                status,
                body: format!(
                    "an answer over {} KiB (not read further): {}",
                    http::MAX_BODY / 1024,
                    crate::render::truncate(body.trim(), 80)
                ),
            });
        }
        let value: Option<Value> = serde_json::from_slice(&read.bytes).ok();
        if (200..300).contains(&status) {
            return value.ok_or_else(|| MeiliError::Garbled {
                status,
                body: crate::render::truncate(body.trim(), 120),
            });
        }
        match value.as_ref().and_then(|v| {
            Some((
                v.get("code")?.as_str()?.to_string(),
                v.get("message")?.as_str()?.to_string(),
            ))
        }) {
            Some((code, message)) => Err(MeiliError::Api {
                status,
                code,
                message: crate::render::truncate(&message, 300),
            }),
            None => Err(MeiliError::Garbled {
                status,
                body: crate::render::truncate(body.trim(), 120),
            }),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        auth: bool,
    ) -> Result<T, MeiliError> {
        let v = self.call(reqwest::Method::GET, path, auth).await?;
        serde_json::from_value(v.clone()).map_err(|_| MeiliError::Garbled {
            status: 200,
            body: crate::render::truncate(&v.to_string(), 120),
        })
    }

    /// `GET /health`: `available`, or why not.
    pub async fn health(&self) -> Result<String, MeiliError> {
        let v = self.call(reqwest::Method::GET, "/health", false).await?;
        Ok(v.get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// `GET /version`: its `pkgVersion`.
    pub async fn version(&self) -> Result<String, MeiliError> {
        let v = self.call(reqwest::Method::GET, "/version", true).await?;
        Ok(v.get("pkgVersion")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// `GET /indexes/{uid}/stats`.
    pub async fn stats(&self, index: &str) -> Result<Stats, MeiliError> {
        self.get(&format!("/indexes/{}/stats", encode(index)), true)
            .await
    }

    /// `GET /tasks` with a query (`statuses=failed&indexUids=artworks&…`).
    pub async fn tasks(&self, query: &str) -> Result<Tasks, MeiliError> {
        self.get(&format!("/tasks?{query}"), true).await
    }

    /// `GET /tasks/{uid}`.
    pub async fn task(&self, uid: u64) -> Result<Task, MeiliError> {
        self.get(&format!("/tasks/{uid}"), true).await
    }

    /// `POST /dumps`: the task's uid.
    pub async fn create_dump(&self) -> Result<u64, MeiliError> {
        let v = self.call(reqwest::Method::POST, "/dumps", true).await?;
        v.get("taskUid")
            .and_then(Value::as_u64)
            .ok_or_else(|| MeiliError::Garbled {
                status: 202,
                body: crate::render::truncate(&v.to_string(), 120),
            })
    }
}

/// A path segment, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A query value, percent-encoded (RFC 3339 times hold `:` and `+`).
pub fn query_value(s: &str) -> String {
    encode(s)
}
