//! Scenario 3 of the runbook (Meilisearch failure), done by drbot: `/search health`,
//! `/search dumps`, `/search dump`, `/search reindex`, `/search progress`.
//!
//! - [`meili`]: Meilisearch's HTTP API (bearer auth, its error JSON, tasks).
//! - `commands`: the commands, the reindex followed to its end against the database's count.
//!
//! The runbook's Step 2 restores a dump by `POST /dumps`, which creates one: Meilisearch imports
//! a dump only at launch (`--import-dump`). drbot says so, gives the commands, and recommends
//! the reindex from the database.

pub mod commands;
pub mod meili;
pub mod runbook;
pub mod stored;

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{CommandSpec, Invocation, cmd};
use crate::progress::ProgressSink;
use crate::scenario::{Answer, Boxed, Post, Scenario, not_built};

/// `/search reindex` (its step is finished by `/search progress` too).
pub const REINDEX: CommandSpec = cmd(
    "search",
    Some("reindex"),
    "Reindex search from the database via the API",
    &[],
);

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "search",
        Some("health"),
        "Meilisearch health, index count against the database, failed tasks",
        &[],
    ),
    cmd(
        "search",
        Some("dumps"),
        "Meilisearch dumps in the bucket with age against the RPO",
        &[],
    ),
    cmd("search", Some("dump"), "Create a Meilisearch dump", &[]),
    REINDEX,
    cmd(
        "search",
        Some("progress"),
        "Reindex progress against the database",
        &[],
    ),
];

/// Scenario 3: search.
pub struct Search;

/// The search module.
pub const SEARCH: Search = Search;

impl Scenario for Search {
    fn name(&self) -> &'static str {
        "search"
    }

    fn commands(&self) -> &'static [CommandSpec] {
        COMMANDS
    }

    fn procedure(&self) -> Option<&'static crate::runbook::Procedure> {
        Some(&runbook::PROCEDURE)
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move {
            match inv.spec.sub {
                Some("health") => commands::health(engine, ctx, inv).await,
                Some("dumps") => commands::dumps(engine, ctx, inv).await,
                Some("dump") => commands::dump(engine, ctx, inv, progress).await,
                Some("reindex") => commands::reindex(engine, ctx, inv, progress).await,
                Some("progress") => commands::progress(engine, ctx, inv, progress).await,
                _ => Err(not_built(inv)),
            }
        })
    }

    fn watch<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(stored::rpo(engine))
    }

    fn scheduled<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(stored::scheduled(engine))
    }
}
