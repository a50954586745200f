//! The stored records: incidents, their steps and roles, timeline and audit entries.
//!
//! Values are JSON; fields added later carry `#[serde(default)]` so older records still read,
//! and breaking changes go through a schema migration in [`crate::Store`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An incident's number, shown to people as `INC-<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

impl FromStr for IncidentId {
    type Err = String;

    /// Accepts `INC-7`, `inc-7`, `#7` or `7`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, &["INC-", "inc-"])
            .map(IncidentId)
            .ok_or_else(|| format!("`{s}` is not an incident id (write it like INC-3 or 3)"))
    }
}

/// The positive number in `s` after one of `prefixes`, `#`, or nothing.
fn parse_number(s: &str, prefixes: &[&str]) -> Option<u64> {
    let t = s.trim();
    let digits = prefixes
        .iter()
        .chain(&["#"])
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    digits.parse::<u64>().ok().filter(|n| *n > 0)
}

/// Where an incident is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// The clock is running.
    Open,
    /// Service is restored; the clock has stopped; notes may still be added.
    Resolved,
    /// Finished; read-only.
    Closed,
}

impl IncidentStatus {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }
}

/// The state of one runbook step within an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// An automated step is running now.
    Running,
    /// Finished successfully (or confirmed done by a person).
    Done,
    /// Deliberately not done, with a reason.
    Skipped,
    /// The automated step failed.
    Failed,
    /// It was running when drbot stopped; it is never resumed on its own.
    Interrupted,
}

impl StepState {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Skipped => "skipped",
            StepState::Failed => "failed",
            StepState::Interrupted => "interrupted",
        }
    }

    /// True when nothing more is expected of the step.
    pub fn is_settled(self) -> bool {
        matches!(self, StepState::Done | StepState::Skipped)
    }
}

/// One step of the incident's runbook, by its stable id, with who changed it last and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The runbook's id for the step (e.g. `stop-apps`).
    pub id: String,
    /// Its current state.
    pub state: StepState,
    /// Who last changed it.
    #[serde(default)]
    pub by: Option<String>,
    /// When it was started (automated steps), if it was.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it last changed state.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// Why it was skipped or how it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Settled by a person with `/step done` or `/step skip`, not by a command drbot ran.
    #[serde(default)]
    pub by_hand: bool,
}

impl StepRecord {
    /// A step that has not started.
    pub fn pending(id: impl Into<String>) -> Self {
        StepRecord {
            id: id.into(),
            state: StepState::Pending,
            by: None,
            started_at: None,
            at: None,
            reason: None,
            by_hand: false,
        }
    }
}

/// An incident: what happened, where it is handled, its steps and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its number.
    pub id: IncidentId,
    /// The runbook scenario (`database`, `storage`, `search`, `full`).
    pub scenario: String,
    /// `sev1` (worst) to `sev3`.
    pub severity: String,
    /// A short human title.
    pub title: String,
    /// The channel it lives in: `console`, or `discord:<channel id>`.
    pub place: String,
    /// Open, resolved or closed.
    pub status: IncidentStatus,
    /// When it was declared; the RTO clock starts here.
    pub declared_at: DateTime<Utc>,
    /// Who declared it.
    pub declared_by: String,
    /// When it was resolved (the clock stops).
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who resolved it.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// When it was closed.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    #[serde(default)]
    pub closed_by: Option<String>,
    /// Incident roles (`commander`, `comms`, `scribe`) to the person holding each (names,
    /// shown).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// The same roles to their holders' principals, which the commander check compares.
    /// Incidents stored before principals have none: their holders count as `person:<name>`.
    #[serde(default)]
    pub role_ids: BTreeMap<String, String>,
    /// The runbook's steps for the scenario, in order.
    pub steps: Vec<StepRecord>,
    /// The last time a person did something in the incident.
    pub last_activity: DateTime<Utc>,
    /// What the background work has already posted.
    #[serde(default)]
    pub watch: WatchState,
}

/// What the background work has posted for an incident, so a restart never repeats it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchState {
    /// When the last status summary went out.
    #[serde(default)]
    pub last_status_at: Option<DateTime<Utc>>,
    /// RTO percentages already warned about.
    #[serde(default)]
    pub rto_warned: Vec<u8>,
    /// When the commander was last nudged.
    #[serde(default)]
    pub nudged_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// True until the incident is closed.
    pub fn is_active(&self) -> bool {
        self.status != IncidentStatus::Closed
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The step with this id, to change.
    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| s.id == id)
    }
}

/// How sure drbot is of who the actor is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// Shown by Discord, or by the operating system's user id.
    #[default]
    Proven,
    /// Only claimed with `--as` under `[console] trust_as = true` (or the built-in defaults).
    Asserted,
    /// drbot itself (status posts, watchers).
    System,
}

/// What a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The incident was declared.
    Declared,
    /// A human note.
    Note,
    /// An incident role was assigned.
    Role,
    /// A runbook step changed state.
    Step,
    /// A command ran, with its result.
    Command,
    /// A command was refused or could not be understood.
    Refused,
    /// The incident was resolved.
    Resolved,
    /// The incident was closed.
    Closed,
    /// A resolved or closed incident was opened again.
    Reopened,
    /// The title or severity was corrected.
    Edited,
    /// An approval request or decision.
    Approval,
    /// A status update posted by drbot.
    Status,
    /// A stakeholder notification.
    Notification,
    /// A page: sent, escalated, acknowledged, closed.
    Page,
}

impl EntryKind {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Declared => "declared",
            EntryKind::Note => "note",
            EntryKind::Role => "role",
            EntryKind::Step => "step",
            EntryKind::Command => "command",
            EntryKind::Refused => "refused",
            EntryKind::Resolved => "resolved",
            EntryKind::Closed => "closed",
            EntryKind::Reopened => "reopened",
            EntryKind::Edited => "edited",
            EntryKind::Approval => "approval",
            EntryKind::Status => "status",
            EntryKind::Notification => "notification",
            EntryKind::Page => "page",
        }
    }
}

/// A timeline entry about to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor: String,
    /// How sure drbot is of the actor.
    pub proof: Proof,
    /// What it records.
    pub kind: EntryKind,
    /// One or two sentences for people.
    pub text: String,
}

/// A stored timeline (or audit-log) entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Its position: increasing in the order entries were written.
    pub seq: u64,
    /// The incident it belongs to; in the audit log, the incident it concerns (a command
    /// refused there), if any.
    pub incident: Option<IncidentId>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor: String,
    /// How sure drbot is of the actor.
    #[serde(default)]
    pub proof: Proof,
    /// What it records.
    pub kind: EntryKind,
    /// The text.
    pub text: String,
}

impl TimelineEntry {
    pub(crate) fn from_new(seq: u64, incident: Option<IncidentId>, e: NewEntry) -> Self {
        TimelineEntry {
            seq,
            incident,
            at: e.at,
            actor: e.actor,
            proof: e.proof,
            kind: e.kind,
            text: e.text,
        }
    }
}

/// An approval request's number, shown to people as `A-<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A-{}", self.0)
    }
}

impl FromStr for RequestId {
    type Err = String;

    /// Accepts `A-7`, `a-7`, `A7`, `#7` or `7`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, &["A-", "a-", "A", "a"])
            .map(RequestId)
            .ok_or_else(|| format!("`{s}` is not an approval request id (write it like A-3)"))
    }
}

/// Where an approval request is in its life. Only `Pending` can be approved or denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a second person.
    Pending,
    /// Approved; the action is running.
    Executing,
    /// Approved and run to success.
    Executed,
    /// Approved and run, but the action failed.
    Failed,
    /// Denied by someone, with a reason.
    Denied,
    /// Not decided within the time allowed.
    Expired,
    /// Approved, but its inputs had changed, so it did not run.
    Voided,
    /// drbot stopped while it ran; it is never run again on its own.
    Interrupted,
}

impl ApprovalStatus {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Executing => "running",
            ApprovalStatus::Executed => "done",
            ApprovalStatus::Failed => "failed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Voided => "voided",
            ApprovalStatus::Interrupted => "interrupted",
        }
    }
}

/// Where a request's preflight is. It runs while people decide; the action runs only once it
/// has passed and the approvals are in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreflightState {
    /// Passed (and a request stored before preflights ran beside the decision: it had passed
    /// before it was stored).
    #[default]
    Passed,
    /// Still running: the request may be approved, but nothing runs yet.
    Running,
    /// Failed: the request was voided with the reason.
    Failed,
}

impl PreflightState {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            PreflightState::Passed => "passed",
            PreflightState::Running => "running",
            PreflightState::Failed => "failed",
        }
    }
}

/// A destructive action waiting for (or past) a second person's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Its number.
    pub id: RequestId,
    /// The incident it belongs to, if any.
    pub incident: Option<IncidentId>,
    /// Where it was requested (`console`, `discord:<channel>`).
    pub place: String,
    /// Who asked.
    pub requested_by: String,
    /// How sure drbot was of the requester.
    pub requested_proof: Proof,
    /// The command as typed (canonical form).
    pub command: String,
    /// The exact action, resolved: what kind of action and its inputs (key, ETag, target...).
    pub action: String,
    /// The action's inputs, as resolved when it was requested.
    pub inputs: BTreeMap<String, String>,
    /// sha256 over the action and its inputs, hex.
    pub digest: String,
    /// One or two lines describing it for the approver.
    pub summary: String,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When it stops being approvable.
    pub expires_at: DateTime<Utc>,
    /// Where it is now.
    pub status: ApprovalStatus,
    /// Who approved or denied it.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// When.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was denied or voided, or how it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The chat message that shows it (Discord), for reactions and buttons.
    #[serde(default)]
    pub message_id: Option<u64>,
    /// Approvals it needs before it runs (fixed when it is asked for).
    #[serde(default = "one")]
    pub required: u32,
    /// Who has approved it so far, in order (each a different person): their names, shown.
    #[serde(default)]
    pub approvals: Vec<String>,
    /// Who asked for it: their principal (`person:alice`, `discord:<id>`, `unix:<uid>`),
    /// which identity checks compare. Empty in requests stored before principals.
    #[serde(default)]
    pub requested_by_id: String,
    /// The principals of `approvals`, in the same order.
    #[serde(default)]
    pub approval_ids: Vec<String>,
    /// What the approver weighs, named (backup, size, age, target, sessions connected), as the
    /// preflight found it; drawn on the request's card. Empty in requests stored before them.
    #[serde(default)]
    pub facts: Vec<(String, String)>,
    /// Its preflight: running while people decide, then passed or failed.
    #[serde(default)]
    pub preflight: PreflightState,
    /// What the preflight found, in lines, for the approver (empty until it passed).
    #[serde(default)]
    pub details: String,
    /// What its preflight left for the run (a staged restore's loaded database) was released
    /// after it ended without running: dropped, or found gone.
    #[serde(default)]
    pub released: bool,
}

impl ApprovalRequest {
    /// True when every approval it needs is in (it may still wait for its preflight).
    pub fn approved(&self) -> bool {
        self.approvals.len() as u32 >= self.required.max(1)
    }
}

fn one() -> u32 {
    1
}

/// Where a stakeholder notification is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Accepted by the channel.
    Delivered,
    /// Given up on (a permanent refusal, or too many attempts).
    Failed,
}

/// A stakeholder notification in the outbox: its request is fixed when queued, so every retry
/// sends exactly the same thing with the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Its number, in queue order.
    pub id: u64,
    /// `email`, `statuspage` or `discord`.
    pub channel: String,
    /// The idempotency key sent with every attempt.
    pub key: String,
    /// The incident it is about.
    pub incident: Option<IncidentId>,
    /// What it says, in a line (for the timeline).
    pub summary: String,
    /// The request body, fixed at queue time.
    pub body: String,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_at: DateTime<Utc>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// The last failure, if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// What the channel answered with when it took it (Discord: the message's id), so a
    /// reaction on it can be traced back.
    #[serde(default)]
    pub delivered_ref: Option<String>,
}

/// A page's number, shown to people as `PAGE-<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageId(pub u64);

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PAGE-{}", self.0)
    }
}

impl FromStr for PageId {
    type Err = String;

    /// Accepts `PAGE-4`, `page-4`, `#4` or `4`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, &["PAGE-", "page-", "Page-"])
            .map(PageId)
            .ok_or_else(|| format!("`{s}` is not a page id (write it like PAGE-2 or 2)"))
    }
}

/// Where a page is: waiting for someone to acknowledge it (and escalating), or settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    /// Sent; nobody has acknowledged it yet.
    Open,
    /// Someone acknowledged it; it escalates no further.
    Acknowledged,
    /// Its incident was resolved before anyone acknowledged it.
    Closed,
}

/// One step of a page up its escalation path: the group paged, whom, when, and the
/// deliveries queued for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRound {
    /// The group (or, for `/page who:<contact>`, the contact's key).
    pub group: String,
    /// The contacts paged, by key.
    pub contacts: Vec<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The outbox items queued for it (email, Discord, PagerDuty).
    pub outbox: Vec<u64>,
}

/// A page: people woken for an incident, escalated until someone acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Its number.
    pub id: PageId,
    /// The incident it is for, if any.
    pub incident: Option<IncidentId>,
    /// Why (the incident's title, or the message of `/page`).
    pub message: String,
    /// Who paged (`drbot` for a declare's page).
    pub paged_by: String,
    /// The groups it climbs, in order; `rounds.len()` of them have been paged.
    pub path: Vec<String>,
    /// Each group paged so far.
    pub rounds: Vec<PageRound>,
    /// When it was first sent.
    pub created_at: DateTime<Utc>,
    /// When it goes to the next group if nobody acknowledges it; `None` once settled or at
    /// the top of its path.
    pub escalate_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub status: PageStatus,
    /// Who acknowledged it.
    #[serde(default)]
    pub acked_by: Option<String>,
    /// When.
    #[serde(default)]
    pub acked_at: Option<DateTime<Utc>>,
    /// PagerDuty's deduplication key for it (one alert per incident and page).
    pub dedup_key: String,
}

/// The backup most recently restored into a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRestore {
    /// The backup's object key.
    pub key: String,
    /// When the restore finished.
    pub at: DateTime<Utc>,
    /// Who ran it.
    pub by: String,
}

/// A fire drill's number, shown to people as `DRILL-<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DrillId(pub u64);

impl fmt::Display for DrillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DRILL-{}", self.0)
    }
}

impl FromStr for DrillId {
    type Err = String;

    /// Accepts `DRILL-4`, `drill-4`, `#4` or `4`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, &["DRILL-", "drill-", "Drill-"])
            .map(DrillId)
            .ok_or_else(|| format!("`{s}` is not a drill id (write it like DRILL-3 or 3)"))
    }
}

/// Where a drill is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillStatus {
    /// Running now.
    Running,
    /// Every step passed.
    Passed,
    /// A step failed.
    Failed,
    /// drbot stopped while it ran; what it had created was dropped at the next start.
    Interrupted,
}

impl DrillStatus {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Running => "running",
            DrillStatus::Passed => "passed",
            DrillStatus::Failed => "failed",
            DrillStatus::Interrupted => "interrupted",
        }
    }
}

/// One step of a drill, with its clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillStep {
    /// What it is (`restore the latest backup`).
    pub name: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether it passed (none while it runs, or for an item left to people).
    #[serde(default)]
    pub ok: Option<bool>,
    /// What it found, in a line or a few.
    #[serde(default)]
    pub detail: String,
}

/// Where a scratch resource of a drill is: recorded before it is created, so a drill that
/// dies leaves nothing behind that drbot does not know about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScratchState {
    /// Recorded; being created (it may or may not exist).
    Planned,
    /// Created by drbot.
    Created,
    /// Dropped again.
    Dropped,
    /// Kept on request (`keep:true`).
    Kept,
    /// It was never created (its creation failed), so there is nothing of drbot's to drop.
    NotCreated,
}

/// A scratch resource a drill creates and drops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scratch {
    /// `database` (on the drill server) or `prefix` (in the media bucket).
    pub kind: String,
    /// Its name: the database, or the key prefix.
    pub name: String,
    /// Where it is.
    pub state: ScratchState,
}

/// A fire drill: its steps and clocks, the scratch resources it made, its measurements and
/// its report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    /// Its number.
    pub id: DrillId,
    /// `database`, `storage` or `full`.
    pub kind: String,
    /// Who started it (`drbot` for a scheduled one).
    pub started_by: String,
    /// Where it was started (`console`, `discord:<channel>`), where its report goes.
    pub place: String,
    /// Whether the schedule started it.
    #[serde(default)]
    pub scheduled: bool,
    /// When it started: the RTO clock starts here.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub status: DrillStatus,
    /// Why it failed or was interrupted.
    #[serde(default)]
    pub reason: Option<String>,
    /// Its steps, in order.
    #[serde(default)]
    pub steps: Vec<DrillStep>,
    /// The scratch resources it recorded before creating them.
    #[serde(default)]
    pub scratch: Vec<Scratch>,
    /// The backup (or snapshot) it restored.
    #[serde(default)]
    pub restored: Option<String>,
    /// RTO achieved: milliseconds from the start to verified usable.
    #[serde(default)]
    pub rto_ms: Option<i64>,
    /// RPO: the restored backup's age at the start, in seconds.
    #[serde(default)]
    pub rpo_secs: Option<i64>,
    /// In a full drill, the snapshot the storage part restored (`restored` is the backup).
    #[serde(default)]
    pub storage_restored: Option<String>,
    /// In a full drill, the storage RPO: that snapshot's age at the start, in seconds.
    #[serde(default)]
    pub storage_rpo_secs: Option<i64>,
    /// The application's start-up queries, timed: (query, milliseconds, result).
    #[serde(default)]
    pub app_checks: Vec<(String, u64, String)>,
    /// The report, as markdown, once it ended.
    #[serde(default)]
    pub report: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_parse_in_every_written_form() {
        for s in ["INC-7", "inc-7", "#7", "7", " 7 "] {
            assert_eq!(s.parse::<IncidentId>(), Ok(IncidentId(7)), "{s}");
        }
        for s in ["", "INC-", "INC-0", "seven", "-1", "INC-7x"] {
            assert!(s.parse::<IncidentId>().is_err(), "{s}");
        }
        assert_eq!(IncidentId(12).to_string(), "INC-12");
    }
}
