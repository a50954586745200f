//! `/db restore` into a staged target: the load into a staging database is the request's
//! preflight (it may run while people decide, since nothing live is touched), the approval
//! runs only the swap, and a request that ends without running gives its staging database
//! back.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use drbot_state::{EntryKind, StepState};

use super::catalogue::{identities, size};
use super::pipeline::Counters;
use super::staged::{self, MARK, StagedError};
use super::{backup, restore, verify};
use crate::bucket::{Bucket, ObjectInfo};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::pg::Target;
use crate::progress::{Lines, ProgressSink};
use crate::render;
use crate::reply::Reply;
use crate::scenario::Checked;

/// Whether restores into `target` are staged (`[targets.NAME] staged = true`).
pub fn is_staged(engine: &Engine, target: &str) -> bool {
    engine
        .config()
        .targets
        .get(target)
        .is_some_and(|t| t.staged)
}

/// The preflight of a staged restore: the staging database made beside the live one, the
/// backup loaded into it and the /db verify checks run on it (their verdict shown to the
/// approvers). A failed load drops it again: nothing is left.
pub async fn preflight(
    engine: &Engine,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    staging: &str,
    progress: &dyn ProgressSink,
) -> Result<Checked, CommandError> {
    let fail = |e: &dyn std::fmt::Display| {
        CommandError::Failed(format!(
            "The staged load of {} for {} failed: {e}. The live database was not touched.",
            object.key, target.name,
        ))
    };
    let live = staged::live_database(target).map_err(|e| fail(&e))?;
    if let Some(why) = staged::cannot_stage(target).await.map_err(|e| fail(&e))? {
        return Err(fail(&format!(
            "{} is configured staged but cannot be: {why}",
            target.name
        )));
    }
    if let Some(problem) = backup::fetch_manifest(bucket, &object.key)
        .await
        .and_then(|m| m.size_problem(object.size))
    {
        return Err(fail(&format!("the backup is {problem}")));
    }
    let server = staged::server(target, &live);
    let comment = format!(
        "{MARK} staging for the restore of {} into {}; swapped in by its approval, dropped otherwise",
        object.key, target.name
    );
    progress.update(&format!(
        "Creating {staging} beside {live} for the staged restore of {}…",
        object.key
    ));
    staged::create(&server, &live, staging, &comment)
        .await
        .map_err(|e| fail(&e))?;
    let result = load(engine, bucket, object, target, &live, staging, progress).await;
    if result.is_err()
        && let Err(e) = staged::drop_made(&server, staging).await
    {
        tracing::warn!(database = %staging, error = %e, "staging database not dropped after a failed load; dropped later");
    }
    result.map_err(|e| fail(&e))
}

async fn load(
    engine: &Engine,
    bucket: &Bucket,
    object: &ObjectInfo,
    target: &Target,
    live: &str,
    staging: &str,
    progress: &dyn ProgressSink,
) -> Result<Checked, String> {
    let into = target.with_database(&format!("{} (staging {staging})", target.name), staging);
    let options = super::load::LoadOptions {
        parallel: engine.config().restore.staged_sessions,
        ..restore::load_options(engine, target)
    };
    let ids = Arc::new(identities(engine).map_err(|e| e.to_string())?);
    let counters = Arc::new(Counters::default());
    let title = format!("Staged restore of {} into {staging}", object.key);
    let started = Instant::now();
    let loaded = restore::stream(
        bucket,
        object,
        &into,
        ids,
        &counters,
        &options,
        &title,
        &Lines(progress),
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    progress.update(&format!("Loaded into {staging}; verifying it…"));
    let manifest = backup::fetch_manifest(bucket, &object.key).await;
    // Shown to the approvers, not a reason to void: a check can fail as faithfully as the
    // source (constraints it holds NOT VALID), and that is theirs to weigh.
    let (verified, verdict) = match verify::run(engine, &into, manifest.as_ref()).await {
        Ok(report) if report.passed() => ("verified".to_string(), report.render()),
        Ok(report) => (
            "verification FAILED (below: weigh it before approving)".to_string(),
            report.render(),
        ),
        Err(e) => (
            "NOT verified (the checks could not run)".to_string(),
            format!("Verification could not run: {e}"),
        ),
    };
    let layers: Vec<&str> = loaded.layers.iter().map(|l| l.as_str()).collect();
    let short = format!(
        "loaded into {staging} in {:.1}s ({} downloaded{}, {} of SQL, {} tables, {} rows, by {} sessions side by side, with {} index builds among them), {verified}; the approval swaps it in for {live}",
        took.as_secs_f64(),
        size(Counters::get(&counters.downloaded)),
        if layers.is_empty() {
            String::new()
        } else {
            format!(", {}", layers.join(" → "))
        },
        size(Counters::get(&counters.sql_bytes)),
        Counters::get(&counters.tables),
        Counters::get(&counters.rows),
        loaded.sessions,
        loaded.parallel_builds,
    );
    let sessions = staged::live_sessions(target).await.unwrap_or_default();
    let mut details = verdict;
    if sessions.is_empty() {
        let _ = write!(details, "\nNo session is connected to {live}.");
    } else {
        let _ = write!(
            details,
            "\n{} session(s) connected to {live}; the swap ends them (stop the applications first: /step done step:stop-apps):",
            sessions.len()
        );
        for s in sessions.iter().take(10) {
            let _ = write!(details, "\n  {s}");
        }
    }
    Ok(Checked {
        short,
        details,
        facts: vec![
            (
                "Staging database".to_string(),
                format!("{staging}, loaded, {verified}"),
            ),
            (
                "Sessions connected".to_string(),
                match sessions.len() {
                    0 => "none".to_string(),
                    n => format!("{n}: ended by the swap (stop the applications first)"),
                },
            ),
        ],
    })
}

/// A free name starting from `base`: `base`, then `base_2`, `base_3`…
async fn free_name(server: &Target, base: &str) -> Result<String, StagedError> {
    for n in 1..100u32 {
        let name = if n == 1 {
            base.to_string()
        } else {
            fit_suffix(base, n)
        };
        if !staged::exists(server, &name).await? {
            return Ok(name);
        }
    }
    Err(StagedError::Refused(format!(
        "every name from {base} to {base}_99 is taken"
    )))
}

fn fit_suffix(base: &str, n: u32) -> String {
    let suffix = format!("_{n}");
    let mut end = base.len().min(63 - suffix.len());
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &base[..end])
}

/// What a swap is for, for its messages: a restore's or a rollback's.
pub struct SwapIn<'a> {
    /// The database swapped in.
    pub incoming: &'a str,
    /// The tag of the name the replaced one is kept under (`inc3`, `rollback`).
    pub tag: String,
    /// What the replaced one is kept from before, for its comment.
    pub why: String,
}

/// Swaps `incoming` in for the target's live database, keeping the replaced one. Returns the
/// name it is kept under and what the swap did.
pub async fn swap_in(
    engine: &Engine,
    target: &Target,
    s: &SwapIn<'_>,
) -> Result<(String, staged::Swapped), StagedError> {
    let live = staged::live_database(target)?;
    let server = staged::server(target, &live);
    let keep_as = free_name(&server, &staged::kept_name(&live, &s.tag)).await?;
    let comment = staged::kept_comment(&live, &s.why, s.incoming, engine.now());
    let swapped = staged::swap(&server, &live, s.incoming, &keep_as, &comment).await?;
    Ok((keep_as, swapped))
}

/// `/db restore` into a staged target, once approved: its staging database swapped in.
pub async fn run(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    object: &ObjectInfo,
    target: &Target,
    staging: &str,
) -> Result<Reply, CommandError> {
    let what = format!(
        "{} swapping in {} for {} since {}",
        ctx.actor.name,
        staging,
        target.name,
        render::time(engine.now(), engine.now())
    );
    let _guard = engine.restores().take(&target.name, what)?;
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "Staged restore of {} into {}: swapping in {staging}.",
            object.key, target.name
        ),
    )?;
    engine.step_started(ctx, inv, inv.spec, Some(&target.name))?;
    engine.store().flush().await?;
    let tag = engine
        .incident_for(ctx, Some(inv))
        .map(|i| format!("inc{}", i.0))
        .unwrap_or_else(|| engine.now().format("%Y%m%d%H%M%S").to_string());
    let why = format!("the restore of {}", object.key);
    let swap = SwapIn {
        incoming: staging,
        tag,
        why,
    };
    match swap_in(engine, target, &swap).await {
        Ok((kept, swapped)) => {
            let live = staged::live_database(target).unwrap_or_default();
            let kept_line = if swapped.kept {
                format!("The database it replaced is kept as {kept}.")
            } else {
                format!("There was no {live} to replace: it is back.")
            };
            let ended = if swapped.ended.is_empty() {
                "No session had to be ended.".to_string()
            } else {
                format!(
                    "Ended {} session(s) in its way: {}.",
                    swapped.ended.len(),
                    swapped.ended.join("; ")
                )
            };
            let text = format!(
                "Swapped in: {} ({live}) is now {} as restored, loaded into {staging} while the request waited; {live} refused connections for {} ms. {kept_line} {ended}",
                target.name,
                object.key,
                swapped.took.as_millis(),
            );
            restore::restored(engine, ctx, inv, target, object, &text)?;
            let undo = if swapped.kept {
                format!(
                    " If it is wrong, /db rollback target:{} swaps {kept} back in (with approval).",
                    target.name
                )
            } else {
                String::new()
            };
            Ok(Reply::done(format!(
                "{text}\nNext: start the applications, then /search reindex.{undo}"
            )))
        }
        Err(e) => {
            let text = format!("The swap of {staging} into {} failed: {e}.", target.name);
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            engine.step_finished(
                ctx,
                inv,
                inv.spec,
                Some(&target.name),
                StepState::Failed,
                Some(e.to_string()),
            )?;
            Err(CommandError::Failed(format!(
                "{text} The loaded database {staging} is dropped; ask again with /db restore to load it anew."
            )))
        }
    }
}

/// What giving back a staged request's leftovers found.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// Its swap had finished (its transaction committed) before drbot stopped: the restored
    /// database is live. How it ended.
    Swapped(String),
    /// Nothing was swapped: how it ended and what was given back.
    GivenBack(String),
}

/// After a staged request ended without its swap, or in it: says how it ended and gives back
/// what it left. A swap under way (`swapping`: it failed, or drbot stopped in it) may have
/// finished (its transaction committed): that is said, and nothing is dropped. Otherwise the
/// staging database is dropped and, after a swap under way, the live database accepts
/// connections again if it was left refusing them.
pub async fn release(
    target: &Target,
    staging: &str,
    swapping: bool,
) -> Result<Released, StagedError> {
    let live = staged::live_database(target)?;
    let server = staged::server(target, &live);
    if swapping && let Some(kept) = staged::kept_for(&server, &live, staging).await? {
        return Ok(Released::Swapped(format!(
            "finished its swap before drbot stopped: {live} is the restored database (loaded into {staging}); the one it replaced is kept as {kept}"
        )));
    }
    let how = if swapping {
        "ended without its swap"
    } else {
        "ended without running"
    };
    if !staged::exists(&server, staging).await? {
        return Ok(Released::GivenBack(format!(
            "{how}: {staging} is gone already"
        )));
    }
    let reopened = swapping && staged::reopen(&server, &live).await?;
    staged::drop_made(&server, staging).await?;
    Ok(Released::GivenBack(format!(
        "{how}: its staging database {staging} was dropped{}",
        if reopened {
            format!(" and {live} accepts connections again")
        } else {
            String::new()
        }
    )))
}

/// After a rollback that failed or was interrupted in its swap: whether the swap finished,
/// and the live database accepting connections again if it was left refusing them.
pub async fn release_rollback(target: &Target, kept: &str) -> Result<String, StagedError> {
    let live = staged::live_database(target)?;
    let server = staged::server(target, &live);
    if let Some(replaced) = staged::kept_for(&server, &live, kept).await? {
        return Ok(format!(
            "finished its swap before drbot stopped: {live} is again the database kept as {kept}; the one it replaced is kept as {replaced}"
        ));
    }
    Ok(if staged::reopen(&server, &live).await? {
        format!("ended without its swap: {live} accepts connections again")
    } else {
        format!("ended without its swap: {live} is as it was")
    })
}
