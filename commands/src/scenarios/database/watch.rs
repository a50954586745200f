//! The database scenario's background watch: the RPO (the newest backup's age against the
//! target), posted once when breached and once when recovered.

use chrono::Duration;

use crate::engine::Engine;
use crate::error::CommandError;
use crate::render;
use crate::scenario::{Post, PostKind, post_to_open_incidents};

/// The RPO watch: once when the newest backup passes the RPO, once when it recovers.
pub(super) async fn rpo(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Some(storage) = engine.config().storage.clone() else {
        return Ok(Vec::new());
    };
    let Ok((bucket, _)) = crate::bucket::backup_bucket(engine.config(), &engine.env()) else {
        return Ok(Vec::new());
    };
    let newest = match super::catalogue::list_backups(&bucket, &storage.db_prefix).await {
        Ok(list) => list.into_iter().next(),
        Err(e) => {
            tracing::warn!(error = %e, "RPO watch could not list backups");
            return Ok(Vec::new());
        }
    };
    let now = engine.now();
    let rpo = Duration::minutes(engine.config().objectives.rpo.database as i64);
    let age = newest
        .as_ref()
        .and_then(super::catalogue::taken_at)
        .map(|t| now - t);
    let breached = age.is_none_or(|a| a > rpo);
    if breached == engine.store().rpo_breached()? {
        return Ok(Vec::new());
    }
    let (kind, text) = if breached {
        (
            PostKind::RpoBreached,
            match (&newest, age) {
                (Some(o), Some(a)) => format!(
                    "RPO breached: the newest database backup ({}) is {} old, past the {} target. Take one now: /db backup.",
                    o.key,
                    render::duration(a),
                    render::duration(rpo)
                ),
                _ => format!(
                    "RPO breached: there is no database backup in {}/{}. Take one now: /db backup.",
                    bucket.name(),
                    storage.db_prefix
                ),
            },
        )
    } else {
        (
            PostKind::RpoRecovered,
            format!(
                "RPO recovered: the newest database backup is {} old, within the {} target.",
                age.map(render::duration).unwrap_or_default(),
                render::duration(rpo)
            ),
        )
    };
    // The watch's own state, then its entries: on every open incident's timeline, else audit.
    engine.store().set_rpo_breached(breached)?;
    post_to_open_incidents(engine, kind, text)
}
