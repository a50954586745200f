//! `/storage restore` as a destructive action: resolved into an exact source (a snapshot, the
//! bucket's versions at a time, or one version) and a dry-run diff that the approver sees;
//! its digest covers the source and every live object the diff was computed from. At
//! execution the bucket is listed again: any change voids the approval.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use drbot_state::{EntryKind, StepState};

use super::apply::{apply, missing_copies};
use super::manifest::{self, Snapshot};
use super::media::{Buckets, StorageError};
use super::plan::{self, From, Op, Plan, Scope};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{Choice, CommandSpec, Invocation, Text, auto, cmd, destructive, opt};
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;
use crate::scenario::{Answer, Boxed, Destructive, Inputs, Prepared, Reread};

/// `/storage restore`.
pub const RESTORE: CommandSpec = destructive(cmd(
    "storage",
    Some("restore"),
    "Restore one object version, or a prefix as it was at a time",
    &[
        opt("key", "One object key (with version)", Text),
        auto(opt(
            "version",
            "Its version id, or a snapshot (with key)",
            Text,
        )),
        opt(
            "prefix",
            "Key prefix, * for the whole bucket (with at)",
            Text,
        ),
        auto(opt(
            "at",
            "UTC time (2026-11-25T10:30:00Z) or a snapshot (with prefix)",
            Text,
        )),
        opt(
            "delete_newer",
            "Also delete objects created since (default false)",
            Choice(&["true", "false"]),
        ),
    ],
));

/// `/storage restore`.
pub struct Restore;

/// The lock a restore and a snapshot of the media bucket share.
pub fn lock_name(media: &str) -> String {
    format!("storage:{media}")
}

/// Reads a UTC time as people type it: RFC 3339, or `YYYY-MM-DD[ T]HH:MM[:SS][Z]`, or a date.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let bare = s.trim_end_matches(['Z', 'z']).replace('T', " ");
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H-%M-%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&bare, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(&bare, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The snapshot named `name` (its time as in the manifest's name, or the manifest's key).
fn snapshot_named<'a>(snapshots: &'a [Snapshot], name: &str) -> Option<&'a Snapshot> {
    let name = name.trim();
    snapshots.iter().find(|s| s.name() == name || s.key == name)
}

/// The newest snapshot taken at or before `at`, or why there is none.
pub fn snapshot_at<'a>(
    snapshots: &'a [Snapshot],
    at: DateTime<Utc>,
    media: &str,
) -> Result<&'a Snapshot, StorageError> {
    if let Some(s) = snapshots.iter().find(|s| s.at <= at) {
        return Ok(s);
    }
    Err(StorageError::Refused(match snapshots.last() {
        Some(oldest) => format!(
            "{} is before the first snapshot of {media}: the oldest is {} (taken {}). Pick a time after it, or at:{}.",
            render::stamp(at),
            oldest.name(),
            render::stamp(oldest.at),
            oldest.name()
        ),
        None => format!(
            "There is no snapshot of {media} yet, so there is nothing to go back to. Take one with /storage snapshot."
        ),
    }))
}

/// The restore the command asks for.
async fn plan_of(b: &Buckets, inv: &Invocation) -> Result<Plan, CommandError> {
    let usage = |m: &str| CommandError::Usage(format!("{m} Usage: {}", inv.spec.usage()));
    let delete_newer = inv.get("delete_newer") == Some("true");
    let media = b.media.name();
    match (inv.get("key"), inv.get("prefix")) {
        (Some(_), Some(_)) => Err(usage("Give key: (one object) or prefix: (many), not both.")),
        (None, None) => Err(usage(
            "Say what to restore: key:<key> version:<id or snapshot>, or prefix:<prefix> at:<time or snapshot>.",
        )),
        (Some(key), None) => {
            if inv.get("at").is_some() || inv.get("delete_newer").is_some() {
                return Err(usage("at: and delete_newer: go with prefix:, not key:."));
            }
            let Some(version) = inv.get("version") else {
                return Err(usage(&format!(
                    "key: needs version: (a version id, or a snapshot). /storage versions key:{key} lists them."
                )));
            };
            let snapshots = manifest::list(&b.backup, &b.snapshots.prefix)
                .await
                .map_err(StorageError::from)?;
            let from = if let Some(s) = snapshot_named(&snapshots, version) {
                From::Snapshot(s.key.clone())
            } else if b
                .media
                .versioning_or_none()
                .await
                .is_none_or(|v| v.has_versions())
            {
                // Versions, or a status that could not be read: the version lookup answers.
                From::Version(version.to_string())
            } else {
                return Err(StorageError::Refused(format!(
                    "{media} keeps no object versions (R2 has none), and no snapshot is named {version}. \
                     /storage versions key:{key} lists the snapshots that hold it."
                ))
                .into());
            };
            Ok(Plan {
                scope: Scope::Key(key.to_string()),
                from,
                delete_newer: false,
            })
        }
        (None, Some(prefix)) => {
            if inv.get("version").is_some() {
                return Err(usage("version: goes with key:, not prefix:."));
            }
            let Some(at) = inv.get("at") else {
                return Err(usage(
                    "prefix: needs at: (a UTC time such as 2026-11-25T10:30:00Z, or a snapshot from /storage snapshots).",
                ));
            };
            let scope = Scope::Prefix(if prefix == "*" {
                String::new()
            } else {
                prefix.to_string()
            });
            let snapshots = manifest::list(&b.backup, &b.snapshots.prefix)
                .await
                .map_err(StorageError::from)?;
            let from = if let Some(s) = snapshot_named(&snapshots, at) {
                From::Snapshot(s.key.clone())
            } else {
                let Some(t) = parse_time(at) else {
                    return Err(usage(&format!(
                        "at:{at} is neither a UTC time (2026-11-25T10:30:00Z) nor a snapshot (/storage snapshots lists them)."
                    )));
                };
                // A status that cannot be read (some S3 look-alikes answer it oddly) leaves the
                // snapshots, which drbot reads itself.
                if b.media
                    .versioning_or_none()
                    .await
                    .is_some_and(|v| v.has_versions())
                {
                    From::VersionsAt(t)
                } else {
                    From::Snapshot(snapshot_at(&snapshots, t, media)?.key.clone())
                }
            };
            Ok(Plan {
                scope,
                from,
                delete_newer,
            })
        }
    }
}

fn inputs_of(b: &Buckets, plan: &Plan, diff: &plan::Diff) -> Inputs {
    let scope = match &plan.scope {
        Scope::Prefix(p) => format!("prefix:{p}"),
        Scope::Key(k) => format!("key:{k}"),
    };
    Inputs::from([
        ("target".to_string(), b.media.name().to_string()),
        ("scope".to_string(), scope),
        ("from".to_string(), plan.from.encode()),
        ("delete_newer".to_string(), plan.delete_newer.to_string()),
        ("live".to_string(), diff.digest.clone()),
        ("diff".to_string(), diff.short()),
    ])
}

fn plan_from_inputs(inputs: &Inputs) -> Result<Plan, CommandError> {
    let bad = || CommandError::Failed("the stored request is not a storage restore".to_string());
    let scope = inputs.get("scope").ok_or_else(bad)?;
    let scope = match scope.split_once(':') {
        Some(("prefix", p)) => Scope::Prefix(p.to_string()),
        Some(("key", k)) => Scope::Key(k.to_string()),
        _ => return Err(bad()),
    };
    let from = inputs
        .get("from")
        .and_then(|f| From::decode(f))
        .ok_or_else(bad)?;
    Ok(Plan {
        scope,
        from,
        delete_newer: inputs.get("delete_newer").is_some_and(|d| d == "true"),
    })
}

/// "as of snapshot X (taken …, 3 h ago)".
async fn source_words(b: &Buckets, plan: &Plan, now: DateTime<Utc>) -> String {
    match &plan.from {
        From::Snapshot(key) => match manifest::manifest_time(key) {
            Some(t) => format!(
                "snapshot {} (taken {}, {} ago)",
                manifest::snapshot_name(key),
                render::stamp(t),
                render::duration(now - t)
            ),
            None => plan.from.describe(),
        },
        _ => {
            let _ = b;
            plan.from.describe()
        }
    }
}

fn nothing_to_do(b: &Buckets, plan: &Plan, d: &plan::Diff) -> CommandError {
    let media = b.media.name();
    if d.unchanged.count + d.kept.count == 0 {
        let elsewhere = if d.elsewhere.is_empty() {
            String::new()
        } else {
            format!(
                " It holds: {}.",
                d.elsewhere.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        return CommandError::Refused(format!(
            "No object in {} — neither in {} nor in {media} now. Keys are case-sensitive; check the prefix.{elsewhere} Nothing was changed.",
            plan.scope.describe(),
            plan.from.describe()
        ));
    }
    CommandError::Refused(format!(
        "Nothing to restore: the {} object(s) in {} of {media} are as in {}{}. Nothing was changed.",
        d.unchanged.count,
        plan.scope.describe(),
        plan.from.describe(),
        if d.kept.count > 0 {
            format!(
                "; {} created since are kept (add delete_newer:true to delete them)",
                d.kept.count
            )
        } else {
            String::new()
        }
    ))
}

fn missing_text(b: &Buckets, missing: &[String]) -> String {
    format!(
        "{} cop{} this restore needs {} missing from {}: {}{}. Nothing was written.",
        missing.len(),
        if missing.len() == 1 { "y" } else { "ies" },
        if missing.len() == 1 { "is" } else { "are" },
        b.backup.name(),
        missing
            .iter()
            .take(plan::SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if missing.len() > plan::SHOWN {
            ", …"
        } else {
            ""
        }
    )
}

impl Destructive for Restore {
    fn kind(&self) -> &'static str {
        "storage-restore"
    }

    fn spec(&self) -> &'static CommandSpec {
        &RESTORE
    }

    fn prepare<'a>(
        &'a self,
        engine: &'a Engine,
        inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Result<Prepared, CommandError>> {
        Box::pin(async move {
            let b = Buckets::of(engine)?;
            let plan = plan_of(&b, inv).await?;
            progress.update(&format!(
                "Comparing {} of {} with {}…",
                plan.scope.describe(),
                b.media.name(),
                plan.from.describe()
            ));
            let mut ops = Vec::new();
            let d = plan::diff(&b, &plan, Some(&mut ops)).await?;
            if d.changes() == 0 {
                return Err(nothing_to_do(&b, &plan, &d));
            }
            let missing = missing_copies(&b, &ops).await?;
            if !missing.is_empty() {
                return Err(CommandError::Failed(format!(
                    "{} The snapshot cannot be restored as it is; no request was made.",
                    missing_text(&b, &missing)
                )));
            }
            let copies = ops
                .iter()
                .filter(
                    |o| matches!(o, Op::Put(w) if matches!(w.origin, plan::Origin::Copy { .. })),
                )
                .count();
            let source = source_words(&b, &plan, engine.now()).await;
            let summary = format!(
                "restore {} in {} as of {source}: {}",
                plan.scope.describe(),
                b.media.name(),
                d.short()
            );
            let mut details = d.render();
            if copies > 0 {
                let _ = write!(
                    details,
                    "\nEvery copy it needs is in {} ({copies} checked).",
                    b.backup.name()
                );
            }
            let mut facts = vec![
                ("Bucket".to_string(), b.media.name().to_string()),
                ("Scope".to_string(), plan.scope.describe()),
                ("As of".to_string(), source),
                ("Changes".to_string(), d.short()),
            ];
            if copies > 0 {
                facts.push((
                    "Copies checked".to_string(),
                    format!("{copies} in {}", b.backup.name()),
                ));
            }
            Ok(Prepared {
                inputs: inputs_of(&b, &plan, &d),
                summary,
                details,
                facts,
            })
        })
    }

    fn reread<'a>(
        &'a self,
        engine: &'a Engine,
        stored: &'a Inputs,
    ) -> Boxed<'a, Result<Inputs, Reread>> {
        Box::pin(async move {
            let plan = plan_from_inputs(stored).map_err(Reread::Failed)?;
            let b = Buckets::of(engine).map_err(|e| Reread::Failed(e.into()))?;
            if stored.get("target").map(String::as_str) != Some(b.media.name()) {
                return Err(Reread::Gone(format!(
                    "the media bucket is now {}, not {} as when it was requested",
                    b.media.name(),
                    stored.get("target").map_or("", String::as_str)
                )));
            }
            match plan::diff(&b, &plan, None).await {
                Ok(d) => Ok(inputs_of(&b, &plan, &d)),
                Err(StorageError::Refused(why)) => Err(Reread::Gone(why)),
                Err(e) => Err(Reread::Failed(CommandError::Failed(format!(
                    "{e}. Nothing was run."
                )))),
            }
        })
    }

    fn short(&self, inputs: &Inputs) -> String {
        match plan_from_inputs(inputs) {
            Ok(p) => format!("restore {} as of {}", p.scope.describe(), p.from.describe()),
            Err(_) => self.kind().to_string(),
        }
    }

    fn changed(&self, before: &Inputs, after: &Inputs) -> String {
        let get = |m: &Inputs, k: &str| m.get(k).cloned().unwrap_or_default();
        let scope = plan_from_inputs(before)
            .map(|p| p.scope.describe())
            .unwrap_or_default();
        format!(
            "the objects in {scope} changed since the diff was approved (it was: {}; it is now: {})",
            get(before, "diff"),
            get(after, "diff")
        )
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        inputs: &'a Inputs,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(run(engine, ctx, inv, inputs, progress))
    }
}

async fn run(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    inputs: &Inputs,
    progress: &dyn ProgressSink,
) -> Answer {
    let plan = plan_from_inputs(inputs)?;
    let b = Buckets::of(engine)?;
    let media = b.media.name().to_string();
    let _guard = engine
        .restores()
        .take(
            &lock_name(&media),
            format!("{} restoring {}", ctx.actor.name, plan.scope.describe()),
        )
        .map_err(|crate::locks::Busy { running, .. }| {
            CommandError::Refused(format!(
                "{media} is busy ({running}). Wait for it to finish; nothing was changed."
            ))
        })?;
    let what = format!(
        "restore of {} in {media} from {}",
        plan.scope.describe(),
        plan.from.describe()
    );
    engine.record(ctx, inv, EntryKind::Command, format!("The {what} started."))?;
    engine.step_started(ctx, inv, inv.spec, Some(&media))?;
    engine.store().flush().await?;
    let fail = |text: String, reason: String| -> Answer {
        engine.step_failed(ctx, inv, inv.spec, Some(&media), &text, reason)?;
        Err(CommandError::Failed(text))
    };
    progress.update(&format!("Listing {} again…", plan.scope.describe()));
    let mut ops = Vec::new();
    let d = match plan::diff(&b, &plan, Some(&mut ops)).await {
        Ok(d) => d,
        Err(e) => {
            return fail(
                format!("The {what} failed: {e}. Nothing was written."),
                e.to_string(),
            );
        }
    };
    if inputs.get("live") != Some(&d.digest) {
        return fail(
            format!(
                "The {what} did not run: {} changed while the approval was checked (now: {}). Nothing was written; ask again.",
                plan.scope.describe(),
                d.short()
            ),
            "changed before it ran".to_string(),
        );
    }
    let missing = match missing_copies(&b, &ops).await {
        Ok(m) => m,
        Err(e) => {
            return fail(
                format!("The {what} failed: {e}. Nothing was written."),
                e.to_string(),
            );
        }
    };
    if !missing.is_empty() {
        let text = missing_text(&b, &missing);
        return fail(format!("The {what} did not run: {text}"), text);
    }
    let applied = apply(&b, ops, progress).await;
    progress.update("Checking the restored objects against the source…");
    let check = plan::mismatches(&b, &plan, &applied.etags).await;
    let secs = applied.took.as_secs_f64().max(0.001);
    let mut text = format!(
        "Restored {} in {media} from {}: {} object(s) written ({}, {}/s), {} deleted, in {}.",
        plan.scope.describe(),
        source_words(&b, &plan, engine.now()).await,
        applied.written,
        render::size(applied.bytes),
        render::size((applied.bytes as f64 / secs) as u64),
        applied.deleted,
        render::took(applied.took)
    );
    if d.unchanged.count > 0 {
        let _ = write!(
            text,
            " {} unchanged object(s) were not touched.",
            d.unchanged.count
        );
    }
    if d.kept.count > 0 {
        let _ = write!(text, " {} created since were kept.", d.kept.count);
    }
    let verified = match &check {
        Ok((0, _)) => "Listed again: every object in scope now matches the source.".to_string(),
        Ok((n, first)) => format!(
            "Listed again: {n} object(s) do not match the source: {}{}.",
            first.join(", "),
            if *n > first.len() as u64 { ", …" } else { "" }
        ),
        Err(e) => format!("The check after the restore could not run: {e}."),
    };
    let clean = applied.undone_count == 0 && matches!(check, Ok((0, _)));
    if applied.undone_count > 0 {
        let _ = write!(
            text,
            "\n{} object(s) could not be restored after {} attempts each: {}{}. The rest is restored; run the same restore again to retry only what is left.",
            applied.undone_count,
            3,
            applied.undone.join(", "),
            if applied.undone_count > applied.undone.len() as u64 {
                ", …"
            } else {
                ""
            }
        );
    }
    let _ = write!(text, "\n{verified}");
    let next = "Next: /storage verify (uploads through the platform, and drbot's own probe).";
    if let From::Snapshot(key) = &plan.from {
        engine.store().record_restore(
            &format!("bucket:{media}"),
            &drbot_state::LastRestore {
                key: key.clone(),
                at: engine.now(),
                by: ctx.actor.recorded(),
            },
        )?;
    }
    if clean {
        engine.record(ctx, inv, EntryKind::Command, &text)?;
        engine.step_finished(ctx, inv, inv.spec, Some(&media), StepState::Done, None)?;
        Ok(Reply::done(format!("{text}\n{next}")))
    } else {
        fail(text, "some objects were not restored".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_people_type_them() {
        let t = |s: &str| parse_time(s).map(|t| t.to_rfc3339());
        let want = Some("2026-11-25T10:30:00+00:00".to_string());
        assert_eq!(t("2026-11-25T10:30:00Z"), want);
        assert_eq!(t("2026-11-25T11:30:00+01:00"), want);
        assert_eq!(t("2026-11-25 10:30"), want);
        assert_eq!(t("2026-11-25T10:30Z"), want);
        assert_eq!(t("2026-11-25T10-30-00Z"), want);
        assert_eq!(t("2026-11-25").map(|s| s.len()), Some(25));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t("2026-13-01"), None);
    }

    #[test]
    fn a_time_before_the_first_snapshot_names_the_oldest() {
        let snap = |s: &str| Snapshot {
            key: format!("media/snapshots/{s}.jsonl.xz"),
            at: parse_time(s).unwrap(),
            size: 1,
        };
        let list = vec![snap("2026-11-25T12-00-00Z"), snap("2026-11-25T11-00-00Z")];
        let at =
            |s| snapshot_at(&list, parse_time(s).unwrap(), "media").map(|s| s.name().to_string());
        assert_eq!(at("2026-11-25T11:30:00Z").unwrap(), "2026-11-25T11-00-00Z");
        assert_eq!(at("2026-11-25T13:00:00Z").unwrap(), "2026-11-25T12-00-00Z");
        let e = at("2026-11-25T10:00:00Z").unwrap_err().to_string();
        assert!(e.contains("the oldest is 2026-11-25T11-00-00Z"), "{e}");
        let none = snapshot_at(&[], parse_time("2026-11-25").unwrap(), "media").unwrap_err();
        assert!(none.to_string().contains("/storage snapshot"));
    }
}
