//! The runbook's fire drills, done for real on scratch copies, with measured RTO and RPO.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{Choice, CommandSpec, cmd, req};
use crate::scenario::NotBuilt;

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
pub const DRILL: NotBuilt = NotBuilt {
    name: "drill",
    commands: COMMANDS,
};
