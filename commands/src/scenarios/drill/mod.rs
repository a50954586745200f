//! The runbook's fire drills, done for real on scratch copies, with measured RTO and RPO, a
//! report, a history and a schedule.
//!
//! - [`database`]: Drill 1 — a scratch database on the `[drills] scratch_url_env` server, the
//!   latest backup restored into it (preflight and streaming restore, decrypting with the
//!   configured identity), `/db verify`, the application's start-up queries timed; dropped.
//! - [`media`]: Drill 2 — a sample of the newest media snapshot copied into a scratch prefix,
//!   damaged, restored from the snapshot, compared byte for byte, `/storage verify`; removed.
//! - `full`: Drill 3 — both, then `/search health` and `/api health`, against the full RTO,
//!   with a documentation review left to the humans.
//! - [`record`]: the drill in sled as it runs; every scratch resource is recorded (and
//!   flushed) before it is created, so [`recover`] drops what an interrupted drill left — and
//!   only that — at the next start, and marks the drill interrupted.
//! - [`report`]: the report, `/drill report`, `/drill history` with its trend chart.
//! - [`schedule`]: `[drills] schedule`, run by `serve`.

pub mod database;
pub mod media;
pub mod record;
pub mod report;
pub mod schedule;

use drbot_state::{Drill, DrillId, DrillStatus, EntryKind, Scratch, ScratchState};
use futures_util::FutureExt as _;

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{Choice, CommandSpec, Integer, Invocation, Text, auto, cmd, opt, req};
use crate::identity::Actor;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;
use crate::scenario::{self, Answer, Boxed, Post, Scenario, not_built};
use record::Run;

/// The drills of the runbook.
const DRILLS: &[&str] = crate::config::DRILL_KINDS;

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "drill",
        Some("start"),
        "Run a fire drill for real on scratch copies",
        &[
            req("kind", "Which drill", Choice(DRILLS)),
            opt(
                "keep",
                "Keep the scratch database afterwards",
                Choice(&["true", "false"]),
            ),
        ],
    ),
    cmd(
        "drill",
        Some("report"),
        "A drill's report: steps, RTO and RPO",
        &[auto(opt("drill", "The drill (newest if not given)", Text))],
    ),
    cmd(
        "drill",
        Some("history"),
        "Every drill with a trend chart against the targets",
        &[opt("limit", "How many", Integer { min: 1, max: 50 })],
    ),
];

/// The drills.
pub struct Drills;

/// The drill module.
pub const DRILL: Drills = Drills;

impl Scenario for Drills {
    fn name(&self) -> &'static str {
        "drill"
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
                Some("start") => start(engine, ctx, inv, progress).await,
                Some("report") => report_cmd(engine, inv),
                Some("history") => {
                    let limit = inv.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
                    Ok(report::history(engine, &engine.store().drills()?, limit))
                }
                _ => Err(not_built(inv)),
            }
        })
    }

    fn scheduled<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(schedule::run_due(engine))
    }

    fn recover<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Vec<String>> {
        Box::pin(recover(engine))
    }

    fn complete<'a>(
        &'a self,
        engine: &'a Engine,
        option: &'a str,
    ) -> Boxed<'a, Vec<scenario::Choice>> {
        Box::pin(async move {
            if option != "drill" {
                return Vec::new();
            }
            let now = engine.now();
            engine
                .store()
                .drills()
                .unwrap_or_default()
                .iter()
                .rev()
                .take(scenario::MAX_CHOICES)
                .map(|d| {
                    scenario::Choice::new(
                        format!(
                            "{} {} {} {}",
                            d.id,
                            d.kind,
                            d.status.as_str(),
                            render::time(d.started_at, now)
                        ),
                        d.id.to_string(),
                    )
                })
                .collect()
        })
    }
}

/// The name drills hold in the restore locks: one drill at a time.
const DRILL_LOCK: &str = "(fire drill)";

/// `/drill start kind:`.
async fn start(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let kind = inv.get("kind").unwrap_or("database").to_string();
    let keep = inv.get("keep") == Some("true");
    if keep && kind == "storage" {
        return Err(CommandError::Usage(
            "keep:true keeps a drill's scratch database; a storage drill has none. Leave keep: out."
                .to_string(),
        ));
    }
    // What an earlier drill could not drop goes first, and the reply says so.
    let cleaned = cleanup(engine, true).await;
    // What the drill needs is checked before anything is recorded or created.
    if kind != "storage" {
        database::drill_server(engine)?;
        crate::scenarios::database::catalogue::backup_bucket(engine)?;
    }
    if kind != "database" {
        crate::scenarios::storage::media::Buckets::of(engine)?;
    }
    let drill = run_drill(
        engine,
        &kind,
        &ctx.actor,
        &ctx.place.key(),
        false,
        keep,
        progress,
    )
    .await?;
    let mut text = summary(engine, &drill);
    for line in cleaned {
        text.push_str(&format!("\nBefore it: {line}"));
    }
    Ok(report::reply(engine, &drill, text))
}

/// The steps a drill of `kind` runs when nothing stops it (its card's "step n of m").
pub fn planned_steps(kind: &str) -> usize {
    match kind {
        "database" => database::STEPS,
        "storage" => media::STEPS,
        // Both, then search, the API and the documentation review.
        _ => database::STEPS + media::STEPS + 3,
    }
}

/// Runs a drill of `kind` start to end and returns it as stored, report included.
pub async fn run_drill(
    engine: &Engine,
    kind: &str,
    actor: &Actor,
    place: &str,
    scheduled: bool,
    keep: bool,
    progress: &dyn ProgressSink,
) -> Result<Drill, CommandError> {
    // One drill at a time in this process (the store's lock keeps other processes out).
    let _one = engine
        .restores()
        .take(DRILL_LOCK, format!("{kind} drill by {}", actor.name))
        .map_err(|crate::locks::Busy { running, .. }| {
            CommandError::Refused(format!(
                "A drill is already running ({running}). One drill at a time: wait for its report."
            ))
        })?;
    let run = Run::begin(
        engine,
        kind,
        actor,
        place,
        scheduled,
        planned_steps(kind),
        progress,
    )?;
    engine.store().flush().await?;
    let steps = async {
        match kind {
            "database" => database::drill(&run, keep).await,
            "storage" => media::drill(&run).await,
            _ => full(&run, keep).await,
        }
    };
    // A bug must not leave the drill running for ever, nor its scratch resources behind.
    let result = match std::panic::AssertUnwindSafe(steps).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let why = format!(
                "drbot hit an internal error and stopped the drill ({})",
                render::panic_text(panic.as_ref())
            );
            tracing::error!(drill = %run.id, "{why}");
            if let Ok(d) = run.drill() {
                // The step it was in ends failed, saying so (not "did not finish").
                if let Some(n) = d.steps.iter().rposition(|s| s.finished_at.is_none()) {
                    let _ = run.end(n, Some(false), &why);
                }
                let cleared = drop_recorded(engine, &d).await;
                let _ = engine.store().update_drill(d.id, |r| {
                    cleared.apply(r);
                    Ok::<_, CommandError>(Vec::new())
                });
            }
            Err(why)
        }
    };
    finish(&run, result).await
}

/// Drill 3: every component, then what is left to people.
async fn full(run: &Run<'_>, keep: bool) -> Result<(), String> {
    let mut failed = Vec::new();
    if let Err(e) = database::drill(run, keep).await {
        failed.push(format!("database: {e}"));
    }
    if let Err(e) = media::drill(run).await {
        failed.push(format!("storage: {e}"));
    }
    for (line, what) in [("/search health", "search"), ("/api health", "API")] {
        let n = run.step(line).map_err(|e| e.to_string())?;
        let inv = crate::scenarios::table()
            .parse(line)
            .map_err(|e| e.to_string())?;
        let answer = match what {
            "search" => {
                crate::scenarios::search::commands::health(run.engine, &run.ctx, &inv).await
            }
            _ => crate::scenarios::api::health(run.engine, &run.ctx, &inv).await,
        };
        match answer {
            Ok(r) => {
                let _ = run.end(n, Some(true), &r.text);
            }
            Err(CommandError::Refused(why)) => {
                // Not configured: said, not counted as passed.
                let _ = run.end(n, None, &format!("Not checked: {why}"));
            }
            Err(e) => {
                let text = e.to_string();
                let _ = run.end(n, Some(false), &text);
                failed.push(format!(
                    "{what}: {}",
                    text.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    let n = run
        .step("Documentation review (for the humans)")
        .map_err(|e| e.to_string())?;
    let _ = run.end(
        n,
        None,
        "Left to people: check RUNBOOK.md against what was done, and the contact and access lists (checklist in the report).",
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Ends a drill: its status, RTO, report, and an audit entry.
async fn finish(run: &Run<'_>, result: Result<(), String>) -> Result<Drill, CommandError> {
    let engine = run.engine;
    let now = engine.now();
    let reason = result.as_ref().err().map(|e| engine.secrets().redact(e));
    let drill = run.change(|d| {
        d.finished_at = Some(now);
        d.status = if reason.is_none() {
            DrillStatus::Passed
        } else {
            DrillStatus::Failed
        };
        d.reason = reason.clone();
        // Verified usable: when the last checking step passed.
        d.rto_ms = if reason.is_none() {
            d.steps
                .iter()
                .filter(|s| s.ok == Some(true))
                .filter_map(|s| s.finished_at)
                .max()
                .map(|at| record::millis(d.started_at, at))
        } else {
            None
        };
    })?;
    let line = summary(engine, &drill);
    let entry = engine.entry(
        &run.ctx,
        EntryKind::Command,
        line.lines().next().unwrap_or_default(),
    );
    let drill = store_report(engine, &drill, vec![entry])?;
    engine.store().flush().await?;
    Ok(drill)
}

/// Writes an ended drill's report into its record, with `entries` on the audit log.
fn store_report(
    engine: &Engine,
    drill: &Drill,
    entries: Vec<drbot_state::NewEntry>,
) -> Result<Drill, CommandError> {
    let all = engine.store().drills()?;
    let md = report::build(engine, drill, &all);
    engine.store().update_drill(drill.id, |d| {
        d.report = md.clone();
        Ok::<_, CommandError>(entries.clone())
    })
}

/// A few lines on a finished drill: what happened, what changed, what comes next.
pub fn summary(engine: &Engine, d: &Drill) -> String {
    let took = d
        .finished_at
        .map(|f| render::span(f - d.started_at))
        .unwrap_or_else(|| "—".to_string());
    let (rto, rpo) = report::targets(engine, &d.kind);
    let mut text = match d.status {
        DrillStatus::Passed => {
            let rto_t = chrono::Duration::minutes(rto as i64);
            let rto_line = match d.rto_ms {
                Some(ms) => {
                    let got = chrono::Duration::milliseconds(ms);
                    format!(
                        "RTO {} (target {}: {})",
                        render::span(got),
                        render::duration(rto_t),
                        render::verdict(rto_t, got)
                    )
                }
                None => "RTO not measured".to_string(),
            };
            let rpo_of = |what: &str, secs: Option<i64>, mins: Option<u64>| match (secs, mins) {
                (Some(s), Some(t)) => {
                    let (got, t) = (
                        chrono::Duration::seconds(s),
                        chrono::Duration::minutes(t as i64),
                    );
                    format!(
                        "; {what} {} (target {}: {})",
                        render::duration(got),
                        render::duration(t),
                        if got > t {
                            // Said loudly: the drill passed, the backups are too old.
                            format!("MISSED by {}", render::duration(got - t))
                        } else {
                            render::verdict(t, got)
                        }
                    )
                }
                _ => String::new(),
            };
            let mut rpo_line = rpo_of("RPO", d.rpo_secs, rpo);
            if d.kind == "full" {
                rpo_line.push_str(&rpo_of(
                    "storage RPO",
                    d.storage_rpo_secs,
                    Some(engine.config().objectives.rpo.storage),
                ));
            }
            format!(
                "{}: {} drill passed in {took}. {rto_line}{rpo_line}.",
                d.id, d.kind
            )
        }
        _ => {
            let at = d
                .steps
                .iter()
                .enumerate()
                .find(|(_, s)| s.ok == Some(false))
                .map(|(i, s)| format!(" at step {} ({})", i + 1, s.name))
                .unwrap_or_default();
            format!(
                "{}: {} drill {}{at} after {took}: {}.",
                d.id,
                d.kind,
                d.status.as_str().to_uppercase(),
                d.reason
                    .as_deref()
                    .unwrap_or("no reason recorded")
                    .trim_end_matches('.')
            )
        }
    };
    for (i, s) in d.steps.iter().enumerate() {
        let mark = match s.ok {
            Some(true) => "✓",
            Some(false) => "✗",
            None => "·",
        };
        let took = s
            .finished_at
            .map(|f| render::span(f - s.started_at))
            .unwrap_or_else(|| "—".to_string());
        text.push_str(&format!(
            "\n  {mark} {}. {} ({took}): {}",
            i + 1,
            s.name,
            render::truncate(s.detail.lines().next().unwrap_or_default(), 160)
        ));
    }
    for s in &d.scratch {
        let what = if s.kind == database::SCRATCH_DATABASE {
            format!("Scratch database {}", s.name)
        } else {
            format!("Scratch prefix {}", s.name)
        };
        let line = match s.state {
            ScratchState::Dropped => format!("{what} was removed."),
            ScratchState::Kept => format!(
                "{what} was kept, as asked. Drop it when done: psql \"${}\" -c 'DROP DATABASE {} WITH (FORCE)'",
                engine.config().drills.scratch_url_env,
                s.name
            ),
            ScratchState::NotCreated => format!("{what} was never created."),
            ScratchState::Planned | ScratchState::Created => format!(
                "{what} could NOT be removed; drbot tries again at its next start (or drop it by hand)."
            ),
        };
        text.push('\n');
        text.push_str(&line);
    }
    text.push_str(match d.status {
        DrillStatus::Passed => "\nNothing live was touched. Next: /drill history for the trend; the report (attached) has the Lessons Learned headings.",
        _ => "\nNothing live was touched. Next: fix what failed, then run the drill again; /drill report has every step.",
    });
    text
}

/// `/drill report drill:`.
fn report_cmd(engine: &Engine, inv: &Invocation) -> Result<Reply, CommandError> {
    let all = engine.store().drills()?;
    let drill = match inv.get("drill") {
        Some(raw) => {
            let id: DrillId = raw.parse().map_err(CommandError::Usage)?;
            all.iter().find(|d| d.id == id).cloned().ok_or_else(|| {
                CommandError::Usage(format!(
                    "{id} does not exist. {}",
                    match all.last() {
                        Some(d) => format!("The newest is {} (/drill history lists them).", d.id),
                        None => "No drill has run yet.".to_string(),
                    }
                ))
            })?
        }
        None => all.last().cloned().ok_or_else(|| {
            CommandError::Refused(
                "No drill has run yet. Start one with /drill start kind:database.".to_string(),
            )
        })?,
    };
    if drill.status == DrillStatus::Running {
        return Ok(Reply::done(format!(
            "{} ({} drill) is still running: {} steps so far, the last “{}”. Its report comes when it ends.",
            drill.id,
            drill.kind,
            drill.steps.len(),
            drill.steps.last().map_or("", |s| s.name.as_str())
        )));
    }
    let mut reply = report::reply(engine, &drill, summary(engine, &drill));
    // The report answers the question; its outcome is not the command's.
    reply.outcome = crate::reply::Outcome::Done;
    Ok(reply)
}

/// What dropping a drill's scratch resources did.
#[derive(Default)]
struct Cleared {
    /// Dropped, or already gone.
    done: Vec<Scratch>,
    /// Left alone, not carrying the drill's mark: a line each.
    not_ours: Vec<(Scratch, String)>,
    /// Not dropped (the server was down): a line each; tried again later.
    kept: Vec<String>,
}

impl Cleared {
    /// Writes it into the drill's record: dropped ones Dropped; ones that are not the drill's
    /// NotCreated, so no later cleanup touches them.
    fn apply(&self, r: &mut Drill) {
        for s in r.scratch.iter_mut() {
            let same = |x: &Scratch| x.kind == s.kind && x.name == s.name;
            if self.done.iter().any(same) {
                s.state = ScratchState::Dropped;
            } else if self.not_ours.iter().any(|(x, _)| same(x)) {
                s.state = ScratchState::NotCreated;
            }
        }
    }
}

/// Drops each of drill `id`'s scratch resources, a database only when it carries the drill's
/// mark.
async fn drop_each(engine: &Engine, id: DrillId, left: &[Scratch]) -> Cleared {
    let mut out = Cleared::default();
    for s in left {
        let dropped = if s.kind == database::SCRATCH_DATABASE {
            match database::drill_server(engine) {
                Ok(server) => {
                    match database::drop_scratch(&server, &s.name, &database::mark(engine, id))
                        .await
                    {
                        Ok(database::Dropped::Gone) => Ok(()),
                        Ok(database::Dropped::NotOurs(why)) => {
                            out.not_ours.push((s.clone(), why));
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            match crate::scenarios::storage::media::Buckets::of(engine) {
                Ok(b) => media::remove_prefix(&b.media, &s.name)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        match dropped {
            Ok(()) => out.done.push(s.clone()),
            Err(e) => out.kept.push(format!("{} {} ({e})", s.kind, s.name)),
        }
    }
    out
}

/// Drops what a drill recorded and has not dropped.
async fn drop_recorded(engine: &Engine, d: &Drill) -> Cleared {
    let left: Vec<Scratch> = d
        .scratch
        .iter()
        .filter(|s| matches!(s.state, ScratchState::Planned | ScratchState::Created))
        .cloned()
        .collect();
    drop_each(engine, d.id, &left).await
}

/// At start: drops what drills that were running when drbot stopped had recorded, and marks
/// them interrupted. Drops only what a drill recorded. Returns what it did, a line each.
pub async fn recover(engine: &Engine) -> Vec<String> {
    cleanup(engine, false).await
}

/// Drops what drills recorded and did not drop. At start (`leftovers` false): the drills that
/// were running, which no one runs any more. Later (`leftovers` true): what an earlier cleanup
/// could not drop (the drill server was down) of drills that ended — tried by `serve`'s
/// schedule and before a new drill, never at the start of every `exec`, which must not wait on
/// a drill server, and never a running drill's.
pub async fn cleanup(engine: &Engine, leftovers: bool) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(drills) = engine.store().drills() else {
        return out;
    };
    for d in drills {
        let left: Vec<_> = d
            .scratch
            .iter()
            .filter(|s| matches!(s.state, ScratchState::Planned | ScratchState::Created))
            .cloned()
            .collect();
        let wanted = if leftovers {
            d.status != DrillStatus::Running && !left.is_empty()
        } else {
            d.status == DrillStatus::Running
        };
        if !wanted {
            continue;
        }
        let cleared = drop_each(engine, d.id, &left).await;
        let (done, kept) = (&cleared.done, &cleared.kept);
        let now = engine.now();
        let was_running = d.status == DrillStatus::Running;
        let text = format!(
            "{}: the {} drill {}{}{}{}",
            d.id,
            d.kind,
            if was_running {
                "was interrupted (drbot stopped while it ran)"
            } else {
                "had left scratch resources"
            },
            if done.is_empty() {
                String::new()
            } else {
                format!(
                    "; dropped {}",
                    done.iter()
                        .map(|s| format!("{} {}", s.kind, s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            cleared
                .not_ours
                .iter()
                .map(|(s, why)| format!(
                    "; left {} {} alone: {why}, so drbot cannot tell it made it (drop it by hand if it is this drill's)",
                    s.kind, s.name
                ))
                .collect::<String>(),
            if kept.is_empty() {
                ".".to_string()
            } else {
                format!(
                    "; could not drop {} — tried again at the next start.",
                    kept.join(", ")
                )
            }
        );
        let entry = engine.system_entry(EntryKind::Command, &text);
        let changed = engine.store().update_drill(d.id, |r| {
            cleared.apply(r);
            if r.status == DrillStatus::Running {
                r.status = DrillStatus::Interrupted;
                r.finished_at = Some(now);
                r.reason = Some("drbot stopped while it ran".to_string());
            }
            Ok::<_, CommandError>(vec![entry.clone()])
        });
        if let Ok(r) = changed {
            let _ = store_report(engine, &r, Vec::new());
        }
        let _ = engine.store().flush().await;
        out.push(text);
    }
    out
}
