//! The post-incident report (SPEC §8), as markdown: summary, duration, RTO achieved per
//! component against the runbook's targets, RPO (the restored backup's age at the start of
//! the incident), every step with time, actor and duration, approvals, notifications sent,
//! the timeline, and the runbook's "Lessons Learned" headings to fill in.
//!
//! Written on `/incident resolve` to `<data_dir>/reports/<INC-n>.md` and shown in the reply.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use drbot_state::{ApprovalStatus, DeliveryStatus, EntryKind, Incident, StepState};

use crate::context::Engine;
use crate::error::CommandError;
use crate::render;
use crate::reply::Reply;
use crate::runbook::Phase;
use crate::scenario::{Objective, Verdict};

/// Text safe inside a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn stamp(at: Option<DateTime<Utc>>) -> String {
    at.map(render::minute).unwrap_or_else(|| "—".to_string())
}

/// Builds the report of an incident.
pub fn build(engine: &Engine, incident: &Incident) -> Result<String, CommandError> {
    let now = engine.now();
    let end = incident.resolved_at.unwrap_or(now);
    let duration = end - incident.declared_at;
    let scenario = engine.runbook().of(incident);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Post-incident report: {} “{}”\n",
        incident.id, incident.title
    );
    let _ = writeln!(
        md,
        "- Severity: {} · Scenario: {}{}",
        incident.severity,
        incident.scenario,
        scenario
            .map(|s| format!(" ({})", s.title()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "- Declared: {} by {} · Resolved: {}{} · Duration{}: {}",
        stamp(Some(incident.declared_at)),
        incident.declared_by,
        incident
            .resolved_at
            .map_or_else(|| "not yet".to_string(), render::minute),
        incident
            .resolved_by
            .as_ref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default(),
        if incident.resolved_at.is_some() {
            ""
        } else {
            " so far"
        },
        render::duration(duration)
    );
    let _ = writeln!(
        md,
        "- Report written {} from drbot's record of the incident ({}).",
        render::minute(now),
        incident.status.as_str()
    );
    let role = |r: &str| incident.roles.get(r).map_or("—", String::as_str);
    let _ = writeln!(
        md,
        "- Commander: {} · Comms: {} · Scribe: {}\n",
        role("commander"),
        role("comms"),
        role("scribe")
    );

    // Objectives.
    md.push_str("## Recovery objectives\n\n| objective | target | achieved | verdict |\n|---|---|---|---|\n");
    let (rows, notes) = objectives(engine, incident)?;
    for row in &rows {
        let _ = writeln!(md, "{}", row.row());
    }
    for note in notes {
        let _ = writeln!(md, "\n{note}");
    }

    // Steps.
    md.push_str("\n## Steps\n\n| # | step | state | by | at | took |\n|---|---|---|---|---|---|\n");
    for (n, s) in incident.steps.iter().enumerate() {
        let title = engine
            .runbook()
            .step(incident, &s.id)
            .map_or(s.id.as_str(), |st| st.title);
        let took = match (s.started_at, s.at, s.state) {
            (Some(a), Some(b), StepState::Done | StepState::Failed) => render::duration(b - a),
            _ => "—".to_string(),
        };
        let state = match (&s.reason, s.state) {
            (Some(r), StepState::Skipped) => format!("skipped: {}", cell(r)),
            (_, st) => st.as_str().to_string(),
        };
        // Who settled it: drbot running the step's command, or a person saying so.
        let state = if s.by_hand && s.state.is_settled() {
            format!("{state} (marked by hand)")
        } else {
            state
        };
        let _ = writeln!(
            md,
            "| {} | {title} | {state} | {} | {} | {took} |",
            n + 1,
            s.by.as_deref().unwrap_or("—"),
            stamp(s.at)
        );
    }

    // Pages: who was woken, escalations, and how long until someone had it.
    let pages = crate::paging::report_lines(engine, incident);
    if !pages.is_empty() {
        md.push_str("\n## Pages\n\n");
        for line in pages {
            let _ = writeln!(md, "- {line}");
        }
    }

    // Approvals.
    let approvals: Vec<_> = engine
        .store()
        .approvals()?
        .into_iter()
        .filter(|r| r.incident == Some(incident.id))
        .collect();
    md.push_str("\n## Approvals\n\n");
    if approvals.is_empty() {
        md.push_str("None.\n");
    } else {
        md.push_str(
            "| request | action | asked by | decided by | outcome |\n|---|---|---|---|---|\n",
        );
        for r in approvals {
            let outcome = match (r.status, &r.reason) {
                (
                    ApprovalStatus::Denied | ApprovalStatus::Voided | ApprovalStatus::Failed,
                    Some(why),
                ) => {
                    format!(
                        "{}: {}",
                        r.status.as_str(),
                        cell(&render::truncate(why, 80))
                    )
                }
                (st, _) => st.as_str().to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {outcome} |",
                r.id,
                cell(&r.command),
                r.requested_by,
                r.decided_by.as_deref().unwrap_or("—")
            );
        }
    }

    // Notifications.
    let sent: Vec<_> = engine
        .store()
        .outbox()?
        .into_iter()
        .filter(|i| i.incident == Some(incident.id))
        .collect();
    md.push_str("\n## Stakeholder notifications\n\n");
    if sent.is_empty() {
        md.push_str("None.\n");
    } else {
        md.push_str("| queued | channel | status | notice |\n|---|---|---|---|\n");
        for i in sent {
            let status = match i.status {
                DeliveryStatus::Delivered => "delivered".to_string(),
                DeliveryStatus::Pending => format!("pending (attempt {})", i.attempts),
                DeliveryStatus::Failed => {
                    format!("failed: {}", i.last_error.as_deref().unwrap_or("?"))
                }
            };
            let _ = writeln!(
                md,
                "| {} | {} | {status} | {} |",
                stamp(Some(i.created_at)),
                i.channel,
                cell(&i.summary)
            );
        }
    }

    // Timeline, without the automatic status posts.
    let _ = writeln!(
        md,
        "\n## Timeline\n\nThe chart of the steps is `{}.timeline.png`, beside this report.\n",
        incident.id
    );
    let refused = engine
        .store()
        .audit_about(incident.id)?
        .iter()
        .filter(|e| e.kind == EntryKind::Refused)
        .count();
    if refused > 0 {
        let _ = writeln!(
            md,
            "{refused} command{} typed in this incident {} refused (usage mistakes, or not \
             allowed); they are on drbot's audit log, not in this timeline.\n",
            if refused == 1 { "" } else { "s" },
            if refused == 1 { "was" } else { "were" }
        );
    }
    for e in engine.store().timeline(incident.id)? {
        if e.kind == EntryKind::Status {
            continue;
        }
        let _ = writeln!(
            md,
            "- {} — {} ({}): {}",
            e.at.format("%H:%M:%S"),
            e.actor,
            e.kind.as_str(),
            e.text
        );
    }

    md.push_str(crate::runbook::LESSONS_LEARNED);
    Ok(md)
}

/// The recovery objectives and what each scenario notes under them. An RTO is met only when
/// every step it covers is settled and its clock has stopped: the incident's RTO covers every
/// recovery step and stops at resolve; a component's (full scenario) covers that component's
/// steps and stops when the last of them settles. Until then it is "not finished", or missed
/// once the time is past its target.
pub fn objectives(
    engine: &Engine,
    incident: &Incident,
) -> Result<(Vec<Objective>, Vec<String>), CommandError> {
    let now = engine.now();
    let end = incident.resolved_at.unwrap_or(now);
    let cfg = engine.config();
    let scenario = engine.runbook().of(incident);
    let mut rows = Vec::new();
    let recovery = |s: &&drbot_state::StepRecord| {
        scenario
            .and_then(|sc| sc.step(&s.id))
            .is_some_and(|st| st.phase == Phase::Recovery)
    };
    if let Some(sc) = scenario {
        let target = sc.rto(cfg);
        let steps: Vec<_> = incident.steps.iter().filter(recovery).collect();
        rows.push(rto(
            format!("RTO ({})", sc.as_str()),
            target,
            &steps,
            incident.declared_at,
            incident.resolved_at,
            end,
        ));
    }
    // Per component, when the scenario spans several (the full scenario).
    for (group, target) in scenario.into_iter().flat_map(|s| s.timed_groups(cfg)) {
        let name = group.name;
        let steps: Vec<_> = incident.steps.iter().filter(|s| group.has(&s.id)).collect();
        let last = steps
            .iter()
            .all(|s| s.state.is_settled())
            .then(|| steps.iter().filter_map(|s| s.at).max())
            .flatten();
        rows.push(rto(
            format!("RTO ({name})"),
            target,
            &steps,
            incident.declared_at,
            last,
            end,
        ));
    }
    // Each scenario's rows (the database's RPO), then what they note below the table.
    let mut notes = Vec::new();
    for scenario in crate::scenarios::ALL {
        let section = scenario.report(engine, incident, end)?;
        rows.extend(section.objectives);
        notes.extend(section.notes);
    }
    Ok((rows, notes))
}

/// One RTO row over `steps`, whose clock stopped at `stopped` (if it has).
fn rto(
    name: String,
    target: Duration,
    steps: &[&drbot_state::StepRecord],
    declared: DateTime<Utc>,
    stopped: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
) -> Objective {
    let open = steps.iter().filter(|s| !s.state.is_settled()).count();
    let by_hand = steps
        .iter()
        .filter(|s| s.by_hand && s.state.is_settled())
        .count();
    let hand = if by_hand > 0 {
        format!(" ({by_hand} of {} steps marked by hand)", steps.len())
    } else {
        String::new()
    };
    match stopped.filter(|_| open == 0) {
        Some(at) => Objective {
            name,
            target,
            achieved: format!("{}{hand}", render::duration(at - declared)),
            verdict: Verdict::of(target, at - declared),
        },
        None => {
            let elapsed = end - declared;
            let why = if open > 0 {
                format!(
                    "not finished: {open} of {} step{} open after {}",
                    steps.len(),
                    if steps.len() == 1 { "" } else { "s" },
                    render::duration(elapsed)
                )
            } else {
                format!("clock running: {}", render::duration(elapsed))
            };
            Objective {
                name,
                target,
                achieved: why,
                verdict: Verdict::running(target, elapsed),
            }
        }
    }
}

/// Writes the report to `<data_dir>/reports/<id>.md` (owner-only); returns the path.
pub fn write(
    engine: &Engine,
    incident: &Incident,
    md: &str,
) -> Result<std::path::PathBuf, CommandError> {
    write_file(engine, incident, "md", md.as_bytes())
        .map_err(|e| CommandError::Failed(e.to_string()))
}

/// A report file that could not be written, and where.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct ReportError {
    /// The file or directory.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Writes `<data_dir>/reports/<id>.<suffix>` owner-only (`md`, `timeline.png`).
pub fn write_file(
    engine: &Engine,
    incident: &Incident,
    suffix: &str,
    data: &[u8],
) -> Result<std::path::PathBuf, ReportError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = engine.store().path().join("reports");
    let fail = |path: &std::path::Path, source| ReportError {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail(&dir, e))?;
    let path = dir.join(format!("{}.{suffix}", incident.id));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fail(&path, e))?;
    std::io::Write::write_all(&mut f, data).map_err(|e| fail(&path, e))?;
    Ok(path)
}

/// Writes the post-incident report and returns it for the reply (its path first).
pub(crate) fn with_report(engine: &Engine, incident: &Incident, reply: Reply) -> Reply {
    let built =
        build(engine, incident).and_then(|md| write(engine, incident, &md).map(|p| (p, md)));
    match built {
        Ok((path, md)) => {
            let mut reply = reply;
            reply.text.push_str(&format!(
                "\nPost-incident report: {} (attached; the Lessons Learned headings are for the post-mortem).",
                path.display()
            ));
            let mut reply = reply.with_attachment(format!("{}-report.md", incident.id), md.clone());
            reply.card = Some(report_card(engine, incident));
            let drawn = crate::chart::timeline_png(engine, incident)
                .map_err(|e| e.to_string())
                .and_then(|png| {
                    write_file(engine, incident, "timeline.png", &png)
                        .map(|p| (p, png))
                        .map_err(|e| e.to_string())
                });
            match drawn {
                Ok((chart, png)) => {
                    reply
                        .text
                        .push_str(&format!("\nTimeline chart: {}.", chart.display()));
                    let name = format!("{}-timeline.png", incident.id);
                    if let Some(card) = reply.card.as_mut() {
                        card.image = Some(name.clone());
                    }
                    reply = reply.with_file(name, png);
                }
                Err(e) => reply
                    .text
                    .push_str(&format!("\nThe timeline chart could not be drawn: {e}")),
            }
            reply
        }
        Err(e) => {
            let mut reply = reply;
            reply.text.push_str(&format!(
                "\nThe post-incident report could not be written: {e}"
            ));
            reply
        }
    }
}

/// The report at a glance: each objective's achieved value against its target (green when
/// all that were measured were met and nothing is unfinished), the duration, and the steps.
fn report_card(engine: &Engine, incident: &Incident) -> crate::reply::Card {
    use crate::reply::{Card, CardState};
    use crate::scenario::Verdict;
    let mut fields = Vec::new();
    let mut missed = false;
    let mut unfinished = false;
    let mut measured = false;
    let rows = objectives(engine, incident)
        .map(|(rows, _)| rows)
        .unwrap_or_default();
    for row in rows {
        match row.verdict {
            Verdict::Met(_) => measured = true,
            Verdict::Missed(_) => missed = true,
            Verdict::NotFinished => unfinished = true,
            Verdict::NotMeasured => {}
        }
        let target = render::duration(row.target);
        let value = match row.verdict {
            Verdict::Met(_) | Verdict::Missed(_) => {
                format!("{} of {target} — {}", row.achieved, row.verdict.text())
            }
            Verdict::NotFinished | Verdict::NotMeasured => {
                format!("{}; target {target}", row.achieved)
            }
        };
        fields.push((row.name.clone(), value));
    }
    let measured = measured && !unfinished;
    let settled = incident
        .steps
        .iter()
        .filter(|s| s.state.is_settled())
        .count();
    fields.push((
        "Steps".to_string(),
        format!("{settled} of {} done or skipped", incident.steps.len()),
    ));
    Card {
        title: format!(
            "{} “{}” — {}",
            incident.id,
            incident.title,
            incident.status.as_str()
        ),
        state: if missed {
            CardState::Bad
        } else if measured {
            CardState::Good
        } else {
            CardState::Neutral
        },
        fields,
        image: None,
    }
}
