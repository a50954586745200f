//! Drill 2, storage, without touching the live media: `[drills] media_sample` objects of the
//! newest snapshot copied into a scratch prefix of the media bucket, damaged (some overwritten,
//! some deleted), restored from the snapshot with the same copy-back as `/storage restore`,
//! every byte compared (sha256) with the snapshot's copy, `/storage verify` run, and the
//! prefix removed. Snapshots leave that prefix out (it is under drbot's probe prefix).

use sha2::{Digest, Sha256};

use drbot_state::ScratchState;

use super::record::{Run, secs};
use crate::bucket::{Bucket, BucketError};
use crate::render;
use crate::scenarios::storage::apply::apply;
use crate::scenarios::storage::manifest::{self, Entry, Reader};
use crate::scenarios::storage::media::{Buckets, PROBE_PREFIX};
use crate::scenarios::storage::plan::{Op, Origin, Want};

/// The kind of scratch resource a storage drill records.
pub const SCRATCH_PREFIX: &str = "prefix";

/// The steps of drill 2: copy a sample, damage it, restore it, verify every byte, `/storage
/// verify`.
pub const STEPS: usize = 5;

/// Objects above this size are left out of a drill's sample: a drill copies, restores and
/// reads back each sampled object twice, and must not move gigabytes to prove a point.
pub const MAX_SAMPLED_OBJECT: u64 = 256 * 1024 * 1024;

/// xorshift64*: enough to pick a sample.
struct Rng(u64);

impl Rng {
    fn seeded(a: u64, b: u64) -> Rng {
        Rng((a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Where a drill's scratch copies go in the media bucket.
pub fn scratch_prefix(run: &Run<'_>) -> String {
    // With this install's tag, as the database drill's names: two drbots drilling on one
    // media bucket never share (or remove) each other's prefix.
    format!(
        "{PROBE_PREFIX}drills/{}-{}/",
        run.id,
        super::database::tag(run.engine)
    )
}

/// Removes every object under a scratch prefix (only ever one drbot recorded).
pub async fn remove_prefix(media: &Bucket, prefix: &str) -> Result<u64, BucketError> {
    if !prefix.starts_with(PROBE_PREFIX) || prefix.len() <= PROBE_PREFIX.len() {
        return Err(BucketError::Source(format!(
            "refusing to remove {prefix}: not a drill's scratch prefix"
        )));
    }
    let mut n = 0;
    for o in media.list(prefix).await? {
        media.delete(&o.key).await?;
        n += 1;
    }
    Ok(n)
}

/// The sha256 of an object, read as a stream.
async fn sha256(bucket: &Bucket, key: &str) -> Result<String, String> {
    let (_, mut body) = bucket.get(key, None).await.map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("reading {key}: {e}"))?
    {
        h.update(&chunk);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn want(entry: &Entry, key: String) -> Want {
    Want {
        key,
        size: entry.size,
        etags: entry
            .copy_etag
            .iter()
            .cloned()
            .chain(std::iter::once(entry.etag.clone()))
            .collect(),
        origin: Origin::Copy {
            copy: entry.copy.clone(),
            copy_etag: entry.copy_etag.clone(),
            headers: entry.headers.clone(),
        },
    }
}

/// Runs the storage drill's steps on `run`. Returns why it failed, if it did. The scratch
/// prefix is removed whatever happened.
pub async fn drill(run: &Run<'_>) -> Result<(), String> {
    let engine = run.engine;
    let n = run
        .step("Copy a sample of the newest snapshot into a scratch prefix")
        .map_err(|e| e.to_string())?;
    let b = match Buckets::of(engine) {
        Ok(b) => b,
        Err(e) => return run.fail(n, e.to_string()),
    };
    let snapshots = match manifest::list(&b.backup, &b.snapshots.prefix).await {
        Ok(s) => s,
        Err(e) => return run.fail(n, e.to_string()),
    };
    let Some(newest) = snapshots.first().cloned() else {
        return run.fail(
            n,
            format!(
                "there is no snapshot of {} to restore from: take one with /storage snapshot",
                b.media.name()
            ),
        );
    };
    let _ = run.change(|d| {
        let rpo = Some(secs(newest.at, run.started_at));
        // A full drill's own RPO is the database's; the storage part's is kept beside it.
        if d.kind == "full" {
            d.storage_restored = Some(newest.key.clone());
            d.storage_rpo_secs = rpo;
        } else {
            d.restored = Some(newest.key.clone());
            d.rpo_secs = rpo;
        }
    });
    let want_n = engine.config().drills.media_sample;
    // A uniform sample of the snapshot (reservoir sampling over the manifest as it streams:
    // memory holds the sample only), different each drill.
    let mut rng = Rng::seeded(run.id.0, run.started_at.timestamp_micros() as u64);
    let mut sample: Vec<Entry> = Vec::new();
    let (mut seen, mut too_big) = (0u64, 0u64);
    match Reader::open(&b.backup, &newest.key).await {
        Ok(mut r) => loop {
            match r.next().await {
                Ok(Some(e)) => {
                    if e.key.starts_with(PROBE_PREFIX) {
                        continue;
                    }
                    if e.size > MAX_SAMPLED_OBJECT {
                        too_big += 1;
                        continue;
                    }
                    seen += 1;
                    if sample.len() < want_n {
                        sample.push(e);
                    } else {
                        let j = rng.below(seen) as usize;
                        if j < want_n {
                            sample[j] = e;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return run.fail(n, format!("snapshot {}: {e}", newest.name())),
            }
        },
        Err(e) => return run.fail(n, format!("snapshot {}: {e}", newest.name())),
    }
    sample.sort_by(|a, b| a.key.cmp(&b.key));
    let skipped = if too_big > 0 {
        format!(
            " ({too_big} objects over {} left out of the sample)",
            render::size(MAX_SAMPLED_OBJECT)
        )
    } else {
        String::new()
    };
    if sample.is_empty() {
        return run.fail(
            n,
            format!("snapshot {} holds no objects to drill on", newest.name()),
        );
    }
    let prefix = scratch_prefix(run);
    if let Err(e) = run.plan_scratch(SCRATCH_PREFIX, &prefix).await {
        return run.fail(n, e.to_string());
    }
    let result = steps(run, &b, &newest, &sample, &prefix, n, &skipped).await;
    match remove_prefix(&b.media, &prefix).await {
        Ok(_) => {
            let _ = run
                .scratch_is(SCRATCH_PREFIX, &prefix, ScratchState::Dropped)
                .await;
        }
        Err(e) => tracing::warn!(drill = %run.id, error = %e, "scratch prefix not removed"),
    }
    result
}

/// Copies the sample's snapshot copies into the scratch prefix, as `/storage restore` copies
/// back; every object must be written.
async fn copy_back(
    run: &Run<'_>,
    b: &Buckets,
    ops: Vec<Op>,
) -> Result<crate::scenarios::storage::apply::Applied, String> {
    let total = ops.len();
    let a = apply(b, ops, run).await;
    if a.undone_count > 0 {
        return Err(format!(
            "{} of {total} objects were not written: {}",
            a.undone_count,
            a.undone.join("; ")
        ));
    }
    Ok(a)
}

async fn steps(
    run: &Run<'_>,
    b: &Buckets,
    newest: &manifest::Snapshot,
    sample: &[Entry],
    prefix: &str,
    n: usize,
    skipped: &str,
) -> Result<(), String> {
    let scratch_key = |e: &Entry| format!("{prefix}{}", e.key);
    let bytes: u64 = sample.iter().map(|e| e.size).sum();
    let ops: Vec<Op> = sample
        .iter()
        .map(|e| Op::Put(want(e, scratch_key(e))))
        .collect();
    if let Err(e) = copy_back(run, b, ops.clone()).await {
        return run.fail(n, e);
    }
    let _ = run.end(
        n,
        Some(true),
        &format!(
            "Copied {} objects ({}) of snapshot {} into {}/{prefix}{skipped}.",
            sample.len(),
            render::size(bytes),
            newest.name(),
            b.media.name()
        ),
    );
    // Damage: overwrite a third, delete a third.
    let n = run.step("Damage the copies").map_err(|e| e.to_string())?;
    let third = sample.len().div_ceil(3);
    let mut overwritten = 0;
    let mut deleted = 0;
    for (i, e) in sample.iter().enumerate() {
        let key = scratch_key(e);
        let r = if i < third {
            overwritten += 1;
            b.media
                .put(&key, b"damaged by a drbot drill".to_vec(), "text/plain")
                .await
        } else if i < 2 * third {
            deleted += 1;
            b.media.delete(&key).await
        } else {
            Ok(())
        };
        if let Err(e) = r {
            return run.fail(n, format!("damaging {key}: {e}"));
        }
    }
    let _ = run.end(
        n,
        Some(true),
        &format!("Overwrote {overwritten} and deleted {deleted} of the copies."),
    );
    // Restore from the snapshot.
    let n = run
        .step("Restore the copies from the snapshot")
        .map_err(|e| e.to_string())?;
    let restored = match copy_back(run, b, ops).await {
        Ok(a) => a,
        Err(e) => return run.fail(n, e),
    };
    let _ = run.end(
        n,
        Some(true),
        &format!(
            "Restored {} objects ({}) from snapshot {} in {}.",
            restored.written,
            render::size(restored.bytes),
            newest.name(),
            render::took(restored.took)
        ),
    );
    // Every byte.
    let n = run
        .step("Verify every byte (sha256 against the snapshot's copy)")
        .map_err(|e| e.to_string())?;
    let mut wrong = Vec::new();
    for e in sample {
        let key = scratch_key(e);
        let (got, want) = (
            sha256(&b.media, &key).await,
            sha256(&b.backup, &e.copy).await,
        );
        match (got, want) {
            (Ok(g), Ok(w)) if g == w => {}
            (Ok(_), Ok(_)) => wrong.push(format!("{} differs from {}", e.key, e.copy)),
            (Err(x), _) | (_, Err(x)) => wrong.push(x),
        }
    }
    if !wrong.is_empty() {
        return run.fail(
            n,
            format!(
                "{} of {} objects are not byte-identical to the snapshot: {}",
                wrong.len(),
                sample.len(),
                wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        );
    }
    let _ = run.end(
        n,
        Some(true),
        &format!(
            "All {} objects match their snapshot copies byte for byte (sha256).",
            sample.len()
        ),
    );
    // /storage verify.
    let n = run.step("/storage verify").map_err(|e| e.to_string())?;
    match crate::scenarios::storage::commands::verify_lines(run.engine).await {
        Ok((ok, _, lines)) => {
            let _ = run.end(n, Some(ok), &lines.join("\n"));
            if !ok {
                return Err(format!("/storage verify failed: {}", lines.join(" ")));
            }
        }
        Err(e) => return run.fail(n, e.to_string()),
    }
    Ok(())
}
