//! The API and web health endpoints, used by the storage scenario and the post-recovery
//! checklist.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{CommandSpec, cmd};
use crate::scenario::{Answer, Boxed, Scenario, not_built};

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[cmd(
    "api",
    Some("health"),
    "API and web health endpoints with latency",
    &[],
)];

/// The api module.
pub struct Api;

impl Scenario for Api {
    fn name(&self) -> &'static str {
        "api"
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
