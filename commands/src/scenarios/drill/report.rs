//! A drill's report (markdown and a chart of its steps against the RTO), `/drill report` and
//! `/drill history` (a table and a trend chart of restore time and RPO against the targets).

use std::fmt::Write as _;

use chrono::Duration;
use drbot_state::{Drill, DrillStatus, ScratchState};

use crate::chart::{Panel, bars_png, outcome_colour};
use crate::context::Engine;
use crate::render;
use crate::reply::{Card, CardState, Reply};

/// The objectives a drill of `kind` is measured against, in minutes: (RTO, RPO).
pub fn targets(engine: &Engine, kind: &str) -> (u64, Option<u64>) {
    let o = &engine.config().objectives;
    match kind {
        "storage" => (o.rto.storage, Some(o.rpo.storage)),
        "full" => (o.rto.full, Some(o.rpo.database)),
        _ => (o.rto.database, Some(o.rpo.database)),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " · ")
}

fn dur(secs: i64) -> String {
    render::duration(Duration::seconds(secs))
}

/// The drill before `drill` of the same kind that timed the application's queries.
fn previous<'a>(all: &'a [Drill], drill: &Drill) -> Option<&'a Drill> {
    all.iter()
        .filter(|d| d.id < drill.id && d.kind == drill.kind && !d.app_checks.is_empty())
        .max_by_key(|d| d.id)
}

/// The markdown report of a finished drill.
pub fn build(engine: &Engine, drill: &Drill, all: &[Drill]) -> String {
    let mut md = String::new();
    let end = drill.finished_at.unwrap_or_else(|| engine.now());
    let _ = writeln!(
        md,
        "# Fire drill {}: {} — {}\n",
        drill.id,
        drill.kind,
        drill.status.as_str()
    );
    let _ = writeln!(
        md,
        "- Started {} by {}{} · took {}",
        render::minute(drill.started_at),
        drill.started_by,
        if drill.scheduled {
            " (on the schedule)"
        } else {
            ""
        },
        render::span(end - drill.started_at)
    );
    for r in drill.restored.iter().chain(&drill.storage_restored) {
        let _ = writeln!(md, "- Restored from: {r}");
    }
    if let Some(why) = &drill.reason {
        let _ = writeln!(md, "- {}: {}", drill.status.as_str(), cell(why));
    }
    let (rto, rpo) = targets(engine, &drill.kind);
    md.push_str("\n## Recovery objectives\n\n| objective | target | achieved | verdict |\n|---|---|---|---|\n");
    let rto_t = Duration::minutes(rto as i64);
    match drill.rto_ms {
        Some(ms) => {
            let _ = writeln!(
                md,
                "| RTO ({}) | {} | {} | {} |",
                drill.kind,
                render::duration(rto_t),
                render::span(Duration::milliseconds(ms)),
                render::verdict(rto_t, Duration::milliseconds(ms))
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| RTO ({}) | {} | not reached (never verified usable) | — |",
                drill.kind,
                render::duration(rto_t)
            );
        }
    }
    let of = if drill.kind == "storage" {
        "storage"
    } else {
        "database"
    };
    let mut rpos = vec![(of, rpo, drill.rpo_secs)];
    if drill.kind == "full" {
        rpos.push((
            "storage",
            Some(engine.config().objectives.rpo.storage),
            drill.storage_rpo_secs,
        ));
    }
    for (of, rpo, achieved) in rpos {
        let Some(rpo) = rpo else { continue };
        let t = Duration::minutes(rpo as i64);
        match achieved {
            Some(s) => {
                let _ = writeln!(
                    md,
                    "| RPO ({of}) | {} | {} | {} |",
                    render::duration(t),
                    dur(s),
                    render::verdict(t, Duration::seconds(s))
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| RPO ({of}) | {} | not measured (nothing was restored) | — |",
                    render::duration(t)
                );
            }
        }
    }
    md.push_str(
        "\n## Steps\n\n| # | step | took | result | what it found |\n|---|---|---|---|---|\n",
    );
    for (i, s) in drill.steps.iter().enumerate() {
        let took = s
            .finished_at
            .map(|f| render::span(f - s.started_at))
            .unwrap_or_else(|| "—".to_string());
        let result = match s.ok {
            Some(true) => "passed",
            Some(false) => "FAILED",
            None if s.finished_at.is_some() => "not checked",
            None => "did not finish",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {took} | {result} | {} |",
            i + 1,
            cell(&s.name),
            cell(&render::truncate(&s.detail, 600))
        );
    }
    if !drill.app_checks.is_empty() {
        let before = previous(all, drill);
        md.push_str("\n## Application queries\n\n| query | result | time | previous drill |\n|---|---|---|---|\n");
        for (q, ms, result) in &drill.app_checks {
            let prev = before
                .and_then(|b| b.app_checks.iter().find(|(pq, _, _)| pq == q))
                .map(|(_, pms, _)| {
                    let ratio = if *pms > 0 {
                        format!(" ({:.1}×)", *ms as f64 / *pms as f64)
                    } else {
                        String::new()
                    };
                    format!(
                        "{pms} ms in {}{ratio}",
                        before.map(|b| b.id.to_string()).unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "—".to_string());
            let _ = writeln!(
                md,
                "| `{}` | {} | {ms} ms | {prev} |",
                cell(q),
                cell(result)
            );
        }
    }
    if !drill.scratch.is_empty() {
        md.push_str("\n## Scratch resources\n\n");
        for s in &drill.scratch {
            let state = match s.state {
                ScratchState::Planned => "recorded, creation not confirmed",
                ScratchState::Created => "created, NOT dropped",
                ScratchState::Dropped => "dropped",
                ScratchState::Kept => "kept on request",
                ScratchState::NotCreated => "never created",
            };
            let _ = writeln!(md, "- {} `{}`: {state}", s.kind, s.name);
        }
    }
    if drill.kind == "full" {
        md.push_str("\n## Documentation review (for the humans)\n\n- [ ] Does RUNBOOK.md still match what was done?\n- [ ] Are contacts, access and secrets lists current?\n- [ ] Were any steps unclear or slow? File them.\n");
    }
    md.push_str(crate::runbook::LESSONS_LEARNED);
    md
}

/// The chart of a drill's steps against its RTO.
pub fn steps_png(engine: &Engine, drill: &Drill) -> Option<Vec<u8>> {
    let (rto, _) = targets(engine, &drill.kind);
    let rows = drill
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let took = s
                .finished_at
                .map(|f| (f - s.started_at).num_seconds())
                .unwrap_or(0);
            (
                format!("{}. {}", i + 1, s.name),
                Some(took),
                outcome_colour(s.ok),
            )
        })
        .collect();
    bars_png(
        &format!(
            "{} {} drill - {} - steps against the RTO",
            drill.id,
            drill.kind,
            drill.status.as_str()
        ),
        &[Panel {
            name: "Step durations".to_string(),
            target: Some(rto as i64 * 60),
            rows,
        }],
    )
    .ok()
}

/// How many drills of a kind a report's trend chart shows.
const TREND: usize = 12;

/// The reply with a drill's report: the text, the markdown attached, a card (its verdicts
/// marked, RTO and RPO against the targets, the trend chart of this kind of drill as its
/// image) and the chart of its steps against the RTO.
pub fn reply(engine: &Engine, drill: &Drill, head: String) -> Reply {
    let mut reply = match drill.status {
        DrillStatus::Passed => Reply::done(head),
        _ => Reply::new(crate::reply::Outcome::Failed, head),
    };
    let md = drill.report.clone();
    reply = reply.with_attachment(format!("{}-report.md", drill.id), md.clone());
    let mut fields: Vec<(String, String)> = md
        .lines()
        .filter(|l| l.starts_with("| RTO") || l.starts_with("| RPO"))
        .filter_map(|l| {
            let c: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            match c.as_slice() {
                [name, target, achieved, verdict] => {
                    let mark = if verdict.starts_with("met") {
                        "🟢"
                    } else {
                        "🔴"
                    };
                    Some((
                        name.to_string(),
                        format!("{mark} {achieved} of {target} — {verdict}"),
                    ))
                }
                _ => None,
            }
        })
        .collect();
    let passed = drill.steps.iter().filter(|s| s.ok == Some(true)).count();
    let failed = drill.steps.iter().filter(|s| s.ok == Some(false)).count();
    fields.push((
        "Steps".to_string(),
        format!(
            "{} {passed} of {} passed{}",
            if failed == 0 { "🟢" } else { "🔴" },
            drill.steps.len(),
            match failed {
                0 => String::new(),
                n => format!(", {n} failed"),
            }
        ),
    ));
    if let Some(why) = &drill.reason {
        fields.push(("Why".to_string(), why.clone()));
    }
    let missed = fields.iter().any(|(_, v)| v.starts_with("🔴"));
    let mut card = Card {
        title: format!(
            "{} — {} drill {}",
            drill.id,
            drill.kind,
            drill.status.as_str()
        ),
        state: if drill.status == DrillStatus::Passed && !missed {
            CardState::Good
        } else {
            CardState::Bad
        },
        fields,
        image: None,
    };
    // The trend of this kind of drill, this one last, as the card's image.
    let all = engine.store().drills().unwrap_or_default();
    let mut same: Vec<&Drill> = all
        .iter()
        .filter(|d| d.kind == drill.kind && d.id <= drill.id && d.finished_at.is_some())
        .collect();
    if !same.iter().any(|d| d.id == drill.id) {
        same.push(drill);
    }
    let from = same.len().saturating_sub(TREND);
    if let Some(png) = trend_png(engine, &same[from..]) {
        let name = format!("{}-trend.png", drill.id);
        card.image = Some(name.clone());
        reply = reply.with_file(name, png);
    }
    if let Some(png) = steps_png(engine, drill) {
        reply = reply.with_file(format!("{}-steps.png", drill.id), png);
    }
    reply.card = Some(card);
    reply
}

/// The trend chart of `oldest_first`: time to verified usable and RPO per drill, each bar
/// green within its own drill's target and red when not, against the targets.
pub fn trend_png(engine: &Engine, oldest_first: &[&Drill]) -> Option<Vec<u8>> {
    let label = |d: &Drill| format!("{} {} {}", d.id, d.kind, d.started_at.format("%Y-%m-%d"));
    // Each bar is green when within its own drill's target, red when not (or not reached).
    let within = |secs: Option<i64>, mins: Option<u64>| {
        outcome_colour(Some(
            secs.zip(mins).is_some_and(|(s, m)| s <= m as i64 * 60),
        ))
    };
    let rto_rows = oldest_first
        .iter()
        .map(|d| {
            let secs = d.rto_ms.map(|ms| ms / 1000);
            (
                label(d),
                secs,
                within(secs, Some(targets(engine, &d.kind).0)),
            )
        })
        .collect();
    let rpo_rows = oldest_first
        .iter()
        .filter_map(|d| {
            d.rpo_secs.map(|s| {
                (
                    label(d),
                    Some(s),
                    within(Some(s), targets(engine, &d.kind).1),
                )
            })
        })
        .collect();
    let kinds: std::collections::BTreeSet<&str> =
        oldest_first.iter().map(|d| d.kind.as_str()).collect();
    // One target line per panel: the database's unless every drill shown is of one kind.
    let kind = if kinds.len() == 1 {
        kinds.iter().next().copied().unwrap_or("database")
    } else {
        "database"
    };
    let (rto, rpo) = targets(engine, kind);
    bars_png(
        "drbot fire drills - restore time and RPO against the targets",
        &[
            Panel {
                name: format!("Time to verified usable (target: {kind} RTO)"),
                target: Some(rto as i64 * 60),
                rows: rto_rows,
            },
            Panel {
                name: format!("RPO: the restored backup's age (target: {kind} RPO)"),
                target: rpo.map(|m| m as i64 * 60),
                rows: rpo_rows,
            },
        ],
    )
    .ok()
}

/// `/drill history`: the drills newest first and the trend chart.
pub fn history(engine: &Engine, all: &[Drill], limit: usize) -> Reply {
    if all.is_empty() {
        return Reply::done(
            "No drill has run yet. Start one with /drill start kind:database (or storage, full); [drills] schedule runs them on their own under drbot serve.",
        );
    }
    let shown: Vec<&Drill> = all.iter().rev().take(limit).collect();
    let mut text = format!("Drills, newest first ({} of {}):\n", shown.len(), all.len());
    for d in &shown {
        let (rto, rpo) = targets(engine, &d.kind);
        let _ = writeln!(
            text,
            "  {} {:<8} {:<11} {}  RTO {} (target {}){}{}",
            d.id,
            d.kind,
            d.status.as_str(),
            render::minute(d.started_at),
            d.rto_ms
                .map(|ms| render::span(Duration::milliseconds(ms)))
                .unwrap_or_else(|| "—".to_string()),
            render::duration(Duration::minutes(rto as i64)),
            match (d.rpo_secs, rpo) {
                (Some(s), Some(t)) => format!(
                    ", RPO {} (target {})",
                    dur(s),
                    render::duration(Duration::minutes(t as i64))
                ),
                _ => String::new(),
            },
            if d.scheduled { ", scheduled" } else { "" }
        );
    }
    let last_ok = all.iter().rev().find(|d| d.status == DrillStatus::Passed);
    let _ = write!(
        text,
        "{}\nNext: /drill report drill:{} for one drill's report.",
        match last_ok {
            Some(d) => format!(
                "Last passing drill: {} ({}, {}).",
                d.id,
                d.kind,
                render::time(d.started_at, engine.now())
            ),
            None => "No drill has passed yet.".to_string(),
        },
        shown[0].id
    );
    let mut reply = Reply::done(text);
    let oldest_first: Vec<&Drill> = shown.iter().rev().copied().collect();
    let png = trend_png(engine, &oldest_first);
    if let Some(png) = png {
        let name = "drill-history.png".to_string();
        reply.card = Some(Card {
            title: "Fire drills".to_string(),
            state: if shown[0].status == DrillStatus::Passed {
                CardState::Good
            } else {
                CardState::Bad
            },
            fields: vec![(
                "Drills".to_string(),
                format!(
                    "{} passed, {} failed or interrupted",
                    all.iter()
                        .filter(|d| d.status == DrillStatus::Passed)
                        .count(),
                    all.iter()
                        .filter(|d| matches!(
                            d.status,
                            DrillStatus::Failed | DrillStatus::Interrupted
                        ))
                        .count()
                ),
            )],
            image: Some(name.clone()),
        });
        reply = reply.with_file(name, png);
    }
    reply
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use drbot_state::{DrillId, DrillStep, Scratch};

    use super::*;

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().expect("test setup");
        let store = drbot_state::Store::open(dir.path()).expect("test setup");
        let clock = Arc::new(crate::ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
                .single()
                .expect("test setup"),
        ));
        (
            dir,
            Engine::new(Arc::new(crate::Config::default()), store, clock),
        )
    }

    use chrono::Utc;

    fn drill(id: u64, ms: u64, status: DrillStatus) -> Drill {
        let at = Utc
            .with_ymd_and_hms(2026, 11, id as u32, 3, 0, 0)
            .single()
            .expect("test setup");
        Drill {
            id: DrillId(id),
            kind: "database".to_string(),
            started_by: "alice".to_string(),
            place: "console".to_string(),
            scheduled: id == 2,
            started_at: at,
            finished_at: Some(at + Duration::minutes(50)),
            status,
            reason: (status == DrillStatus::Failed).then(|| "the restore failed".to_string()),
            steps: vec![DrillStep {
                name: "Restore the latest backup".to_string(),
                started_at: at,
                finished_at: Some(at + Duration::minutes(45)),
                ok: Some(status == DrillStatus::Passed),
                detail: "a | pipe\nand a newline".to_string(),
            }],
            scratch: vec![Scratch {
                kind: "database".to_string(),
                name: format!("drbot_drill_{id}_x"),
                state: drbot_state::ScratchState::Dropped,
            }],
            restored: Some("db/2026-11-01T02-00-00Z.sql.xz.age".to_string()),
            rto_ms: (status == DrillStatus::Passed).then_some(50 * 60 * 1000),
            rpo_secs: Some(3600),
            storage_restored: None,
            storage_rpo_secs: None,
            app_checks: vec![("SELECT 1".to_string(), ms, "1".to_string())],
            report: String::new(),
        }
    }

    #[test]
    fn a_report_measures_against_the_targets_and_compares_with_the_previous_drill() {
        let (_d, engine) = engine();
        let all = vec![
            drill(1, 40, DrillStatus::Passed),
            drill(2, 80, DrillStatus::Passed),
        ];
        let md = build(&engine, &all[1], &all);
        assert!(
            md.contains("# Fire drill DRILL-2: database — passed"),
            "{md}"
        );
        assert!(md.contains("(on the schedule)"), "{md}");
        assert!(
            md.contains("| RTO (database) | 2h00m | 50m | met, 1h10m to spare |"),
            "{md}"
        );
        assert!(
            md.contains("| RPO (database) | 30m | 1h00m | missed by 30m |"),
            "{md}"
        );
        // The application query is twice as slow as in DRILL-1.
        assert!(
            md.contains("| `SELECT 1` | 1 | 80 ms | 40 ms in DRILL-1 (2.0×) |"),
            "{md}"
        );
        // Table cells stay one row whatever the findings hold.
        assert!(md.contains("a \\| pipe · and a newline"), "{md}");
        assert!(md.contains("### Root cause analysis"), "{md}");
        // The first drill has nothing to compare with.
        let first = build(&engine, &all[0], &all);
        assert!(first.contains("| 40 ms | — |"), "{first}");
    }

    #[test]
    fn a_failed_drill_has_no_rto_and_the_history_shows_the_trend() {
        let (_d, engine) = engine();
        let all = vec![
            drill(1, 40, DrillStatus::Passed),
            drill(3, 40, DrillStatus::Failed),
        ];
        let md = build(&engine, &all[1], &all);
        assert!(md.contains("not reached (never verified usable)"), "{md}");
        assert!(md.contains("- failed: the restore failed"), "{md}");
        let r = history(&engine, &all, 20);
        assert!(r.text.contains("DRILL-3 database failed"), "{}", r.text);
        assert!(r.text.contains("Last passing drill: DRILL-1"), "{}", r.text);
        let png = &r
            .attachments
            .iter()
            .find(|a| a.name == "drill-history.png")
            .expect("chart")
            .data;
        assert_eq!(&png[1..4], b"PNG");
        let card = r.card.expect("card");
        assert_eq!(card.state, CardState::Bad);
        assert_eq!(card.image.as_deref(), Some("drill-history.png"));
        // Limited to the newest.
        let r = history(&engine, &all, 1);
        assert!(!r.text.contains("DRILL-1 database"), "{}", r.text);
    }
}
