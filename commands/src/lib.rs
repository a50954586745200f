//! drbot's commands: everything between a typed line and the incident state.
//!
//! How a command travels: an adapter (console, `exec`, the control socket, Discord) hands a
//! line and a [`Context`] (who — a [`identity::Principal`] — and where) to [`Engine::run`].
//! `dispatch` parses it against the one command table ([`scenarios::table`]), sends it to the
//! incident lifecycle (`incident`, `step`), to [`notify`], to the approval gate ([`approval`])
//! when it is destructive, or else to the scenario that owns it; it catches a panic, flushes
//! the store before the reply says done, sends the notices it queued and strips secrets from
//! the reply ([`redact`]). Imports point down only (no circles): adapter → `dispatch` and the
//! gate → scenarios → [`context`] → infrastructure → `drbot_state`.
//!
//! - Top: `dispatch`, [`approval`] (the two-person gate: it knows no scenario, only
//!   [`scenario::Destructive`]: kind, prepare with preflight, re-read at execution, run; the
//!   digest is recomputed from the re-read inputs), [`watch`] (status posts, RTO warnings,
//!   nudges, then each scenario's watch), [`report`] and [`chart`], [`complete`]
//!   (autocomplete), [`check`] (`drbot check`), [`state_export`] (drbot's own state off the
//!   host).
//! - [`scenarios`]: one folder per runbook scenario, each a [`scenario::Scenario`] (its rows
//!   of the command table, handlers, destructive actions, background watch, report section,
//!   autocomplete, and its runbook steps when it has them), registered by one line in
//!   [`scenarios::ALL`]: [`database`](scenarios::database) (check, backups, streaming restore,
//!   verify, backup, the RPO watch and the report's RPO); [`storage`](scenarios::storage),
//!   [`search`](scenarios::search), [`api`](scenarios::api), [`drill`](scenarios::drill),
//!   [`retention`](scenarios::retention), and [`full`](scenarios::full), the runbook's
//!   complete system failure composed of the others' steps.
//! - [`context`]: what every command runs with — the shared [`Engine`] (runbook, config, store,
//!   clock, environment, known secrets, running restores) and the command's own [`Context`] (who,
//!   where) — and what commands share: selecting the incident, timeline entries, runbook
//!   steps (bound by command id and target: only commands on the production target do
//!   production steps), recovery after a crash. Commands are run by `dispatch`, not here.
//! - Infrastructure: [`bucket`] (S3/R2), [`pg`] (database targets and connections), [`http`]
//!   (the client with connect and total timeouts), [`locks`] (one restore per target),
//!   [`identity`] (principals), [`config`] (SPEC §4), [`runbook`] (the types of RUNBOOK.md as
//!   data and the checklist every scenario ends with; each scenario folder declares its own
//!   steps, and `scenarios::runbook` puts them together for the engine),
//!   [`grammar`], [`progress`], [`render`], [`reply`], [`clock`], [`error`].
//!
//! This crate never talks to Discord: the `drbot` binary adapts it to each place.

pub mod approval;
pub mod bucket;
pub mod chart;
pub mod check;
pub mod clock;
pub mod complete;
pub mod config;
pub mod context;
mod dispatch;
pub mod error;
pub mod grammar;
pub mod http;
pub mod identity;
pub mod incident;
pub mod locks;
pub mod notify;
mod options;
pub mod paging;
pub mod pg;
pub mod progress;
pub mod redact;
pub mod render;
pub mod reply;
pub mod report;
pub mod retention;
pub mod runbook;
pub mod scenario;
pub mod scenarios;
pub mod spool;
pub mod state_export;
mod step;
pub mod watch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use context::{Context, Engine, Place};
pub use error::CommandError;
pub use identity::Actor;
pub use reply::{Attachment, Outcome, Reply};
pub use scenarios::table as commands;

#[cfg(test)]
mod tests;
