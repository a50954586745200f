//! Scenario 2 of the runbook (R2 storage failure), done by drbot: `/storage check`,
//! `/storage versions`, `/storage snapshot`, `/storage snapshots`, `/storage restore`,
//! `/storage verify`.
//!
//! The runbook restores media from S3 object versions; Cloudflare R2 has none (it answers
//! every versioning call with 501). drbot gives the media bucket a way back of its own:
//! incremental, content-addressed snapshots in the backup bucket and a point-in-time restore of
//! a prefix from them. On a bucket that does keep versions (AWS S3, MinIO), restores use them.
//!
//! - [`manifest`]: the snapshot layout in the backup bucket; manifests streamed both ways.
//! - [`snapshot`]: taking one (listing beside the previous manifest, server-side copies).
//! - [`plan`]: the dry-run diff of a restore, from a snapshot or from versions.
//! - [`apply`]: carrying it out (copies checked first, retried, progress).
//! - [`action`]: `/storage restore` for the approval gate.
//! - `commands`: check, versions, snapshot, snapshots, verify; `watch`: the storage RPO and
//!   scheduled snapshots.
//! - [`media`]: the two buckets and the scenario's errors.

pub mod action;
pub mod apply;
pub mod commands;
pub mod manifest;
pub mod media;
pub mod plan;
pub mod runbook;
pub mod snapshot;
mod watch;

use chrono::{DateTime, Duration, Utc};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Integer, Invocation, Text, cmd, opt};
use crate::progress::ProgressSink;
use crate::render;
use crate::scenario::{
    Answer, Boxed, Choice, Destructive, MAX_CHOICES, Objective, Post, ReportSection, Scenario,
    Verdict, not_built,
};

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "storage",
        Some("check"),
        "Media bucket reachability, objects, versioning, newest snapshot",
        &[],
    ),
    cmd(
        "storage",
        Some("versions"),
        "Versions (or snapshots) of a key or prefix",
        &[
            opt("prefix", "Key prefix", Text),
            opt("key", "One object key", Text),
        ],
    ),
    cmd(
        "storage",
        Some("snapshot"),
        "Take an incremental snapshot of the media bucket now",
        &[],
    ),
    cmd(
        "storage",
        Some("snapshots"),
        "Snapshots with time, objects, bytes and age",
        &[opt(
            "limit",
            "How many to list (default 10)",
            Integer { min: 1, max: 50 },
        )],
    ),
    action::RESTORE,
    cmd(
        "storage",
        Some("verify"),
        "Platform upload test and drbot's put/get/delete probe",
        &[],
    ),
];

/// Scenario 2: the media bucket.
pub struct Storage;

/// The storage module.
pub const STORAGE: Storage = Storage;

impl Scenario for Storage {
    fn name(&self) -> &'static str {
        "storage"
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
                Some("check") => commands::check(engine, ctx, inv, progress).await,
                Some("versions") => commands::versions(engine, ctx, inv).await,
                Some("snapshot") => commands::take_snapshot(engine, ctx, inv, progress).await,
                Some("snapshots") => commands::snapshots(engine, ctx, inv).await,
                Some("verify") => commands::verify(engine, ctx, inv).await,
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
                "at" | "version" => snapshot_choices(engine).await,
                _ => Vec::new(),
            }
        })
    }
}

/// The newest snapshots, for `at:` and `version:`.
async fn snapshot_choices(engine: &Engine) -> Vec<Choice> {
    let Ok(b) = media::Buckets::of(engine) else {
        return Vec::new();
    };
    let now = engine.now();
    manifest::list(&b.backup, &b.snapshots.prefix)
        .await
        .map(|list| {
            list.into_iter()
                .take(MAX_CHOICES)
                .map(|s| {
                    Choice::new(
                        format!(
                            "snapshot {} ({} old)",
                            s.name(),
                            render::duration(now - s.at)
                        ),
                        s.name().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The report's storage RPO: from the newest restore from a snapshot during the incident, the
/// snapshot's time against the incident's start.
fn report_section(
    engine: &Engine,
    incident: &drbot_state::Incident,
    end: DateTime<Utc>,
) -> Result<ReportSection, CommandError> {
    let Some(media) = engine
        .config()
        .storage
        .as_ref()
        .and_then(|s| s.media_bucket.clone())
    else {
        return Ok(ReportSection::default());
    };
    let rpo = Duration::minutes(engine.config().objectives.rpo.storage as i64);
    let place = format!("bucket:{media}");
    let restored = engine
        .store()
        .restores()?
        .into_iter()
        .filter(|(t, r)| *t == place && r.at >= incident.declared_at && r.at <= end)
        .max_by_key(|(_, r)| r.at);
    let mut section = ReportSection::default();
    if let Some((_, r)) = restored
        && let Some(taken) = manifest::manifest_time(&r.key)
    {
        let lost = incident.declared_at - taken;
        section.objectives.push(Objective {
            name: "RPO (storage)".to_string(),
            target: rpo,
            achieved: format!(
                "{} (restored from snapshot {}, taken {})",
                render::duration(lost),
                manifest::snapshot_name(&r.key),
                render::minute(taken)
            ),
            verdict: Verdict::of(rpo, lost),
        });
        section.notes.push(format!(
            "Restored {media} from snapshot {} at {} by {}.",
            manifest::snapshot_name(&r.key),
            render::minute(r.at),
            r.by
        ));
    }
    Ok(section)
}
