//! The API and web health endpoints, used by the storage scenario and the post-recovery
//! checklist.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{CommandSpec, cmd};
use crate::scenario::NotBuilt;

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[cmd(
    "api",
    Some("health"),
    "API and web health endpoints with latency",
    &[],
)];

/// The api module.
pub const API: NotBuilt = NotBuilt {
    name: "api",
    commands: COMMANDS,
};
