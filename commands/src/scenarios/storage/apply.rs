//! Carrying out a restore's changes: every copy it needs checked first (nothing is written if
//! one is missing), then server-side copies back with the recorded headers and metadata, and
//! deletes, `concurrency` at a time, each retried before it is reported undone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::media::{Buckets, StorageError};
use super::plan::{Op, Origin, SHOWN};
use crate::bucket::{BucketError, Headers, Source, retry};
use crate::progress::ProgressSink;
use crate::render;

/// Attempts per object before it is reported undone (each attempt also rides out throttling).
const ATTEMPTS: u32 = 3;

/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The copies a plan needs that the backup bucket does not hold (or holds with another size).
pub async fn missing_copies(b: &Buckets, ops: &[Op]) -> Result<Vec<String>, StorageError> {
    let needed: BTreeSet<(String, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Put(w) => match &w.origin {
                Origin::Copy { copy, .. } => Some((copy.clone(), w.size)),
                Origin::Version(_) => None,
            },
            Op::Delete(_) => None,
        })
        .collect();
    let results: Vec<Result<Option<String>, BucketError>> = futures_util::stream::iter(needed)
        .map(|(copy, size)| async move {
            Ok(match b.backup.head(&copy).await? {
                Some(o) if o.size == size => None,
                Some(o) => Some(format!("{copy} ({} instead of {})", o.size, size)),
                None => Some(copy),
            })
        })
        .buffer_unordered(b.snapshots.concurrency)
        .collect()
        .await;
    let mut missing = Vec::new();
    for r in results {
        if let Some(m) = r? {
            missing.push(m);
        }
    }
    missing.sort();
    Ok(missing)
}

/// What the changes came to.
#[derive(Debug, Default)]
pub struct Applied {
    /// Objects written.
    pub written: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Keys left undone, with why (the first few) and how many.
    pub undone: Vec<String>,
    /// How many were left undone.
    pub undone_count: u64,
    /// The ETag each written object got.
    pub etags: HashMap<String, String>,
    /// How long it took.
    pub took: Duration,
}

/// Makes the changes. Never stops at the first failure: every object is tried, and the ones
/// that failed are reported.
pub async fn apply(b: &Buckets, ops: Vec<Op>, progress: &dyn ProgressSink) -> Applied {
    let started = Instant::now();
    let total = ops.len() as u64;
    let total_bytes: u64 = ops
        .iter()
        .map(|op| match op {
            Op::Put(w) => w.size,
            Op::Delete(_) => 0,
        })
        .sum();
    let out = Mutex::new(Applied::default());
    let limit = b.single_copy_limit();
    let mut stream = futures_util::stream::iter(ops)
        .map(|op| async move {
            let result = one(b, &op, limit).await;
            (op, result)
        })
        .buffer_unordered(b.snapshots.concurrency);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            next = stream.next() => {
                let Some((op, result)) = next else { break };
                let Ok(mut a) = out.lock() else { break };
                match (op, result) {
                    (Op::Put(w), Ok(etag)) => {
                        a.written += 1;
                        a.bytes += w.size;
                        if let Some(e) = etag {
                            a.etags.insert(w.key, e);
                        }
                    }
                    (Op::Delete(_), Ok(_)) => a.deleted += 1,
                    (Op::Put(w), Err(e)) => {
                        a.undone_count += 1;
                        if a.undone.len() < SHOWN {
                            a.undone.push(format!("{} ({e})", w.key));
                        }
                    }
                    (Op::Delete(o), Err(e)) => {
                        a.undone_count += 1;
                        if a.undone.len() < SHOWN {
                            a.undone.push(format!("delete {} ({e})", o.key));
                        }
                    }
                }
            }
            _ = tick.tick() => {
                if let Ok(a) = out.lock() {
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    let settled = a.written + a.deleted + a.undone_count;
                    let line = format!(
                        "Restoring: {}/{total} objects, {} of {} ({}/s){}…",
                        a.written + a.deleted + a.undone_count,
                        render::size(a.bytes),
                        render::size(total_bytes),
                        render::size((a.bytes as f64 / secs) as u64),
                        if a.undone_count > 0 { format!(", {} failed", a.undone_count) } else { String::new() }
                    );
                    progress.progress(&crate::progress::Progress {
                        title: "Restore of media objects",
                        line: &line,
                        fraction: (total > 0).then(|| settled as f64 / total as f64),
                        facts: crate::progress::pace(a.bytes, Some(total_bytes), started.elapsed(), "bytes"),
                    });
                }
            }
        }
    }
    drop(stream);
    let mut a = out.into_inner().unwrap_or_default();
    a.took = started.elapsed();
    a
}

/// One change, tried [`ATTEMPTS`] times. Returns the written object's ETag.
async fn one(b: &Buckets, op: &Op, limit: u64) -> Result<Option<String>, BucketError> {
    let mut attempt = 0;
    loop {
        let result = match op {
            Op::Delete(o) => b.media.delete(&o.key).await.map(|()| None),
            Op::Put(w) => match &w.origin {
                Origin::Copy {
                    copy,
                    copy_etag,
                    headers,
                } => {
                    let source = Source {
                        bucket: &b.backup,
                        key: copy,
                        version: None,
                        etag: copy_etag.as_deref(),
                        size: w.size,
                    };
                    b.media.copy_from(source, &w.key, headers, limit).await
                }
                Origin::Version(v) => {
                    let headers: Headers = match b.media.head_headers(&w.key, Some(v)).await? {
                        Some((_, h)) => h,
                        None => {
                            return Err(BucketError::Source(format!("version {v} is gone")));
                        }
                    };
                    let source = Source {
                        bucket: &b.media,
                        key: &w.key,
                        version: Some(v),
                        etag: None,
                        size: w.size,
                    };
                    b.media.copy_from(source, &w.key, &headers, limit).await
                }
            },
        };
        match result {
            Ok(e) => return Ok(e),
            Err(e) if attempt + 1 < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "a restore copy failed; trying again");
                tokio::time::sleep(retry::backoff(attempt + 2)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
