//! `/db backup`: pg_dump (plain, `--clean --if-exists`) → xz → age → multipart upload,
//! streaming, plus `<name>.manifest.json` with row counts, sizes, the object's sha256, the
//! pg_dump version and the start and end times.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use drbot_state::{EntryKind, StepState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::catalogue::{MANIFEST_SUFFIX, backup_bucket, backup_name, size};
use super::splitter::{Piece, Splitter};
use crate::bucket::{Bucket, PART_SIZE};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::pg::Target;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;

/// Rows and bytes of one table's data in a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStat {
    /// Rows.
    pub rows: u64,
    /// Bytes of COPY data.
    pub bytes: u64,
}

/// What `/db backup` writes beside each backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// The backup's key.
    pub key: String,
    /// Size of the stored object.
    pub size: u64,
    /// sha256 of the stored object, hex.
    pub sha256: String,
    /// Size of the SQL inside.
    pub sql_bytes: u64,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
    /// The server's version.
    #[serde(default)]
    pub server_version: Option<String>,
    /// When pg_dump started.
    pub started_at: DateTime<Utc>,
    /// When the upload finished.
    pub finished_at: DateTime<Utc>,
    /// xz preset used.
    pub xz_level: u32,
    /// Rows and bytes per table, by the name pg_dump wrote.
    pub tables: BTreeMap<String, TableStat>,
    /// When it was read back from the bucket whole through the restore's preflight and found
    /// to hold what this manifest says (`[backup] verify_after_upload`).
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
    /// Why reading it back failed, when it did.
    #[serde(default)]
    pub verify_error: Option<String>,
}

impl Manifest {
    /// When the stored object is not the size its manifest recorded: what that means, in words
    /// (shorter: truncated at that byte; longer: something else was written there).
    pub fn size_problem(&self, object_size: u64) -> Option<String> {
        if object_size < self.size {
            Some(format!(
                "truncated: {object_size} of the {} bytes its manifest records, so the upload or copy is incomplete; pick the previous backup",
                self.size
            ))
        } else if object_size > self.size {
            Some(format!(
                "{object_size} bytes where its manifest records {}: it was overwritten since it was taken",
                self.size
            ))
        } else {
            None
        }
    }

    /// Row counts per table.
    pub fn rows(&self) -> impl Iterator<Item = (&String, u64)> {
        self.tables.iter().map(|(k, v)| (k, v.rows))
    }
}

/// The manifest beside `key`, if there is one and it reads.
pub async fn fetch_manifest(bucket: &Bucket, key: &str) -> Option<Manifest> {
    let (_, body) = bucket
        .get(&format!("{key}{MANIFEST_SUFFIX}"), None)
        .await
        .ok()?;
    let bytes = body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// How many of the newest backups are looked at for the newest good one.
const GOOD_LOOKBACK: usize = 48;

/// The newest backup that counts (for the RPO, for retention's guard): verified by its
/// manifest when `verified_only`, else the newest by name. Looks at the newest 48.
pub async fn newest_good(
    bucket: &Bucket,
    prefix: &str,
    verified_only: bool,
) -> Result<Option<(crate::bucket::ObjectInfo, DateTime<Utc>)>, CommandError> {
    for o in super::catalogue::list_backups(bucket, prefix)
        .await?
        .into_iter()
        .take(GOOD_LOOKBACK)
    {
        let Some(at) = super::catalogue::taken_at(&o) else {
            continue;
        };
        if !verified_only {
            return Ok(Some((o, at)));
        }
        if fetch_manifest(bucket, &o.key)
            .await
            .is_some_and(|m| m.verified_at.is_some() && m.size_problem(o.size).is_none())
        {
            return Ok(Some((o, at)));
        }
    }
    Ok(None)
}

/// Collects the stored object into parts for the multipart upload, hashing as it goes.
struct PartWriter {
    tx: mpsc::Sender<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    hash: Sha256,
    size: u64,
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hash.update(data);
        self.size += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PART_SIZE {
            let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
            self.tx
                .blocking_send(Ok(part))
                .map_err(|_| std::io::Error::other("the upload stopped"))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PartWriter {
    /// Sends the last part; returns the object's size and sha256.
    fn close(self) -> Result<(u64, String), String> {
        let PartWriter {
            tx,
            buf,
            hash,
            size,
        } = self;
        tx.blocking_send(Ok(buf))
            .map_err(|_| "the upload stopped".to_string())?;
        Ok((size, hex(&hash.finalize())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The recipients new backups are encrypted to.
pub(crate) fn recipients(engine: &Engine) -> Result<Vec<age::x25519::Recipient>, CommandError> {
    let list = engine
        .config()
        .backup
        .as_ref()
        .map(|b| b.age_recipients.clone())
        .unwrap_or_default();
    if list.is_empty() {
        return Err(CommandError::Refused(
            "No age recipients are configured ([backup] age_recipients), and drbot never uploads an unencrypted backup."
                .to_string(),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            age::x25519::Recipient::from_str(r.trim()).map_err(|e| {
                CommandError::Refused(format!(
                    "[backup] age_recipients[{i}] is not an age public key (age1…): {e}."
                ))
            })
        })
        .collect()
}

/// The size of the independent xz blocks a backup is written in. A restore decodes blocks in
/// parallel only while each thread's share (the dictionary, a block out and its compressed
/// form in: about 14 MiB at -6) fits its memory: xz's default of three dictionaries (24 MiB at
/// -6) needs over 100 MiB for two threads, so they are decoded one at a time. 4 MiB blocks cost
/// about 2% in size on a pg_dump (39.1 against 38.4 MB for 110 MB of SQL at -6) and decode on
/// two threads in under 32 MiB (1.3 s against 2.3 s there, with the xz CLI).
const XZ_BLOCK: u64 = 4 << 20;

/// Memory the xz encoder may use: keeps the whole backup under 128 MiB of RSS.
const XZ_MEMORY_BUDGET: u64 = 96 * 1024 * 1024;

/// The preset's dictionary size (xz's table).
fn preset_dict(level: u32) -> u32 {
    match level {
        0 => 256 << 10,
        1 => 1 << 20,
        2 => 2 << 20,
        3 | 4 => 4 << 20,
        5 | 6 => 8 << 20,
        7 => 16 << 20,
        8 => 32 << 20,
        _ => 64 << 20,
    }
}

/// The xz encoder: liblzma's multithreaded one, writing independent blocks (so a restore can
/// decode them in parallel), with `threads` workers (0 = the cores) at the preset's settings;
/// the dictionary (and with it the block) is halved until the whole encoder fits the memory
/// budget, then threads are dropped if it still does not. Returns the encoder and what it
/// chose, for the manifest's words.
fn xz_encoder(
    level: u32,
    threads: u32,
) -> Result<(liblzma::stream::Stream, XzChoice), liblzma::stream::Error> {
    use liblzma::stream::{Check, Filters, LzmaOptions, MtStreamBuilder};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let wanted = if threads > 0 { threads } else { cores.max(1) };
    let build = |t: u32, dict: u32| -> Result<MtStreamBuilder, liblzma::stream::Error> {
        let mut o = LzmaOptions::new_preset(level)?;
        o.dict_size(dict);
        let mut f = Filters::new();
        f.lzma2(&o);
        let mut b = MtStreamBuilder::new();
        b.threads(t)
            .check(Check::Crc64)
            .filters(f)
            .block_size(XZ_BLOCK);
        Ok(b)
    };
    for t in (1..=wanted).rev() {
        let mut dict = preset_dict(level);
        loop {
            let b = build(t, dict)?;
            if b.memusage() <= XZ_MEMORY_BUDGET {
                return Ok((b.encoder()?, XzChoice { threads: t, dict }));
            }
            if dict <= 1 << 20 {
                break;
            }
            dict /= 2;
        }
    }
    let dict = 1 << 20;
    Ok((build(1, dict)?.encoder()?, XzChoice { threads: 1, dict }))
}

/// What the xz encoder was set to.
#[derive(Clone, Copy, Debug)]
struct XzChoice {
    threads: u32,
    dict: u32,
}

/// What the dump thread produced.
struct Dumped {
    sql_bytes: u64,
    tables: BTreeMap<String, TableStat>,
    size: u64,
    sha256: String,
}

/// Runs pg_dump → xz → age into `tx` on the current (blocking) thread.
fn dump_blocking(
    target: &Target,
    level: u32,
    threads: u32,
    recipients: Vec<age::x25519::Recipient>,
    tx: mpsc::Sender<Result<Vec<u8>, String>>,
    read: Arc<std::sync::atomic::AtomicU64>,
) -> Result<Dumped, String> {
    let (conninfo, env) = super::load::libpq_env(target).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new("pg_dump")
        .args([
            "--format=plain",
            "--clean",
            "--if-exists",
            "--no-password",
            "--dbname",
            &conninfo,
        ])
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run pg_dump: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("pg_dump has no output")?;
    let mut stderr = child.stderr.take().ok_or("pg_dump has no error output")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let parts = PartWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(PART_SIZE),
        hash: Sha256::new(),
        size: 0,
    };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| format!("age: {e}"))?;
    let encrypted = encryptor
        .wrap_output(parts)
        .map_err(|e| format!("age: {e}"))?;
    let (stream, choice) = xz_encoder(level, threads).map_err(|e| format!("xz: {e}"))?;
    tracing::debug!(
        threads = choice.threads,
        dict_mib = choice.dict >> 20,
        "xz encoder"
    );
    let mut xz = liblzma::write::XzEncoder::new_stream(encrypted, stream);

    let mut splitter = Splitter::new();
    let mut tables: BTreeMap<String, TableStat> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut sql_bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut pieces = Vec::new();
    let read_result: Result<(), String> = loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(format!("reading pg_dump's output: {e}")),
        };
        sql_bytes += n as u64;
        read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = xz.write_all(&buf[..n]) {
            break Err(format!("compressing: {e}"));
        }
        pieces.clear();
        if let Err(e) = splitter.feed(&buf[..n], &mut pieces) {
            break Err(format!("pg_dump's output did not parse: {e}"));
        }
        count(&pieces, &mut tables, &mut current);
    };
    let status = child.wait().map_err(|e| format!("pg_dump: {e}"))?;
    let errors = err_reader.join().unwrap_or_default();
    read_result?;
    if !status.success() {
        return Err(format!(
            "pg_dump failed ({status}): {}",
            crate::render::last_lines(&errors, 3)
        ));
    }
    pieces.clear();
    splitter
        .finish(&mut pieces)
        .map_err(|e| format!("pg_dump's output is incomplete: {e}"))?;
    count(&pieces, &mut tables, &mut current);
    let encrypted = xz.finish().map_err(|e| format!("compressing: {e}"))?;
    let parts = encrypted.finish().map_err(|e| format!("age: {e}"))?;
    let (size, sha256) = parts.close()?;
    Ok(Dumped {
        sql_bytes,
        tables,
        size,
        sha256,
    })
}

fn count(pieces: &[Piece], tables: &mut BTreeMap<String, TableStat>, current: &mut Option<String>) {
    for p in pieces {
        match p {
            Piece::CopyStart { table, .. } => *current = Some(table.clone()),
            Piece::CopyData(d) => {
                if let Some(t) = current {
                    tables.entry(t.clone()).or_default().bytes += d.len() as u64;
                }
            }
            Piece::CopyEnd { rows } => {
                if let Some(t) = current.take() {
                    tables.entry(t).or_default().rows += rows;
                }
            }
            _ => {}
        }
    }
}

/// How often a running backup says how far it is.
const BACKUP_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A backup of `name` stored with its manifest (and read back, with `verify_after_upload`).
/// Errors are sentences; nothing half-written stays under the backup's name.
pub async fn take(
    engine: &Engine,
    name: &str,
    progress: &dyn ProgressSink,
) -> Result<Manifest, CommandError> {
    let target = Target::resolve(engine.config(), name, &engine.env())?;
    let (bucket, s) = backup_bucket(engine)?;
    let recipients = recipients(engine)?;
    let level = engine.config().backup.as_ref().map_or(6, |b| b.xz_level);
    let threads = engine.config().backup.as_ref().map_or(0, |b| b.xz_threads);
    let started_at = engine.now();
    let key = backup_name(&s.db_prefix, started_at);
    let title = format!("Backup of {name}");
    let line = format!("Backing up {name} to {}/{key}…", bucket.name());
    progress.progress(&crate::progress::Progress {
        title: &title,
        line: &line,
        ..Default::default()
    });
    let client = target.connect().await?;
    let server_version = client
        .query_one("SELECT current_setting('server_version')", &[])
        .await
        .ok()
        .map(|r| r.get::<_, String>(0));
    // Shown, not used for an ETA: a dump's size is not its database's size on disk.
    let on_disk = client
        .query_one(
            "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
            &[],
        )
        .await
        .ok()
        .map(|r| r.get::<_, i64>(0).max(0) as u64);
    drop(client);
    let pg_dump_version = pg_dump_version();

    let (tx, rx) = mpsc::channel(2);
    let dump_target = target.clone();
    let err_tx = tx.clone();
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let read_by_dump = read.clone();
    let dump = tokio::task::spawn_blocking(move || {
        let r = dump_blocking(&dump_target, level, threads, recipients, tx, read_by_dump);
        if let Err(e) = &r {
            // Makes the upload abort instead of completing a partial object.
            let _ = err_tx.blocking_send(Err(e.clone()));
        }
        r
    });
    let upload = bucket.put_multipart(&key, rx);
    tokio::pin!(upload);
    let began = Instant::now();
    let mut tick = tokio::time::interval(BACKUP_PROGRESS_EVERY);
    tick.tick().await;
    let uploaded = loop {
        tokio::select! {
            r = &mut upload => break r,
            _ = tick.tick() => {
                let sql = read.load(std::sync::atomic::Ordering::Relaxed);
                let mut facts = vec![("SQL read".to_string(), crate::render::size(sql))];
                if let Some(disk) = on_disk {
                    facts.push(("Database on disk".to_string(), crate::render::size(disk)));
                }
                facts.extend(crate::progress::pace(sql, None, began.elapsed(), "bytes"));
                progress.progress(&crate::progress::Progress {
                    title: &title,
                    line: &format!("{line} {} of SQL dumped, compressed and encrypted so far.", crate::render::size(sql)),
                    fraction: None,
                    facts,
                });
            }
        }
    };
    let dumped = dump
        .await
        .map_err(|e| CommandError::Failed(format!("The backup task stopped: {e}.")))?;
    let d = match (dumped, uploaded) {
        (Ok(d), Ok(_)) => d,
        // The dump stopping because the upload did says less than the upload's own error.
        (Err(e), Err(up)) if e.contains("upload stopped") => {
            return Err(failed(
                name,
                &bucket,
                &up.to_string(),
                &pg_dump_version,
                &server_version,
            ));
        }
        (Err(e), _) => {
            return Err(failed(name, &bucket, &e, &pg_dump_version, &server_version));
        }
        (Ok(_), Err(up)) => {
            return Err(failed(
                name,
                &bucket,
                &up.to_string(),
                &pg_dump_version,
                &server_version,
            ));
        }
    };
    let mut manifest = Manifest {
        version: 1,
        key: key.clone(),
        size: d.size,
        sha256: d.sha256,
        sql_bytes: d.sql_bytes,
        pg_dump_version,
        server_version,
        started_at,
        finished_at: engine.now(),
        xz_level: level,
        tables: d.tables,
        verified_at: None,
        verify_error: None,
    };
    put_manifest(&bucket, &manifest).await?;
    if engine
        .config()
        .backup
        .as_ref()
        .is_some_and(|b| b.verify_after_upload)
    {
        progress.update(&format!("Reading {key} back from the bucket to verify it…"));
        match verify_stored(engine, &bucket, &manifest).await {
            Ok(()) => manifest.verified_at = Some(engine.now()),
            Err(e) => manifest.verify_error = Some(e),
        }
        put_manifest(&bucket, &manifest).await?;
    }
    Ok(manifest)
}

/// A failed backup, in words: what failed, which pg_dump met which server.
fn failed(
    name: &str,
    bucket: &Bucket,
    why: &str,
    pg_dump: &str,
    server: &Option<String>,
) -> CommandError {
    let versions = format!(
        " ({} against PostgreSQL {})",
        if pg_dump.is_empty() {
            "no pg_dump found"
        } else {
            pg_dump
        },
        server.as_deref().unwrap_or("of unknown version")
    );
    let hint = if why.contains("server version mismatch") {
        " Install a pg_dump at least as new as the server (postgresql-client of that major version)."
    } else {
        ""
    };
    CommandError::Failed(format!(
        "Backup of {name} failed: {why}{versions}. No backup object was left in {}.{hint}",
        bucket.name()
    ))
}

/// `pg_dump --version`, or "" when there is none.
pub fn pg_dump_version() -> String {
    std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn put_manifest(bucket: &Bucket, manifest: &Manifest) -> Result<(), CommandError> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| CommandError::Failed(format!("The manifest could not be written: {e}.")))?;
    bucket
        .put(
            &format!("{}{MANIFEST_SUFFIX}", manifest.key),
            json,
            "application/json",
        )
        .await
        .map_err(|e| {
            CommandError::Failed(format!(
                "The backup is stored, but its manifest is not: {e}."
            ))
        })
}

/// Reads a stored backup back whole — download, decrypt, decompress, parse under the
/// restore's rules — and checks it holds what its manifest says.
pub async fn verify_stored(
    engine: &Engine,
    bucket: &Bucket,
    manifest: &Manifest,
) -> Result<(), String> {
    use super::pipeline::{self, Counters};
    let ids = std::sync::Arc::new(super::catalogue::identities(engine).map_err(|e| e.to_string())?);
    if ids.is_empty() {
        return Err(
            "no [backup] age_identity_file to read it back with, so it cannot be verified"
                .to_string(),
        );
    }
    let (info, body) = bucket
        .get(&manifest.key, None)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(problem) = manifest.size_problem(info.size) {
        return Err(format!("the stored object is {problem}"));
    }
    let counters = std::sync::Arc::new(Counters::default());
    Counters::add(&counters.total, info.size);
    let rx = pipeline::start(body, ids, counters.clone());
    let facts = super::preflight::read(
        rx,
        &counters,
        None,
        &crate::progress::NoProgress,
        &manifest.key,
    )
    .await
    .map_err(|e| e.to_string())?;
    let rows: u64 = manifest.rows().map(|(_, r)| r).sum();
    if facts.rows != rows || facts.sql_bytes != manifest.sql_bytes {
        return Err(format!(
            "read back, it holds {} rows in {} of SQL where its manifest records {rows} rows in {}",
            facts.rows,
            size(facts.sql_bytes),
            size(manifest.sql_bytes)
        ));
    }
    Ok(())
}

/// `/db backup`.
pub async fn backup(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let name = inv
        .get("target")
        .unwrap_or(engine.config().production_target());
    let started = Instant::now();
    engine.step_started(ctx, inv, inv.spec, Some(name))?;
    let manifest = match take(engine, name, progress).await {
        Ok(m) => m,
        Err(e) => {
            let text = e.to_string();
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            engine.step_finished(
                ctx,
                inv,
                inv.spec,
                Some(name),
                StepState::Failed,
                Some(text.clone()),
            )?;
            return Err(e);
        }
    };
    let elapsed = chrono::Duration::milliseconds(started.elapsed().as_millis() as i64);
    let text = taken_text(engine, name, &manifest, elapsed);
    engine.record(ctx, inv, EntryKind::Command, &text)?;
    if let Some(why) = &manifest.verify_error {
        engine.step_finished(
            ctx,
            inv,
            inv.spec,
            Some(name),
            StepState::Failed,
            Some(why.clone()),
        )?;
        return Err(CommandError::Failed(text));
    }
    engine.step_finished(ctx, inv, inv.spec, Some(name), StepState::Done, None)?;
    Ok(Reply::done(text))
}

/// What a backup that was taken says: where, how big, and whether it was read back.
pub fn taken_text(
    engine: &Engine,
    name: &str,
    manifest: &Manifest,
    elapsed: chrono::Duration,
) -> String {
    let rows: u64 = manifest.rows().map(|(_, r)| r).sum();
    let rpo = chrono::Duration::minutes(engine.config().objectives.rpo.database as i64);
    let bucket = engine
        .config()
        .storage
        .as_ref()
        .map_or("", |s| s.backup_bucket.as_str());
    let verified = match (&manifest.verified_at, &manifest.verify_error) {
        (Some(_), _) => " Read back whole from the bucket and verified.".to_string(),
        (None, Some(why)) => format!(
            "\nBUT reading it back failed: {why}. It is not counted as a good backup (RPO, retention); take another with /db backup and check the bucket."
        ),
        (None, None) => " Not read back (verify_after_upload is off).".to_string(),
    };
    format!(
        "Backed up {name} to {bucket}/{} in {}: {} of SQL → {} stored (xz -{}, age), {} tables, {rows} rows. \
         The newest backup is now 0s old (RPO target {}).{verified}",
        manifest.key,
        render::duration(elapsed),
        size(manifest.sql_bytes),
        size(manifest.size),
        manifest.xz_level,
        manifest.tables.len(),
        render::duration(rpo)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_uses_every_core_asked_for_within_the_memory_budget() {
        use std::io::Write as _;
        for level in [0, 1, 6, 9] {
            for threads in [0, 1, 2, 4] {
                let (stream, choice) = xz_encoder(level, threads).expect("encoder");
                assert!(choice.threads >= 1);
                // At the usual preset and two threads, both are used.
                if level == 6 && threads == 2 {
                    assert_eq!(choice.threads, 2, "{choice:?}");
                }
                // What it writes is xz that reads back.
                let mut w = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                w.write_all(&b"INSERT INTO t VALUES (1);\n".repeat(50_000))
                    .expect("write");
                let out = w.finish().expect("finish");
                let mut back = Vec::new();
                std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&out[..]), &mut back)
                    .expect("read back");
                assert_eq!(back.len(), 26 * 50_000, "level {level} threads {threads}");
            }
        }
        // The estimate of what was chosen fits the budget at two threads.
        let (_, c) = xz_encoder(6, 2).expect("encoder");
        assert!(c.dict <= preset_dict(6));
    }
}
