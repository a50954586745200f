//! The way a command travels: a typed line is parsed, dispatched to the module that owns its
//! command, guarded against panics, flushed to disk before the reply says done, its queued
//! notices sent, and its reply stripped of secrets. Failures are recorded on the incident's
//! timeline; refusals on the audit log, marked with the incident they were typed in.
//!
//! It knows the lifecycle's, the gate's and notification's handlers by name; every other
//! command goes to the scenario that owns it (`scenarios::owner`). A lifecycle change a
//! command reports (declared, resolved, closed, report asked) is followed up here: notices,
//! pages and the post-incident report, none of which the incident commands know. Everything
//! it calls sits below it.

use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::progress::{NoProgress, ProgressSink};
use crate::reply::{Lifecycle, Outcome, Reply};
use crate::{approval, incident, notify, scenarios, step};
use drbot_state::EntryKind;

/// How long a reply waits for the notifications its command queued.
const INLINE_DELIVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Commands that only read: a refusal of one needs no "nothing was changed".
fn is_view(inv: &Invocation) -> bool {
    matches!(
        (inv.spec.group, inv.spec.sub),
        ("incident", Some("status" | "timeline" | "list")) | ("step", Some("list"))
    )
}

impl Engine {
    /// Runs one command line and answers it. Never panics on any input.
    pub async fn run(&self, ctx: &Context, line: &str) -> Reply {
        self.run_with(ctx, line, &NoProgress).await
    }

    /// Runs one command line, reporting progress of long work to `progress`.
    pub async fn run_with(&self, ctx: &Context, line: &str, progress: &dyn ProgressSink) -> Reply {
        let mut reply = self.answer(ctx, line, progress).await;
        // Whatever a remote service echoed into the reply, no configured secret leaves.
        reply.text = self.secrets.redact(&reply.text);
        for a in &mut reply.attachments {
            if a.data.is_empty() {
                a.text = self.secrets.redact(&a.text);
            }
        }
        reply
    }

    async fn answer(&self, ctx: &Context, line: &str, progress: &dyn ProgressSink) -> Reply {
        let parsed = scenarios::table().parse(line);
        let result = match &parsed {
            Ok(inv) => self.dispatch_guarded(ctx, inv, progress).await,
            Err(e) => Err(CommandError::from(e.clone())),
        };
        match result {
            Ok(reply) => match self.store.flush().await {
                Ok(()) => {
                    // Notifications a command queued (declare, resolve) go out now, for as long
                    // as a reply may wait; the rest stay queued (same idempotency keys) for the
                    // next delivery round.
                    match tokio::time::timeout(INLINE_DELIVERY, self.deliver_due()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "delivering notifications failed"),
                        Err(_) => tracing::warn!(
                            "notification services are slow; delivery goes on in the background"
                        ),
                    }
                    reply
                }
                Err(e) => Reply::new(
                    Outcome::Failed,
                    format!(
                        "The change could not be written to disk ({e}); treat it as not done and retry."
                    ),
                ),
            },
            Err(err) => {
                let mut text = err.to_string();
                let view = parsed.as_ref().is_ok_and(is_view);
                if !view && !matches!(err, CommandError::Failed(_) | CommandError::State(_)) {
                    text.push_str("\nNothing was changed.");
                }
                self.record_refusal(ctx, parsed.as_ref().ok(), line, &err)
                    .await;
                Reply::new(err.outcome(), text)
            }
        }
    }

    /// Dispatches, catching a panic anywhere in the command: it becomes a failed command on
    /// the record, the command's running step is marked interrupted, and the process (a
    /// `serve` answering everyone) goes on.
    async fn dispatch_guarded(
        &self,
        ctx: &Context,
        inv: &Invocation,
        progress: &dyn ProgressSink,
    ) -> Result<Reply, CommandError> {
        use futures_util::FutureExt;
        let answered = async {
            let reply = self.dispatch(ctx, inv, progress).await?;
            Ok(self.follow_up(ctx, reply))
        };
        let caught = std::panic::AssertUnwindSafe(answered).catch_unwind().await;
        let panic = match caught {
            Ok(result) => return result,
            Err(p) => crate::render::panic_text(&*p),
        };
        let path = inv.spec.path();
        tracing::error!(command = %path, panic = %self.secrets.redact(&panic), "a command panicked");
        let interrupted = self.step_finished(
            ctx,
            inv,
            inv.spec,
            inv.get("target"),
            drbot_state::StepState::Interrupted,
            Some("drbot hit an internal error while it ran".to_string()),
        );
        let step = match interrupted {
            Ok(()) => "",
            Err(_) => " Its runbook step could not be marked interrupted.",
        };
        Err(CommandError::Failed(format!(
            "{path} stopped on an internal error in drbot ({}). What it recorded before the error \
             is kept; check /incident status before retrying. drbot is still running.{step}",
            crate::render::truncate(&self.secrets.redact(&panic), 200)
        )))
    }

    async fn dispatch(
        &self,
        ctx: &Context,
        inv: &Invocation,
        progress: &dyn ProgressSink,
    ) -> Result<Reply, CommandError> {
        // A dry run changes nothing: it is answered by its scenario, with no approval.
        let dry_run = inv.get("dry_run") == Some("true");
        if inv.spec.destructive && !dry_run {
            // The one gate: a destructive command only ever becomes an approval request.
            return approval::request(self, ctx, inv, progress).await;
        }
        match (inv.spec.group, inv.spec.sub) {
            ("approve", None) => approval::approve(self, ctx, inv, progress).await,
            ("deny", None) => approval::deny(self, ctx, inv).await,
            ("incident", Some("declare")) => {
                let _guard = self.declare_lock.lock().await;
                incident::declare(self, ctx, inv)
            }
            ("incident", Some("status")) => incident::status(self, ctx, inv),
            ("incident", Some("timeline")) => incident::timeline(self, ctx, inv),
            ("incident", Some("note")) => incident::note(self, ctx, inv),
            ("incident", Some("role")) => incident::role(self, ctx, inv),
            ("incident", Some("resolve")) => incident::resolve(self, ctx, inv),
            ("incident", Some("close")) => incident::close(self, ctx, inv),
            ("step", Some("list")) => step::list(self, ctx, inv),
            ("step", Some("done")) => step::done(self, ctx, inv),
            ("step", Some("skip")) => step::skip(self, ctx, inv),
            ("step", Some("undo")) => step::undo(self, ctx, inv),
            ("incident", Some("list")) => incident::list(self),
            ("incident", Some("reopen")) => incident::reopen(self, ctx, inv),
            ("incident", Some("report")) => incident::report(self, ctx, inv),
            ("incident", Some("edit")) => incident::edit(self, ctx, inv),
            ("notify", Some("stakeholders")) => notify::stakeholders(self, ctx, inv).await,
            ("contacts", None) => crate::paging::contacts(self, ctx, inv),
            // What they queue goes out with the reply, as every command's notifications.
            ("page", None) => crate::paging::page(self, ctx, inv),
            ("ack", None) => crate::paging::ack(self, ctx, inv),
            _ => match scenarios::owner(inv.spec) {
                Some(scenario) => scenario.run(self, ctx, inv, progress).await,
                None => Err(crate::scenario::not_built(inv)),
            },
        }
    }

    /// What a lifecycle change calls for once its command has done it: the stakeholder
    /// notices and pages it queues (said in the reply), and the post-incident report (attached).
    /// A failure here never undoes the change; the reply says what did not happen.
    fn follow_up(&self, ctx: &Context, mut reply: Reply) -> Reply {
        let Some(change) = reply.lifecycle.take() else {
            return reply;
        };
        let incident = match self.store.incident(change.incident()) {
            Ok(Some(i)) => i,
            Ok(None) => return reply,
            Err(e) => {
                reply.text.push_str(&format!(
                    "\nIts notices and report could not be read back: {e}"
                ));
                return reply;
            }
        };
        match change {
            Lifecycle::Declared(_) => {
                reply.text.push_str(&notify::notify_on(
                    self,
                    ctx,
                    &incident,
                    &notify::NoticeKind::Declared,
                ));
                reply
                    .text
                    .push_str(&crate::paging::on_declare(self, ctx, &incident));
                reply
            }
            Lifecycle::Resolved(_) => {
                reply.text.push_str(&notify::notify_on(
                    self,
                    ctx,
                    &incident,
                    &notify::NoticeKind::Resolved,
                ));
                crate::paging::on_resolve(self, ctx, &incident);
                crate::report::with_report(self, &incident, reply)
            }
            Lifecycle::Closed(_) => {
                crate::paging::on_resolve(self, ctx, &incident);
                crate::report::with_report(self, &incident, reply)
            }
            Lifecycle::Reported(_) => crate::report::with_report(self, &incident, reply),
        }
    }

    /// Records a refused or failed command where people will look for it. A refusal (a
    /// usage mistake, something not allowed) goes to the audit log, marked with the incident
    /// it was typed in so the report can count it; a failure of a system is part of the
    /// incident's story and goes on its timeline. A drill's commands never touch an incident.
    async fn record_refusal(
        &self,
        ctx: &Context,
        inv: Option<&Invocation>,
        line: &str,
        err: &CommandError,
    ) {
        // Parsed or not (a typo in its options), a drill's command line is no incident's.
        let drill = match inv {
            Some(i) => i.spec.group == "drill",
            None => line
                .trim_start()
                .strip_prefix("/drill")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace)),
        };
        // A refused decision concerns its request's incident; otherwise the command's.
        let request_incident = inv
            .filter(|i| matches!(i.spec.group, "approve" | "deny"))
            .and_then(|i| i.get("request"))
            .and_then(|raw| raw.parse::<drbot_state::RequestId>().ok())
            .and_then(|id| self.store.approval(id).ok().flatten())
            .and_then(|r| r.incident)
            .filter(|id| matches!(self.store.incident(*id), Ok(Some(i)) if i.is_active()));
        let target = request_incident
            .or_else(|| self.incident_for(ctx, inv))
            .filter(|_| !drill);
        let shown = crate::render::truncate(line.trim(), 200);
        let first_line = err
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let failed = matches!(err, CommandError::Failed(_) | CommandError::State(_));
        let (kind, verdict) = if failed {
            (EntryKind::Command, "failed: ")
        } else {
            (EntryKind::Refused, "")
        };
        let entry = self.entry(
            ctx,
            kind,
            format!(
                "{shown} — {verdict}{}",
                crate::render::truncate(&first_line, 300)
            ),
        );
        let written = match target {
            Some(id) if failed => self.store.append_timeline(id, entry).map(|_| ()),
            _ => self.store.append_audit_about(target, entry).map(|_| ()),
        };
        let flushed = match written {
            Ok(()) => self.store.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = flushed {
            tracing::error!(error = %e, "could not record a refused command");
        }
    }
}
