//! What a runbook scenario module is to the rest of drbot: the [`Scenario`] trait that the
//! dispatcher, the approval gate, the background watch, the report and autocomplete call, and
//! the [`Destructive`] trait that every action needing a second person implements.
//!
//! A scenario owns its rows of the command table, its handlers, its destructive actions, its
//! background watch, its section of the report and its runbook steps. Adding one is a folder under `scenarios/`
//! and one line in `scenarios::ALL`: the dispatcher and the gate know none by name.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use drbot_state::{Incident, IncidentId};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Invocation};
use crate::progress::ProgressSink;
use crate::reply::Reply;

/// A boxed future borrowed for `'a`: what the traits' async methods return.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A command's answer, or why it was refused or failed.
pub type Answer = Result<Reply, CommandError>;

/// What kind of post the background work makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostKind {
    /// The periodic status summary.
    Status,
    /// The incident passed this percentage of its RTO.
    RtoWarning(u8),
    /// Nothing has happened for a while.
    Nudge,
    /// The newest backup is older than the RPO.
    RpoBreached,
    /// A backup within the RPO exists again.
    RpoRecovered,
    /// A scheduled drill passed.
    DrillPassed,
    /// A scheduled drill failed: the commanders are alerted.
    DrillFailed,
}

/// A message the background work wants posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// The incident it is about, if any.
    pub incident: Option<IncidentId>,
    /// Where to post it (`console`, `discord:<channel>`); the audit place when no incident.
    pub place: String,
    /// What it is.
    pub kind: PostKind,
    /// The text.
    pub text: String,
}

/// Puts a background finding on the timeline of every open incident (the audit log when none
/// is open) and returns the posts that carry it.
/// Scheduled work's outcome, said once when it starts failing (under the store flag `flag`)
/// and once when it works again (`recovered` before the text); otherwise on the audit log.
pub fn announce_scheduled(
    engine: &Engine,
    flag: &str,
    failed: bool,
    recovered: &str,
    text: String,
) -> Result<Vec<Post>, CommandError> {
    tracing::info!("{}", text.lines().next().unwrap_or_default());
    match (failed, engine.store().rpo_breached_of(flag)?) {
        (true, false) => {
            engine.store().set_rpo_breached_of(flag, true)?;
            post_to_open_incidents(engine, PostKind::Status, text)
        }
        (false, true) => {
            engine.store().set_rpo_breached_of(flag, false)?;
            post_to_open_incidents(engine, PostKind::Status, format!("{recovered} {text}"))
        }
        _ => {
            engine
                .store()
                .append_audit(engine.system_entry(drbot_state::EntryKind::Status, &text))?;
            Ok(Vec::new())
        }
    }
}

pub fn post_to_open_incidents(
    engine: &Engine,
    kind: PostKind,
    text: String,
) -> Result<Vec<Post>, CommandError> {
    let open: Vec<_> = engine
        .store()
        .active_incidents()?
        .into_iter()
        .filter(|i| i.status == drbot_state::IncidentStatus::Open)
        .collect();
    let entry = engine.system_entry(drbot_state::EntryKind::Status, &text);
    if open.is_empty() {
        engine.store().append_audit(entry)?;
        return Ok(vec![Post {
            incident: None,
            place: "audit".to_string(),
            kind,
            text,
        }]);
    }
    let mut posts = Vec::new();
    for i in open {
        engine.store().append_timeline(i.id, entry.clone())?;
        posts.push(Post {
            incident: Some(i.id),
            place: i.place.clone(),
            kind: kind.clone(),
            text: text.clone(),
        });
    }
    Ok(posts)
}

/// Whether a recovery objective was met: decided once, shown by the report, its card and
/// the chart alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Achieved within the target, with this much to spare.
    Met(chrono::Duration),
    /// Achieved (or still running) past the target by this much.
    Missed(chrono::Duration),
    /// Not finished yet, and not yet past its target.
    NotFinished,
    /// Nothing to measure (no restore in this incident).
    NotMeasured,
}

impl Verdict {
    /// The verdict of `achieved` against `target`, for an objective that is finished.
    pub fn of(target: chrono::Duration, achieved: chrono::Duration) -> Verdict {
        if achieved <= target {
            Verdict::Met(target - achieved)
        } else {
            Verdict::Missed(achieved - target)
        }
    }

    /// The verdict of an objective still running after `elapsed`.
    pub fn running(target: chrono::Duration, elapsed: chrono::Duration) -> Verdict {
        if elapsed > target {
            Verdict::Missed(elapsed - target)
        } else {
            Verdict::NotFinished
        }
    }

    /// The words shown.
    pub fn text(&self) -> String {
        match self {
            Verdict::Met(spare) => format!("met, {} to spare", crate::render::duration(*spare)),
            Verdict::Missed(by) => format!("missed by {}", crate::render::duration(*by)),
            Verdict::NotFinished => "not finished".to_string(),
            Verdict::NotMeasured => "—".to_string(),
        }
    }
}

/// One row of the recovery-objectives table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objective {
    /// `RTO (database)`, `RPO (storage)`.
    pub name: String,
    /// The runbook's target.
    pub target: chrono::Duration,
    /// What was achieved, in words (a duration, or why there is none).
    pub achieved: String,
    /// The verdict.
    pub verdict: Verdict,
}

impl Objective {
    /// The markdown table row.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} |",
            self.name,
            crate::render::duration(self.target),
            self.achieved.replace('|', "\\|"),
            self.verdict.text()
        )
    }
}

/// A scenario's part of the post-incident report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportSection {
    /// Rows of the recovery-objectives table.
    pub objectives: Vec<Objective>,
    /// Lines shown under the table.
    pub notes: Vec<String>,
}

/// Discord shows at most 25 choices.
pub const MAX_CHOICES: usize = 25;

/// One offered value while an option is typed: what is shown and what is filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Shown (at most 100 characters).
    pub name: String,
    /// Filled in (at most 100 characters).
    pub value: String,
}

impl Choice {
    /// A choice, cut to Discord's 100 characters.
    pub fn new(name: String, value: String) -> Choice {
        Choice {
            name: crate::render::truncate(&name, 100),
            value: crate::render::truncate(&value, 100),
        }
    }
}

/// A runbook scenario module.
pub trait Scenario: Send + Sync {
    /// Its name, as in help and logs (`database`).
    fn name(&self) -> &'static str;

    /// Its rows of the one command table, in help order.
    fn commands(&self) -> &'static [CommandSpec];

    /// Whether its commands do something yet. Only built ones are registered in Discord; the
    /// others answer "not built yet" from the console.
    fn built(&self) -> bool {
        true
    }

    /// Runs one of its commands that is not destructive.
    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer>;

    /// Its part of the runbook, if it has one: the steps an incident of this scenario runs
    /// (and the full scenario runs among the others'), with the commands that do them.
    fn procedure(&self) -> Option<&'static crate::runbook::Procedure> {
        None
    }

    /// Its destructive actions.
    fn actions(&self) -> &'static [&'static dyn Destructive] {
        &[]
    }

    /// One round of its background watch while serving.
    fn watch<'a>(&'a self, _engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Work it does on a schedule while serving (a snapshot every so often). It may take
    /// long: `serve` runs it beside its loop, one round at a time.
    fn scheduled<'a>(&'a self, _engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// At start, before any command: cleans up after work a killed drbot left half done
    /// (a drill's scratch database). Returns what it did, a line each.
    fn recover<'a>(&'a self, _engine: &'a Engine) -> Boxed<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    /// Its section of an incident's report, for the incident's span up to `end`.
    fn report(
        &self,
        _engine: &Engine,
        _incident: &Incident,
        _end: DateTime<Utc>,
    ) -> Result<ReportSection, CommandError> {
        Ok(ReportSection::default())
    }

    /// Values it offers for an option of that name (the newest backups for `backup`).
    fn complete<'a>(&'a self, _engine: &'a Engine, _option: &'a str) -> Boxed<'a, Vec<Choice>> {
        Box::pin(async { Vec::new() })
    }
}

/// An action's inputs, resolved: what the approvers see, what the digest covers, and what is
/// read again at execution.
pub type Inputs = BTreeMap<String, String>;

/// A destructive command resolved into an exact action, before anyone approves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The exact inputs (for a restore: the backup's key, ETag and size, the target's
    /// address). The input named `target`, if any, picks the approval threshold.
    pub inputs: Inputs,
    /// One line for the request, the timeline and the report.
    pub summary: String,
    /// What the preflight found, shown with the request.
    pub details: String,
    /// The same, named, for the request's card: what it acts on, its size and age, the
    /// target (never its password), what is connected to it.
    pub facts: Vec<(String, String)>,
}

/// What an action's preflight found, added to its request once it passed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// A few words added to the request's summary.
    pub short: String,
    /// Lines for the approver (sessions connected, roles to be created).
    pub details: String,
    /// Named facts added to the request's card.
    pub facts: Vec<(String, String)>,
}

/// Why an action's inputs could not be read again at execution.
#[derive(Debug)]
pub enum Reread {
    /// The input is gone or cannot be resolved: the approval is void, nothing ran.
    Gone(String),
    /// Reading failed (the bucket did not answer): the request fails, nothing ran.
    Failed(CommandError),
}

/// A destructive action: the approval gate's only view of what it runs.
pub trait Destructive: Send + Sync {
    /// Its kind, stored with the request and used in `[approvals] required` (`db-restore`).
    fn kind(&self) -> &'static str;

    /// The command it comes from.
    fn spec(&self) -> &'static CommandSpec;

    /// Resolves the command's inputs (and, for an action without [`Destructive::preflight`],
    /// checks them). Quick: the request is posted when it returns. Nothing changes.
    fn prepare<'a>(
        &'a self,
        engine: &'a Engine,
        inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Result<Prepared, CommandError>>;

    /// The slow part of preparing, run after the request is stored, while people decide (a
    /// restore reads the whole backup): nothing runs until it has passed, and a failure voids
    /// the request with its reason. `None`: `prepare` checked everything already.
    fn preflight<'a>(
        &'a self,
        engine: &'a Engine,
        inputs: &'a Inputs,
        progress: &'a dyn ProgressSink,
    ) -> Option<Boxed<'a, Result<Checked, CommandError>>> {
        let _ = (engine, inputs, progress);
        None
    }

    /// Gives back what its preflight or an unfinished run left (a staged restore's loaded
    /// database, a live database left refusing connections) once the request ended without
    /// running to its end; `ran` when it ended in its run (failed, or drbot stopped in it).
    /// Says, after the request's id, how it ended and what was given back (`ended without
    /// running: …`). `None`: nothing to give back.
    fn release<'a>(
        &'a self,
        engine: &'a Engine,
        inputs: &'a Inputs,
        ran: bool,
    ) -> Option<Boxed<'a, Result<String, CommandError>>> {
        let _ = (engine, inputs, ran);
        None
    }

    /// Reads the inputs again from the world, at execution, starting from the stored ones.
    fn reread<'a>(
        &'a self,
        engine: &'a Engine,
        stored: &'a Inputs,
    ) -> Boxed<'a, Result<Inputs, Reread>>;

    /// A few words for a request of this kind, for a list of pending requests.
    fn short(&self, inputs: &Inputs) -> String {
        let _ = inputs;
        self.kind().to_string()
    }

    /// Why the inputs read again differ from the approved ones, in words.
    fn changed(&self, before: &Inputs, after: &Inputs) -> String {
        let names: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| {
                format!(
                    "{k}: {} → {}",
                    before.get(k).map_or("(none)", String::as_str),
                    after.get(k).map_or("(none)", String::as_str)
                )
            })
            .collect();
        format!(
            "its inputs changed since it was requested ({})",
            names.join(", ")
        )
    }

    /// Runs it with the inputs as read again (they match the approved ones).
    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        inputs: &'a Inputs,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer>;
}

/// A scenario whose commands are in the table but do nothing yet: each answers "not built
/// yet", and none is registered in Discord.
pub struct NotBuilt {
    /// Its name.
    pub name: &'static str,
    /// Its rows of the command table.
    pub commands: &'static [CommandSpec],
}

impl Scenario for NotBuilt {
    fn name(&self) -> &'static str {
        self.name
    }

    fn commands(&self) -> &'static [CommandSpec] {
        self.commands
    }

    fn built(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        _engine: &'a Engine,
        _ctx: &'a Context,
        inv: &'a Invocation,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move { Err(not_built(inv)) })
    }
}

/// The answer of a command whose scenario is not built yet.
pub fn not_built(inv: &Invocation) -> CommandError {
    CommandError::Refused(format!(
        "{} is not built into this drbot yet. Do it by hand from RUNBOOK.md, \
         then record it with /step done (or /incident note).",
        inv.spec.path()
    ))
}
