//! Local copies of decoded data, kept between two reads of the same backup: the restore's
//! preflight decodes the whole backup (download, decrypt, decompress), and the restore that
//! follows reads this copy instead of doing all of it again.
//!
//! A copy is encrypted on disk (age, to a key made for it that lives only in this process's
//! memory) in the data directory's `spool/`: what a dead process leaves there is unreadable, and
//! is removed when the store is next opened. A copy is an optimisation only: any failure to
//! write it leaves none, and the restore reads the bucket as before.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Copies kept at once: the newest win.
const KEEP: usize = 2;
/// How often (in bytes written) the disk's free space is looked at.
const CHECK_EVERY: u64 = 64 << 20;

/// What a copy leaves free on the disk it is written to, at least: 1 GiB or a tenth of the
/// filesystem, whichever is more. drbot's own state lives on that disk; a copy never fills it.
fn reserve(dir: &Path) -> io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    let unit = st.fragment_size().max(1);
    let free = st.blocks_available().saturating_mul(unit);
    let total = st.blocks().saturating_mul(unit);
    Ok((free, (1u64 << 30).max(total / 10)))
}

/// Writes one copy; dropped unfinished, it removes its file.
pub struct SpoolWriter {
    out: Option<age::stream::StreamWriter<BufWriter<File>>>,
    path: PathBuf,
    identity: age::x25519::Identity,
    bytes: u64,
    failed: Option<String>,
    /// Free bytes the copy must leave on its disk beyond [`reserve`] (0 but in tests).
    extra: u64,
    checked: u64,
}

impl SpoolWriter {
    /// Starts a copy in `dir` (created owner-only when missing), if its disk has room.
    pub fn create(dir: &Path) -> io::Result<SpoolWriter> {
        SpoolWriter::create_leaving(dir, 0)
    }

    /// [`SpoolWriter::create`], leaving `extra` bytes free beyond the reserve.
    pub fn create_leaving(dir: &Path, extra: u64) -> io::Result<SpoolWriter> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        low_on_space(dir, extra)?;
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public();
        let path = dir.join(format!(
            "{}-{}.spool",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(io::Error::other)?;
        let out = match encryptor.wrap_output(BufWriter::with_capacity(256 * 1024, file)) {
            Ok(o) => o,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(SpoolWriter {
            out: Some(out),
            path,
            identity,
            bytes: 0,
            failed: None,
            extra,
            checked: 0,
        })
    }

    /// Adds `data`. A failure (a full disk) ends the copy: it is removed, and later writes do
    /// nothing.
    pub fn write(&mut self, data: &[u8]) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let mut result = out.write_all(data);
        self.bytes += data.len() as u64;
        if result.is_ok() && self.bytes - self.checked >= CHECK_EVERY {
            self.checked = self.bytes;
            if let Some(dir) = self.path.parent() {
                result = low_on_space(dir, self.extra);
            }
        }
        if let Err(e) = result {
            self.failed = Some(e.to_string());
            self.out = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Ends the copy; the reason when there is none.
    pub fn finish(mut self) -> Result<Spool, String> {
        if let Some(why) = self.failed.take() {
            return Err(why);
        }
        let Some(out) = self.out.take() else {
            return Err("the copy was not written".to_string());
        };
        let done = out
            .finish()
            .and_then(|mut w| w.flush().map(|()| w))
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&self.path);
            return Err(e.to_string());
        }
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(Spool {
            path: std::mem::take(&mut self.path),
            identity: self.identity.clone(),
            bytes: self.bytes,
            size,
            note: String::new(),
            made: Instant::now(),
        })
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if self.out.is_some() && !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An error when the disk holding `dir` has less free than the reserve (and `extra`) left.
fn low_on_space(dir: &Path, extra: u64) -> io::Result<()> {
    let (free, keep) = reserve(dir)?;
    if free < keep.saturating_add(extra) {
        return Err(io::Error::other(format!(
            "the disk holding {} has {} MiB free, and a local copy leaves at least {} MiB",
            dir.display(),
            free >> 20,
            keep.saturating_add(extra) >> 20
        )));
    }
    Ok(())
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A finished copy: removed from disk when dropped.
pub struct Spool {
    path: PathBuf,
    identity: age::x25519::Identity,
    /// Bytes of decoded data it holds.
    pub bytes: u64,
    /// Its size on disk.
    pub size: u64,
    /// What its maker says of where it came from (the backup's layers).
    pub note: String,
    made: Instant,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// The encrypted file, to read from its start.
    pub fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    /// The one identity that decrypts it.
    pub fn identity(&self) -> age::x25519::Identity {
        self.identity.clone()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The copies this process keeps, by what they are a copy of.
#[derive(Debug)]
pub struct Spools {
    dir: PathBuf,
    kept: Mutex<HashMap<String, Spool>>,
}

impl Spools {
    /// Copies kept in `dir`; what an earlier process left there is removed (its keys are gone).
    pub fn new(dir: PathBuf) -> Spools {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Spools {
            dir,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// Where new copies go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `spool` as the copy of `what` (replacing an older one); the oldest beyond a few,
    /// and any older than `max_age`, are removed.
    pub fn put(&self, what: &str, spool: Spool, max_age: Duration) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.retain(|_, s| s.made.elapsed() <= max_age);
        kept.insert(what.to_string(), spool);
        while kept.len() > KEEP {
            let oldest = kept
                .iter()
                .min_by_key(|(_, s)| s.made)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    kept.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Takes the copy of `what`, if one is kept and younger than `max_age`.
    pub fn take(&self, what: &str, max_age: Duration) -> Option<Spool> {
        let mut kept = self.kept.lock().ok()?;
        let spool = kept.remove(what)?;
        (spool.made.elapsed() <= max_age).then_some(spool)
    }

    /// Copies kept now.
    pub fn len(&self) -> usize {
        self.kept.lock().map_or(0, |k| k.len())
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_back(s: &Spool) -> Vec<u8> {
        let id = s.identity();
        let d = age::Decryptor::new(s.open().unwrap()).unwrap();
        let mut r = d
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_copy_reads_back_only_with_its_own_key_and_goes_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spools = Spools::new(dir.path().join("spool"));
        let mut w = SpoolWriter::create(spools.dir()).unwrap();
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        w.write(&data[..1000]);
        w.write(&data[1000..]);
        let s = w.finish().unwrap();
        assert_eq!(s.bytes, data.len() as u64);
        assert_eq!(read_back(&s), data);
        // On disk it is not the data.
        let raw = std::fs::read(&s.path).unwrap();
        assert!(!raw.windows(64).any(|w| w == &data[4000..4064]));
        // Another key does not open it.
        let other = age::x25519::Identity::generate();
        let d = age::Decryptor::new(s.open().unwrap()).unwrap();
        assert!(
            d.decrypt(std::iter::once(&other as &dyn age::Identity))
                .is_err()
        );
        let path = s.path.clone();
        spools.put("a", s, Duration::from_secs(60));
        assert!(spools.take("b", Duration::from_secs(60)).is_none());
        let s = spools.take("a", Duration::from_secs(60)).unwrap();
        assert!(path.exists());
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn a_copy_never_takes_the_disks_last_room() {
        let dir = tempfile::tempdir().unwrap();
        let spools = Spools::new(dir.path().join("spool"));
        // A disk that cannot leave the room asked for: no copy is started.
        let e = SpoolWriter::create_leaving(spools.dir(), u64::MAX / 2)
            .err()
            .expect("no room");
        assert!(e.to_string().contains("MiB free"), "{e}");
        // One whose disk runs short while it is written (as if: the room asked for grows)
        // is abandoned at the next look, its file removed.
        let mut w = SpoolWriter::create(spools.dir()).unwrap();
        let path = w.path.clone();
        w.extra = u64::MAX / 2;
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..63 {
            w.write(&chunk);
        }
        assert!(path.exists(), "looked at only every 64 MiB");
        for _ in 0..2 {
            w.write(&chunk);
        }
        assert!(!path.exists());
        let e = w.finish().expect_err("abandoned");
        assert!(e.contains("MiB free"), "{e}");
    }

    #[test]
    fn only_the_newest_few_are_kept_and_an_unfinished_copy_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spools = Spools::new(dir.path().join("spool"));
        let mut paths = Vec::new();
        for n in 0..4 {
            let mut w = SpoolWriter::create(spools.dir()).unwrap();
            w.write(b"x");
            let s = w.finish().unwrap();
            paths.push(s.path.clone());
            spools.put(&n.to_string(), s, Duration::from_secs(60));
        }
        assert_eq!(spools.len(), KEEP);
        assert!(!paths[0].exists() && !paths[1].exists());
        assert!(paths[3].exists());
        // Too old: not taken, and gone.
        assert!(spools.take("3", Duration::ZERO).is_none());
        assert!(!paths[3].exists());
        let w = SpoolWriter::create(spools.dir()).unwrap();
        let p = w.path.clone();
        assert!(p.exists());
        drop(w);
        assert!(!p.exists());
        // What a dead process left is removed when the next one starts.
        std::fs::write(spools.dir().join("1-1.spool"), b"left").unwrap();
        let again = Spools::new(dir.path().join("spool"));
        assert!(!again.dir().join("1-1.spool").exists());
    }
}
