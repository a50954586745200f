//! drbot's integration tests: the real `drbot` binary, run as separate processes against real
//! state on disk, real PostgreSQL and moto, and a local fake of Discord. One test binary, one
//! module per scenario.

// Test helpers may unwrap: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod approvals;
mod backups;
mod corpus;
mod crash;
mod database;
mod discord;
mod drill;
mod fake_discord;
mod fake_http;
mod fake_meili;
mod fake_pagerduty;
mod fake_r2;
mod foundation;
mod generated;
mod notify;
mod paging;
mod restore;
mod search;
mod serve;
mod socket_group;
mod staged;
mod state;
mod storage;
mod support;
