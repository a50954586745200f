//! drbot's commands: everything between a typed line and the incident state.
//!
//! How a command travels: an adapter (console, `exec`, the control socket, Discord) hands a
//! line and a [`Context`] (who, where) to [`Engine::run`]. `dispatch` parses it with
//! [`grammar`], sends it to the module that owns the command (a destructive one only ever
//! becomes an [`approval`] request), catches a panic, flushes the store before the reply says
//! done, sends the notices it queued ([`notify`]) and strips secrets from the reply
//! ([`redact`]). Imports point down only (no circles): `dispatch` → command modules →
//! `engine` → infrastructure → `drbot_state`.
//!
//! - Top: `dispatch` (the one file that knows every handler), [`watch`] (background work
//!   while serving: status posts, RTO warnings, nudges, RPO watch), [`complete`]
//!   (autocomplete), [`check`] (`drbot check`), [`state_export`] (drbot's own state off the
//!   host).
//! - Commands: `incident` and `step` (the lifecycle and the runbook checklist), [`approval`]
//!   (the two-person gate), [`db`] (the database scenario: check, backups, streaming restore,
//!   verify, backup), [`notify`] (stakeholder notices), [`report`] and [`chart`] (the
//!   post-incident report).
//! - [`engine`]: the shared state (config, store, clock, environment, known secrets, running
//!   restores) and the helpers commands share: selecting the incident, timeline entries, step
//!   changes, recovery after a crash.
//! - Infrastructure: [`bucket`] (S3/R2), [`http`] (the client with connect and total
//!   timeouts), [`locks`] (one restore per target), [`identity`], [`config`] (SPEC §4),
//!   [`runbook`] (RUNBOOK.md as data), [`grammar`], [`progress`], [`render`], [`reply`],
//!   [`clock`], [`error`].
//!
//! This crate never talks to Discord: the `drbot` binary adapts it to each place.

pub mod approval;
pub mod bucket;
pub mod chart;
pub mod check;
pub mod clock;
pub mod complete;
pub mod config;
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
pub mod pg;
pub mod progress;
pub mod redact;
pub mod render;
pub mod reply;
pub mod report;
pub mod runbook;
pub mod scenario;
pub mod scenarios;
pub mod state_export;
mod step;
pub mod watch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use engine::{Context, Engine, Place};
pub use error::CommandError;
pub use identity::Actor;
pub use reply::{Attachment, Outcome, Reply};
pub use scenarios::table as commands;

#[cfg(test)]
mod tests;
