//! The storage scenario's commands that change no media: `/storage check`, `/storage
//! versions`, `/storage snapshot` (writes only to the backup bucket), `/storage snapshots`,
//! `/storage verify`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use drbot_state::{EntryKind, StepState};

use super::action::lock_name;
use super::manifest::{self, Reader, Snapshot, Totals};
use super::media::{Buckets, StorageError};
use super::snapshot;
use crate::bucket::{Bucket, Versioning};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::progress::ProgressSink;
use crate::render::{self, size};
use crate::reply::Reply;

pub use super::media::PROBE_PREFIX;

/// How long the platform's upload test may take.
const UPLOAD_TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Snapshots `/storage versions` looks into on a bucket without versions.
const VERSIONS_SCAN: usize = 10;

/// The newest snapshot's age against the storage RPO, in one sentence.
pub fn rpo_line(engine: &Engine, newest: Option<&Snapshot>, media: &str) -> (bool, String) {
    let rpo = chrono::Duration::minutes(engine.config().objectives.rpo.storage as i64);
    match newest {
        Some(s) => {
            let age = engine.now() - s.at;
            if age <= rpo {
                (
                    true,
                    format!(
                        "Newest snapshot {} is {} old — within the {} storage RPO.",
                        s.name(),
                        render::duration(age),
                        render::duration(rpo)
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "Newest snapshot {} is {} old — {} past the {} storage RPO. Take one now: /storage snapshot.",
                        s.name(),
                        render::duration(age),
                        render::duration(age - rpo),
                        render::duration(rpo)
                    ),
                )
            }
        }
        None => (
            false,
            format!(
                "There is no snapshot of {media} yet: the {} storage RPO cannot be met. Take one now: /storage snapshot.",
                render::duration(rpo)
            ),
        ),
    }
}

/// Versioning in words, said plainly.
fn versioning_line(v: &Versioning, media: &str) -> String {
    match v {
        Versioning::Enabled => format!(
            "Versioning: enabled on {media} — earlier versions are kept; /storage versions lists them."
        ),
        Versioning::Suspended => format!(
            "Versioning: suspended on {media} — versions written while it was on are kept, new writes keep none; drbot's snapshots cover the rest."
        ),
        Versioning::Never => format!(
            "Versioning: never enabled on {media} — no earlier versions exist; drbot's snapshots are the way back."
        ),
        Versioning::Unsupported => format!(
            "Versioning: none — {media} is on a service without object versioning (R2 answers 501 NotImplemented); drbot's snapshots are the way back."
        ),
    }
}

/// `/storage check`.
pub async fn check(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let b = Buckets::of(engine)?;
    let media = b.media.name().to_string();
    let started = Instant::now();
    let mut pages = b.media.pages("");
    let mut first_latency = None;
    let mut last_report = Instant::now();
    let mut by_top: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut objects, mut bytes) = (0u64, 0u64);
    loop {
        let page = match pages.next().await {
            Ok(p) => p,
            Err(e) => {
                let text = format!(
                    "{media} cannot be listed: {e}. Nothing was changed. Check R2's status and the keys, then /storage check again."
                );
                engine.step_failed(ctx, inv, inv.spec, None, &text, e.to_string())?;
                return Err(CommandError::Failed(text));
            }
        };
        first_latency.get_or_insert(started.elapsed());
        let Some(page) = page else { break };
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            progress.update(&format!("Listing {media}: {objects} objects so far…"));
        }
        for o in page {
            objects += 1;
            bytes += o.size;
            let top = match o.key.split_once('/') {
                Some((t, _)) => format!("{t}/"),
                None => "(top level)".to_string(),
            };
            let e = by_top.entry(top).or_default();
            e.0 += 1;
            e.1 += o.size;
        }
    }
    let versioning = b.media.versioning().await;
    let snapshots = manifest::list(&b.backup, &b.snapshots.prefix).await;
    let mut text = format!(
        "{media} answers ({} ms to the first page): {objects} objects, {}.",
        first_latency.unwrap_or_default().as_millis(),
        size(bytes)
    );
    let mut tops: Vec<_> = by_top.into_iter().collect();
    tops.sort_by_key(|t| std::cmp::Reverse(t.1.1));
    for (top, (n, s)) in tops.iter().take(10) {
        let _ = write!(text, "\n  {top:<24} {n:>9} objects  {:>10}", size(*s));
    }
    if tops.len() > 10 {
        let _ = write!(text, "\n  … and {} more folders", tops.len() - 10);
    }
    match &versioning {
        Ok(v) => {
            let _ = write!(text, "\n{}", versioning_line(v, &media));
        }
        Err(e) => {
            let _ = write!(text, "\nVersioning: could not be read ({e}).");
        }
    }
    let rpo_ok = match &snapshots {
        Ok(list) => {
            let (ok, line) = rpo_line(engine, list.first(), &media);
            let _ = write!(text, "\n{line}");
            ok
        }
        Err(e) => {
            let _ = write!(
                text,
                "\nSnapshots in {} could not be listed: {e}.",
                b.backup.name()
            );
            false
        }
    };
    let next = if rpo_ok {
        "Next: /storage versions prefix:<folder> to see what can be brought back, or /storage restore."
    } else {
        "Next: /storage snapshot, then /storage versions prefix:<folder>."
    };
    let _ = write!(text, "\n{next}");
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/storage check: {media} answers, {objects} objects, {}; versioning {}.",
            size(bytes),
            match &versioning {
                Ok(Versioning::Unsupported) => "unsupported",
                Ok(Versioning::Enabled) => "enabled",
                Ok(Versioning::Suspended) => "suspended",
                Ok(Versioning::Never) => "never enabled",
                Err(_) => "unknown",
            }
        ),
    )?;
    engine.step_finished(ctx, inv, inv.spec, None, StepState::Done, None)?;
    Ok(Reply::done(text))
}

/// `/storage snapshot`.
pub async fn take_snapshot(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let b = Buckets::of(engine)?;
    let media = b.media.name().to_string();
    let _guard = engine
        .restores()
        .take(
            &lock_name(&media),
            format!("{} taking a snapshot", ctx.actor.name),
        )
        .map_err(|crate::locks::Busy { running, .. }| {
            CommandError::Refused(format!(
                "{media} is busy ({running}). Wait for it to finish, then /storage snapshot."
            ))
        })?;
    progress.update(&format!("Snapshot of {media}: listing…"));
    match snapshot::take(&b, engine.now(), progress).await {
        Ok(t) => {
            let text = taken_text(&b, &t);
            engine.record(
                ctx,
                inv,
                EntryKind::Command,
                text.lines().next().unwrap_or_default(),
            )?;
            Ok(Reply::done(format!(
                "{text}\nNext: /storage snapshots lists them; /storage restore prefix:<folder> at:{} brings a folder back to it.",
                manifest::snapshot_name(&t.key)
            )))
        }
        Err(e) => {
            let text = format!("Snapshot of {media} failed: {e}");
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            Err(match e {
                StorageError::Refused(_) | StorageError::NoMedia => CommandError::Refused(text),
                _ => CommandError::Failed(text),
            })
        }
    }
}

/// What a snapshot did, for people.
pub fn taken_text(b: &Buckets, t: &snapshot::Taken) -> String {
    let mut text = format!(
        "Snapshot {} of {}: {} objects ({}); {} new copies ({} copied server-side), {} unchanged{}; in {} ({}).",
        manifest::snapshot_name(&t.key),
        b.media.name(),
        t.totals.objects,
        size(t.totals.bytes),
        t.totals.new_copies,
        size(t.totals.copied_bytes),
        t.totals.objects - t.totals.new_copies - t.already_held,
        if t.already_held > 0 {
            format!(", {} already held by an earlier copy", t.already_held)
        } else {
            String::new()
        },
        render::took(t.took),
        t.requests.render()
    );
    let _ = write!(text, "\nManifest: s3://{}/{}", b.backup.name(), t.key);
    if let Some(why) = &t.previous_broken {
        let _ = write!(
            text,
            "\nThe previous manifest could not be used ({why}); every object was looked at again, and copies already held were not made again."
        );
    }
    text
}

/// Reads the totals of a snapshot: from its manifest's metadata, else from its last line.
async fn totals_of(bucket: &Bucket, s: &Snapshot) -> Option<Totals> {
    if let Ok(Some((_, h))) = bucket.head_headers(&s.key, None).await
        && let Some(t) = Totals::from_metadata(&h.metadata)
    {
        return Some(t);
    }
    let mut r = Reader::open(bucket, &s.key).await.ok()?;
    while r.next().await.ok()?.is_some() {}
    r.totals().cloned()
}

/// `/storage snapshots`.
pub async fn snapshots(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let b = Buckets::of(engine)?;
    let limit: usize = inv.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let list = manifest::list(&b.backup, &b.snapshots.prefix)
        .await
        .map_err(StorageError::from)?;
    let media = b.media.name();
    let (_, rpo) = rpo_line(engine, list.first(), media);
    if list.is_empty() {
        engine.record(ctx, inv, EntryKind::Command, &rpo)?;
        return Err(CommandError::Failed(rpo));
    }
    let now = engine.now();
    let mut text = format!(
        "{rpo} {} snapshots in {}/{}.",
        list.len(),
        b.backup.name(),
        manifest::manifests_prefix(&b.snapshots.prefix)
    );
    for s in list.iter().take(limit) {
        let totals = totals_of(&b.backup, s).await;
        let counts = match totals {
            Some(t) => format!(
                "{:>8} objects  {:>10}  {:>6} new copies",
                t.objects,
                size(t.bytes),
                t.new_copies
            ),
            None => "unreadable manifest (it is skipped by restores)".to_string(),
        };
        let _ = write!(
            text,
            "\n  {}  {:>8} old  {counts}",
            s.name(),
            render::duration(now - s.at)
        );
    }
    let _ = write!(
        text,
        "\nRestore a folder as it was: /storage restore prefix:<folder> at:<snapshot or time>."
    );
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/storage snapshots: {} snapshots; newest {}.",
            list.len(),
            list[0].name()
        ),
    )?;
    Ok(Reply::done(text))
}

/// `/storage versions`.
pub async fn versions(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let b = Buckets::of(engine)?;
    let media = b.media.name().to_string();
    let (scope, exact) = match (inv.get("key"), inv.get("prefix")) {
        (Some(k), None) => (k.to_string(), true),
        (None, Some(p)) => (p.to_string(), false),
        _ => {
            return Err(CommandError::Usage(format!(
                "Give one of key: (one object) or prefix: (a folder). Usage: {}",
                inv.spec.usage()
            )));
        }
    };
    let versioning = b.media.versioning().await;
    let text = if versioning.as_ref().is_ok_and(Versioning::has_versions) {
        let all = b.media.versions(&scope).await?;
        let list: Vec<_> = all.iter().filter(|v| !exact || v.key == scope).collect();
        if list.is_empty() {
            format!(
                "{media} has no versions of {scope}. Keys are case-sensitive; /storage check shows the folders."
            )
        } else {
            let mut t = format!(
                "{} version(s) and delete marker(s) of {scope} in {media} (newest first per key):",
                list.len()
            );
            for v in list.iter().take(25) {
                let _ = write!(
                    t,
                    "\n  {}  {}  {}  {}{}",
                    v.key,
                    v.version_id,
                    v.last_modified.map(render::stamp).unwrap_or_default(),
                    if v.delete_marker {
                        "delete marker".to_string()
                    } else {
                        size(v.size)
                    },
                    if v.is_latest { "  (current)" } else { "" }
                );
            }
            if list.len() > 25 {
                let _ = write!(t, "\n  … {} more", list.len() - 25);
            }
            let _ = write!(
                t,
                "\nRestore one: /storage restore key:<key> version:<id>; a folder as it was: /storage restore prefix:{scope} at:<UTC time>."
            );
            t
        }
    } else {
        snapshot_history(&b, &scope, exact).await?
    };
    let status = match &versioning {
        Ok(v) => versioning_line(v, &media),
        Err(e) => format!("Versioning: could not be read ({e}); drbot's snapshots follow."),
    };
    let mut text = format!("{status}\n{text}");
    if text.len() > 1900 {
        text = render::truncate(&text, 1900);
    }
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/storage versions {}{scope}",
            if exact { "key:" } else { "prefix:" }
        ),
    )?;
    engine.step_finished(ctx, inv, inv.spec, None, StepState::Done, None)?;
    Ok(Reply::done(text))
}

/// On a bucket without versions: the snapshots that hold a key, or how much of a prefix each
/// holds, from the newest [`VERSIONS_SCAN`] snapshots.
async fn snapshot_history(b: &Buckets, scope: &str, exact: bool) -> Result<String, CommandError> {
    let list = manifest::list(&b.backup, &b.snapshots.prefix)
        .await
        .map_err(StorageError::from)?;
    if list.is_empty() {
        return Ok(format!(
            "There is no snapshot of {} yet. Take one: /storage snapshot.",
            b.media.name()
        ));
    }
    let mut lines = Vec::new();
    for s in list.iter().take(VERSIONS_SCAN) {
        let found = scan(&b.backup, s, scope, exact).await;
        lines.push(match found {
            Ok(Scan::Key(Some(e))) => format!(
                "  {}  {:>10}  ETag {}  last modified {}",
                s.name(),
                size(e.size),
                e.etag,
                e.last_modified.map(render::stamp).unwrap_or_default()
            ),
            Ok(Scan::Key(None)) => format!("  {}  not in this snapshot", s.name()),
            Ok(Scan::Prefix(n, bytes)) => {
                format!("  {}  {n:>8} objects  {:>10}", s.name(), size(bytes))
            }
            Err(e) => format!("  {}  unreadable: {e}", s.name()),
        });
    }
    let what = if exact { "holding" } else { "under" };
    let mut t = format!(
        "Snapshots {what} {scope} (newest {} of {}):\n{}",
        lines.len(),
        list.len(),
        lines.join("\n")
    );
    let _ = write!(
        t,
        "\nRestore: /storage restore {} at:<snapshot or UTC time>.",
        if exact {
            format!("key:{scope} version:<snapshot>")
        } else {
            format!("prefix:{scope}")
        }
    );
    if exact {
        t = t.replace(" at:<snapshot or UTC time>", "");
    }
    Ok(t)
}

enum Scan {
    Key(Option<Box<manifest::Entry>>),
    Prefix(u64, u64),
}

async fn scan(
    backup: &Bucket,
    s: &Snapshot,
    scope: &str,
    exact: bool,
) -> Result<Scan, StorageError> {
    let mut r = Reader::open(backup, &s.key).await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(e) = r.next().await? {
        if exact {
            match e.key.as_str().cmp(scope) {
                std::cmp::Ordering::Equal => return Ok(Scan::Key(Some(Box::new(e)))),
                std::cmp::Ordering::Greater => return Ok(Scan::Key(None)),
                std::cmp::Ordering::Less => {}
            }
        } else if e.key.starts_with(scope) {
            n += 1;
            bytes += e.size;
        } else if e.key.as_str() > scope {
            break;
        }
    }
    Ok(if exact {
        Scan::Key(None)
    } else {
        Scan::Prefix(n, bytes)
    })
}

/// `/storage verify`: the platform's upload test and drbot's own put/get/delete probe.
pub async fn verify(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let (ok, api_ran, lines) = verify_lines(engine).await?;
    let mut text = lines.join("\n");
    let next = if ok && api_ran {
        "Storage works end to end. Next: /api health, then resolve when the app is serving media."
    } else if ok {
        "drbot's probe works; configure [api] to run the platform's own upload test too."
    } else {
        "Next: /storage check for the bucket, and the API's logs for /uploads/test."
    };
    let _ = write!(text, "\n{next}");
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!("/storage verify: {}", lines.join(" ")),
    )?;
    if ok && api_ran {
        engine.step_finished(ctx, inv, inv.spec, None, StepState::Done, None)?;
    } else if !ok {
        engine.step_finished(
            ctx,
            inv,
            inv.spec,
            None,
            StepState::Failed,
            Some(lines.join(" ")),
        )?;
    }
    if ok {
        Ok(Reply::done(text))
    } else {
        Err(CommandError::Failed(text))
    }
}

/// What `/storage verify` finds: whether all passed, whether the platform's own upload test
/// ran, and one line per check.
pub async fn verify_lines(engine: &Engine) -> Result<(bool, bool, Vec<String>), CommandError> {
    let b = Buckets::of(engine)?;
    let mut lines = Vec::new();
    let mut ok = true;
    // The runbook's Step 4: POST {api}/uploads/test with the admin token.
    let api_ran = match &engine.config().api {
        None => {
            lines.push(
                "Platform upload test: not run — [api] base_url is not configured.".to_string(),
            );
            false
        }
        Some(api) => {
            let (passed, line) = upload_test(engine, &api.base_url, &api.token_env).await;
            ok &= passed;
            lines.push(line);
            passed
        }
    };
    let (passed, line) = probe(&b.media, engine.now()).await;
    ok &= passed;
    lines.push(line);
    Ok((ok, api_ran, lines))
}

async fn upload_test(engine: &Engine, base: &str, token_env: &str) -> (bool, String) {
    let Some(token) = engine.env()(token_env).filter(|t| !t.is_empty()) else {
        return (
            false,
            format!("Platform upload test: not run — {token_env} is not set."),
        );
    };
    let client = match crate::http::client(UPLOAD_TEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return (false, format!("Platform upload test: {e}.")),
    };
    let url = format!("{}/uploads/test", base.trim_end_matches('/'));
    let started = Instant::now();
    match client.post(&url).bearer_auth(token).send().await {
        Ok(r) => {
            let status = r.status();
            let ms = started.elapsed().as_millis();
            let body = crate::http::bounded_text(r, crate::http::MAX_BODY).await;
            let body = render::truncate(body.trim(), 200);
            if status.is_success() {
                (
                    true,
                    format!(
                        "Platform upload test: POST /uploads/test answered {status} in {ms} ms."
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "Platform upload test: POST /uploads/test answered {status} in {ms} ms: {body}"
                    ),
                )
            }
        }
        Err(e) => (
            false,
            format!(
                "Platform upload test: POST /uploads/test {}.",
                crate::http::describe(&e, UPLOAD_TEST_TIMEOUT)
            ),
        ),
    }
}

/// Puts, reads back and deletes a small object under [`PROBE_PREFIX`], timing each.
async fn probe(media: &Bucket, now: DateTime<Utc>) -> (bool, String) {
    let key = format!(
        "{PROBE_PREFIX}{}-{}",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let body = format!("drbot storage probe {now}").into_bytes();
    let t = Instant::now();
    if let Err(e) = media.put(&key, body.clone(), "text/plain").await {
        return (false, format!("drbot's probe: put failed: {e}."));
    }
    let put_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let read = match media.get(&key, None).await {
        Ok((_, stream)) => stream.collect().await.map(|b| b.into_bytes().to_vec()).ok(),
        Err(e) => {
            let _ = media.delete(&key).await;
            return (
                false,
                format!("drbot's probe: put {put_ms} ms, get failed: {e}."),
            );
        }
    };
    let get_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let deleted = media.delete(&key).await;
    let del_ms = t.elapsed().as_millis();
    match (read.as_deref() == Some(body.as_slice()), deleted) {
        (true, Ok(())) => (
            true,
            format!(
                "drbot's probe in {}: put {put_ms} ms, get {get_ms} ms (bytes match), delete {del_ms} ms.",
                media.name()
            ),
        ),
        (false, _) => (
            false,
            format!(
                "drbot's probe in {}: the object read back is not what was written (put {put_ms} ms, get {get_ms} ms).",
                media.name()
            ),
        ),
        (true, Err(e)) => (
            false,
            format!(
                "drbot's probe in {}: put and get work, delete failed: {e}; {key} is left behind.",
                media.name()
            ),
        ),
    }
}
