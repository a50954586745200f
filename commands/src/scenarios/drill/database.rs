//! Drill 1, the database: a scratch database on the drill server, the latest backup restored
//! into it with the same preflight and streaming restore as `/db restore`, the `/db verify`
//! checks, the application's start-up queries timed, then the scratch database dropped.

use std::sync::Arc;
use std::time::Instant;

use drbot_state::{DrillId, ScratchState};

use super::record::{Run, secs};
use crate::context::Engine;
use crate::error::CommandError;
use crate::pg::Target;
use crate::render;
use crate::scenarios::database::catalogue::{backup_bucket, identities, resolve_backup, taken_at};
use crate::scenarios::database::load::quote_ident;
use crate::scenarios::database::pipeline::Counters;
use crate::scenarios::database::{backup, restore, verify};

/// The kind of scratch resource a database drill records.
pub const SCRATCH_DATABASE: &str = "database";

/// The steps of drill 1: scratch database, restore, verify, application connectivity.
pub const STEPS: usize = 4;

/// The drill server from `[drills] scratch_url_env`, refused when it is a configured target.
pub fn drill_server(engine: &Engine) -> Result<Target, CommandError> {
    let var = &engine.config().drills.scratch_url_env;
    let url = engine.env()(var).filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        CommandError::Refused(format!(
            "No drill server: set {var} ([drills] scratch_url_env) to a PostgreSQL server where drbot may CREATE DATABASE, never a production target."
        ))
    })?;
    let server = Target::new("drill server", url.trim());
    let taken = server
        .configured_as(engine.config(), &engine.env())
        .map_err(|e| CommandError::Refused(format!("{var}: {e}.")))?;
    if let Some(name) = taken {
        return Err(CommandError::Refused(format!(
            "{var} points at the configured target {name}. A drill never works on a configured target: point {var} at a server and database kept for drills."
        )));
    }
    Ok(server)
}

/// This drbot's tag: 8 hex of its data directory's path, so two drbots (staging's and
/// production's, or tests run side by side) sharing a drill server tell their drills apart.
pub(crate) fn tag(engine: &Engine) -> String {
    use sha2::{Digest, Sha256};
    let dir = engine.store().path();
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Sha256::digest(dir.to_string_lossy().as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names a drill's scratch database may take, in order: `drbot_drill_<n>`, then
/// `drbot_drill_<n>_<tag>` when another drbot's drill holds the first.
pub fn scratch_names(run: &Run<'_>) -> [String; 2] {
    let n = run.id.0;
    [
        format!("drbot_drill_{n}"),
        format!("drbot_drill_{n}_{}", tag(run.engine)),
    ]
}

/// Whether CREATE DATABASE failed because the name is taken: 42P04 when it existed, or 23505
/// from pg_database's unique index when another CREATE DATABASE of that name committed first.
pub fn name_taken(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::DUPLICATE_DATABASE || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// Who a drill is: `drbot DRILL-<n> <tag>`. Its sessions show it as their application name in
/// `pg_stat_activity`, and its scratch database carries it in [`mark`].
pub fn owner(engine: &Engine, id: DrillId) -> String {
    format!("drbot {id} {}", tag(engine))
}

/// The comment drbot puts on a scratch database it created. Only a database carrying its
/// drill's mark is ever dropped: a name recorded just before a CREATE DATABASE that another
/// drbot's won (and drbot stopped before recording that) is someone else's database.
pub fn mark(engine: &Engine, id: DrillId) -> String {
    format!(
        "{}: a drill's scratch database, dropped when the drill ends",
        owner(engine, id)
    )
}

/// Creates the scratch database (recorded first) and returns its name and a target for it. A
/// name already on the server is never recorded, so a database drbot did not make is never
/// dropped.
async fn create(run: &Run<'_>, server: &Target) -> Result<(String, Target), String> {
    let client = server.connect().await.map_err(|e| e.to_string())?;
    let mut taken = Vec::new();
    for name in scratch_names(run) {
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| crate::pg::pg_error(&e))?;
        if exists.is_some() {
            taken.push(name);
            continue;
        }
        run.plan_scratch(SCRATCH_DATABASE, &name)
            .await
            .map_err(|e| e.to_string())?;
        match client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
        {
            Ok(()) => {
                run.scratch_is(SCRATCH_DATABASE, &name, ScratchState::Created)
                    .await
                    .map_err(|e| e.to_string())?;
                let comment = format!(
                    "COMMENT ON DATABASE {} IS {}",
                    quote_ident(&name),
                    crate::scenarios::database::sql::quote_literal(&mark(run.engine, run.id))
                );
                if let Err(e) = client.batch_execute(&comment).await {
                    // Ours (this session made it) but unmarked: gone again before anything else.
                    let why = crate::pg::pg_error(&e);
                    if client.batch_execute(&drop_sql(&name)).await.is_ok() {
                        let _ = run
                            .scratch_is(SCRATCH_DATABASE, &name, ScratchState::Dropped)
                            .await;
                    }
                    return Err(format!(
                        "marking {name} on {} as this drill's failed: {why}",
                        server.shown()
                    ));
                }
                let target = server
                    .with_database(&format!("scratch {name}"), &name)
                    .with_application_name(&owner(run.engine, run.id));
                return Ok((name, target));
            }
            Err(e) => {
                // Not ours: never dropped.
                let _ = run
                    .scratch_is(SCRATCH_DATABASE, &name, ScratchState::NotCreated)
                    .await;
                // Made by someone else in the meantime: try the next name.
                if name_taken(&e) {
                    taken.push(name);
                    continue;
                }
                return Err(format!(
                    "CREATE DATABASE {name} on {} failed: {}",
                    server.shown(),
                    crate::pg::pg_error(&e)
                ));
            }
        }
    }
    Err(format!(
        "databases named {} already exist on {}; drbot did not create them and leaves them alone (drop them if they are old drills')",
        taken.join(" and "),
        server.shown()
    ))
}

/// Drops database `name`, its sessions closed first.
fn drop_sql(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name))
}

/// What became of a scratch database drbot set out to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Dropped, or already gone.
    Gone,
    /// Left alone: it does not carry the drill's [`mark`] (another drbot's, or one drbot
    /// stopped before marking). Says whose it looks like.
    NotOurs(String),
}

/// Drops a scratch database drbot created (its sessions closed first) if it carries `mark`.
pub async fn drop_scratch(server: &Target, name: &str, mark: &str) -> Result<Dropped, String> {
    let client = server.connect().await.map_err(|e| e.to_string())?;
    let found = client
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(|e| crate::pg::pg_error(&e))?;
    let Some(row) = found else {
        return Ok(Dropped::Gone);
    };
    let comment: Option<String> = row.try_get(0).map_err(|e| crate::pg::pg_error(&e))?;
    if comment.as_deref() != Some(mark) {
        // Another drbot's owner is shown; any other comment is not (it could say anything).
        let other = comment
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .map(|(who, _)| who)
            .filter(|who| who.starts_with("drbot DRILL-") && who.len() <= 40);
        return Ok(Dropped::NotOurs(match other {
            Some(who) => format!("it is marked as {who}'s"),
            None => "it carries no drbot drill's mark".to_string(),
        }));
    }
    client
        .batch_execute(&drop_sql(name))
        .await
        .map_err(|e| format!("DROP DATABASE {name} failed: {}", crate::pg::pg_error(&e)))?;
    Ok(Dropped::Gone)
}

/// Runs the database drill's steps on `run`. Returns why it failed, if it did. The scratch
/// database is dropped whatever happened, unless `keep`.
pub async fn drill(run: &Run<'_>, keep: bool) -> Result<(), String> {
    let engine = run.engine;
    // 1. The scratch database.
    let n = run
        .step("Create a scratch database")
        .map_err(|e| e.to_string())?;
    let server = match drill_server(engine) {
        Ok(s) => s,
        Err(e) => return run.fail(n, e.to_string()),
    };
    let (name, scratch) = match create(run, &server).await {
        Ok(t) => t,
        Err(e) => return run.fail(n, e),
    };
    let _ = run.end(
        n,
        Some(true),
        &format!("Created {name} on {}.", server.shown()),
    );
    let result = restore_and_check(run, &scratch).await;
    // Then the scratch database goes, whatever happened (unless kept on a pass).
    if keep && result.is_ok() {
        let _ = run
            .scratch_is(SCRATCH_DATABASE, &name, ScratchState::Kept)
            .await;
    } else {
        match drop_scratch(&server, &name, &mark(engine, run.id)).await {
            Ok(Dropped::Gone) => {
                let _ = run
                    .scratch_is(SCRATCH_DATABASE, &name, ScratchState::Dropped)
                    .await;
            }
            Ok(Dropped::NotOurs(why)) => {
                tracing::warn!(drill = %run.id, database = %name, "scratch database left alone: {why}");
            }
            Err(e) => {
                tracing::warn!(drill = %run.id, error = %e, "scratch database not dropped");
            }
        }
    }
    result
}

/// Steps 2 to 4: restore, verify, the application's queries.
async fn restore_and_check(run: &Run<'_>, scratch: &Target) -> Result<(), String> {
    let engine = run.engine;
    // 2. The latest backup, through the preflight and the streaming restore.
    let n = run
        .step("Restore the latest backup")
        .map_err(|e| e.to_string())?;
    let (bucket, storage) = match backup_bucket(engine) {
        Ok(b) => b,
        Err(e) => return run.fail(n, e.to_string()),
    };
    let object = match resolve_backup(&bucket, &storage.db_prefix, "latest").await {
        Ok(o) => o,
        Err(e) => return run.fail(n, e.to_string()),
    };
    let taken = taken_at(&object);
    let rpo = taken.map(|t| secs(t, run.started_at));
    let key = object.key.clone();
    let _ = run.change(|d| {
        d.restored = Some(key.clone());
        d.rpo_secs = rpo;
    });
    // "Verify encryption keys are accessible": the restore decrypts with the configured identity.
    let ids = match identities(engine) {
        Ok(i) => Arc::new(i),
        Err(e) => return run.fail(n, e.to_string()),
    };
    let mut options = restore::load_options(engine, scratch);
    // A scratch database on a drill server: the roles the backup needs are created (NOLOGIN).
    options.create_missing_roles = true;
    if let Err(e) =
        restore::preflight_with(engine, &bucket, &object, scratch, &options, false, run).await
    {
        return run.fail(n, e.to_string());
    }
    let _guard = match engine.restores().take(
        &scratch.name,
        format!("{} restoring {}", run.id, object.key),
    ) {
        Ok(g) => g,
        Err(busy) => return run.fail(n, busy.to_string()),
    };
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let title = format!(
        "{}: restore of {} into {}",
        run.id, object.key, scratch.name
    );
    let loaded = restore::stream(
        &bucket, &object, scratch, ids, &counters, &options, &title, run, None,
    )
    .await;
    let took = started.elapsed();
    engine.fail_point("database drill: restored");
    match loaded {
        Ok(l) => {
            let mut roles = if l.roles_created.is_empty() {
                String::new()
            } else {
                format!(
                    " Created roles the backup needs (NOLOGIN, server-wide, left in place): {}.",
                    l.roles_created.join(", ")
                )
            };
            if !l.skipped_settings.is_empty() {
                roles.push_str(&format!(
                    " Skipped settings the drill server does not know (a newer pg_dump's): {}.",
                    l.skipped_settings.join(", ")
                ));
            }
            let _ = run.end(
                n,
                Some(true),
                &format!(
                    "Restored {} ({}{}) in {}: {} of SQL, {} tables, {} rows.{roles}",
                    object.key,
                    render::size(object.size),
                    taken
                        .map(|t| format!(", taken {}", render::stamp(t)))
                        .unwrap_or_default(),
                    render::took(took),
                    render::size(Counters::get(&counters.sql_bytes)),
                    Counters::get(&counters.tables),
                    Counters::get(&counters.rows)
                ),
            );
        }
        Err(e) => {
            return run.fail(
                n,
                format!(
                    "The restore of {} failed after {}: {e}",
                    object.key,
                    render::took(took)
                ),
            );
        }
    }
    // 3. Verify.
    let n = run.step("Verify the restore").map_err(|e| e.to_string())?;
    let manifest = backup::fetch_manifest(&bucket, &object.key).await;
    match verify::run(engine, scratch, manifest.as_ref()).await {
        Ok(report) => {
            let passed = report.passed();
            let _ = run.end(n, Some(passed), &report.render());
            if !passed {
                return Err(format!(
                    "verification found problems: {}",
                    report.render().lines().next().unwrap_or_default()
                ));
            }
        }
        Err(e) => return run.fail(n, format!("verification could not run: {e}")),
    }
    // 4. The application's start-up queries.
    let n = run
        .step("Test application connectivity")
        .map_err(|e| e.to_string())?;
    let checks = &engine.config().drills.app_checks;
    if checks.is_empty() {
        let _ = run.end(
            n,
            None,
            "Not tested: [drills] app_checks lists no queries (put the ones the application runs at start there).",
        );
    } else {
        let client = match scratch.connect().await {
            Ok(c) => c,
            Err(e) => return run.fail(n, e.to_string()),
        };
        // The server ends a query that runs too long; drbot does not wait on it for ever.
        let limit = engine.config().drills.app_check_timeout_secs;
        if let Err(e) = client
            .batch_execute(&format!("SET statement_timeout = '{limit}s'"))
            .await
        {
            return run.fail(n, crate::pg::pg_error(&e));
        }
        let mut timed = Vec::new();
        let mut failed = Vec::new();
        for sql in checks {
            let t = Instant::now();
            let result = match client.simple_query(sql).await {
                Ok(rows) => rows
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some(r.get(0).unwrap_or("NULL").to_string())
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| "no rows".to_string()),
                Err(e) => {
                    let why = if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
                    {
                        format!("took longer than [drills] app_check_timeout_secs ({limit} s)")
                    } else {
                        format!("failed: {}", crate::pg::pg_error(&e))
                    };
                    failed.push(format!("{} {why}", render::truncate(sql, 80)));
                    why
                }
            };
            let ms = t.elapsed().as_millis() as u64;
            timed.push((sql.clone(), ms, render::truncate(&result, 100)));
        }
        let lines: Vec<String> = timed
            .iter()
            .map(|(q, ms, r)| format!("{} → {r} in {ms} ms", render::truncate(q, 80)))
            .collect();
        let _ = run.change(|d| d.app_checks = timed.clone());
        if failed.is_empty() {
            let _ = run.end(n, Some(true), &lines.join("\n"));
        } else {
            return run.fail(
                n,
                format!("the application's queries failed: {}", failed.join("; ")),
            );
        }
    }
    Ok(())
}
