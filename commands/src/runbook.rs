//! The runbook (`RUNBOOK.md`) as data: the step types, the post-recovery checklist and the
//! success criteria that every scenario ends with, and the [`Runbook`] the scenario folders
//! make together.
//!
//! Each scenario folder owns its recovery [`Procedure`] (its steps, with the commands that do
//! them, its title, what stakeholders are told is affected, its RTO). `scenarios::runbook`
//! makes each procedure a [`Scenario`] and composes the complete-system-failure scenario from
//! all of them; the engine is given that runbook when it is made, so nothing below the
//! scenarios imports them.
//!
//! A step is automated (drbot runs it: its command is named) or manual (a checklist item with
//! the runbook's text). Step ids are stable: they are stored in sled and typed by people.

use std::fmt;

use crate::config::Config;
use crate::grammar::CommandId;

/// The minutes of a recovery objective, read from the config (`[objectives.rto] database`).
pub type Minutes = fn(&Config) -> u64;

/// One scenario folder's recovery procedure: the runbook's steps for one thing that failed.
#[derive(Debug)]
pub struct Procedure {
    /// Its name: the scenario's, as typed and stored (`database`), and its component's in the
    /// complete-system-failure scenario.
    pub name: &'static str,
    /// The runbook's heading for the scenario (`Database corruption/loss`).
    pub title: &'static str,
    /// Its heading as a component of a larger scenario (`Database`).
    pub heading: &'static str,
    /// Its recovery steps, in runbook order.
    pub steps: &'static [Step],
    /// What is affected while it runs, as stakeholders name it.
    pub affected: &'static [&'static str],
    /// Its RTO.
    pub rto: Minutes,
}

/// A run of a scenario's recovery steps under one heading: a procedure's, or a composed
/// scenario's own (the full scenario's infrastructure assessment).
#[derive(Clone, Copy, Debug)]
pub struct Group {
    /// Its name (`database`, `infrastructure`): what a contact supports, the clock's label.
    pub name: &'static str,
    /// Its heading.
    pub heading: &'static str,
    /// Its steps.
    pub steps: &'static [Step],
    /// Its own RTO inside a composed scenario; none for steps that are not timed apart.
    pub rto: Option<Minutes>,
}

impl Group {
    /// A procedure's steps, timed by its RTO.
    pub fn of(p: &'static Procedure) -> Group {
        Group {
            name: p.name,
            heading: p.heading,
            steps: p.steps,
            rto: Some(p.rto),
        }
    }

    /// Whether the step with this id is one of its steps.
    pub fn has(&self, step_id: &str) -> bool {
        self.steps.iter().any(|s| s.id == step_id)
    }

    /// Its RTO inside a composed scenario, if it has its own.
    pub fn rto(&self, config: &Config) -> Option<chrono::Duration> {
        self.rto.map(|m| minutes(m(config)))
    }
}

fn minutes(m: u64) -> chrono::Duration {
    chrono::Duration::minutes(i64::try_from(m).unwrap_or(i64::MAX / 60_000))
}

/// A runbook scenario an incident runs: its recovery steps in groups, then the post-recovery
/// checklist and the success criteria.
#[derive(Debug)]
pub struct Scenario {
    name: &'static str,
    title: &'static str,
    affected: &'static [&'static str],
    rto: Minutes,
    groups: Vec<Group>,
}

impl Scenario {
    /// One procedure as a scenario of its own.
    pub fn of(p: &'static Procedure) -> Scenario {
        Scenario {
            name: p.name,
            title: p.title,
            affected: p.affected,
            rto: p.rto,
            groups: vec![Group::of(p)],
        }
    }

    /// A scenario made of several groups (the complete system failure: its own steps, then
    /// each procedure's).
    pub fn composed(
        name: &'static str,
        title: &'static str,
        affected: &'static [&'static str],
        rto: Minutes,
        groups: Vec<Group>,
    ) -> Scenario {
        Scenario {
            name,
            title,
            affected,
            rto,
            groups,
        }
    }

    /// The name used in commands and stored with the incident.
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// The runbook's heading for it.
    pub fn title(&self) -> &'static str {
        self.title
    }

    /// What is affected, as stakeholders name it.
    pub fn affected(&self) -> &'static [&'static str] {
        self.affected
    }

    /// Whether its recovery steps are shown and timed in groups (it spans several).
    pub fn grouped(&self) -> bool {
        self.groups.len() > 1
    }

    /// When it spans several groups, those with their own RTO, each with it.
    pub fn timed_groups<'a>(
        &'a self,
        config: &'a Config,
    ) -> impl Iterator<Item = (&'a Group, chrono::Duration)> + 'a {
        self.groups
            .iter()
            .filter(|_| self.grouped())
            .filter_map(|g| Some((g, g.rto(config)?)))
    }

    /// The group a recovery step is in; none for the post-recovery checklist and the success
    /// criteria.
    pub fn group_of(&self, step_id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.has(step_id))
    }

    /// Its recovery steps, then the post-recovery checklist and success criteria.
    pub fn steps(&self) -> impl Iterator<Item = &'static Step> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.steps.iter())
            .chain(POST_RECOVERY)
            .chain(SUCCESS_CRITERIA)
    }

    /// Its RTO in minutes, from `[objectives.rto]`.
    pub fn rto_mins(&self, config: &Config) -> u64 {
        (self.rto)(config)
    }

    /// Its RTO, from `[objectives.rto]` (bounded when the config is loaded).
    pub fn rto(&self, config: &Config) -> chrono::Duration {
        minutes(self.rto_mins(config))
    }

    /// The step with this id in the scenario.
    pub fn step(&self, id: &str) -> Option<&'static Step> {
        self.steps().find(|s| s.id == id)
    }
}

impl PartialEq for Scenario {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A scenario name this build does not know.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a scenario ({})", known.join(", "))]
pub struct UnknownScenario {
    /// The name asked for.
    pub name: String,
    /// The scenarios there are.
    pub known: Vec<&'static str>,
}

/// Every scenario this build knows, in runbook order.
#[derive(Debug)]
pub struct Runbook {
    scenarios: Vec<Scenario>,
}

impl Runbook {
    /// The runbook of these scenarios.
    pub fn new(scenarios: Vec<Scenario>) -> Runbook {
        Runbook { scenarios }
    }

    /// Every scenario, in runbook order.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// The scenario of that name, or why there is none.
    pub fn scenario(&self, name: &str) -> Result<&Scenario, UnknownScenario> {
        self.scenarios
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| UnknownScenario {
                name: name.to_string(),
                known: self.scenarios.iter().map(|s| s.name).collect(),
            })
    }

    /// The scenario an incident runs (stored by name), if this build still knows it.
    pub fn of(&self, incident: &drbot_state::Incident) -> Option<&Scenario> {
        self.scenario(&incident.scenario).ok()
    }

    /// The runbook step for a stored step record, if this build still knows it.
    pub fn step(&self, incident: &drbot_state::Incident, id: &str) -> Option<&'static Step> {
        self.of(incident).and_then(|s| s.step(id))
    }
}

/// Where in the runbook a step sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The scenario's recovery procedure.
    Recovery,
    /// "Post-Recovery Procedures".
    PostRecovery,
    /// "Success Criteria".
    SuccessCriteria,
}

impl Phase {
    /// The heading shown above the phase's steps.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Recovery => "Recovery",
            Phase::PostRecovery => "Post-recovery",
            Phase::SuccessCriteria => "Success criteria",
        }
    }
}

/// Which target a command must work on to do a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The production target (`production`, or the target marked `production = true`).
    Production,
    /// Any, or the command has no target.
    Any,
}

/// A command that does a step when it succeeds, and on which target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The command.
    pub command: CommandId,
    /// The target it must work on.
    pub on: On,
}

/// A command bound to the production target.
pub const fn prod(group: &'static str, sub: &'static str) -> Binding {
    Binding {
        command: CommandId::new(group, Some(sub)),
        on: On::Production,
    }
}

/// A command bound whatever its target.
pub const fn any(group: &'static str, sub: &'static str) -> Binding {
    Binding {
        command: CommandId::new(group, Some(sub)),
        on: On::Any,
    }
}

/// How a step gets done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// drbot does it: what to type, and the commands that do it.
    Automated(&'static str, &'static [Binding]),
    /// A person does it and marks it done: the checklist items.
    Manual(&'static [&'static str]),
}

/// One runbook step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Stable id, typed as `step:<id>` (the step's number works too).
    pub id: &'static str,
    /// The runbook's heading for it.
    pub title: &'static str,
    /// Its phase.
    pub phase: Phase,
    /// Automated or manual.
    pub action: Action,
    /// What the runbook says about it, and what drbot knows that the runbook does not.
    pub note: &'static str,
    /// Whether it changes data (and so needs a second person's approval when automated).
    pub destructive: bool,
}

impl Step {
    /// Whether `command` is one of the commands that do this step, on any target.
    pub fn bound_to(&self, command: CommandId) -> bool {
        matches!(self.action, Action::Automated(_, bindings) if bindings.iter().any(|b| b.command == command))
    }

    /// Whether `command` working on `target` does this step (`production` names the
    /// production target).
    pub fn done_by(&self, command: CommandId, target: Option<&str>, production: &str) -> bool {
        let Action::Automated(_, bindings) = self.action else {
            return false;
        };
        bindings.iter().any(|b| {
            b.command == command
                && match b.on {
                    On::Any => true,
                    On::Production => target == Some(production),
                }
        })
    }

    /// What to do next for this step, in one line; `production` names the production target.
    pub fn how(&self, production: &str) -> String {
        match self.action {
            Action::Automated(cmd, _) => {
                format!(
                    "run {}",
                    cmd.replace("target:production", &format!("target:{production}"))
                )
            }
            Action::Manual([]) => format!("confirm it, then /step done step:{}", self.id),
            Action::Manual(items) if items.len() == 1 => {
                format!("{}, then /step done step:{}", items[0], self.id)
            }
            Action::Manual(items) => format!(
                "check {} items ({}), then /step done step:{}",
                items.len(),
                items.join("; "),
                self.id
            ),
        }
    }
}

/// A step drbot does: what to type, and the commands (with their targets) that do it.
pub const fn auto(
    id: &'static str,
    title: &'static str,
    command: &'static str,
    by: &'static [Binding],
    note: &'static str,
) -> Step {
    Step {
        id,
        title,
        phase: Phase::Recovery,
        action: Action::Automated(command, by),
        note,
        destructive: false,
    }
}

/// A step a person does and marks done: its checklist items.
pub const fn manual(
    id: &'static str,
    title: &'static str,
    items: &'static [&'static str],
    note: &'static str,
) -> Step {
    Step {
        id,
        title,
        phase: Phase::Recovery,
        action: Action::Manual(items),
        note,
        destructive: false,
    }
}

const fn post(s: Step) -> Step {
    Step {
        phase: Phase::PostRecovery,
        ..s
    }
}

const fn criterion(id: &'static str, title: &'static str) -> Step {
    Step {
        id,
        title,
        phase: Phase::SuccessCriteria,
        action: Action::Manual(&[]),
        note: "",
        destructive: false,
    }
}

/// A step that changes data: its command needs a second person's approval.
pub const fn destructive(s: Step) -> Step {
    Step {
        destructive: true,
        ..s
    }
}

/// "Post-Recovery Procedures", for every scenario.
static POST_RECOVERY: &[Step] = &[
    post(auto(
        "post-integrity",
        "Data integrity verification",
        "/db verify target:production and /api health",
        &[prod("db", "verify"), any("api", "health")],
        "Comprehensive verification, then the API and web health endpoints.",
    )),
    post(manual(
        "post-performance",
        "Performance monitoring",
        &[
            "Monitor application response times",
            "Check database query performance",
            "Verify search functionality",
            "Monitor file upload/download speeds",
        ],
        "",
    )),
    post(auto(
        "post-backups",
        "Backup verification",
        "/db backup and /db backups",
        &[prod("db", "backup"), any("db", "backups")],
        "Takes a backup now and checks retention.",
    )),
    post(manual(
        "post-comms",
        "Communication",
        &[
            "Notify stakeholders of recovery completion (/notify stakeholders)",
            "Update status page",
            "Document incident timeline",
            "Schedule post-mortem meeting",
        ],
        "",
    )),
];

/// "Success Criteria", for every scenario.
static SUCCESS_CRITERIA: &[Step] = &[
    criterion("ok-services", "All critical services operational"),
    criterion("ok-integrity", "Data integrity verified"),
    criterion("ok-performance", "Performance within acceptable limits"),
    criterion("ok-security", "Security measures intact"),
    criterion("ok-monitoring", "Monitoring systems active"),
];

/// The runbook's "Lessons Learned" headings ("after each incident or drill, document:").
pub const LESSONS_LEARNED: &str = "\n## Lessons learned\n\n### What worked well\n\n\n### What could be improved\n\n\n\
     ### Timeline of events\n\n\n### Root cause analysis\n\n\n### Action items for improvement\n\n";
