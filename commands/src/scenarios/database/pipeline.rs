//! Bucket → age → xz → SQL pieces, streaming, in bounded memory.
//!
//! The download runs on a tokio task; decryption, decompression and splitting run on one
//! blocking thread; the database load runs on the caller's task. Bounded channels join them,
//! so the stages overlap and memory stays the same whatever the backup's size. Each layer is
//! recognised by its magic bytes, not the object's name: age (binary or armored), xz, pg_dump's
//! custom format (`PGDMP`), or plain SQL.

use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::custom;
use super::splitter::{PICK_PREVIOUS, Piece, SplitError, Splitter};
use crate::error::CommandError;

/// An encryption or compression layer found in a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// age, binary.
    Age,
    /// age, ASCII-armored.
    AgeArmored,
    /// xz.
    Xz,
}

impl Layer {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Age => "age",
            Layer::AgeArmored => "age (armored)",
            Layer::Xz => "xz",
        }
    }
}

/// What the innermost layer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain SQL: restored natively.
    Plain,
    /// pg_dump's custom format: restored through pg_restore.
    Custom,
}

/// Progress counters shared by the stages.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes of the object downloaded.
    pub downloaded: AtomicU64,
    /// Size of the object.
    pub total: AtomicU64,
    /// Bytes of SQL (decrypted and decompressed) read.
    pub sql_bytes: AtomicU64,
    /// COPY rows loaded.
    pub rows: AtomicU64,
    /// Statements executed.
    pub statements: AtomicU64,
    /// COPY blocks (tables) loaded.
    pub tables: AtomicU64,
    /// The table being loaded now.
    pub table: std::sync::Mutex<String>,
    /// What the restore waits for, when it waits for another session's lock.
    pub waiting: std::sync::Mutex<String>,
    /// The data comes from a local copy (then `downloaded` counts what of it was read).
    pub local: std::sync::atomic::AtomicBool,
}

impl Counters {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// True when the data comes from a local copy, not the bucket.
    pub fn local(&self) -> bool {
        self.local.load(Ordering::Relaxed)
    }

    /// The table being loaded.
    pub fn table(&self) -> String {
        self.table.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// What the restore waits for ("" when it does not).
    pub fn waiting(&self) -> String {
        self.waiting.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Says what the restore waits for.
    pub fn set_waiting(&self, t: &str) {
        if let Ok(mut g) = self.waiting.lock() {
            *g = t.to_string();
        }
    }

    /// Sets the table being loaded.
    pub fn set_table(&self, t: &str) {
        if let Ok(mut g) = self.table.lock() {
            *g = t.to_string();
        }
    }
}

/// What the decode thread hands on. The stream is over only at [`Msg::Complete`] or
/// [`Msg::Failed`]: a channel that closes without either means the reader died, and the
/// loader rolls back.
#[derive(Debug)]
pub enum Msg {
    /// The layers found and the format inside, before any data.
    Found(Vec<Layer>, Format),
    /// Pieces of the dump (a custom-format archive arrives as the SQL pg_restore makes of it).
    Pieces(Vec<Piece>),
    /// The local copy of the decoded SQL, when one was asked for and written whole (sent just
    /// before [`Msg::Complete`]).
    Spooled(crate::spool::Spool),
    /// The whole backup was read and split: nothing is missing.
    Complete,
    /// Decoding failed: nothing more follows.
    Failed(String),
}

/// The age identities that decrypt backups.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// Reads an age identity file (x25519 keys, comments allowed).
    pub fn load(path: &Path) -> Result<Identities, CommandError> {
        let file = std::fs::File::open(path).map_err(|e| {
            CommandError::Refused(format!(
                "Cannot read the age identity file {}: {e}.",
                path.display()
            ))
        })?;
        let ids = age::IdentityFile::from_buffer(BufReader::new(file))
            .map_err(|e| {
                CommandError::Refused(format!(
                    "The age identity file {} is unreadable: {e}.",
                    path.display()
                ))
            })?
            .into_identities()
            .map_err(|e| {
                CommandError::Refused(format!(
                    "The age identity file {} holds no usable identity: {e}.",
                    path.display()
                ))
            })?;
        if ids.is_empty() {
            return Err(CommandError::Refused(format!(
                "The age identity file {} holds no identity.",
                path.display()
            )));
        }
        Ok(Identities(ids))
    }

    /// Just this identity (the key of a local copy).
    pub fn one(identity: age::x25519::Identity) -> Identities {
        Identities(vec![Box::new(identity)])
    }

    /// No identities: only unencrypted backups can be read.
    pub fn none() -> Identities {
        Identities(Vec::new())
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decrypts a small age file held in memory (binary or armored), reading at most `max`
    /// bytes of plaintext.
    pub fn decrypt(&self, data: &[u8], max: u64) -> Result<Vec<u8>, String> {
        if self.is_empty() {
            return Err("no age identity is configured ([backup] age_identity_file)".to_string());
        }
        let ids = self.0.iter().map(|i| i.as_ref() as &dyn age::Identity);
        let mut out = Vec::new();
        let reader: Box<dyn Read> = if data.starts_with(AGE_MAGIC) {
            let d = age::Decryptor::new_buffered(data).map_err(age_error)?;
            Box::new(d.decrypt(ids).map_err(age_error)?)
        } else if data.trim_ascii_start().starts_with(AGE_ARMOR) {
            let d = age::Decryptor::new(age::armor::ArmoredReader::new(data)).map_err(age_error)?;
            Box::new(d.decrypt(ids).map_err(age_error)?)
        } else {
            return Err("it is not age-encrypted".to_string());
        };
        reader
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("age: {e}"))?;
        if out.len() as u64 > max {
            return Err(format!(
                "it decrypts to more than {}",
                crate::render::size(max)
            ));
        }
        Ok(out)
    }
}

/// How much decoded SQL is read at a time.
const READ_CHUNK: usize = 256 * 1024;
/// Batches in flight between the decode thread and the loader.
const PIECE_QUEUE: usize = 4;
/// Downloaded chunks in flight (each up to the HTTP client's read buffer, ~400 KiB): enough to
/// ride out the network's jitter; more only holds memory while the database is the slower.
const DOWNLOAD_QUEUE: usize = 4;
/// Memory the multithreaded xz decoder may use before it falls back to one thread.
const XZ_THREAD_MEMLIMIT: u64 = 48 * 1024 * 1024;

/// Starts downloading `body` and decoding it; returns the stream of decoded messages.
/// `counters.total` (when set) is the object's size: a download that ends short of it fails.
pub fn start(
    body: ByteStream,
    identities: Arc<Identities>,
    counters: Arc<Counters>,
) -> mpsc::Receiver<Msg> {
    start_spooled(body, identities, counters, None)
}

/// [`start`], also writing the decoded SQL to `spool` (handed back as [`Msg::Spooled`]).
pub fn start_spooled(
    body: ByteStream,
    identities: Arc<Identities>,
    counters: Arc<Counters>,
    spool: Option<crate::spool::SpoolWriter>,
) -> mpsc::Receiver<Msg> {
    let (chunk_tx, chunk_rx) = mpsc::channel::<io::Result<Option<Bytes>>>(DOWNLOAD_QUEUE);
    let dl_counters = counters.clone();
    tokio::spawn(async move {
        let mut body = body;
        loop {
            let next = match body.try_next().await {
                Ok(Some(chunk)) => {
                    Counters::add(&dl_counters.downloaded, chunk.len() as u64);
                    Ok(Some(chunk))
                }
                Ok(None) => {
                    let (got, want) = (
                        Counters::get(&dl_counters.downloaded),
                        Counters::get(&dl_counters.total),
                    );
                    if want > 0 && got != want {
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the download ended at byte {got} of {want}"),
                        ))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the download broke off after {} bytes: {e}",
                        Counters::get(&dl_counters.downloaded)
                    ),
                )),
            };
            let last = !matches!(next, Ok(Some(_)));
            if chunk_tx.send(next).await.is_err() || last {
                return; // the decoder stopped, or this was the end
            }
        }
    });
    let reader = ChannelReader {
        rx: chunk_rx,
        current: Bytes::new(),
        ended: false,
    };
    decode_spooled(Box::new(reader), identities, counters, spool)
}

/// Decodes any byte source (a download, or a local file in tests and benchmarks). The
/// decoding thread's panics are caught and reported as [`Msg::Failed`].
pub fn decode(
    reader: Box<dyn Read + Send>,
    identities: Arc<Identities>,
    counters: Arc<Counters>,
) -> mpsc::Receiver<Msg> {
    decode_spooled(reader, identities, counters, None)
}

/// [`decode`], also writing the decoded SQL to `spool` (handed back as [`Msg::Spooled`]).
pub fn decode_spooled(
    reader: Box<dyn Read + Send>,
    identities: Arc<Identities>,
    counters: Arc<Counters>,
    spool: Option<crate::spool::SpoolWriter>,
) -> mpsc::Receiver<Msg> {
    let (tx, rx) = mpsc::channel::<Msg>(PIECE_QUEUE);
    let failed_tx = tx.clone();
    // Its own thread with the parser's stack (see [`super::sql::PARSER_STACK`]): PostgreSQL's
    // grammar reads deep expressions as deep as the server does.
    let spawned = std::thread::Builder::new()
        .name("drbot-decode".into())
        .stack_size(super::sql::PARSER_STACK)
        .spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decode_layers(reader, &identities, &counters, spool, &mut |m| {
                    tx.blocking_send(m).is_ok()
                })
                .map_err(DecodeError)
            }));
            let failed = match run {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.0,
                Err(panic) => format!(
                    "drbot's backup reader stopped unexpectedly after {} bytes of SQL ({} bytes downloaded): {}",
                    Counters::get(&counters.sql_bytes),
                    Counters::get(&counters.downloaded),
                    crate::render::panic_text(panic.as_ref())
                ),
            };
            let _ = tx.blocking_send(Msg::Failed(failed));
        });
    if let Err(e) = spawned {
        let _ = failed_tx.try_send(Msg::Failed(format!(
            "drbot could not start its backup reader: {e}"
        )));
    }
    rx
}

/// A local file read as a download is: what is read counts as downloaded.
pub struct CountedFile {
    file: std::fs::File,
    counters: Arc<Counters>,
}

impl CountedFile {
    /// Reads `file`, counting into `counters.downloaded`.
    pub fn new(file: std::fs::File, counters: Arc<Counters>) -> CountedFile {
        CountedFile { file, counters }
    }
}

impl Read for CountedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        Counters::add(&self.counters.downloaded, n as u64);
        Ok(n)
    }
}

/// A synchronous reader over downloaded chunks; the download says when it is over.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Option<Bytes>>>,
    current: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(b))) => self.current = b,
                Some(Ok(None)) => self.ended = true,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the download stopped without finishing",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// How much a reader has handed out, and whether it has reached its end.
#[derive(Debug, Default)]
struct Flow {
    bytes: AtomicU64,
    ended: std::sync::atomic::AtomicBool,
}

impl Flow {
    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }
}

/// Counts what `inner` hands out into a [`Flow`].
struct Counted<R> {
    inner: R,
    flow: Arc<Flow>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.flow.ended.store(true, Ordering::Relaxed);
        }
        self.flow.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Names the layer in every read error, so failures say where they happened; an error that
/// comes once everything beneath the layer has been read is the layer ending early: the
/// backup is truncated, and says where.
struct Tagged<R> {
    inner: R,
    layer: &'static str,
    /// What feeds this layer: the object itself, or the layer outside it.
    below: Arc<Flow>,
    /// The layer outside this one, if any (for the message).
    outer: Option<&'static str>,
}

/// A layer that ended early: passed up through the layers around it as it is.
#[derive(Debug)]
struct Truncated(String);

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Truncated {}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|i| i.is::<Truncated>()) {
                e
            } else if self.below.ended() {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    Truncated(truncated(self.layer, self.outer, self.below.bytes(), &e)),
                )
            } else {
                // Data the layer rejects before its input ran out is damage inside the
                // backup, within what has been read of what feeds it so far.
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: {e}: the backup is damaged (within the first {} bytes of {}); {PICK_PREVIOUS}",
                        self.layer,
                        self.below.bytes(),
                        match self.outer {
                            None => "the object".to_string(),
                            Some(o) => format!("what its {o} layer holds"),
                        }
                    ),
                )
            }
        })
    }
}

/// `decoder`, the reader of `layer`, with its errors tagged and what it hands out counted; it
/// becomes what feeds the next layer (`below`) and the layer outside it (`outer`).
fn wrap<R: Read + Send + 'static>(
    decoder: R,
    layer: &'static str,
    below: &mut Arc<Flow>,
    outer: &mut Option<&'static str>,
) -> Box<dyn Read + Send> {
    let flow = Arc::new(Flow::default());
    Box::new(Counted {
        inner: Tagged {
            inner: decoder,
            layer,
            below: std::mem::replace(below, flow.clone()),
            outer: outer.replace(layer),
        },
        flow,
    })
}

/// What to tell the operator when `layer` ends before its end marker, `at` bytes into what
/// feeds it (the object when `outer` is None).
fn truncated(layer: &str, outer: Option<&str>, at: u64, e: &dyn std::fmt::Display) -> String {
    match outer {
        None => format!(
            "the backup ends early (truncated at byte {at}): its {layer} data stops before its end marker ({layer}: {e}), so the upload or copy that made it is incomplete (or its last bytes are damaged). Nothing of it was applied; {PICK_PREVIOUS}"
        ),
        Some(o) => format!(
            "the backup ends early: the {layer} data inside its {o} layer stops after {at} bytes, before its end marker ({layer}: {e}), so the backup was cut short when it was made. Nothing of it was applied; {PICK_PREVIOUS}"
        ),
    }
}

/// Reads up to `n` bytes without losing them: returns them and a reader that yields them again.
fn peek(mut r: Box<dyn Read + Send>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = r.read(&mut head[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    head.truncate(got);
    let again = Cursor::new(head.clone()).chain(r);
    Ok((head, Box::new(again)))
}

const AGE_MAGIC: &[u8] = b"age-encryption.org/";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const PGDMP: &[u8] = b"PGDMP";

/// Reads, decrypts, decompresses and splits `reader`, handing each message to `send`, which
/// returns false when nobody listens any more. Synchronous: the decode thread runs it, and so
/// does the fuzz target. An `Err` is the reason decoding failed; nothing follows it.
pub fn decode_blocking(
    reader: Box<dyn Read + Send>,
    identities: &Identities,
    counters: &Counters,
    send: &mut dyn FnMut(Msg) -> bool,
) -> Result<(), DecodeError> {
    decode_layers(reader, identities, counters, None, send).map_err(DecodeError)
}

/// Why a backup could not be decoded: which layer, and what was wrong with it, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn decode_layers(
    reader: Box<dyn Read + Send>,
    identities: &Identities,
    counters: &Counters,
    mut spool: Option<crate::spool::SpoolWriter>,
    send: &mut dyn FnMut(Msg) -> bool,
) -> Result<(), String> {
    let object = Arc::new(Flow::default());
    let mut reader: Box<dyn Read + Send> = Box::new(Counted {
        inner: reader,
        flow: object.clone(),
    });
    // What feeds the next layer found, and the name of the layer outside it.
    let mut below = object;
    let mut outer: Option<&'static str> = None;
    let mut layers = Vec::new();
    let format = loop {
        let (head, r) = peek(reader, 64).map_err(|e| e.to_string())?;
        reader = r;
        let trimmed = head.trim_ascii_start();
        if head.starts_with(AGE_MAGIC) || trimmed.starts_with(AGE_ARMOR) {
            let armored = !head.starts_with(AGE_MAGIC);
            if identities.is_empty() {
                return Err("the backup is age-encrypted, but no age identity is configured ([backup] age_identity_file)".to_string());
            }
            let ids = identities
                .0
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity);
            let header_error = |e: age::DecryptError| {
                if below.ended() {
                    truncated("age", outer, below.bytes(), &e)
                } else {
                    age_error(e)
                }
            };
            let decrypted: Box<dyn Read + Send> = if armored {
                let armor = age::armor::ArmoredReader::new(BufReader::new(reader));
                let d = age::Decryptor::new(armor).map_err(header_error)?;
                Box::new(d.decrypt(ids).map_err(age_error)?)
            } else {
                let d =
                    age::Decryptor::new_buffered(BufReader::new(reader)).map_err(header_error)?;
                Box::new(d.decrypt(ids).map_err(age_error)?)
            };
            reader = wrap(decrypted, "age", &mut below, &mut outer);
            layers.push(if armored {
                Layer::AgeArmored
            } else {
                Layer::Age
            });
        } else if head.starts_with(XZ_MAGIC) {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(std::thread::available_parallelism().map_or(1, |n| n.get()) as u32)
                .memlimit_threading(XZ_THREAD_MEMLIMIT)
                .memlimit_stop(u64::MAX)
                .decoder()
                .map_err(|e| format!("xz: cannot start the decoder: {e}"))?;
            let xz = liblzma::read::XzDecoder::new_stream(reader, stream);
            reader = wrap(xz, "xz", &mut below, &mut outer);
            layers.push(Layer::Xz);
        } else if head.starts_with(PGDMP) {
            break Format::Custom;
        } else if head.starts_with(&[0x1f, 0x8b]) {
            return Err(
                "the backup is gzip-compressed; drbot reads xz (and plain SQL)".to_string(),
            );
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(
                "the backup is zstd-compressed; drbot reads xz (and plain SQL)".to_string(),
            );
        } else if head.is_empty() {
            return Err(match layers.last() {
                None => "the backup is empty".to_string(),
                Some(l) => format!("the backup holds nothing inside its {} layer", l.as_str()),
            });
        } else if head.contains(&0) {
            return Err(format!(
                "the backup is not age, xz, pg_dump custom format or SQL (it starts with bytes {})",
                head.iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        } else {
            break Format::Plain;
        }
        if layers.len() > 4 {
            return Err(
                "the backup nests more than four layers of encryption and compression".to_string(),
            );
        }
    };
    if !send(Msg::Found(layers, format)) {
        return Ok(());
    }
    // A custom-format archive becomes SQL through pg_restore, and is then split like a plain
    // dump: one loader, one set of rules, whatever the format.
    if format == Format::Custom {
        reader = Box::new(custom::to_sql(reader).map_err(|e| e.to_string())?);
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut splitter = Splitter::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "{e} (after {} bytes of SQL, {} bytes downloaded)",
                    Counters::get(&counters.sql_bytes),
                    Counters::get(&counters.downloaded)
                ));
            }
        };
        Counters::add(&counters.sql_bytes, n as u64);
        if let Some(w) = spool.as_mut() {
            w.write(&buf[..n]);
        }
        let mut pieces = Vec::new();
        splitter.feed(&buf[..n], &mut pieces).map_err(split_error)?;
        if pieces.is_empty() {
            continue;
        }
        if !send(Msg::Pieces(pieces)) {
            return Ok(()); // the loader stopped
        }
    }
    let mut pieces = Vec::new();
    splitter.finish(&mut pieces).map_err(split_error)?;
    if !pieces.is_empty() && !send(Msg::Pieces(pieces)) {
        return Ok(());
    }
    if let Some(w) = spool {
        match w.finish() {
            Ok(copy) => {
                if !send(Msg::Spooled(copy)) {
                    return Ok(());
                }
            }
            // Only an optimisation: the restore reads the bucket instead.
            Err(e) => tracing::warn!(error = %e, "the local copy of the backup could not be kept"),
        }
    }
    send(Msg::Complete);
    Ok(())
}

pub(crate) fn age_error(e: age::DecryptError) -> String {
    match e {
        age::DecryptError::NoMatchingKeys => {
            "age: none of the configured identities can decrypt this backup (wrong key?)"
                .to_string()
        }
        age::DecryptError::DecryptionFailed => {
            "age: the encrypted data does not decrypt: the backup is truncated or corrupt"
                .to_string()
        }
        other => format!("age: {other}"),
    }
}

fn split_error(e: SplitError) -> String {
    e.to_string()
}
