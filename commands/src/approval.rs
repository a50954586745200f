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
use drbot_state::{ApprovalRequest, ApprovalStatus, EntryKind, Incident, RequestId};
use sha2::{Digest, Sha256};

use crate::engine::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{INCIDENT_OPTION, Invocation};
use crate::identity::Principal;
use crate::options::required;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::{Outcome, Reply};
use crate::scenario::{Destructive, Inputs, Reread};
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
    // The engine records a failed preflight on the timeline, as every failure.
    let prepared = action.prepare(engine, inv, progress).await?;
    let (summary, details, facts) = (prepared.summary, prepared.details, prepared.facts);
    let incident = engine.incident_for(ctx, Some(inv));
    let now = engine.now();
    let ttl = Duration::seconds(engine.config().approvals.ttl_secs as i64);
    let digest = digest(action.kind(), &prepared.inputs);
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
    let inputs = prepared.inputs;
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
        };
        let entry = engine.entry(
            ctx,
            EntryKind::Approval,
            format!(
                "{id} requested by {}: {summary}. Digest {}. Expires {}.",
                ctx.actor.display(),
                &digest[..12],
                render::stamp(now + ttl)
            ),
        );
        Ok::<_, CommandError>((req, vec![entry]))
    })?;
    let id = request.id;
    let who = if needed > 1 {
        format!("{needed} other people with the {APPROVER} role, one after the other, run")
    } else {
        format!("Another person with the {APPROVER} role runs")
    };
    let text = format!(
        "Approval needed: {summary}, requested by {}.\n{details}\napproval request {id}{}\n\
         It expires at {} (in {}). {who} /approve request:{id} \
         (or /deny request:{id} reason:…). Nothing has changed yet.",
        ctx.actor.name,
        progress_of(&request),
        render::time(request.expires_at, now),
        render::duration(ttl)
    );
    Ok(Reply::new(Outcome::AwaitingApproval(id.to_string()), text))
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
            r.reason.as_deref().unwrap_or("its inputs changed")
        ),
    };
    Some(CommandError::Refused(text))
}

/// Marks every pending request whose time is up expired (each on its timeline), so a card or a
/// status shows it without anyone having to try it first. Returns how many.
pub fn expire_due(engine: &Engine) -> Result<usize, CommandError> {
    let ctx = Context {
        actor: crate::identity::Actor::system(),
        place: crate::engine::Place::Local,
    };
    let now = engine.now();
    let mut n = 0;
    for r in engine.store().approvals()? {
        if r.status == ApprovalStatus::Pending && now > r.expires_at {
            expire_if_due(engine, &ctx, &r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Marks a pending request expired if its time is up; returns the refusal to give.
fn expire_if_due(engine: &Engine, ctx: &Context, r: &ApprovalRequest) -> Result<(), CommandError> {
    let now = engine.now();
    if r.status != ApprovalStatus::Pending || now <= r.expires_at {
        return Ok(());
    }
    engine.store().update_approval(r.id, |req| {
        if req.status != ApprovalStatus::Pending {
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
        req.approvals.push(ctx.actor.recorded());
        req.approval_ids.push(ctx.actor.id.to_string());
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

    // A panic while it runs still settles the request: it must not stay "running" forever.
    let result = match std::panic::AssertUnwindSafe(execute(engine, ctx, &r, action, progress))
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
    match result {
        Ok(reply) => Ok(Reply::done(format!(
            "{} approved by {} (asked by {}).\n{}",
            r.id, ctx.actor.name, r.requested_by, reply.text
        ))),
        Err(Voided(why)) => Err(CommandError::Refused(format!(
            "{} is void: {why}. Nothing was run. Ask again with {} if it is still wanted.",
            r.id, r.command
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
    Ok(Reply::done(format!(
        "{} is denied ({reason}). Nothing was run; {} can ask again with {}.",
        r.id, r.requested_by, r.command
    )))
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
            let left = if now > r.expires_at {
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
