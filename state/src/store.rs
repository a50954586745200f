//! The sled database of one data directory and its typed operations.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::error::StateError;
use crate::model::{
    ApprovalRequest, DeliveryStatus, Drill, DrillId, Incident, IncidentId, LastRestore, NewEntry,
    OutboxItem, Page, PageId, RequestId, TimelineEntry,
};

/// The schema this build writes. Bump it with a migration in [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 1;

/// Store names in one place.
mod names {
    pub const META: &str = "meta";
    pub const INCIDENTS: &str = "incidents";
    pub const TIMELINE: &str = "timeline";
    pub const AUDIT: &str = "audit";
    pub const RESTORES: &str = "restores";
    pub const APPROVALS: &str = "approvals";
    pub const NEXT_REQUEST_KEY: &[u8] = b"next_request";
    pub const RPO_BREACHED_KEY: &[u8] = b"rpo_breached";
    pub const OUTBOX: &str = "outbox";
    pub const DRILLS: &str = "drills";
    pub const NEXT_DRILL_KEY: &[u8] = b"next_drill";
    pub const NEXT_OUTBOX_KEY: &[u8] = b"next_outbox";
    pub const PAGES: &str = "pages";
    pub const NEXT_PAGE_KEY: &[u8] = b"next_page";
    /// `page-once:<key>` in meta: the page created under that key (a declare pages once).
    pub const PAGE_ONCE_PREFIX: &str = "page-once:";
    pub const SCHEMA_KEY: &[u8] = b"schema_version";
    pub const NEXT_INCIDENT_KEY: &[u8] = b"next_incident";
    /// Sequence numbers of entries written here start above this (set by an import: sled's
    /// own id generator starts again at 0 in a new directory).
    pub const SEQ_FLOOR_KEY: &[u8] = b"seq_floor";
    /// Every tree, in the order an export reads them.
    pub const TREES: &[&str] = &[
        META, INCIDENTS, APPROVALS, OUTBOX, RESTORES, TIMELINE, AUDIT, DRILLS, PAGES,
    ];
    /// Trees added after exports began: an export without one imports it empty.
    pub const ADDED: &[&str] = &[PAGES];
    pub const LOCK_FILE: &str = "drbot.lock";
}

/// How long a reopen waits for a handle of this same process that sled is still closing.
const SLED_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled in `dir`, drbot's own lock already held. sled's lock can still be taken by a
/// handle of this process whose background threads are closing it: that is waited for,
/// briefly. A refusal to open for anything else, when a killed process left unfinished
/// snapshot files, is met by removing them and trying once more.
fn open_sled(dir: &Path) -> Result<sled::Db, StateError> {
    let sled_dir = dir.join("sled");
    let started = std::time::Instant::now();
    let mut tidied = false;
    loop {
        match sled::Config::new().path(&sled_dir).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io)) if is_lock_error(&io) => {
                if started.elapsed() >= SLED_RELEASE_WAIT {
                    return Err(StateError::Locked(dir.to_path_buf()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                let removed = if tidied {
                    0
                } else {
                    remove_unfinished_snapshots(&sled_dir).map_err(|source| StateError::Open {
                        path: dir.to_path_buf(),
                        source,
                    })?
                };
                tidied = true;
                if removed == 0 {
                    return Err(match e {
                        sled::Error::Io(source) => StateError::Open {
                            path: dir.to_path_buf(),
                            source,
                        },
                        other => StateError::Damaged {
                            path: dir.to_path_buf(),
                            source: other,
                        },
                    });
                }
            }
        }
    }
}

/// Removes the snapshot files sled was still writing when its process died
/// (`snap.<lsn>.generating`). sled renames a snapshot only after writing and syncing it, so
/// such a file is incomplete by definition; but sled 0.34.7 reads the newest `snap.*` file
/// whatever its suffix and then refuses to open ("Read corrupted data", upstream #1527).
/// Without it, sled reads the previous snapshot and replays its log: nothing is lost.
fn remove_unfinished_snapshots(sled_dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(sled_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A write in progress: holds the writers' share of the gate; when dropped (the write is
/// over), moves the generation.
struct Writing<'a> {
    _shared: std::sync::RwLockReadGuard<'a, ()>,
    generation: &'a std::sync::atomic::AtomicU64,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A stored key and value.
type Row = (Vec<u8>, Vec<u8>);

impl Head {
    fn of(i: &Incident) -> Head {
        Head {
            place: i.place.clone(),
            active: i.is_active(),
        }
    }
}

/// What an export document says it is.
const EXPORT_FORMAT: &str = "drbot-state";
/// The export document's layout version.
const EXPORT_VERSION: u64 = 1;

/// What an import brought in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// Incidents.
    pub incidents: usize,
    /// Approval requests.
    pub approvals: usize,
    /// Notifications (delivered or not).
    pub notifications: usize,
    /// Timeline and audit entries.
    pub entries: usize,
    /// When the export was taken, as it says.
    pub exported_at: String,
}

/// An import goes only where there is no state: a missing or empty directory, or a store
/// that holds no record (a `serve` started on the new host before the import).
fn ensure_empty(dir: &Path) -> Result<(), StateError> {
    let occupied = |why: &str| {
        Err(StateError::NotEmpty {
            path: dir.to_path_buf(),
            why: why.to_string(),
        })
    };
    let entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(e) => e.filter_map(Result::ok).map(|e| e.file_name()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StateError::Open {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    if entries.is_empty() {
        return Ok(());
    }
    if !entries.iter().any(|n| n == "sled") {
        return occupied("it holds files that are not drbot state");
    }
    let store = Store::open(dir)?;
    let records = store.incidents.len()
        + store.approvals.len()
        + store.outbox.len()
        + store.timeline.len()
        + store.audit.len()
        + store.restores.len();
    if records > 0 {
        return occupied("it already holds incidents or other records");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A migration from schema `n` to `n + 1`, at index `n - 1`.
type Migration = fn(&sled::Db) -> Result<(), StateError>;

/// Migrations in order. Schema 1 is the first; none yet.
const MIGRATIONS: &[Migration] = &[];

/// The incident state of one data directory. One per process: sled locks the directory.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    /// drbot's own lock on the directory, taken before sled is touched (released on drop).
    _lock: std::sync::Arc<std::fs::File>,
    db: sled::Db,
    meta: sled::Tree,
    incidents: sled::Tree,
    timeline: sled::Tree,
    audit: sled::Tree,
    restores: sled::Tree,
    approvals: sled::Tree,
    outbox: sled::Tree,
    drills: sled::Tree,
    pages: sled::Tree,
    /// Writers share it; an export takes it alone, so it reads one consistent state.
    gate: std::sync::Arc<std::sync::RwLock<()>>,
    /// Bumped by every write when it is over: `serve` exports when it moved, and a flush
    /// knows which writes it covers.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The generation the last flush covered (and the one-flush-at-a-time lock).
    flushed: std::sync::Arc<tokio::sync::Mutex<u64>>,
    /// See [`names::SEQ_FLOOR_KEY`].
    seq_floor: u64,
    /// Every incident's place and whether it is active, by id: built on first use, then
    /// kept by this process's writes (the directory lock makes it the only writer). Every
    /// command typed in a channel looks for the incident that channel sees; decoding every
    /// stored incident for it was most of a command's CPU under load (bot/benches/load.rs).
    heads: std::sync::Arc<std::sync::Mutex<Option<std::collections::BTreeMap<u64, Head>>>>,
}

/// What finding an incident by its place needs.
#[derive(Debug)]
struct Head {
    place: String,
    active: bool,
}

/// Runs `f`, which blocks, so that the async tasks of the worker calling it go on running:
/// on a multi-threaded tokio runtime the worker hands its tasks to another thread first
/// (`block_in_place`). Elsewhere (no runtime, a current-thread runtime, a blocking thread) `f`
/// just runs.
fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, migrating older schemas.
    ///
    /// A directory held by another process gives [`StateError::Locked`], never a panic.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        if !dir.exists() {
            // Incident state is for the people running incidents: owner-only.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StateError::Open {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let open_err = |source| StateError::Open {
            path: dir.to_path_buf(),
            source,
        };
        // Our own lock first: only the holder may tidy what a killed process left.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(names::LOCK_FILE))
            .map_err(open_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let db = open_sled(dir)?;
        let meta = db.open_tree(names::META)?;
        let seq_floor = meta
            .get(names::SEQ_FLOOR_KEY)?
            .map_or(0, |v| decode_u64(&v));
        let store = Store {
            path: dir.to_path_buf(),
            _lock: std::sync::Arc::new(lock),
            meta,
            incidents: db.open_tree(names::INCIDENTS)?,
            timeline: db.open_tree(names::TIMELINE)?,
            audit: db.open_tree(names::AUDIT)?,
            restores: db.open_tree(names::RESTORES)?,
            approvals: db.open_tree(names::APPROVALS)?,
            outbox: db.open_tree(names::OUTBOX)?,
            drills: db.open_tree(names::DRILLS)?,
            pages: db.open_tree(names::PAGES)?,
            gate: Default::default(),
            generation: Default::default(),
            flushed: Default::default(),
            seq_floor,
            heads: Default::default(),
            db,
        };
        store.migrate()?;
        Ok(store)
    }

    /// A writer's share of the gate (exports and flushes wait for it); the generation moves
    /// when the write is over.
    fn writing(&self) -> Writing<'_> {
        Writing {
            _shared: self.gate.read().unwrap_or_else(|p| p.into_inner()),
            generation: &self.generation,
        }
    }

    /// Runs a write: a writer's share of the gate, then `f`. When the gate is free, as it
    /// nearly always is, `f` runs at once (sled's transactions work in memory). When a flush
    /// (through its fsync) or an export holds the gate, the wait happens off the async
    /// workers: a worker blocked on it would stall every task queued on it (Discord's
    /// acknowledgements, the gateway, progress). Handing a worker's tasks over costs more
    /// than most writes take, so it is done only when there is a wait.
    fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        let shared = match self.gate.try_read() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return off_worker(|| {
                    let _w = self.writing();
                    f()
                });
            }
        };
        let _w = Writing {
            _shared: shared,
            generation: &self.generation,
        };
        f()
    }

    /// A number that changes whenever anything is written (in this process).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The whole state as one document (every tree, every key and value as stored), read
    /// while no write runs: restorable by [`Store::import`] on another host.
    pub fn export(&self, exported_at: &str) -> Result<Vec<u8>, StateError> {
        off_worker(|| {
            let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
            let mut trees = serde_json::Map::new();
            for name in names::TREES {
                let tree = self.db.open_tree(name)?;
                let mut rows = Vec::new();
                for kv in tree.iter() {
                    let (k, v) = kv?;
                    rows.push(serde_json::json!([hex(&k), hex(&v)]));
                }
                trees.insert(name.to_string(), serde_json::Value::Array(rows));
            }
            let doc = serde_json::json!({
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema": self.schema_version()?,
                "exported_at": exported_at,
                "trees": trees,
            });
            encode_plain(&doc)
        })
    }

    /// Fills the data directory `dir`, which must not hold any state yet, from an export.
    /// All or nothing: the state is built in a sibling directory and moved into place.
    pub fn import(dir: &Path, export: &[u8]) -> Result<ImportSummary, StateError> {
        let bad = |why: String| StateError::BadExport(why);
        let doc: serde_json::Value =
            serde_json::from_slice(export).map_err(|e| bad(format!("not JSON: {e}")))?;
        if doc["format"] != EXPORT_FORMAT {
            return Err(bad("it is not a drbot state export".to_string()));
        }
        if doc["version"].as_u64() != Some(EXPORT_VERSION) {
            return Err(bad(format!(
                "export version {} is not {EXPORT_VERSION}",
                doc["version"]
            )));
        }
        let schema = doc["schema"].as_u64().unwrap_or(0);
        if schema == 0 || schema > u64::from(SCHEMA_VERSION) {
            return Err(StateError::NewerSchema {
                path: dir.to_path_buf(),
                found: u32::try_from(schema).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION,
            });
        }
        let mut trees: Vec<(&str, Vec<Row>)> = Vec::new();
        for name in names::TREES {
            let empty = Vec::new();
            let rows = match doc["trees"][name].as_array() {
                Some(rows) => rows,
                None if names::ADDED.contains(name) && doc["trees"][name].is_null() => &empty,
                None => return Err(bad(format!("the {name} records are missing"))),
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let pair = (
                    row[0].as_str().and_then(unhex),
                    row[1].as_str().and_then(unhex),
                );
                let (Some(k), Some(v)) = pair else {
                    return Err(bad(format!("a {name} record is malformed")));
                };
                out.push((k, v));
            }
            trees.push((name, out));
        }
        ensure_empty(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".to_string());
        let staging = dir.with_file_name(format!(".{name}.import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let built = (|| {
            let store = Store::open(&staging)?;
            let mut max_seq = 0u64;
            for (name, rows) in &trees {
                let tree = store.db.open_tree(name)?;
                tree.clear()?;
                for (k, v) in rows {
                    if matches!(*name, names::TIMELINE | names::AUDIT) && k.len() >= 8 {
                        max_seq = max_seq.max(decode_u64(&k[k.len() - 8..]));
                    }
                    tree.insert(k.as_slice(), v.as_slice())?;
                }
            }
            let floor = max_seq + 1;
            let floor = floor.max(
                store
                    .meta
                    .get(names::SEQ_FLOOR_KEY)?
                    .map_or(0, |v| decode_u64(&v)),
            );
            store
                .meta
                .insert(names::SEQ_FLOOR_KEY, &floor.to_be_bytes())?;
            store.db.flush()?;
            let summary = ImportSummary {
                incidents: store.incidents.len(),
                approvals: store.approvals.len(),
                notifications: store.outbox.len(),
                entries: store.timeline.len() + store.audit.len(),
                exported_at: doc["exported_at"].as_str().unwrap_or_default().to_string(),
            };
            drop(store);
            // Migrations (an export of an older schema) run at this open.
            drop(Store::open(&staging)?);
            Ok::<_, StateError>(summary)
        })();
        let summary = match built {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| StateError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::rename(&staging, dir).map_err(|source| StateError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(summary)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version stored in the directory.
    pub fn schema_version(&self) -> Result<u32, StateError> {
        Ok(self
            .meta
            .get(names::SCHEMA_KEY)?
            .map(|v| decode_u32(&v))
            .unwrap_or(0))
    }

    fn migrate(&self) -> Result<(), StateError> {
        let mut found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == 0 {
            // A new directory starts at the current schema.
            self.meta
                .insert(names::SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            self.db.flush()?;
            return Ok(());
        }
        while found < SCHEMA_VERSION {
            if let Some(step) = MIGRATIONS.get(found as usize - 1) {
                step(&self.db)?;
            }
            found += 1;
            self.meta.insert(names::SCHEMA_KEY, &found.to_be_bytes())?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// Writes everything to disk. Call before telling a person that a change is recorded.
    ///
    /// One flush at a time, with no write running (sled 0.34 deadlocks when flushes run on
    /// its thread pool beside transactions under load: every `flush_async` waits for a read
    /// lock a waiting transaction blocks, and holds the threads that would finish the flush).
    /// Callers that arrive while a flush runs share the next one (a group commit).
    pub async fn flush(&self) -> Result<(), StateError> {
        let wanted = self.generation();
        let mut flushed = self.flushed.lock().await;
        if *flushed >= wanted {
            return Ok(());
        }
        let store = self.clone();
        let upto = tokio::task::spawn_blocking(move || store.flush_alone())
            .await
            .map_err(|e| {
                StateError::Sled(sled::Error::ReportableBug(format!(
                    "the flush stopped: {e}"
                )))
            })??;
        *flushed = upto;
        Ok(())
    }

    /// Writes everything to disk, blocking (for shutdown paths outside async code).
    pub fn flush_blocking(&self) -> Result<(), StateError> {
        off_worker(|| self.flush_alone().map(|_| ()))
    }

    /// Flushes with no write running; returns the generation it covers.
    fn flush_alone(&self) -> Result<u64, StateError> {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let upto = self.generation();
        self.db.flush()?;
        Ok(upto)
    }

    /// Creates an incident from `build` (given the new id) and writes its first timeline entries,
    /// in one transaction. `build` may run more than once.
    pub fn create_incident<E: From<StateError>>(
        &self,
        build: impl Fn(IncidentId) -> Result<(Incident, Vec<NewEntry>), E>,
    ) -> Result<Incident, E> {
        self.create_record(&self.incidents, names::NEXT_INCIDENT_KEY, |n| {
            build(IncidentId(n))
        })
        .inspect(|incident| self.written(incident))
    }

    /// Stores the record `build` makes from the next number under `next_key` in `tree`, with
    /// the entries it returns (on its incident's timeline, or the audit log), in one
    /// transaction. `build` may run more than once.
    fn create_record<T: Record, E: From<StateError>>(
        &self,
        tree: &sled::Tree,
        next_key: &[u8],
        build: impl Fn(u64) -> Result<(T, Vec<NewEntry>), E>,
    ) -> Result<T, E> {
        self.write(|| {
            let floor = self.seq_floor;
            let result = (&self.meta, tree, &self.timeline, &self.audit).transaction(
                |(meta, t, tl, audit)| {
                    let next = meta.get(next_key)?.map(|v| decode_u64(&v)).unwrap_or(1);
                    let (record, entries) =
                        build(next).map_err(ConflictableTransactionError::Abort)?;
                    meta.insert(next_key, &(next + 1).to_be_bytes())?;
                    t.insert(&next.to_be_bytes(), encode(&record)?)?;
                    append_entries(tl, audit, floor, record.incident(), entries)?;
                    Ok(record)
                },
            );
            unwrap_tx(result)
        })
    }

    /// Changes an incident with `change` and appends the timeline entries it returns, in one
    /// transaction: either both are stored or neither. `change` may run more than once.
    pub fn update_incident<E: From<StateError>>(
        &self,
        id: IncidentId,
        change: impl Fn(&mut Incident) -> Result<Vec<NewEntry>, E>,
    ) -> Result<Incident, E> {
        let incident = self.update_record(
            &self.incidents,
            id.0,
            || StateError::NoSuchIncident(id),
            change,
        )?;
        self.written(&incident);
        Ok(incident)
    }

    /// The incident with this id, if there is one.
    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StateError> {
        self.incidents
            .get(id.0.to_be_bytes())?
            .map(|raw| decode(&raw, || id.to_string()))
            .transpose()
    }

    /// Every incident, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>, StateError> {
        self.incidents
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&v, || format!("INC-{}", decode_u64(&k)))
            })
            .collect()
    }

    /// Incidents that are not closed, oldest first.
    pub fn active_incidents(&self) -> Result<Vec<Incident>, StateError> {
        Ok(self
            .incidents()?
            .into_iter()
            .filter(Incident::is_active)
            .collect())
    }

    /// The incidents in `place` that are not closed, oldest first. Only those are read.
    pub fn active_incidents_in(&self, place: &str) -> Result<Vec<Incident>, StateError> {
        let ids: Vec<u64> = {
            let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
            if heads.is_none() {
                let mut built = std::collections::BTreeMap::new();
                for i in self.incidents()? {
                    built.insert(i.id.0, Head::of(&i));
                }
                *heads = Some(built);
            }
            heads
                .iter()
                .flatten()
                .filter(|(_, h)| h.active && h.place == place)
                .map(|(id, _)| *id)
                .collect()
        };
        let mut out = Vec::new();
        for id in ids {
            // Checked again on the record itself: a write may have landed since.
            if let Some(i) = self.incident(IncidentId(id))?
                && i.is_active()
                && i.place == place
            {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Keeps the heads up to date with an incident just written.
    fn written(&self, incident: &Incident) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = heads.as_mut() {
            h.insert(incident.id.0, Head::of(incident));
        }
    }

    /// Appends one entry to an incident's timeline.
    pub fn append_timeline(
        &self,
        id: IncidentId,
        entry: NewEntry,
    ) -> Result<TimelineEntry, StateError> {
        self.write(|| {
            let floor = self.seq_floor;
            let result = (&self.incidents, &self.timeline).transaction(|(inc, tl)| {
                if inc.get(id.0.to_be_bytes())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(
                        StateError::NoSuchIncident(id),
                    ));
                }
                append_in(tl, floor, Some(id), entry.clone())
            });
            unwrap_tx(result)
        })
    }

    /// An incident's timeline, in the order it was written.
    pub fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEntry>, StateError> {
        self.timeline
            .scan_prefix(id.0.to_be_bytes())
            .map(|kv| {
                let (_, v) = kv?;
                decode(&v, || format!("{id} timeline entry"))
            })
            .collect()
    }

    /// Every incident's timeline entries written after `after` (a `seq`), in the order they
    /// were written: what a watcher has not seen yet.
    pub fn timeline_since(&self, after: u64) -> Result<Vec<TimelineEntry>, StateError> {
        let mut out: Vec<TimelineEntry> = Vec::new();
        for kv in self.timeline.iter() {
            let (_, v) = kv?;
            let e: TimelineEntry = decode(&v, || "timeline entry".to_string())?;
            if e.seq > after {
                out.push(e);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// Appends an entry to the audit log (commands run outside any incident).
    pub fn append_audit(&self, entry: NewEntry) -> Result<TimelineEntry, StateError> {
        self.append_audit_about(None, entry)
    }

    /// Appends an entry to the audit log that concerns `incident` without belonging on its
    /// timeline (a refused command typed in it).
    pub fn append_audit_about(
        &self,
        incident: Option<IncidentId>,
        entry: NewEntry,
    ) -> Result<TimelineEntry, StateError> {
        self.write(|| {
            let seq = self.seq_floor + self.db.generate_id()?;
            let stored = TimelineEntry::from_new(seq, incident, entry);
            self.audit
                .insert(seq.to_be_bytes(), encode_plain(&stored)?)?;
            Ok(stored)
        })
    }

    /// Creates an approval request from `build` (given the new id), with timeline entries on
    /// its incident (or the audit log), in one transaction.
    pub fn create_approval<E: From<StateError>>(
        &self,
        build: impl Fn(RequestId) -> Result<(ApprovalRequest, Vec<NewEntry>), E>,
    ) -> Result<ApprovalRequest, E> {
        self.create_record(&self.approvals, names::NEXT_REQUEST_KEY, |n| {
            build(RequestId(n))
        })
    }

    /// Changes an approval request with `change`, writing its entries with it, in one
    /// transaction. `change` sees the stored request, so a status check inside it cannot race
    /// with another decision. It may run more than once.
    pub fn update_approval<E: From<StateError>>(
        &self,
        id: RequestId,
        change: impl Fn(&mut ApprovalRequest) -> Result<Vec<NewEntry>, E>,
    ) -> Result<ApprovalRequest, E> {
        self.update_record(
            &self.approvals,
            id.0,
            || StateError::NoSuchRequest(id),
            change,
        )
    }

    /// The approval request with this id.
    pub fn approval(&self, id: RequestId) -> Result<Option<ApprovalRequest>, StateError> {
        self.approvals
            .get(id.0.to_be_bytes())?
            .map(|raw| decode(&raw, || id.to_string()))
            .transpose()
    }

    /// Every approval request, oldest first.
    pub fn approvals(&self) -> Result<Vec<ApprovalRequest>, StateError> {
        self.approvals
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&v, || format!("A-{}", decode_u64(&k)))
            })
            .collect()
    }

    /// Queues notifications (built by `build` from their ids) with their timeline entries, in
    /// one transaction: a notification is either queued and recorded, or neither.
    pub fn enqueue<E: From<StateError>>(
        &self,
        incident: Option<IncidentId>,
        count: usize,
        build: impl Fn(&[u64]) -> Result<(Vec<OutboxItem>, Vec<NewEntry>), E>,
    ) -> Result<Vec<OutboxItem>, E> {
        self.write(|| {
            let floor = self.seq_floor;
            let result = (&self.meta, &self.outbox, &self.timeline, &self.audit).transaction(
                |(meta, ob, tl, audit)| {
                    let next = meta
                        .get(names::NEXT_OUTBOX_KEY)?
                        .map(|v| decode_u64(&v))
                        .unwrap_or(1);
                    let ids: Vec<u64> = (next..next + count as u64).collect();
                    let (items, entries) =
                        build(&ids).map_err(ConflictableTransactionError::Abort)?;
                    meta.insert(names::NEXT_OUTBOX_KEY, &(next + count as u64).to_be_bytes())?;
                    for item in &items {
                        ob.insert(&item.id.to_be_bytes(), encode(item)?)?;
                    }
                    append_entries(tl, audit, floor, incident, entries)?;
                    Ok(items)
                },
            );
            unwrap_tx(result)
        })
    }

    /// Writes a page with the deliveries and timeline entries of its newest round, in one
    /// transaction: a page and what it sends are stored together, or neither is.
    ///
    /// `id` picks the page to change (`None`: a new one). `once`, for a new page, is a key it
    /// is created under at most once: a second call with it returns the page already made and
    /// writes nothing. `build` gets the page's id, the page as stored (for a change), and the
    /// first free outbox id; it returns the page, the outbox items numbered from that id, and
    /// the entries. It may run more than once, and must not read the store (sled holds such a
    /// read until the transaction ends): read what it needs before.
    #[allow(clippy::type_complexity)]
    pub fn write_page<E: From<StateError>>(
        &self,
        id: Option<PageId>,
        once: Option<&str>,
        build: impl Fn(PageId, Option<Page>, u64) -> Result<(Page, Vec<OutboxItem>, Vec<NewEntry>), E>,
    ) -> Result<(Page, Vec<OutboxItem>), E> {
        self.write(|| {
            let floor = self.seq_floor;
            let once_key = once.map(|k| format!("{}{k}", names::PAGE_ONCE_PREFIX));
            let result = (
                &self.meta,
                &self.pages,
                &self.outbox,
                &self.timeline,
                &self.audit,
            )
                .transaction(|(meta, pages, ob, tl, audit)| {
                    if let Some(k) = &once_key
                        && let Some(done) = meta.get(k.as_bytes())?
                    {
                        let raw = pages.get(done)?.ok_or_else(|| {
                            ConflictableTransactionError::Abort(E::from(StateError::Inconsistent(
                                format!("{k} names a page that is not stored"),
                            )))
                        })?;
                        let page: Page = decode(&raw, || k.clone())
                            .map_err(|e| ConflictableTransactionError::Abort(E::from(e)))?;
                        return Ok((page, Vec::new()));
                    }
                    let (id, stored) = match id {
                        Some(id) => {
                            let raw = pages.get(id.0.to_be_bytes())?.ok_or_else(|| {
                                ConflictableTransactionError::Abort(E::from(
                                    StateError::NoSuchPage(id),
                                ))
                            })?;
                            let page: Page = decode(&raw, || id.to_string())
                                .map_err(|e| ConflictableTransactionError::Abort(E::from(e)))?;
                            (id, Some(page))
                        }
                        None => {
                            let next = meta
                                .get(names::NEXT_PAGE_KEY)?
                                .map(|v| decode_u64(&v))
                                .unwrap_or(1);
                            meta.insert(names::NEXT_PAGE_KEY, &(next + 1).to_be_bytes())?;
                            (PageId(next), None)
                        }
                    };
                    let first = meta
                        .get(names::NEXT_OUTBOX_KEY)?
                        .map(|v| decode_u64(&v))
                        .unwrap_or(1);
                    let (page, items, entries) =
                        build(id, stored, first).map_err(ConflictableTransactionError::Abort)?;
                    for (n, item) in items.iter().enumerate() {
                        if item.id != first + n as u64 {
                            return Err(ConflictableTransactionError::Abort(E::from(
                                StateError::Inconsistent(format!(
                                    "{id}'s deliveries are not numbered from {first}"
                                )),
                            )));
                        }
                        ob.insert(&item.id.to_be_bytes(), encode(item)?)?;
                    }
                    meta.insert(
                        names::NEXT_OUTBOX_KEY,
                        &(first + items.len() as u64).to_be_bytes(),
                    )?;
                    pages.insert(&id.0.to_be_bytes(), encode(&page)?)?;
                    if let Some(k) = &once_key {
                        meta.insert(k.as_bytes(), &id.0.to_be_bytes())?;
                    }
                    append_entries(tl, audit, floor, page.incident, entries)?;
                    Ok((page, items))
                });
            unwrap_tx(result)
        })
    }

    /// The page created under `once` by [`Store::write_page`], if one was.
    pub fn page_once(&self, once: &str) -> Result<Option<PageId>, StateError> {
        Ok(self
            .meta
            .get(format!("{}{once}", names::PAGE_ONCE_PREFIX).as_bytes())?
            .map(|v| PageId(decode_u64(&v))))
    }

    /// The page with this id.
    pub fn page(&self, id: PageId) -> Result<Option<Page>, StateError> {
        self.pages
            .get(id.0.to_be_bytes())?
            .map(|raw| decode(&raw, || id.to_string()))
            .transpose()
    }

    /// Every page, oldest first.
    pub fn pages(&self) -> Result<Vec<Page>, StateError> {
        self.pages
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&v, || format!("PAGE-{}", decode_u64(&k)))
            })
            .collect()
    }

    /// Notifications still to deliver, oldest first.
    pub fn pending_outbox(&self) -> Result<Vec<OutboxItem>, StateError> {
        Ok(self
            .outbox()?
            .into_iter()
            .filter(|i| i.status == DeliveryStatus::Pending)
            .collect())
    }

    /// Every notification, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StateError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&v, || format!("notification {}", decode_u64(&k)))
            })
            .collect()
    }

    /// Records an attempt's outcome with its timeline entries, in one transaction.
    pub fn update_outbox<E: From<StateError>>(
        &self,
        id: u64,
        change: impl Fn(&mut OutboxItem) -> Result<Vec<NewEntry>, E>,
    ) -> Result<OutboxItem, E> {
        self.update_record(
            &self.outbox,
            id,
            || StateError::NoSuchNotification(id),
            change,
        )
    }

    /// Reads a record, changes it with `change`, writes it back with the entries `change`
    /// returns on its incident's timeline (or the audit log), in one transaction. `change`
    /// may run more than once.
    fn update_record<T: Record, E: From<StateError>>(
        &self,
        tree: &sled::Tree,
        id: u64,
        missing: impl Fn() -> StateError,
        change: impl Fn(&mut T) -> Result<Vec<NewEntry>, E>,
    ) -> Result<T, E> {
        self.write(|| {
            let floor = self.seq_floor;
            let result = (tree, &self.timeline, &self.audit).transaction(|(t, tl, audit)| {
                let key = id.to_be_bytes();
                let Some(raw) = t.get(key)? else {
                    return Err(ConflictableTransactionError::Abort(E::from(missing())));
                };
                let mut record: T = decode(&raw, || format!("{} {id}", T::WHAT))
                    .map_err(|e| ConflictableTransactionError::Abort(E::from(e)))?;
                let entries = change(&mut record).map_err(ConflictableTransactionError::Abort)?;
                t.insert(&key, encode(&record)?)?;
                append_entries(tl, audit, floor, record.incident(), entries)?;
                Ok(record)
            });
            unwrap_tx(result)
        })
    }

    /// Whether the RPO watch last found the newest database backup too old.
    pub fn rpo_breached(&self) -> Result<bool, StateError> {
        self.rpo_breached_of("database")
    }

    /// Records the RPO watch's finding for the database.
    pub fn set_rpo_breached(&self, breached: bool) -> Result<(), StateError> {
        self.set_rpo_breached_of("database", breached)
    }

    /// The meta key of a system's RPO flag (the database's is the one older stores have).
    fn rpo_key(system: &str) -> Vec<u8> {
        if system == "database" {
            names::RPO_BREACHED_KEY.to_vec()
        } else {
            [names::RPO_BREACHED_KEY, b":", system.as_bytes()].concat()
        }
    }

    /// Whether the RPO watch last found the newest backup of `system` (`storage`) too old.
    pub fn rpo_breached_of(&self, system: &str) -> Result<bool, StateError> {
        Ok(self
            .meta
            .get(Self::rpo_key(system))?
            .is_some_and(|v| v.first() == Some(&1)))
    }

    /// Records the RPO watch's finding for `system`.
    pub fn set_rpo_breached_of(&self, system: &str, breached: bool) -> Result<(), StateError> {
        self.write(|| {
            self.meta
                .insert(Self::rpo_key(system), &[u8::from(breached)])?;
            Ok(())
        })
    }

    /// A small note drbot keeps for itself (`search-reindex`: when it started and from what).
    pub fn note(&self, name: &str) -> Result<Option<String>, StateError> {
        let key = [b"note:".as_slice(), name.as_bytes()].concat();
        Ok(self
            .meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps a small note under `name`.
    pub fn set_note(&self, name: &str, text: &str) -> Result<(), StateError> {
        self.write(|| {
            let key = [b"note:".as_slice(), name.as_bytes()].concat();
            self.meta.insert(key, text.as_bytes())?;
            Ok(())
        })
    }

    /// When scheduled work named `name` (`storage-snapshot`) was last tried.
    pub fn last_run(&self, name: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let key = [b"last_run:".as_slice(), name.as_bytes()].concat();
        Ok(self
            .meta
            .get(key)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .and_then(|b| DateTime::from_timestamp(i64::from_be_bytes(b), 0)))
    }

    /// Records when scheduled work named `name` was tried.
    pub fn set_last_run(&self, name: &str, at: DateTime<Utc>) -> Result<(), StateError> {
        self.write(|| {
            let key = [b"last_run:".as_slice(), name.as_bytes()].concat();
            self.meta.insert(key, &at.timestamp().to_be_bytes())?;
            Ok(())
        })
    }

    /// Remembers the backup last restored into a target (so `/db verify` can compare with it).
    pub fn record_restore(&self, target: &str, restore: &LastRestore) -> Result<(), StateError> {
        self.write(|| {
            self.restores
                .insert(target.as_bytes(), encode_plain(restore)?)?;
            Ok(())
        })
    }

    /// The last restore of every target, by target name.
    pub fn restores(&self) -> Result<Vec<(String, LastRestore)>, StateError> {
        self.restores
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let target = String::from_utf8_lossy(&k).into_owned();
                let r = decode(&v, || format!("last restore of {target}"))?;
                Ok((target, r))
            })
            .collect()
    }

    /// The backup last restored into a target, if any.
    pub fn last_restore(&self, target: &str) -> Result<Option<LastRestore>, StateError> {
        self.restores
            .get(target.as_bytes())?
            .map(|raw| decode(&raw, || format!("last restore of {target}")))
            .transpose()
    }

    /// Creates a drill from `build` (given the new id), with its entries in the audit log, in
    /// one transaction. `build` may run more than once.
    pub fn create_drill<E: From<StateError>>(
        &self,
        build: impl Fn(DrillId) -> Result<(Drill, Vec<NewEntry>), E>,
    ) -> Result<Drill, E> {
        self.create_record(&self.drills, names::NEXT_DRILL_KEY, |n| build(DrillId(n)))
    }

    /// Changes a drill with `change`, writing the audit entries it returns with it, in one
    /// transaction. `change` may run more than once.
    pub fn update_drill<E: From<StateError>>(
        &self,
        id: DrillId,
        change: impl Fn(&mut Drill) -> Result<Vec<NewEntry>, E>,
    ) -> Result<Drill, E> {
        self.update_record(&self.drills, id.0, || StateError::NoSuchDrill(id), change)
    }

    /// The drill with this id.
    pub fn drill(&self, id: DrillId) -> Result<Option<Drill>, StateError> {
        self.drills
            .get(id.0.to_be_bytes())?
            .map(|raw| decode(&raw, || id.to_string()))
            .transpose()
    }

    /// Every drill, oldest first.
    pub fn drills(&self) -> Result<Vec<Drill>, StateError> {
        self.drills
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&v, || format!("DRILL-{}", decode_u64(&k)))
            })
            .collect()
    }

    /// The audit log's entries about `incident`, oldest first.
    pub fn audit_about(&self, incident: IncidentId) -> Result<Vec<TimelineEntry>, StateError> {
        Ok(self
            .audit()?
            .into_iter()
            .filter(|e| e.incident == Some(incident))
            .collect())
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<TimelineEntry>, StateError> {
        self.audit
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                decode(&v, || "audit entry".to_string())
            })
            .collect()
    }
}

/// A record kept in its own tree by a number, whose changes are recorded on its incident's
/// timeline (or the audit log).
trait Record: serde::Serialize + serde::de::DeserializeOwned {
    /// What it is called in messages.
    const WHAT: &'static str;
    /// The incident its entries belong to.
    fn incident(&self) -> Option<IncidentId>;
}

impl Record for Incident {
    const WHAT: &'static str = "incident";
    fn incident(&self) -> Option<IncidentId> {
        Some(self.id)
    }
}

impl Record for ApprovalRequest {
    const WHAT: &'static str = "approval request";
    fn incident(&self) -> Option<IncidentId> {
        self.incident
    }
}

impl Record for Drill {
    const WHAT: &'static str = "drill";
    fn incident(&self) -> Option<IncidentId> {
        None
    }
}

impl Record for OutboxItem {
    const WHAT: &'static str = "notification";
    fn incident(&self) -> Option<IncidentId> {
        self.incident
    }
}

/// Appends entries to an incident's timeline, or to the audit log when there is no incident.
fn append_entries<E>(
    tl: &TransactionalTree,
    audit: &TransactionalTree,
    floor: u64,
    incident: Option<IncidentId>,
    entries: Vec<NewEntry>,
) -> Result<(), ConflictableTransactionError<E>> {
    for e in entries {
        match incident {
            Some(id) => {
                append_in(tl, floor, Some(id), e)?;
            }
            None => {
                let seq = floor + audit.generate_id()?;
                let stored = TimelineEntry::from_new(seq, None, e);
                audit.insert(&seq.to_be_bytes(), encode(&stored)?)?;
            }
        }
    }
    Ok(())
}

/// Appends a timeline entry inside a transaction, keyed by incident then sequence number.
fn append_in<E>(
    tl: &TransactionalTree,
    floor: u64,
    incident: Option<IncidentId>,
    entry: NewEntry,
) -> Result<TimelineEntry, ConflictableTransactionError<E>> {
    let seq = floor + tl.generate_id()?;
    let stored = TimelineEntry::from_new(seq, incident, entry);
    let mut key = incident.map(|i| i.0).unwrap_or(0).to_be_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    tl.insert(key, encode(&stored)?)?;
    Ok(stored)
}

fn unwrap_tx<T, E: From<StateError>>(r: Result<T, TransactionError<E>>) -> Result<T, E> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(E::from(StateError::Sled(e))),
    }
}

fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

fn encode<T: serde::Serialize, E>(v: &T) -> Result<Vec<u8>, ConflictableTransactionError<E>> {
    // Serialising our own plain structs cannot fail; map it to a storage error just in case.
    serde_json::to_vec(v).map_err(|e| {
        ConflictableTransactionError::Storage(sled::Error::Unsupported(format!(
            "encoding a record: {e}"
        )))
    })
}

fn encode_plain<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(v)
        .map_err(|e| StateError::Sled(sled::Error::Unsupported(format!("encoding a record: {e}"))))
}

fn decode<T: serde::de::DeserializeOwned>(
    raw: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StateError> {
    serde_json::from_slice(raw).map_err(|source| StateError::Corrupt {
        what: what(),
        source,
    })
}

fn decode_u64(raw: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = raw.len().min(8);
    b[8 - n..].copy_from_slice(&raw[raw.len() - n..]);
    u64::from_be_bytes(b)
}

fn decode_u32(raw: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = raw.len().min(4);
    b[4 - n..].copy_from_slice(&raw[raw.len() - n..]);
    u32::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntryKind, IncidentStatus, Proof, StepRecord, StepState};
    use chrono::{TimeZone, Utc};

    fn entry(text: &str) -> NewEntry {
        NewEntry {
            at: Utc
                .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
                .single()
                .expect("test setup"),
            actor: "alice".into(),
            proof: Proof::Proven,
            kind: EntryKind::Note,
            text: text.into(),
        }
    }

    #[test]
    fn an_unfinished_snapshot_left_by_a_kill_does_not_stop_the_store_opening() {
        let dir = tempfile::tempdir().expect("test setup");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .append_audit(entry("acknowledged before the kill"))
                .expect("write");
            store.db.flush().expect("flush");
        }
        // What a kill -9 while sled writes a snapshot leaves: the file it had not renamed yet,
        // sorting after every finished one.
        let sled_dir = dir.path().join("sled");
        std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFF0.generating"), b"").expect("setup");
        // sled alone refuses that directory: the test's premise.
        assert!(sled::Config::new().path(&sled_dir).open().is_err());
        std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFF0.generating"), b"").expect("setup");
        let store = Store::open(dir.path()).expect("opens after the kill");
        let texts: Vec<String> = store
            .audit()
            .expect("read")
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(texts, ["acknowledged before the kill"]);
        assert!(!sled_dir.join("snap.FFFFFFFFFFFFFFF0.generating").exists());
        // A second open while it is held is refused, and tidies nothing.
        std::fs::write(sled_dir.join("snap.FFFFFFFFFFFFFFF1.generating"), b"").expect("setup");
        assert!(matches!(
            Store::open(dir.path()),
            Err(StateError::Locked(_))
        ));
        assert!(sled_dir.join("snap.FFFFFFFFFFFFFFF1.generating").exists());
    }

    fn incident(id: IncidentId) -> Incident {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
            .single()
            .expect("test setup");
        Incident {
            id,
            scenario: "database".into(),
            severity: "sev1".into(),
            title: "db down".into(),
            place: "console".into(),
            status: IncidentStatus::Open,
            declared_at: at,
            declared_by: "alice".into(),
            resolved_at: None,
            resolved_by: None,
            closed_at: None,
            closed_by: None,
            roles: Default::default(),
            role_ids: Default::default(),
            steps: vec![
                StepRecord::pending("assess"),
                StepRecord::pending("stop-apps"),
            ],
            last_activity: at,
            watch: Default::default(),
        }
    }

    /// A write that must wait for the gate (a flush's fsync, an export) waits off the async
    /// worker: the worker's other tasks go on. One worker, so a blocked one would run nothing.
    #[test]
    fn a_write_waiting_for_a_flush_does_not_hold_up_the_worker() {
        let dir = tempfile::tempdir().expect("test setup");
        let s = Store::open(dir.path()).expect("test setup");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test setup");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let gate = s.gate.clone();
        let holder = std::thread::spawn(move || {
            let _alone = gate.write().expect("test setup");
            held_tx.send(()).expect("test setup");
            std::thread::sleep(std::time::Duration::from_millis(500));
        });
        held_rx.recv().expect("test setup");
        let (wrote, ticked) = rt.block_on(async {
            let store = s.clone();
            let write = tokio::spawn(async move {
                store.append_audit(entry("waited")).expect("write");
                std::time::Instant::now()
            });
            let tick = tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                std::time::Instant::now()
            });
            (
                write.await.expect("write task"),
                tick.await.expect("tick task"),
            )
        });
        holder.join().expect("test setup");
        assert!(ticked < wrote, "the worker waited with the write");
        assert_eq!(s.audit().expect("audit").len(), 1);
    }

    #[test]
    fn the_incidents_a_place_sees_follow_every_write_and_a_reopening() {
        let dir = tempfile::tempdir().expect("test setup");
        let ids = |v: Vec<Incident>| v.into_iter().map(|i| i.id.0).collect::<Vec<_>>();
        let in_place = |place: &'static str| {
            move |id| {
                let mut i = incident(id);
                i.place = place.into();
                Ok::<_, StateError>((i, vec![]))
            }
        };
        {
            let s = Store::open(dir.path()).expect("test setup");
            s.create_incident(in_place("discord:1"))
                .expect("test setup");
            s.create_incident(in_place("discord:2"))
                .expect("test setup");
            // The first listing builds the index from what is stored.
            assert_eq!(ids(s.active_incidents_in("discord:1").expect("list")), [1]);
            // Later writes keep it: a new incident, another place's, one closed.
            s.create_incident(in_place("discord:1"))
                .expect("test setup");
            s.create_incident(in_place("console")).expect("test setup");
            assert_eq!(
                ids(s.active_incidents_in("discord:1").expect("list")),
                [1, 3]
            );
            s.update_incident(IncidentId(1), |i| {
                i.status = IncidentStatus::Closed;
                Ok::<_, StateError>(vec![])
            })
            .expect("test setup");
            assert_eq!(ids(s.active_incidents_in("discord:1").expect("list")), [3]);
            assert_eq!(ids(s.active_incidents_in("discord:2").expect("list")), [2]);
            assert_eq!(
                ids(s.active_incidents_in("discord:9").expect("list")),
                [0u64; 0]
            );
        }
        // A reopened store finds the same from disk.
        let s = Store::open(dir.path()).expect("test setup");
        assert_eq!(ids(s.active_incidents_in("discord:1").expect("list")), [3]);
        assert_eq!(ids(s.active_incidents_in("console").expect("list")), [4]);
    }

    #[tokio::test]
    async fn incidents_and_timeline_survive_reopening() {
        let dir = tempfile::tempdir().expect("test setup");
        {
            let s = Store::open(dir.path()).expect("test setup");
            let a = s
                .create_incident(|id| Ok::<_, StateError>((incident(id), vec![entry("declared")])))
                .expect("test setup");
            let b = s
                .create_incident(|id| Ok::<_, StateError>((incident(id), vec![])))
                .expect("test setup");
            assert_eq!((a.id, b.id), (IncidentId(1), IncidentId(2)));
            s.update_incident(a.id, |i| {
                i.step_mut("stop-apps").expect("test setup").state = StepState::Done;
                Ok::<_, StateError>(vec![entry("stopped"), entry("second")])
            })
            .expect("test setup");
            s.append_timeline(b.id, entry("other incident"))
                .expect("test setup");
            s.append_audit(entry("outside")).expect("test setup");
            s.flush().await.expect("test setup");
        }
        let s = Store::open(dir.path()).expect("test setup");
        let a = s
            .incident(IncidentId(1))
            .expect("test setup")
            .expect("test setup");
        assert_eq!(
            a.step("stop-apps").expect("test setup").state,
            StepState::Done
        );
        let texts: Vec<_> = s
            .timeline(IncidentId(1))
            .expect("test setup")
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(texts, ["declared", "stopped", "second"]);
        assert_eq!(s.timeline(IncidentId(2)).expect("test setup").len(), 1);
        assert_eq!(s.audit().expect("test setup")[0].text, "outside");
        assert_eq!(s.active_incidents().expect("test setup").len(), 2);
        // Ids keep counting after a restart.
        let c = s
            .create_incident(|id| Ok::<_, StateError>((incident(id), vec![])))
            .expect("test setup");
        assert_eq!(c.id, IncidentId(3));
    }

    #[derive(Debug)]
    enum TestErr {
        Rejected,
        State(StateError),
    }
    impl From<StateError> for TestErr {
        fn from(e: StateError) -> Self {
            TestErr::State(e)
        }
    }

    #[test]
    fn a_rejected_change_writes_nothing() {
        let dir = tempfile::tempdir().expect("test setup");
        let s = Store::open(dir.path()).expect("test setup");
        let a = s
            .create_incident(|id| Ok::<_, StateError>((incident(id), vec![])))
            .expect("test setup");
        let r = s.update_incident(a.id, |i| {
            i.title = "changed".into();
            Err::<Vec<NewEntry>, _>(TestErr::Rejected)
        });
        assert!(matches!(r, Err(TestErr::Rejected)));
        assert_eq!(
            s.incident(a.id)
                .expect("test setup")
                .expect("test setup")
                .title,
            "db down"
        );
        assert!(s.timeline(a.id).expect("test setup").is_empty());
        let missing = s.update_incident(IncidentId(99), |_| Ok::<_, TestErr>(vec![]));
        assert!(matches!(
            missing,
            Err(TestErr::State(StateError::NoSuchIncident(IncidentId(99))))
        ));
        assert!(s.append_timeline(IncidentId(99), entry("x")).is_err());
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("test setup");
        let _first = Store::open(dir.path()).expect("test setup");
        let second = Store::open(dir.path());
        match second {
            Err(StateError::Locked(p)) => assert_eq!(p, dir.path()),
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("test setup");
        {
            let s = Store::open(dir.path()).expect("test setup");
            assert_eq!(s.schema_version().expect("test setup"), SCHEMA_VERSION);
            s.meta
                .insert(names::SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
                .expect("test setup");
            s.flush_blocking().expect("test setup");
        }
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StateError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer drbot"));
    }

    #[test]
    fn an_export_imported_elsewhere_is_the_same_state_and_goes_on_from_there() {
        let old = tempfile::tempdir().expect("test setup");
        let store = Store::open(old.path()).expect("open");
        let inc = store
            .create_incident(|id| Ok::<_, StateError>((incident(id), vec![entry("declared")])))
            .expect("create");
        for n in 0..5 {
            store
                .append_timeline(inc.id, entry(&format!("note {n}")))
                .expect("append");
        }
        store.append_audit(entry("outside")).expect("audit");
        let before = store.generation();
        let export = store.export("2026-12-01T00:00:00Z").expect("export");
        assert_eq!(store.generation(), before, "an export writes nothing");

        let new_host = tempfile::tempdir().expect("test setup");
        let dir = new_host.path().join("data");
        let summary = Store::import(&dir, &export).expect("import");
        assert_eq!((summary.incidents, summary.entries), (1, 7));
        let imported = Store::open(&dir).expect("open imported");
        assert_eq!(
            imported.timeline(inc.id).expect("read"),
            store.timeline(inc.id).expect("read")
        );
        assert_eq!(
            imported.audit().expect("read"),
            store.audit().expect("read")
        );
        // New entries sort after the imported ones and overwrite none of them.
        imported
            .append_timeline(inc.id, entry("after the move"))
            .expect("append");
        let texts: Vec<String> = imported
            .timeline(inc.id)
            .expect("read")
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(
            texts,
            [
                "declared",
                "note 0",
                "note 1",
                "note 2",
                "note 3",
                "note 4",
                "after the move"
            ]
        );
        let next = imported
            .create_incident(|id| Ok::<_, StateError>((incident(id), vec![])))
            .expect("create");
        assert_eq!(next.id, IncidentId(2));
        drop(imported);

        // Never over state that exists; the directory is left as it was.
        let again = Store::import(&dir, &export).expect_err("occupied");
        assert!(matches!(again, StateError::NotEmpty { .. }), "{again}");
        let reopened = Store::open(&dir).expect("still opens");
        assert_eq!(reopened.timeline(inc.id).expect("read").len(), 7);
    }

    #[test]
    fn a_damaged_export_is_refused_and_leaves_nothing_behind() {
        let old = tempfile::tempdir().expect("test setup");
        let store = Store::open(old.path()).expect("open");
        store.append_audit(entry("x")).expect("audit");
        let export = store.export("t").expect("export");
        let text = String::from_utf8(export.clone()).expect("utf8");
        let new_host = tempfile::tempdir().expect("test setup");
        let dir = new_host.path().join("data");
        let cases: Vec<Vec<u8>> = vec![
            export[..export.len() / 2].to_vec(),
            b"{}".to_vec(),
            text.replace("\"schema\":1", "\"schema\":99").into_bytes(),
            text.replace("\"audit\":[[\"", "\"audit\":[[\"zz")
                .into_bytes(),
            text.replace("\"outbox\":[]", "\"outbox\":7").into_bytes(),
        ];
        for bad in cases {
            assert!(Store::import(&dir, &bad).is_err());
            assert!(!dir.exists());
            let leftovers = std::fs::read_dir(new_host.path()).expect("read").count();
            assert_eq!(leftovers, 0);
        }
    }

    #[test]
    fn a_damaged_store_says_so_and_how_to_come_back() {
        let dir = tempfile::tempdir().expect("test setup");
        {
            let store = Store::open(dir.path()).expect("open");
            store.append_audit(entry("x")).expect("write");
            store.flush_blocking().expect("flush");
        }
        // sled's config record, overwritten: not something a kill leaves.
        std::fs::write(dir.path().join("sled").join("conf"), b"\x00garbage\xff").expect("setup");
        let e = Store::open(dir.path()).expect_err("damaged");
        let text = e.to_string();
        assert!(
            text.contains("is damaged") && text.contains("drbot state import latest"),
            "{text}"
        );
    }
}
