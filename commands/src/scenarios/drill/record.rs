//! A drill as it runs: its record in sled (created first, changed step by step), its steps'
//! clocks, and the scratch resources it creates, each recorded (and flushed) before it is
//! created so that a drill that dies leaves nothing drbot does not know about.

use chrono::{DateTime, Utc};
use drbot_state::{Drill, DrillId, DrillStatus, DrillStep, EntryKind, Scratch, ScratchState};

use crate::context::{Context, Engine, Place};
use crate::error::CommandError;
use crate::identity::Actor;
use crate::progress::{Progress, ProgressSink};
use crate::render;

/// A drill being run.
pub struct Run<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// Its number.
    pub id: DrillId,
    /// Its kind.
    pub kind: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Where its progress goes.
    pub progress: &'a dyn ProgressSink,
    /// Who the commands it runs are recorded as (the starter, in the drill's own place).
    pub ctx: Context,
    /// The steps it runs when nothing stops it (its card's "step n of m").
    pub planned: usize,
}

/// The running step's own work (a restore, a copy) shows on the drill's card.
impl ProgressSink for Run<'_> {
    fn update(&self, line: &str) {
        self.show(line, None, Vec::new());
    }

    fn progress(&self, p: &Progress<'_>) {
        self.show(p.line, p.fraction, p.facts.clone());
    }
}

impl<'a> Run<'a> {
    /// Records a new drill, running, and returns it.
    pub fn begin(
        engine: &'a Engine,
        kind: &str,
        actor: &Actor,
        place: &str,
        scheduled: bool,
        planned: usize,
        progress: &'a dyn ProgressSink,
    ) -> Result<Run<'a>, CommandError> {
        let now = engine.now();
        let ctx = Context {
            actor: actor.clone(),
            place: Place::Drill,
        };
        let drill = engine.store().create_drill(|id| {
            let drill = Drill {
                id,
                kind: kind.to_string(),
                started_by: actor.recorded(),
                place: place.to_string(),
                scheduled,
                started_at: now,
                finished_at: None,
                status: DrillStatus::Running,
                reason: None,
                steps: Vec::new(),
                scratch: Vec::new(),
                restored: None,
                rto_ms: None,
                rpo_secs: None,
                storage_restored: None,
                storage_rpo_secs: None,
                app_checks: Vec::new(),
                report: String::new(),
            };
            let entry = engine.entry(
                &ctx,
                EntryKind::Command,
                format!(
                    "{id}: {kind} drill started{}.",
                    if scheduled { " (scheduled)" } else { "" }
                ),
            );
            Ok::<_, CommandError>((drill, vec![entry]))
        })?;
        Ok(Run {
            engine,
            id: drill.id,
            kind: kind.to_string(),
            started_at: now,
            progress,
            ctx,
            planned,
        })
    }

    /// The drill as stored now.
    pub fn drill(&self) -> Result<Drill, CommandError> {
        self.engine
            .store()
            .drill(self.id)?
            .ok_or_else(|| CommandError::Failed(format!("{} is no longer stored.", self.id)))
    }

    /// Changes the stored drill.
    pub fn change(&self, f: impl Fn(&mut Drill)) -> Result<Drill, CommandError> {
        self.engine.store().update_drill(self.id, |d| {
            f(d);
            Ok::<_, CommandError>(Vec::new())
        })
    }

    /// Starts a step: on the record and in the progress; returns its index.
    pub fn step(&self, name: &str) -> Result<usize, CommandError> {
        let now = self.engine.now();
        let d = self.change(|d| {
            d.steps.push(DrillStep {
                name: name.to_string(),
                started_at: now,
                finished_at: None,
                ok: None,
                detail: String::new(),
            })
        })?;
        let n = d.steps.len();
        self.say(&format!("Step {n}: {name}…"), None);
        Ok(n - 1)
    }

    /// Ends step `n`: passed, failed, or left to people (`None`), with what it found.
    pub fn end(&self, n: usize, ok: Option<bool>, detail: &str) -> Result<(), CommandError> {
        let now = self.engine.now();
        let detail = self.engine.secrets().redact(detail);
        let d = self.change(|d| {
            if let Some(s) = d.steps.get_mut(n) {
                s.finished_at = Some(now);
                s.ok = ok;
                s.detail = detail.clone();
            }
        })?;
        if let Some(s) = d.steps.get(n) {
            let mark = match ok {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "·",
            };
            self.say(
                &format!(
                    "{mark} Step {}: {} ({}): {}",
                    n + 1,
                    s.name,
                    render::span(now - s.started_at),
                    render::truncate(detail.lines().next().unwrap_or_default(), 200)
                ),
                None,
            );
        }
        Ok(())
    }

    /// Ends step `n` as failed with `why`, and returns `why` as the drill's error.
    pub fn fail(&self, n: usize, why: String) -> Result<(), String> {
        let _ = self.end(n, Some(false), &why);
        Err(why)
    }

    /// A progress line under the drill's title.
    pub fn say(&self, line: &str, fraction: Option<f64>) {
        self.show(line, fraction, Vec::new());
    }

    /// The drill's card: the line, step n of m, the running step, the time against the RTO,
    /// and `inner` (what the running step's own work reports: its rate and ETA). `within` is
    /// how far the running step is, 0 to 1, when it says.
    fn show(&self, line: &str, within: Option<f64>, inner: Vec<(String, String)>) {
        let title = format!("{} — {} drill", self.id, self.kind);
        let mut facts = Vec::new();
        let mut fraction = None;
        if let Ok(d) = self.drill() {
            let planned = self.planned.max(d.steps.len());
            let settled = d.steps.iter().filter(|s| s.finished_at.is_some()).count();
            let running = d.steps.iter().rposition(|s| s.finished_at.is_none());
            let at = running.map_or(settled, |i| i + 1);
            facts.push(("Step".to_string(), format!("{at} of {planned}")));
            if let Some(i) = running {
                facts.push(("Running".to_string(), d.steps[i].name.clone()));
            }
            let (rto, _) = super::report::targets(self.engine, &self.kind);
            let rto = chrono::Duration::minutes(rto as i64);
            let elapsed = self.engine.now() - self.started_at;
            facts.push((
                "Elapsed".to_string(),
                format!(
                    "{} of the {} RTO{}",
                    render::span(elapsed),
                    render::duration(rto),
                    if elapsed > rto { " — past it" } else { "" }
                ),
            ));
            let part = running.and(within).unwrap_or(0.0).clamp(0.0, 1.0);
            fraction = Some(((settled as f64 + part) / planned.max(1) as f64).min(1.0));
        }
        for (name, value) in inner {
            match name.as_str() {
                "Elapsed" => {}
                "ETA" => facts.push(("Step ETA".to_string(), value)),
                _ => facts.push((name, value)),
            }
        }
        self.progress.progress(&Progress {
            title: &title,
            line,
            fraction,
            facts,
        });
    }

    /// Records a scratch resource before it is created, and writes that to disk: if drbot dies
    /// while creating it, the next start knows to drop it.
    pub async fn plan_scratch(&self, kind: &str, name: &str) -> Result<(), CommandError> {
        self.change(|d| {
            if !d.scratch.iter().any(|s| s.kind == kind && s.name == name) {
                d.scratch.push(Scratch {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    state: ScratchState::Planned,
                });
            }
        })?;
        self.engine.store().flush().await?;
        Ok(())
    }

    /// Moves a scratch resource to `state`.
    pub async fn scratch_is(
        &self,
        kind: &str,
        name: &str,
        state: ScratchState,
    ) -> Result<(), CommandError> {
        self.change(|d| {
            for s in d.scratch.iter_mut() {
                if s.kind == kind && s.name == name {
                    s.state = state;
                }
            }
        })?;
        self.engine.store().flush().await?;
        Ok(())
    }
}

/// Seconds between two times.
pub fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

/// Milliseconds between two times.
pub fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}
