//! Scenario 1 of the runbook (database corruption or loss), done by drbot:
//! `/db check`, `/db backups`, `/db restore`, `/db verify`, `/db backup`.
//!
//! - [`splitter`]: plain pg_dump SQL into statements and COPY blocks, streaming.
//! - [`pipeline`]: bucket → age → xz → pieces, on their own task and thread; [`custom`] turns
//!   a custom-format archive into SQL through pg_restore on the way.
//! - [`script`]: the rules every piece passes before it runs (nothing may end the transaction).
//! - [`preflight`](mod@preflight): the whole backup read, and the target looked at, before approval.
//! - [`load`]: pieces into the target in one transaction.
//! - [`verify`]: integrity checks after a restore.
//! - [`backup`]: pg_dump → xz → age → multipart upload, with a manifest.

pub mod action;
pub mod backup;
pub mod custom;
pub mod load;
pub mod pipeline;
pub mod preflight;
pub mod script;
pub mod splitter;
pub mod verify;
mod watch;

pub use crate::locks::{RestoreGuard, RestoreLocks};

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use drbot_state::{EntryKind, StepState};

use crate::bucket::{Bucket, ObjectInfo};
use crate::config::StorageConfig;
use crate::engine::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Integer, Invocation, Text, auto, cmd, destructive, opt, req};
use crate::options::required;
use crate::pg::{self, Target};
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;
use crate::scenario::{
    Answer, Boxed, Choice, Destructive, MAX_CHOICES, Post, ReportSection, Scenario, not_built,
};
use pipeline::{Counters, Identities};

/// `/db restore`: the scenario's one destructive command.
pub const RESTORE: CommandSpec = destructive(cmd(
    "db",
    Some("restore"),
    "Stream a backup into a database target",
    &[
        auto(req(
            "backup",
            "Backup key, a name under the prefix, or latest",
            Text,
        )),
        auto(req("target", "Database target from the config", Text)),
    ],
));

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "db",
        Some("check"),
        "Database connectivity, server version, size and latency",
        &[auto(opt(
            "target",
            "Database target (default: production)",
            Text,
        ))],
    ),
    cmd(
        "db",
        Some("backups"),
        "Newest backups with time, size and age against the RPO",
        &[opt(
            "limit",
            "How many to list (default 5)",
            Integer { min: 1, max: 50 },
        )],
    ),
    RESTORE,
    cmd(
        "db",
        Some("verify"),
        "Integrity checks on a restored database",
        &[auto(req("target", "Database target from the config", Text))],
    ),
    cmd(
        "db",
        Some("backup"),
        "Take a backup now: pg_dump, xz, age, bucket",
        &[auto(opt(
            "target",
            "Database target (default: production)",
            Text,
        ))],
    ),
];

/// Scenario 1: the database.
pub struct Database;

impl Scenario for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    fn commands(&self) -> &'static [CommandSpec] {
        COMMANDS
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move {
            match inv.spec.sub {
                Some("check") => check(engine, ctx, inv).await,
                Some("backups") => backups(engine, ctx, inv).await,
                Some("verify") => verify_cmd(engine, ctx, inv).await,
                Some("backup") => backup::backup(engine, ctx, inv, progress).await,
                _ => Err(not_built(inv)),
            }
        })
    }

    fn actions(&self) -> &'static [&'static dyn Destructive] {
        &[&action::Restore]
    }

    fn watch<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(watch::rpo(engine))
    }

    fn report(
        &self,
        engine: &Engine,
        incident: &drbot_state::Incident,
        end: DateTime<Utc>,
    ) -> Result<ReportSection, CommandError> {
        report_section(engine, incident, end)
    }

    fn complete<'a>(&'a self, engine: &'a Engine, option: &'a str) -> Boxed<'a, Vec<Choice>> {
        Box::pin(async move {
            match option {
                "backup" => backup_choices(engine).await,
                _ => Vec::new(),
            }
        })
    }
}

/// `latest` and the newest backups, for `backup:`.
async fn backup_choices(engine: &Engine) -> Vec<Choice> {
    let mut out = vec![Choice::new(
        "latest (the newest backup)".to_string(),
        "latest".to_string(),
    )];
    let Ok((bucket, s)) = backup_bucket(engine) else {
        return out;
    };
    let now = engine.now();
    if let Ok(list) = list_backups(&bucket, &s.db_prefix).await {
        out.extend(list.into_iter().take(MAX_CHOICES - 1).map(|o| {
            let age = taken_at(&o)
                .map(|t| format!(", {} old", render::duration(now - t)))
                .unwrap_or_default();
            let name = o
                .key
                .strip_prefix(&s.db_prefix)
                .unwrap_or(&o.key)
                .to_string();
            Choice::new(format!("{name} ({}{age})", size(o.size)), o.key)
        }));
    }
    out
}

/// The report's RPO: from the newest restore into the production target during the incident,
/// the backup's time against the incident's start.
fn report_section(
    engine: &Engine,
    incident: &drbot_state::Incident,
    end: DateTime<Utc>,
) -> Result<ReportSection, CommandError> {
    let rpo = Duration::minutes(engine.config().objectives.rpo.database as i64);
    let production = engine.config().production_target();
    let restored = engine
        .store()
        .restores()?
        .into_iter()
        .filter(|(t, r)| t == production && r.at >= incident.declared_at && r.at <= end)
        .max_by_key(|(_, r)| r.at);
    let mut section = ReportSection::default();
    match restored.and_then(|(t, r)| name_time(&r.key).map(|taken| (t, r, taken))) {
        Some((target, r, taken)) => {
            let lost = incident.declared_at - taken;
            section.objectives.push(format!(
                "| RPO (database) | {} | {} | {} |",
                render::duration(rpo),
                render::duration(lost),
                render::verdict(rpo, lost)
            ));
            section.notes.push(format!(
                "Restored {} (taken {}) into {target} at {} by {}.",
                r.key,
                render::minute(taken),
                render::minute(r.at),
                r.by
            ));
        }
        None => section.objectives.push(format!(
            "| RPO (database) | {} | no restore into {production} in this incident | — |",
            render::duration(rpo)
        )),
    }
    Ok(section)
}

/// The suffix of a backup's manifest object.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// How often long work reports progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The backup bucket and the `[storage]` it comes from.
pub(crate) fn backup_bucket(engine: &Engine) -> Result<(Bucket, StorageConfig), CommandError> {
    Ok(crate::bucket::backup_bucket(
        engine.config(),
        &engine.env(),
    )?)
}

/// The time a backup's name says it was taken: `<prefix>2024-12-26T10-30-00Z.sql.xz.age`.
pub fn name_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    let stamp = name.get(..20)?;
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The object name for a backup taken at `at`.
pub fn backup_name(prefix: &str, at: DateTime<Utc>) -> String {
    format!("{prefix}{}.sql.xz.age", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

/// When a backup was taken: the time in its name, else when the bucket wrote it.
pub fn taken_at(o: &ObjectInfo) -> Option<DateTime<Utc>> {
    name_time(&o.key).or(o.last_modified)
}

/// Backups under the prefix, newest first (by the time in the name, then LastModified).
pub async fn list_backups(bucket: &Bucket, prefix: &str) -> Result<Vec<ObjectInfo>, CommandError> {
    let mut all: Vec<ObjectInfo> = bucket
        .list(prefix)
        .await
        .map_err(|e| CommandError::Failed(format!("{e}.")))?
        .into_iter()
        .filter(|o| !o.key.ends_with(MANIFEST_SUFFIX) && !o.key.ends_with('/'))
        .collect();
    all.sort_by(|a, b| {
        (taken_at(b), b.last_modified, &b.key).cmp(&(taken_at(a), a.last_modified, &a.key))
    });
    Ok(all)
}

/// Resolves `backup:` — `latest`, a full key, or a name under the prefix — to an object.
pub async fn resolve_backup(
    bucket: &Bucket,
    prefix: &str,
    raw: &str,
) -> Result<ObjectInfo, CommandError> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("latest") {
        return list_backups(bucket, prefix)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CommandError::Failed(format!(
                    "There are no backups under {}/{prefix}, so there is no latest one.",
                    bucket.name()
                ))
            });
    }
    let mut candidates = vec![raw.to_string()];
    if !raw.starts_with(prefix) {
        candidates.push(format!("{prefix}{raw}"));
    }
    for key in &candidates {
        if let Some(o) = bucket
            .head(key)
            .await
            .map_err(|e| CommandError::Failed(format!("{e}.")))?
        {
            return Ok(o);
        }
    }
    let newest: Vec<String> = list_backups(bucket, prefix)
        .await
        .map(|l| l.into_iter().take(3).map(|o| o.key).collect())
        .unwrap_or_default();
    let hint = if newest.is_empty() {
        String::new()
    } else {
        format!(" Newest: {}. Or use backup:latest.", newest.join(", "))
    };
    Err(CommandError::Failed(format!(
        "There is no backup `{raw}` in bucket {} (looked for {}).{hint}",
        bucket.name(),
        candidates.join(" and ")
    )))
}

pub use crate::render::size;

/// `/db backups`.
pub async fn backups(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let (bucket, s) = backup_bucket(engine)?;
    let limit: usize = inv.get("limit").and_then(|l| l.parse().ok()).unwrap_or(5);
    let all = list_backups(&bucket, &s.db_prefix).await?;
    let now = engine.now();
    let rpo = Duration::minutes(engine.config().objectives.rpo.database as i64);
    if all.is_empty() {
        let text = format!(
            "No backups under {}/{}. The RPO of {} cannot be met until one is taken: /db backup.",
            bucket.name(),
            s.db_prefix,
            render::duration(rpo)
        );
        engine.record(ctx, inv, EntryKind::Command, &text)?;
        return Err(CommandError::Failed(text));
    }
    let mut text = String::new();
    let newest = &all[0];
    let age = taken_at(newest).map(|t| now - t);
    match age {
        Some(a) if a <= rpo => {
            let _ = writeln!(
                text,
                "Newest backup is {} old — within the {} RPO. {} backups in {}/{}.",
                render::duration(a),
                render::duration(rpo),
                all.len(),
                bucket.name(),
                s.db_prefix
            );
        }
        Some(a) => {
            let _ = writeln!(
                text,
                "Newest backup is {} old — {} past the {} RPO. Take one now with /db backup. {} backups in {}/{}.",
                render::duration(a),
                render::duration(a - rpo),
                render::duration(rpo),
                all.len(),
                bucket.name(),
                s.db_prefix
            );
        }
        None => {
            let _ = writeln!(text, "{} backups; their times are unknown.", all.len());
        }
    }
    let width = all
        .iter()
        .take(limit)
        .map(|o| o.key.len())
        .max()
        .unwrap_or(0);
    for o in all.iter().take(limit) {
        let when = taken_at(o)
            .map(|t| format!("{}  {:>7} old", render::stamp(t), render::duration(now - t)))
            .unwrap_or_else(|| "time unknown".to_string());
        let _ = writeln!(text, "  {:<width$}  {when}  {:>10}", o.key, size(o.size));
    }
    let _ = write!(
        text,
        "Restore the newest with /db restore backup:latest target:<name>."
    );
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/db backups: {} backups; newest {} ({}).",
            all.len(),
            newest.key,
            age.map(render::duration).unwrap_or_default()
        ),
    )?;
    engine.step_finished(ctx, inv, inv.spec, None, StepState::Done, None)?;
    Ok(Reply::done(text))
}

/// `/db check`.
pub async fn check(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let name = inv
        .get("target")
        .unwrap_or(engine.config().production_target());
    let target = Target::resolve(engine.config(), name, &engine.env())?;
    let started = Instant::now();
    let client = match target.connect().await {
        Ok(c) => c,
        Err(e) => {
            engine.record(
                ctx,
                inv,
                EntryKind::Command,
                format!("/db check {name}: {e}"),
            )?;
            return Err(e.into());
        }
    };
    let connect_ms = started.elapsed().as_millis();
    let t = Instant::now();
    client.simple_query("SELECT 1").await.map_err(|e| {
        CommandError::Failed(format!(
            "Target {name}: SELECT 1 failed: {}.",
            pg::pg_error(&e)
        ))
    })?;
    let rtt = t.elapsed();
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), pg_database_size(current_database())::bigint, current_database(), pg_is_in_recovery()",
            &[],
        )
        .await
        .map_err(|e| CommandError::Failed(format!("Target {name}: {}.", pg::pg_error(&e))))?;
    let version: String = row.get(0);
    let db_size: i64 = row.get(1);
    let db: String = row.get(2);
    let recovery: bool = row.get(3);
    let text = format!(
        "Target {name} is up: PostgreSQL {version}, database {db} is {}, round trip {:.1} ms (connect {connect_ms} ms){}. {}",
        size(db_size.max(0) as u64),
        rtt.as_secs_f64() * 1000.0,
        if recovery {
            ", read-only replica (in recovery)"
        } else {
            ""
        },
        target.shown()
    );
    engine.record(ctx, inv, EntryKind::Command, format!("/db check: {text}"))?;
    engine.step_finished(ctx, inv, inv.spec, Some(name), StepState::Done, None)?;
    Ok(Reply::done(text))
}

/// The age identities from `[backup] age_identity_file`, or none.
pub(crate) fn identities(engine: &Engine) -> Result<Identities, CommandError> {
    match engine
        .config()
        .backup
        .as_ref()
        .and_then(|b| b.age_identity_file.as_deref())
    {
        Some(path) => Identities::load(path),
        None => Ok(Identities::none()),
    }
}

fn progress_line(c: &Counters, started: Instant, lock_wait_secs: u64) -> String {
    let total = Counters::get(&c.total);
    let read = Counters::get(&c.downloaded);
    let pct = (read * 100).checked_div(total).unwrap_or(0);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let rows = Counters::get(&c.rows);
    let table = c.table();
    let waiting = c.waiting();
    if !waiting.is_empty() {
        return format!(
            "Restoring: {waiting} (for up to {lock_wait_secs}s, then it rolls back and names it)"
        );
    }
    format!(
        "Restoring: {} of {} downloaded ({pct}%), {} of SQL, {} tables, {rows} rows ({:.0} rows/s){}",
        size(read),
        size(total),
        size(Counters::get(&c.sql_bytes)),
        Counters::get(&c.tables),
        rows as f64 / secs,
        if table.is_empty() {
            String::new()
        } else {
            format!(", now {table}")
        }
    )
}

/// `/db restore`, once approved: streams a resolved backup into a target in one transaction.
/// Only the approval gate calls this, after re-reading the backup and the target.
#[allow(clippy::too_many_arguments)]
pub async fn run_restore(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    ids: Arc<Identities>,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let what = format!(
        "{} restoring {} since {}",
        ctx.actor.name,
        object.key,
        render::time(engine.now(), engine.now())
    );
    let _guard = engine
        .restores()
        .take(&target.name, what)
        .map_err(|running| {
            CommandError::Refused(format!(
                "A restore into {} is already running ({running}). Wait for it to finish.",
                target.name
            ))
        })?;
    let taken = taken_at(object)
        .map(|t| format!(" taken {}", render::stamp(t)))
        .unwrap_or_default();
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "Restore of {} ({}{taken}) into {} started.",
            object.key,
            size(object.size),
            target.name
        ),
    )?;
    engine.step_started(ctx, inv, inv.spec, Some(&target.name))?;
    engine.store().flush().await?;
    progress.update(&format!(
        "Restoring {} ({}) into {}…",
        object.key,
        size(object.size),
        target.name
    ));

    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    Counters::add(&counters.total, object.size);
    let options = load_options(engine, target);
    let lock_wait = options.lock_wait.as_secs();
    let result = async {
        let client = target.connect().await.map_err(RestoreError::Target)?;
        let (_, body) = bucket
            .get(&object.key, object.etag.as_deref())
            .await
            .map_err(RestoreError::Bucket)?;
        let rx = pipeline::start(body, ids, counters.clone());
        let load = async {
            load::load(&client, target, rx, &counters, &options)
                .await
                .map_err(RestoreError::Load)
        };
        tokio::pin!(load);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tick.tick() => progress.update(&progress_line(&counters, started, lock_wait)),
            }
        }
    }
    .await;
    let elapsed = Duration::milliseconds(started.elapsed().as_millis() as i64);
    match result {
        Ok(loaded) => {
            let layers: Vec<&str> = loaded.layers.iter().map(|l| l.as_str()).collect();
            let how = format!(
                "{} statements, {} tables, {} rows{}",
                Counters::get(&counters.statements),
                Counters::get(&counters.tables),
                Counters::get(&counters.rows),
                match loaded.format {
                    pipeline::Format::Plain => "",
                    pipeline::Format::Custom => " (custom format, read through pg_restore)",
                }
            );
            let summary = format!(
                "Restored {} into {} in {}: {} downloaded{}, {} of SQL; {how}.",
                object.key,
                target.name,
                render::duration(elapsed),
                size(Counters::get(&counters.downloaded)),
                if layers.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", layers.join(" → "))
                },
                size(Counters::get(&counters.sql_bytes)),
            );
            let mut notes = String::new();
            if loaded.moot_drops > 0 {
                let _ = write!(
                    notes,
                    "\n{} of pg_dump's --clean DROPs failed at first and were moot once the others had run (a partition's inherited key goes with its table).",
                    loaded.moot_drops
                );
            }
            if !loaded.roles_created.is_empty() {
                let _ = write!(
                    notes,
                    "\nCreated the roles the backup needs (NOLOGIN): {}.",
                    loaded.roles_created.join(", ")
                );
            }
            if !loaded.created_since.is_empty() {
                let shown: Vec<&str> = loaded
                    .created_since
                    .iter()
                    .take(50)
                    .map(String::as_str)
                    .collect();
                let _ = write!(
                    notes,
                    "\nIn {} but not in the backup (created since it was taken; left as they are): {}{}.",
                    target.name,
                    shown.join(", "),
                    if loaded.created_since.len() > 50 {
                        ", and more"
                    } else {
                        ""
                    }
                );
            }
            engine.record(ctx, inv, EntryKind::Command, format!("{summary}{notes}"))?;
            engine.store().record_restore(
                &target.name,
                &drbot_state::LastRestore {
                    key: object.key.clone(),
                    at: engine.now(),
                    by: ctx.actor.name.clone(),
                },
            )?;
            engine.step_finished(
                ctx,
                inv,
                inv.spec,
                Some(&target.name),
                StepState::Done,
                None,
            )?;
            // After a restore: sequences and the other integrity checks.
            let manifest = backup::fetch_manifest(bucket, &object.key).await;
            let report = verify::run(engine, target, manifest.as_ref()).await;
            let verdict = match &report {
                Ok(r) => r.render(),
                Err(e) => format!("Verification could not run: {e}"),
            };
            engine.record(
                ctx,
                inv,
                EntryKind::Command,
                format!(
                    "Verify after restore: {}",
                    verdict.lines().next().unwrap_or_default()
                ),
            )?;
            Ok(Reply::done(format!(
                "{summary}{notes}\n{verdict}\nNext: /db verify target:{} after any fixes, then /search reindex.",
                target.name
            )))
        }
        Err(e) => {
            let text = format!(
                "Restore of {} into {} failed after {}: {e}. The transaction was rolled back: {} is as it was before.",
                object.key,
                target.name,
                render::duration(elapsed),
                target.name
            );
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            engine.step_finished(
                ctx,
                inv,
                inv.spec,
                Some(&target.name),
                StepState::Failed,
                Some(e.to_string()),
            )?;
            Err(CommandError::Failed(text))
        }
    }
}

/// Why a restore stopped before it committed: the target, the bucket, or the load, each in
/// its own words.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target could not be reached.
    #[error(transparent)]
    Target(crate::pg::TargetError),
    /// The backup could not be fetched.
    #[error(transparent)]
    Bucket(crate::bucket::BucketError),
    /// The load stopped and was rolled back.
    #[error(transparent)]
    Load(load::LoadError),
}

/// The restore's options for `target`: `[restore] lock_wait_secs`, the target's
/// `create_missing_roles`.
fn load_options(engine: &Engine, target: &Target) -> load::LoadOptions {
    load::LoadOptions {
        lock_wait: std::time::Duration::from_secs(engine.config().restore.lock_wait_secs),
        create_missing_roles: engine
            .config()
            .targets
            .get(&target.name)
            .is_some_and(|t| t.create_missing_roles),
    }
}

/// What the preflight found, for the approval request.
pub struct Checked {
    /// A few words for the request's summary.
    pub short: String,
    /// Lines for the reply: sessions connected, roles to be created.
    pub details: String,
}

/// The restore's preflight: reads the whole backup and looks at the target. A backup that
/// fails it is not offered for approval.
pub async fn preflight(
    engine: &Engine,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    progress: &dyn ProgressSink,
) -> Result<Checked, CommandError> {
    let fail = |e: String| {
        CommandError::Failed(format!(
            "The preflight of {} for {} failed: {e}. Nothing was changed: {} is as it was before, and no approval was requested.",
            object.key, target.name, target.name
        ))
    };
    let ids = Arc::new(identities(engine)?);
    let counters = Arc::new(Counters::default());
    Counters::add(&counters.total, object.size);
    progress.update(&format!(
        "Checking {} ({}) before asking for approval: reading it whole…",
        object.key,
        size(object.size)
    ));
    let (_, body) = bucket
        .get(&object.key, object.etag.as_deref())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let database = target
        .pg_config()
        .ok()
        .and_then(|(c, _)| c.get_dbname().map(str::to_string));
    let rx = pipeline::start(body, ids, counters.clone());
    let facts = preflight::read(rx, &counters, database, progress, &object.key)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let seen = preflight::look_at(target, &facts.needs)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let create = load_options(engine, target).create_missing_roles;
    let mut lacks = Vec::new();
    if !seen.missing_roles.is_empty() && !create {
        lacks.push(format!("roles {}", seen.missing_roles.join(", ")));
    }
    if !seen.missing_extensions.is_empty() {
        lacks.push(format!(
            "extensions {} (not installable on its server)",
            seen.missing_extensions.join(", ")
        ));
    }
    if !lacks.is_empty() {
        let hint = if !seen.missing_roles.is_empty() && !create {
            format!(
                " Create the roles first, or, for a scratch or staging target, set [targets.{}] create_missing_roles = true so the restore creates them (NOLOGIN).",
                target.name
            )
        } else {
            String::new()
        };
        return Err(fail(format!(
            "the backup needs what {} lacks: {}.{hint} The restore could not succeed",
            target.name,
            lacks.join("; ")
        )));
    }
    let mut short = format!(
        "{}, read in {:.1}s",
        facts.line(),
        facts.elapsed.as_secs_f64()
    );
    let mut details = String::new();
    if create && !seen.missing_roles.is_empty() {
        let _ = write!(
            short,
            "; will create roles {}",
            seen.missing_roles.join(", ")
        );
    }
    if seen.sessions.is_empty() {
        let _ = write!(details, "No other session is connected to {}.", target.name);
    } else {
        let _ = write!(short, "; {} other sessions connected", seen.sessions.len());
        let _ = write!(
            details,
            "{} other session(s) connected to {} (the runbook stops the applications first: /step done step:stop-apps):",
            seen.sessions.len(),
            target.name
        );
        for s in seen.sessions.iter().take(10) {
            let _ = write!(details, "\n  {s}");
        }
    }
    Ok(Checked { short, details })
}

/// `/db verify`.
pub async fn verify_cmd(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let name = required(inv, "target")?;
    let target = Target::resolve(engine.config(), name, &engine.env())?;
    // Row counts are compared with the manifest of the backup last restored here, if any.
    let manifest = match engine.store().last_restore(name)? {
        Some(last) => match backup_bucket(engine) {
            Ok((bucket, _)) => backup::fetch_manifest(&bucket, &last.key).await,
            Err(_) => None,
        },
        None => None,
    };
    let report = verify::run(engine, &target, manifest.as_ref()).await?;
    let text = report.render();
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/db verify {name}: {}",
            text.lines().next().unwrap_or_default()
        ),
    )?;
    if report.passed() {
        engine.step_finished(ctx, inv, inv.spec, Some(name), StepState::Done, None)?;
        Ok(Reply::done(text))
    } else {
        engine.step_finished(
            ctx,
            inv,
            inv.spec,
            Some(name),
            StepState::Failed,
            Some("checks failed".to_string()),
        )?;
        Err(CommandError::Failed(text))
    }
}
