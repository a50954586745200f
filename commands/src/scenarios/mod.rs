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
//!
//! A new scenario is a folder here implementing [`Scenario`] and one line in [`ALL`].

pub mod api;
pub mod database;
pub mod drill;
pub mod retention;
pub mod search;
pub mod storage;

use std::sync::LazyLock;

use crate::grammar::{self, CommandSpec, Table};
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

/// The one command table: the lifecycle, each scenario's rows, the gate, notifications.
pub fn table() -> &'static Table {
    static TABLE: LazyLock<Table> = LazyLock::new(|| {
        Table::new(
            std::iter::once((grammar::LIFECYCLE, true))
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
