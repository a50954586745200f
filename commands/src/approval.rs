//! Two-person approval (SPEC §7): the one gate every destructive command goes through.
//!
//! A destructive command does not run when typed. Its scenario's [`Destructive`] action
//! resolves its inputs into exact values (for `/db restore`: the backup's key and ETag, the
//! target's address) and runs its preflight; they are stored as a request bound to a digest of
//! them. The gate knows no scenario: it finds the action by the command, or by the stored
//! kind. A second person with the approver role runs it with `/approve`; at that moment the
//! action reads its inputs again, the digest is recomputed from what it read, and any change
//! voids the approval. A request runs at most once: the move from pending to running is one
//! sled transaction, and a request that was running when drbot stopped is marked interrupted,
//! never re-run.

use futures_util::FutureExt;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use drbot_state::{
    ApprovalRequest, ApprovalStatus, EntryKind, Incident, PreflightState, RequestId,
};
use sha2::{Digest, Sha256};

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{INCIDENT_OPTION, Invocation};
use crate::identity::Principal;
use crate::options::required;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::{Outcome, Reply};
use crate::scenario::{Checked, Destructive, Inputs, Reread};
use crate::scenarios;

/// The role that may approve.
pub const APPROVER: &str = "approver";
/// The role that may ask for a destructive action.
pub const REQUESTER: &str = "commander";

/// sha256 over the kind and every input, hex: what an approval is bound to.
pub fn digest(kind: &str, inputs: &Inputs) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for (k, v) in inputs {
        h.update(b"\n");
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The action a stored request runs.
fn stored_action(r: &ApprovalRequest) -> Result<&'static dyn Destructive, CommandError> {
    scenarios::action_of_kind(&r.action).ok_or_else(|| {
        CommandError::Failed(format!(
            "{} holds an action this drbot does not know ({}); it will not run.",
            r.id, r.action
        ))
    })
}

/// A destructive command: creates the approval request instead of running it.
pub async fn request(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    if !ctx.actor.has_role(REQUESTER) {
        return Err(CommandError::Refused(format!(
            "{} needs the {REQUESTER} role to be asked for, and {} does not have it.",
            inv.spec.path(),
            ctx.actor.name
        )));
    }
    let Some(action) = scenarios::action_for(inv.spec) else {
        return Err(CommandError::Refused(format!(
            "{} is not built into this drbot yet. Do it by hand from RUNBOOK.md, with a second \
             person watching, then record it with /step done.",
            inv.spec.path()
        )));
    };
    // The engine records a failed preparation on the timeline, as every failure.
    let prepared = action.prepare(engine, inv, progress).await?;
    let (summary, details, facts) = (prepared.summary, prepared.details, prepared.facts);
    // The slow check (a restore reads the whole backup) runs once the request is stored, so it
    // can be decided meanwhile.
    let inputs = prepared.inputs;
    let check = action.preflight(engine, &inputs, progress);
    let checking = check.is_some();
    let incident = engine.incident_for(ctx, Some(inv));
    let now = engine.now();
    let ttl = Duration::seconds(engine.config().approvals.ttl_secs as i64);
    let digest = digest(action.kind(), &inputs);
    // Stored as the parser reads it back: a quoted value survives being asked again.
    let command = Invocation {
        spec: inv.spec,
        options: inv
            .options
            .iter()
            .filter(|(n, _)| n != INCIDENT_OPTION)
            .cloned()
            .collect(),
    }
    .canonical();
    let needed = engine
        .config()
        .approvals
        .required_for(action.kind(), inputs.get("target").map(String::as_str));
    let request = engine.store().create_approval(|id| {
        let req = ApprovalRequest {
            id,
            incident,
            place: ctx.place.key(),
            requested_by: ctx.actor.recorded(),
            requested_proof: ctx.actor.proof,
            command: command.clone(),
            action: action.kind().to_string(),
            inputs: inputs.clone(),
            digest: digest.clone(),
            summary: summary.clone(),
            created_at: now,
            expires_at: now + ttl,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
            message_id: None,
            required: needed,
            approvals: Vec::new(),
            requested_by_id: ctx.actor.id.to_string(),
            approval_ids: Vec::new(),
            facts: facts.clone(),
            preflight: if checking {
                PreflightState::Running
            } else {
                PreflightState::Passed
            },
            details: details.clone(),
            released: false,
        };
        let entry = engine.entry(
            ctx,
            EntryKind::Approval,
            if checking {
                format!(
                    "{id} requested by {}: {summary}. Digest {}. Its preflight runs now; it can be approved meanwhile and runs only once the preflight has passed.",
                    ctx.actor.display(),
                    &digest[..12],
                )
            } else {
                format!(
                    "{id} requested by {}: {summary}. Digest {}. Expires {}.",
                    ctx.actor.display(),
                    &digest[..12],
                    render::stamp(now + ttl)
                )
            },
        );
        Ok::<_, CommandError>((req, vec![entry]))
    })?;
    let id = request.id;
    // Durable before anyone is told of it, and before a preflight that may run for minutes.
    engine.store().flush().await?;
    if let Some(check) = check {
        progress.requested(
            &id.to_string(),
            &format!(
                "approval request {id} posted: {summary}. {} can approve it now (/approve request:{id}); it runs once its preflight has passed, which reads it now.",
                who_approves(needed)
            ),
        );
        let result = std::panic::AssertUnwindSafe(check)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| {
                Err(CommandError::Failed(format!(
                    "drbot's preflight stopped on an internal error ({})",
                    render::truncate(&engine.secrets().redact(&render::panic_text(&*p)), 200)
                )))
            });
        return checked(engine, ctx, inv, id, action, result, progress).await;
    }
    Ok(awaiting(engine, &request))
}

/// What was released, as lines to add to a reply.
fn released_lines(released: &[String]) -> String {
    released.iter().map(|l| format!("\n{l}")).collect()
}

/// Who may approve a request that needs `needed` approvals, as the subject of a sentence.
fn who_approves(needed: u32) -> String {
    if needed > 1 {
        format!("{needed} other people with the {APPROVER} role, one after the other,")
    } else {
        format!("Another person with the {APPROVER} role")
    }
}

/// The reply for a request that waits for its approvals.
fn awaiting(engine: &Engine, r: &ApprovalRequest) -> Reply {
    let now = engine.now();
    let verb = if r.required > 1 { "run" } else { "runs" };
    let text = format!(
        "Approval needed: {}, requested by {}.\n{}\napproval request {}{}\n\
         It expires at {} (in {}). {} {verb} /approve request:{} \
         (or /deny request:{} reason:…). Nothing has changed yet.",
        r.summary,
        r.requested_by,
        r.details,
        r.id,
        progress_of(r),
        render::time(r.expires_at, now),
        render::duration(r.expires_at - now),
        who_approves(r.required),
        r.id,
        r.id
    );
    Reply::new(Outcome::AwaitingApproval(r.id.to_string()), text)
}

/// Settles a request's preflight, in one transaction with whatever was decided while it ran:
/// a failure voids the request; a pass makes it approvable from now (its time to expire
/// starts), and when its approvals are already in, takes it to running and runs it here.
async fn checked(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    id: RequestId,
    action: &dyn Destructive,
    result: Result<Checked, CommandError>,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let now = engine.now();
    let ttl = Duration::seconds(engine.config().approvals.ttl_secs as i64);
    let system = Context {
        actor: crate::identity::Actor::system(),
        place: ctx.place.clone(),
    };
    let r = engine.store().update_approval(id, |req| {
        let pending = req.status == ApprovalStatus::Pending;
        match &result {
            Err(e) => {
                req.preflight = PreflightState::Failed;
                if !pending {
                    return Ok::<_, CommandError>(Vec::new());
                }
                req.status = ApprovalStatus::Voided;
                req.decided_at = Some(now);
                req.reason = Some(format!("its preflight failed: {e}"));
                Ok(vec![engine.entry(
                    &system,
                    EntryKind::Approval,
                    format!("{} voided: its preflight failed. Nothing was run.", req.id),
                )])
            }
            Ok(c) => {
                req.preflight = PreflightState::Passed;
                if !c.short.is_empty() {
                    req.summary = format!("{}; {}", req.summary, c.short);
                }
                req.details = c.details.clone();
                req.facts.extend(c.facts.iter().cloned());
                if !pending {
                    return Ok(Vec::new());
                }
                req.expires_at = now + ttl;
                if !req.approved() {
                    return Ok(vec![engine.entry(
                        &system,
                        EntryKind::Approval,
                        format!(
                            "{}'s preflight passed: {}. It waits for approval until {}.",
                            req.id,
                            c.short,
                            render::stamp(req.expires_at)
                        ),
                    )]);
                }
                req.status = ApprovalStatus::Executing;
                req.decided_by = req.approvals.last().cloned();
                req.decided_at = Some(now);
                Ok(vec![engine.entry(
                    &system,
                    EntryKind::Approval,
                    format!(
                        "{}'s preflight passed: {}. Approved already (by {}): running it.",
                        req.id,
                        c.short,
                        req.approvals.join(", ")
                    ),
                )])
            }
        }
    })?;
    if !matches!(
        r.status,
        ApprovalStatus::Pending | ApprovalStatus::Executing
    ) {
        release_ended(engine).await;
    }
    match (&result, r.status) {
        (Err(e), ApprovalStatus::Voided) => Err(CommandError::Failed(format!(
            "{e}\n{} is void: nothing was run, and nothing can run from it. Ask again with {} once the cause is fixed (or for another backup).",
            r.id, r.command
        ))),
        (Ok(_), ApprovalStatus::Pending) => Ok(awaiting(engine, &r)),
        (Ok(_), ApprovalStatus::Executing) => {
            engine.store().flush().await?;
            let reply = run_claimed(engine, ctx, inv, &r, action, progress).await?;
            Ok(Reply::done(format!(
                "{} approved by {} while its preflight ran (asked by {}); the preflight passed and it ran.\n{}",
                r.id,
                r.approvals.join(", "),
                r.requested_by,
                reply.text
            )))
        }
        _ => Err(not_pending(&r, now).unwrap_or_else(|| {
            CommandError::Failed(format!(
                "{} is {}; nothing was run.",
                r.id,
                r.status.as_str()
            ))
        })),
    }
}

/// Whether the actor is who asked for the request: the same principal (a request stored before
/// principals: the same `[people]` name).
fn is_requester(r: &ApprovalRequest, ctx: &Context) -> bool {
    if r.requested_by_id.is_empty() {
        ctx.actor.id == Principal::person(&r.requested_by)
    } else {
        r.requested_by_id == ctx.actor.id.as_str()
    }
}

/// Whether the actor has approved the request already.
fn has_approved(r: &ApprovalRequest, ctx: &Context) -> bool {
    r.approval_ids.iter().any(|id| id == ctx.actor.id.as_str())
        || (r.approval_ids.len() < r.approvals.len()
            && r.approvals
                .iter()
                .any(|n| ctx.actor.id == Principal::person(n)))
}

/// " (1 of 2 approvals)" for a request that needs more than one; nothing otherwise.
fn progress_of(r: &ApprovalRequest) -> String {
    if r.required > 1 {
        format!(" ({} of {} approvals)", r.approvals.len(), r.required)
    } else {
        String::new()
    }
}

fn parse_id(engine: &Engine, inv: &Invocation) -> Result<ApprovalRequest, CommandError> {
    let id: RequestId = required(inv, "request")?
        .parse()
        .map_err(CommandError::Usage)?;
    engine.store().approval(id)?.ok_or_else(|| {
        let pending: Vec<String> = engine
            .store()
            .approvals()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.status == ApprovalStatus::Pending)
            .map(|r| r.id.to_string())
            .collect();
        CommandError::Usage(if pending.is_empty() {
            format!("{id} does not exist, and no request is pending.")
        } else {
            format!("{id} does not exist. Pending: {}.", pending.join(", "))
        })
    })
}

/// Why a request that is not pending cannot be decided.
fn not_pending(r: &ApprovalRequest, now: DateTime<Utc>) -> Option<CommandError> {
    let by = r.decided_by.as_deref().unwrap_or("someone");
    let at = r
        .decided_at
        .map(|t| format!(" at {}", render::time(t, now)))
        .unwrap_or_default();
    let again = format!("Ask again with {}.", r.command);
    let text = match r.status {
        ApprovalStatus::Pending => return None,
        ApprovalStatus::Executing | ApprovalStatus::Executed | ApprovalStatus::Failed => format!(
            "{} was already approved by {by}{at} and has run ({}); a request runs at most once. {again}",
            r.id,
            r.status.as_str()
        ),
        ApprovalStatus::Interrupted => format!(
            "{} was running when drbot stopped; it is never run twice. Check what it changed \
             (it may have done part of its work), then ask again with {}.",
            r.id, r.command
        ),
        ApprovalStatus::Denied => format!(
            "{} was denied by {by}{at}: {}. {again}",
            r.id,
            r.reason.as_deref().unwrap_or("no reason given")
        ),
        ApprovalStatus::Expired => format!(
            "{} expired at {} without a decision. {again}",
            r.id,
            render::time(r.expires_at, now)
        ),
        ApprovalStatus::Voided => format!(
            "{} was voided: {}. {again}",
            r.id,
            r.reason
                .as_deref()
                .unwrap_or("its inputs changed")
                .trim_end_matches('.')
        ),
    };
    Some(CommandError::Refused(text))
}

/// Marks every pending request whose time is up expired (each on its timeline), so a card or a
/// status shows it without anyone having to try it first. Returns how many.
pub fn expire_due(engine: &Engine) -> Result<usize, CommandError> {
    let ctx = Context {
        actor: crate::identity::Actor::system(),
        place: crate::context::Place::Local,
    };
    let now = engine.now();
    let mut n = 0;
    for r in engine.store().approvals()? {
        if r.status == ApprovalStatus::Pending
            && r.preflight != PreflightState::Running
            && now > r.expires_at
        {
            expire_if_due(engine, &ctx, &r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Marks a pending request expired if its time is up; returns the refusal to give.
fn expire_if_due(engine: &Engine, ctx: &Context, r: &ApprovalRequest) -> Result<(), CommandError> {
    let now = engine.now();
    // A request whose preflight runs does not expire: its time starts when the preflight passes.
    if r.status != ApprovalStatus::Pending
        || r.preflight == PreflightState::Running
        || now <= r.expires_at
    {
        return Ok(());
    }
    engine.store().update_approval(r.id, |req| {
        if req.status != ApprovalStatus::Pending || req.preflight == PreflightState::Running {
            return Ok::<_, CommandError>(Vec::new());
        }
        req.status = ApprovalStatus::Expired;
        Ok(vec![engine.entry(
            ctx,
            EntryKind::Approval,
            format!(
                "{} expired (not decided within {}).",
                req.id,
                render::duration(req.expires_at - req.created_at)
            ),
        )])
    })?;
    Err(CommandError::Refused(format!(
        "{} expired at {} without a decision; nothing was run. Ask again with {}.",
        r.id,
        render::time(r.expires_at, now),
        r.command
    )))
}

/// `/approve`: checks who is approving, re-reads the inputs, then runs the action once.
pub async fn approve(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let r = parse_id(engine, inv)?;
    let now = engine.now();
    if let Some(e) = not_pending(&r, now) {
        return Err(e);
    }
    expire_if_due(engine, ctx, &r)?;
    if is_requester(&r, ctx) {
        return Err(CommandError::Refused(format!(
            "You asked for {} yourself: another person with the {APPROVER} role must approve it.",
            r.id
        )));
    }
    if !ctx.actor.has_role(APPROVER) {
        let has: Vec<&str> = ctx.actor.roles.iter().map(String::as_str).collect();
        return Err(CommandError::Refused(format!(
            "Approving needs the {APPROVER} role; {} has {}. Ask someone with it.",
            ctx.actor.name,
            if has.is_empty() {
                "none".to_string()
            } else {
                has.join(", ")
            }
        )));
    }
    let action = stored_action(&r)?;
    if digest(action.kind(), &r.inputs) != r.digest {
        return Err(CommandError::Refused(format!(
            "{}'s stored action does not match its digest; it will not run. Ask again with {}.",
            r.id, r.command
        )));
    }
    if has_approved(&r, ctx) {
        return Err(CommandError::Refused(format!(
            "You already approved {}{}: each approval must come from a different person.",
            r.id,
            progress_of(&r)
        )));
    }
    // One transition, in one transaction: an approval that is not the last is counted and the
    // request keeps waiting; the last one takes it from pending to running, once (a second
    // approval, even at the same instant, finds it taken).
    let r = engine.store().update_approval(r.id, |req| {
        if let Some(e) = not_pending(req, now) {
            return Err(e);
        }
        if has_approved(req, ctx) {
            return Err(CommandError::Refused(format!(
                "You already approved {}: each approval must come from a different person.",
                req.id
            )));
        }
        if req.approved() {
            return Err(CommandError::Refused(format!(
                "{} has all its approvals ({}); it runs the moment its preflight passes.",
                req.id,
                req.approvals.join(", ")
            )));
        }
        req.approvals.push(ctx.actor.recorded());
        req.approval_ids.push(ctx.actor.id.to_string());
        if req.approved() && req.preflight == PreflightState::Running {
            return Ok(vec![engine.entry(
                ctx,
                EntryKind::Approval,
                format!(
                    "{} approved by {}{}; it runs the moment its preflight passes.",
                    req.id,
                    ctx.actor.display(),
                    progress_of(req)
                ),
            )]);
        }
        if (req.approvals.len() as u32) < req.required {
            return Ok(vec![engine.entry(
                ctx,
                EntryKind::Approval,
                format!(
                    "{} approved by {}{}; it waits for another approver.",
                    req.id,
                    ctx.actor.display(),
                    progress_of(req)
                ),
            )]);
        }
        req.status = ApprovalStatus::Executing;
        req.decided_by = Some(ctx.actor.recorded());
        req.decided_at = Some(now);
        Ok(vec![engine.entry(
            ctx,
            EntryKind::Approval,
            format!(
                "{} approved by {}: {}. Running it.",
                req.id,
                ctx.actor.display(),
                req.summary
            ),
        )])
    })?;
    if r.status == ApprovalStatus::Pending && r.approved() {
        return Ok(Reply::done(format!(
            "{} approved by {}{}. Its preflight is still reading what it acts on: it runs the \
             moment the preflight passes (and never if it fails), with its progress on {}'s \
             request. Nothing has changed yet.",
            r.id,
            ctx.actor.name,
            progress_of(&r),
            r.requested_by
        )));
    }
    if r.status == ApprovalStatus::Pending {
        return Ok(Reply::done(format!(
            "{} approved by {}{}. It runs when another person with the {APPROVER} role \
             (not {}) approves: /approve request:{}. Nothing has changed yet.",
            r.id,
            ctx.actor.name,
            progress_of(&r),
            std::iter::once(r.requested_by.as_str())
                .chain(r.approvals.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", "),
            r.id
        )));
    }
    engine.store().flush().await?;
    let reply = run_claimed(engine, ctx, inv, &r, action, progress).await?;
    Ok(Reply::done(format!(
        "{} approved by {} (asked by {}).\n{}",
        r.id, ctx.actor.name, r.requested_by, reply.text
    )))
}

/// Runs a request this caller took to running (by the last approval, or by its preflight
/// passing after it), and settles it: done, failed, or void when its inputs changed. A panic
/// still settles it: it must never stay "running".
async fn run_claimed(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    r: &ApprovalRequest,
    action: &dyn Destructive,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let result = match std::panic::AssertUnwindSafe(execute(engine, ctx, r, action, progress))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(p) => {
            let _ = engine.step_finished(
                ctx,
                inv,
                action.spec(),
                r.inputs.get("target").map(String::as_str),
                drbot_state::StepState::Interrupted,
                Some("drbot hit an internal error while it ran".to_string()),
            );
            Err(Ran(CommandError::Failed(format!(
                "{} stopped on an internal error in drbot ({}). Check what it changed before going \
             on.",
                r.id,
                crate::render::truncate(
                    &engine.secrets().redact(&crate::render::panic_text(&*p)),
                    200
                )
            ))))
        }
    };
    let (status, reason) = match &result {
        Ok(_) => (ApprovalStatus::Executed, None),
        Err(Voided(why)) => (ApprovalStatus::Voided, Some(why.clone())),
        Err(Ran(e)) => (ApprovalStatus::Failed, Some(e.to_string())),
    };
    engine.store().update_approval(r.id, |req| {
        req.status = status;
        req.reason = reason.clone();
        let text = match status {
            ApprovalStatus::Voided => format!(
                "{} voided: {}. Nothing was run.",
                req.id,
                reason.as_deref().unwrap_or_default()
            ),
            ApprovalStatus::Executed => format!("{} done.", req.id),
            _ => format!("{} failed.", req.id),
        };
        Ok::<_, CommandError>(vec![engine.entry(ctx, EntryKind::Approval, text)])
    })?;
    if status != ApprovalStatus::Executed {
        release_ended(engine).await;
    }
    match result {
        Ok(reply) => Ok(reply),
        Err(Voided(why)) => Err(CommandError::Refused(format!(
            "{} is void: {}. Nothing was run. Ask again with {} if it is still wanted.",
            r.id,
            why.trim_end_matches('.'),
            r.command
        ))),
        Err(Ran(e)) => Err(e),
    }
}

/// How an approved action ended without success.
enum Stopped {
    /// Its inputs changed: it did not run.
    Voided(String),
    /// It ran and failed.
    Ran(CommandError),
}
use Stopped::{Ran, Voided};

/// Reads the action's inputs again; runs it only if their digest is the approved one.
async fn execute(
    engine: &Engine,
    ctx: &Context,
    r: &ApprovalRequest,
    action: &dyn Destructive,
    progress: &dyn ProgressSink,
) -> Result<Reply, Stopped> {
    let now = match action.reread(engine, &r.inputs).await {
        Ok(inputs) => inputs,
        Err(Reread::Gone(why)) => return Err(Voided(why)),
        Err(Reread::Failed(e)) => return Err(Ran(e)),
    };
    if digest(action.kind(), &now) != r.digest {
        return Err(Voided(action.changed(&r.inputs, &now)));
    }
    // The stored command, with its incident, as the parser reads it back.
    let mut line = r.command.clone();
    if let Some(i) = r.incident {
        let _ = write!(line, " incident:{i}");
    }
    let inv = scenarios::table()
        .parse(&line)
        .map_err(|e| Ran(CommandError::Failed(e.0)))?;
    action
        .run(engine, ctx, &inv, &now, progress)
        .await
        .map_err(Ran)
}

/// `/deny`: an approver (or the requester, withdrawing it) turns a request down.
pub async fn deny(engine: &Engine, ctx: &Context, inv: &Invocation) -> Result<Reply, CommandError> {
    let r = parse_id(engine, inv)?;
    let reason = required(inv, "reason")?.to_string();
    let now = engine.now();
    if let Some(e) = not_pending(&r, now) {
        return Err(e);
    }
    expire_if_due(engine, ctx, &r)?;
    let withdrawing = is_requester(&r, ctx);
    if !withdrawing && !ctx.actor.has_role(APPROVER) {
        return Err(CommandError::Refused(format!(
            "Denying needs the {APPROVER} role (or being the one who asked); {} has neither.",
            ctx.actor.name
        )));
    }
    let r = engine.store().update_approval(r.id, |req| {
        if let Some(e) = not_pending(req, now) {
            return Err(e);
        }
        req.status = ApprovalStatus::Denied;
        req.decided_by = Some(ctx.actor.recorded());
        req.decided_at = Some(now);
        req.reason = Some(reason.clone());
        let verb = if withdrawing { "withdrawn" } else { "denied" };
        Ok(vec![engine.entry(
            ctx,
            EntryKind::Approval,
            format!("{} {verb} by {}: {reason}", req.id, ctx.actor.display()),
        )])
    })?;
    let released = release_ended(engine).await;
    Ok(Reply::done(format!(
        "{} is denied ({reason}). Nothing was run; {} can ask again with {}.{}",
        r.id,
        r.requested_by,
        r.command,
        released_lines(&released)
    )))
}

/// Gives back what the preflights of ended requests left for their runs (a staged restore's
/// loaded database), each once, on the timeline. What cannot be given back now (its server is
/// down) is tried again at the next call: after each decision, at start, and on serve's tick.
/// A request whose preflight still runs is left to it. Returns a line for each one released.
pub async fn release_ended(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(all) = engine.store().approvals() else {
        return out;
    };
    for r in all {
        let ran = match r.status {
            ApprovalStatus::Voided | ApprovalStatus::Denied | ApprovalStatus::Expired => false,
            ApprovalStatus::Failed | ApprovalStatus::Interrupted => true,
            _ => continue,
        };
        if r.released || r.preflight == PreflightState::Running {
            continue;
        }
        let Ok(action) = stored_action(&r) else {
            continue;
        };
        let Some(release) = action.release(engine, &r.inputs, ran) else {
            continue;
        };
        match release.await {
            Ok(done) => {
                let ctx = Context {
                    actor: crate::identity::Actor::system(),
                    place: crate::context::Place::Local,
                };
                let line = format!("{} {done}.", r.id);
                let saved = engine.store().update_approval(r.id, |req| {
                    req.released = true;
                    Ok::<_, CommandError>(vec![engine.entry(
                        &ctx,
                        EntryKind::Approval,
                        line.clone(),
                    )])
                });
                match saved {
                    Ok(_) => out.push(line),
                    Err(e) => tracing::warn!(request = %r.id, error = %e, "released, not recorded"),
                }
            }
            Err(e) => {
                tracing::warn!(request = %r.id, error = %e, "not released yet; tried again later")
            }
        }
    }
    out
}

/// Pending requests of an incident, for `/incident status`.
pub fn pending_lines(engine: &Engine, incident: &Incident) -> Vec<String> {
    let now = engine.now();
    engine
        .store()
        .approvals()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.incident == Some(incident.id) && r.status == ApprovalStatus::Pending)
        .map(|r| {
            let left = if r.preflight == PreflightState::Running {
                "its preflight is running".to_string()
            } else if now > r.expires_at {
                "expired".to_string()
            } else {
                format!("expires in {}", render::duration(r.expires_at - now))
            };
            format!(
                "{}: {}{}, asked by {} {} ago, {left} — /approve request:{}",
                r.id,
                r.summary,
                progress_of(&r),
                r.requested_by,
                render::duration(now - r.created_at),
                r.id
            )
        })
        .collect()
}
