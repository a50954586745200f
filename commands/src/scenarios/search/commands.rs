//! `/search health`, `/search reindex`, `/search progress`, `/search dump`, `/search dumps`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use drbot_state::{EntryKind, StepState};

use super::meili::{Meili, MeiliError, query_value};
use crate::context::{Context, Engine};
use crate::error::CommandError;
use crate::grammar::Invocation;
use crate::progress::ProgressSink;
use crate::render;
use crate::reply::Reply;

/// How far the index's count may be from the database's and still be healthy.
const TOLERANCE: f64 = 0.005;

/// How often work being followed is looked at.
const POLL: Duration = Duration::from_secs(1);

/// A reindex that has enqueued no task in this long is judged by the count alone.
const ENQUEUE_GRACE_SECS: f64 = 30.0;

/// The note a reindex leaves: when it started and the count then.
const REINDEX_NOTE: &str = "search-reindex";

impl From<MeiliError> for CommandError {
    fn from(e: MeiliError) -> Self {
        match e {
            MeiliError::NotConfigured(m) => CommandError::Refused(m),
            other => CommandError::Failed(format!("{other}.")),
        }
    }
}

fn index(engine: &Engine) -> String {
    engine
        .config()
        .search
        .as_ref()
        .map_or_else(|| "artworks".to_string(), |s| s.index.clone())
}

fn follow_for(engine: &Engine) -> Duration {
    Duration::from_secs(
        engine
            .config()
            .search
            .as_ref()
            .map_or(300, |s| s.follow_secs),
    )
}

/// The longest ETA said as a time; past it, the reindex is said to be too slow to finish.
const MAX_ETA_SECS: f64 = 30.0 * 86_400.0;

/// `, ETA 3m20s` for `remaining` documents at `rate` a second; nothing when none remain or
/// none are coming. Whatever the two numbers (a count from the database, a rate from
/// Meilisearch's answers), this never overflows.
fn eta_text(remaining: u64, rate: f64) -> String {
    if remaining == 0 || !rate.is_finite() || rate <= 0.0 {
        return String::new();
    }
    let secs = remaining as f64 / rate;
    if secs > MAX_ETA_SECS {
        return ", ETA over 30 days at this rate".to_string();
    }
    format!(
        ", ETA {}",
        render::duration(chrono::Duration::seconds(secs as i64))
    )
}

/// The number of documents the database says the index should hold, if configured.
async fn expected(engine: &Engine) -> Result<Option<u64>, String> {
    let Some(sql) = engine
        .config()
        .search
        .as_ref()
        .and_then(|s| s.expected_count_sql.clone())
    else {
        return Ok(None);
    };
    let production = engine.config().production_target();
    let target = crate::pg::Target::resolve(engine.config(), production, &engine.env())
        .map_err(|e| e.to_string())?;
    let client = target.connect().await.map_err(|e| e.to_string())?;
    let row = client.query_one(sql.as_str(), &[]).await.map_err(|e| {
        format!(
            "[search] expected_count_sql failed on {production}: {}",
            crate::pg::pg_error(&e)
        )
    })?;
    let n: i64 = row
        .try_get::<_, i64>(0)
        .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
        .map_err(|_| {
            "[search] expected_count_sql must return one integer (count(*))".to_string()
        })?;
    Ok(Some(n.max(0) as u64))
}

fn within(count: u64, expected: u64) -> bool {
    let diff = count.abs_diff(expected) as f64;
    diff <= (expected as f64 * TOLERANCE).max(0.0)
}

/// `/search health`.
pub async fn health(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let meili = Meili::of(engine)?;
    let idx = index(engine);
    let started = Instant::now();
    let fail = |text: String| -> Result<Reply, CommandError> {
        engine.step_failed(ctx, inv, inv.spec, None, &text, text.clone())?;
        Err(CommandError::Failed(format!(
            "{text}\nNext: fix Meilisearch (restart it; /search dumps for a dump to launch from), then /search health again."
        )))
    };
    let status = match meili.health().await {
        Ok(s) => s,
        Err(e) => return fail(format!("Search is NOT healthy: {e}.")),
    };
    let latency = started.elapsed().as_millis();
    let version = match meili.version().await {
        Ok(v) => v,
        Err(e)
            if matches!(
                e.code(),
                Some("invalid_api_key" | "missing_authorization_header")
            ) =>
        {
            return fail(format!(
                "Search is NOT healthy: Meilisearch answers /health ({status}) but refuses drbot's key: {e}. Check {}.",
                engine
                    .config()
                    .search
                    .as_ref()
                    .map_or("MEILI_MASTER_KEY", |s| s.key_env.as_str())
            ));
        }
        Err(e) => return fail(format!("Search is NOT healthy: {e}.")),
    };
    let stats = match meili.stats(&idx).await {
        Ok(s) => s,
        Err(e) => return fail(format!("Search is NOT healthy: index {idx}: {e}.")),
    };
    let since = (engine.now() - chrono::Duration::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let failed = meili
        .tasks(&format!(
            "statuses=failed&indexUids={}&afterEnqueuedAt={}&limit=3",
            query_value(&idx),
            query_value(&since)
        ))
        .await;
    let expected = expected(engine).await;
    let mut problems = Vec::new();
    if status != "available" {
        problems.push(format!("its status is {status}"));
    }
    if stats.is_indexing {
        problems.push("it is indexing".to_string());
    }
    let mut text = format!(
        "Meilisearch at {} answers in {latency} ms: {status}, version {version}.\nIndex {idx}: {} documents, {}.",
        meili.shown(),
        stats.number_of_documents,
        if stats.is_indexing {
            "indexing now"
        } else {
            "not indexing"
        }
    );
    match &expected {
        Ok(Some(n)) => {
            let _ = write!(text, " The database expects {n}");
            if within(stats.number_of_documents, *n) {
                text.push_str(" (within 0.5%).");
            } else {
                let _ = write!(
                    text,
                    " — {} {}.",
                    stats.number_of_documents.abs_diff(*n),
                    if stats.number_of_documents < *n {
                        "missing"
                    } else {
                        "too many"
                    }
                );
                problems.push(format!(
                    "it holds {} documents where the database has {n}",
                    stats.number_of_documents
                ));
            }
        }
        Ok(None) => {
            text.push_str(" No expected count is configured ([search] expected_count_sql).")
        }
        Err(e) => {
            let _ = write!(text, " The database's count could not be read: {e}.");
            problems.push("the database's count could not be read".to_string());
        }
    }
    match failed {
        Ok(t) if t.results.is_empty() => text.push_str("\nFailed tasks in the last 24 h: none."),
        Ok(t) => {
            let _ = write!(
                text,
                "\nFailed tasks in the last 24 h: {} — newest: {} {}: {}.",
                t.total.unwrap_or(t.results.len() as u64),
                t.results[0].kind,
                t.results[0].uid,
                t.results[0].error_text()
            );
        }
        Err(e) => {
            let _ = write!(text, "\nFailed tasks could not be read: {e}.");
        }
    }
    if problems.is_empty() {
        text.push_str("\nSearch is healthy.");
        engine.record(ctx, inv, EntryKind::Command, text.replace('\n', " "))?;
        engine.step_finished(ctx, inv, inv.spec, None, StepState::Done, None)?;
        Ok(Reply::done(text))
    } else {
        let _ = write!(text, "\nSearch is NOT healthy: {}.", problems.join("; "));
        engine.step_failed(
            ctx,
            inv,
            inv.spec,
            None,
            &text.replace('\n', " "),
            problems.join("; "),
        )?;
        Err(CommandError::Failed(format!(
            "{text}\nNext: /search reindex rebuilds the index from the database (/search progress follows it)."
        )))
    }
}

/// `/search reindex`: the platform's `POST /admin/reindex`, then followed.
pub async fn reindex(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let Some(api) = engine.config().api.clone() else {
        return Err(CommandError::Refused(
            "The reindex runs through the platform API: add [api] base_url (and ADMIN_TOKEN)."
                .to_string(),
        ));
    };
    let meili = Meili::of(engine)?;
    let Some(token) = engine.env()(&api.token_env).filter(|t| !t.is_empty()) else {
        return Err(CommandError::Refused(format!(
            "{} is not set: the platform's /admin/reindex needs it.",
            api.token_env
        )));
    };
    let idx = index(engine);
    let before = meili
        .stats(&idx)
        .await
        .map(|s| s.number_of_documents)
        .unwrap_or(0);
    let total = Duration::from_secs(api.timeout_secs);
    let client = crate::http::client(total)?;
    let url = format!("{}/admin/reindex", api.base_url.trim_end_matches('/'));
    let started_at = engine.now();
    let answer = client.post(&url).bearer_auth(&token).send().await;
    let text = match answer {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => {
            let status = r.status().as_u16();
            let body = crate::http::bounded_text(r, crate::http::MAX_BODY).await;
            Some(format!(
                "The platform refused the reindex: POST /admin/reindex answered {status}: {}",
                render::truncate(body.trim(), 200)
            ))
        }
        Err(e) => Some(format!(
            "The platform's POST /admin/reindex {}.",
            crate::http::describe(&e, total)
        )),
    };
    if let Some(text) = text {
        engine.step_failed(ctx, inv, inv.spec, None, &text, text.clone())?;
        return Err(CommandError::Failed(format!(
            "{text}. Nothing was started. Next: the API's logs, then /search reindex again."
        )));
    }
    engine.store().set_note(
        REINDEX_NOTE,
        &format!("{} {before}", started_at.to_rfc3339()),
    )?;
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        "Reindex started through the platform API.",
    )?;
    engine.step_started(ctx, inv, inv.spec, None)?;
    engine.store().flush().await?;
    follow(engine, ctx, inv, &meili, progress).await
}

/// `/search progress`.
pub async fn progress(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let meili = Meili::of(engine)?;
    follow(engine, ctx, inv, &meili, progress).await
}

/// Where a reindex stands.
struct Standing {
    line: String,
    fraction: Option<f64>,
    done: bool,
    failed: Option<String>,
}

async fn standing(
    engine: &Engine,
    meili: &Meili,
    started: DateTime<Utc>,
    before: u64,
    expected: Option<u64>,
) -> Result<Standing, MeiliError> {
    let idx = index(engine);
    let stats = meili.stats(&idx).await?;
    let since = query_value(&started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let q = |statuses: &str| {
        format!(
            "statuses={statuses}&indexUids={}&afterEnqueuedAt={since}&limit=1",
            query_value(&idx)
        )
    };
    let any = meili
        .tasks(&format!(
            "indexUids={}&afterEnqueuedAt={since}&limit=1",
            query_value(&idx)
        ))
        .await?;
    let waiting = meili.tasks(&q("enqueued")).await?;
    let running = meili.tasks(&q("processing")).await?;
    let failed = meili.tasks(&q("failed")).await?;
    let count = |t: &super::meili::Tasks| t.total.unwrap_or(t.results.len() as u64);
    let (w, r, f) = (count(&waiting), count(&running), count(&failed));
    let secs = (engine.now() - started).num_seconds().max(1) as f64;
    let docs = stats.number_of_documents;
    let rate = docs.saturating_sub(before) as f64 / secs;
    let against = match expected {
        Some(n) => {
            let pct = if n == 0 {
                100.0
            } else {
                docs as f64 * 100.0 / n as f64
            };
            let eta = eta_text(n.saturating_sub(docs), rate);
            format!("{docs} of {n} documents ({pct:.1}%), {rate:.0}/s{eta}")
        }
        None => format!("{docs} documents, {rate:.0}/s (no expected count configured)"),
    };
    let line = format!(
        "Reindex of {idx}: {against}; tasks since it started: {w} enqueued, {r} processing, {f} failed."
    );
    let failed_text = failed
        .results
        .first()
        .map(|t| format!("task {} ({}) failed: {}", t.uid, t.kind, t.error_text()));
    let reached = expected.is_none_or(|n| within(docs, n));
    // Not done before the platform has enqueued anything for it (or long enough has passed
    // to say it never will): an index that already had the count is not proof of a reindex.
    let begun = count(&any) > 0 || secs >= ENQUEUE_GRACE_SECS;
    Ok(Standing {
        line,
        fraction: expected.map(|n| {
            if n == 0 {
                1.0
            } else {
                (docs as f64 / n as f64).min(1.0)
            }
        }),
        done: begun && reached && w == 0 && r == 0 && f == 0 && !stats.is_indexing,
        failed: failed_text,
    })
}

async fn follow(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    meili: &Meili,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let note = engine.store().note(REINDEX_NOTE)?;
    let Some((started, before)) = note.as_deref().and_then(|n| {
        let (t, b) = n.split_once(' ')?;
        Some((
            DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
            b.parse::<u64>().ok()?,
        ))
    }) else {
        return Err(CommandError::Refused(
            "No reindex has been started by drbot: /search reindex starts one.".to_string(),
        ));
    };
    let expected = expected(engine).await.unwrap_or(None);
    let limit = follow_for(engine);
    let begun = Instant::now();
    let reindex = super::REINDEX;
    loop {
        let s = standing(engine, meili, started, before, expected).await?;
        progress.progress(&crate::progress::Progress {
            title: "Reindex of search",
            line: &s.line,
            fraction: s.fraction,
            facts: vec![("Elapsed".to_string(), crate::render::took(begun.elapsed()))],
        });
        if let Some(why) = s.failed {
            let text = format!("{}\nThe reindex failed: {why}.", s.line);
            engine.step_failed(ctx, inv, &reindex, None, &text.replace('\n', " "), why)?;
            return Err(CommandError::Failed(format!(
                "{text}\nNext: fix the cause (the platform's logs), then /search reindex again."
            )));
        }
        if s.done {
            let text = format!(
                "{}\nThe reindex is complete: search matches the database.",
                s.line
            );
            engine.record(ctx, inv, EntryKind::Command, text.replace('\n', " "))?;
            engine.step_finished(ctx, inv, &reindex, None, StepState::Done, None)?;
            return Ok(Reply::done(format!("{text}\nNext: /search health.")));
        }
        if begun.elapsed() >= limit {
            let text = format!(
                "{}\nStill running after {} of following; it goes on. /search progress picks it up.",
                s.line,
                render::took(begun.elapsed())
            );
            engine.record(ctx, inv, EntryKind::Command, text.replace('\n', " "))?;
            return Ok(Reply::done(text));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `/search dump`: `POST /dumps`, followed to its end; stored in the bucket when drbot can
/// read Meilisearch's dump directory (`[search] dump_dir`).
pub async fn dump(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
    progress: &dyn ProgressSink,
) -> Result<Reply, CommandError> {
    let meili = Meili::of(engine)?;
    let uid = match meili.create_dump().await {
        Ok(u) => u,
        Err(e) => {
            let text = format!("The dump could not be started: {e}.");
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            return Err(CommandError::Failed(text));
        }
    };
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!("Dump task {uid} enqueued."),
    )?;
    let begun = Instant::now();
    let dump = match super::stored::follow(&meili, uid, follow_for(engine), progress).await {
        Ok(d) => d,
        Err(super::stored::DumpError::StillRunning { uid, status, after }) => {
            let text = format!(
                "Dump task {uid} is still {status} after {after}; it goes on in Meilisearch, which \
                 writes it to its dump directory. drbot stopped following it, so it will not be \
                 stored in the bucket: /search dump again later stores a new one."
            );
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            return Ok(Reply::done(text));
        }
        Err(e) => {
            let text = format!("The dump failed: {e}.");
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            return Err(CommandError::Failed(text));
        }
    };
    let made = format!(
        "Dump {dump} created (task {uid}) in {}.",
        render::took(begun.elapsed())
    );
    let has_dir = engine
        .config()
        .search
        .as_ref()
        .is_some_and(|s| s.dump_dir.is_some());
    if !has_dir {
        let text = format!(
            "{made} Meilisearch wrote it to its dump directory (--dump-dir) as {dump}.dump; it is imported only at launch: meilisearch --import-dump {dump}.dump on an empty --db-path. Set [search] dump_dir for drbot to store dumps in the bucket."
        );
        engine.record(ctx, inv, EntryKind::Command, &text)?;
        return Ok(Reply::done(text));
    }
    progress.update(&format!("Storing dump {dump} in the bucket…"));
    match super::stored::store(engine, &dump).await {
        Ok((key, bytes)) => {
            let text = format!(
                "{made} Stored as {key} ({}); the search RPO counts from it. /search dumps lists them.",
                render::size(bytes)
            );
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            Ok(Reply::done(text))
        }
        Err(e) => {
            let text = format!("{made} But storing it in the bucket failed: {e}.");
            engine.record(ctx, inv, EntryKind::Command, &text)?;
            Err(CommandError::Failed(text))
        }
    }
}

/// `/search dumps`: the dumps in the backup bucket, newest first, against the search RPO.
pub async fn dumps(
    engine: &Engine,
    ctx: &Context,
    inv: &Invocation,
) -> Result<Reply, CommandError> {
    let (bucket, s) = crate::bucket::backup_bucket(engine.config(), &engine.env())?;
    let mut list = bucket.list(&s.meili_prefix).await?;
    list.sort_by_key(|o| std::cmp::Reverse(super::stored::dump_time(o)));
    let rpo = chrono::Duration::minutes(engine.config().objectives.rpo.search as i64);
    let now = engine.now();
    let Some(newest) = list.first() else {
        let text = format!(
            "No Meilisearch dumps under {}/{}: the {} search RPO cannot be met from a dump. /search reindex rebuilds the index from the database instead.",
            bucket.name(),
            s.meili_prefix,
            render::duration(rpo)
        );
        engine.record(ctx, inv, EntryKind::Command, &text)?;
        return Err(CommandError::Failed(text));
    };
    let age = super::stored::dump_time(newest).map(|t| now - t);
    let mut text = match age {
        Some(a) if a <= rpo => format!(
            "Newest dump is {} old — within the {} search RPO.",
            render::duration(a),
            render::duration(rpo)
        ),
        Some(a) => format!(
            "Newest dump is {} old — past the {} search RPO.",
            render::duration(a),
            render::duration(rpo)
        ),
        None => "The newest dump's time is unknown.".to_string(),
    };
    for o in list.iter().take(10) {
        let _ = write!(
            text,
            "\n  {}  {:>8} old  {:>10}",
            o.key,
            super::stored::dump_time(o)
                .map(|t| render::duration(now - t))
                .unwrap_or_default(),
            render::size(o.size)
        );
    }
    let _ = write!(
        text,
        "\nMeilisearch imports a dump only at launch (POST /dumps creates one; the runbook's Step 2 is wrong). To use the newest:\n  aws s3 cp s3://{}/{} ./latest.dump --endpoint-url \"$R2_ENDPOINT\"\n  meilisearch --db-path ./meili-restored.ms --import-dump ./latest.dump\nor, usually simpler: /search reindex from the database.",
        bucket.name(),
        newest.key
    );
    engine.record(
        ctx,
        inv,
        EntryKind::Command,
        format!(
            "/search dumps: {} dumps; newest {}.",
            list.len(),
            newest.key
        ),
    )?;
    Ok(Reply::done(text))
}

#[cfg(test)]
mod tests {
    use super::eta_text;

    #[test]
    fn the_eta_is_bounded_whatever_the_counts() {
        assert_eq!(eta_text(0, 10.0), "");
        assert_eq!(eta_text(100, 0.0), "");
        assert_eq!(eta_text(100, f64::NAN), "");
        assert_eq!(eta_text(100, f64::INFINITY), "");
        assert!(eta_text(1000, 10.0).starts_with(", ETA "));
        // A count near u64::MAX at one document in an hour: no panic, said plainly.
        assert_eq!(
            eta_text(u64::MAX, 1.0 / 3600.0),
            ", ETA over 30 days at this rate"
        );
    }
}
