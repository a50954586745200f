//! drbot's integration tests: the real `drbot` binary, run as separate processes against real
//! state on disk (and, as the integrations land, real PostgreSQL and moto). One test binary,
//! one module per scenario.

mod approvals;
mod database;
mod foundation;
mod serve;
mod support;
