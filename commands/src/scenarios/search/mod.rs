//! Scenario 3 of the runbook: Meilisearch failure — health, dumps, reindex from the database
//! and its progress.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{CommandSpec, cmd};
use crate::scenario::{Answer, Boxed, Scenario, not_built};

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd("search", Some("health"), "Meilisearch health", &[]),
    cmd("search", Some("dump"), "Create a Meilisearch dump", &[]),
    cmd(
        "search",
        Some("reindex"),
        "Reindex search from the database via the API",
        &[],
    ),
    cmd(
        "search",
        Some("progress"),
        "Reindex progress against the database",
        &[],
    ),
];

/// The search module.
pub struct Search;

impl Scenario for Search {
    fn name(&self) -> &'static str {
        "search"
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
