//! `/incident declare|status|timeline|note|role|resolve|close`: the incident's lifecycle.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use drbot_state::{EntryKind, Incident, IncidentId, IncidentStatus, StepRecord, StepState};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::identity::Principal;
use crate::options::required;
use crate::render;
use crate::reply::{Lifecycle, Reply};
use crate::runbook::{Phase, Runbook};

/// The longest title or note kept (Discord messages hold 2000 characters).
const MAX_TEXT: usize = 1500;
/// Up to this many timeline entries are shown in full; more are condensed, the full text
/// attached.
const TIMELINE_SHOWN: usize = 30;

fn bounded<'a>(inv: &'a Invocation, name: &str) -> Result<&'a str, CommandError> {
    let v = required(inv, name)?;
    if v.chars().count() > MAX_TEXT {
        return Err(CommandError::Usage(format!(
            "{name}: is {} characters long; keep it under {MAX_TEXT}.",
            v.chars().count()
        )));
    }
    Ok(v)
}

/// The principal holding an incident role; before principals were stored, the holder's name
/// as a `[people]` entry.
fn holder(incident: &Incident, role: &str) -> Option<String> {
    incident.role_ids.get(role).cloned().or_else(|| {
        incident
            .roles
            .get(role)
            .map(|n| Principal::person(n).to_string())
    })
}

/// Commander-only actions: the commander role, or being this incident's commander.
fn require_command(
    ctx: &Context,
    incident: Option<&Incident>,
    what: &str,
) -> Result<(), CommandError> {
    // Who holds it is a principal: a Discord user who calls themselves like the commander
    // is not the commander.
    let is_incident_commander = incident
        .and_then(|i| holder(i, "commander"))
        .is_some_and(|c| c == ctx.actor.id.as_str());
    if ctx.actor.has_role("commander") || is_incident_commander {
        return Ok(());
    }
    let holder = incident
        .and_then(|i| i.roles.get("commander"))
        .map(|c| format!(" This incident's commander is {c}."))
        .unwrap_or_default();
    Err(CommandError::Refused(format!(
        "{what} needs the commander role, and {} does not have it.{holder} \
         Ask a commander, or give {} the role in the config ([people.{}] roles).",
        ctx.actor.name, ctx.actor.name, ctx.actor.name
    )))
}

fn open_only(incident: &Incident, what: &str) -> Result<(), CommandError> {
    match incident.status {
        IncidentStatus::Open => Ok(()),
        IncidentStatus::Resolved => Err(CommandError::Refused(format!(
            "{} was already resolved at {}; {what} needs an open incident. Close it with /incident close.",
            incident.id,
            render::stamp(incident.resolved_at.unwrap_or(incident.declared_at))
        ))),
        IncidentStatus::Closed => Err(CommandError::Refused(format!(
            "{} is closed; {what} needs an open incident.",
            incident.id
        ))),
    }
}

/// `/incident declare`.
pub fn declare(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    require_command(ctx, None, "Declaring an incident")?;
    let scenario = engine
        .runbook()
        .scenario(required(inv, "scenario")?)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let severity = required(inv, "severity")?.to_string();
    let title = bounded(inv, "title")?.to_string();
    let place = ctx.place.key();
    if let Some(open) = engine
        .store()
        .active_incidents_in(&place)?
        .into_iter()
        .next()
    {
        return Err(CommandError::Refused(format!(
            "{} “{}” is still {} here (declared {} by {}). One incident per channel: add to it, \
             or finish it with /incident close first.",
            open.id,
            open.title,
            open.status.as_str(),
            render::time(open.declared_at, engine.now()),
            open.declared_by
        )));
    }
    let now = engine.now();
    let steps: Vec<_> = scenario.steps().collect();
    let incident = engine.store().create_incident(|id| {
        let incident = Incident {
            id,
            scenario: scenario.as_str().to_string(),
            severity: severity.clone(),
            title: title.clone(),
            place: place.clone(),
            status: IncidentStatus::Open,
            declared_at: now,
            declared_by: ctx.actor.recorded(),
            resolved_at: None,
            resolved_by: None,
            closed_at: None,
            closed_by: None,
            roles: [("commander".to_string(), ctx.actor.recorded())].into(),
            role_ids: [("commander".to_string(), ctx.actor.id.to_string())].into(),
            steps: steps.iter().map(|s| StepRecord::pending(s.id)).collect(),
            last_activity: now,
            watch: Default::default(),
        };
        let entry = engine.entry(
            ctx,
            EntryKind::Declared,
            format!(
                "Declared {severity} {scenario} incident “{title}”; commander {}.",
                ctx.actor.display()
            ),
        );
        Ok::<_, CommandError>((incident, vec![entry]))
    })?;
    let rto = scenario.rto(engine.config());
    let mut text = format!(
        "Declared {}: “{}” ({severity}, {} — {}). Clock started {}; RTO target {}. Commander: {}.\n",
        incident.id,
        incident.title,
        scenario,
        scenario.title(),
        render::time(now, now),
        render::duration(rto),
        ctx.actor.name
    );
    let _ = write!(
        text,
        "{} runbook steps (/step list). {}",
        steps.len(),
        next_line(engine, &incident)
    );
    Ok(Reply::done(text).then(Lifecycle::Declared(incident.id)))
}

/// The line naming the next step and how to do it.
pub(crate) fn next_line(engine: &Engine, incident: &Incident) -> String {
    match next_step(incident) {
        Some((n, rec)) => match engine.runbook().step(incident, &rec.id) {
            Some(step) => format!(
                "Next: {n}. {} — {}.",
                step.title,
                step.how(engine.config().production_target())
            ),
            None => format!("Next: {n}. {}.", rec.id),
        },
        None => match incident.status {
            IncidentStatus::Open => {
                "Every step is done or skipped. Next: /incident resolve.".to_string()
            }
            _ => "Every step is done or skipped.".to_string(),
        },
    }
}

/// The first step that is not settled, with its 1-based number.
pub(crate) fn next_step(incident: &Incident) -> Option<(usize, &StepRecord)> {
    incident
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| !s.state.is_settled())
        .map(|(i, s)| (i + 1, s))
}

fn elapsed_line(engine: &Engine, incident: &Incident) -> String {
    let end = incident.resolved_at.unwrap_or_else(|| engine.now());
    let elapsed = end - incident.declared_at;
    let Some(scenario) = engine.runbook().of(incident) else {
        return format!("Elapsed {}.", render::duration(elapsed));
    };
    let rto = scenario.rto(engine.config());
    let pct = if rto.num_seconds() > 0 {
        elapsed.num_seconds() * 100 / rto.num_seconds()
    } else {
        0
    };
    let verb = if incident.resolved_at.is_some() {
        "Took"
    } else {
        "Elapsed"
    };
    let over = if elapsed > rto {
        format!(" — over the RTO by {}", render::duration(elapsed - rto))
    } else {
        String::new()
    };
    format!(
        "{verb} {} of the {} RTO ({pct}%){over}.",
        render::duration(elapsed),
        render::duration(rto)
    )
}

/// In the full scenario, each component's clock against its own RTO, a line each.
pub fn component_clocks(engine: &Engine, incident: &Incident) -> Vec<String> {
    let Some(scenario) = engine.runbook().of(incident) else {
        return Vec::new();
    };
    let now = incident.resolved_at.unwrap_or_else(|| engine.now());
    scenario
        .timed_groups(engine.config())
        .map(|(group, rto)| {
            let name = group.name;
            let steps: Vec<_> = incident.steps.iter().filter(|s| group.has(&s.id)).collect();
            let settled = steps.iter().filter(|s| s.state.is_settled()).count();
            let done_at = (settled == steps.len())
                .then(|| steps.iter().filter_map(|s| s.at).max())
                .flatten();
            match done_at {
                Some(at) => {
                    let took = at - incident.declared_at;
                    format!(
                        "  {name:<8} done in {} of its {} RTO ({})",
                        render::duration(took),
                        render::duration(rto),
                        render::verdict(rto, took)
                    )
                }
                None => {
                    let elapsed = now - incident.declared_at;
                    let pct = (elapsed.num_seconds() * 100)
                        .checked_div(rto.num_seconds())
                        .unwrap_or(0);
                    format!(
                        "  {name:<8} {} of its {} RTO ({pct}%){}, {settled} of {} steps settled",
                        render::duration(elapsed),
                        render::duration(rto),
                        if elapsed > rto {
                            format!(" — OVER by {}", render::duration(elapsed - rto))
                        } else {
                            String::new()
                        },
                        steps.len()
                    )
                }
            }
        })
        .collect()
}

/// The steps grouped by phase (and, in the full scenario, by component), one line each.
pub(crate) fn steps_block(runbook: &Runbook, incident: &Incident, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut phase: Option<Phase> = None;
    let mut group: Option<&str> = None;
    let scenario = runbook.of(incident).filter(|s| s.grouped());
    let width = incident.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for (i, rec) in incident.steps.iter().enumerate() {
        let step = runbook.step(incident, &rec.id);
        let this_phase = step.map(|s| s.phase).unwrap_or(Phase::Recovery);
        if phase != Some(this_phase) {
            let _ = writeln!(out, "{}", this_phase.title());
            phase = Some(this_phase);
        }
        let this_group = scenario.and_then(|s| s.group_of(&rec.id));
        if let Some(g) = this_group
            && group != Some(g.name)
        {
            let _ = writeln!(out, " {}", g.heading);
        }
        group = this_group.map(|g| g.name);
        let mark = match rec.state {
            StepState::Pending => "·",
            StepState::Running => "▶",
            StepState::Done => "✓",
            StepState::Skipped => "–",
            StepState::Failed => "✗",
            StepState::Interrupted => "!",
        };
        let title = step
            .map(|s| s.title)
            .unwrap_or("(step no longer in the runbook)");
        let kind = match step.map(|s| s.action) {
            Some(crate::runbook::Action::Automated(..)) => "auto",
            _ => "manual",
        };
        let mut detail = match (rec.state, &rec.by, rec.at) {
            (StepState::Pending, _, _) => kind.to_string(),
            (state, Some(by), Some(at)) => {
                format!("{} {} by {by}", state.as_str(), render::time(at, now))
            }
            (state, _, _) => state.as_str().to_string(),
        };
        if let Some(reason) = &rec.reason {
            let _ = write!(detail, ": {}", render::truncate(reason, 120));
        }
        let _ = writeln!(
            out,
            "  {mark} {:>2}. {:<width$}  {title} — {detail}",
            i + 1,
            rec.id
        );
    }
    out
}

/// The status summary of an incident (also used by automatic status posts).
pub fn status_text(engine: &Engine, incident: &Incident) -> String {
    let now = engine.now();
    let mut text = format!(
        "{} “{}” — {} {}, {}.\n",
        incident.id,
        incident.title,
        incident.severity,
        incident.scenario,
        incident.status.as_str()
    );
    let roles: Vec<String> = ["commander", "comms", "scribe"]
        .iter()
        .map(|r| format!("{r} {}", incident.roles.get(*r).map_or("—", String::as_str)))
        .collect();
    let _ = writeln!(
        text,
        "Declared {} by {}. {} Roles: {}.",
        render::time(incident.declared_at, now),
        incident.declared_by,
        elapsed_line(engine, incident),
        roles.join(", ")
    );
    let clocks = component_clocks(engine, incident);
    if !clocks.is_empty() {
        let _ = writeln!(text, "Per component:\n{}", clocks.join("\n"));
    }
    let counts = |st: StepState| incident.steps.iter().filter(|s| s.state == st).count();
    let _ = writeln!(
        text,
        "Steps: {} done, {} skipped, {} to go of {}.",
        counts(StepState::Done),
        counts(StepState::Skipped),
        incident
            .steps
            .iter()
            .filter(|s| !s.state.is_settled())
            .count(),
        incident.steps.len()
    );
    text.push('\n');
    text.push_str(&steps_block(engine.runbook(), incident, now));
    let pending = crate::approval::pending_lines(engine, incident);
    if pending.is_empty() {
        text.push_str("Pending approvals: none.\n");
    } else {
        text.push_str("Pending approvals:\n");
        for p in pending {
            let _ = writeln!(text, "  {p}");
        }
    }
    text.push_str(&next_line(engine, incident));
    text
}

/// `/incident status`.
pub fn status(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, false)?;
    let mut reply = Reply::done(status_text(engine, &incident));
    reply.card = Some(status_card(engine, &incident));
    Ok(reply)
}

/// The status at a glance, for adapters that draw cards: the clock against the RTO (red once
/// past it), each component's clock in the full scenario, the steps, the next step, the roles
/// and pending approvals.
fn status_card(engine: &Engine, incident: &Incident) -> crate::reply::Card {
    use crate::reply::{Card, CardState};
    let h = Header::of(engine, incident);
    let now = engine.now();
    let end = incident.resolved_at.unwrap_or(now);
    let over = h.rto_deadline.is_some_and(|d| end > d);
    let mut fields = vec![
        (
            "Clock".to_string(),
            elapsed_line(engine, incident)
                .trim_end_matches('.')
                .to_string(),
        ),
        (
            "Steps".to_string(),
            format!("{} of {} done or skipped", h.settled, h.total),
        ),
    ];
    let clocks = component_clocks(engine, incident);
    if !clocks.is_empty() {
        fields.push(("Per component".to_string(), clocks.join("\n")));
    }
    if let Some((n, _, title, how, _)) = &h.next {
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(" — {how}")
        };
        fields.push(("Next".to_string(), format!("{n}. {title}{how}")));
    }
    let roles: Vec<String> = h
        .roles
        .iter()
        .map(|(r, who)| format!("{r} {who}"))
        .collect();
    fields.push(("Roles".to_string(), roles.join(", ")));
    if !h.pending.is_empty() {
        fields.push(("Waiting for approval".to_string(), h.pending.join("\n")));
    }
    Card {
        title: format!(
            "{} “{}” — {} {} {}",
            incident.id, incident.title, incident.severity, incident.scenario, h.status
        ),
        state: if over {
            CardState::Bad
        } else if incident.status == IncidentStatus::Open {
            CardState::Neutral
        } else {
            CardState::Good
        },
        fields,
        image: None,
    }
}

/// `/incident timeline`.
pub fn timeline(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, false)?;
    let entries = engine.store().timeline(incident.id)?;
    let asserted = entries
        .iter()
        .any(|e| e.proof == drbot_state::Proof::Asserted);
    let actor_width = entries
        .iter()
        .map(|e| e.actor.chars().count())
        .max()
        .unwrap_or(0);
    let mut full = String::new();
    for e in &entries {
        let mark = if e.proof == drbot_state::Proof::Asserted {
            "*"
        } else {
            ""
        };
        let _ = writeln!(
            full,
            "{}  {:<aw$}  {:<12} {}",
            render::stamp(e.at),
            format!("{}{mark}", e.actor),
            e.kind.as_str(),
            e.text,
            aw = actor_width + 1
        );
    }
    if asserted {
        full.push_str("* identity asserted with --as, not proven.\n");
    }
    let span = match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => render::duration(b.at - a.at),
        _ => "0s".to_string(),
    };
    let head = format!(
        "Timeline of {} “{}” — {} entries over {span}.",
        incident.id,
        incident.title,
        entries.len()
    );
    if entries.len() <= TIMELINE_SHOWN {
        return Ok(Reply::done(format!("{head}\n{}", full.trim_end())));
    }
    // Long: a condensed summary, and the full text attached.
    let mut text = format!("{head} Condensed below; the full timeline is attached.\n");
    for line in condense(&entries) {
        let _ = writeln!(text, "{line}");
    }
    Ok(Reply::done(text.trim_end().to_string())
        .with_attachment(format!("{}-timeline.txt", incident.id), full))
}

/// Consecutive entries of one kind by one person within 15 minutes become one line, with
/// their count and how long they spanned.
fn condense(entries: &[drbot_state::TimelineEntry]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let first = &entries[i];
        let mut j = i + 1;
        while j < entries.len()
            && entries[j].kind == first.kind
            && entries[j].actor == first.actor
            && entries[j].at - entries[j - 1].at <= Duration::minutes(15)
        {
            j += 1;
        }
        let last = &entries[j - 1];
        let when = first.at.format("%H:%M").to_string();
        if j - i == 1 {
            out.push(format!(
                "{when}  {}  {}: {}",
                first.actor,
                first.kind.as_str(),
                render::truncate(&first.text, 160)
            ));
        } else {
            out.push(format!(
                "{when}–{} ({})  {}  {} {} entries: {} … {}",
                last.at.format("%H:%M"),
                render::duration(last.at - first.at),
                first.actor,
                j - i,
                first.kind.as_str(),
                render::truncate(&first.text, 70),
                render::truncate(&last.text, 70)
            ));
        }
        i = j;
    }
    out
}

/// How exactly a note moves an incident's last activity (what the nudge measures quiet
/// from): a note this soon after the last recorded activity does not move it. A nudge waits at
/// least a minute of quiet, so it may come up to this much early, never late.
pub const ACTIVITY_GRAIN: Duration = Duration::seconds(30);

/// `/incident note`.
pub fn note(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    let text = bounded(inv, "text")?.to_string();
    let now = engine.now();
    let entry = engine.entry(ctx, EntryKind::Note, &text);
    // Within ACTIVITY_GRAIN of the last recorded activity the note goes on the timeline alone:
    // rewriting the whole incident for every note of a burst cost the load bench a fifth of
    // its p99 (bot/benches/load.rs).
    let fresh = (Duration::zero()..ACTIVITY_GRAIN).contains(&(now - incident.last_activity));
    let updated = if fresh {
        engine.store().append_timeline(incident.id, entry)?;
        incident
    } else {
        engine.store().update_incident(incident.id, |i| {
            i.last_activity = now;
            Ok::<_, CommandError>(vec![entry.clone()])
        })?
    };
    Ok(Reply::done(format!(
        "Noted on {}'s timeline. {}",
        updated.id,
        next_line(engine, &updated)
    )))
}

/// `/incident role`.
pub fn role(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    require_command(ctx, Some(&incident), "Assigning incident roles")?;
    let role = required(inv, "role")?.to_string();
    let raw_user = required(inv, "user")?;
    let user = raw_user.trim_start_matches('@').to_string();
    let people = &engine.config().people;
    if !people.is_empty() && !people.contains_key(&user) {
        let known: Vec<&str> = people.keys().map(String::as_str).collect();
        return Err(CommandError::Usage(format!(
            "user:{raw_user} is not in the config's [people]; choose one of {}.",
            known.join(", ")
        )));
    }
    let user_id = Principal::of_user_option(engine.config(), &user).to_string();
    if holder(&incident, &role).as_deref() == Some(user_id.as_str()) {
        return Err(CommandError::Refused(format!(
            "{user} is already {role} of {}.",
            incident.id
        )));
    }
    let now = engine.now();
    let previous = incident.roles.get(&role).cloned();
    let updated = engine.store().update_incident(incident.id, |i| {
        i.roles.insert(role.clone(), user.clone());
        i.role_ids.insert(role.clone(), user_id.clone());
        i.last_activity = now;
        let was = previous
            .as_ref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        Ok::<_, CommandError>(vec![engine.entry(
            ctx,
            EntryKind::Role,
            format!("{user} is {role}{was}."),
        )])
    })?;
    let was = previous
        .map(|p| format!(", taking over from {p}"))
        .unwrap_or_default();
    Ok(Reply::done(format!(
        "{user} is now {role} of {}{was}.",
        updated.id
    )))
}

fn resolve_change(
    engine: &Engine,
    ctx: &Context,
    i: &mut Incident,
    now: DateTime<Utc>,
) -> drbot_state::NewEntry {
    i.status = IncidentStatus::Resolved;
    i.resolved_at = Some(now);
    i.resolved_by = Some(ctx.actor.recorded());
    i.last_activity = now;
    engine.entry(
        ctx,
        EntryKind::Resolved,
        format!("Resolved after {}.", render::duration(now - i.declared_at)),
    )
}

/// `/incident resolve`.
pub fn resolve(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    require_command(ctx, Some(&incident), "Resolving an incident")?;
    open_only(&incident, "resolving")?;
    let now = engine.now();
    let updated = engine.store().update_incident(incident.id, |i| {
        if i.status != IncidentStatus::Open {
            return Err(CommandError::Refused(format!(
                "{} is no longer open.",
                i.id
            )));
        }
        Ok(vec![resolve_change(engine, ctx, i, now)])
    })?;
    let (recovery, checklist) = open_counts(engine.runbook(), &updated);
    let next = match (recovery, checklist) {
        (0, 0) => "Next: /incident close.".to_string(),
        (0, c) => format!(
            "Recovery is complete; {c} checklist item{} (post-recovery and success criteria) {} open: /step list. Then /incident close.",
            plural(c),
            if c == 1 { "is" } else { "are" }
        ),
        (r, c) => format!(
            "{r} recovery step{} and {c} checklist item{} are still open, so the RTO is not met yet: /step list. \
             Finish or skip them (or /incident reopen if recovery goes on), then /incident close.",
            plural(r),
            plural(c)
        ),
    };
    let reply = Reply::done(format!(
        "Resolved {}: the clock stopped at {}. {}\n{next}",
        updated.id,
        render::time(now, now),
        elapsed_line(engine, &updated)
    ));
    Ok(reply.then(Lifecycle::Resolved(updated.id)))
}

/// `/incident close`.
pub fn close(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, false)?;
    if incident.status == IncidentStatus::Closed {
        return Err(CommandError::Refused(format!(
            "{} was already closed at {} by {}.",
            incident.id,
            render::stamp(incident.closed_at.unwrap_or(incident.declared_at)),
            incident.closed_by.as_deref().unwrap_or("someone")
        )));
    }
    require_command(ctx, Some(&incident), "Closing an incident")?;
    let (recovery, _) = open_counts(engine.runbook(), &incident);
    if recovery > 0 && inv.get("confirm") != Some("yes") {
        let open: Vec<String> = open_recovery_steps(engine.runbook(), &incident)
            .take(5)
            .map(|(n, title)| format!("{n}. {title}"))
            .collect();
        return Err(CommandError::Refused(format!(
            "{} has {recovery} recovery step{} still open ({}{}). Finish or skip them, or close \
             anyway with /incident close confirm:yes (the report will say they were not done).",
            incident.id,
            plural(recovery),
            open.join("; "),
            if recovery > open.len() { "; …" } else { "" }
        )));
    }
    let now = engine.now();
    let was_open = incident.status == IncidentStatus::Open;
    let updated = engine.store().update_incident(incident.id, |i| {
        let mut entries = Vec::new();
        match i.status {
            IncidentStatus::Closed => {
                return Err(CommandError::Refused(format!(
                    "{} was already closed.",
                    i.id
                )));
            }
            IncidentStatus::Open => entries.push(resolve_change(engine, ctx, i, now)),
            IncidentStatus::Resolved => {}
        }
        i.status = IncidentStatus::Closed;
        i.closed_at = Some(now);
        i.closed_by = Some(ctx.actor.recorded());
        let text = if recovery > 0 {
            format!(
                "Closed with {recovery} recovery step{} not done (confirmed).",
                plural(recovery)
            )
        } else {
            "Closed.".to_string()
        };
        entries.push(engine.entry(ctx, EntryKind::Closed, text));
        Ok(entries)
    })?;
    let verb = if was_open {
        "Resolved and closed"
    } else {
        "Closed"
    };
    let reply = Reply::done(format!(
        "{verb} {}. {}\nIts timeline stays readable: /incident timeline incident:{}.",
        updated.id,
        elapsed_line(engine, &updated),
        updated.id
    ));
    // The report is written again: what happened since resolve is in it.
    Ok(reply.then(Lifecycle::Closed(updated.id)))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The recovery steps not yet done or skipped: (number, title).
fn open_recovery_steps<'a>(
    runbook: &'a Runbook,
    incident: &'a Incident,
) -> impl Iterator<Item = (usize, &'static str)> + 'a {
    incident
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.state.is_settled())
        .filter_map(|(n, s)| {
            runbook
                .step(incident, &s.id)
                .filter(|st| st.phase == Phase::Recovery)
                .map(|st| (n + 1, st.title))
        })
}

/// How many recovery steps and how many checklist items (post-recovery, success criteria)
/// are still open.
fn open_counts(runbook: &Runbook, incident: &Incident) -> (usize, usize) {
    let open = incident
        .steps
        .iter()
        .filter(|s| !s.state.is_settled())
        .count();
    let recovery = open_recovery_steps(runbook, incident).count();
    (recovery, open - recovery)
}

/// `/incident list`: the open incidents, then the most recent others.
pub fn list(engine: &Engine) -> Result<Reply, CommandError> {
    const RECENT: usize = 10;
    let now = engine.now();
    let all = engine.store().incidents()?;
    if all.is_empty() {
        return Ok(Reply::done(
            "No incidents yet. Declare one with /incident declare scenario:<database|storage|search|full> severity:<sev1|sev2|sev3> title:<what is broken>.",
        ));
    }
    let line = |i: &Incident| {
        let settled = i.steps.iter().filter(|s| s.state.is_settled()).count();
        let when = match i.status {
            IncidentStatus::Open => format!("declared {}", render::time(i.declared_at, now)),
            IncidentStatus::Resolved => format!(
                "resolved {}",
                render::time(i.resolved_at.unwrap_or(i.declared_at), now)
            ),
            IncidentStatus::Closed => format!(
                "closed {}",
                render::time(i.closed_at.unwrap_or(i.declared_at), now)
            ),
        };
        format!(
            "  {} {} “{}” — {} {}, {settled}/{} steps, {when}, commander {}\n",
            i.id,
            i.status.as_str(),
            render::truncate(&i.title, 80),
            i.severity,
            i.scenario,
            i.steps.len(),
            i.roles.get("commander").map_or("—", String::as_str)
        )
    };
    let (active, done): (Vec<&Incident>, Vec<&Incident>) = all.iter().partition(|i| i.is_active());
    let mut text = String::new();
    if active.is_empty() {
        text.push_str("No incident is open.\n");
    } else {
        let _ = writeln!(text, "Open or resolved ({}):", active.len());
        for i in &active {
            text.push_str(&line(i));
        }
    }
    if !done.is_empty() {
        let shown = done.len().min(RECENT);
        let _ = writeln!(text, "Recently closed ({shown} of {}):", done.len());
        for i in done.iter().rev().take(RECENT) {
            text.push_str(&line(i));
        }
    }
    text.push_str(
        "Details: /incident status incident:<id> · a resolved or closed one can be reopened with /incident reopen incident:<id>.",
    );
    Ok(Reply::done(text))
}

/// `/incident reopen`: a resolved or closed incident is open again; its clock runs from its
/// declaration, and the resolve it had stays on its timeline.
pub fn reopen(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select_any(ctx, inv)?;
    require_command(ctx, Some(&incident), "Reopening an incident")?;
    if incident.status == IncidentStatus::Open {
        return Err(CommandError::Refused(format!(
            "{} is already open. {}",
            incident.id,
            next_line(engine, &incident)
        )));
    }
    if let Some(other) = engine
        .store()
        .active_incidents()?
        .into_iter()
        .find(|i| i.place == incident.place && i.id != incident.id)
    {
        return Err(CommandError::Refused(format!(
            "{} “{}” is {} in the same place; one incident per channel. Close it first, or add to it.",
            other.id,
            other.title,
            other.status.as_str()
        )));
    }
    let now = engine.now();
    let updated = engine.store().update_incident(incident.id, |i| {
        if i.status == IncidentStatus::Open {
            return Err(CommandError::Refused(format!("{} is already open.", i.id)));
        }
        let was = match i.status {
            IncidentStatus::Closed => format!(
                "closed {} by {}",
                render::stamp(i.closed_at.unwrap_or(now)),
                i.closed_by.as_deref().unwrap_or("someone")
            ),
            _ => format!(
                "resolved {} by {}",
                render::stamp(i.resolved_at.unwrap_or(now)),
                i.resolved_by.as_deref().unwrap_or("someone")
            ),
        };
        i.status = IncidentStatus::Open;
        i.resolved_at = None;
        i.resolved_by = None;
        i.closed_at = None;
        i.closed_by = None;
        i.last_activity = now;
        Ok(vec![engine.entry(
            ctx,
            EntryKind::Reopened,
            format!("Reopened (it was {was}); the clock runs again from the declaration."),
        )])
    })?;
    Ok(Reply::done(format!(
        "Reopened {} “{}”: open again, the clock counts from its declaration ({}). {}",
        updated.id,
        updated.title,
        elapsed_line(engine, &updated),
        next_line(engine, &updated)
    )))
}

/// `/incident report`: the post-incident report written again from the record, now.
pub fn report(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, false)?;
    if incident.is_active() {
        engine.store().append_timeline(
            incident.id,
            engine.entry(
                ctx,
                EntryKind::Command,
                "Report written again (/incident report).",
            ),
        )?;
    }
    let (recovery, checklist) = open_counts(engine.runbook(), &incident);
    let open = if recovery + checklist > 0 {
        format!(
            " {recovery} recovery step{} and {checklist} checklist item{} are open; the report says so.",
            plural(recovery),
            plural(checklist)
        )
    } else {
        String::new()
    };
    let reply = Reply::done(format!(
        "Report of {} ({}) written from the record now.{open}",
        incident.id,
        incident.status.as_str()
    ));
    Ok(reply.then(Lifecycle::Reported(incident.id)))
}

/// `/incident edit`: corrects the title or severity, both on the timeline.
pub fn edit(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    require_command(ctx, Some(&incident), "Editing an incident")?;
    let title = match inv.get("title") {
        Some(_) => Some(bounded(inv, "title")?.to_string()),
        None => None,
    };
    let severity = inv.get("severity").map(str::to_string);
    if title.is_none() && severity.is_none() {
        return Err(CommandError::Usage(format!(
            "Say what to correct: /incident edit title:<new title> and/or severity:<sev1|sev2|sev3>. {} is “{}”, {}.",
            incident.id, incident.title, incident.severity
        )));
    }
    let mut said = Vec::new();
    if let Some(t) = &title
        && *t != incident.title
    {
        said.push(format!("title “{}” → “{t}”", incident.title));
    }
    if let Some(sv) = &severity
        && *sv != incident.severity
    {
        said.push(format!("severity {} → {sv}", incident.severity));
    }
    if said.is_empty() {
        return Err(CommandError::Refused(format!(
            "{} is already “{}”, {}; nothing to correct.",
            incident.id, incident.title, incident.severity
        )));
    }
    let now = engine.now();
    let text = format!("Corrected {}.", said.join("; "));
    let updated = engine.store().update_incident(incident.id, |i| {
        if let Some(t) = &title {
            i.title = t.clone();
        }
        if let Some(sv) = &severity {
            i.severity = sv.clone();
        }
        i.last_activity = now;
        Ok::<_, CommandError>(vec![engine.entry(ctx, EntryKind::Edited, &text)])
    })?;
    Ok(Reply::done(format!(
        "{} {text} Stakeholder notices already sent are not changed; send a correction with /notify stakeholders if needed.",
        updated.id
    )))
}

/// An incident's state at a glance, for a chat's pinned header: structured, so each adapter
/// renders it its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The incident.
    pub id: IncidentId,
    /// Its title.
    pub title: String,
    /// sev1 / sev2 / sev3.
    pub severity: String,
    /// Its scenario.
    pub scenario: String,
    /// open, resolved, closed.
    pub status: String,
    /// Roles that are held: (role, who).
    pub roles: Vec<(String, String)>,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// When its RTO runs out.
    pub rto_deadline: Option<DateTime<Utc>>,
    /// In the full scenario, when each component's RTO runs out: (component, deadline).
    pub component_deadlines: Vec<(String, DateTime<Utc>)>,
    /// Steps done or skipped.
    pub settled: usize,
    /// Steps in all.
    pub total: usize,
    /// The next step: its number, id, title, how it is done, and whether it is done by hand.
    pub next: Option<(usize, String, String, String, bool)>,
    /// Pending approvals, one line each.
    pub pending: Vec<String>,
}

impl Header {
    /// The incident's header now.
    pub fn of(engine: &Engine, incident: &Incident) -> Header {
        let scenario = engine.runbook().of(incident);
        let rto_deadline = scenario.map(|s| incident.declared_at + s.rto(engine.config()));
        let next =
            next_step(incident).map(|(n, rec)| match engine.runbook().step(incident, &rec.id) {
                Some(step) => (
                    n,
                    rec.id.clone(),
                    step.title.to_string(),
                    step.how(engine.config().production_target()),
                    matches!(step.action, crate::runbook::Action::Manual(..)),
                ),
                None => (n, rec.id.clone(), rec.id.clone(), String::new(), true),
            });
        let component_deadlines = scenario
            .into_iter()
            .flat_map(|s| s.timed_groups(engine.config()))
            .map(|(g, rto)| (g.name.to_string(), incident.declared_at + rto))
            .collect();
        Header {
            id: incident.id,
            component_deadlines,
            title: incident.title.clone(),
            severity: incident.severity.clone(),
            scenario: incident.scenario.clone(),
            status: incident.status.as_str().to_string(),
            roles: incident
                .roles
                .iter()
                .map(|(r, who)| (r.clone(), who.clone()))
                .collect(),
            declared_at: incident.declared_at,
            rto_deadline,
            settled: incident
                .steps
                .iter()
                .filter(|s| s.state.is_settled())
                .count(),
            total: incident.steps.len(),
            next,
            pending: crate::approval::pending_lines(engine, incident)
                .into_iter()
                .map(|l| {
                    l.split(" — /approve")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
        }
    }
}
