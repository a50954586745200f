//! Stakeholder notifications (SPEC §8): written for stakeholders, queued in a durable outbox
//! in sled, then delivered with retries and backoff.
//!
//! Each notification's request (body and idempotency key) is fixed when it is queued, so every
//! retry is the same request: Resend and the status page get the same `Idempotency-Key`, and
//! Discord the same `nonce` with `enforce_nonce`. Delivery is at least once; the keys make it
//! effectively exactly once, even when drbot is killed mid-delivery.

use std::time::Duration as StdDuration;

use chrono::Duration;
use drbot_state::{DeliveryStatus, EntryKind, Incident, NewEntry, OutboxItem, Proof};
use serde_json::json;

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::options::required;
use crate::render;
use crate::reply::Reply;

/// Attempts before a notification is given up on.
pub const MAX_ATTEMPTS: u32 = 8;
/// The outbox channel of PagerDuty events: pages write them, delivery sends them.
pub const PAGERDUTY: &str = "pagerduty";
/// Backoff after the first failure; it doubles each time, up to [`MAX_BACKOFF_SECS`].
const FIRST_BACKOFF_SECS: i64 = 5;
const MAX_BACKOFF_SECS: i64 = 600;
/// The longest wait a remote service's `Retry-After` can ask for.
pub const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// What stakeholders are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Email subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// `investigating`, `update` or `resolved` (for the status page).
    pub status: &'static str,
    /// What is affected, as stakeholders name it.
    pub components: Vec<&'static str>,
}

/// The kind of notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// The incident was declared.
    Declared,
    /// An update written by the comms person.
    Update(String),
    /// Service is restored.
    Resolved,
}

/// Writes a notice for stakeholders (not engineers): what is affected, since when, what is
/// being done, when the next update comes.
pub fn notice(engine: &Engine, incident: &Incident, kind: &NoticeKind) -> Notice {
    let now = engine.now();
    // What the scenario's runbook says is affected; all of it when this build no longer
    // knows the scenario.
    let comps = engine
        .runbook()
        .of(incident)
        .map_or(vec!["All services"], |s| s.affected().to_vec());
    let affected = comps.join(", ");
    let since = render::time(incident.declared_at, now);
    let next = render::time(
        now + Duration::minutes(engine.config().status.every_mins.max(30) as i64),
        now,
    );
    let sev = incident.severity.to_uppercase();
    match kind {
        NoticeKind::Declared => Notice {
            subject: format!("[{sev}] Service disruption: {affected}"),
            text: format!(
                "We are investigating a disruption affecting {affected} since {since}.\n\
                 Our team is restoring service following our recovery plan.\n\
                 Next update by {next}. (Reference {})",
                incident.id
            ),
            status: "investigating",
            components: comps,
        },
        NoticeKind::Update(message) => Notice {
            subject: format!("[{sev}] Update: {affected}"),
            text: format!(
                "{message}\n\nAffected since {since}: {affected}.\nNext update by {next}. (Reference {})",
                incident.id
            ),
            status: "update",
            components: comps,
        },
        NoticeKind::Resolved => {
            let at = incident.resolved_at.unwrap_or(now);
            Notice {
                subject: format!("[Resolved] {affected}"),
                text: format!(
                    "The disruption affecting {affected} is resolved as of {} (it lasted {}).\n\
                     We will share what happened and what we are changing. (Reference {})",
                    render::time(at, now),
                    render::duration(at - incident.declared_at),
                    incident.id
                ),
                status: "resolved",
                components: comps,
            }
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The configured channels, as (name, request body) for a notice; the key is added later.
fn requests(
    engine: &Engine,
    incident: &Incident,
    n: &Notice,
) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    if let Some(cfg) = &engine.config().notify {
        if let (Some(from), false) = (&cfg.email_from, cfg.email_to.is_empty()) {
            let html = n
                .text
                .lines()
                .map(|l| format!("<p>{}</p>", html_escape(l)))
                .collect::<String>();
            out.push((
                "email",
                json!({ "from": from, "to": cfg.email_to, "subject": n.subject, "text": n.text, "html": html }),
            ));
        }
        if (engine.env())(&cfg.statuspage_webhook_env).is_some_and(|u| !u.trim().is_empty()) {
            out.push((
                "statuspage",
                json!({
                    "incident": incident.id.to_string(),
                    "status": n.status,
                    "message": n.text,
                    "components": n.components,
                }),
            ));
        }
    }
    if let Some(channel) = engine
        .config()
        .discord
        .as_ref()
        .and_then(|d| d.stakeholder_channel_id)
    {
        out.push((
            "discord",
            json!({ "channel": channel, "content": format!("**{}**\n{}", n.subject, n.text) }),
        ));
    }
    out
}

/// A delivery as queued: its request fixed now, due at once. A Discord message gets Discord's
/// own duplicate guard, a nonce (at most 25 characters) it enforces.
pub fn queued(
    id: u64,
    channel: &str,
    key: String,
    incident: Option<drbot_state::IncidentId>,
    summary: String,
    mut body: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> OutboxItem {
    if channel == "discord" {
        body["nonce"] = json!(format!("drbot-n{id}"));
        body["enforce_nonce"] = json!(true);
    }
    OutboxItem {
        id,
        channel: channel.to_string(),
        key,
        incident,
        summary,
        body: body.to_string(),
        created_at: now,
        attempts: 0,
        next_at: now,
        status: DeliveryStatus::Pending,
        last_error: None,
        delivered_ref: None,
    }
}

/// True when at least one stakeholder channel is configured.
pub fn has_channel(engine: &Engine) -> bool {
    let notify = engine.config().notify.as_ref();
    let email = notify.is_some_and(|n| n.email_from.is_some() && !n.email_to.is_empty());
    let page = notify.is_some_and(|n| {
        (engine.env())(&n.statuspage_webhook_env).is_some_and(|u| !u.trim().is_empty())
    });
    let discord = engine
        .config()
        .discord
        .as_ref()
        .is_some_and(|d| d.stakeholder_channel_id.is_some());
    email || page || discord
}

/// Queues a notice on every configured channel, with a timeline entry, in one transaction.
pub fn enqueue(
    engine: &Engine,
    ctx: &Context,
    incident: &Incident,
    kind: &NoticeKind,
) -> Result<Vec<OutboxItem>, CommandError> {
    let n = notice(engine, incident, kind);
    let reqs = requests(engine, incident, &n);
    if reqs.is_empty() {
        return Err(CommandError::Refused(
            "No stakeholder channel is configured: set [notify] email_from and email_to, \
             the status page webhook variable, or [discord] stakeholder_channel_id."
                .to_string(),
        ));
    }
    let now = engine.now();
    let names: Vec<&str> = reqs.iter().map(|(c, _)| *c).collect();
    engine
        .store()
        .enqueue(Some(incident.id), reqs.len(), |ids| {
            let items = ids
                .iter()
                .zip(&reqs)
                .map(|(id, (channel, body))| {
                    queued(
                        *id,
                        channel,
                        format!("drbot-{}-n{id}", incident.id),
                        Some(incident.id),
                        n.subject.clone(),
                        body.clone(),
                        now,
                    )
                })
                .collect();
            let entry = engine.entry(
                ctx,
                EntryKind::Notification,
                format!(
                    "Stakeholder notice queued for {}: {}",
                    names.join(", "),
                    n.subject
                ),
            );
            Ok::<_, CommandError>((items, vec![entry]))
        })
}

/// How one attempt ended.
enum Attempt {
    /// Accepted; what the channel called it (Discord: the message's id).
    Delivered(Option<String>),
    Retry(String, Option<i64>),
    Permanent(String),
}

fn system(engine: &Engine, text: String) -> NewEntry {
    NewEntry {
        at: engine.now(),
        actor: "drbot".to_string(),
        proof: Proof::System,
        kind: EntryKind::Notification,
        text,
    }
}

impl Engine {
    /// Delivers every notification that is due; returns how many were delivered now.
    pub async fn deliver_due(&self) -> Result<usize, CommandError> {
        let now = self.now();
        let due: Vec<OutboxItem> = self
            .store()
            .pending_outbox()?
            .into_iter()
            .filter(|i| i.next_at <= now)
            .collect();
        let mut delivered = 0;
        for item in due {
            let result = self.attempt(&item).await;
            let now = self.now();
            self.store().update_outbox(item.id, |i| {
                if i.status != DeliveryStatus::Pending {
                    return Ok::<_, CommandError>(Vec::new());
                }
                i.attempts += 1;
                let channel = i.channel.clone();
                let what = if i.key.contains("-PAGE-") {
                    "Page"
                } else {
                    "Stakeholder notice"
                };
                Ok(match &result {
                    Attempt::Delivered(reference) => {
                        i.status = DeliveryStatus::Delivered;
                        i.last_error = None;
                        i.delivered_ref = reference.clone();
                        vec![system(
                            self,
                            format!("{what} delivered by {channel}: {}", i.summary),
                        )]
                    }
                    Attempt::Permanent(e) => {
                        i.status = DeliveryStatus::Failed;
                        i.last_error = Some(e.clone());
                        vec![system(
                            self,
                            format!("{what} by {channel} failed for good: {e}"),
                        )]
                    }
                    Attempt::Retry(e, after) => {
                        i.last_error = Some(e.clone());
                        if i.attempts >= MAX_ATTEMPTS {
                            i.status = DeliveryStatus::Failed;
                            vec![system(
                                self,
                                format!(
                                    "{what} by {channel} failed after {} attempts: {e}",
                                    i.attempts
                                ),
                            )]
                        } else {
                            let backoff = (FIRST_BACKOFF_SECS << (i.attempts - 1).min(10))
                                .min(MAX_BACKOFF_SECS);
                            // Both are bounded (an hour, ten minutes): this cannot overflow.
                            let wait = after
                                .unwrap_or(0)
                                .clamp(0, MAX_RETRY_AFTER_SECS)
                                .max(backoff);
                            i.next_at = now + Duration::seconds(wait);
                            Vec::new()
                        }
                    }
                })
            })?;
            if matches!(result, Attempt::Delivered(_)) {
                delivered += 1;
            }
        }
        self.store().flush().await?;
        Ok(delivered)
    }

    async fn attempt(&self, item: &OutboxItem) -> Attempt {
        let env = self.env();
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&item.body) else {
            return Attempt::Permanent("the stored request is unreadable".to_string());
        };
        let total =
            StdDuration::from_secs(self.config().notify.as_ref().map_or(15, |n| n.timeout_secs));
        let client = match crate::http::client(total) {
            Ok(c) => c,
            Err(e) => return Attempt::Retry(e.to_string(), None),
        };
        let request = match item.channel.as_str() {
            "email" => {
                let Some(cfg) = &self.config().notify else {
                    return Attempt::Permanent("[notify] is no longer configured".to_string());
                };
                let Some(key) = env("RESEND_API_KEY").filter(|k| !k.trim().is_empty()) else {
                    return Attempt::Retry("RESEND_API_KEY is not set".to_string(), None);
                };
                client
                    .post(format!("{}/emails", cfg.resend_base.trim_end_matches('/')))
                    .bearer_auth(key.trim())
                    .header("Idempotency-Key", &item.key)
                    .json(&body)
            }
            "statuspage" => {
                let Some(cfg) = &self.config().notify else {
                    return Attempt::Permanent("[notify] is no longer configured".to_string());
                };
                let Some(url) = env(&cfg.statuspage_webhook_env).filter(|u| !u.trim().is_empty())
                else {
                    return Attempt::Retry(
                        format!("{} is not set", cfg.statuspage_webhook_env),
                        None,
                    );
                };
                client
                    .post(url.trim())
                    .header("Idempotency-Key", &item.key)
                    .json(&body)
            }
            "discord" => {
                let Some(dc) = &self.config().discord else {
                    return Attempt::Permanent("[discord] is no longer configured".to_string());
                };
                let Some(token) = env(&dc.token_env).filter(|t| !t.trim().is_empty()) else {
                    return Attempt::Retry(format!("{} is not set", dc.token_env), None);
                };
                let channel = body["channel"].as_u64().unwrap_or_default();
                let mut message = body.clone();
                if let Some(m) = message.as_object_mut() {
                    m.remove("channel");
                    // Nobody is pinged unless the message names whom (a page's contacts).
                    if !m.contains_key("allowed_mentions") {
                        m.insert("allowed_mentions".to_string(), json!({ "parse": [] }));
                    }
                }
                client
                    .post(format!(
                        "{}/api/v10/channels/{channel}/messages",
                        dc.api_base.trim_end_matches('/')
                    ))
                    .header("Authorization", format!("Bot {}", token.trim()))
                    .json(&message)
            }
            PAGERDUTY => {
                let Some(p) = &self.config().paging else {
                    return Attempt::Permanent("[paging] is no longer configured".to_string());
                };
                let Some(var) = &p.pagerduty_routing_key_env else {
                    return Attempt::Permanent(
                        "[paging] pagerduty_routing_key_env is no longer set".to_string(),
                    );
                };
                let Some(key) = env(var).filter(|k| !k.trim().is_empty()) else {
                    return Attempt::Retry(format!("{var} is not set"), None);
                };
                // The routing key is added at send time: it is never stored.
                let mut event = body.clone();
                event["routing_key"] = json!(key.trim());
                client
                    .post(format!(
                        "{}/v2/enqueue",
                        p.events_base.trim_end_matches('/')
                    ))
                    .json(&event)
            }
            other => return Attempt::Permanent(format!("unknown channel {other}")),
        };
        match request.send().await {
            Err(e) => Attempt::Retry(
                self.secrets()
                    .redact(&crate::http::describe(&e.without_url(), total)),
                None,
            ),
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, self.now()));
                let text = crate::http::bounded_text(resp, crate::http::MAX_BODY).await;
                let detail = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| render::truncate(&text, 200));
                // A service may echo the key it was sent; it is not repeated anywhere.
                let detail = self.secrets().redact(&detail);
                if status.is_success() {
                    let reference = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_string));
                    Attempt::Delivered(reference)
                } else if status.as_u16() == 429
                    || status.is_server_error()
                    || status.as_u16() == 408
                {
                    Attempt::Retry(format!("HTTP {}: {detail}", status.as_u16()), retry_after)
                } else {
                    Attempt::Permanent(format!("HTTP {}: {detail}", status.as_u16()))
                }
            }
        }
    }
}

/// A `Retry-After` header as seconds to wait: delta-seconds or an HTTP date (RFC 9110),
/// never negative, at most [`MAX_RETRY_AFTER_SECS`]; `None` when it is neither.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let v = value.trim();
    let secs = if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() {
            return None;
        }
        // Clamped before the cast, so no value can overflow.
        n.ceil().clamp(0.0, MAX_RETRY_AFTER_SECS as f64) as i64
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (at.with_timezone(&chrono::Utc) - now).num_seconds()
    };
    Some(secs.clamp(0, MAX_RETRY_AFTER_SECS))
}

/// `/notify stakeholders`.
pub async fn stakeholders(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    let message = required(inv, "message")?.to_string();
    let items = enqueue(engine, ctx, &incident, &NoticeKind::Update(message))?;
    engine.store().flush().await?;
    engine.deliver_due().await?;
    Ok(Reply::done(delivery_line(engine, &items)))
}

/// One line on where a batch of notifications stands now.
pub fn delivery_line(engine: &Engine, items: &[OutboxItem]) -> String {
    let all = engine.store().outbox().unwrap_or_default();
    let states: Vec<String> = items
        .iter()
        .map(|i| {
            let now = all.iter().find(|x| x.id == i.id).unwrap_or(i);
            let why = now.last_error.as_deref();
            match now.status {
                DeliveryStatus::Delivered => format!("{}: delivered", now.channel),
                DeliveryStatus::Failed => {
                    format!("{}: FAILED ({})", now.channel, why.unwrap_or("unknown"))
                }
                DeliveryStatus::Pending => {
                    format!("{}: will retry ({})", now.channel, why.unwrap_or("queued"))
                }
            }
        })
        .collect();
    format!("Stakeholder notice sent — {}.", states.join("; "))
}

/// Queues the stakeholder notice for a declare (at or above `[notify] min_severity`) or a
/// resolve; returns a line for the reply. A failure to queue never undoes the command.
pub(crate) fn notify_on(
    engine: &Engine,
    ctx: &Context,
    incident: &Incident,
    kind: &NoticeKind,
) -> String {
    let min = engine
        .config()
        .notify
        .as_ref()
        .map_or("sev2", |n| n.min_severity.as_str());
    if *kind == NoticeKind::Declared {
        let rank = |s: &str| crate::config::SEVERITIES.iter().position(|x| *x == s);
        if rank(&incident.severity) > rank(min) {
            return String::new();
        }
    }
    if !has_channel(engine) {
        return String::new();
    }
    match enqueue(engine, ctx, incident, kind) {
        Ok(items) => {
            let channels: Vec<&str> = items.iter().map(|i| i.channel.as_str()).collect();
            format!(
                "\nStakeholders are being notified ({}).",
                channels.join(", ")
            )
        }
        Err(e) => format!("\nStakeholders were not notified: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date_bounded_to_an_hour() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .expect("test setup")
            .with_timezone(&chrono::Utc);
        for (v, want) in [
            ("30", Some(30)),
            (" 1.2 ", Some(2)),
            ("1e30", Some(MAX_RETRY_AFTER_SECS)),
            ("-5", Some(0)),
            ("nan", None),
            ("inf", None),
            ("", None),
            ("soon", None),
            ("Tue, 01 Dec 2026 10:01:00 GMT", Some(60)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Fri, 01 Jan 9999 00:00:00 GMT", Some(MAX_RETRY_AFTER_SECS)),
        ] {
            assert_eq!(retry_after(v, now), want, "{v:?}");
        }
    }
}
