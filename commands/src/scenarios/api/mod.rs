//! The platform's API and web app: `/api health` — the API's `/healthz` and the web's
//! `/api/health`, each with its status, latency and the body's own `status` when it is JSON.
//! Used by the database scenario ("Restart applications"), the post-recovery checklist, and
//! `drbot check`.

use std::time::{Duration, Instant};

use drbot_state::{EntryKind, StepState};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Invocation, cmd};
use crate::progress::ProgressSink;
use crate::reply::Reply;
use crate::scenario::{Answer, Boxed, Scenario, not_built};

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[cmd(
    "api",
    Some("health"),
    "API and web health endpoints with latency",
    &[],
)];

/// The API and web health checks.
pub struct Api;

/// The api module.
pub const API: Api = Api;

impl Scenario for Api {
    fn name(&self) -> &'static str {
        "api"
    }

    fn commands(&self) -> &'static [CommandSpec] {
        COMMANDS
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move {
            match inv.spec.sub {
                Some("health") => health(engine, ctx, inv).await,
                _ => Err(not_built(inv)),
            }
        })
    }
}

/// What one GET found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Whether it answered 2xx in time.
    pub ok: bool,
    /// One line: `200 in 12 ms (status: ok)`, `timed out after 10 s`, `cannot connect`.
    pub text: String,
}

/// GETs `url` (with a bearer token when given) within `total`.
pub async fn probe(url: &str, bearer: Option<&str>, total: Duration) -> Probe {
    let client = match crate::http::client(total) {
        Ok(c) => c,
        Err(e) => {
            return Probe {
                ok: false,
                text: e.to_string(),
            };
        }
    };
    let started = Instant::now();
    let mut req = client.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let ms = started.elapsed().as_millis();
            let body = crate::http::bounded_text(r, crate::http::MAX_BODY).await;
            let own = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str().map(str::to_string)))
                .map(|s| format!(" (status: {})", crate::render::truncate(&s, 60)))
                .unwrap_or_default();
            let tail = if status.is_success() {
                String::new()
            } else {
                let b = crate::render::truncate(body.trim(), 200);
                if b.is_empty() || !own.is_empty() {
                    String::new()
                } else {
                    format!(": {b}")
                }
            };
            Probe {
                ok: status.is_success(),
                text: format!("{} in {ms} ms{own}{tail}", status.as_u16()),
            }
        }
        Err(e) => Probe {
            ok: false,
            text: crate::http::describe(&e, total),
        },
    }
}

/// `/api health`.
pub async fn health(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let Some(api) = engine.config().api.clone() else {
        return Err(CommandError::Refused(
            "No API is configured: add [api] base_url (and web_url) to the config.".to_string(),
        ));
    };
    let total = Duration::from_secs(api.timeout_secs);
    let base = api.base_url.trim_end_matches('/');
    let mut checks = vec![("API", format!("{base}/healthz"))];
    if let Some(web) = &api.web_url {
        checks.push(("Web", format!("{}/api/health", web.trim_end_matches('/'))));
    }
    let results =
        futures_util::future::join_all(checks.iter().map(|(_, url)| probe(url, None, total))).await;
    let ok = results.iter().all(|p| p.ok);
    let lines: Vec<String> = checks
        .iter()
        .zip(&results)
        .map(|((name, url), p)| {
            format!(
                "{name} {} {}: {}",
                crate::redact::redact_url(url),
                if p.ok { "healthy" } else { "FAILING" },
                p.text
            )
        })
        .collect();
    let mut text = lines.join("\n");
    let summary = lines.join("; ");
    if api.web_url.is_none() {
        text.push_str("\nThe web app is not checked: [api] web_url is not set.");
    }
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!("/api health: {summary}"),
    )?;
    if ok {
        engine.steps_done(ctx, inv, inv.spec)?;
        text.push_str("\nNext: /incident status for what is left.");
        Ok(Reply::done(text))
    } else {
        engine.step_finished(ctx, inv, inv.spec, None, StepState::Failed, Some(summary))?;
        text.push_str("\nNext: the application's logs; restart it, then /api health again.");
        Err(CommandError::Failed(text))
    }
}
