//! The storage scenario's background work while serving: the storage RPO (the newest
//! snapshot's age against the target, posted once when breached and once when recovered), and
//! a snapshot every `[storage.snapshots] every_mins`.

use chrono::Duration;
use drbot_state::EntryKind;

use super::commands::{rpo_line, taken_text};
use super::manifest;
use super::media::Buckets;
use super::snapshot;
use crate::context::Engine;
use crate::error::CommandError;
use crate::progress::NoProgress;
use crate::scenario::{Post, PostKind, post_to_open_incidents};

/// The name scheduled snapshots are recorded under.
const SCHEDULED: &str = "storage-snapshot";

/// The storage RPO watch.
pub(super) async fn rpo(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Ok(b) = Buckets::of(engine) else {
        return Ok(Vec::new());
    };
    let list = match manifest::list(&b.backup, &b.snapshots.prefix).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "storage RPO watch could not list snapshots");
            return Ok(Vec::new());
        }
    };
    let (ok, line) = rpo_line(engine, list.first(), b.media.name());
    let breached = !ok;
    if breached == engine.store().rpo_breached_of("storage")? {
        return Ok(Vec::new());
    }
    engine.store().set_rpo_breached_of("storage", breached)?;
    let (kind, text) = if breached {
        (
            PostKind::RpoBreached,
            format!("Storage RPO breached: {line}"),
        )
    } else {
        (
            PostKind::RpoRecovered,
            format!("Storage RPO recovered: {line}"),
        )
    };
    post_to_open_incidents(engine, kind, text)
}

/// A snapshot when one is due: the newest is older than `every_mins` and none was tried
/// within it. A failure is posted; the next try is `every_mins` later.
pub(super) async fn scheduled(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Ok(b) = Buckets::of(engine) else {
        return Ok(Vec::new());
    };
    if b.snapshots.every_mins == 0 {
        return Ok(Vec::new());
    }
    let every = Duration::minutes(b.snapshots.every_mins as i64);
    let now = engine.now();
    if engine
        .store()
        .last_run(SCHEDULED)?
        .is_some_and(|t| now - t < every)
    {
        return Ok(Vec::new());
    }
    let newest = match manifest::list(&b.backup, &b.snapshots.prefix).await {
        Ok(l) => l.first().map(|s| s.at),
        Err(e) => {
            tracing::warn!(error = %e, "scheduled snapshot could not list snapshots");
            return Ok(Vec::new());
        }
    };
    if newest.is_some_and(|t| now - t < every) {
        return Ok(Vec::new());
    }
    engine.store().set_last_run(SCHEDULED, now)?;
    let media = b.media.name().to_string();
    let Ok(_guard) = engine.restores().take(
        &super::action::lock_name(&media),
        "the scheduled snapshot".to_string(),
    ) else {
        return Ok(Vec::new());
    };
    match snapshot::take(&b, now, &NoProgress).await {
        Ok(t) => {
            let text = taken_text(&b, &t);
            let first = text.lines().next().unwrap_or_default().to_string();
            engine.store().append_audit(
                engine.system_entry(EntryKind::Status, &format!("Scheduled: {first}")),
            )?;
            tracing::info!("{first}");
            Ok(Vec::new())
        }
        Err(e) => {
            let text = format!(
                "The scheduled snapshot of {media} failed: {e} The next try is in {} min; /storage snapshot tries now.",
                b.snapshots.every_mins
            );
            post_to_open_incidents(engine, PostKind::Status, text)
        }
    }
}
