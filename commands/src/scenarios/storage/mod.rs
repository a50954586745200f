//! Scenario 2 of the runbook: R2 storage failure — bucket checks, object versions, and a way
//! back for a bucket without versioning.
//!
//! Not built yet: its commands answer so, and Discord does not register them.

use crate::grammar::{CommandSpec, Text, auto, cmd, destructive, opt};
use crate::scenario::NotBuilt;

/// Its rows of the command table.
const COMMANDS: &[CommandSpec] = &[
    cmd(
        "storage",
        Some("check"),
        "Bucket reachability and versioning status",
        &[],
    ),
    cmd(
        "storage",
        Some("versions"),
        "Object versions under a prefix or of one key",
        &[
            opt("prefix", "Key prefix", Text),
            opt("key", "One object key", Text),
        ],
    ),
    destructive(cmd(
        "storage",
        Some("restore"),
        "Restore one object version, or a prefix as it was at a time",
        &[
            opt("key", "Object key (with version)", Text),
            auto(opt("version", "Version id (with key)", Text)),
            opt("prefix", "Key prefix (with at)", Text),
            opt(
                "at",
                "UTC time, e.g. 2026-11-25T10:30:00Z (with prefix)",
                Text,
            ),
        ],
    )),
];

/// The storage module.
pub const STORAGE: NotBuilt = NotBuilt {
    name: "storage",
    commands: COMMANDS,
};
