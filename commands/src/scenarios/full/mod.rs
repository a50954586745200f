//! Scenario 4 of the runbook, complete system failure: no commands of its own, only its own
//! manual steps around every other scenario's procedure, each under its heading and against
//! its own RTO.

use crate::config::Config;
use crate::runbook::{Group, Procedure, Scenario, Step, manual};

/// The complete system failure: the infrastructure assessment, then each procedure in turn
/// (in `scenarios::ALL`'s order), then deployment and DNS.
pub fn scenario(procedures: &[&'static Procedure]) -> Scenario {
    let groups = std::iter::once(Group {
        name: "infrastructure",
        heading: "Infrastructure",
        steps: BEFORE,
        rto: None,
    })
    .chain(procedures.iter().map(|p| Group::of(p)))
    .chain(std::iter::once(Group {
        name: "applications",
        heading: "Applications and network",
        steps: AFTER,
        rto: None,
    }))
    .collect();
    Scenario::composed(
        "full",
        "Complete system failure",
        &["All services"],
        |c: &Config| c.objectives.rto.full,
        groups,
    )
}

/// Its own steps before every procedure's.
static BEFORE: &[Step] = &[manual(
    "infra-assess",
    "Infrastructure assessment",
    &[
        "Check hosting provider status",
        "Verify network connectivity",
        "Assess data center status",
    ],
    "Then the database, storage and search steps follow.",
)];

/// Its own steps after every procedure's.
static AFTER: &[Step] = &[
    manual(
        "app-deploy",
        "Application deployment",
        &[
            "Deploy the API and web applications to backup infrastructure if needed (clone, pnpm install, pnpm run build, pnpm run start)",
        ],
        "",
    ),
    manual(
        "dns",
        "DNS/network configuration",
        &[
            "Update DNS records if needed",
            "Configure load balancers",
            "Update CDN settings",
        ],
        "",
    ),
];
