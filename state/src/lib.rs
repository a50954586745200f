//! drbot's durable incident state, kept in sled behind a typed API.
//!
//! - [`Store`] owns the sled database of one data directory: open (with a clear error when another
//!   process holds it), schema version and migrations, flushing.
//! - [`model`] holds the stored records: incidents with their step states and roles, timeline
//!   entries, audit-log entries.
//! - Incidents and their timeline change together in one sled transaction, so a reply never
//!   reports a change whose timeline entry is missing (or the reverse).
//!
//! Nothing here knows about Discord, the runbook's wording or the command grammar: callers in
//! `drbot-commands` decide what a change means; this crate makes it durable.

mod error;
pub mod model;
mod store;

pub use error::StateError;
pub use model::{
    ApprovalRequest, ApprovalStatus, DeliveryStatus, Drill, DrillId, DrillStatus, DrillStep,
    EntryKind, Incident, IncidentId, IncidentStatus, LastRestore, NewEntry, OutboxItem, Page,
    PageId, PageRound, PageStatus, PreflightState, Proof, RequestId, Scratch, ScratchState,
    StepRecord, StepState, TimelineEntry, WatchState,
};
pub use store::{ImportSummary, SCHEMA_VERSION, Store};
