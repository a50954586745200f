//! The runbook's fire drills, done for real on scratch copies, with measured RTO and RPO.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{Choice, CommandSpec, cmd, req};
use crate::scenario::{Answer, Boxed, Scenario, not_built};

/// The drills of the runbook.
const DRILLS: &[&str] = &["database", "storage", "full"];

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "drill",
        Some("start"),
        "Start a fire drill from the runbook",
        &[req("kind", "Which drill", Choice(DRILLS))],
    ),
    cmd(
        "drill",
        Some("report"),
        "The last drill's measured RTO and RPO",
        &[],
    ),
];

/// The drill module.
pub struct Drill;

impl Scenario for Drill {
    fn name(&self) -> &'static str {
        "drill"
    }

    fn commands(&self) -> &'static [CommandSpec] {
        COMMANDS
    }

    fn built(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        _engine: &'a crate::engine::Engine,
        _ctx: &'a crate::engine::Context,
        inv: &'a crate::grammar::Invocation,
        _progress: &'a dyn crate::progress::ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move { Err(not_built(inv)) })
    }
}
