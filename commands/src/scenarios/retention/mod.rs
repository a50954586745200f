//! `/backup prune`: `[retention]` applied to database backups, Meilisearch dumps and media
//! snapshots, and then to
//! the snapshot copies no remaining manifest references (mark and sweep) — through the approval
//! gate, with the dry run's list as the request; or by `serve` once a day, which lists what it
//! will delete first (in the channel and the audit log) and deletes it the next round.
//!
//! Guard rails: nothing of a kind is pruned while its newest verified backup is older than its
//! RPO; an execution deletes only what was listed (approved) *and* is still deletable when it
//! runs, under the media bucket's lock (no snapshot or restore reads a manifest meanwhile);
//! copies are swept only after the snapshots are deleted, against every manifest that remains,
//! and only past `copy_grace_hours` (a snapshot being taken writes its copies before its
//! manifest). A kill at any moment leaves nothing a remaining manifest names deleted. Every
//! deletion is on the audit log with its key and bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::Duration;
use drbot_state::EntryKind;
use futures_util::StreamExt as _;

use crate::bucket::Bucket;
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::{Choice, CommandSpec, Invocation, cmd, destructive, req};
use crate::progress::ProgressSink;
use crate::render::size;
use crate::reply::Reply;
use crate::retention::{Item, Plan, plan, stale};
use crate::scenario::{
    Answer, Boxed, Destructive, Inputs, Post, PostKind, Prepared, Reread, Scenario,
    post_to_open_incidents,
};
use crate::scenarios::database::{backup, catalogue, staged};
use crate::scenarios::storage::{manifest, media::Buckets};

/// The scenario of the backups themselves.
pub struct Backups;

/// The one instance registered in `scenarios::ALL`.
pub static BACKUPS: Backups = Backups;

const COMMANDS: &[CommandSpec] = &[destructive(cmd(
    "backup",
    Some("prune"),
    "Apply [retention] to backups and snapshots; dry_run:true only lists what would go",
    &[req(
        "dry_run",
        "true: list what would be deleted, with bytes; false: ask to delete it",
        Choice(&["true", "false"]),
    )],
))];

/// The kinds a prune covers, as named in its inputs.
const DATABASE: &str = "database";
const DUMPS: &str = "dumps";
const SNAPSHOTS: &str = "snapshots";
const COPIES: &str = "copies";
const KEPT: &str = "databases";

/// What `/backup prune` would delete now, per kind.
#[derive(Debug, Default)]
pub struct Survey {
    /// Database backups: the plan, or why none may be pruned.
    pub database: Option<(Plan, Option<String>)>,
    /// Meilisearch dumps: the plan, or why none may be pruned.
    pub dumps: Option<(Plan, Option<String>)>,
    /// Media snapshots: the plan, or why none may be pruned.
    pub snapshots: Option<(Plan, Option<String>)>,
    /// Snapshot copies no kept manifest references, past the grace.
    pub copies: Vec<Item>,
    /// Databases kept from before staged restores (`target/name`), past `keep_all_hours`
    /// with no incident open; and why a staged target's could not be listed.
    pub kept: (Vec<Item>, Vec<String>),
}

impl Survey {
    /// What would be deleted, per kind (empty kinds left out).
    pub fn deletions(&self) -> BTreeMap<&'static str, Vec<&Item>> {
        let mut out = BTreeMap::new();
        for (kind, p) in [
            (DATABASE, &self.database),
            (DUMPS, &self.dumps),
            (SNAPSHOTS, &self.snapshots),
        ] {
            if let Some((plan, None)) = p
                && !plan.delete.is_empty()
            {
                out.insert(kind, plan.delete.iter().collect());
            }
        }
        if !self.copies.is_empty() {
            out.insert(COPIES, self.copies.iter().collect());
        }
        if !self.kept.0.is_empty() {
            out.insert(KEPT, self.kept.0.iter().collect());
        }
        out
    }

    /// The request's inputs: each kind's keys, one a line.
    pub fn inputs(&self) -> Inputs {
        self.deletions()
            .into_iter()
            .map(|(k, items)| {
                let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
                (k.to_string(), keys.join("\n"))
            })
            .collect()
    }

    /// One line a kind: kept, deleted with bytes, or why nothing is.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (name, p) in [
            ("Database backups", &self.database),
            ("Meilisearch dumps", &self.dumps),
            ("Media snapshots", &self.snapshots),
        ] {
            match p {
                None => {}
                Some((plan, Some(why))) => {
                    let _ = writeln!(
                        out,
                        "{name}: none pruned — {why}; a broken backup job must not eat the last good backups ({} kept as they are).",
                        plan.keep.len() + plan.delete.len()
                    );
                }
                Some((plan, None)) => {
                    let _ = writeln!(
                        out,
                        "{name}: keep {} ({}), delete {} ({}).",
                        plan.keep.len(),
                        reasons(plan),
                        plan.delete.len(),
                        size(plan.bytes())
                    );
                }
            }
        }
        if self.snapshots.is_some() {
            let bytes: u64 = self.copies.iter().map(|c| c.bytes).sum();
            let _ = writeln!(
                out,
                "Snapshot copies no kept snapshot references (past the grace): delete {} ({}).",
                self.copies.len(),
                size(bytes)
            );
        }
        if !self.kept.0.is_empty() {
            let bytes: u64 = self.kept.0.iter().map(|c| c.bytes).sum();
            let _ = writeln!(
                out,
                "Databases kept from before staged restores, older than keep_all_hours (no incident open): drop {} ({}).",
                self.kept.0.len(),
                size(bytes)
            );
        }
        for why in &self.kept.1 {
            let _ = writeln!(out, "Kept databases: {why}; none dropped there.");
        }
        if out.is_empty() {
            out.push_str("Nothing to prune: no [storage] backup bucket is configured.\n");
        }
        out
    }

    /// Every key that would go, with its bytes.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for (kind, items) in self.deletions() {
            let _ = writeln!(out, "{kind}:");
            for i in items {
                let _ = writeln!(out, "  {}  {}", i.key, size(i.bytes));
            }
        }
        out
    }
}

/// How many are kept for each reason, in words.
fn reasons(plan: &Plan) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (_, why) in &plan.keep {
        let word = match why {
            crate::retention::Why::Undated => "undated",
            crate::retention::Why::Young => "young",
            crate::retention::Why::Daily(_) => "daily",
            crate::retention::Why::Weekly(..) => "weekly",
            crate::retention::Why::Monthly(..) => "monthly",
            crate::retention::Why::MinKeep => "min_keep",
        };
        *counts.entry(word).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    parts.join(", ")
}

/// Reads of the bucket at once while surveying (manifests).
const CONCURRENT_READS: usize = 16;

/// The database backups as retention items: the time in the name, verified by the manifest.
async fn database_items(
    engine: &Engine,
    bucket: &Bucket,
    prefix: &str,
) -> Result<Vec<Item>, CommandError> {
    let verified_only = catalogue::verified_only(engine);
    let list = catalogue::list_backups(bucket, prefix).await?;
    let items = futures_util::stream::iter(list)
        .map(|o| async move {
            let m = backup::fetch_manifest(bucket, &o.key).await;
            let sound = m.as_ref().is_some_and(|m| m.size_problem(o.size).is_none());
            let verified = sound
                && m.as_ref()
                    .is_some_and(|m| m.verified_at.is_some() || !verified_only);
            Item {
                at: catalogue::name_time(&o.key),
                key: o.key,
                verified,
                bytes: o.size,
            }
        })
        .buffered(CONCURRENT_READS)
        .collect::<Vec<_>>()
        .await;
    Ok(items)
}

/// The snapshots as retention items (a listed manifest is a complete snapshot).
async fn snapshot_items(b: &Buckets) -> Result<Vec<Item>, CommandError> {
    Ok(manifest::list(&b.backup, &b.snapshots.prefix)
        .await?
        .into_iter()
        .map(|s| Item {
            key: s.key,
            at: Some(s.at),
            verified: true,
            bytes: s.size,
        })
        .collect())
}

/// Every copy the manifests `keys` name (reading each whole, as a stream).
async fn referenced(b: &Buckets, keys: &[String]) -> Result<BTreeSet<String>, CommandError> {
    let mut out = BTreeSet::new();
    for key in keys {
        let mut reader = manifest::Reader::open(&b.backup, key)
            .await
            .map_err(|e| CommandError::Failed(format!("Reading snapshot {key}: {e}.")))?;
        while let Some(entry) = reader
            .next()
            .await
            .map_err(|e| CommandError::Failed(format!("Reading snapshot {key}: {e}.")))?
        {
            out.insert(entry.copy);
        }
    }
    Ok(out)
}

/// Copies under the snapshot prefix that no manifest in `kept` names and that are older than
/// the grace.
async fn unreferenced_copies(
    engine: &Engine,
    b: &Buckets,
    kept: &[String],
) -> Result<Vec<Item>, CommandError> {
    let refs = referenced(b, kept).await?;
    let grace = Duration::hours(engine.config().retention.copy_grace_hours as i64);
    let before = engine.now() - grace;
    Ok(b.backup
        .list(&format!("{}objects/", b.snapshots.prefix))
        .await?
        .into_iter()
        .filter(|o| !refs.contains(&o.key))
        .filter(|o| o.last_modified.is_some_and(|t| t < before))
        .map(|o| Item {
            at: o.last_modified,
            key: o.key,
            verified: false,
            bytes: o.size,
        })
        .collect())
}

/// What a prune would delete now.
/// The databases kept from before staged restores that retention drops: older than
/// `keep_all_hours`, and none while an incident is open (the way back must stay). Key:
/// `target/name`.
async fn kept_databases(engine: &Engine) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    if engine
        .store()
        .active_incidents()
        .map_or(true, |open| !open.is_empty())
    {
        return (items, problems);
    }
    let cutoff = engine.now() - Duration::hours(engine.config().retention.keep_all_hours as i64);
    for (name, t) in &engine.config().targets {
        if !t.staged {
            continue;
        }
        let listed = async {
            let target = crate::pg::Target::resolve(engine.config(), name, &engine.env())?;
            let live = staged::live_database(&target)?;
            staged::kept(&staged::server(&target, &live), &live).await
        }
        .await;
        match listed {
            Ok(kept) => items.extend(kept.into_iter().filter(|(_, at)| *at < cutoff).map(
                |(m, at)| Item {
                    key: format!("{name}/{}", m.name),
                    at: Some(at),
                    verified: true,
                    bytes: m.bytes.max(0) as u64,
                },
            )),
            Err(e) => problems.push(format!("{name}'s could not be listed ({e})")),
        }
    }
    (items, problems)
}

pub async fn survey(engine: &Engine) -> Result<Survey, CommandError> {
    let now = engine.now();
    let r = &engine.config().retention;
    let rpo = &engine.config().objectives.rpo;
    let mut out = Survey {
        kept: kept_databases(engine).await,
        ..Survey::default()
    };
    let Ok((bucket, s)) = catalogue::backup_bucket(engine) else {
        return Ok(out);
    };
    let items = database_items(engine, &bucket, &s.db_prefix).await?;
    let why = stale(&items, now, Duration::minutes(rpo.database as i64));
    out.database = Some((plan(items, now, r), why));
    // Dumps are kept by the time in their names; a stored dump was checked at upload.
    let dumps: Vec<Item> = bucket
        .list(&s.meili_prefix)
        .await?
        .into_iter()
        .filter(|o| !o.key.ends_with('/'))
        .map(|o| Item {
            at: crate::scenarios::search::stored::name_time(&o.key),
            key: o.key,
            verified: true,
            bytes: o.size,
        })
        .collect();
    if !dumps.is_empty() {
        let why = stale(&dumps, now, Duration::minutes(rpo.search as i64));
        out.dumps = Some((plan(dumps, now, r), why));
    }
    if let Ok(b) = Buckets::of(engine) {
        let items = snapshot_items(&b).await?;
        let why = stale(&items, now, Duration::minutes(rpo.storage as i64));
        let p = plan(items, now, r);
        if why.is_none() {
            let kept: Vec<String> = p.keep.iter().map(|(i, _)| i.key.clone()).collect();
            out.copies = unreferenced_copies(engine, &b, &kept).await?;
        }
        out.snapshots = Some((p, why));
    }
    Ok(out)
}

/// What an execution deleted.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Per kind: how many, and bytes.
    pub deleted: BTreeMap<&'static str, (usize, u64)>,
    /// Listed but kept, because they are no longer deletable now.
    pub spared: usize,
}

impl Pruned {
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .deleted
            .iter()
            .map(|(k, (n, b))| format!("{n} {k} ({})", size(*b)))
            .collect();
        let spared = if self.spared > 0 {
            format!(
                " {} listed were kept: they are no longer to be deleted under [retention] now.",
                self.spared
            )
        } else {
            String::new()
        };
        if parts.is_empty() {
            format!("Nothing was deleted.{spared}")
        } else {
            format!("Deleted {}.{spared}", parts.join(", "))
        }
    }
}

/// Deletes what `listed` names and a survey taken now, under the media bucket's lock, still
/// deletes: database backups (object, then manifest), snapshots, then the copies no remaining
/// manifest references. Each deletion is on the audit log.
pub async fn apply(engine: &Engine, listed: &Inputs) -> Result<Pruned, CommandError> {
    let media = Buckets::of(engine)
        .ok()
        .map(|b| crate::scenarios::storage::action::lock_name(b.media.name()));
    let _guard = match &media {
        Some(name) => Some(
            engine
                .restores()
                .take(name, "a prune".to_string())
                .map_err(|crate::locks::Busy { running, .. }| {
                    CommandError::Refused(format!(
                        "{running} is running on the media bucket; prune when it is done."
                    ))
                })?,
        ),
        None => None,
    };
    let wanted = |kind: &str| -> BTreeSet<String> {
        listed
            .get(kind)
            .map(|v| v.lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let now_survey = survey(engine).await?;
    let mut out = Pruned::default();
    let audit = |key: &str, bytes: u64, what: &str| {
        engine.store().append_audit(engine.system_entry(
            EntryKind::Command,
            &format!("Pruned {what} {key} ({}) under [retention].", size(bytes)),
        ))
    };
    if let Ok((bucket, _)) = catalogue::backup_bucket(engine) {
        let allowed = wanted(DATABASE);
        if let Some((plan, None)) = &now_survey.database {
            for item in plan.delete.iter().filter(|i| allowed.contains(&i.key)) {
                bucket.delete(&item.key).await?;
                audit(&item.key, item.bytes, "database backup")?;
                bucket
                    .delete(&format!("{}{}", item.key, catalogue::MANIFEST_SUFFIX))
                    .await?;
                let e = out.deleted.entry(DATABASE).or_default();
                e.0 += 1;
                e.1 += item.bytes;
            }
        }
        out.spared += allowed.len() - out.deleted.get(DATABASE).map_or(0, |e| e.0);
    }
    if let Ok((bucket, _)) = catalogue::backup_bucket(engine) {
        let allowed = wanted(DUMPS);
        if let Some((plan, None)) = &now_survey.dumps {
            for item in plan.delete.iter().filter(|i| allowed.contains(&i.key)) {
                bucket.delete(&item.key).await?;
                audit(&item.key, item.bytes, "Meilisearch dump")?;
                let e = out.deleted.entry(DUMPS).or_default();
                e.0 += 1;
                e.1 += item.bytes;
            }
        }
        out.spared += allowed.len() - out.deleted.get(DUMPS).map_or(0, |e| e.0);
    }
    if let Ok(b) = Buckets::of(engine) {
        let allowed = wanted(SNAPSHOTS);
        if let Some((plan, None)) = &now_survey.snapshots {
            for item in plan.delete.iter().filter(|i| allowed.contains(&i.key)) {
                b.backup.delete(&item.key).await?;
                audit(&item.key, item.bytes, "snapshot manifest")?;
                let e = out.deleted.entry(SNAPSHOTS).or_default();
                e.0 += 1;
                e.1 += item.bytes;
            }
        }
        out.spared += allowed.len() - out.deleted.get(SNAPSHOTS).map_or(0, |e| e.0);
        // The sweep: against every manifest that remains now, whatever was or was not deleted.
        let allowed = wanted(COPIES);
        if !allowed.is_empty()
            && now_survey
                .snapshots
                .as_ref()
                .is_some_and(|(_, w)| w.is_none())
        {
            let remaining: Vec<String> = manifest::list(&b.backup, &b.snapshots.prefix)
                .await?
                .into_iter()
                .map(|s| s.key)
                .collect();
            for item in unreferenced_copies(engine, &b, &remaining)
                .await?
                .iter()
                .filter(|i| allowed.contains(&i.key))
            {
                b.backup.delete(&item.key).await?;
                audit(&item.key, item.bytes, "snapshot copy")?;
                let e = out.deleted.entry(COPIES).or_default();
                e.0 += 1;
                e.1 += item.bytes;
            }
        }
        out.spared += allowed.len() - out.deleted.get(COPIES).map_or(0, |e| e.0);
    }
    let allowed = wanted(KEPT);
    for item in now_survey
        .kept
        .0
        .iter()
        .filter(|i| allowed.contains(&i.key))
    {
        let Some((name, database)) = item.key.split_once('/') else {
            continue;
        };
        let target = crate::pg::Target::resolve(engine.config(), name, &engine.env())?;
        let live = staged::live_database(&target)?;
        if staged::drop_made(&staged::server(&target, &live), database).await? {
            audit(&item.key, item.bytes, "kept database")?;
            let e = out.deleted.entry(KEPT).or_default();
            e.0 += 1;
            e.1 += item.bytes;
        }
    }
    out.spared += allowed.len() - out.deleted.get(KEPT).map_or(0, |e| e.0);
    engine.store().flush().await?;
    Ok(out)
}

/// `/backup prune dry_run:true`: the survey, its whole list attached.
async fn dry_run(engine: &Engine, ctx: &Context, inv: &Invocation) -> Answer {
    let s = survey(engine).await?;
    let count: usize = s.deletions().values().map(Vec::len).sum();
    let next = if count > 0 {
        "Nothing was deleted (dry run). To delete exactly these: /backup prune dry_run:false (a second person approves)."
    } else {
        "Nothing to delete under [retention] now; nothing was changed."
    };
    let text = format!("{}{next}", s.summary());
    engine.record(ctx, inv, EntryKind::Command, s.summary().trim_end())?;
    let mut reply = Reply::done(text);
    if count > 0 {
        reply = reply.with_attachment("prune-dry-run.txt".to_string(), s.listing());
    }
    Ok(reply)
}

/// The prune as a destructive action.
struct Prune;

impl Destructive for Prune {
    fn kind(&self) -> &'static str {
        "backup-prune"
    }

    fn spec(&self) -> &'static CommandSpec {
        &COMMANDS[0]
    }

    fn prepare<'a>(
        &'a self,
        engine: &'a Engine,
        _inv: &'a Invocation,
        progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Result<Prepared, CommandError>> {
        Box::pin(async move {
            progress.update("Listing backups and snapshots against [retention]…");
            let s = survey(engine).await?;
            let inputs = s.inputs();
            if inputs.is_empty() {
                return Err(CommandError::Refused(format!(
                    "{}Nothing to delete; no approval was requested.",
                    s.summary()
                )));
            }
            let deletions = s.deletions();
            let counts: Vec<(String, String)> = deletions
                .iter()
                .map(|(k, v)| {
                    let bytes: u64 = v.iter().map(|i| i.bytes).sum();
                    (
                        format!("{k} to delete"),
                        format!("{} ({})", v.len(), size(bytes)),
                    )
                })
                .collect();
            let words: Vec<String> = deletions
                .iter()
                .map(|(k, v)| {
                    let bytes: u64 = v.iter().map(|i| i.bytes).sum();
                    format!("{} {k} ({})", v.len(), size(bytes))
                })
                .collect();
            Ok(Prepared {
                summary: format!("prune under [retention]: delete {}", words.join(", ")),
                details: format!("{}{}", s.summary(), s.listing()),
                inputs,
                facts: counts,
            })
        })
    }

    fn reread<'a>(
        &'a self,
        engine: &'a Engine,
        stored: &'a Inputs,
    ) -> Boxed<'a, Result<Inputs, Reread>> {
        Box::pin(async move {
            let now = survey(engine).await.map_err(Reread::Failed)?.inputs();
            // Still deletable, every one of them: run as approved. Otherwise what is left.
            let mut same = Inputs::new();
            for (kind, keys) in stored {
                let current: BTreeSet<&str> = now
                    .get(kind)
                    .map(|v| v.lines().collect())
                    .unwrap_or_default();
                let kept: Vec<&str> = keys.lines().filter(|k| current.contains(k)).collect();
                if !kept.is_empty() {
                    same.insert(kind.clone(), kept.join("\n"));
                }
            }
            Ok(same)
        })
    }

    fn short(&self, inputs: &Inputs) -> String {
        let n: usize = inputs.values().map(|v| v.lines().count()).sum();
        format!("prune {n} objects under [retention]")
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        inputs: &'a Inputs,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        Box::pin(async move {
            let pruned = apply(engine, inputs).await?;
            let text = format!("Prune under [retention]: {}", pruned.text());
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            Ok(Reply::done(text))
        })
    }
}

/// The daily prune: the round that finds something lists it (channel and audit log) and the
/// next round, at least this much later, deletes what it listed and is still deletable.
const LIST_AHEAD: i64 = 10;
const DAILY: &str = "backup-prune";
const LISTED: &str = "backup-prune-listed";

async fn daily(engine: &Engine) -> Result<Vec<Post>, CommandError> {
    let now = engine.now();
    if let Some(listed) = engine.store().note(LISTED)?.filter(|l| !l.is_empty()) {
        let at = engine.store().last_run(LISTED)?.unwrap_or(now);
        if now - at < Duration::minutes(LIST_AHEAD) {
            return Ok(Vec::new());
        }
        let inputs: Inputs = serde_json::from_str(&listed).unwrap_or_default();
        engine.store().set_note(LISTED, "")?;
        let pruned = apply(engine, &inputs).await?;
        return post_to_open_incidents(
            engine,
            PostKind::Status,
            format!("Daily prune under [retention]: {}", pruned.text()),
        );
    }
    if engine
        .store()
        .last_run(DAILY)?
        .is_some_and(|t| now - t < Duration::hours(24))
    {
        return Ok(Vec::new());
    }
    engine.store().set_last_run(DAILY, now)?;
    let s = survey(engine).await?;
    let inputs = s.inputs();
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::to_string(&inputs)
        .map_err(|e| CommandError::Failed(format!("Listing the prune: {e}.")))?;
    engine.store().append_audit(engine.system_entry(
        EntryKind::Status,
        &format!("Daily prune will delete:\n{}", s.listing()),
    ))?;
    engine.store().set_note(LISTED, &json)?;
    engine.store().set_last_run(LISTED, now)?;
    post_to_open_incidents(
        engine,
        PostKind::Status,
        format!(
            "Daily prune under [retention], in {LIST_AHEAD} minutes or more: {}The full list is on the audit log; /backup prune dry_run:true shows it too.",
            s.summary()
        ),
    )
}

impl Scenario for Backups {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn commands(&self) -> &'static [CommandSpec] {
        COMMANDS
    }

    fn run<'a>(
        &'a self,
        engine: &'a Engine,
        ctx: &'a Context,
        inv: &'a Invocation,
        _progress: &'a dyn ProgressSink,
    ) -> Boxed<'a, Answer> {
        // Only the dry run comes here; the deletion goes through the gate.
        Box::pin(dry_run(engine, ctx, inv))
    }

    fn actions(&self) -> &'static [&'static dyn Destructive] {
        &[&Prune]
    }

    fn scheduled<'a>(&'a self, engine: &'a Engine) -> Boxed<'a, Result<Vec<Post>, CommandError>> {
        Box::pin(daily(engine))
    }
}
