//! Scenario 3's part of the runbook: its steps, bound to the `/search` commands that do them.

use crate::config::Config;
use crate::runbook::{Procedure, Step, any, auto, manual};

/// Meilisearch failure: what `/incident declare scenario:search` runs, and the search part of the
/// complete system failure.
pub static PROCEDURE: Procedure = Procedure {
    name: "search",
    title: "Meilisearch failure",
    heading: "Search",
    steps: STEPS,
    affected: &["Search"],
    rto: |c: &Config| c.objectives.rto.search,
};

/// Its steps, in runbook order, with the commands that do them.
static STEPS: &[Step] = &[
    auto(
        "search-health",
        "Check Meilisearch health",
        "/search health",
        &[any("search", "health")],
        "",
    ),
    manual(
        "search-dump",
        "Restore from a dump (if available)",
        &[
            "/search dumps: the newest dump in the bucket and the exact commands",
            "aws s3 cp s3://<backup bucket>/meili/<newest> ./latest.dump --endpoint-url \"$R2_ENDPOINT\"",
            "meilisearch --db-path <an empty directory> --import-dump ./latest.dump (it fails on an existing database; --ignore-dump-if-db-exists skips the import)",
        ],
        "The runbook's curl -X POST $MEILI_HOST/dumps creates a dump, it does not restore one: \
         Meilisearch imports a dump only at launch. Recommended instead: skip this step and \
         reindex from the database (/search reindex).",
    ),
    auto(
        "search-reindex",
        "Reindex from database",
        "/search reindex, then /search progress",
        &[any("search", "reindex")],
        "Full reindex through the API; progress is compared with the database's count.",
    ),
];
