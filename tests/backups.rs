//! Scheduled, verified backups and retention, against PostgreSQL and moto: the RPO the runbook
//! promises, and buckets that do not grow for ever.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use drbot_commands::{Config, Engine, ManualClock, Outcome};
use drbot_state::Store;
use futures_util::StreamExt as _;

use crate::database::{approved_with, commander, config_text, env_map, verified_manifest};
use crate::support::{AgeKey, TestDb, age_key, bucket, moto, s3};

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
    bucket: String,
    _key: AgeKey,
    target: TestDb,
}

/// An engine with `staging` as the production target (a database with rows), on a manual
/// clock; `edit` changes the config text.
async fn fixture(edit: impl FnOnce(String) -> String) -> Fixture {
    let key = age_key();
    let bucket = bucket("drbot-bk-").await;
    let target = TestDb::new("drbot_bk_");
    target.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;");
    let dir = tempfile::tempdir().expect("dir");
    let text = edit(config_text(&bucket, &key).replace(
        "url_env = \"STAGING_URL\"",
        "url_env = \"STAGING_URL\"\nproduction = true",
    ));
    let config = Config::from_toml(&text, Path::new("test.toml")).expect("config");
    let store = Store::open(dir.path()).expect("store");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let env = env_map(moto(), &target.url(), &target.url());
    let engine = Engine::new(Arc::new(config), store, clock.clone())
        .with_env(Arc::new(move |k| env.get(k).cloned()));
    Fixture {
        _dir: dir,
        engine,
        clock,
        bucket,
        _key: key,
        target,
    }
}

async fn keys(bucket: &str, prefix: &str) -> BTreeSet<String> {
    let client = s3();
    let mut out = BTreeSet::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// What `[retention]` keeps at `now` of these names, all verified, timed by `name_time`.
fn kept_of(
    names: &BTreeSet<String>,
    name_time: fn(&str) -> Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    r: &drbot_commands::config::RetentionConfig,
) -> BTreeSet<String> {
    let items = names
        .iter()
        .map(|k| drbot_commands::retention::Item {
            key: k.clone(),
            at: name_time(k),
            verified: true,
            bytes: 1,
        })
        .collect();
    drbot_commands::retention::plan(items, now, r)
        .keep
        .into_iter()
        .map(|(i, _)| i.key)
        .collect()
}

fn backups(all: &BTreeSet<String>) -> BTreeSet<String> {
    all.iter()
        .filter(|k| k.ends_with(".sql.xz.age"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_backs_up_on_schedule_verifies_each_and_says_a_failure_once() {
    let f = fixture(|c| c).await;
    // Due at once: taken, read back, verified.
    let posts = f.engine.scheduled().await.unwrap();
    assert!(posts.is_empty(), "{posts:?}");
    let all = keys(&f.bucket, "db/").await;
    let taken = backups(&all);
    assert_eq!(taken.len(), 1, "{all:?}");
    let key = taken.iter().next().unwrap().clone();
    let manifest: serde_json::Value = serde_json::from_slice(
        &crate::support::get(&f.bucket, &format!("{key}.manifest.json")).await,
    )
    .unwrap();
    assert!(manifest["verified_at"].is_string(), "{manifest}");
    assert_eq!(manifest["tables"]["public.t"]["rows"], 500, "{manifest}");
    // Not due again within every_mins; due after it.
    f.engine.scheduled().await.unwrap();
    assert_eq!(backups(&keys(&f.bucket, "db/").await).len(), 1);
    let r = f.engine.run(&commander(), "/db backups").await;
    assert!(r.text.contains("  verified"), "{}", r.text);
    assert!(f.engine.tick().await.unwrap().is_empty(), "RPO met");

    // The target stops taking connections: the next backups fail, said once.
    f.target.psql_admin(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
        f.target.name
    ));
    f.clock.advance(Duration::minutes(31));
    let posts = f.engine.scheduled().await.unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0]
            .text
            .contains("The scheduled backup of staging failed")
            && posts[0].text.contains("/db backup tries now"),
        "{}",
        posts[0].text
    );
    f.clock.advance(Duration::minutes(31));
    assert!(f.engine.scheduled().await.unwrap().is_empty(), "said once");
    // The RPO watch sees the newest verified backup age past 30 minutes.
    let posts = f.engine.tick().await.unwrap();
    assert!(
        posts
            .iter()
            .any(|p| p.text.starts_with("RPO breached: the newest verified")),
        "{posts:?}"
    );
    // It comes back: said once, and the RPO recovers.
    f.target.psql_admin(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
        f.target.name
    ));
    f.clock.advance(Duration::minutes(31));
    let posts = f.engine.scheduled().await.unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].text.contains("Scheduled backups work again"),
        "{}",
        posts[0].text
    );
    let posts = f.engine.tick().await.unwrap();
    assert!(
        posts.iter().any(|p| p.text.starts_with("RPO recovered")),
        "{posts:?}"
    );
    assert_eq!(backups(&keys(&f.bucket, "db/").await).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_cannot_be_read_back_is_not_counted() {
    // No identity to read it back with: stored, but not verified, and said so.
    let f = fixture(|c| {
        c.lines()
            .filter(|l| !l.starts_with("age_identity_file"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
    let r = f.engine.run(&commander(), "/db backup").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("BUT reading it back failed") && r.text.contains("age_identity_file"),
        "{}",
        r.text
    );
    let r = f.engine.run(&commander(), "/db backups").await;
    assert!(r.text.contains("NOT VERIFIED"), "{}", r.text);
    let posts = f.engine.tick().await.unwrap();
    assert!(
        posts
            .iter()
            .any(|p| p.text.contains("there is no verified database backup")),
        "{posts:?}"
    );
}

/// `n` backups named every 30 minutes back from `now`, each with a verified manifest.
async fn history(bucket: &str, now: DateTime<Utc>, days: i64) -> BTreeSet<String> {
    let mut names = Vec::new();
    let mut t = now - Duration::days(days);
    while t <= now {
        names.push(drbot_commands::scenarios::database::backup_name("db/", t));
        t += Duration::minutes(30);
    }
    let bucket = bucket.to_string();
    futures_util::stream::iter(names.clone())
        .map(|key| {
            let bucket = bucket.clone();
            async move {
                crate::support::put(&bucket, &key, b"x".to_vec()).await;
                crate::support::put(
                    &bucket,
                    &format!("{key}.manifest.json"),
                    verified_manifest(&key, 1),
                )
                .await;
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    names.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_days_of_half_hourly_backups_are_pruned_to_the_gfs_set_exactly_as_listed() {
    let f = fixture(|c| format!("{c}\n[retention]\nmin_keep = 3\n")).await;
    let now = f.engine.now();
    let all = history(&f.bucket, now, 60).await;
    // Five days of Meilisearch dumps every 15 minutes, named by their time.
    let mut dumps = BTreeSet::new();
    let mut t = now - Duration::days(5);
    while t <= now {
        dumps.insert(drbot_commands::scenarios::search::stored::dump_key(
            "meili/", t,
        ));
        t += Duration::minutes(15);
    }
    futures_util::stream::iter(dumps.clone())
        .map(|k| {
            let b = f.bucket.clone();
            async move { crate::support::put(&b, &k, b"dump".to_vec()).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let r = &f.engine.config().retention;
    let dumps_kept = kept_of(
        &dumps,
        drbot_commands::scenarios::search::stored::name_time,
        now,
        r,
    );
    // What retention keeps, from the pure plan (itself checked against the calendar).
    let want_kept = kept_of(
        &all,
        drbot_commands::scenarios::database::catalogue::name_time,
        now,
        r,
    );
    assert!(
        want_kept.len() < 200 && want_kept.len() > 97,
        "{}",
        want_kept.len()
    );

    // The dry run lists exactly what goes and deletes nothing.
    let r = f
        .engine
        .run(&commander(), "/backup prune dry_run:true")
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains(&format!("delete {}", all.len() - want_kept.len())),
        "{}",
        r.text
    );
    let listed: BTreeSet<String> = r
        .attachments
        .iter()
        .find(|a| a.name == "prune-dry-run.txt")
        .expect("the list")
        .text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.starts_with("db/"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        backups(&keys(&f.bucket, "db/").await),
        all,
        "a dry run deleted something"
    );

    // Asked and approved: exactly the listed ones go, with their manifests.
    let r = approved_with(
        &f.engine,
        "/backup prune dry_run:false",
        &drbot_commands::progress::NoProgress,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let left = keys(&f.bucket, "db/").await;
    assert_eq!(backups(&left), want_kept);
    assert_eq!(
        keys(&f.bucket, "meili/").await,
        dumps_kept,
        "dumps kept by the same rule"
    );
    assert!(dumps_kept.len() < dumps.len());
    let gone: BTreeSet<String> = all.difference(&backups(&left)).cloned().collect();
    assert_eq!(gone, listed, "what went is what the dry run listed");
    assert!(
        left.iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .count()
            == want_kept.len(),
        "manifests go with their backups"
    );
    // Every deletion is on the audit log with its key and bytes.
    let audit = f.engine.store().audit().unwrap();
    for k in gone.iter().take(20) {
        assert!(
            audit
                .iter()
                .any(|e| e.text.contains(k.as_str()) && e.text.contains("1 B")),
            "{k} not on the audit log"
        );
    }
    // Run again: nothing more to delete, nothing asked.
    let r = f
        .engine
        .run(&commander(), "/backup prune dry_run:false")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("Nothing to delete"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_newest_backup_stops_every_prune() {
    // No scheduled backup here: the backup job is what is broken.
    let f = fixture(|c| c.replace("xz_level = 1", "xz_level = 1\nevery_mins = 0")).await;
    // Months of backups, the newest three hours old: the backup job is broken.
    let now = f.engine.now();
    let all = history(&f.bucket, now - Duration::hours(3), 20).await;
    let r = f
        .engine
        .run(&commander(), "/backup prune dry_run:true")
        .await;
    assert!(
        r.text
            .contains("Database backups: none pruned — the newest verified one is 3h00m old"),
        "{}",
        r.text
    );
    let r = f
        .engine
        .run(&commander(), "/backup prune dry_run:false")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    // The daily prune keeps to the same rule.
    assert!(
        f.engine
            .scheduled()
            .await
            .unwrap()
            .iter()
            .all(|p| !p.text.contains("prune"))
    );
    let left = backups(&keys(&f.bucket, "db/").await);
    assert!(all.is_subset(&left), "a stale set lost backups");
}

/// Every copy named by every snapshot manifest in the bucket exists.
async fn every_named_copy_exists(bucket: &str) {
    let manifests: Vec<String> = keys(bucket, "media/snapshots/").await.into_iter().collect();
    assert!(!manifests.is_empty());
    let copies = keys(bucket, "media/objects/").await;
    for m in manifests {
        let raw = crate::support::get(bucket, &m).await;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut liblzma::read::XzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(copy) = v.get("copy").and_then(|c| c.as_str()) {
                assert!(copies.contains(copy), "{m} names {copy}, which is gone");
            }
        }
    }
}

#[test]
fn a_prune_killed_at_random_moments_never_loses_what_is_kept() {
    use std::process::{Command, Stdio};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backup = rt.block_on(bucket("drbot-kp-"));
    let media = rt.block_on(bucket("drbot-km-"));
    let user = crate::support::os_user();
    let d = crate::support::Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\nunix_user = \"{user}\"\n\
         [people.bob]\nroles = [\"approver\"]\nunix_user = \"bob-not-here\"\n\
         [console]\ntrust_as = true\n\
         [storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{backup}\"\nmedia_bucket = \"{media}\"\n\
         [storage.snapshots]\nprefix = \"media/\"\n\
         [retention]\ncopy_grace_hours = 0\n"
    ));
    let exec = |who: &str, line: &str| -> Command {
        let mut c = d.command();
        c.args(["exec", "--as", who, line])
            .env("R2_ENDPOINT", moto())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // Two real snapshots of a small media bucket (young: kept), then copies no manifest names.
    for (k, body) in [("a.txt", "alpha"), ("b.txt", "beta")] {
        rt.block_on(crate::support::put(&media, k, body.as_bytes().to_vec()));
    }
    for body in ["one", "two"] {
        rt.block_on(crate::support::put(
            &media,
            "c.txt",
            body.as_bytes().to_vec(),
        ));
        let out = exec("alice", "/storage snapshot").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    for n in 0..40 {
        rt.block_on(crate::support::put(
            &backup,
            &format!("media/objects/orphan{n:03}-5"),
            b"stale".to_vec(),
        ));
    }
    let now = Utc::now();
    let all = rt.block_on(history(&backup, now, 30));
    let retention = drbot_commands::config::RetentionConfig::default();
    // Kept now and for the next minutes of the test (a boundary crossing only keeps more).
    let kept = kept_of(
        &all,
        drbot_commands::scenarios::database::catalogue::name_time,
        now,
        &retention,
    );

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut killed = 0;
    for round in 0..3 {
        let out = exec("alice", "/backup prune dry_run:false")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("approval request "))
            .map(str::to_string)
        else {
            // Everything was deleted by an earlier round that finished.
            assert!(text.contains("Nothing to delete"), "round {round}: {text}");
            break;
        };
        let mut child = exec("bob", &format!("/approve request:{id}"))
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = std::time::Duration::from_millis(1000 + rng % 4000);
        let started = std::time::Instant::now();
        while started.elapsed() < wait {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
        // Whatever moment it died at: every kept backup and its manifest are there, and every
        // copy a remaining snapshot names.
        let left = rt.block_on(keys(&backup, "db/"));
        for k in &kept {
            assert!(left.contains(k), "round {round}: kept {k} is gone");
            assert!(
                left.contains(&format!("{k}.manifest.json")),
                "round {round}: {k}'s manifest"
            );
        }
        rt.block_on(every_named_copy_exists(&backup));
    }
    assert!(
        killed > 0,
        "no prune was killed part way; the test proved nothing"
    );
    // A prune run to its end afterwards finishes the job.
    let out = exec("alice", "/backup prune dry_run:false")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if let Some(id) = text
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
    {
        let out = exec("bob", &format!("/approve request:{id}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let left = backups(&rt.block_on(keys(&backup, "db/")));
    assert!(kept.is_subset(&left));
    assert!(
        left.len() <= kept.len() + 2,
        "{} left of {} kept",
        left.len(),
        kept.len()
    );
    let orphans = rt
        .block_on(keys(&backup, "media/objects/"))
        .into_iter()
        .filter(|k| k.contains("orphan"))
        .count();
    assert_eq!(orphans, 0);
    rt.block_on(every_named_copy_exists(&backup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_prune_lists_first_and_deletes_no_more_than_it_listed() {
    let f = fixture(|c| c.replace("xz_level = 1", "xz_level = 1\nevery_mins = 0")).await;
    let now = f.engine.now();
    let all = history(&f.bucket, now, 10).await;
    // The first round lists what will go, in the channel and whole on the audit log, and
    // deletes nothing.
    let posts = f.engine.scheduled().await.unwrap();
    let listed: Vec<&drbot_commands::watch::Post> = posts
        .iter()
        .filter(|p| p.text.contains("Daily prune"))
        .collect();
    assert_eq!(listed.len(), 1, "{posts:?}");
    assert!(
        listed[0].text.contains("in 10 minutes or more"),
        "{}",
        listed[0].text
    );
    assert_eq!(backups(&keys(&f.bucket, "db/").await), all);
    let audit = f.engine.store().audit().unwrap();
    let list = audit
        .iter()
        .find(|e| e.text.starts_with("Daily prune will delete:"))
        .expect("the list on the audit log")
        .text
        .clone();
    let to_go: BTreeSet<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.starts_with("db/"))
        .map(str::to_string)
        .collect();
    assert!(!to_go.is_empty());
    // Not yet: under ten minutes later nothing is deleted.
    f.clock.advance(Duration::minutes(5));
    f.engine.scheduled().await.unwrap();
    assert_eq!(backups(&keys(&f.bucket, "db/").await), all);
    // Meanwhile one listed backup becomes the only verified one of its day: its day's others
    // lose their manifests' verification. It is spared; nothing unlisted goes.
    let spared = to_go.iter().next().unwrap().clone();
    let day = &spared[3..13];
    for k in all.iter().filter(|k| k.contains(day) && **k != spared) {
        crate::support::put(&f.bucket, &format!("{k}.manifest.json"), b"{}".to_vec()).await;
    }
    f.clock.advance(Duration::minutes(6));
    let posts = f.engine.scheduled().await.unwrap();
    assert!(
        posts
            .iter()
            .any(|p| p.text.starts_with("Daily prune under [retention]: Deleted")),
        "{posts:?}"
    );
    let left = backups(&keys(&f.bucket, "db/").await);
    let gone: BTreeSet<String> = all.difference(&left).cloned().collect();
    assert!(
        gone.is_subset(&to_go),
        "deleted something it had not listed"
    );
    assert!(
        left.contains(&spared),
        "deleted what became the newest verified of its day"
    );
    // Not again the same day.
    f.clock.advance(Duration::hours(1));
    assert!(
        f.engine
            .scheduled()
            .await
            .unwrap()
            .iter()
            .all(|p| !p.text.contains("Daily prune")),
    );
}
