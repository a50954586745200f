//! The runbook's scenarios, one folder each, and the one list that registers them.
//!
//! - [`database`]: Scenario 1, database corruption or loss (check, backups, streaming
//!   restore, verify, backup; the RPO watch; the report's RPO).
//! - [`storage`]: Scenario 2, R2 storage failure (check, snapshots of the media bucket,
//!   point-in-time restore from them or from S3 versions, verify; the storage RPO watch).
//! - [`search`]: Scenario 3, Meilisearch failure (health against the database's count, dumps,
//!   the reindex through the platform API followed to its end).
//! - [`api`]: API and web health.
//! - [`drill`]: the runbook's fire drills, done for real on scratch copies, with a schedule.
//! - [`retention`]: `/backup prune`, `[retention]` applied to backups and snapshots.
//! - [`full`]: Scenario 4, complete system failure: its own manual steps around every other
//!   scenario's procedure.
//!
//! A new scenario is a folder here implementing [`Scenario`] and one line in [`ALL`]. A folder
//! with runbook steps returns its [`Procedure`] from [`Scenario::procedure`]: [`runbook`]
//! makes it a scenario an incident can be declared with, and a part of the full one.

pub mod api;
pub mod database;
pub mod drill;
pub mod full;
pub mod retention;
pub mod search;
pub mod storage;

use std::sync::LazyLock;

use crate::clock::Clock;
use crate::config::Config;
use crate::context::Engine;
use crate::grammar::{self, CommandSpec, Table};
use crate::runbook::{self, Procedure, Runbook};
use crate::scenario::{Destructive, Scenario};

/// Every scenario module, in help order.
pub static ALL: &[&dyn Scenario] = &[
    &database::Database,
    &storage::STORAGE,
    &search::SEARCH,
    &api::API,
    &drill::DRILL,
    &retention::BACKUPS,
];

/// This build's runbook: each folder's procedure as a scenario of its own, in [`ALL`]'s
/// order, then the complete system failure composed of all of them.
pub fn runbook() -> &'static Runbook {
    static RUNBOOK: LazyLock<Runbook> = LazyLock::new(|| {
        let procedures: Vec<&'static Procedure> =
            ALL.iter().filter_map(|s| s.procedure()).collect();
        Runbook::new(
            procedures
                .iter()
                .map(|p| runbook::Scenario::of(p))
                .chain([full::scenario(&procedures)])
                .collect(),
        )
    });
    &RUNBOOK
}

impl Engine {
    /// An engine over an opened store, running this build's scenarios ([`runbook`]).
    pub fn new(
        config: std::sync::Arc<Config>,
        store: drbot_state::Store,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Engine {
        Engine::with_runbook(runbook(), config, store, clock)
    }
}

/// The one command table: the lifecycle, each scenario's rows, the gate, notifications.
pub fn table() -> &'static Table {
    static TABLE: LazyLock<Table> = LazyLock::new(|| {
        Table::new(
            std::iter::once((lifecycle(), true))
                .chain(ALL.iter().map(|s| (s.commands(), s.built())))
                .chain([
                    (grammar::GATE, true),
                    (grammar::NOTIFY, true),
                    (grammar::PAGING, true),
                ]),
        )
    });
    &TABLE
}

/// The lifecycle's rows, `/incident declare` offering the runbook's scenarios.
fn lifecycle() -> &'static [CommandSpec] {
    let names = runbook().scenarios().iter().map(|s| s.as_str()).collect();
    grammar::offering(grammar::LIFECYCLE, "scenario", names)
}

/// The scenario that owns a command, if a scenario does.
pub fn owner(spec: &CommandSpec) -> Option<&'static dyn Scenario> {
    ALL.iter()
        .copied()
        .find(|s| s.commands().iter().any(|c| c.id() == spec.id()))
}

/// The destructive action behind a command.
pub fn action_for(spec: &CommandSpec) -> Option<&'static dyn Destructive> {
    ALL.iter()
        .flat_map(|s| s.actions().iter().copied())
        .find(|a| a.spec().id() == spec.id())
}

/// The destructive action of a stored kind (`db-restore`).
pub fn action_of_kind(kind: &str) -> Option<&'static dyn Destructive> {
    ALL.iter()
        .flat_map(|s| s.actions().iter().copied())
        .find(|a| a.kind() == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::CommandId;

    fn scenario(name: &str) -> &'static runbook::Scenario {
        runbook().scenario(name).expect("scenario")
    }

    #[test]
    fn step_ids_are_unique_and_typeable_in_every_scenario() {
        for sc in runbook().scenarios() {
            let steps: Vec<_> = sc.steps().collect();
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
        let db = scenario("database");
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
    fn the_runbook_is_each_folders_procedure_then_the_full_scenario_composed_of_them() {
        let names: Vec<_> = runbook().scenarios().iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["database", "storage", "search", "full"]);
        // What /incident declare offers is what the runbook knows.
        let declare = table().parse("/incident declare scenario:full severity:sev1 title:x");
        let offered = match declare.map(|inv| inv.spec.option("scenario").map(|o| o.kind)) {
            Ok(Some(grammar::Choice(offered))) => offered.to_vec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(offered, names);
        assert!(
            table()
                .parse("/incident declare scenario:queue severity:sev1 title:x")
                .is_err()
        );
        let db: Vec<_> = scenario("database").steps().map(|s| s.id).collect();
        assert_eq!(&db[..3], ["db-assess", "stop-apps", "db-restore"]);
        assert_eq!(
            scenario("database").step("stop-apps").map(|s| s.title),
            Some("Stop API and web applications")
        );
        assert!(
            scenario("database")
                .step("db-restore")
                .is_some_and(|s| s.destructive)
        );
        // The full scenario: its own steps around every procedure's, in runbook order.
        let full = scenario("full");
        let ids: Vec<_> = full.steps().map(|s| s.id).collect();
        assert_eq!(ids[0], "infra-assess");
        let at = |id: &str| ids.iter().position(|s| *s == id).expect(id);
        assert!(at("infra-assess") < at("db-assess"));
        assert!(at("db-reindex") < at("storage-assess"));
        assert!(at("storage-verify") < at("search-health"));
        assert!(at("search-reindex") < at("app-deploy") && at("app-deploy") < at("dns"));
        assert!(at("dns") < at("post-integrity"));
        // Its recovery steps group by component; three components are timed on their own.
        let group = |id| full.group_of(id).map(|g| g.name);
        assert_eq!(group("db-restore"), Some("database"));
        assert_eq!(group("stop-apps"), Some("database"));
        assert_eq!(group("storage-verify"), Some("storage"));
        assert_eq!(group("search-reindex"), Some("search"));
        assert_eq!(group("infra-assess"), Some("infrastructure"));
        assert_eq!(group("dns"), Some("applications"));
        assert_eq!(group("post-comms"), None);
        let config = Config::default();
        let timed: Vec<_> = full
            .timed_groups(&config)
            .map(|(g, rto)| (g.name, rto.num_minutes()))
            .collect();
        let rto = &config.objectives.rto;
        assert_eq!(
            timed,
            [
                ("database", rto.database as i64),
                ("storage", rto.storage as i64),
                ("search", rto.search as i64)
            ]
        );
        assert!(full.grouped() && !scenario("database").grouped());
        assert_eq!(scenario("database").timed_groups(&config).count(), 0);
        assert_eq!(full.rto_mins(&config), rto.full);
        assert_eq!(scenario("search").rto_mins(&config), rto.search);
        assert_eq!(
            runbook()
                .scenario("nonsense")
                .map_err(|e| e.to_string())
                .map(|s| s.as_str()),
            Err("`nonsense` is not a scenario (database, storage, search, full)".to_string())
        );
    }

    #[test]
    fn every_command_has_one_owner_and_every_destructive_one_an_action_or_none_yet() {
        let core: Vec<String> = grammar::LIFECYCLE
            .iter()
            .chain(grammar::GATE)
            .chain(grammar::NOTIFY)
            .chain(grammar::PAGING)
            .map(CommandSpec::path)
            .collect();
        for spec in table().specs() {
            let owners = ALL
                .iter()
                .filter(|s| s.commands().iter().any(|c| c.id() == spec.id()))
                .count();
            let in_core = core.contains(&spec.path());
            assert_eq!(
                owners + usize::from(in_core),
                1,
                "{} must have exactly one owner",
                spec.path()
            );
            let owner = owner(spec);
            if spec.destructive {
                // A built scenario's destructive command goes through the gate as an action.
                let built = owner.is_some_and(|s| s.built());
                assert_eq!(action_for(spec).is_some(), built, "{}", spec.path());
            } else {
                assert!(action_for(spec).is_none(), "{}", spec.path());
            }
        }
        // Actions are found by their stored kind, and their command is their scenario's.
        for s in ALL {
            for a in s.actions() {
                assert!(action_of_kind(a.kind()).is_some_and(|b| b.kind() == a.kind()));
                assert!(s.commands().iter().any(|c| c.id() == a.spec().id()));
                assert!(a.spec().destructive, "{}", a.kind());
            }
        }
        // Only built scenarios are registered in Discord; the table still parses the others.
        let registered: Vec<&str> = table().built().map(|c| c.group).collect();
        assert!(registered.contains(&"db") && registered.contains(&"storage"));
        assert!(registered.contains(&"search") && registered.contains(&"api"));
        assert!(registered.contains(&"drill"));
        assert!(table().parse("/drill report").is_ok());
        assert!(table().parse("/drill history limit:5").is_ok());
        assert!(table().parse("/drill start kind:storage").is_ok());
    }
}
