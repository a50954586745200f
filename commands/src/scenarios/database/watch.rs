//! The database scenario's background work while serving: the RPO (the newest *good* backup's
//! age against the target — verified, with `verify_after_upload`), posted once when breached
//! and once when recovered; and a backup of the production target every `[backup] every_mins`,
//! a failure said once and its recovery once.

use chrono::Duration;

use crate::context::Engine;
use crate::error::CommandError;
use crate::progress::NoProgress;
use crate::render;
use crate::scenario::{Post, PostKind, announce_scheduled, post_to_open_incidents};

/// The name scheduled backups are recorded under.
const SCHEDULED: &str = "db-backup";
/// The flag set while scheduled backups fail (said once, and once when they recover).
const FAILING: &str = "db-backup-failing";

/// The RPO watch: once when the newest good backup passes the RPO, once when it recovers.
pub(super) async fn rpo(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Some(storage) = engine.config().storage.clone() else {
        return Ok(Vec::new());
    };
    let Ok((bucket, _)) = crate::bucket::backup_bucket(engine.config(), &engine.env()) else {
        return Ok(Vec::new());
    };
    let verified_only = super::catalogue::verified_only(engine);
    let newest = match super::backup::newest_good(&bucket, &storage.db_prefix, verified_only).await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "RPO watch could not list backups");
            return Ok(Vec::new());
        }
    };
    let now = engine.now();
    let rpo = Duration::minutes(engine.config().objectives.rpo.database as i64);
    let age = newest.as_ref().map(|(_, t)| now - *t);
    let breached = age.is_none_or(|a| a > rpo);
    if breached == engine.store().rpo_breached()? {
        return Ok(Vec::new());
    }
    let good = if verified_only {
        "verified database backup"
    } else {
        "database backup"
    };
    let (kind, text) = if breached {
        (
            PostKind::RpoBreached,
            match (&newest, age) {
                (Some((o, _)), Some(a)) => format!(
                    "RPO breached: the newest {good} ({}) is {} old, past the {} target. Take one now: /db backup.",
                    o.key,
                    render::duration(a),
                    render::duration(rpo)
                ),
                _ => format!(
                    "RPO breached: there is no {good} in {}/{}. Take one now: /db backup.",
                    bucket.name(),
                    storage.db_prefix
                ),
            },
        )
    } else {
        (
            PostKind::RpoRecovered,
            format!(
                "RPO recovered: the newest {good} is {} old, within the {} target.",
                age.map(render::duration).unwrap_or_default(),
                render::duration(rpo)
            ),
        )
    };
    // The watch's own state, then its entries: on every open incident's timeline, else audit.
    engine.store().set_rpo_breached(breached)?;
    post_to_open_incidents(engine, kind, text)
}

/// A backup of the production target when one is due: the newest is older than `every_mins`
/// and none was tried within it. Never while a restore of that target runs.
pub(super) async fn scheduled(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Some(every) = engine
        .config()
        .backup
        .as_ref()
        .map(|b| b.every_mins)
        .filter(|m| *m > 0)
    else {
        return Ok(Vec::new());
    };
    let production = engine.config().production_target().to_string();
    if !engine.config().targets.contains_key(&production) {
        return Ok(Vec::new());
    }
    let Ok((bucket, s)) = super::catalogue::backup_bucket(engine) else {
        return Ok(Vec::new());
    };
    let every = Duration::minutes(every as i64);
    let now = engine.now();
    if engine
        .store()
        .last_run(SCHEDULED)?
        .is_some_and(|t| now - t < every)
    {
        return Ok(Vec::new());
    }
    let newest = match super::catalogue::list_backups(&bucket, &s.db_prefix).await {
        Ok(l) => l.first().and_then(super::catalogue::taken_at),
        Err(e) => {
            tracing::warn!(error = %e, "scheduled backup could not list backups");
            return Ok(Vec::new());
        }
    };
    if newest.is_some_and(|t| now - t < every) {
        return Ok(Vec::new());
    }
    engine.store().set_last_run(SCHEDULED, now)?;
    // A backup taken while a restore writes the target would hold half of each.
    let Ok(_guard) = engine
        .restores()
        .take(&production, "the scheduled backup".to_string())
    else {
        return Ok(Vec::new());
    };
    let started = std::time::Instant::now();
    let result = super::backup::take(engine, &production, &NoProgress).await;
    let elapsed = Duration::milliseconds(started.elapsed().as_millis() as i64);
    let (failed, text) = match &result {
        Ok(m) => {
            let text = super::backup::taken_text(engine, &production, m, elapsed);
            (m.verify_error.is_some(), format!("Scheduled: {text}"))
        }
        Err(e) => (
            true,
            format!(
                "The scheduled backup of {production} failed: {e} The next try is in {} min; /db backup tries now.",
                every.num_minutes()
            ),
        ),
    };
    announce_scheduled(
        engine,
        FAILING,
        failed,
        "Scheduled backups work again.",
        text,
    )
}
