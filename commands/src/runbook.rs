//! The runbook (`RUNBOOK.md`) as data: each scenario's ordered steps, then the post-recovery
//! checklist and the success criteria, which every scenario ends with.
//!
//! A step is automated (drbot runs it: its command is named) or manual (a checklist item with
//! the runbook's text). Step ids are stable: they are stored in sled and typed by people.

use std::fmt;
use std::str::FromStr;

use crate::grammar::CommandId;

/// A runbook scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Scenario 1: database corruption or loss.
    Database,
    /// Scenario 2: R2 storage failure.
    Storage,
    /// Scenario 3: Meilisearch failure.
    Search,
    /// Scenario 4: complete system failure.
    Full,
}

impl Scenario {
    /// Every scenario, in runbook order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Database,
        Scenario::Storage,
        Scenario::Search,
        Scenario::Full,
    ];

    /// The name used in commands and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Database => "database",
            Scenario::Storage => "storage",
            Scenario::Search => "search",
            Scenario::Full => "full",
        }
    }

    /// The runbook's heading for it.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Database => "Database corruption/loss",
            Scenario::Storage => "R2 storage failure",
            Scenario::Search => "Meilisearch failure",
            Scenario::Full => "Complete system failure",
        }
    }

    /// The scenario's own steps, then the post-recovery checklist and success criteria.
    pub fn steps(self) -> Vec<&'static Step> {
        let own: Vec<&'static Step> = match self {
            Scenario::Database => DATABASE.iter().collect(),
            Scenario::Storage => STORAGE.iter().collect(),
            Scenario::Search => SEARCH.iter().collect(),
            Scenario::Full => FULL_BEFORE
                .iter()
                .chain(DATABASE)
                .chain(STORAGE)
                .chain(SEARCH)
                .chain(FULL_AFTER)
                .collect(),
        };
        own.into_iter()
            .chain(POST_RECOVERY)
            .chain(SUCCESS_CRITERIA)
            .collect()
    }

    /// Its RTO in minutes, from `[objectives.rto]`.
    pub fn rto_mins(self, config: &crate::config::Config) -> u64 {
        let r = &config.objectives.rto;
        match self {
            Scenario::Database => r.database,
            Scenario::Storage => r.storage,
            Scenario::Search => r.search,
            Scenario::Full => r.full,
        }
    }

    /// Its RTO, from `[objectives.rto]` (bounded when the config is loaded).
    pub fn rto(self, config: &crate::config::Config) -> chrono::Duration {
        chrono::Duration::minutes(self.rto_mins(config) as i64)
    }

    /// The step with this id in the scenario.
    pub fn step(self, id: &str) -> Option<&'static Step> {
        self.steps().into_iter().find(|s| s.id == id)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a scenario (database, storage, search, full)"))
    }
}

/// Where in the runbook a step sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The scenario's recovery procedure.
    Recovery,
    /// "Post-Recovery Procedures".
    PostRecovery,
    /// "Success Criteria".
    SuccessCriteria,
}

impl Phase {
    /// The heading shown above the phase's steps.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Recovery => "Recovery",
            Phase::PostRecovery => "Post-recovery",
            Phase::SuccessCriteria => "Success criteria",
        }
    }
}

/// Which target a command must work on to do a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The production target (`production`, or the target marked `production = true`).
    Production,
    /// Any, or the command has no target.
    Any,
}

/// A command that does a step when it succeeds, and on which target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The command.
    pub command: CommandId,
    /// The target it must work on.
    pub on: On,
}

/// A command bound to the production target.
const fn prod(group: &'static str, sub: &'static str) -> Binding {
    Binding {
        command: CommandId::new(group, Some(sub)),
        on: On::Production,
    }
}

/// A command bound whatever its target.
const fn any(group: &'static str, sub: &'static str) -> Binding {
    Binding {
        command: CommandId::new(group, Some(sub)),
        on: On::Any,
    }
}

/// How a step gets done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// drbot does it: what to type, and the commands that do it.
    Automated(&'static str, &'static [Binding]),
    /// A person does it and marks it done: the checklist items.
    Manual(&'static [&'static str]),
}

/// One runbook step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Stable id, typed as `step:<id>` (the step's number works too).
    pub id: &'static str,
    /// The runbook's heading for it.
    pub title: &'static str,
    /// Its phase.
    pub phase: Phase,
    /// Automated or manual.
    pub action: Action,
    /// What the runbook says about it, and what drbot knows that the runbook does not.
    pub note: &'static str,
    /// Whether it changes data (and so needs a second person's approval when automated).
    pub destructive: bool,
}

impl Step {
    /// Whether `command` is one of the commands that do this step, on any target.
    pub fn bound_to(&self, command: CommandId) -> bool {
        matches!(self.action, Action::Automated(_, bindings) if bindings.iter().any(|b| b.command == command))
    }

    /// Whether `command` working on `target` does this step (`production` names the
    /// production target).
    pub fn done_by(&self, command: CommandId, target: Option<&str>, production: &str) -> bool {
        let Action::Automated(_, bindings) = self.action else {
            return false;
        };
        bindings.iter().any(|b| {
            b.command == command
                && match b.on {
                    On::Any => true,
                    On::Production => target == Some(production),
                }
        })
    }

    /// What to do next for this step, in one line; `production` names the production target.
    pub fn how(&self, production: &str) -> String {
        match self.action {
            Action::Automated(cmd, _) => {
                format!(
                    "run {}",
                    cmd.replace("target:production", &format!("target:{production}"))
                )
            }
            Action::Manual([]) => format!("confirm it, then /step done step:{}", self.id),
            Action::Manual(items) if items.len() == 1 => {
                format!("{}, then /step done step:{}", items[0], self.id)
            }
            Action::Manual(items) => format!(
                "check {} items ({}), then /step done step:{}",
                items.len(),
                items.join("; "),
                self.id
            ),
        }
    }
}

const fn auto(
    id: &'static str,
    title: &'static str,
    command: &'static str,
    by: &'static [Binding],
    note: &'static str,
) -> Step {
    Step {
        id,
        title,
        phase: Phase::Recovery,
        action: Action::Automated(command, by),
        note,
        destructive: false,
    }
}

const fn manual(
    id: &'static str,
    title: &'static str,
    items: &'static [&'static str],
    note: &'static str,
) -> Step {
    Step {
        id,
        title,
        phase: Phase::Recovery,
        action: Action::Manual(items),
        note,
        destructive: false,
    }
}

const fn post(s: Step) -> Step {
    Step {
        phase: Phase::PostRecovery,
        ..s
    }
}

const fn criterion(id: &'static str, title: &'static str) -> Step {
    Step {
        id,
        title,
        phase: Phase::SuccessCriteria,
        action: Action::Manual(&[]),
        note: "",
        destructive: false,
    }
}

const fn destructive(s: Step) -> Step {
    Step {
        destructive: true,
        ..s
    }
}

/// Scenario 1: database corruption/loss (RTO 2 h).
static DATABASE: &[Step] = &[
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

/// Scenario 2: R2 storage failure (RTO 1 h).
static STORAGE: &[Step] = &[
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

/// Scenario 3: Meilisearch failure (RTO 30–60 min).
static SEARCH: &[Step] = &[
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

/// Scenario 4, before the other scenarios' steps.
static FULL_BEFORE: &[Step] = &[manual(
    "infra-assess",
    "Infrastructure assessment",
    &[
        "Check hosting provider status",
        "Verify network connectivity",
        "Assess data center status",
    ],
    "Then the database, storage and search steps follow.",
)];

/// Scenario 4, after the other scenarios' steps.
static FULL_AFTER: &[Step] = &[
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

/// "Post-Recovery Procedures", for every scenario.
static POST_RECOVERY: &[Step] = &[
    post(auto(
        "post-integrity",
        "Data integrity verification",
        "/db verify target:production and /api health",
        &[prod("db", "verify"), any("api", "health")],
        "Comprehensive verification, then the API and web health endpoints.",
    )),
    post(manual(
        "post-performance",
        "Performance monitoring",
        &[
            "Monitor application response times",
            "Check database query performance",
            "Verify search functionality",
            "Monitor file upload/download speeds",
        ],
        "",
    )),
    post(auto(
        "post-backups",
        "Backup verification",
        "/db backup and /db backups",
        &[prod("db", "backup"), any("db", "backups")],
        "Takes a backup now and checks retention.",
    )),
    post(manual(
        "post-comms",
        "Communication",
        &[
            "Notify stakeholders of recovery completion (/notify stakeholders)",
            "Update status page",
            "Document incident timeline",
            "Schedule post-mortem meeting",
        ],
        "",
    )),
];

/// "Success Criteria", for every scenario.
static SUCCESS_CRITERIA: &[Step] = &[
    criterion("ok-services", "All critical services operational"),
    criterion("ok-integrity", "Data integrity verified"),
    criterion("ok-performance", "Performance within acceptable limits"),
    criterion("ok-security", "Security measures intact"),
    criterion("ok-monitoring", "Monitoring systems active"),
];

/// The component a recovery step restores, in the full scenario's grouping: `database`,
/// `storage`, `search`, or `infrastructure` / `applications` for the full scenario's own
/// manual steps. None for the post-recovery checklist and the success criteria.
pub fn component(step_id: &str) -> Option<&'static str> {
    let has = |steps: &[Step]| steps.iter().any(|s| s.id == step_id);
    if has(DATABASE) {
        Some("database")
    } else if has(STORAGE) {
        Some("storage")
    } else if has(SEARCH) {
        Some("search")
    } else if has(FULL_BEFORE) {
        Some("infrastructure")
    } else if has(FULL_AFTER) {
        Some("applications")
    } else {
        None
    }
}

/// The heading of a full-scenario recovery step's group.
pub fn component_title(component: &str) -> &'static str {
    match component {
        "infrastructure" => "Infrastructure",
        "database" => "Database",
        "storage" => "Storage",
        "search" => "Search",
        _ => "Applications and network",
    }
}

/// The components with their own RTO in the full scenario.
pub const TIMED_COMPONENTS: [&str; 3] = ["database", "storage", "search"];

/// The runbook's "Lessons Learned" headings ("after each incident or drill, document:").
pub const LESSONS_LEARNED: &str = "\n## Lessons learned\n\n### What worked well\n\n\n### What could be improved\n\n\n\
     ### Timeline of events\n\n\n### Root cause analysis\n\n\n### Action items for improvement\n\n";

/// The scenario an incident runs (stored by name).
pub fn scenario_of(incident: &drbot_state::Incident) -> Option<Scenario> {
    incident.scenario.parse().ok()
}

/// The runbook step for a stored step record, if this build still knows it.
pub fn runbook_step(incident: &drbot_state::Incident, id: &str) -> Option<&'static Step> {
    scenario_of(incident).and_then(|s| s.step(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_are_unique_and_typeable_in_every_scenario() {
        for sc in Scenario::ALL {
            let steps = sc.steps();
            let mut ids: Vec<_> = steps.iter().map(|s| s.id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), steps.len(), "{sc}");
            for s in &steps {
                assert!(
                    s.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                    "{}",
                    s.id
                );
            }
            // Every scenario ends with the post-recovery checklist and the success criteria.
            assert_eq!(steps.last().map(|s| s.id), Some("ok-monitoring"));
            assert!(steps.iter().any(|s| s.id == "post-comms"));
        }
    }

    #[test]
    fn steps_are_done_by_their_command_on_the_production_target_only() {
        let id = |g, s| CommandId::new(g, Some(s));
        let db = Scenario::Database;
        let assess = db.step("db-assess").expect("step");
        assert!(assess.done_by(id("db", "check"), Some("production"), "production"));
        assert!(!assess.done_by(id("db", "check"), Some("staging"), "production"));
        assert!(assess.done_by(id("db", "check"), Some("main"), "main"));
        // Listing backups has no target: it assesses whatever the production target is.
        assert!(assess.done_by(id("db", "backups"), None, "production"));
        // Another command, or a prefix of one, is not the step's command.
        assert!(!assess.done_by(id("db", "backup"), Some("production"), "production"));
        let restore = db.step("db-restore").expect("step");
        assert!(!restore.done_by(id("db", "restore"), Some("staging"), "production"));
        assert!(!restore.done_by(id("db", "verify"), Some("production"), "production"));
        // What to type names the configured production target.
        assert_eq!(
            restore.how("main"),
            "run /db restore backup:latest target:main"
        );
        // Manual steps are done by no command.
        let stop = db.step("stop-apps").expect("step");
        assert!(!stop.done_by(id("db", "restore"), Some("production"), "production"));
    }

    #[test]
    fn scenarios_follow_the_runbook() {
        let db: Vec<_> = Scenario::Database.steps().iter().map(|s| s.id).collect();
        assert_eq!(&db[..3], ["db-assess", "stop-apps", "db-restore"]);
        assert_eq!(
            Scenario::Database.step("stop-apps").map(|s| s.title),
            Some("Stop API and web applications")
        );
        let full: Vec<_> = Scenario::Full.steps().iter().map(|s| s.id).collect();
        assert_eq!(full[0], "infra-assess");
        assert!(full.contains(&"storage-restore") && full.contains(&"dns"));
        assert!(
            Scenario::Database
                .step("db-restore")
                .is_some_and(|s| s.destructive)
        );
        assert_eq!("full".parse::<Scenario>(), Ok(Scenario::Full));
        // The full scenario's steps group by component.
        assert_eq!(component("db-restore"), Some("database"));
        assert_eq!(component("stop-apps"), Some("database"));
        assert_eq!(component("storage-verify"), Some("storage"));
        assert_eq!(component("search-reindex"), Some("search"));
        assert_eq!(component("dns"), Some("applications"));
        assert_eq!(component("post-comms"), None);
        assert!("nonsense".parse::<Scenario>().is_err());
    }
}
