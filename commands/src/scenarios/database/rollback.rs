//! `/db rollback target:`: after a staged restore, the database kept from before it is swapped
//! back in (the one it replaces is kept in turn, so a second rollback undoes the first).

use drbot_state::EntryKind;

use super::catalogue::size;
use super::staged;
use super::staged_restore::{self, SwapIn};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Invocation, Text, auto, cmd, destructive, req};
use crate::options::required;
use crate::pg::Target;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;
use crate::scenario::{Answer, Boxed, Destructive, Inputs, Prepared, Reread};

/// `/db rollback`.
pub const ROLLBACK: CommandSpec = destructive(cmd(
    "db",
    Some("rollback"),
    "Swap the database kept from before a staged restore back in",
    &[auto(req(
        "target",
        "Staged database target from the config",
        Text,
    ))],
));

/// `/db rollback`.
pub struct Rollback;

/// The staged target and the newest database kept from before a swap into it.
async fn resolve(
    engine: &Engine,
    name: &str,
) -> Result<(Target, String, staged::Made, chrono::DateTime<chrono::Utc>), CommandError> {
    let target = Target::resolve(engine.config(), name, &engine.env())?;
    if !staged_restore::is_staged(engine, &target.name) {
        return Err(CommandError::Refused(format!(
            "{} is not staged ([targets.{}] staged = true), so no database is kept from before a restore into it: restore a backup instead (/db backups, then /db restore).",
            target.name, target.name
        )));
    }
    let live = staged::live_database(&target)?;
    let server = staged::server(&target, &live);
    let kept = staged::kept(&server, &live)
        .await
        .map_err(|e| CommandError::Failed(format!("could not list what is kept of {live}: {e}")))?;
    let Some((made, at)) = kept.into_iter().next() else {
        return Err(CommandError::Refused(format!(
            "No database is kept from before a staged restore of {} on its server (none named {}… by drbot): there is nothing to roll back to. Nothing was changed.",
            target.name,
            staged::kept_name(&live, "")
        )));
    };
    Ok((target, live, made, at))
}

fn inputs_of(target: &Target, made: &staged::Made, at: chrono::DateTime<chrono::Utc>) -> Inputs {
    Inputs::from([
        ("target".to_string(), target.name.clone()),
        ("target_addr".to_string(), target.shown()),
        ("kept".to_string(), made.name.clone()),
        ("kept_at".to_string(), at.to_rfc3339()),
    ])
}

impl Destructive for Rollback {
    fn kind(&self) -> &'static str {
        "db-rollback"
    }

    fn spec(&self) -> &'static CommandSpec {
        &ROLLBACK
    }

    fn prepare<'a>(
        &'a self,
        engine: &'a Engine,
        inv: &'a Invocation,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Result<Prepared, CommandError>> {
        Box::pin(async move {
            let (target, live, made, at) = resolve(engine, required(inv, "target")?).await?;
            let now = engine.now();
            let sessions = staged::live_sessions(&target).await.unwrap_or_default();
            let summary = format!(
                "roll {} back: swap in {} (kept {}, {} ago, {}) for {live}, which is kept in turn as {}",
                target.name,
                made.name,
                render::stamp(at),
                render::duration(now - at),
                size(made.bytes.max(0) as u64),
                staged::kept_name(&live, "rollback"),
            );
            let mut details = format!("What it swaps back: {}", made.comment);
            if !sessions.is_empty() {
                details.push_str(&format!(
                    "\n{} session(s) connected to {live}; the swap ends them:",
                    sessions.len()
                ));
                for s in sessions.iter().take(10) {
                    details.push_str(&format!("\n  {s}"));
                }
            }
            Ok(Prepared {
                inputs: inputs_of(&target, &made, at),
                summary,
                details,
                facts: vec![
                    (
                        "Swap in".to_string(),
                        format!(
                            "{} ({}, kept {})",
                            made.name,
                            size(made.bytes.max(0) as u64),
                            render::stamp(at)
                        ),
                    ),
                    (
                        "Target".to_string(),
                        format!("{} ({})", target.name, target.shown()),
                    ),
                    (
                        "Sessions connected".to_string(),
                        match sessions.len() {
                            0 => "none".to_string(),
                            n => format!("{n}: ended by the swap"),
                        },
                    ),
                ],
            })
        })
    }

    fn reread<'a>(
        &'a self,
        engine: &'a Engine,
        stored: &'a Inputs,
    ) -> Boxed<'a, Result<Inputs, Reread>> {
        Box::pin(async move {
            let name = stored.get("target").cloned().unwrap_or_default();
            match resolve(engine, &name).await {
                Ok((target, _, made, at)) => Ok(inputs_of(&target, &made, at)),
                Err(CommandError::Refused(why)) => Err(Reread::Gone(why)),
                Err(e) => Err(Reread::Failed(e)),
            }
        })
    }

    fn release<'a>(
        &'a self,
        engine: &'a Engine,
        inputs: &'a Inputs,
        ran: bool,
    ) -> Option<Boxed<'a, Result<String, CommandError>>> {
        // Nothing is made before the run; a run that did not finish may have left the live
        // database refusing connections, or finished its swap unseen.
        if !ran {
            return None;
        }
        let kept = inputs.get("kept")?;
        Some(Box::pin(async move {
            let name = inputs.get("target").cloned().unwrap_or_default();
            let target = Target::resolve(engine.config(), &name, &engine.env())?;
            Ok(staged_restore::release_rollback(&target, kept).await?)
        }))
    }

    fn changed(&self, before: &Inputs, after: &Inputs) -> String {
        let get = |m: &Inputs, k: &str| m.get(k).cloned().unwrap_or_default();
        format!(
            "the newest database kept from before a restore of {} is now {}, not {} as when it was requested",
            get(before, "target"),
            get(after, "kept"),
            get(before, "kept")
        )
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        inputs: &'a Inputs,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move {
            let name = inputs.get("target").cloned().unwrap_or_default();
            let kept = inputs.get("kept").cloned().unwrap_or_default();
            let target = Target::resolve(engine.config(), &name, &engine.env())?;
            let what = format!("{} rolling {} back to {kept}", ctx.actor.name, target.name);
            let _guard = engine.restores().take(&target.name, what)?;
            let swap = SwapIn {
                incoming: &kept,
                tag: "rollback".to_string(),
                why: format!("the rollback to {kept}"),
            };
            match staged_restore::swap_in(engine, &target, &swap).await {
                Ok((kept_as, swapped)) => {
                    let live = staged::live_database(&target).unwrap_or_default();
                    let text = format!(
                        "Rolled back: {} ({live}) is again the database kept as {kept}; {live} refused connections for {} ms. The one it replaced is kept as {kept_as}. {}",
                        target.name,
                        swapped.took.as_millis(),
                        if swapped.ended.is_empty() {
                            "No session had to be ended.".to_string()
                        } else {
                            format!(
                                "Ended {} session(s): {}.",
                                swapped.ended.len(),
                                swapped.ended.join("; ")
                            )
                        }
                    );
                    engine.record(ctx, inv, EntryKind::Command, &text)?;
                    Ok(Reply::done(format!(
                        "{text}\nNext: /db verify target:{}, then restart the applications. /db rollback target:{} again swaps {kept_as} back.",
                        target.name, target.name
                    )))
                }
                Err(e) => {
                    let text = format!("The rollback of {} to {kept} failed: {e}.", target.name);
                    engine.record(ctx, inv, EntryKind::Command, &text)?;
                    Err(CommandError::Failed(text))
                }
            }
        })
    }
}
