//! Scenario 1 of the runbook (database corruption or loss), done by drbot:
//! `/db check`, `/db backups`, `/db restore`, `/db verify`, `/db backup`.
//!
//! This file is the scenario as the rest of drbot sees it ([`Database`]: its rows of the
//! command table, handlers, the restore action, the RPO watch, the report's RPO, backup
//! autocomplete); everything below it is imported downward only:
//!
//! - [`action`]: `/db restore` as a destructive action for the approval gate; [`restore`]:
//!   the preflight and the streaming restore it runs; `commands`: check, backups, verify.
//! - [`catalogue`]: where backups are, their names and times, `latest`, the age identities.
//! - [`splitter`]: plain pg_dump SQL into statements and COPY blocks, streaming; [`sql`]: what
//!   each statement is, from PostgreSQL's own grammar (libpg_query).
//! - [`pipeline`]: bucket → age → xz → pieces, on their own task and thread; [`custom`] turns
//!   a custom-format archive into SQL through pg_restore on the way.
//! - [`script`]: the rules every piece passes before it runs (nothing may end the transaction).
//! - [`preflight`](mod@preflight): the whole backup read, and the target looked at, before
//!   approval.
//! - [`load`]: pieces into the target in one transaction.
//! - [`verify`]: integrity checks after a restore.
//! - [`staged`]: databases made, swapped by rename and kept on a staged target's server;
//!   [`staged_restore`]: `/db restore` into such a target (the load is its preflight, the
//!   approval the swap); [`rollback`]: `/db rollback`, the kept database swapped back in.
//! - [`backup`]: pg_dump → xz → age → multipart upload, with a manifest.

pub mod action;
pub mod backup;
pub mod catalogue;
mod commands;
pub mod custom;
pub mod load;
pub mod pipeline;
pub mod preflight;
pub mod restore;
pub mod rollback;
pub mod runbook;
pub mod script;
pub mod splitter;
pub mod sql;
pub mod staged;
pub mod staged_restore;
pub mod verify;
mod watch;

pub use crate::locks::{RestoreGuard, RestoreLocks};
pub use catalogue::{
    MANIFEST_SUFFIX, backup_name, list_backups, name_time, resolve_backup, taken_at,
};

use chrono::{DateTime, Duration, Utc};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Integer, Invocation, Text, auto, cmd, opt, req};
use crate::progress::ProgressSink;
use crate::render::{self, size};
use crate::scenario::{
    Answer, Boxed, Choice, Destructive, MAX_CHOICES, Objective, Post, ReportSection, Scenario,
    Verdict, not_built,
};
use catalogue::backup_bucket;

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
    action::RESTORE,
    rollback::ROLLBACK,
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

    fn procedure(&self) -> Option<&'static crate::runbook::Procedure> {
        Some(&runbook::PROCEDURE)
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
                Some("check") => commands::check(engine, ctx, inv).await,
                Some("backups") => commands::backups(engine, ctx, inv).await,
                Some("verify") => commands::verify(engine, ctx, inv).await,
                Some("backup") => backup::backup(engine, ctx, inv, progress).await,
                _ => Err(not_built(inv)),
            }
        })
    }

    fn actions(&self) -> &'static [&'static dyn Destructive] {
        &[&action::Restore, &rollback::Rollback]
    }

    fn watch<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(watch::rpo(engine))
    }

    fn scheduled<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(watch::scheduled(engine))
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
            section.objectives.push(Objective {
                name: "RPO (database)".to_string(),
                target: rpo,
                achieved: format!(
                    "{} (restored {}, taken {})",
                    render::duration(lost),
                    r.key,
                    render::minute(taken)
                ),
                verdict: Verdict::of(rpo, lost),
            });
            section.notes.push(format!(
                "Restored {} (taken {}) into {target} at {} by {}.",
                r.key,
                render::minute(taken),
                render::minute(r.at),
                r.by
            ));
        }
        None => section.objectives.push(Objective {
            name: "RPO (database)".to_string(),
            target: rpo,
            achieved: format!("no restore into {production} in this incident"),
            verdict: Verdict::NotMeasured,
        }),
    }
    Ok(section)
}
