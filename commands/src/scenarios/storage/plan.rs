//! What a storage restore would do, computed before anyone approves it and again at execution:
//! the objects as they should be (from a snapshot's manifest, or from S3 versions at a time)
//! walked beside the live listing, both in key order, into a dry-run diff — to create (deleted
//! since), to overwrite (changed since), to delete (created since, only when asked), unchanged
//! — with counts, bytes and the first keys of each, and a digest of everything it was computed
//! from (the source and every live object's key, size and ETag).

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::manifest::{self, Reader};
use super::media::{Buckets, StorageError};
use crate::bucket::{Headers, ObjectInfo, Pages, Version};
use crate::render;

/// How many keys of each kind the diff shows.
pub const SHOWN: usize = 5;

/// Which keys a restore covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every key starting with this (empty: the whole bucket).
    Prefix(String),
    /// Exactly this key.
    Key(String),
}

impl Scope {
    /// What to list.
    pub fn list_prefix(&self) -> &str {
        match self {
            Scope::Prefix(p) | Scope::Key(p) => p,
        }
    }

    /// Whether `key` is in it.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            Scope::Prefix(p) => key.starts_with(p.as_str()),
            Scope::Key(k) => key == k,
        }
    }

    /// Whether every key from `key` on sorts after it.
    fn passed(&self, key: &str) -> bool {
        let p = self.list_prefix();
        key > p && !key.starts_with(p)
    }

    /// For people: `artworks/`, `the whole bucket`, `artworks/a.jpg`.
    pub fn describe(&self) -> String {
        match self {
            Scope::Prefix(p) if p.is_empty() => "the whole bucket".to_string(),
            Scope::Prefix(p) => format!("prefix {p}"),
            Scope::Key(k) => k.clone(),
        }
    }
}

/// Where the wanted state comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum From {
    /// A snapshot, by its manifest's key.
    Snapshot(String),
    /// The bucket's own versions: each key's newest version at or before the time.
    VersionsAt(DateTime<Utc>),
    /// One version of one key.
    Version(String),
}

impl From {
    /// As stored in the request.
    pub fn encode(&self) -> String {
        match self {
            From::Snapshot(k) => format!("snapshot:{k}"),
            From::VersionsAt(t) => format!("versions-at:{}", t.to_rfc3339()),
            From::Version(v) => format!("version:{v}"),
        }
    }

    /// Read back from a request.
    pub fn decode(s: &str) -> Option<From> {
        let (kind, rest) = s.split_once(':')?;
        match kind {
            "snapshot" => Some(From::Snapshot(rest.to_string())),
            "versions-at" => DateTime::parse_from_rfc3339(rest)
                .ok()
                .map(|t| From::VersionsAt(t.with_timezone(&Utc))),
            "version" => Some(From::Version(rest.to_string())),
            _ => None,
        }
    }

    /// For people.
    pub fn describe(&self) -> String {
        match self {
            From::Snapshot(k) => format!("snapshot {}", manifest::snapshot_name(k)),
            From::VersionsAt(t) => format!("its versions at {}", render::stamp(*t)),
            From::Version(v) => format!("version {v}"),
        }
    }
}

/// A restore, as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The keys.
    pub scope: Scope,
    /// The state to go back to.
    pub from: From,
    /// Whether objects created since are deleted.
    pub delete_newer: bool,
}

/// Where a wanted object's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A snapshot's copy in the backup bucket, with the headers the manifest recorded.
    Copy {
        /// Its key in the backup bucket.
        copy: String,
        /// Its ETag there.
        copy_etag: Option<String>,
        /// The recorded headers and metadata.
        headers: Headers,
    },
    /// A version in the media bucket itself.
    Version(String),
}

/// One object as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// The ETags that mean "this content".
    pub etags: Vec<String>,
    /// Where to copy it from.
    pub origin: Origin,
}

impl Want {
    /// Whether the live object already is this.
    pub fn matches(&self, live: &ObjectInfo) -> bool {
        live.size == self.size
            && live
                .etag
                .as_deref()
                .is_some_and(|e| self.etags.iter().any(|w| w == e))
    }

    fn digest_line(&self) -> String {
        let origin = match &self.origin {
            Origin::Copy {
                copy, copy_etag, ..
            } => {
                format!("{copy} {}", copy_etag.as_deref().unwrap_or("-"))
            }
            Origin::Version(v) => format!("version {v}"),
        };
        format!(
            "W {:?} {} {} {origin}\n",
            self.key,
            self.size,
            self.etags.join(",")
        )
    }
}

/// One change a restore makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite the key with this.
    Put(Want),
    /// Delete this object (created since).
    Delete(ObjectInfo),
}

/// Counts, bytes and the first keys of one kind of change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Objects.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The first few keys.
    pub first: Vec<String>,
}

impl Tally {
    fn add(&mut self, key: &str, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        if self.first.len() < SHOWN {
            self.first.push(key.to_string());
        }
    }

    fn line(&self, verb: &str, tail: &str) -> String {
        let mut s = format!(
            "{verb:<10} {} object{} ({})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            render::size(self.bytes)
        );
        if !self.first.is_empty() {
            let more = if self.count > self.first.len() as u64 {
                ", …"
            } else {
                ""
            };
            let _ = write!(s, ": {}{more}", self.first.join(", "));
        }
        s.push_str(tail);
        s
    }
}

/// The dry-run diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Deleted since: created again.
    pub create: Tally,
    /// Changed since: overwritten.
    pub overwrite: Tally,
    /// Created since, deleted (`delete_newer`).
    pub delete: Tally,
    /// Created since and kept (no `delete_newer`).
    pub kept: Tally,
    /// Already as wanted: never rewritten.
    pub unchanged: Tally,
    /// sha256 of the source and every live object it was computed from.
    pub digest: String,
    /// Top-level folders of the source outside the scope (to help a prefix that matched
    /// nothing).
    pub elsewhere: BTreeSet<String>,
}

impl Diff {
    /// Objects it writes or deletes.
    pub fn changes(&self) -> u64 {
        self.create.count + self.overwrite.count + self.delete.count
    }

    /// The diff for people, one line per kind.
    pub fn render(&self) -> String {
        let mut out = vec![
            self.create.line("create", " (deleted since)"),
            self.overwrite.line("overwrite", " (changed since)"),
        ];
        if self.delete.count > 0 {
            out.push(self.delete.line("delete", " (created since)"));
        }
        if self.kept.count > 0 {
            out.push(self.kept.line(
                "keep",
                " (created since; add delete_newer:true to delete them)",
            ));
        }
        out.push(self.unchanged.line("unchanged", " (not touched)"));
        out.join("\n")
    }

    /// One line: `create 3, overwrite 2, delete 0, unchanged 10 (1.2 MiB to write)`.
    pub fn short(&self) -> String {
        format!(
            "create {}, overwrite {}, delete {}, unchanged {} ({} to write)",
            self.create.count,
            self.overwrite.count,
            self.delete.count,
            self.unchanged.count,
            render::size(self.create.bytes + self.overwrite.bytes)
        )
    }
}

/// The wanted objects in key order, from a manifest or from a version listing.
enum Wants {
    Manifest {
        reader: Box<Reader>,
        scope: Scope,
        done: bool,
        /// Where every copy must be (`<prefix>objects/`): a manifest naming anything else in
        /// the backup bucket (a database backup, say) is refused, not copied into the media.
        copies: String,
    },
    Listed(std::vec::IntoIter<Want>),
}

impl Wants {
    async fn open(b: &Buckets, plan: &Plan) -> Result<Wants, StorageError> {
        Ok(match &plan.from {
            From::Snapshot(key) => Wants::Manifest {
                reader: Box::new(Reader::open(&b.backup, key).await.map_err(|e| match e {
                    manifest::ManifestError::Bucket(crate::bucket::BucketError::Request {
                        ref detail,
                        ..
                    }) if detail.contains("NoSuchKey") => StorageError::Refused(format!(
                        "The snapshot {} is gone from {}.",
                        manifest::snapshot_name(key),
                        b.backup.name()
                    )),
                    other => StorageError::from(other),
                })?),
                scope: plan.scope.clone(),
                done: false,
                copies: format!("{}objects/", b.snapshots.prefix),
            },
            From::VersionsAt(at) => {
                let versions = b.media.versions(plan.scope.list_prefix()).await?;
                Wants::Listed(versions_at(&versions, *at, &plan.scope).into_iter())
            }
            From::Version(id) => {
                let versions = b.media.versions(plan.scope.list_prefix()).await?;
                let found = versions
                    .iter()
                    .find(|v| plan.scope.contains(&v.key) && v.version_id == *id);
                match found {
                    Some(v) if !v.delete_marker => Wants::Listed(
                        vec![Want {
                            key: v.key.clone(),
                            size: v.size,
                            etags: v.etag.clone().into_iter().collect(),
                            origin: Origin::Version(v.version_id.clone()),
                        }]
                        .into_iter(),
                    ),
                    Some(_) => {
                        return Err(StorageError::Refused(format!(
                            "Version {id} of {} is a delete marker: there is nothing to restore from it. /storage versions key:{} lists the others.",
                            plan.scope.describe(),
                            plan.scope.list_prefix()
                        )));
                    }
                    None => {
                        return Err(StorageError::Refused(format!(
                            "{} has no version {id}. /storage versions key:{} lists them.",
                            plan.scope.describe(),
                            plan.scope.list_prefix()
                        )));
                    }
                }
            }
        })
    }

    async fn next(
        &mut self,
        elsewhere: &mut BTreeSet<String>,
    ) -> Result<Option<Want>, StorageError> {
        match self {
            Wants::Listed(it) => Ok(it.next()),
            Wants::Manifest {
                reader,
                scope,
                done,
                copies,
            } => {
                while !*done {
                    let Some(e) = reader.next().await? else {
                        *done = true;
                        break;
                    };
                    if scope.contains(&e.key) {
                        if !e.copy.starts_with(copies.as_str()) || e.copy.contains("..") {
                            return Err(StorageError::Manifest(format!(
                                "the snapshot manifest {} says the copy of {} is {}, outside {copies}; it is not used",
                                manifest::snapshot_name(reader.name()),
                                e.key,
                                e.copy
                            )));
                        }
                        return Ok(Some(Want {
                            key: e.key,
                            size: e.size,
                            etags: std::iter::once(e.etag).chain(e.copy_etag.clone()).collect(),
                            origin: Origin::Copy {
                                copy: e.copy,
                                copy_etag: e.copy_etag,
                                headers: e.headers,
                            },
                        }));
                    }
                    if elsewhere.len() < 20 {
                        let top = e.key.split_inclusive('/').next().unwrap_or(&e.key);
                        elsewhere.insert(top.to_string());
                    }
                    // Past the prefix: the rest of the manifest is elsewhere too.
                    if scope.passed(&e.key) && elsewhere.len() >= 20 {
                        *done = true;
                    }
                }
                Ok(None)
            }
        }
    }
}

/// Each key's newest version at or before `at`, unless that is a delete marker.
fn versions_at(versions: &[Version], at: DateTime<Utc>, scope: &Scope) -> Vec<Want> {
    let mut out: Vec<Want> = Vec::new();
    let mut seen: Option<&str> = None;
    for v in versions {
        if !scope.contains(&v.key) || seen == Some(v.key.as_str()) {
            continue;
        }
        if v.last_modified.is_none_or(|t| t > at) {
            continue;
        }
        seen = Some(v.key.as_str());
        if !v.delete_marker {
            out.push(Want {
                key: v.key.clone(),
                size: v.size,
                etags: v.etag.clone().into_iter().collect(),
                origin: Origin::Version(v.version_id.clone()),
            });
        }
    }
    out
}

/// The live objects in scope, a page at a time.
struct Live<'a> {
    pages: Pages<'a>,
    buffer: VecDeque<ObjectInfo>,
    scope: Scope,
}

impl Live<'_> {
    async fn next(&mut self) -> Result<Option<ObjectInfo>, StorageError> {
        loop {
            if let Some(o) = self.buffer.pop_front() {
                if self.scope.contains(&o.key) {
                    return Ok(Some(o));
                }
                continue;
            }
            match self.pages.next().await? {
                Some(page) => self.buffer.extend(page),
                None => return Ok(None),
            }
        }
    }
}

/// Computes the diff; with `ops`, also the changes to make (only they are held in memory).
pub async fn diff(
    b: &Buckets,
    plan: &Plan,
    mut ops: Option<&mut Vec<Op>>,
) -> Result<Diff, StorageError> {
    let mut wants = Wants::open(b, plan).await?;
    let mut live = Live {
        pages: b.media.pages(plan.scope.list_prefix()),
        buffer: VecDeque::new(),
        scope: plan.scope.clone(),
    };
    let mut d = Diff::default();
    let mut hash = Sha256::new();
    hash.update(format!(
        "{}\n{:?}\n{}\n",
        plan.from.encode(),
        plan.scope,
        plan.delete_newer
    ));
    let mut w = wants.next(&mut d.elsewhere).await?;
    let mut l = live.next().await?;
    loop {
        match (w.take(), l.take()) {
            (None, None) => break,
            (Some(want), Some(obj)) if want.key == obj.key => {
                hash.update(want.digest_line());
                hash.update(live_line(&obj));
                if want.matches(&obj) {
                    d.unchanged.add(&want.key, want.size);
                } else {
                    d.overwrite.add(&want.key, want.size);
                    if let Some(ops) = ops.as_deref_mut() {
                        ops.push(Op::Put(want));
                    }
                }
                w = wants.next(&mut d.elsewhere).await?;
                l = live.next().await?;
            }
            (Some(want), obj) if obj.as_ref().is_none_or(|o| want.key < o.key) => {
                hash.update(want.digest_line());
                d.create.add(&want.key, want.size);
                if let Some(ops) = ops.as_deref_mut() {
                    ops.push(Op::Put(want));
                }
                w = wants.next(&mut d.elsewhere).await?;
                l = obj;
            }
            (want, Some(obj)) => {
                hash.update(live_line(&obj));
                if plan.delete_newer {
                    d.delete.add(&obj.key, obj.size);
                    if let Some(ops) = ops.as_deref_mut() {
                        ops.push(Op::Delete(obj));
                    }
                } else {
                    d.kept.add(&obj.key, obj.size);
                }
                w = want;
                l = live.next().await?;
            }
            // (Some, None) is a create above.
            (_, None) => break,
        }
    }
    d.digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(d)
}

fn live_line(o: &ObjectInfo) -> String {
    format!(
        "L {:?} {} {}\n",
        o.key,
        o.size,
        o.etag.as_deref().unwrap_or("-")
    )
}

/// After a restore: whether the objects in scope are now as wanted. `written` holds the ETag
/// each copy got (a copy of a multipart object gets a new one).
pub async fn mismatches(
    b: &Buckets,
    plan: &Plan,
    written: &std::collections::HashMap<String, String>,
) -> Result<(u64, Vec<String>), StorageError> {
    let mut wants = Wants::open(b, plan).await?;
    let mut live = Live {
        pages: b.media.pages(plan.scope.list_prefix()),
        buffer: VecDeque::new(),
        scope: plan.scope.clone(),
    };
    let mut elsewhere = BTreeSet::new();
    let (mut count, mut first) = (0u64, Vec::new());
    let mut miss = |key: &str, why: &str| {
        count += 1;
        if first.len() < SHOWN {
            first.push(format!("{key} ({why})"));
        }
    };
    let mut w = wants.next(&mut elsewhere).await?;
    let mut l = live.next().await?;
    loop {
        match (w.take(), l.take()) {
            (None, None) => break,
            (Some(want), Some(obj)) if want.key == obj.key => {
                let ok = want.matches(&obj)
                    || (obj.size == want.size
                        && obj.etag.is_some()
                        && written.get(&obj.key) == obj.etag.as_ref());
                if !ok {
                    miss(&want.key, "differs");
                }
                w = wants.next(&mut elsewhere).await?;
                l = live.next().await?;
            }
            (Some(want), obj) if obj.as_ref().is_none_or(|o| want.key < o.key) => {
                miss(&want.key, "missing");
                w = wants.next(&mut elsewhere).await?;
                l = obj;
            }
            (want, Some(obj)) => {
                if plan.delete_newer {
                    miss(&obj.key, "should be deleted");
                }
                w = want;
                l = live.next().await?;
            }
            (_, None) => break,
        }
    }
    Ok((count, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, id: &str, at: i64, marker: bool) -> Version {
        Version {
            key: key.to_string(),
            version_id: id.to_string(),
            is_latest: false,
            last_modified: DateTime::from_timestamp(at, 0),
            size: 1,
            etag: (!marker).then(|| format!("e{id}")),
            delete_marker: marker,
        }
    }

    #[test]
    fn versions_at_take_each_keys_newest_version_not_after_the_time() {
        // Newest first within a key, as Bucket::versions sorts them.
        let list = vec![
            v("a", "a3", 300, false),
            v("a", "a2", 200, true),
            v("a", "a1", 100, false),
            v("b", "b2", 250, true),
            v("b", "b1", 100, false),
            v("c", "c1", 400, false),
            v("x/d", "d1", 100, false),
        ];
        let scope = Scope::Prefix(String::new());
        let keys = |at| {
            versions_at(&list, DateTime::from_timestamp(at, 0).unwrap(), &scope)
                .into_iter()
                .map(|w| match w.origin {
                    Origin::Version(id) => id,
                    Origin::Copy { .. } => unreachable!(),
                })
                .collect::<Vec<_>>()
        };
        // At 150: a1, b1 (b deleted only at 250), c did not exist yet.
        assert_eq!(keys(150), ["a1", "b1", "d1"]);
        // At 260: a was deleted at 200, b at 250.
        assert_eq!(keys(260), ["d1"]);
        assert_eq!(keys(1000), ["a3", "c1", "d1"]);
        assert!(
            versions_at(
                &list,
                DateTime::from_timestamp(150, 0).unwrap(),
                &Scope::Prefix("x/".into())
            )
            .len()
                == 1
        );
    }

    #[test]
    fn scopes_know_their_keys_and_when_they_are_passed() {
        let p = Scope::Prefix("art/".to_string());
        assert!(p.contains("art/a.jpg") && !p.contains("arts/a.jpg"));
        assert!(!p.passed("a") && !p.passed("art/z") && p.passed("b"));
        let k = Scope::Key("art/a.jpg".to_string());
        assert!(k.contains("art/a.jpg") && !k.contains("art/a.jpg.bak"));
        for f in [
            From::Snapshot("media/snapshots/x.jsonl.xz".into()),
            From::Version("3/L4kqtJl".into()),
            From::VersionsAt(DateTime::from_timestamp(100, 0).unwrap()),
        ] {
            assert_eq!(From::decode(&f.encode()), Some(f));
        }
        assert_eq!(From::decode("nonsense"), None);
    }
}
