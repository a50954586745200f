//! Scenario 1's part of the runbook: its steps, bound to the `/db` commands that do them.

use crate::config::Config;
use crate::runbook::{Procedure, Step, any, auto, destructive, manual, prod};

/// Database corruption/loss: what `/incident declare scenario:database` runs, and the database part of the
/// complete system failure.
pub static PROCEDURE: Procedure = Procedure {
    name: "database",
    title: "Database corruption/loss",
    heading: "Database",
    steps: STEPS,
    affected: &["Website", "API", "Accounts and orders"],
    rto: |c: &Config| c.objectives.rto.database,
};

/// Its steps, in runbook order, with the commands that do them.
static STEPS: &[Step] = &[
    auto(
        "db-assess",
        "Assess impact",
        "/db check and /db backups",
        &[prod("db", "check"), any("db", "backups")],
        "Check database connectivity and that recent backups exist.",
    ),
    manual(
        "stop-apps",
        "Stop API and web applications",
        &["Stop the API and web applications (platform-specific)"],
        "Stops writes while the database is restored.",
    ),
    destructive(auto(
        "db-restore",
        "Restore database",
        "/db restore backup:latest target:production",
        &[prod("db", "restore")],
        "Streams the backup from the bucket into the target; needs a second person's approval.",
    )),
    auto(
        "db-verify",
        "Verify restore",
        "/db verify target:production",
        &[prod("db", "verify")],
        "Indexes, constraints, sequences and row counts against the backup's manifest.",
    ),
    auto(
        "db-reindex",
        "Reindex search",
        "/search reindex",
        &[any("search", "reindex")],
        "Triggers the API's reindex so search matches the restored data.",
    ),
    auto(
        "restart-apps",
        "Restart applications",
        "start the API and web, then /api health",
        &[any("api", "health")],
        "Done when the API's /healthz and the web's /api/health both answer.",
    ),
];
