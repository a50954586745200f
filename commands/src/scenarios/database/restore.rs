//! `/db restore`: the preflight that reads the whole backup while the request waits for its
//! approvals, and, once approved, the streaming restore into the target in one transaction, with live progress.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use chrono::Duration;
use drbot_state::{EntryKind, StepState};

use super::catalogue::{identities, size, taken_at};
use super::pipeline::{self, Counters, Identities};
use super::{backup, load, preflight, verify};
use crate::bucket::{Bucket, ObjectInfo};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::pg::Target;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;

/// How often long work reports progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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
        "Restoring: {} of {} {} ({pct}%), {} of SQL, {} tables, {rows} rows ({:.0} rows/s){}",
        size(read),
        size(total),
        if c.local() {
            "of the local copy read"
        } else {
            "downloaded"
        },
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
    let _guard = engine.restores().take(&target.name, what)?;
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
    let title = format!("Restore of {} into {}", object.key, target.name);
    progress.progress(&crate::progress::Progress {
        title: &title,
        line: &format!(
            "Restoring {} ({}) into {}…",
            object.key,
            size(object.size),
            target.name
        ),
        fraction: Some(0.0),
        facts: vec![("Size".to_string(), size(object.size))],
    });

    let started = Instant::now();
    let mut counters = Arc::new(Counters::default());
    let options = load_options(engine, target);
    // What this request's preflight decoded, kept on local disk: read instead of the bucket.
    let copy = engine.spools().take(&spool_key(object), spool_age(engine));
    let copy_note = copy.as_ref().map(|c| c.note.clone());
    let mut result = stream(
        bucket,
        object,
        target,
        ids.clone(),
        &counters,
        &options,
        &title,
        progress,
        copy,
    )
    .await;
    let mut copy_failed = String::new();
    // A copy that does not read back (damaged on disk) is not the backup's fault: its load
    // was rolled back, and the backup itself is read from the bucket.
    if counters.local()
        && let Err(RestoreError::Load(load::LoadError::Backup(why))) = &result
    {
        copy_failed = format!(
            "\nThe preflight's local copy could not be read back ({why}); that attempt was rolled back and the backup was read from the bucket instead."
        );
        engine.record(
            ctx,
            inv,
            EntryKind::Command,
            format!(
                "Restore of {} into {}: the preflight's local copy could not be read back; rolled back, reading the bucket instead.",
                object.key, target.name
            ),
        )?;
        let counters_again = Arc::new(Counters::default());
        result = stream(
            bucket,
            object,
            target,
            ids,
            &counters_again,
            &options,
            &title,
            progress,
            None,
        )
        .await;
        counters = counters_again;
    }
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
            let read = match &copy_note {
                // Read from the preflight's copy: the layers are the backup's, as it found them.
                Some(note) if counters.local() => format!(
                    "the {} backup{note} read whole by the preflight, its {} of SQL restored from the preflight's local copy (not downloaded again)",
                    size(object.size),
                    size(Counters::get(&counters.sql_bytes)),
                ),
                _ => format!(
                    "{} downloaded{}, {} of SQL",
                    size(Counters::get(&counters.downloaded)),
                    if layers.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", layers.join(" → "))
                    },
                    size(Counters::get(&counters.sql_bytes)),
                ),
            };
            let summary = format!(
                "Restored {} into {} in {}: {read}; {how}.",
                object.key,
                target.name,
                render::duration(elapsed),
            );
            let mut notes = copy_failed.clone();
            if loaded.moot_drops > 0 {
                let _ = write!(
                    notes,
                    "\n{} of pg_dump's --clean DROPs failed at first and were moot once the others had run (a partition's inherited key goes with its table).",
                    loaded.moot_drops
                );
            }
            if !loaded.skipped_settings.is_empty() {
                let _ = write!(
                    notes,
                    "\nSkipped settings {}'s server does not know (written by a newer pg_dump; psql skips them too): {}.",
                    target.name,
                    loaded.skipped_settings.join(", ")
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
            restored(
                engine,
                ctx,
                inv,
                target,
                object,
                &format!("{summary}{notes}"),
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

/// A restore into `target` is done (in place, or swapped in): said on the timeline, recorded
/// as the target's last restore, and its runbook step marked done.
pub fn restored(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    target: &Target,
    object: &ObjectInfo,
    text: &str,
) -> Result<(), CommandError> {
    engine.record(ctx, inv, EntryKind::Command, text)?;
    engine.store().record_restore(
        &target.name,
        &drbot_state::LastRestore {
            key: object.key.clone(),
            at: engine.now(),
            by: ctx.actor.recorded(),
        },
    )?;
    engine.step_finished(
        ctx,
        inv,
        inv.spec,
        Some(&target.name),
        StepState::Done,
        None,
    )
}

/// Streams `object` from the bucket into `target` in one transaction (age → xz → SQL), with
/// live progress under `title`. Nothing else: no timeline, no lock (the caller holds it).
#[allow(clippy::too_many_arguments)]
pub async fn stream(
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    ids: Arc<Identities>,
    counters: &Arc<Counters>,
    options: &load::LoadOptions,
    title: &str,
    progress: &dyn ProgressSink,
    copy: Option<crate::spool::Spool>,
) -> Result<load::Loaded, RestoreError> {
    let started = Instant::now();
    let lock_wait = options.lock_wait.as_secs();
    let client = target.connect().await.map_err(RestoreError::Target)?;
    // The local copy when there is one that opens (its file goes from the directory now; the
    // open handle still reads it), else the bucket.
    let local = copy.and_then(|c| match c.open() {
        Ok(file) => Some((file, c.size, c.identity())),
        Err(e) => {
            tracing::warn!(error = %e, "the preflight's local copy cannot be read: reading the bucket");
            None
        }
    });
    let rx = match local {
        Some((file, on_disk, identity)) => {
            Counters::add(&counters.total, on_disk);
            counters
                .local
                .store(true, std::sync::atomic::Ordering::Relaxed);
            pipeline::decode(
                Box::new(pipeline::CountedFile::new(file, counters.clone())),
                Arc::new(Identities::one(identity)),
                counters.clone(),
            )
        }
        None => {
            Counters::add(&counters.total, object.size);
            let (_, body) = bucket
                .get(&object.key, object.etag.as_deref())
                .await
                .map_err(RestoreError::Bucket)?;
            pipeline::start(body, ids, counters.clone())
        }
    };
    let load = async {
        load::load(&client, target, rx, counters, options)
            .await
            .map_err(RestoreError::Load)
    };
    tokio::pin!(load);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut load => break r,
            _ = tick.tick() => {
                let line = progress_line(counters, started, lock_wait);
                let total = Counters::get(&counters.total);
                let downloaded = Counters::get(&counters.downloaded);
                progress.progress(&crate::progress::Progress {
                    title,
                    line: &line,
                    fraction: (total > 0).then(|| downloaded as f64 / total as f64),
                    facts: crate::progress::pace(downloaded, (total > 0).then_some(total), started.elapsed(), "bytes"),
                });
            }
        }
    }
}

/// What a preflight's local copy is kept under: the exact object (key and ETag) it decoded.
pub fn spool_key(object: &ObjectInfo) -> String {
    format!(
        "{}@{}",
        object.key,
        object.etag.as_deref().unwrap_or_default()
    )
}

/// How long a preflight's local copy is worth keeping: as long as its request can be approved.
pub fn spool_age(engine: &Engine) -> std::time::Duration {
    std::time::Duration::from_secs(engine.config().approvals.ttl_secs.saturating_add(60))
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
pub fn load_options(engine: &Engine, target: &Target) -> load::LoadOptions {
    load::LoadOptions {
        lock_wait: std::time::Duration::from_secs(engine.config().restore.lock_wait_secs),
        maintenance_work_mem_mb: engine.config().restore.maintenance_work_mem_mb,
        parallel: 1,
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
    /// Other sessions connected to the target's database.
    pub sessions: usize,
    /// The local copy of the backup's SQL it read, for the restore that follows.
    pub spool: Option<crate::spool::Spool>,
}

/// The restore's preflight: reads the whole backup and looks at the target. A backup that
/// fails it voids its request: it never runs.
pub async fn preflight(
    engine: &Engine,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    progress: &dyn ProgressSink,
) -> Result<Checked, CommandError> {
    let options = load_options(engine, target);
    preflight_with(engine, bucket, object, target, &options, true, progress).await
}

/// The preflight with the load's options given; `for_approval` when its result is shown with
/// an approval request (a drill's is not).
pub async fn preflight_with(
    engine: &Engine,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    options: &load::LoadOptions,
    for_approval: bool,
    progress: &dyn ProgressSink,
) -> Result<Checked, CommandError> {
    let fail = |e: String| {
        CommandError::Failed(format!(
            "The preflight of {} for {} failed: {e}. Nothing was changed: {} is as it was before.",
            object.key, target.name, target.name,
        ))
    };
    // A manifest that records another size settles it before a byte is downloaded.
    if let Some(problem) = backup::fetch_manifest(bucket, &object.key)
        .await
        .and_then(|m| m.size_problem(object.size))
    {
        return Err(fail(format!("the backup is {problem}")));
    }
    let ids = Arc::new(identities(engine)?);
    let counters = Arc::new(Counters::default());
    Counters::add(&counters.total, object.size);
    progress.update(&format!(
        "Checking {} ({}) {}: reading it whole…",
        object.key,
        size(object.size),
        if for_approval {
            "while the request waits (it can be approved meanwhile)"
        } else {
            "before restoring it"
        }
    ));
    let (_, body) = bucket
        .get(&object.key, object.etag.as_deref())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let database = target
        .pg_config()
        .ok()
        .and_then(|(c, _)| c.get_dbname().map(str::to_string));
    // For an approval request, what it decodes is kept (encrypted, on local disk) for the
    // restore that follows, so that need not download and decompress it again.
    let spool = if for_approval && engine.config().restore.preflight_copy {
        crate::spool::SpoolWriter::create(engine.spools().dir())
            .map_err(|e| tracing::warn!(error = %e, "no local copy of the backup: the restore will read the bucket"))
            .ok()
    } else {
        None
    };
    let rx = pipeline::start_spooled(body, ids, counters.clone(), spool);
    let mut facts = preflight::read(rx, &counters, database, progress, &object.key)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let seen = preflight::look_at(target, &facts.needs)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let create = options.create_missing_roles;
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
    // A schema neither the backup nor the target has fails the restore, unless an extension
    // the backup installs may create it (pg_cron's `cron`): then it is only said.
    if !seen.missing_schemas.is_empty() && seen.new_extensions.is_empty() {
        lacks.push(format!(
            "schemas {} (the backup uses them but does not create them)",
            seen.missing_schemas.join(", ")
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
    if !seen.missing_schemas.is_empty() && !seen.new_extensions.is_empty() {
        let _ = write!(
            short,
            "; uses schemas {} that neither the backup nor {} has (the extensions it installs, {}, may create them; if not, the restore fails and changes nothing)",
            seen.missing_schemas.join(", "),
            target.name,
            seen.new_extensions.join(", ")
        );
    }
    if !seen.unknown_settings.is_empty() {
        let _ = write!(
            short,
            "; will skip settings {} (written by a newer pg_dump; {}'s server does not know them)",
            seen.unknown_settings.join(", "),
            target.name
        );
    }
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
    // Said of the backup when the restore reads the copy: the layers and format it found.
    let spool = facts.spool.take().map(|mut copy| {
        let layers: Vec<&str> = facts.layers.iter().map(|l| l.as_str()).collect();
        if !layers.is_empty() {
            copy.note = format!(" ({})", layers.join(" → "));
        }
        if facts.format == Some(pipeline::Format::Custom) {
            copy.note
                .push_str(" (custom format, read through pg_restore)");
        }
        copy
    });
    Ok(Checked {
        short,
        details,
        sessions: seen.sessions.len(),
        spool,
    })
}
