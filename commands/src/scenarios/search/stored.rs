//! Meilisearch dumps kept in the backup bucket (where the runbook looks for them): a dump is
//! asked for (`POST /dumps`), followed to its end, read from Meilisearch's `--dump-dir` (as
//! `[search] dump_dir` sees it) and uploaded under `[storage] meili_prefix` as
//! `<UTC time>.dump`; then the local file is removed. `serve` does it every
//! `[search] dump_every_mins`, a failure said once and its recovery once; the search RPO watch
//! follows the newest stored dump.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use tokio::sync::mpsc;

use super::meili::{Meili, MeiliError};
use crate::bucket::{Bucket, BucketError, ObjectInfo, PART_SIZE};
use crate::context::Engine;
use crate::error::CommandError;
use crate::progress::{NoProgress, ProgressSink};
use crate::render;
use crate::scenario::{Post, PostKind, announce_scheduled, post_to_open_incidents};

/// How often a dump task is looked at.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest a scheduled dump is waited for.
const DUMP_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Why a dump was not made and stored.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Meilisearch is not configured, or did not answer.
    #[error(transparent)]
    Meili(#[from] MeiliError),
    /// Meilisearch did not take the dump task.
    #[error("the dump could not be started: {0}")]
    NotStarted(MeiliError),
    /// The task ended without a dump (`failed`, `canceled`), with Meilisearch's reason.
    #[error("dump task {uid} {status}: {reason}")]
    Ended {
        /// The task.
        uid: u64,
        /// How it ended.
        status: String,
        /// Meilisearch's error.
        reason: String,
    },
    /// The task succeeded without naming its dump.
    #[error("dump task {uid} succeeded without a dumpUid")]
    Unnamed {
        /// The task.
        uid: u64,
    },
    /// The task had not ended when drbot stopped following it: it goes on in Meilisearch.
    #[error("dump task {uid} is still {status} after {after}")]
    StillRunning {
        /// The task.
        uid: u64,
        /// Its status then (`enqueued`, `processing`).
        status: String,
        /// How long it was followed.
        after: String,
    },
    /// The backup bucket is not configured, or did not take the dump.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The dump's file could not be read, or the bucket holds other than it.
    #[error("{0}")]
    Store(String),
}

/// The stored name of a dump taken at `at`.
pub fn dump_key(prefix: &str, at: DateTime<Utc>) -> String {
    format!("{prefix}{}.dump", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

/// The time in a stored dump's name, if its name has one.
pub fn name_time(key: &str) -> Option<DateTime<Utc>> {
    key.rsplit('/')
        .next()
        .and_then(|n| n.get(..20))
        .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H-%M-%SZ").ok())
        .map(|t| t.and_utc())
}

/// When a stored dump was taken: the time in its name, else when the bucket wrote it.
pub fn dump_time(o: &ObjectInfo) -> Option<DateTime<Utc>> {
    name_time(&o.key).or(o.last_modified)
}

/// Follows dump task `uid` to its end; the dump's uid (its file is `<uid>.dump`).
pub async fn follow(
    meili: &Meili,
    uid: u64,
    limit: std::time::Duration,
    progress: &dyn ProgressSink,
) -> Result<String, DumpError> {
    let begun = Instant::now();
    loop {
        let task = meili.task(uid).await?;
        progress.update(&format!(
            "Dump task {uid}: {} for {}…",
            task.status,
            render::took(begun.elapsed())
        ));
        match task.status.as_str() {
            "succeeded" => {
                return task
                    .details
                    .as_ref()
                    .and_then(|d| d.get("dumpUid"))
                    .and_then(|d| d.as_str())
                    .map(str::to_string)
                    .ok_or(DumpError::Unnamed { uid });
            }
            "failed" | "canceled" => {
                return Err(DumpError::Ended {
                    uid,
                    status: task.status.clone(),
                    reason: task.error_text(),
                });
            }
            _ => {}
        }
        if begun.elapsed() >= limit {
            return Err(DumpError::StillRunning {
                uid,
                status: task.status.clone(),
                after: render::took(begun.elapsed()),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Uploads `<dump_dir>/<uid>.dump` as `<meili_prefix><time>.dump`, checks the stored size, and
/// removes the local file. Returns the key and its size.
pub async fn store(engine: &Engine, dump_uid: &str) -> Result<(String, u64), DumpError> {
    let dir = engine
        .config()
        .search
        .as_ref()
        .and_then(|s| s.dump_dir.clone())
        .ok_or_else(|| {
            DumpError::Store("no [search] dump_dir: the dump stays on Meilisearch's disk".into())
        })?;
    if dump_uid.contains(['/', '\\']) || dump_uid.starts_with('.') {
        return Err(DumpError::Store(format!(
            "Meilisearch named the dump `{dump_uid}`, which is not a file name"
        )));
    }
    let path: PathBuf = dir.join(format!("{dump_uid}.dump"));
    let local = std::fs::metadata(&path)
        .map_err(|e| {
            DumpError::Store(format!(
                "cannot read {}: {e} (is [search] dump_dir Meilisearch's --dump-dir?)",
                path.display()
            ))
        })?
        .len();
    let (bucket, s) = crate::bucket::backup_bucket(engine.config(), &engine.env())?;
    let key = dump_key(&s.meili_prefix, engine.now());
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(2);
    let reading = path.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut f = match std::fs::File::open(&reading) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("{}: {e}", reading.display())));
                return;
            }
        };
        loop {
            let mut part = vec![0u8; PART_SIZE];
            let mut filled = 0;
            while filled < part.len() {
                match f.read(&mut part[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(format!("{}: {e}", reading.display())));
                        return;
                    }
                }
            }
            part.truncate(filled);
            let last = filled < PART_SIZE;
            if tx.blocking_send(Ok(part)).is_err() || last {
                return;
            }
        }
    });
    let uploaded = bucket.put_multipart(&key, rx).await;
    let _ = reader.await;
    uploaded?;
    match bucket.head(&key).await? {
        Some(o) if o.size == local => {}
        other => {
            return Err(DumpError::Store(format!(
                "{key} holds {} bytes where the dump file has {local}",
                other.map_or(0, |o| o.size)
            )));
        }
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(error = %e, "the stored dump's local file could not be removed");
    }
    Ok((key, local))
}

/// Asks for a dump, follows it and stores it: one call for `/search dump` and `serve`.
pub async fn take(
    engine: &Engine,
    progress: &dyn ProgressSink,
) -> Result<(String, u64), DumpError> {
    let meili = Meili::of(engine)?;
    let uid = meili.create_dump().await.map_err(DumpError::NotStarted)?;
    let dump = follow(&meili, uid, DUMP_LIMIT, progress).await?;
    store(engine, &dump).await
}

/// The name scheduled dumps are recorded under, and the flag set while they fail.
const SCHEDULED: &str = "search-dump";
const FAILING: &str = "search-dump-failing";

/// A dump when one is due: the newest stored is older than `dump_every_mins` and none was
/// tried within it.
pub async fn scheduled(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Some(sc) = engine.config().search.clone() else {
        return Ok(Vec::new());
    };
    if sc.dump_every_mins == 0 || sc.dump_dir.is_none() {
        return Ok(Vec::new());
    }
    let Ok((bucket, s)) = crate::bucket::backup_bucket(engine.config(), &engine.env()) else {
        return Ok(Vec::new());
    };
    let every = Duration::minutes(sc.dump_every_mins as i64);
    let now = engine.now();
    if engine
        .store()
        .last_run(SCHEDULED)?
        .is_some_and(|t| now - t < every)
    {
        return Ok(Vec::new());
    }
    if newest(&bucket, &s.meili_prefix)
        .await
        .is_some_and(|t| now - t < every)
    {
        return Ok(Vec::new());
    }
    engine.store().set_last_run(SCHEDULED, now)?;
    let result = take(engine, &NoProgress).await;
    let text = match &result {
        Ok((key, size)) => format!(
            "Scheduled: Meilisearch dump stored as {}/{key} ({}).",
            bucket.name(),
            render::size(*size)
        ),
        Err(e) => format!(
            "The scheduled Meilisearch dump failed: {e}. The next try is in {} min; /search dump tries now.",
            sc.dump_every_mins
        ),
    };
    announce_scheduled(
        engine,
        FAILING,
        result.is_err(),
        "Scheduled Meilisearch dumps work again.",
        text,
    )
}

/// When the newest stored dump was taken.
async fn newest(bucket: &Bucket, prefix: &str) -> Option<DateTime<Utc>> {
    match bucket.list(prefix).await {
        Ok(list) => list.iter().filter_map(dump_time).max(),
        Err(e) => {
            tracing::warn!(error = %e, "could not list Meilisearch dumps");
            None
        }
    }
}

/// The search RPO watch: the newest stored dump's age, posted once when it passes the RPO and
/// once when it recovers. Only when dumps are stored by drbot (`dump_dir`) or some are there.
pub async fn rpo(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let Some(sc) = engine.config().search.clone() else {
        return Ok(Vec::new());
    };
    let Ok((bucket, s)) = crate::bucket::backup_bucket(engine.config(), &engine.env()) else {
        return Ok(Vec::new());
    };
    let list = match bucket.list(&s.meili_prefix).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "search RPO watch could not list dumps");
            return Ok(Vec::new());
        }
    };
    if sc.dump_dir.is_none() && list.is_empty() {
        return Ok(Vec::new());
    }
    let now = engine.now();
    let rpo = Duration::minutes(engine.config().objectives.rpo.search as i64);
    let newest = list.iter().filter_map(dump_time).max();
    let breached = newest.is_none_or(|t| now - t > rpo);
    if breached == engine.store().rpo_breached_of("search")? {
        return Ok(Vec::new());
    }
    engine.store().set_rpo_breached_of("search", breached)?;
    let (kind, text) = match (breached, newest) {
        (true, Some(t)) => (
            PostKind::RpoBreached,
            format!(
                "Search RPO breached: the newest Meilisearch dump in {}/{} is {} old, past the {} target. /search dump takes one now.",
                bucket.name(),
                s.meili_prefix,
                render::duration(now - t),
                render::duration(rpo)
            ),
        ),
        (true, None) => (
            PostKind::RpoBreached,
            format!(
                "Search RPO breached: there is no Meilisearch dump in {}/{}. /search dump takes one now.",
                bucket.name(),
                s.meili_prefix
            ),
        ),
        (false, t) => (
            PostKind::RpoRecovered,
            format!(
                "Search RPO recovered: the newest Meilisearch dump is {} old, within the {} target.",
                t.map(|t| render::duration(now - t)).unwrap_or_default(),
                render::duration(rpo)
            ),
        ),
    };
    post_to_open_incidents(engine, kind, text)
}
