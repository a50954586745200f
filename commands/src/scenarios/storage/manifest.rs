//! Media snapshots in the backup bucket (SPEC §5), laid out so a person can use them with the
//! AWS CLI alone:
//!
//! - `<prefix>objects/<ETag>-<size>`: one server-side copy per distinct content, whatever number
//!   of keys or snapshots hold it;
//! - `<prefix>aliases/<ETag>-<size>`: a few bytes naming the copy that holds content known by
//!   another ETag (a server-side copy of a multipart object gets an ETag of its own, and so does
//!   an object restored from it), so that content is not copied again under its second name;
//! - `<prefix>snapshots/<UTC time>.jsonl.xz`: one immutable manifest per snapshot, xz-compressed
//!   JSON lines in key order — a header line, one line per object (key, size, ETag,
//!   last-modified, content type and the other headers, user metadata, `copy`: where its copy
//!   is), and an `end` line with the totals. A manifest without its `end` line is incomplete and
//!   is never used.
//!
//! `aws s3 cp s3://BACKUPS/media/snapshots/T.jsonl.xz - | xz -dc | grep '"key":"a.jpg"'` shows
//! an object; `aws s3 cp s3://BACKUPS/<copy> a.jpg` fetches it.
//!
//! Manifests are written and read as streams: memory stays flat in the number of objects.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bucket::{Bucket, BucketError, Headers, ObjectInfo, PART_SIZE};

/// The header's `format`.
pub const FORMAT: &str = "drbot-media-snapshot";

/// What a manifest's name ends with.
pub const MANIFEST_SUFFIX: &str = ".jsonl.xz";

/// The longest line a manifest may have (a key is at most 1 KiB, metadata 2 KiB on S3).
const MAX_LINE: usize = 64 * 1024;

/// xz preset for manifests: JSON lines compress well at 0, whose encoder needs ~3 MiB (its
/// tables are touched as input flows, so a smaller preset also flattens memory sooner).
const XZ_LEVEL: u32 = 0;

/// Where manifests live under the snapshot prefix.
pub fn manifests_prefix(prefix: &str) -> String {
    format!("{prefix}snapshots/")
}

/// The manifest of a snapshot taken at `at`.
pub fn manifest_key(prefix: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}{}{MANIFEST_SUFFIX}",
        manifests_prefix(prefix),
        at.format("%Y-%m-%dT%H-%M-%SZ")
    )
}

/// The time a manifest's name says, if it is one.
pub fn manifest_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?.strip_suffix(MANIFEST_SUFFIX)?;
    NaiveDateTime::parse_from_str(name, "%Y-%m-%dT%H-%M-%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The short name of a snapshot (its time), as typed in `at:` and `version:`.
pub fn snapshot_name(key: &str) -> &str {
    key.rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(MANIFEST_SUFFIX))
        .unwrap_or(key)
}

/// Where the copy of content with this ETag and size lives: named by them, so the same content
/// is stored once. An ETag with characters other than letters, digits and `-` is hashed.
pub fn copy_key(prefix: &str, etag: &str, size: u64) -> String {
    let safe = !etag.is_empty()
        && etag.len() <= 80
        && etag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name = if safe {
        etag.to_string()
    } else {
        format!(
            "h{}",
            Sha256::digest(etag.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    format!("{prefix}objects/{name}-{size}")
}

/// Where the alias of content known by `etag` and `size` lives ([`copy_key`]'s name under
/// `aliases/`).
pub fn alias_key(prefix: &str, etag: &str, size: u64) -> String {
    let copy = copy_key(prefix, etag, size);
    format!(
        "{prefix}aliases/{}",
        copy.rsplit('/').next().unwrap_or_default()
    )
}

/// The first line of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The media bucket the snapshot is of.
    pub bucket: String,
    /// Where the copies are.
    pub copies_in: String,
    /// When its listing started.
    pub taken_at: DateTime<Utc>,
}

/// One object as the snapshot holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its key in the media bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Its ETag in the media bucket when the snapshot was taken.
    pub etag: String,
    /// When the media bucket last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
    /// Content type, cache control, other headers and user metadata.
    #[serde(flatten)]
    pub headers: Headers,
    /// The key of its copy in the backup bucket.
    pub copy: String,
    /// The copy's own ETag (a server-side copy of a multipart object gets a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_etag: Option<String>,
}

impl Entry {
    /// Whether a live object has this entry's content: same size, and the ETag it had or the
    /// one its copy (and so a restore from it) has.
    pub fn same_content(&self, live: &ObjectInfo) -> bool {
        live.size == self.size
            && live
                .etag
                .as_deref()
                .is_some_and(|e| e == self.etag || self.copy_etag.as_deref() == Some(e))
    }
}

/// The totals on a manifest's last line (and in its object metadata when it fits one part).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Objects it holds.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Copies this snapshot made.
    pub new_copies: u64,
    /// Bytes those copies moved.
    pub copied_bytes: u64,
    /// When it was finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Totals {
    fn to_metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("objects".to_string(), self.objects.to_string()),
            ("bytes".to_string(), self.bytes.to_string()),
            ("new-copies".to_string(), self.new_copies.to_string()),
            ("copied-bytes".to_string(), self.copied_bytes.to_string()),
        ])
    }

    /// The totals from a manifest's object metadata, if they are all there.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Option<Totals> {
        let get = |k: &str| m.get(k).and_then(|v| v.parse().ok());
        Some(Totals {
            objects: get("objects")?,
            bytes: get("bytes")?,
            new_copies: get("new-copies")?,
            copied_bytes: get("copied-bytes")?,
            finished_at: None,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct EndLine {
    end: Totals,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The manifest is not one drbot can read, at this line.
    #[error("the snapshot manifest {name} is unreadable at line {line}: {why}")]
    Corrupt {
        /// Its key.
        name: String,
        /// The line (1-based; 0: the compression).
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// It ends before its `end` line: an unfinished or cut manifest.
    #[error("the snapshot manifest {name} ends early (no end line after {lines} lines)")]
    Truncated {
        /// Its key.
        name: String,
        /// Lines read.
        lines: u64,
    },
}

/// A manifest read line by line as it downloads.
pub struct Reader {
    name: String,
    body: aws_sdk_s3::primitives::ByteStream,
    decoder: liblzma::write::XzDecoder<Vec<u8>>,
    /// Where the unread part of the decoded buffer starts.
    pos: usize,
    /// Compressed bytes not yet fed to the decoder (fed a little at a time, so a small input
    /// that decompresses to a flood is stopped at the line limit, not in memory).
    pending: bytes::Bytes,
    eof: bool,
    line: u64,
    header: Header,
    totals: Option<Totals>,
    last_key: Option<String>,
}

impl Reader {
    /// Opens the manifest at `key` and reads its header.
    pub async fn open(bucket: &Bucket, key: &str) -> Result<Reader, ManifestError> {
        let (_, body) = bucket.get(key, None).await?;
        Reader::from_stream(key, body).await
    }

    /// Reads a manifest named `name` from `body` and reads its header.
    pub async fn from_stream(
        name: &str,
        body: aws_sdk_s3::primitives::ByteStream,
    ) -> Result<Reader, ManifestError> {
        let mut r = Reader {
            name: name.to_string(),
            body,
            decoder: liblzma::write::XzDecoder::new(Vec::new()),
            pos: 0,
            pending: bytes::Bytes::new(),
            eof: false,
            line: 0,
            header: Header {
                format: String::new(),
                version: 0,
                bucket: String::new(),
                copies_in: String::new(),
                taken_at: DateTime::<Utc>::MIN_UTC,
            },
            totals: None,
            last_key: None,
        };
        let first = r.raw_line().await?;
        let header: Header = first
            .as_deref()
            .ok_or_else(|| r.truncated())
            .and_then(|l| serde_json::from_slice(l).map_err(|e| r.corrupt(e.to_string())))?;
        if header.format != FORMAT || header.version != 1 {
            return Err(r.corrupt(format!(
                "not a {FORMAT} version 1 manifest ({} version {})",
                header.format, header.version
            )));
        }
        r.header = header;
        Ok(r)
    }

    /// Its key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The totals, once the end line has been read.
    pub fn totals(&self) -> Option<&Totals> {
        self.totals.as_ref()
    }

    fn corrupt(&self, why: String) -> ManifestError {
        ManifestError::Corrupt {
            name: self.name.clone(),
            line: self.line,
            why,
        }
    }

    fn truncated(&self) -> ManifestError {
        ManifestError::Truncated {
            name: self.name.clone(),
            lines: self.line,
        }
    }

    /// The next object, in key order; `None` after the end line.
    pub async fn next(&mut self) -> Result<Option<Entry>, ManifestError> {
        if self.totals.is_some() {
            return Ok(None);
        }
        let Some(raw) = self.raw_line().await? else {
            return Err(self.truncated());
        };
        if raw.starts_with(b"{\"end\"") {
            let end: EndLine =
                serde_json::from_slice(&raw).map_err(|e| self.corrupt(e.to_string()))?;
            self.totals = Some(end.end);
            // Nothing may follow the end line.
            if self.raw_line().await?.is_some() {
                return Err(self.corrupt("lines after the end line".to_string()));
            }
            return Ok(None);
        }
        let entry: Entry = serde_json::from_slice(&raw).map_err(|e| self.corrupt(e.to_string()))?;
        if self
            .last_key
            .as_deref()
            .is_some_and(|k| k >= entry.key.as_str())
        {
            return Err(self.corrupt(format!(
                "keys out of order ({} after {})",
                entry.key,
                self.last_key.as_deref().unwrap_or_default()
            )));
        }
        self.last_key = Some(entry.key.clone());
        Ok(Some(entry))
    }

    /// The next line's bytes, without its newline; `None` at the end of the stream.
    async fn raw_line(&mut self) -> Result<Option<Vec<u8>>, ManifestError> {
        /// Compressed bytes fed to the decoder at once: xz expands at most a few thousand
        /// times, so the decoded buffer stays within a few MiB of the line limit.
        const FEED: usize = 1024;
        loop {
            let buf = self.decoder.get_mut();
            let found = buf[self.pos..].iter().position(|b| *b == b'\n');
            if found.is_none_or(|at| at > MAX_LINE) && buf.len() - self.pos > MAX_LINE {
                self.line += 1;
                return Err(self.corrupt(format!("a line longer than {MAX_LINE} bytes")));
            }
            if let Some(at) = found {
                let line = buf[self.pos..self.pos + at].to_vec();
                self.pos += at + 1;
                // Drop what was read once it is most of the buffer (no shifting per line).
                if self.pos > buf.len() / 2 {
                    buf.drain(..self.pos);
                    self.pos = 0;
                }
                self.line += 1;
                return Ok(Some(line));
            }
            if !self.pending.is_empty() {
                let n = self.pending.len().min(FEED);
                let piece = self.pending.split_to(n);
                self.decoder
                    .write_all(&piece)
                    .map_err(|e| self.corrupt(format!("xz: {e}")))?;
                continue;
            }
            if self.eof {
                if buf.len() == self.pos {
                    return Ok(None);
                }
                self.line += 1;
                return Err(self.corrupt("the last line has no newline".to_string()));
            }
            match self.body.try_next().await {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => {
                    self.eof = true;
                    self.decoder
                        .try_finish()
                        .map_err(|e| self.corrupt(format!("xz: {e}")))?;
                }
                Err(e) => {
                    return Err(ManifestError::Bucket(BucketError::Request {
                        what: format!("Downloading {}", self.name),
                        bucket: String::new(),
                        detail: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// A manifest written as the snapshot goes: compressed in memory up to one part, then as a
/// multipart upload. Nothing appears in the bucket until [`Writer::finish`]: an unfinished
/// multipart upload is no object.
pub struct Writer {
    bucket: Bucket,
    key: String,
    encoder: liblzma::write::XzEncoder<Vec<u8>>,
    upload: Option<(String, Vec<aws_sdk_s3::types::CompletedPart>)>,
}

impl Writer {
    /// Starts the manifest `key` with its header.
    pub fn new(bucket: Bucket, key: String, header: &Header) -> Result<Writer, BucketError> {
        let mut w = Writer {
            bucket,
            key,
            encoder: liblzma::write::XzEncoder::new(Vec::new(), XZ_LEVEL),
            upload: None,
        };
        w.encode(header)?;
        Ok(w)
    }

    fn encode(&mut self, value: &impl Serialize) -> Result<(), BucketError> {
        let mut line = serde_json::to_vec(value).map_err(|e| BucketError::Source(e.to_string()))?;
        line.push(b'\n');
        self.encoder
            .write_all(&line)
            .map_err(|e| BucketError::Source(format!("compressing the manifest: {e}")))
    }

    /// Adds one object.
    pub async fn entry(&mut self, entry: &Entry) -> Result<(), BucketError> {
        self.encode(entry)?;
        if self.encoder.get_ref().len() >= PART_SIZE {
            let part = std::mem::take(self.encoder.get_mut());
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), BucketError> {
        let client = self.bucket.client().clone();
        let (name, key) = (self.bucket.name().to_string(), self.key.clone());
        let fail = |what: &str, e: String| BucketError::Request {
            what: format!("{what} {key}"),
            bucket: name.clone(),
            detail: e,
        };
        if self.upload.is_none() {
            let created = crate::bucket::retry::throttled(|| {
                client
                    .create_multipart_upload()
                    .bucket(&name)
                    .key(&key)
                    .content_type("application/x-xz")
                    .send()
            })
            .await
            .map_err(|e| {
                fail(
                    "Starting",
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                )
            })?;
            self.upload = Some((
                created.upload_id().unwrap_or_default().to_string(),
                Vec::new(),
            ));
        }
        let Some((id, parts)) = self.upload.as_mut() else {
            return Ok(());
        };
        let number = parts.len() as i32 + 1;
        let body = bytes::Bytes::from(part);
        let out = crate::bucket::retry::throttled(|| {
            client
                .upload_part()
                .bucket(&name)
                .key(&key)
                .upload_id(id.as_str())
                .part_number(number)
                .body(body.clone().into())
                .send()
        })
        .await
        .map_err(|e| {
            fail(
                "Uploading a part of",
                aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            )
        })?;
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    /// Writes the end line and makes the manifest appear, all at once.
    pub async fn finish(mut self, totals: &Totals) -> Result<(), BucketError> {
        self.encode(&EndLine {
            end: totals.clone(),
        })?;
        let encoder = std::mem::replace(
            &mut self.encoder,
            liblzma::write::XzEncoder::new(Vec::new(), 0),
        );
        let rest = encoder
            .finish()
            .map_err(|e| BucketError::Source(format!("compressing the manifest: {e}")))?;
        if self.upload.is_none() {
            return self
                .bucket
                .put_with(&self.key, rest, "application/x-xz", &totals.to_metadata())
                .await;
        }
        self.send_part(rest).await?;
        let Some((id, parts)) = self.upload.take() else {
            return Ok(());
        };
        let (client, name, key) = (
            self.bucket.client().clone(),
            self.bucket.name().to_string(),
            self.key.clone(),
        );
        crate::bucket::retry::throttled(|| {
            client
                .complete_multipart_upload()
                .bucket(&name)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                )
                .send()
        })
        .await
        .map_err(|e| BucketError::Request {
            what: format!("Finishing {key}"),
            bucket: name.clone(),
            detail: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Abandoned: an unfinished multipart upload is no object; abort it to free its parts.
        if let Some((id, _)) = self.upload.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (client, name, key) = (
                self.bucket.client().clone(),
                self.bucket.name().to_string(),
                self.key.clone(),
            );
            handle.spawn(async move {
                let _ = client
                    .abort_multipart_upload()
                    .bucket(name)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
            });
        }
    }
}

/// One snapshot as listed: its manifest and, when the manifest's metadata has them, totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The manifest's key.
    pub key: String,
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The manifest's size.
    pub size: u64,
}

impl Snapshot {
    /// Its short name (the UTC time).
    pub fn name(&self) -> &str {
        snapshot_name(&self.key)
    }
}

/// Every snapshot's manifest, newest first.
pub async fn list(bucket: &Bucket, prefix: &str) -> Result<Vec<Snapshot>, BucketError> {
    let mut out: Vec<Snapshot> = bucket
        .list(&manifests_prefix(prefix))
        .await?
        .into_iter()
        .filter_map(|o| {
            manifest_time(&o.key).map(|at| Snapshot {
                key: o.key,
                at,
                size: o.size,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.at));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_copies_are_named_by_content() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T07:05:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let key = manifest_key("media/", at);
        assert_eq!(key, "media/snapshots/2026-12-01T07-05-09Z.jsonl.xz");
        assert_eq!(manifest_time(&key), Some(at));
        assert_eq!(snapshot_name(&key), "2026-12-01T07-05-09Z");
        assert_eq!(manifest_time("media/snapshots/notes.txt"), None);
        assert_eq!(
            copy_key("media/", "9b2cf535f27731c974343645a3985328-3", 7),
            "media/objects/9b2cf535f27731c974343645a3985328-3-7"
        );
        // An ETag that is no plain hex is hashed, so it cannot make a path.
        let odd = copy_key("media/", "../../x", 1);
        assert!(odd.starts_with("media/objects/h") && !odd.contains(".."));
    }

    fn xz(text: &str) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    fn entry_line(key: &str) -> String {
        format!(r#"{{"key":"{key}","size":1,"etag":"e","copy":"media/objects/e-1"}}"#)
    }

    async fn read_all(bytes: Vec<u8>) -> Result<(Vec<String>, Option<Totals>), ManifestError> {
        let mut r =
            Reader::from_stream("m", aws_sdk_s3::primitives::ByteStream::from(bytes)).await?;
        let mut keys = Vec::new();
        while let Some(e) = r.next().await? {
            keys.push(e.key);
        }
        Ok((keys, r.totals().cloned()))
    }

    #[tokio::test]
    async fn the_reader_takes_only_whole_ordered_manifests() {
        let header = r#"{"format":"drbot-media-snapshot","version":1,"bucket":"m","copies_in":"b","taken_at":"2026-11-30T09:00:00Z"}"#;
        let end =
            r#"{"end":{"objects":2,"bytes":2,"new_copies":0,"copied_bytes":0,"finished_at":null}}"#;
        // Many lines, to cross the decoder's feed and the buffer's compaction many times.
        let many: Vec<String> = (0..5000)
            .map(|i| entry_line(&format!("k/{i:05}")))
            .collect();
        let good = format!("{header}\n{}\n{end}\n", many.join("\n"));
        let (keys, totals) = read_all(xz(&good)).await.unwrap();
        assert_eq!(keys.len(), 5000);
        assert_eq!(keys[4999], "k/04999");
        assert_eq!(totals.map(|t| t.objects), Some(2));
        let cases = [
            (format!("{header}\n{}\n", entry_line("a")), "ends early"),
            (format!("{header}\n{}\n{}\n{end}\n", entry_line("b"), entry_line("a")), "out of order"),
            (format!("{header}\n{}\n{}\n{end}\n", entry_line("a"), entry_line("a")), "out of order"),
            (format!("{header}\n{end}\n{}\n", entry_line("a")), "after the end line"),
            (format!("{header}\n{}", entry_line("a")), "no newline"),
            (format!("{header}\n{}\n", "x".repeat(70_000)), "longer than"),
            (r#"{"format":"other","version":1,"bucket":"m","copies_in":"b","taken_at":"2026-11-30T09:00:00Z"}"#.to_string() + "\n", "not a drbot-media-snapshot"),
            (String::new(), "ends early"),
        ];
        for (text, want) in cases {
            let e = read_all(xz(&text)).await.unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Not xz at all, and xz cut short.
        let e = read_all(b"plain text\n".to_vec())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("xz"), "{e}");
        let whole = xz(&good);
        let e = read_all(whole[..whole.len() - 20].to_vec())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("xz") || e.contains("ends early"), "{e}");
        // A small input that decompresses to a flood without newlines stops at the line limit.
        let flood = xz(&"y".repeat(50_000_000));
        assert!(flood.len() < 100_000);
        let e = read_all(flood).await.unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn entries_keep_headers_and_metadata_flat() {
        let e = Entry {
            key: "a b.jpg".to_string(),
            size: 3,
            etag: "abc".to_string(),
            last_modified: None,
            headers: Headers {
                content_type: Some("image/jpeg".to_string()),
                metadata: BTreeMap::from([("owner".to_string(), "7".to_string())]),
                ..Headers::default()
            },
            copy: "media/objects/abc-3".to_string(),
            copy_etag: None,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"key":"a b.jpg","size":3,"etag":"abc","content_type":"image/jpeg","metadata":{"owner":"7"},"copy":"media/objects/abc-3"}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), e);
    }
}
