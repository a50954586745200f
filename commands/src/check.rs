//! `drbot check`: each configured system's settings, one line each, like the runbook's
//! "Required Access" list, then each system probed for real ([`probe`]).

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::{Config, Source};
use crate::redact::redact_url;

/// The verdict on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckState {
    /// Configured and its settings are present.
    Ok,
    /// Configured, but a setting it needs is missing or wrong.
    Problem,
    /// Not configured: commands that need it will say so.
    Off,
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckState::Ok => "ok",
            CheckState::Problem => "PROBLEM",
            CheckState::Off => "off",
        })
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// The system.
    pub system: &'static str,
    /// The verdict.
    pub state: CheckState,
    /// What was found, without secrets.
    pub text: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {:<9} {}", self.state, self.system, self.text)
    }
}

fn line(system: &'static str, state: CheckState, text: impl Into<String>) -> CheckLine {
    CheckLine {
        system,
        state,
        text: text.into(),
    }
}

/// A variable that must be set: ok with the redacted value (when `show`), else a problem.
fn var(
    env: &dyn Fn(&str) -> Option<String>,
    system: &'static str,
    label: &str,
    name: &str,
    show: bool,
) -> CheckLine {
    match env(name).filter(|v| !v.trim().is_empty()) {
        Some(v) if show => match crate::redact::shown_value(&v) {
            Some(shown) => line(
                system,
                CheckState::Ok,
                format!("{label}{name} is set ({shown})"),
            ),
            None => line(
                system,
                CheckState::Problem,
                format!(
                    "{label}{name} is set but is not a URL (its value is not shown: it may be a secret)"
                ),
            ),
        },
        Some(_) => line(system, CheckState::Ok, format!("{label}{name} is set")),
        None => line(
            system,
            CheckState::Problem,
            format!("{label}{name} is not set"),
        ),
    }
}

/// Reports every system's configuration. Secrets are never shown: URLs lose their passwords,
/// keys and tokens are only said to be set.
pub fn check_config(
    config: &Config,
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<CheckLine> {
    let mut out = vec![
        line("config", CheckState::Ok, source.to_string()),
        line(
            "data",
            CheckState::Ok,
            format!("{} (incident state, sled)", config.data_dir.display()),
        ),
    ];
    if config.targets.is_empty() {
        out.push(line(
            "database",
            CheckState::Off,
            "no [targets.*] configured",
        ));
    }
    for (name, t) in &config.targets {
        out.push(var(env, "database", &format!("{name}: "), &t.url_env, true));
    }
    match &config.storage {
        None => out.push(line("bucket", CheckState::Off, "no [storage] configured")),
        Some(s) => {
            let mut l = var(env, "bucket", "", &s.endpoint_env, true);
            l.text = format!(
                "{} {}; backups in {}/{}, media in {}",
                l.text,
                s.region,
                s.backup_bucket,
                s.db_prefix,
                s.media_bucket.as_deref().unwrap_or("(none)")
            );
            out.push(l);
            for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                out.push(var(env, "bucket", "", k, false));
            }
        }
    }
    match &config.search {
        None => out.push(line("search", CheckState::Off, "no [search] configured")),
        Some(s) => {
            out.push(var(
                env,
                "search",
                &format!("index {}: ", s.index),
                &s.host_env,
                true,
            ));
            out.push(var(env, "search", "", &s.key_env, false));
        }
    }
    let d = &config.drills;
    let scheduled: Vec<String> = d.schedule.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let when = if scheduled.is_empty() {
        "none scheduled".to_string()
    } else {
        format!("scheduled: {}", scheduled.join(", "))
    };
    if env(&d.scratch_url_env).is_some_and(|u| !u.trim().is_empty()) {
        let mut l = var(env, "drills", "", &d.scratch_url_env, true);
        l.text = format!("{}; {when}", l.text);
        out.push(l);
    } else {
        out.push(line(
            "drills",
            if d.schedule.is_empty() {
                CheckState::Off
            } else {
                CheckState::Problem
            },
            format!(
                "{} is not set: database and full drills cannot run ({when})",
                d.scratch_url_env
            ),
        ));
    }
    match &config.api {
        None => out.push(line("api", CheckState::Off, "no [api] configured")),
        Some(a) => {
            out.push(line(
                "api",
                CheckState::Ok,
                format!(
                    "API {}, web {}",
                    redact_url(&a.base_url),
                    a.web_url
                        .as_deref()
                        .map(redact_url)
                        .unwrap_or("(none)".into())
                ),
            ));
            out.push(var(env, "api", "", &a.token_env, false));
        }
    }
    match &config.discord {
        None => out.push(line(
            "discord",
            CheckState::Off,
            "no [discord] configured (drbot serve needs it)",
        )),
        Some(d) => {
            let mut l = var(env, "discord", "", &d.token_env, false);
            l.text = format!(
                "{}; guild {}, incident channel {}, API {}",
                l.text,
                d.guild_id,
                d.incident_channel_id,
                redact_url(&d.api_base)
            );
            out.push(l);
        }
    }
    match &config.notify {
        None => out.push(line("notify", CheckState::Off, "no [notify] configured")),
        Some(n) => {
            if n.email_to.is_empty() {
                out.push(line("resend", CheckState::Off, "no email_to: email is off"));
            } else {
                let mut l = var(env, "resend", "", "RESEND_API_KEY", false);
                l.text = format!("{} (to {} recipients)", l.text, n.email_to.len());
                out.push(l);
            }
            out.push(match env(&n.statuspage_webhook_env) {
                Some(_) => line(
                    "status",
                    CheckState::Ok,
                    format!("{} is set", n.statuspage_webhook_env),
                ),
                None => line(
                    "status",
                    CheckState::Off,
                    format!(
                        "{} is not set: status page updates are off",
                        n.statuspage_webhook_env
                    ),
                ),
            });
        }
    }
    // Contacts and paging: who can be reached, and how.
    if config.contacts.is_empty() {
        out.push(line(
            "contacts",
            CheckState::Off,
            "no [contacts.*]: /contacts and paging have nobody to call",
        ));
    } else {
        let none = crate::paging::unreachable(config);
        out.push(if none.is_empty() {
            line(
                "contacts",
                CheckState::Ok,
                format!(
                    "{} contacts; each has an email or a Discord id a page reaches",
                    config.contacts.len()
                ),
            )
        } else {
            line(
                "contacts",
                CheckState::Problem,
                format!(
                    "a page cannot reach {} (no email, no discord_id)",
                    none.join(", ")
                ),
            )
        });
    }
    match &config.paging {
        None => out.push(line(
            "paging",
            CheckState::Off,
            "no [paging]: declares page nobody",
        )),
        Some(p) => {
            let sev: Vec<String> = [("sev1", &p.sev1), ("sev2", &p.sev2), ("sev3", &p.sev3)]
                .iter()
                .filter(|(_, g)| !g.is_empty())
                .map(|(s, g)| format!("{s} pages {}", g.join(", ")))
                .collect();
            let email = config
                .notify
                .as_ref()
                .is_some_and(|n| n.email_from.is_some());
            out.push(line(
                "paging",
                CheckState::Ok,
                format!(
                    "{}; unacknowledged after {} min: {}; email {}",
                    if sev.is_empty() {
                        "no severity pages on declare".to_string()
                    } else {
                        sev.join(", ")
                    },
                    p.escalate_after_mins,
                    if p.escalation.is_empty() {
                        "no escalation".to_string()
                    } else {
                        p.escalation.join(" → ")
                    },
                    if email {
                        "on"
                    } else {
                        "off ([notify] email_from is not set)"
                    }
                ),
            ));
            if let Some(key_var) = &p.pagerduty_routing_key_env {
                out.push(var(env, "pagerduty", "", key_var, false));
            }
        }
    }
    match config
        .backup
        .as_ref()
        .and_then(|b| b.age_identity_file.as_deref())
    {
        None => out.push(line(
            "age",
            CheckState::Off,
            "no [backup] age_identity_file configured",
        )),
        Some(path) => out.push(identity_file(path)),
    }
    out
}

/// The age identity file must exist, be readable and be owner-only.
fn identity_file(path: &Path) -> CheckLine {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(e) => line(
            "age",
            CheckState::Problem,
            format!("{}: {e}", path.display()),
        ),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => line(
            "age",
            CheckState::Problem,
            format!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => line(
                "age",
                CheckState::Ok,
                format!("{} is readable and owner-only", path.display()),
            ),
            Err(e) => line(
                "age",
                CheckState::Problem,
                format!("{}: {e}", path.display()),
            ),
        },
    }
}

/// The major version in `PostgreSQL 15.4 (Debian …)`, `15.4`, `17beta1` or `pg_dump (PostgreSQL) 17.2`.
fn major(version: &str) -> Option<u32> {
    let version = version.trim();
    let tail = if version.starts_with(|c: char| c.is_ascii_digit()) {
        version
    } else {
        version
            .split_once(')')
            .map_or(version, |(_, t)| t)
            .trim_start()
    };
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether `pg_dump --version` output can dump a server of `server` version (pg_dump refuses
/// a newer server); `None` when either is not known.
fn pg_dump_covers(dump: &str, server: &str) -> Option<bool> {
    Some(major(dump)? >= major(server)?)
}

/// Probes every configured system that drbot can reach: each database target (connect,
/// `SELECT 1`, version, latency), the bucket (listing, and the media bucket's versioning),
/// and whether the age identity can decrypt what the configured recipients get.
pub async fn probe(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<CheckLine> {
    let mut out = Vec::new();
    for name in config.targets.keys() {
        let Ok(target) = crate::pg::Target::resolve(config, name, &env) else {
            continue; // reported as missing by the settings check
        };
        let started = std::time::Instant::now();
        let line_for = |state, text: String| line("database", state, format!("{name}: {text}"));
        match target.connect().await {
            Ok(client) => match client
                .query_one("SELECT current_setting('server_version')", &[])
                .await
            {
                Ok(row) => {
                    let server: String = row.get(0);
                    let ms = started.elapsed().as_millis();
                    // pg_dump refuses a server newer than itself: /db backup would fail.
                    let dump = crate::scenarios::database::backup::pg_dump_version();
                    let (state, dumps) = match pg_dump_covers(&dump, &server) {
                        Some(true) => (CheckState::Ok, format!("; {dump} can back it up")),
                        Some(false) => (
                            CheckState::Problem,
                            format!(
                                "; {dump} is older than the server and cannot back it up: install the PostgreSQL {} client",
                                major(&server).unwrap_or(0)
                            ),
                        ),
                        None if dump.is_empty() => (
                            CheckState::Problem,
                            "; no pg_dump is installed, so /db backup cannot run".to_string(),
                        ),
                        None => (CheckState::Ok, format!("; {dump}")),
                    };
                    out.push(line_for(
                        state,
                        format!("answers: PostgreSQL {server}, {ms} ms{dumps}"),
                    ));
                    if config.targets.get(name).is_some_and(|t| t.staged) {
                        use crate::scenarios::database::staged;
                        out.push(match staged::cannot_stage(&target).await {
                            Ok(None) => line_for(
                                CheckState::Ok,
                                "staged: drbot may create databases beside it and rename it (restores load beside it, /db rollback swaps back)".to_string(),
                            ),
                            Ok(Some(why)) => line_for(
                                CheckState::Problem,
                                format!("configured staged but cannot be: {why}"),
                            ),
                            Err(e) => line_for(
                                CheckState::Problem,
                                format!("configured staged; could not tell whether it can be: {e}"),
                            ),
                        });
                    }
                }
                Err(e) => out.push(line_for(CheckState::Problem, crate::pg::pg_error(&e))),
            },
            Err(e) => out.push(line_for(CheckState::Problem, e.to_string())),
        }
    }
    if let Some(url) = env(&config.drills.scratch_url_env).filter(|u| !u.trim().is_empty()) {
        out.push(drill_server(config, env, url.trim()).await);
    }
    if let Some(s) = &config.storage
        && let Ok(bucket) = crate::bucket::Bucket::from_config(s, &s.backup_bucket, &env)
    {
        match crate::scenarios::database::list_backups(&bucket, &s.db_prefix).await {
            Ok(list) => out.push(line(
                "bucket",
                CheckState::Ok,
                format!(
                    "{} answers: {} backups under {}{}",
                    s.backup_bucket,
                    list.len(),
                    s.db_prefix,
                    list.first()
                        .map(|o| format!(", newest {}", o.key))
                        .unwrap_or_default()
                ),
            )),
            Err(e) => out.push(line("bucket", CheckState::Problem, e.to_string())),
        }
        if let Some(media) = &s.media_bucket
            && let Ok(b) = crate::bucket::Bucket::from_config(s, media, &env)
        {
            use crate::bucket::Versioning;
            let snapshots = crate::scenarios::storage::manifest::list(&bucket, &s.snapshots.prefix)
                .await
                .ok()
                .and_then(|l| l.into_iter().next())
                .map_or_else(
                    || "no snapshot yet (/storage snapshot)".to_string(),
                    |n| format!("newest snapshot {}", n.name()),
                );
            out.push(match b.versioning().await {
                Ok(v @ (Versioning::Enabled | Versioning::Suspended)) => line(
                    "bucket",
                    CheckState::Ok,
                    format!(
                        "{media}: versioning {}; {snapshots}",
                        if v == Versioning::Enabled { "enabled" } else { "suspended" }
                    ),
                ),
                Ok(Versioning::Never) => line(
                    "bucket",
                    CheckState::Ok,
                    format!("{media}: versioning never enabled; drbot's snapshots are the way back: {snapshots}"),
                ),
                Ok(Versioning::Unsupported) => line(
                    "bucket",
                    CheckState::Ok,
                    format!("{media}: no object versioning (R2 answers 501); drbot's snapshots are the way back: {snapshots}"),
                ),
                Err(e) => line("bucket", CheckState::Problem, e.to_string()),
            });
        }
    }
    out.extend(probe_services(config, env).await);
    if let Some(b) = &config.backup
        && let Some(path) = &b.age_identity_file
        && let Ok(file) = std::fs::File::open(path)
    {
        let publics = age::IdentityFile::from_buffer(std::io::BufReader::new(file))
            .ok()
            .and_then(|f| {
                let mut buf = Vec::new();
                f.write_recipients_file(&mut buf).ok()?;
                Some(
                    String::from_utf8_lossy(&buf)
                        .lines()
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                )
            })
            .unwrap_or_default();
        if publics.is_empty() {
            out.push(line(
                "age",
                CheckState::Problem,
                format!("{} holds no x25519 identity", path.display()),
            ));
        } else if b
            .age_recipients
            .iter()
            .any(|r| publics.contains(&r.trim().to_string()))
        {
            out.push(line(
                "age",
                CheckState::Ok,
                "the identity's public key is among age_recipients: new backups can be restored",
            ));
        } else {
            out.push(line(
                "age",
                CheckState::Problem,
                format!(
                    "the identity ({}) is not among age_recipients: backups drbot writes could not be restored with it",
                    publics.join(", ")
                ),
            ));
        }
    }
    out
}

/// An HTTP answer in one line, for a probe: `200 in 12 ms`, or why there was none.
/// The drill server: not a configured target, reachable, and allowed to create databases.
async fn drill_server(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    url: &str,
) -> CheckLine {
    let var = &config.drills.scratch_url_env;
    let server = crate::pg::Target::new("drill server", url);
    match server.configured_as(config, &env) {
        Err(e) => return line("drills", CheckState::Problem, format!("{var}: {e}")),
        Ok(Some(name)) => {
            return line(
                "drills",
                CheckState::Problem,
                format!("{var} is the configured target {name}: drills refuse it"),
            );
        }
        Ok(None) => {}
    }
    let client = match server.connect().await {
        Ok(c) => c,
        Err(e) => return line("drills", CheckState::Problem, format!("{var}: {e}")),
    };
    match client
        .query_one(
            "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
    {
        Ok(row) if row.get::<_, bool>(0) => line(
            "drills",
            CheckState::Ok,
            format!("{var} answers and may CREATE DATABASE for drills"),
        ),
        Ok(_) => line(
            "drills",
            CheckState::Problem,
            format!("{var} answers, but its user may not CREATE DATABASE (ALTER ROLE … CREATEDB)"),
        ),
        Err(e) => line("drills", CheckState::Problem, crate::pg::pg_error(&e)),
    }
}

/// How long each service probe may take, unless its section sets a timeout.
const TOTAL: Duration = Duration::from_secs(10);

async fn http_probe(
    request: reqwest::RequestBuilder,
    total: Duration,
) -> Result<(u16, u128, String), String> {
    let started = Instant::now();
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let ms = started.elapsed().as_millis();
            let body = crate::http::bounded_text(r, crate::http::MAX_BODY).await;
            Ok((status, ms, body))
        }
        Err(e) => Err(crate::http::describe(&e, total)),
    }
}

/// The systems behind HTTP, probed for real (SPEC §3, the runbook's "Required Access"):
/// Meilisearch (`/health`, and an authenticated `/version` so a wrong key shows), the API and
/// web health endpoints, Discord (`GET /users/@me` with the bot token), Resend (an
/// authenticated read), the status page webhook (reachability only: nothing is posted), and
/// Stripe when `[check] stripe_key_env` is set. Secrets are sent, never shown.
async fn probe_services(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let Ok(client) = crate::http::client(TOTAL) else {
        out.push(line(
            "http",
            CheckState::Problem,
            "no HTTP client could be made",
        ));
        return out;
    };
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    probe_search(config, &client, &set, &mut out).await;
    probe_api(config, &mut out).await;
    probe_discord(config, &client, &set, &mut out).await;
    probe_notify(config, &client, &set, &mut out).await;
    probe_pagerduty(config, &client, &set, &mut out).await;
    probe_stripe(config, &client, &set, &mut out).await;
    out
}

/// Meilisearch: `/health`, and an authenticated `/version` so a wrong key shows.
async fn probe_search(
    config: &Config,
    client: &reqwest::Client,
    set: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut Vec<CheckLine>,
) {
    if let Some(sc) = &config.search
        && let Some(host) = set(&sc.host_env)
    {
        let host = host.trim().trim_end_matches('/').to_string();
        let shown = redact_url(&host);
        let health = http_probe(client.get(format!("{host}/health")), TOTAL).await;
        let mut version = client.get(format!("{host}/version"));
        if let Some(k) = set(&sc.key_env) {
            version = version.bearer_auth(k);
        }
        let version = http_probe(version, TOTAL).await;
        out.push(match (health, version) {
            (Ok((200, ms, _)), Ok((200, _, body))) => line(
                "search",
                CheckState::Ok,
                format!(
                    "{shown} answers in {ms} ms: available, version {}, the key is accepted",
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("pkgVersion").and_then(|p| p.as_str().map(str::to_string)))
                        .unwrap_or_else(|| "unknown".to_string())
                ),
            ),
            (Ok((200, ms, _)), Ok((status, _, body))) => line(
                "search",
                CheckState::Problem,
                format!(
                    "{shown} answers /health in {ms} ms but refuses the key on /version: {status} {}",
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("code").and_then(|c| c.as_str().map(str::to_string)))
                        .unwrap_or_default()
                ),
            ),
            (Ok((status, ms, body)), _) => line(
                "search",
                CheckState::Problem,
                format!("{shown} /health answered {status} in {ms} ms: {}", crate::render::truncate(body.trim(), 120)),
            ),
            (Err(why), _) => line("search", CheckState::Problem, format!("{shown} {why}")),
        });
    }
}

/// The API and web health endpoints.
async fn probe_api(config: &Config, out: &mut Vec<CheckLine>) {
    if let Some(api) = &config.api {
        let total = Duration::from_secs(api.timeout_secs);
        let mut urls = vec![(
            "api",
            format!("{}/healthz", api.base_url.trim_end_matches('/')),
        )];
        if let Some(web) = &api.web_url {
            urls.push(("web", format!("{}/api/health", web.trim_end_matches('/'))));
        }
        for (system, url) in urls {
            let p = crate::scenarios::api::probe(&url, None, total).await;
            out.push(line(
                system,
                if p.ok {
                    CheckState::Ok
                } else {
                    CheckState::Problem
                },
                format!("{} {}", redact_url(&url), p.text),
            ));
        }
    }
}

/// Discord: `GET /users/@me` with the bot token.
async fn probe_discord(
    config: &Config,
    client: &reqwest::Client,
    set: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut Vec<CheckLine>,
) {
    if let Some(d) = &config.discord
        && let Some(token) = set(&d.token_env)
    {
        let url = format!("{}/api/v10/users/@me", d.api_base.trim_end_matches('/'));
        let req = client
            .get(&url)
            .header("Authorization", format!("Bot {}", token.trim()));
        out.push(match http_probe(req, TOTAL).await {
            Ok((200, ms, body)) => line(
                "discord",
                CheckState::Ok,
                format!(
                    "the token is accepted ({ms} ms): the bot is {}",
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v
                            .get("username")
                            .and_then(|u| u.as_str().map(str::to_string)))
                        .unwrap_or_else(|| "unnamed".to_string())
                ),
            ),
            Ok((401, ms, _)) => line(
                "discord",
                CheckState::Problem,
                format!(
                    "Discord refuses the token ({ms} ms, 401): check {}",
                    d.token_env
                ),
            ),
            Ok((status, ms, _)) => line(
                "discord",
                CheckState::Problem,
                format!("GET /users/@me answered {status} in {ms} ms"),
            ),
            Err(why) => line(
                "discord",
                CheckState::Problem,
                format!("{} {why}", redact_url(&d.api_base)),
            ),
        });
    }
}

/// Resend (an authenticated read) and the status page webhook (reachability only).
async fn probe_notify(
    config: &Config,
    client: &reqwest::Client,
    set: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut Vec<CheckLine>,
) {
    if let Some(n) = &config.notify {
        if !n.email_to.is_empty()
            && let Some(key) = set("RESEND_API_KEY")
        {
            let req = client
                .get(format!("{}/domains", n.resend_base.trim_end_matches('/')))
                .bearer_auth(key.trim());
            out.push(match http_probe(req, TOTAL).await {
                Ok((200, ms, _)) => line(
                    "resend",
                    CheckState::Ok,
                    format!("the key is accepted ({ms} ms)"),
                ),
                Ok((status @ (401 | 403), ms, _)) => line(
                    "resend",
                    CheckState::Problem,
                    format!("Resend refuses RESEND_API_KEY ({status}, {ms} ms)"),
                ),
                Ok((status, ms, _)) => line(
                    "resend",
                    CheckState::Problem,
                    format!("GET /domains answered {status} in {ms} ms"),
                ),
                Err(why) => line(
                    "resend",
                    CheckState::Problem,
                    format!("{} {why}", redact_url(&n.resend_base)),
                ),
            });
        }
        if let Some(hook) = set(&n.statuspage_webhook_env) {
            // Reachability only: a HEAD posts nothing to the status page.
            out.push(match http_probe(client.head(hook.trim()), TOTAL).await {
                Ok((status, ms, _)) => line(
                    "status",
                    CheckState::Ok,
                    format!("the status page webhook is reachable ({status} to a HEAD, {ms} ms; nothing was posted)"),
                ),
                Err(why) => line(
                    "status",
                    CheckState::Problem,
                    format!("the status page webhook ({}) {why}", n.statuspage_webhook_env),
                ),
            });
        }
    }
}

/// PagerDuty's Events API (reachability only: an event would page someone).
async fn probe_pagerduty(
    config: &Config,
    client: &reqwest::Client,
    set: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut Vec<CheckLine>,
) {
    if let Some(p) = &config.paging
        && p.pagerduty_routing_key_env
            .as_deref()
            .is_some_and(|v| set(v).is_some())
    {
        // Reachability only: an event posted here would page someone.
        let url = format!("{}/v2/enqueue", p.events_base.trim_end_matches('/'));
        out.push(match http_probe(client.head(&url), TOTAL).await {
            Ok((status, ms, _)) => line(
                "pagerduty",
                CheckState::Ok,
                format!(
                    "the Events API is reachable ({status} to a HEAD, {ms} ms; nothing was sent)"
                ),
            ),
            Err(why) => line(
                "pagerduty",
                CheckState::Problem,
                format!("{} {why}", redact_url(&p.events_base)),
            ),
        });
    }
}

/// Stripe, when `[check] stripe_key_env` is set.
async fn probe_stripe(
    config: &Config,
    client: &reqwest::Client,
    set: &(dyn Fn(&str) -> Option<String> + Sync),
    out: &mut Vec<CheckLine>,
) {
    if let Some(key_env) = &config.check.stripe_key_env {
        match set(key_env) {
            None => out.push(line(
                "stripe",
                CheckState::Problem,
                format!("{key_env} is not set"),
            )),
            Some(key) => {
                let req = client
                    .get(format!(
                        "{}/v1/balance",
                        config.check.stripe_base.trim_end_matches('/')
                    ))
                    .bearer_auth(key.trim());
                out.push(match http_probe(req, TOTAL).await {
                    Ok((200, ms, _)) => line(
                        "stripe",
                        CheckState::Ok,
                        format!("the key reads the balance ({ms} ms)"),
                    ),
                    Ok((status, ms, _)) => line(
                        "stripe",
                        CheckState::Problem,
                        format!("GET /v1/balance answered {status} in {ms} ms: check {key_env}"),
                    ),
                    Err(why) => line(
                        "stripe",
                        CheckState::Problem,
                        format!("{} {why}", redact_url(&config.check.stripe_base)),
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dump_must_be_at_least_the_servers_major_version() {
        assert_eq!(
            major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(major("17.2 (Debian 17.2-1.pgdg120+1)"), Some(17));
        assert_eq!(major("17beta1"), Some(17));
        assert_eq!(
            pg_dump_covers("pg_dump (PostgreSQL) 15.20", "17.2"),
            Some(false)
        );
        assert_eq!(
            pg_dump_covers("pg_dump (PostgreSQL) 17.2", "15.4"),
            Some(true)
        );
        assert_eq!(pg_dump_covers("", "15.4"), None);
    }

    #[test]
    fn defaults_report_every_system_off() {
        let lines = check_config(&Config::default(), &Source::Defaults, &|_| None);
        assert!(
            lines.iter().all(|l| l.state != CheckState::Problem),
            "{lines:?}"
        );
        for s in [
            "database", "bucket", "search", "api", "discord", "notify", "age", "drills",
        ] {
            assert!(lines.iter().any(|l| l.system == s), "{s}");
        }
    }

    #[test]
    fn settings_are_reported_without_secrets() {
        let dir = tempfile::tempdir().expect("test setup");
        let key = dir.path().join("k");
        std::fs::write(&key, "AGE-SECRET-KEY-1").expect("test setup");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("test setup");
        let text = format!(
            "[targets.production]\nurl_env = \"DATABASE_URL\"\n[targets.staging]\nurl_env = \"STAGING\"\n\
             [storage]\nbackup_bucket = \"b\"\n[backup]\nage_identity_file = \"{}\"\n",
            key.display()
        );
        let config = Config::from_toml(&text, Path::new("c.toml")).expect("test setup");
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://app:hun@ter2#x@db:5432/postgres".to_string()),
            "STAGING" => Some("hunter3-not-a-url".to_string()),
            "R2_ENDPOINT" => Some("https://acct.r2.cloudflarestorage.com".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("topsecret".to_string()),
            _ => None,
        };
        let lines = check_config(&config, &Source::File("c.toml".into()), &env);
        let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
        for secret in ["hun@ter2", "ter2#x", "hunter3", "topsecret"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        assert!(
            all.contains("production: DATABASE_URL is set (postgres://app:***@db:5432/postgres)"),
            "{all}"
        );
        assert!(
            all.contains("staging: STAGING is set but is not a URL"),
            "{all}"
        );
        // An endpoint has no password: shown as it is, no stray marker.
        assert!(
            all.contains("R2_ENDPOINT is set (https://acct.r2.cloudflarestorage.com)"),
            "{all}"
        );
        assert!(!all.contains("cloudflarestorage.com***"), "{all}");
        assert!(all.contains("chmod 600"), "{all}");
    }
}
