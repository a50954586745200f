//! drbot's commands: everything between a typed line and the incident state.
//!
//! - [`grammar`]: the command table of SPEC §2 (one source of truth for the console's parser
//!   and Discord's registration) and the parser of `/group sub name:value` lines.
//! - [`runbook`]: RUNBOOK.md as data: scenarios and their ordered, automated or manual steps.
//! - [`engine`]: runs a parsed command for an [`identity::Actor`] in a [`engine::Place`],
//!   records it on the timeline, answers with a [`reply::Reply`].
//! - `incident` and `step`: the incident lifecycle and the runbook checklist.
//! - [`config`]: the TOML config of SPEC §4 over built-in defaults; [`check`]: `drbot check`.
//! - [`db`]: the database scenario (check, backups, streaming restore, verify, backup);
//!   [`bucket`]: the S3/R2 bucket; [`progress`]: progress lines for long work.
//! - [`approval`]: the two-person gate every destructive command goes through.
//! - [`state_export`]: drbot's own state exported to the bucket and imported on a new host.
//! - [`watch`]: background work while serving: status posts, RTO warnings, nudges, RPO watch.
//! - [`http`]: the HTTP client with connect and total timeouts every remote call uses.
//! - [`identity`]: who is acting and how that is proven; [`redact`]: secrets out of text.
//!
//! This crate never talks to Discord: the `drbot` binary adapts it to each place.

pub mod approval;
pub mod bucket;
pub mod chart;
pub mod check;
pub mod clock;
pub mod complete;
pub mod config;
pub mod db;
mod dispatch;
pub mod engine;
pub mod error;
pub mod grammar;
pub mod http;
pub mod identity;
mod incident;
pub mod locks;
pub mod notify;
mod options;
pub mod progress;
pub mod redact;
pub mod render;
pub mod reply;
pub mod report;
pub mod runbook;
pub mod state_export;
mod step;
pub mod watch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use engine::{Context, Engine, Place};
pub use error::CommandError;
pub use identity::Actor;
pub use reply::{Attachment, Outcome, Reply};

#[cfg(test)]
mod tests;
