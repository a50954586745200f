//! Scenario 3 of the runbook: Meilisearch failure — health, dumps, reindex from the database
//! and its progress.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{CommandSpec, cmd};
use crate::scenario::NotBuilt;

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
pub const SEARCH: NotBuilt = NotBuilt {
    name: "search",
    commands: COMMANDS,
};
