//! `[drills] schedule`: `serve` runs each scheduled drill when it is due (never run, or the
//! last one of its kind started a period ago), posts the result in the incident channel, and
//! alerts the commanders when one fails, saying when the last passing one was.

use chrono::Duration;
use drbot_state::DrillStatus;

use crate::config::DRILL_KINDS;
use crate::context::Engine;
use crate::error::CommandError;
use crate::identity::Actor;
use crate::progress::NoProgress;
use crate::render;
use crate::scenario::{Post, PostKind};

/// The drill kinds due now, at the engine's clock.
pub fn due(engine: &Engine) -> Result<Vec<&'static str>, CommandError> {
    let drills = engine.store().drills()?;
    let now = engine.now();
    Ok(DRILL_KINDS
        .iter()
        .copied()
        .filter(|kind| {
            let Some(days) = engine.config().drills.period_days(kind) else {
                return false;
            };
            let last = drills
                .iter()
                .filter(|d| d.kind == *kind)
                .map(|d| d.started_at)
                .max();
            last.is_none_or(|at| now - at >= Duration::days(days))
        })
        .collect())
}

/// Runs the drills that are due, one after another; returns the posts for each.
pub async fn run_due(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let mut posts = Vec::new();
    for line in super::cleanup(engine, true).await {
        posts.push(Post {
            incident: None,
            place: "audit".to_string(),
            kind: PostKind::Status,
            text: line,
        });
    }
    for kind in due(engine)? {
        let drill = match super::run_drill(
            engine,
            kind,
            &Actor::system(),
            "schedule",
            true,
            false,
            &NoProgress,
        )
        .await
        {
            Ok(d) => d,
            // A drill someone started is running: the due one waits for the next round.
            Err(CommandError::Refused(_)) => break,
            Err(e) => return Err(e),
        };
        let passed = drill.status == DrillStatus::Passed;
        let mut text = format!(
            "Scheduled {}",
            super::summary(engine, &drill)
                .lines()
                .next()
                .unwrap_or_default()
        );
        if !passed {
            let every = engine
                .config()
                .drills
                .schedule
                .get(kind)
                .cloned()
                .unwrap_or_default();
            let last_ok = engine
                .store()
                .drills()?
                .into_iter()
                .filter(|d| d.kind == kind && d.status == DrillStatus::Passed)
                .max_by_key(|d| d.started_at);
            text.push_str(&match last_ok {
                Some(d) => format!(
                    " The last passing {kind} drill was {} ({}); the schedule says {every}{}.",
                    d.id,
                    render::time(d.started_at, engine.now()),
                    if engine
                        .config()
                        .drills
                        .period_days(kind)
                        .is_some_and(|days| { engine.now() - d.started_at >= Duration::days(days) })
                    {
                        ": a passing drill is OVERDUE"
                    } else {
                        ""
                    }
                ),
                None => format!(" No {kind} drill has passed yet (schedule: {every}): OVERDUE."),
            });
        }
        text.push_str(&format!(
            " /drill report drill:{} has every step.",
            drill.id
        ));
        posts.push(Post {
            incident: None,
            place: "audit".to_string(),
            kind: if passed {
                PostKind::DrillPassed
            } else {
                PostKind::DrillFailed
            },
            text,
        });
    }
    Ok(posts)
}
