//! Benchmark: drbot's media snapshots and restores against the runbook's way and `aws s3 sync`,
//! on the same moto bucket, same run.
//!
//! - Incremental snapshot: N objects (default 10,000), 1% changed between rounds; drbot's
//!   `/storage snapshot` (its requests counted: ⌈N/1000⌉ lists + the changed objects' HEADs and
//!   copies + the manifest) against `aws s3 sync s3://media s3://backup/current` after the same
//!   change. Rounds interleaved; medians and their ratio (drbot / sync; below 1 is faster).
//! - Memory: drbot's peak RSS for an incremental snapshot of N objects and of N/10.
//! - Restore of 1,000 objects: drbot's `/storage restore prefix:… at:…` (the approval, which runs
//!   it, timed) against the runbook's way on a versioned bucket — one `aws s3api get-object
//!   --version-id` and one `put-object` per key — timed on DRBOT_BENCH_RUNBOOK_KEYS keys
//!   (default 100) and scaled to 1,000 (said so in the output).
//!
//! Run: `cargo bench -p drbot --bench storage` (needs moto_server, the AWS CLI and
//! /usr/bin/time). DRBOT_BENCH_OBJECTS and DRBOT_BENCH_ROUNDS resize it;
//! DRBOT_BENCH_ONLY=full measures full snapshots against full syncs alone.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support.rs"]
mod support;
#[path = "support/timed.rs"]
mod timed;

use std::time::Instant;

use support::{Drbot, bucket, moto, s3, sh};
use timed::{drbot_timed, env_num, median};

/// Puts `n` small objects under `prefix`, 32 at a time; `round` changes their bytes.
async fn fill(bucket: &str, prefix: &str, keys: impl Iterator<Item = usize>, round: usize) {
    use futures_util::StreamExt;
    let c = s3();
    futures_util::stream::iter(keys)
        .map(|i| {
            let c = c.clone();
            let key = format!("{prefix}{i:06}.jpg");
            let body = format!("object {i} round {round} {}", "x".repeat(900)).into_bytes();
            async move {
                c.put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("image/jpeg")
                    .metadata("owner", i.to_string())
                    .body(body.into())
                    .send()
                    .await
                    .expect("put");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// `(12 list, 200 head, 100 copy, 2 manifest requests)` from a snapshot's reply.
fn requests(reply: &str) -> String {
    reply
        .split('(')
        .find_map(|p| {
            p.split_once(" manifest requests")
                .map(|(a, _)| format!("{a} manifest"))
        })
        .unwrap_or_default()
}

fn main() {
    let n = env_num("DRBOT_BENCH_OBJECTS", 10_000);
    let rounds = env_num("DRBOT_BENCH_ROUNDS", 3);
    let runbook_keys = env_num("DRBOT_BENCH_RUNBOOK_KEYS", 100);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = moto().to_string();
    let media = rt.block_on(bucket("drbot-bench-media-"));
    let backup = rt.block_on(bucket("drbot-bench-bk-"));
    let small = rt.block_on(bucket("drbot-bench-small-"));
    let small_bk = rt.block_on(bucket("drbot-bench-smallbk-"));
    let aws = format!(
        "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url {endpoint}"
    );
    eprintln!(
        "bench: putting {n} objects (and {} in a second bucket)…",
        n / 10
    );
    rt.block_on(fill(&media, "art/", 0..n, 0));
    rt.block_on(fill(&small, "art/", 0..n / 10, 0));

    // DRBOT_BENCH_CONCURRENCY sets `[storage.snapshots] concurrency` (drbot's default if unset).
    let concurrency = std::env::var("DRBOT_BENCH_CONCURRENCY")
        .map(|c| format!("concurrency = {c}\n"))
        .unwrap_or_default();
    let config = |media: &str, backup: &str| {
        Drbot::new(&format!(
            "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{backup}\"\nmedia_bucket = \"{media}\"\n\
             [storage.snapshots]\nprefix = \"media/\"\n{concurrency}\
             [people.alice]\nroles = [\"commander\"]\n[people.bob]\nroles = [\"approver\"]\n\
             [console]\ntrust_as = true\n"
        ))
    };
    let d = config(&media, &backup);
    let d_small = config(&small, &small_bk);
    let env = [
        ("R2_ENDPOINT", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
    ];

    // DRBOT_BENCH_ONLY=full: full snapshots (into an empty backup bucket) against full syncs
    // (into another), interleaved rounds, medians; then stop.
    if std::env::var("DRBOT_BENCH_ONLY").is_ok_and(|v| v == "full") {
        let (mut ours, mut theirs, mut rss, mut counted) =
            (Vec::new(), Vec::new(), 0u64, String::new());
        for round in 0..rounds {
            let into = rt.block_on(bucket("drbot-bench-full-"));
            let fresh = config(&media, &into);
            let sync_into = rt.block_on(bucket("drbot-bench-sync-"));
            let sync = || {
                let t = Instant::now();
                sh(&format!(
                    "{aws} s3 sync --quiet s3://{media} s3://{sync_into}/current"
                ));
                t.elapsed().as_secs_f64()
            };
            if round % 2 == 1 {
                theirs.push(sync());
            }
            let (secs, peak, reply) = drbot_timed(&fresh, "alice", "/storage snapshot", &env);
            assert!(reply.contains(&format!("{n} new copies")), "{reply}");
            counted = requests(&reply);
            ours.push(secs);
            rss = rss.max(peak);
            if round % 2 == 0 {
                theirs.push(sync());
            }
            eprintln!(
                "bench: full round {round}: drbot {secs:.2} s ({counted}), sync {:.2} s",
                theirs[theirs.len() - 1]
            );
        }
        let (o, t) = (median(&mut ours), median(&mut theirs));
        println!("full snapshot, {n} objects ({rounds} rounds, medians):");
        println!(
            "  drbot /storage snapshot  {o:.2} s   requests: {counted}   peak RSS {} MiB",
            rss / 1024
        );
        println!(
            "  aws s3 sync             {t:.2} s   ratio drbot/sync {:.2} (target <= 1.0)",
            o / t
        );
        return;
    }

    // The first, full copies (not timed against each other: both copy everything once).
    let (full, full_rss, _) = drbot_timed(&d, "alice", "/storage snapshot", &env);
    let t = Instant::now();
    sh(&format!(
        "{aws} s3 sync --quiet s3://{media} s3://{backup}/current"
    ));
    let full_sync = t.elapsed().as_secs_f64();
    drbot_timed(&d_small, "alice", "/storage snapshot", &env);
    eprintln!(
        "bench: full snapshot {full:.1} s ({} MiB peak), full sync {full_sync:.1} s",
        full_rss / 1024
    );

    let changed = (n / 100).max(1);
    let (mut ours, mut theirs, mut rss, mut rss_small) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut counted = String::new();
    for round in 1..=rounds {
        // 1% changed: the same objects seen by both, each round a different 1%.
        let start = (round * changed * 7) % n;
        rt.block_on(fill(
            &media,
            "art/",
            (start..start + changed).map(|i| i % n),
            round,
        ));
        rt.block_on(fill(
            &small,
            "art/",
            (start..start + changed / 10 + 1).map(|i| i % (n / 10)),
            round,
        ));
        // Snapshot names are to the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let drbot_first = round % 2 == 1;
        let run_sync = |v: &mut Vec<f64>| {
            let t = Instant::now();
            sh(&format!(
                "{aws} s3 sync --quiet s3://{media} s3://{backup}/current"
            ));
            v.push(t.elapsed().as_secs_f64());
        };
        if !drbot_first {
            run_sync(&mut theirs);
        }
        let (secs, peak, reply) = drbot_timed(&d, "alice", "/storage snapshot", &env);
        assert!(reply.contains(&format!("{changed} new copies")), "{reply}");
        counted = requests(&reply);
        ours.push(secs);
        rss = rss.max(peak);
        if drbot_first {
            run_sync(&mut theirs);
        }
        let (_, peak_small, _) = drbot_timed(&d_small, "alice", "/storage snapshot", &env);
        rss_small = rss_small.max(peak_small);
        eprintln!(
            "bench: round {round}: drbot {secs:.2} s ({counted}), sync {:.2} s",
            theirs[theirs.len() - 1]
        );
    }
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!("incremental snapshot, {n} objects, {changed} changed ({rounds} rounds, medians):");
    println!("  drbot /storage snapshot  {o:.2} s   requests: {counted}");
    println!(
        "  aws s3 sync             {t:.2} s   ratio drbot/sync {:.2}",
        o / t
    );
    println!(
        "  expected lists ⌈N/1000⌉ = {} (+1 listing the snapshots)",
        n.div_ceil(1000)
    );
    println!(
        "  peak RSS: {} MiB at {n} objects, {} MiB at {} objects (ratio {:.2})",
        rss / 1024,
        rss_small / 1024,
        n / 10,
        rss as f64 / rss_small.max(1) as f64
    );

    // Restore of 1,000 objects: drbot from a snapshot, the runbook's way from versions.
    let restore_n = 1000.min(n);
    let versioned = rt.block_on(bucket("drbot-bench-ver-"));
    sh(&format!(
        "{aws} s3api put-bucket-versioning --bucket {versioned} --versioning-configuration Status=Enabled"
    ));
    rt.block_on(fill(&versioned, "r/", 0..runbook_keys, 0));
    rt.block_on(fill(&versioned, "r/", 0..runbook_keys, 1));
    let listing = sh(&format!(
        "{aws} s3api list-object-versions --bucket {versioned} --prefix r/ --query 'Versions[?IsLatest==`false`].[Key,VersionId]' --output text"
    ));
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    let mut script = String::new();
    for line in listing.lines() {
        let mut p = line.split_whitespace();
        let (Some(k), Some(v)) = (p.next(), p.next()) else {
            continue;
        };
        script.push_str(&format!(
            "{aws} s3api get-object --bucket {versioned} --key {k} --version-id {v} {w}/f >/dev/null && \
             {aws} s3api put-object --bucket {versioned} --key {k} --body {w}/f >/dev/null\n"
        ));
    }
    let t = Instant::now();
    sh(&script);
    let runbook = t.elapsed().as_secs_f64() / runbook_keys as f64 * restore_n as f64;

    // drbot: overwrite 1,000 objects after a snapshot, then bring them back.
    let at = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    rt.block_on(fill(&media, "art/", 0..restore_n, 99));
    let line = format!(
        "/storage restore prefix:art/ at:{}",
        at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (_, _, out) = drbot_timed(&d, "alice", &line, &env);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
        .expect("approval request")
        .to_string();
    let (restore, restore_rss, reply) =
        drbot_timed(&d, "bob", &format!("/approve request:{id}"), &env);
    assert!(
        reply.contains(&format!("{restore_n} object(s) written")),
        "{reply}"
    );
    println!("restore of {restore_n} objects:");
    println!(
        "  drbot /storage restore   {restore:.2} s   peak RSS {} MiB",
        restore_rss / 1024
    );
    println!(
        "  runbook get+put per key  {runbook:.2} s   (timed on {runbook_keys} keys, scaled) ratio drbot/runbook {:.3}",
        restore / runbook
    );
}
