//! `/step list|done|skip`: the runbook's checklist within an incident.

use drbot_state::{EntryKind, Incident, StepState};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::incident::{next_line, steps_block};
use crate::options::required;
use crate::render;
use crate::reply::Reply;
use crate::runbook::Action;

/// Finds a step by its number in the incident or its id (case-insensitive).
fn find_step(incident: &Incident, raw: &str) -> Result<(usize, String), CommandError> {
    let wanted = raw.trim().trim_start_matches('#').to_lowercase();
    let by_number = wanted
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=incident.steps.len()).contains(n))
        .map(|n| n - 1);
    let index = by_number.or_else(|| incident.steps.iter().position(|s| s.id == wanted));
    match index {
        Some(i) => Ok((i + 1, incident.steps[i].id.clone())),
        None => {
            let ids: Vec<String> = incident
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{} {}", i + 1, s.id))
                .collect();
            Err(CommandError::Usage(format!(
                "Step `{raw}` is not in {}'s runbook. Use a number or id: {}.",
                incident.id,
                ids.join(", ")
            )))
        }
    }
}

fn title_of(engine: &Engine, incident: &Incident, id: &str) -> String {
    engine
        .runbook()
        .step(incident, id)
        .map(|s| s.title.to_string())
        .unwrap_or_else(|| id.to_string())
}

/// `/step list`.
pub fn list(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, false)?;
    let mut text = format!(
        "Runbook steps of {} ({} scenario):\n",
        incident.id, incident.scenario
    );
    text.push_str(&steps_block(engine.runbook(), &incident, engine.now()));
    text.push_str(&next_line(engine, &incident));
    Ok(Reply::done(text))
}

/// `/step done`.
pub fn done(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    change(engine, ctx, inv, StepState::Done)
}

/// `/step skip`.
pub fn skip(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    change(engine, ctx, inv, StepState::Skipped)
}

fn change(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    to: StepState,
) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    let (n, id) = find_step(&incident, required(inv, "step")?)?;
    let reason = inv.get("reason").map(str::to_string);
    let title = title_of(engine, &incident, &id);
    // A step drbot can do itself, marked done instead: said so everywhere it is shown.
    let automated = matches!(
        engine.runbook().step(&incident, &id).map(|s| s.action),
        Some(Action::Automated(..))
    ) && to == StepState::Done;
    let now = engine.now();
    let updated = engine.store().update_incident(incident.id, |i| {
        let rec = i
            .step_mut(&id)
            .ok_or_else(|| CommandError::Usage(format!("Step {id} is not in this incident.")))?;
        match (rec.state, to) {
            (StepState::Running, _) => {
                return Err(CommandError::Refused(format!(
                    "Step {n}. {title} is running now; wait for it to finish."
                )));
            }
            (from, to) if from == to => {
                let when = rec
                    .at
                    .map(|a| format!(" at {}", render::time(a, now)))
                    .unwrap_or_default();
                let who = rec
                    .by
                    .as_ref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default();
                return Err(CommandError::Refused(format!(
                    "Step {n}. {title} was already {}{when}{who}.",
                    to.as_str()
                )));
            }
            (StepState::Done, StepState::Skipped) => {
                return Err(CommandError::Refused(format!(
                    "Step {n}. {title} is already done; there is nothing to skip."
                )));
            }
            _ => {}
        }
        rec.state = to;
        rec.by = Some(ctx.actor.recorded());
        rec.at = Some(now);
        rec.reason = reason.clone();
        rec.by_hand = true;
        i.last_activity = now;
        let text = match (to, &reason) {
            (StepState::Skipped, Some(r)) => format!("Step {n}. {title} skipped: {r}"),
            _ if automated => format!(
                "Step {n}. {title} marked done by hand (drbot did not run it; /step undo {n} if that was a mistake)."
            ),
            _ => format!("Step {n}. {title} marked done by hand."),
        };
        Ok(vec![engine.entry(ctx, EntryKind::Step, text)])
    })?;
    let verb = if to == StepState::Done {
        "done"
    } else {
        "skipped"
    };
    Ok(Reply::done(format!(
        "Step {n}. {title} is {verb} ({}). {}",
        updated.id,
        next_line(engine, &updated)
    )))
}

/// `/step undo`: a step marked done or skipped by hand goes back to pending.
pub fn undo(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let incident = engine.select(ctx, inv, true)?;
    let (n, id) = find_step(&incident, required(inv, "step")?)?;
    let title = title_of(engine, &incident, &id);
    let now = engine.now();
    let marked = |rec: &drbot_state::StepRecord| {
        format!(
            "{} by {}",
            rec.state.as_str(),
            rec.by.as_deref().unwrap_or("someone")
        )
    };
    let was = incident.step(&id).map(marked).unwrap_or_default();
    let updated = engine.store().update_incident(incident.id, |i| {
        let rec = i
            .step_mut(&id)
            .ok_or_else(|| CommandError::Usage(format!("Step {id} is not in this incident.")))?;
        if !rec.state.is_settled() {
            return Err(CommandError::Refused(format!(
                "Step {n}. {title} is {}; only a step marked done or skipped by hand can be undone.",
                rec.state.as_str()
            )));
        }
        let who = rec.by.clone().unwrap_or_else(|| "someone".to_string());
        if !rec.by_hand {
            return Err(CommandError::Refused(format!(
                "Step {n}. {title} was {} by drbot (run by {who}), not marked by hand, so it \
                 stays. If its result is wrong, say so with /incident note and run its command again.",
                rec.state.as_str()
            )));
        }
        let was = marked(rec);
        *rec = drbot_state::StepRecord::pending(id.clone());
        i.last_activity = now;
        Ok(vec![engine.entry(
            ctx,
            EntryKind::Step,
            format!("Step {n}. {title} put back to pending (it was marked {was})."),
        )])
    })?;
    Ok(Reply::done(format!(
        "Step {n}. {title} is pending again ({}; it was marked {was}). {}",
        updated.id,
        next_line(engine, &updated)
    )))
}
