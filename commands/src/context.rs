//! The context every command runs in: the shared [`Engine`] (config, store, clock,
//! environment, known secrets, running restores) and the command's own [`Context`] (who is
//! acting, where), with what commands share — which incident a command applies to, timeline
//! entries, runbook step changes, recovery after a crash.
//!
//! Running a command is not here: every adapter (console, `exec`, Discord) hands lines to
//! [`Engine::run`], which lives in `dispatch.rs` (the one file that knows each command's
//! handler), and shows the `Reply`.
//! Changes and their timeline entries are written together, then flushed to disk before the
//! reply says they are done.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use drbot_state::{EntryKind, Incident, IncidentId, NewEntry, StepState, Store};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::CommandError;
use crate::grammar::{CommandSpec, INCIDENT_OPTION, Invocation};
use crate::identity::Actor;
use crate::locks::RestoreLocks;
use crate::redact::Secrets;
use crate::runbook::Runbook;

/// Reads an environment variable (secrets and URLs): the process's own, or a test's.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where a command was typed: the channel that decides which incident it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// The local console or `exec`: sees every open incident.
    Local,
    /// A Discord channel (or thread) by id: sees the incidents declared there.
    Channel(u64),
    /// The work of a fire drill: sees no incident, so the commands a drill runs (`/api
    /// health`) are on the audit log and never do an incident's step.
    Drill,
}

impl Place {
    /// The key stored on incidents declared here.
    pub fn key(&self) -> String {
        match self {
            Place::Local => "console".to_string(),
            Place::Channel(id) => format!("discord:{id}"),
            Place::Drill => "drill".to_string(),
        }
    }

    /// The active incidents a command typed here applies to without naming one: any on the
    /// console, the channel's own in a channel, none in a drill.
    fn active_incidents(&self, store: &Store) -> Result<Vec<Incident>, drbot_state::StateError> {
        match self {
            Place::Local => store.active_incidents(),
            Place::Channel(_) => store.active_incidents_in(&self.key()),
            Place::Drill => Ok(Vec::new()),
        }
    }
}

/// Who typed a command, and where.
#[derive(Clone, Debug)]
pub struct Context {
    /// The person.
    pub actor: Actor,
    /// The place.
    pub place: Place,
}

/// Runs commands against the incident state.
pub struct Engine {
    /// The scenarios an incident can run, with their steps.
    runbook: &'static Runbook,
    config: Arc<Config>,
    pub(crate) store: Store,
    clock: Arc<dyn Clock>,
    /// Declares are serialised so two at once cannot both open an incident in one place.
    pub(crate) declare_lock: tokio::sync::Mutex<()>,
    /// Where secrets and URLs are read from.
    env: Env,
    /// Restores running now, one per target.
    restores: RestoreLocks,
    /// The configured secrets' values, redacted from replies and the timeline.
    pub(crate) secrets: Secrets,
    /// Local copies of what preflights decoded, for the restores that follow them.
    spools: crate::spool::Spools,
    /// Where a test makes drbot fail as a bug would ([`Engine::fail_point`]); none otherwise.
    fail_points: Option<FailPoints>,
}

/// Says, for a named place in drbot, whether a test wants it to panic there.
pub type FailPoints = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Engine {
    /// An engine over an opened store, running the scenarios of `runbook` (`Engine::new`, in
    /// `scenarios`, gives it this build's).
    pub fn with_runbook(
        runbook: &'static Runbook,
        config: Arc<Config>,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        // Only the store's holder gets here: what a dead drbot left in spool/ is removed.
        let spools = crate::spool::Spools::new(store.path().join("spool"));
        Engine {
            spools,
            runbook,
            config,
            store,
            clock,
            declare_lock: tokio::sync::Mutex::new(()),
            env: Arc::new(|k| std::env::var(k).ok()),
            restores: RestoreLocks::default(),
            secrets: Secrets::default(),
            fail_points: None,
        }
        .with_secrets()
    }

    /// The scenarios an incident can run, with their steps.
    pub fn runbook(&self) -> &'static Runbook {
        self.runbook
    }

    /// Local copies of what preflights decoded.
    pub fn spools(&self) -> &crate::spool::Spools {
        &self.spools
    }

    /// Reads the configured secrets' values through the engine's environment.
    fn with_secrets(mut self) -> Engine {
        let values = self
            .config
            .secret_envs()
            .iter()
            .filter_map(|k| (self.env)(k))
            .collect::<Vec<_>>();
        self.secrets = Secrets::new(values);
        self
    }

    /// The known secrets: `redact` any text from outside before it is shown or stored.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Reads secrets and URLs from `env` instead of the process environment.
    pub fn with_env(mut self, env: Env) -> Engine {
        self.env = env;
        self.with_secrets()
    }

    /// Tests only: panics at the named places `points` picks, standing in for a bug there, so
    /// that what drbot does after a bug (a drill ended, its scratch dropped) can be tested.
    pub fn set_fail_points(&mut self, points: FailPoints) {
        self.fail_points = Some(points);
    }

    /// A named place a test may make fail (see [`Engine::set_fail_points`]); without fail
    /// points set, as always in drbot itself, nothing happens.
    #[allow(clippy::panic)]
    pub fn fail_point(&self, name: &str) {
        if self.fail_points.as_ref().is_some_and(|f| f(name)) {
            panic!("a failure injected at {name}");
        }
    }

    /// Reads an environment variable.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |k| (self.env)(k)
    }

    /// The restores running now.
    pub fn restores(&self) -> &RestoreLocks {
        &self.restores
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A timeline entry by the actor, now. URLs in the text lose their passwords.
    pub fn entry(&self, ctx: &Context, kind: EntryKind, text: impl AsRef<str>) -> NewEntry {
        NewEntry {
            at: self.now(),
            actor: ctx.actor.recorded(),
            proof: ctx.actor.proof,
            kind,
            text: self.secrets.redact(text.as_ref()),
        }
    }

    /// A timeline entry by drbot itself, now (background work).
    pub fn system_entry(&self, kind: EntryKind, text: &str) -> NewEntry {
        NewEntry {
            at: self.now(),
            actor: "drbot".to_string(),
            proof: drbot_state::Proof::System,
            kind,
            text: self.secrets.redact(text),
        }
    }

    /// The incident a command applies to: the one named by `incident:`, else the one open
    /// incident the place sees. `for_change` refuses closed incidents.
    pub fn select(
        &self,
        ctx: &Context,
        inv: &Invocation,
        for_change: bool,
    ) -> Result<Incident, CommandError> {
        if let Some(raw) = inv.get(INCIDENT_OPTION) {
            let id: IncidentId = raw.parse().map_err(CommandError::Usage)?;
            let incident = self.store.incident(id)?.ok_or_else(|| {
                CommandError::Usage(format!(
                    "{id} does not exist. {}",
                    self.open_list().unwrap_or_default()
                ))
            })?;
            if for_change && !incident.is_active() {
                return Err(CommandError::Refused(format!(
                    "{id} is closed; its timeline is read-only. Declare a new incident if work continues."
                )));
            }
            return Ok(incident);
        }
        let mut seen = ctx.place.active_incidents(&self.store)?;
        match seen.len() {
            0 => Err(CommandError::Refused(
                "There is no open incident here. Declare one with /incident declare scenario:<database|storage|search|full> severity:<sev1|sev2|sev3> title:<what is broken>."
                    .to_string(),
            )),
            1 => Ok(seen.remove(0)),
            _ => {
                let list: Vec<String> = seen
                    .iter()
                    .map(|i| format!("{} “{}” ({})", i.id, i.title, i.status.as_str()))
                    .collect();
                Err(CommandError::Usage(format!(
                    "Several incidents are open: {}. Add incident:<id> to say which, e.g. incident:{}.",
                    list.join(", "),
                    seen[0].id
                )))
            }
        }
    }

    /// Like [`Engine::select`], but a closed incident is found too: the one named by
    /// `incident:`, else the place's single active incident, else the newest incident
    /// declared in this place.
    pub fn select_any(&self, ctx: &Context, inv: &Invocation) -> Result<Incident, CommandError> {
        if inv.get(INCIDENT_OPTION).is_some() {
            return self.select(ctx, inv, false);
        }
        match self.select(ctx, inv, false) {
            Err(CommandError::Refused(why)) => self
                .store
                .incidents()?
                .into_iter()
                .rev()
                .find(|i| i.place == ctx.place.key())
                .ok_or(CommandError::Refused(why)),
            other => other,
        }
    }

    /// The incident a command's entries belong to without requiring one: the one named by
    /// `incident:`, else the single active incident the place sees.
    pub(crate) fn incident_for(
        &self,
        ctx: &Context,
        inv: Option<&Invocation>,
    ) -> Option<IncidentId> {
        // A closed incident's timeline is final; an unknown id names no timeline: both fall
        // back to the incident the place sees.
        let named = inv
            .and_then(|i| i.get(INCIDENT_OPTION))
            .and_then(|raw| raw.parse::<IncidentId>().ok())
            .filter(|id| matches!(self.store.incident(*id), Ok(Some(i)) if i.is_active()));
        if named.is_some() {
            return named;
        }
        let seen: Vec<IncidentId> = ctx
            .place
            .active_incidents(&self.store)
            .ok()?
            .into_iter()
            .map(|i| i.id)
            .collect();
        (seen.len() == 1).then(|| seen[0])
    }

    /// Records what a command did: on its incident's timeline, or in the audit log.
    pub fn record(
        &self,
        ctx: &Context,
        inv: &Invocation,
        kind: EntryKind,
        text: impl AsRef<str>,
    ) -> Result<(), CommandError> {
        let entry = self.entry(ctx, kind, text);
        match self.incident_for(ctx, Some(inv)) {
            Some(id) => self.store.append_timeline(id, entry).map(|_| ()),
            None => self.store.append_audit(entry).map(|_| ()),
        }
        .map_err(CommandError::from)
    }

    /// Marks the runbook step that `command` on `target` does as running, if the incident
    /// has one still to do. A command on another target than production is on the timeline
    /// but does no production step.
    pub fn step_started(
        &self,
        ctx: &Context,
        inv: &Invocation,
        command: &CommandSpec,
        target: Option<&str>,
    ) -> Result<(), CommandError> {
        self.step_change(ctx, inv, command, target, StepState::Running, None)
    }

    /// Marks the runbook step that `command` on `target` does as done, failed or interrupted.
    pub fn step_finished(
        &self,
        ctx: &Context,
        inv: &Invocation,
        command: &CommandSpec,
        target: Option<&str>,
        state: StepState,
        reason: Option<String>,
    ) -> Result<(), CommandError> {
        self.step_change(ctx, inv, command, target, state, reason)
    }

    /// Records a failure on the timeline (or the audit log) and marks the runbook step that
    /// `command` on `target` does as failed, with `reason`.
    pub fn step_failed(
        &self,
        ctx: &Context,
        inv: &Invocation,
        command: &CommandSpec,
        target: Option<&str>,
        text: &str,
        reason: String,
    ) -> Result<(), CommandError> {
        self.record(ctx, inv, EntryKind::Command, text)?;
        self.step_finished(ctx, inv, command, target, StepState::Failed, Some(reason))
    }

    /// Marks every open runbook step that `command` does as done (a health check that confirms
    /// both "Restart applications" and the post-recovery health step).
    pub fn steps_done(
        &self,
        ctx: &Context,
        inv: &Invocation,
        command: &CommandSpec,
    ) -> Result<(), CommandError> {
        let Some(id) = self.incident_for(ctx, Some(inv)) else {
            return Ok(());
        };
        let open = |s: &Self| -> Result<usize, CommandError> {
            let Some(i) = s.store.incident(id)? else {
                return Ok(0);
            };
            let scenario = s.runbook.of(&i);
            let production = s.config.production_target();
            Ok(i.steps
                .iter()
                .filter(|rec| !rec.state.is_settled())
                .filter(|rec| {
                    scenario
                        .and_then(|sc| sc.step(&rec.id))
                        .is_some_and(|st| st.done_by(command.id(), None, production))
                })
                .count())
        };
        // Each call settles the first open one; as many times as there are.
        for _ in 0..open(self)? {
            self.step_change(ctx, inv, command, None, StepState::Done, None)?;
        }
        Ok(())
    }

    fn step_change(
        &self,
        ctx: &Context,
        inv: &Invocation,
        command: &CommandSpec,
        target: Option<&str>,
        to: StepState,
        reason: Option<String>,
    ) -> Result<(), CommandError> {
        let Some(id) = self.incident_for(ctx, Some(inv)) else {
            return Ok(());
        };
        let now = self.now();
        let production = self.config.production_target();
        let runbook = self.runbook;
        self.store.update_incident(id, |i| {
            let scenario = runbook.of(i);
            let found = i.steps.iter().enumerate().find(|(_, rec)| {
                // A step this command left running is marked interrupted whatever target it
                // was on (a panic does not always know it).
                let does = scenario.and_then(|s| s.step(&rec.id)).is_some_and(|step| {
                    step.done_by(command.id(), target, production)
                        || (to == StepState::Interrupted && step.bound_to(command.id()))
                });
                let open = match to {
                    StepState::Running => !rec.state.is_settled(),
                    StepState::Interrupted => rec.state == StepState::Running,
                    _ => rec.state == StepState::Running || !rec.state.is_settled(),
                };
                does && open
            });
            let Some((n, _)) = found else {
                return Ok::<_, CommandError>(Vec::new());
            };
            let title = scenario
                .and_then(|s| s.step(&i.steps[n].id))
                .map_or("", |s| s.title);
            let rec = &mut i.steps[n];
            rec.state = to;
            rec.by = Some(ctx.actor.recorded());
            rec.at = Some(now);
            if to == StepState::Running {
                rec.started_at = Some(now);
            }
            rec.reason = reason.clone();
            rec.by_hand = false;
            i.last_activity = now;
            let verb = match to {
                StepState::Running => "started",
                StepState::Done => "done",
                StepState::Failed => "failed",
                other => other.as_str(),
            };
            let on = target.map(|t| format!(" on {t}")).unwrap_or_default();
            Ok(vec![self.entry(
                ctx,
                EntryKind::Step,
                format!("Step {}. {title} {verb} ({}{on}).", n + 1, command.path()),
            )])
        })?;
        Ok(())
    }

    /// After a crash or kill: steps that were running and approved actions that were running
    /// are marked interrupted (never resumed or re-run on their own). Returns what was marked.
    pub fn recover_interrupted(&self) -> Result<Vec<String>, CommandError> {
        use drbot_state::{ApprovalStatus, StepState};
        let mut marked = Vec::new();
        let ctx = Context {
            actor: crate::identity::Actor::system(),
            place: Place::Local,
        };
        for incident in self.store.active_incidents()? {
            if !incident.steps.iter().any(|s| s.state == StepState::Running) {
                continue;
            }
            let now = self.now();
            self.store.update_incident(incident.id, |i| {
                let mut entries = Vec::new();
                for (n, rec) in i.steps.iter_mut().enumerate() {
                    if rec.state == StepState::Running {
                        rec.state = StepState::Interrupted;
                        rec.at = Some(now);
                        rec.reason = Some("drbot stopped while it ran".to_string());
                        entries.push(self.entry(
                            &ctx,
                            EntryKind::Step,
                            format!(
                                "Step {}. {} was interrupted: drbot stopped while it ran. Check its result before going on.",
                                n + 1,
                                rec.id
                            ),
                        ));
                    }
                }
                Ok::<_, CommandError>(entries)
            })?;
            marked.push(format!("{}: a running step was interrupted", incident.id));
        }
        for r in self.store.approvals()? {
            if r.status == ApprovalStatus::Pending
                && r.preflight == drbot_state::PreflightState::Running
            {
                // Its preflight died with the process: it can never pass, so the request
                // can never run.
                self.store.update_approval(r.id, |req| {
                    req.status = ApprovalStatus::Voided;
                    req.preflight = drbot_state::PreflightState::Failed;
                    req.reason = Some(
                        "its preflight was interrupted: drbot stopped while it ran".to_string(),
                    );
                    Ok::<_, CommandError>(vec![self.entry(
                        &ctx,
                        EntryKind::Approval,
                        format!(
                            "{} voided: drbot stopped while its preflight ran. Nothing was run; ask again with {}.",
                            req.id, req.command
                        ),
                    )])
                })?;
                marked.push(format!(
                    "{} was voided (its preflight was interrupted)",
                    r.id
                ));
                continue;
            }
            if r.status != ApprovalStatus::Executing {
                continue;
            }
            self.store.update_approval(r.id, |req| {
                req.status = ApprovalStatus::Interrupted;
                Ok::<_, CommandError>(vec![self.entry(
                    &ctx,
                    EntryKind::Approval,
                    format!(
                        "{} was running when drbot stopped; it will not run again without a new request.",
                        req.id
                    ),
                )])
            })?;
            marked.push(format!("{} was interrupted", r.id));
        }
        if !marked.is_empty() {
            self.store.flush_blocking()?;
        }
        Ok(marked)
    }

    pub(crate) fn open_list(&self) -> Option<String> {
        let open = self.store.active_incidents().ok()?;
        if open.is_empty() {
            return Some("No incident is open.".to_string());
        }
        let ids: Vec<String> = open.iter().map(|i| i.id.to_string()).collect();
        Some(format!("Open: {}.", ids.join(", ")))
    }
}
