//! `/db restore` as a destructive action: resolved into the exact backup (key, ETag, size)
//! and the target's address, read whole in a preflight while people decide (it runs only once
//! that has passed), and read again at execution.

use std::sync::Arc;

use super::catalogue::{backup_bucket, identities, resolve_backup, size, taken_at};
use super::restore::{preflight, run_restore};
use super::{staged, staged_restore};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Invocation, Text, auto, cmd, destructive, req};
use crate::options::required;
use crate::pg::Target;
use crate::progress::ProgressSink;
use crate::render;
use crate::scenario::{Answer, Boxed, Checked, Destructive, Inputs, Prepared, Reread};

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

/// `/db restore`.
pub struct Restore;

/// Where a target points, for binding and re-checking (no password).
fn target_addr(target: &Target) -> Result<String, CommandError> {
    let (config, _) = target.pg_config()?;
    Ok(format!(
        "{} as {}",
        crate::pg::host_of(&config),
        config.get_user().unwrap_or("(default user)")
    ))
}

/// What the digest covers: the same at request and at execution, from the same place. A
/// staged target's request also names its staging database.
fn inputs_of(
    object: &crate::bucket::ObjectInfo,
    target: &Target,
    addr: String,
    staging: Option<String>,
) -> Inputs {
    let mut inputs = Inputs::from([
        ("backup".to_string(), object.key.clone()),
        ("etag".to_string(), object.etag.clone().unwrap_or_default()),
        ("size".to_string(), object.size.to_string()),
        ("target".to_string(), target.name.clone()),
        ("target_addr".to_string(), addr),
    ]);
    if let Some(staging) = staging {
        inputs.insert("staged".to_string(), "true".to_string());
        inputs.insert("staging".to_string(), staging);
    }
    inputs
}

fn input<'a>(inputs: &'a Inputs, name: &str) -> Result<&'a str, CommandError> {
    inputs
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| CommandError::Failed(format!("the stored request has no {name}")))
}

impl Destructive for Restore {
    fn kind(&self) -> &'static str {
        "db-restore"
    }

    fn spec(&self) -> &'static CommandSpec {
        &RESTORE
    }

    fn prepare<'a>(
        &'a self,
        engine: &'a Engine,
        inv: &'a Invocation,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Result<Prepared, CommandError>> {
        Box::pin(async move {
            let target = Target::resolve(engine.config(), required(inv, "target")?, &engine.env())?;
            let addr = target_addr(&target)?;
            let (bucket, s) = backup_bucket(engine)?;
            let object = resolve_backup(&bucket, &s.db_prefix, required(inv, "backup")?).await?;
            let now = engine.now();
            let taken = taken_at(&object)
                .map(|t| {
                    format!(
                        ", taken {}, {} old",
                        render::stamp(t),
                        render::duration(now - t)
                    )
                })
                .unwrap_or_default();
            let age = match taken_at(&object) {
                Some(t) => format!(
                    "{} old when asked (taken {})",
                    render::duration(now - t),
                    render::stamp(t)
                ),
                None => "unknown: its name carries no time".to_string(),
            };
            let facts = vec![
                ("Backup".to_string(), object.key.clone()),
                ("Size".to_string(), size(object.size)),
                ("Age".to_string(), age),
                (
                    "Target".to_string(),
                    format!("{} ({})", target.name, target.shown()),
                ),
            ];
            let mut facts = facts;
            let mut summary = format!(
                "restore {} ({}{taken}) into {} ({})",
                object.key,
                size(object.size),
                target.name,
                target.shown(),
            );
            let staging = if staged_restore::is_staged(engine, &target.name) {
                let live = staged::live_database(&target)?;
                let staging = staged::staging_name(&live, now);
                summary.push_str(&format!(
                    ", staged: loaded into {staging} beside {live} now, swapped in by rename once approved"
                ));
                facts.push((
                    "Staged".to_string(),
                    format!(
                        "loaded into {staging} while this waits; the approval swaps it in for {live}, which is kept for /db rollback"
                    ),
                ));
                Some(staging)
            } else {
                None
            };
            Ok(Prepared {
                inputs: inputs_of(&object, &target, addr, staging),
                summary,
                details: String::new(),
                facts,
            })
        })
    }

    /// The whole backup read and the target looked at, while people decide: exactly the
    /// object the request is bound to (its ETag is required of the download).
    fn preflight<'a>(
        &'a self,
        engine: &'a Engine,
        inputs: &'a Inputs,
        progress: &'a dyn ProgressSink,
    ) -> Option<Boxed<'a, Result<Checked, CommandError>>> {
        Some(Box::pin(async move {
            let target = Target::resolve(engine.config(), input(inputs, "target")?, &engine.env())?;
            let (bucket, _) = backup_bucket(engine)?;
            let object = crate::bucket::ObjectInfo {
                key: input(inputs, "backup")?.to_string(),
                size: input(inputs, "size")?.parse().unwrap_or(0),
                last_modified: None,
                etag: Some(input(inputs, "etag")?.to_string()).filter(|e| !e.is_empty()),
            };
            if let Some(staging) = inputs.get("staging") {
                return staged_restore::preflight(
                    engine, &bucket, &object, &target, staging, progress,
                )
                .await;
            }
            let mut checked = preflight(engine, &bucket, &object, &target, progress).await?;
            if let Some(copy) = checked.spool.take() {
                engine.spools().put(
                    &super::restore::spool_key(&object),
                    copy,
                    super::restore::spool_age(engine),
                );
            }
            let sessions = match checked.sessions {
                0 => "none".to_string(),
                n => format!("{n}: stop the applications first (/step done step:stop-apps)"),
            };
            Ok(Checked {
                short: checked.short,
                details: checked.details,
                facts: vec![("Sessions connected".to_string(), sessions)],
            })
        }))
    }

    fn reread<'a>(
        &'a self,
        engine: &'a Engine,
        stored: &'a Inputs,
    ) -> Boxed<'a, Result<Inputs, Reread>> {
        Box::pin(async move {
            let name = input(stored, "target").map_err(Reread::Failed)?;
            let key = input(stored, "backup").map_err(Reread::Failed)?;
            let target = Target::resolve(engine.config(), name, &engine.env()).map_err(|e| {
                Reread::Gone(format!("target {name} can no longer be resolved ({e})"))
            })?;
            let addr = target_addr(&target).map_err(|e| Reread::Gone(e.to_string()))?;
            let (bucket, _) = backup_bucket(engine).map_err(Reread::Failed)?;
            let object = match bucket.head(key).await {
                Ok(Some(o)) => o,
                Ok(None) => {
                    return Err(Reread::Gone(format!(
                        "the backup {key} is gone from the bucket"
                    )));
                }
                Err(e) => {
                    return Err(Reread::Failed(CommandError::Failed(format!(
                        "{e}. Nothing was run."
                    ))));
                }
            };
            // Staged as configured now; the staging database the request loaded.
            let staging = staged_restore::is_staged(engine, name).then(|| {
                stored
                    .get("staging")
                    .cloned()
                    .unwrap_or_else(|| "(none: asked when it was not staged)".to_string())
            });
            Ok(inputs_of(&object, &target, addr, staging))
        })
    }

    fn release<'a>(
        &'a self,
        engine: &'a Engine,
        inputs: &'a Inputs,
        ran: bool,
    ) -> Option<Boxed<'a, Result<String, CommandError>>> {
        let staging = inputs.get("staging")?;
        Some(Box::pin(async move {
            let target = Target::resolve(engine.config(), input(inputs, "target")?, &engine.env())?;
            match staged_restore::release(&target, staging, ran).await? {
                staged_restore::Released::Swapped(text) => {
                    // The restore is live: it is the target's last restore (what /db verify
                    // compares with), as if the swap had answered before drbot stopped.
                    engine.store().record_restore(
                        &target.name,
                        &drbot_state::LastRestore {
                            key: input(inputs, "backup")?.to_string(),
                            at: engine.now(),
                            by: crate::identity::Actor::system().recorded(),
                        },
                    )?;
                    Ok(text)
                }
                staged_restore::Released::GivenBack(text) => Ok(text),
            }
        }))
    }

    fn changed(&self, before: &Inputs, after: &Inputs) -> String {
        let get = |m: &Inputs, k: &str| m.get(k).cloned().unwrap_or_default();
        let (target, key) = (get(before, "target"), get(before, "backup"));
        if get(before, "staged") != get(after, "staged") {
            return format!(
                "target {target} is {} now, unlike when it was requested",
                if get(after, "staged").is_empty() {
                    "no longer configured staged"
                } else {
                    "configured staged"
                }
            );
        }
        if get(before, "target_addr") != get(after, "target_addr") {
            return format!(
                "target {target} now points to {}, not {} as when it was requested",
                get(after, "target_addr"),
                get(before, "target_addr")
            );
        }
        let size = |m: &Inputs| size(get(m, "size").parse().unwrap_or(0));
        format!(
            "the backup {key} changed since it was requested (ETag {} → {}, {} → {})",
            get(before, "etag"),
            get(after, "etag"),
            size(before),
            size(after)
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
        Box::pin(async move {
            let target = Target::resolve(engine.config(), input(inputs, "target")?, &engine.env())?;
            let (bucket, _) = backup_bucket(engine)?;
            let key = input(inputs, "backup")?;
            let object = bucket
                .head(key)
                .await
                .map_err(|e| CommandError::Failed(format!("{e}. Nothing was run.")))?
                .ok_or_else(|| {
                    CommandError::Failed(format!("the backup {key} is gone from the bucket"))
                })?;
            if object.etag.as_deref().unwrap_or_default() != input(inputs, "etag")? {
                return Err(CommandError::Failed(format!(
                    "the backup {key} changed while the approval was checked. Nothing was run."
                )));
            }
            if let Some(staging) = inputs.get("staging") {
                return staged_restore::run(engine, ctx, inv, &object, &target, staging).await;
            }
            let ids = Arc::new(identities(engine)?);
            run_restore(engine, ctx, inv, &bucket, &object, &target, ids, progress).await
        })
    }
}
