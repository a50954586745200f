//! Scenario 2's part of the runbook: its steps, bound to the `/storage` commands that do them.

use crate::config::Config;
use crate::runbook::{Procedure, Step, any, auto, destructive};

/// R2 storage failure: what `/incident declare scenario:storage` runs, and the storage part of the
/// complete system failure.
pub static PROCEDURE: Procedure = Procedure {
    name: "storage",
    title: "R2 storage failure",
    heading: "Storage",
    steps: STEPS,
    affected: &["Images and uploads"],
    rto: |c: &Config| c.objectives.rto.storage,
};

/// Its steps, in runbook order, with the commands that do them.
static STEPS: &[Step] = &[
    auto(
        "storage-assess",
        "Assess impact",
        "/storage check",
        &[any("storage", "check")],
        "Lists the media bucket (objects and bytes per folder), reads its versioning status and the newest snapshot's age against the storage RPO.",
    ),
    auto(
        "storage-versions",
        "Check object versioning",
        "/storage versions prefix:artworks/",
        &[any("storage", "versions")],
        "R2 keeps no object versions (it answers versioning calls with 501), so the runbook's list-object-versions finds nothing there: drbot lists the snapshots that hold the key or prefix instead (the versions, on a bucket that has them).",
    ),
    destructive(auto(
        "storage-restore",
        "Restore from versions",
        "/storage restore prefix:artworks/ at:<time or snapshot>",
        &[any("storage", "restore")],
        "Restores a prefix as it was at a time (or one key's version) from drbot's snapshots, or from S3 versions where the bucket has them; the request shows the dry-run diff and needs approval.",
    )),
    auto(
        "storage-verify",
        "Verify storage",
        "/storage verify",
        &[any("storage", "verify")],
        "POSTs the platform's /uploads/test with ADMIN_TOKEN, and puts, reads and deletes a probe object of drbot's own.",
    ),
];
