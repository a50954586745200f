//! `/storage snapshot`: an incremental, content-addressed snapshot of the media bucket.
//!
//! The listing (ListObjectsV2, a page at a time) is walked beside the previous manifest, both in
//! key order. An object with the same key, size and ETag as before costs nothing more; any
//! other is read (HEAD, for its headers and metadata) and, unless a copy of its content is
//! already held, copied server-side to `<prefix>objects/<ETag>-<size>`. The manifest is written
//! in the same pass and appears only when every copy succeeded: a snapshot that fails writes
//! none, and the next one finds the copies already made and does not make them again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::manifest::{self, Entry, Header, ManifestError, Reader, Totals, Writer};
use super::media::{Buckets, StorageError};
use crate::bucket::{Bucket, BucketError, ObjectInfo, Source};
use crate::progress::ProgressSink;
use crate::render;

/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Objects waiting to be written to the manifest behind one still being copied.
const MAX_QUEUED: usize = 4096;

/// The most copies listed up front; past it, whether a copy is held is asked by HEAD each time.
const MAX_HELD_LISTED: usize = 250_000;

/// The copies held when the snapshot began, listed once (a request per thousand) instead of a
/// HEAD per new object: a copy not among them is made without asking; one among them (or any,
/// past [`MAX_HELD_LISTED`]) is still confirmed by HEAD, as it may have gone since. Kept as
/// hashes of their keys (a collision costs one HEAD, never a missing copy).
/// Copies this snapshot makes are added as they are made (two keys of one content).
struct Held(std::sync::Mutex<Option<std::collections::HashSet<u64>>>);

impl Held {
    async fn list(backup: &Bucket, prefix: &str, requests: &Requests) -> Result<Held, BucketError> {
        let mut set = std::collections::HashSet::new();
        let mut pages = backup.pages(&format!("{prefix}objects/"));
        while let Some(page) = pages.next().await? {
            Requests::add(&requests.lists, 1);
            set.extend(page.iter().map(|o| Held::hash(&o.key)));
            if set.len() > MAX_HELD_LISTED {
                return Ok(Held(std::sync::Mutex::new(None)));
            }
        }
        Ok(Held(std::sync::Mutex::new(Some(set))))
    }

    fn hash(key: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    /// Whether `copy` may be held (false: it was not when the snapshot began).
    fn may_hold(&self, copy: &str) -> bool {
        self.0.lock().map_or(true, |set| {
            set.as_ref()
                .is_none_or(|set| set.contains(&Held::hash(copy)))
        })
    }

    /// `copy` was made by this snapshot.
    fn made(&self, copy: &str) {
        if let Ok(mut set) = self.0.lock()
            && let Some(set) = set.as_mut()
        {
            set.insert(Held::hash(copy));
        }
    }
}

/// Requests a snapshot made, by kind (the benchmark counts them).
#[derive(Debug, Default)]
pub struct Requests {
    /// ListObjectsV2 pages of the media bucket, and of the manifests.
    pub lists: AtomicU64,
    /// HEADs (of changed objects, and of the place their copy would go).
    pub heads: AtomicU64,
    /// Server-side copies.
    pub copies: AtomicU64,
    /// Reads of the previous manifest and writes of the new one.
    pub manifest: AtomicU64,
}

impl Requests {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `12 lists, 200 heads, 100 copies, 2 manifest`.
    pub fn render(&self) -> String {
        format!(
            "{} list, {} head, {} copy, {} manifest requests",
            self.lists.load(Ordering::Relaxed),
            self.heads.load(Ordering::Relaxed),
            self.copies.load(Ordering::Relaxed),
            self.manifest.load(Ordering::Relaxed)
        )
    }
}

/// What a finished snapshot holds and did.
#[derive(Debug)]
pub struct Taken {
    /// Its manifest's key.
    pub key: String,
    /// When its listing started.
    pub at: DateTime<Utc>,
    /// Totals.
    pub totals: Totals,
    /// Objects that had been copied already (by an earlier, failed or other, snapshot).
    pub already_held: u64,
    /// The previous manifest, if one was used.
    pub previous: Option<String>,
    /// Why the previous manifest stopped being used part-way, if it did.
    pub previous_broken: Option<String>,
    /// Requests made.
    pub requests: Arc<Requests>,
    /// How long it took.
    pub took: Duration,
}

/// The previous manifest read beside the listing; if it turns out unreadable, the snapshot
/// goes on without it (every object is then looked at, and held copies are still reused).
struct Previous {
    reader: Option<Reader>,
    head: Option<Entry>,
    broken: Option<String>,
}

impl Previous {
    async fn open(bucket: &Bucket, key: Option<&str>, requests: &Requests) -> Previous {
        let mut p = Previous {
            reader: None,
            head: None,
            broken: None,
        };
        if let Some(key) = key {
            Requests::add(&requests.manifest, 1);
            match Reader::open(bucket, key).await {
                Ok(r) => p.reader = Some(r),
                Err(e) => p.broken = Some(e.to_string()),
            }
            p.advance().await;
        }
        p
    }

    async fn advance(&mut self) {
        self.head = match self.reader.as_mut() {
            Some(r) => match r.next().await {
                Ok(e) => e,
                Err(e) => {
                    self.broken = Some(e.to_string());
                    self.reader = None;
                    None
                }
            },
            None => None,
        };
    }

    /// The previous entry for `key`, if it had one.
    async fn find(&mut self, key: &str) -> Option<Entry> {
        while self.head.as_ref().is_some_and(|h| h.key.as_str() < key) {
            self.advance().await;
        }
        match &self.head {
            Some(h) if h.key == key => {
                let found = self.head.take();
                self.advance().await;
                found
            }
            _ => None,
        }
    }
}

/// A manifest line in waiting: ready, or its copy still running.
enum Slot {
    Ready(Box<Entry>),
    Copying(JoinHandle<Result<Option<Copied>, BucketError>>),
}

/// A changed object, looked at and held.
struct Copied {
    entry: Entry,
    /// Bytes copied now (0 when its content was held already).
    copied: Option<u64>,
}

/// Takes a snapshot. Nothing is written to the manifest's place unless every copy succeeded.
pub async fn take(
    b: &Buckets,
    now: DateTime<Utc>,
    progress: &dyn ProgressSink,
) -> Result<Taken, StorageError> {
    let started = Instant::now();
    let requests = Arc::new(Requests::default());
    let prefix = b.snapshots.prefix.clone();
    let key = manifest::manifest_key(&prefix, now);
    if b.backup.head(&key).await?.is_some() {
        return Err(StorageError::Refused(format!(
            "A snapshot named {} exists already (two in one second). Try again in a moment.",
            manifest::snapshot_name(&key)
        )));
    }
    let snapshots = manifest::list(&b.backup, &prefix).await?;
    Requests::add(&requests.lists, 1);
    let previous_key = snapshots.first().map(|s| s.key.clone());
    let mut previous = Previous::open(&b.backup, previous_key.as_deref(), &requests).await;
    // A full snapshot (none before it) lists what is held; an incremental one, which copies
    // few, asks of each (listing a big bucket's copies would cost more than it saves).
    let held = Arc::new(if previous_key.is_none() {
        Held::list(&b.backup, &prefix, &requests).await?
    } else {
        Held(std::sync::Mutex::new(None))
    });
    let header = Header {
        format: manifest::FORMAT.to_string(),
        version: 1,
        bucket: b.media.name().to_string(),
        copies_in: b.backup.name().to_string(),
        taken_at: now,
    };
    let mut writer = Writer::new(b.backup.clone(), key.clone(), &header)?;
    let mut totals = Totals::default();
    let mut already_held = 0u64;
    let mut queue: VecDeque<Slot> = VecDeque::new();
    let mut copying = 0usize;
    let concurrency = b.snapshots.concurrency;
    let single_limit = b.single_copy_limit();
    let mut listed = 0u64;
    let mut last_report = Instant::now();

    let mut pages = b.media.pages("");
    let result: Result<(), StorageError> = async {
        loop {
            let page = pages.next().await?;
            let Some(page) = page else { break };
            Requests::add(&requests.lists, 1);
            for object in page {
                if object.key.starts_with(super::media::PROBE_PREFIX) {
                    continue;
                }
                listed += 1;
                let before = previous.find(&object.key).await;
                let slot = match before {
                    Some(e)
                        if e.same_content(&object) && e.last_modified == object.last_modified =>
                    {
                        Slot::Ready(Box::new(Entry {
                            etag: object.etag.clone().unwrap_or(e.etag.clone()),
                            ..e
                        }))
                    }
                    _ => {
                        copying += 1;
                        let (media, backup, requests, prefix, held) = (
                            b.media.clone(),
                            b.backup.clone(),
                            requests.clone(),
                            prefix.clone(),
                            held.clone(),
                        );
                        Slot::Copying(tokio::spawn(async move {
                            let to = Target {
                                backup: &backup,
                                prefix: &prefix,
                                held: &held,
                            };
                            hold(&media, &to, object, single_limit, &requests).await
                        }))
                    }
                };
                queue.push_back(slot);
                // Write out what is ready at the front; wait when too much is in flight.
                while let Some(front) = queue.front() {
                    let must_wait = copying >= concurrency || queue.len() >= MAX_QUEUED;
                    match front {
                        Slot::Copying(h) if !h.is_finished() && !must_wait => break,
                        _ => {}
                    }
                    let Some(slot) = queue.pop_front() else { break };
                    write_slot(
                        slot,
                        &mut writer,
                        &mut totals,
                        &mut already_held,
                        &mut copying,
                    )
                    .await?;
                }
                if last_report.elapsed() >= PROGRESS_EVERY {
                    last_report = Instant::now();
                    let line = format!(
                        "Snapshot of {}: {listed} objects listed, {} new copies ({}) so far…",
                        b.media.name(),
                        totals.new_copies,
                        render::size(totals.copied_bytes)
                    );
                    progress.progress(&crate::progress::Progress {
                        title: &format!("Snapshot of {}", b.media.name()),
                        line: &line,
                        fraction: None,
                        facts: crate::progress::pace(listed, None, started.elapsed(), "objects"),
                    });
                }
            }
        }
        while let Some(slot) = queue.pop_front() {
            write_slot(
                slot,
                &mut writer,
                &mut totals,
                &mut already_held,
                &mut copying,
            )
            .await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        // Copies already running are let finish (at most `concurrency`): the next snapshot
        // finds them held, and no multipart copy is left half-made.
        for slot in queue {
            if let Slot::Copying(h) = slot {
                let _ = h.await;
            }
        }
        return Err(match e {
            StorageError::Bucket(be) => StorageError::SnapshotFailed {
                listed,
                copies: totals.new_copies,
                why: be.to_string(),
            },
            other => other,
        });
    }
    totals.finished_at =
        Some(now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default());
    Requests::add(&requests.manifest, 1);
    writer
        .finish(&totals)
        .await
        .map_err(|e| StorageError::SnapshotFailed {
            listed,
            copies: totals.new_copies,
            why: e.to_string(),
        })?;
    Ok(Taken {
        key,
        at: now,
        totals,
        already_held,
        previous: previous_key,
        previous_broken: previous.broken,
        requests,
        took: started.elapsed(),
    })
}

async fn write_slot(
    slot: Slot,
    writer: &mut Writer,
    totals: &mut Totals,
    already_held: &mut u64,
    copying: &mut usize,
) -> Result<(), StorageError> {
    let entry = match slot {
        Slot::Ready(e) => *e,
        Slot::Copying(h) => {
            *copying -= 1;
            let done = h.await.map_err(|e| {
                StorageError::Bucket(BucketError::Source(format!("a copy stopped: {e}")))
            })??;
            // Deleted between the listing and its HEAD: not in this snapshot.
            let Some(done) = done else { return Ok(()) };
            match done.copied {
                Some(bytes) => {
                    totals.new_copies += 1;
                    totals.copied_bytes += bytes;
                }
                None => *already_held += 1,
            }
            done.entry
        }
    };
    totals.objects += 1;
    totals.bytes += entry.size;
    writer.entry(&entry).await?;
    Ok(())
}

/// Looks at a new or changed object and makes sure a copy of its content is held. `None` when
/// it was deleted since the listing.
async fn hold(
    media: &Bucket,
    to: &Target<'_>,
    listed: ObjectInfo,
    single_limit: u64,
    requests: &Requests,
) -> Result<Option<Copied>, BucketError> {
    let (backup, prefix) = (to.backup, to.prefix);
    let mut attempt = 0;
    loop {
        Requests::add(&requests.heads, 1);
        let Some((info, headers)) = media.head_headers(&listed.key, None).await? else {
            return Ok(None);
        };
        let etag = info.etag.clone().unwrap_or_default();
        let mut copy = manifest::copy_key(prefix, &etag, info.size);
        let mut held = if to.held.may_hold(&copy) {
            Requests::add(&requests.heads, 1);
            backup.head(&copy).await?
        } else {
            None
        };
        // A multipart ETag may be the one a copy (or a restore from it) got: look for its alias.
        if held.is_none() && etag.contains('-') {
            Requests::add(&requests.heads, 1);
            if let Some(target) =
                alias(backup, &manifest::alias_key(prefix, &etag, info.size)).await?
            {
                Requests::add(&requests.heads, 1);
                held = backup.head(&target).await?;
                copy = target;
            }
        }
        let (copy_etag, copied) = match held {
            Some(h) if h.size == info.size => (h.etag, None),
            _ => {
                copy = manifest::copy_key(prefix, &etag, info.size);
                Requests::add(&requests.copies, 1);
                let source = Source {
                    bucket: media,
                    key: &info.key,
                    version: None,
                    etag: Some(&etag),
                    size: info.size,
                };
                match backup
                    .copy_from(source, &copy, &headers, single_limit)
                    .await
                {
                    // Some servers leave the ETag out of a multipart completion: read it.
                    Ok(None) => {
                        Requests::add(&requests.heads, 1);
                        (
                            backup.head(&copy).await?.and_then(|h| h.etag),
                            Some(info.size),
                        )
                    }
                    Ok(e) => (e, Some(info.size)),
                    // Changed between its HEAD and the copy: look again.
                    Err(e) if attempt < 3 && e.to_string().contains("PreconditionFailed") => {
                        attempt += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if copied.is_some() {
            to.held.made(&copy);
        }
        // The copy is known by another ETag: name it under that one too.
        if copied.is_some()
            && let Some(ce) = copy_etag.as_deref()
            && ce != etag
        {
            Requests::add(&requests.copies, 1);
            backup
                .put(
                    &manifest::alias_key(prefix, ce, info.size),
                    copy.clone().into_bytes(),
                    "text/plain",
                )
                .await?;
        }
        return Ok(Some(Copied {
            entry: Entry {
                key: info.key,
                size: info.size,
                etag,
                // The listing's time, to the precision the next listing compares with (R2 lists
                // milliseconds, HEAD says seconds).
                last_modified: listed.last_modified.or(info.last_modified),
                headers,
                copy,
                copy_etag,
            },
            copied,
        }));
    }
}

/// Where copies go: the backup bucket, the snapshots' prefix, and what it held at the start.
struct Target<'a> {
    backup: &'a Bucket,
    prefix: &'a str,
    held: &'a Held,
}

/// The copy an alias names, if the alias exists and names a copy under the same prefix.
async fn alias(backup: &Bucket, key: &str) -> Result<Option<String>, BucketError> {
    if backup.head(key).await?.is_none() {
        return Ok(None);
    }
    let (_, body) = backup.get(key, None).await?;
    let bytes = body
        .collect()
        .await
        .map_err(|e| BucketError::Source(format!("reading {key}: {e}")))?
        .into_bytes();
    if bytes.len() > 2048 {
        return Ok(None);
    }
    let target = String::from_utf8_lossy(&bytes).trim().to_string();
    let prefix = key.split("aliases/").next().unwrap_or_default();
    Ok((target.starts_with(&format!("{prefix}objects/"))).then_some(target))
}

impl From<ManifestError> for StorageError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Bucket(b) => StorageError::Bucket(b),
            other => StorageError::Manifest(other.to_string()),
        }
    }
}
