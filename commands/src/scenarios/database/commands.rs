//! The database scenario's commands that change nothing: `/db backups`, `/db check`,
//! `/db verify`.

use std::fmt::Write as _;
use std::time::Instant;

use chrono::Duration;
use drbot_state::{EntryKind, StepState};

use super::catalogue::{backup_bucket, list_backups, size, taken_at};
use super::{backup, verify};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::options::required;
use crate::pg::{self, Target};
use crate::render;
use crate::reply::Reply;

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
        // A backup whose manifest records another size is said to be broken right here, before
        // anyone picks it.
        let problem = match backup::fetch_manifest(&bucket, &o.key).await {
            Some(m) => match (m.size_problem(o.size), &m.verified_at, &m.verify_error) {
                (Some(p), _, _) => format!("  BROKEN — {p}"),
                (None, Some(_), _) => "  verified".to_string(),
                (None, None, Some(why)) => {
                    format!("  NOT VERIFIED — {}", render::truncate(why, 120))
                }
                (None, None, None) => "  not verified".to_string(),
            },
            None => "  not verified (no readable manifest)".to_string(),
        };
        let _ = writeln!(
            text,
            "  {:<width$}  {when}  {:>10}{problem}",
            o.key,
            size(o.size)
        );
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

/// `/db verify`.
pub async fn verify(
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
