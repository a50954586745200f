//! Scenario 2, storage: the media bucket on a stand-in of R2 (moto behind a proxy that answers
//! versioning calls 501 and throttles as R2 does), snapshotted into a backup bucket and brought
//! back to an earlier time; and on a versioned moto bucket, through its versions.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use drbot_commands::{Config, Engine, ManualClock, Outcome, Reply};
use drbot_state::Store;

use crate::database::{approved_with, approver, commander};
use crate::fake_r2::FakeR2;
use crate::support::{bucket, moto, s3};

const SECRET: &str = "r2-s3cr3t-never-shown";
const ADMIN_TOKEN: &str = "admin-t0ken-never-shown";

/// One object as the test writes it.
struct Obj<'a> {
    key: &'a str,
    body: Vec<u8>,
    content_type: &'a str,
    meta: &'a [(&'a str, &'a str)],
}

async fn put_obj(bucket: &str, o: &Obj<'_>) {
    let mut req = s3()
        .put_object()
        .bucket(bucket)
        .key(o.key)
        .content_type(o.content_type)
        .cache_control("public, max-age=31536000")
        .body(o.body.clone().into());
    for (k, v) in o.meta {
        req = req.metadata(*k, *v);
    }
    req.send().await.expect("put object");
}

/// A multipart object in 6 MiB parts (its ETag ends in -N).
async fn put_multipart(bucket: &str, key: &str, body: &[u8]) {
    let c = s3();
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/octet-stream")
        .metadata("kind", "big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in body.chunks(6 * 1024 * 1024).enumerate() {
        let n = i as i32 + 1;
        let p = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(chunk.to_vec().into())
            .send()
            .await
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// What a key holds now: bytes, content type, cache control, metadata, ETag, LastModified.
#[derive(Debug, PartialEq)]
struct Held {
    body: Vec<u8>,
    content_type: Option<String>,
    cache_control: Option<String>,
    meta: HashMap<String, String>,
    etag: String,
    modified: i64,
}

async fn held(bucket: &str, key: &str) -> Option<Held> {
    let out = s3()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(Held {
        content_type: out.content_type().map(str::to_string),
        cache_control: out.cache_control().map(str::to_string),
        meta: out.metadata().cloned().unwrap_or_default(),
        etag: out.e_tag().unwrap_or_default().to_string(),
        modified: out.last_modified().map(|t| t.secs()).unwrap_or(0),
        body: out.body.collect().await.unwrap().into_bytes().to_vec(),
    })
}

async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect()
}

async fn delete(bucket: &str, key: &str) {
    s3().delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
    media: String,
    backup: String,
    r2: FakeR2,
}

const T0: &str = "2026-11-30T09:00:00Z";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(T0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Media and backup buckets on the R2 stand-in (or, `versioned`, on the same proxy acting as
/// S3 with versioning enabled on the media bucket).
async fn setup(versioned: bool, extra: &str) -> Setup {
    let media = bucket("drbot-media-").await;
    let backup = bucket("drbot-bk-").await;
    if versioned {
        s3().put_bucket_versioning()
            .bucket(&media)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let r2 = if versioned {
        FakeR2::start_s3(moto()).await
    } else {
        FakeR2::start(moto()).await
    };
    let endpoint = r2.endpoint.clone();
    let config = format!(
        r#"
[people.alice]
roles = ["commander"]
[people.bob]
roles = ["approver"]
[storage]
region = "us-east-1"
backup_bucket = "{backup}"
media_bucket = "{media}"
[storage.snapshots]
prefix = "media/"
concurrency = 4
part_copy_above_mib = 5
{extra}
"#
    );
    let config = Config::from_toml(&config, std::path::Path::new("t.toml")).expect("config");
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let env = HashMap::from([
        ("R2_ENDPOINT".to_string(), endpoint),
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            "drbot-test-key".to_string(),
        ),
        ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET.to_string()),
        ("ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string()),
    ]);
    let engine = Engine::new(
        Arc::new(config),
        Store::open(dir.path()).unwrap(),
        clock.clone(),
    )
    .with_env(Arc::new(move |k| env.get(k).cloned()));
    Setup {
        _dir: dir,
        engine,
        clock,
        media,
        backup,
        r2,
    }
}

impl Setup {
    async fn run(&self, line: &str) -> Reply {
        let r = self.engine.run(&commander(), line).await;
        assert!(
            !r.text.contains(SECRET) && !r.text.contains(ADMIN_TOKEN),
            "{}",
            r.text
        );
        r
    }

    async fn approved(&self, line: &str) -> Reply {
        let r = approved_with(&self.engine, line, &drbot_commands::progress::NoProgress).await;
        assert!(!r.text.contains(SECRET), "{}", r.text);
        r
    }

    fn timeline_text(&self) -> String {
        crate::support::recorded_text(self.engine.store())
    }
}

fn ok(r: &Reply) {
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

async fn seed_media(media: &str) -> Vec<u8> {
    let a = bytes(1, 3000);
    put_obj(
        media,
        &Obj {
            key: "art/a.jpg",
            body: a.clone(),
            content_type: "image/jpeg",
            meta: &[("owner", "17"), ("caption", "sunset")],
        },
    )
    .await;
    put_obj(
        media,
        &Obj {
            key: "art/b.png",
            body: bytes(2, 2000),
            content_type: "image/png",
            meta: &[("owner", "18")],
        },
    )
    .await;
    put_obj(
        media,
        &Obj {
            key: "art/c d+é.txt",
            body: b"a key that needs encoding".to_vec(),
            content_type: "text/plain; charset=utf-8",
            meta: &[],
        },
    )
    .await;
    // The same content as a.jpg under another key: one copy holds both.
    put_obj(
        media,
        &Obj {
            key: "art/same.jpg",
            body: a,
            content_type: "image/jpeg",
            meta: &[],
        },
    )
    .await;
    put_obj(
        media,
        &Obj {
            key: "other/x.txt",
            body: b"outside the prefix".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    let big = bytes(3, 12 * 1024 * 1024 + 17);
    put_multipart(media, "art/big.bin", &big).await;
    big
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_r2_a_prefix_comes_back_from_snapshots_byte_identical_and_nothing_else_is_rewritten() {
    let s = setup(false, "").await;
    let big = seed_media(&s.media).await;
    let before_a = held(&s.media, "art/a.jpg").await.unwrap();
    let before_b = held(&s.media, "art/b.png").await.unwrap();
    let big_etag = held(&s.media, "art/big.bin").await.unwrap().etag;
    assert!(big_etag.ends_with("-3\""), "{big_etag}");
    s.run("/incident declare scenario:storage severity:sev2 title:\"images missing\"")
        .await;

    // R2 has no versioning, and the check says so plainly, from its 501.
    let r = s.run("/storage check").await;
    ok(&r);
    assert!(r.text.contains("6 objects"), "{}", r.text);
    assert!(r.text.contains("Versioning: none"), "{}", r.text);
    assert!(r.text.contains("501 NotImplemented"), "{}", r.text);
    assert!(r.text.contains("no snapshot"), "{}", r.text);
    assert!(
        s.r2.seen()
            .iter()
            .any(|x| x.query.contains("versioning") && x.status == 501)
    );

    // First snapshot: every distinct content copied once, server-side.
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(r.text.contains("6 objects"), "{}", r.text);
    assert!(r.text.contains("5 new copies"), "{}", r.text);
    // The copies held are listed once: a new object costs a HEAD of itself (its headers for
    // the manifest) and its copy, no HEAD of where its copy would go (asked only of the
    // content held twice, after its first copy, and of the multipart copies' aliases): 8 HEADs
    // for 6 objects, where asking each copy's place made 13.
    assert!(r.text.contains("8 head, 6 copy"), "{}", r.text);
    let copies = keys(&s.backup, "media/objects/").await;
    assert_eq!(copies.len(), 5, "{copies:?}");
    // Copies go bucket to bucket: nothing was downloaded through drbot.
    assert!(
        !s.r2
            .seen()
            .iter()
            .any(|x| x.method == "GET" && x.path.starts_with(&format!("/{}/art", s.media)))
    );
    let first = "2026-11-30T09-00-00Z";
    assert!(r.text.contains(first), "{}", r.text);

    // An unchanged bucket: its listing and one manifest, no copy.
    s.clock.advance(Duration::minutes(1));
    s.r2.clear();
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(r.text.contains("0 new copies"), "{}", r.text);
    let seen = s.r2.seen();
    assert!(!seen.iter().any(|x| x.copy_source.is_some()), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|x| x.method == "HEAD" && x.path.contains("/art/")),
        "{seen:?}"
    );

    // Damage: overwrite, delete, add, and a change outside the prefix.
    s.clock.advance(Duration::minutes(10));
    put_obj(
        &s.media,
        &Obj {
            key: "art/a.jpg",
            body: b"vandalised".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    delete(&s.media, "art/b.png").await;
    delete(&s.media, "art/big.bin").await;
    put_obj(
        &s.media,
        &Obj {
            key: "art/new.txt",
            body: b"created after".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    put_obj(
        &s.media,
        &Obj {
            key: "other/x.txt",
            body: b"changed outside".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(r.text.contains("3 new copies"), "{}", r.text);
    let untouched: Vec<(String, Held)> = {
        let mut v = Vec::new();
        for k in [
            "art/c d+é.txt",
            "art/same.jpg",
            "other/x.txt",
            "art/new.txt",
        ] {
            v.push((k.to_string(), held(&s.media, k).await.unwrap()));
        }
        v
    };
    let r = s.run("/storage snapshots").await;
    ok(&r);
    assert!(r.text.contains("3 snapshots"), "{}", r.text);

    // A time between the first snapshots and the damage.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.r2.clear();
    let line = "/storage restore prefix:art/ at:2026-11-30T09:05:00Z";
    let r = s.run(line).await;
    let Outcome::AwaitingApproval(_) = &r.outcome else {
        panic!("{}", r.text)
    };

    // The request is the dry-run diff.
    assert!(r.text.contains("create     2 objects"), "{}", r.text);
    assert!(
        r.text.contains("art/b.png") && r.text.contains("art/big.bin"),
        "{}",
        r.text
    );
    assert!(r.text.contains("overwrite  1 object"), "{}", r.text);
    assert!(r.text.contains("keep       1 object"), "{}", r.text);
    assert!(r.text.contains("unchanged  2 objects"), "{}", r.text);
    assert!(
        r.text.contains("2026-11-30T09-01-00Z"),
        "resolves the snapshot at or before: {}",
        r.text
    );
    // Asking wrote nothing.
    assert!(
        !s.r2
            .seen()
            .iter()
            .any(|x| x.method != "GET" && x.method != "HEAD")
    );

    let r = s.approved(line).await;
    ok(&r);
    assert!(
        r.text.contains("every object in scope now matches"),
        "{}",
        r.text
    );
    // Back byte-identical, with content type, cache control and metadata.
    let a = held(&s.media, "art/a.jpg").await.unwrap();
    assert_eq!(a.body, before_a.body);
    assert_eq!(a.content_type, before_a.content_type);
    assert_eq!(a.cache_control, before_a.cache_control);
    assert_eq!(a.meta, before_a.meta);
    let b = held(&s.media, "art/b.png").await.unwrap();
    assert_eq!(
        (b.body, b.meta, b.content_type),
        (before_b.body, before_b.meta, before_b.content_type)
    );
    let restored_big = held(&s.media, "art/big.bin").await.unwrap();
    assert_eq!(restored_big.body, big);
    assert_eq!(
        restored_big.meta.get("kind").map(String::as_str),
        Some("big")
    );
    // Unchanged objects, the one created since and everything outside the prefix: untouched.
    for (k, h) in &untouched {
        assert_eq!(
            held(&s.media, k).await.as_ref(),
            Some(h),
            "{k} was rewritten"
        );
    }
    let writes: Vec<_> =
        s.r2.seen()
            .into_iter()
            .filter(|x| x.method == "PUT" || x.method == "DELETE" || x.method == "POST")
            .map(|x| x.path)
            .collect();
    for k in ["art/c%20d", "art/same.jpg", "other/", "art/new.txt"] {
        assert!(
            !writes.iter().any(|w| w.contains(k)),
            "{k} written: {writes:?}"
        );
    }

    // A restored object is its snapshot's content: the next snapshot copies nothing again,
    // the multipart one included (its copy was made in the same parts as the restore).
    s.clock.advance(Duration::minutes(1));
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(r.text.contains("0 new copies"), "{}", r.text);

    // Created since goes only with delete_newer.
    let line = "/storage restore prefix:art/ at:2026-11-30T09-01-00Z delete_newer:true";
    let r = s.approved(line).await;
    ok(&r);
    assert!(r.text.contains("1 deleted"), "{}", r.text);
    assert!(held(&s.media, "art/new.txt").await.is_none());
    assert!(held(&s.media, "other/x.txt").await.is_some());

    // Nothing left to do: said, and no request.
    let r = s.run(line).await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("Nothing to restore"), "{}", r.text);

    // The snapshots that hold a key (R2 has no versions).
    let r = s.run("/storage versions key:art/a.jpg").await;
    ok(&r);
    assert!(
        r.text.contains("2026-11-30T09-00-00Z") && r.text.contains(&before_a.etag.replace('"', "")),
        "{}",
        r.text
    );
    let text = s.timeline_text();
    assert!(!text.contains(SECRET));
    assert!(text.contains("Restored prefix art/"), "{text}");

    // The report measures the storage RPO by the snapshot restored.
    let r = s.run("/incident resolve").await;
    ok(&r);
    let report: String = r.attachments.iter().map(|a| a.text.clone()).collect();
    assert!(report.contains("| RPO (storage) | 1h00m |"), "{report}");
    let rpo_row = crate::support::report_row(&report, "RPO (storage)");
    assert!(
        rpo_row.contains("(restored from snapshot 2026-11-30T09-01-00Z"),
        "{rpo_row}"
    );
    assert!(
        report.contains("from snapshot 2026-11-30T09-01-00Z"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_runs_the_platforms_upload_test_and_a_probe_and_never_shows_the_token() {
    let api = crate::fake_http::FakeHttp::start().await;
    let s = setup(false, &format!("[api]\nbase_url = \"{}\"", api.base)).await;
    s.run("/incident declare scenario:storage severity:sev2 title:\"uploads fail\"")
        .await;
    let r = s.run("/storage verify").await;
    ok(&r);
    assert!(
        r.text.contains("POST /uploads/test answered 200"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("get") && r.text.contains("(bytes match)"),
        "{}",
        r.text
    );
    let hits = api.hits("/uploads/test");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].method, "POST");
    assert_eq!(
        hits[0].headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {ADMIN_TOKEN}"))
    );
    // The probe cleans up after itself.
    assert!(keys(&s.media, ".drbot-probe/").await.is_empty());
    let incident = s.engine.store().active_incidents().unwrap().remove(0);
    let step = incident
        .steps
        .iter()
        .find(|st| st.id == "storage-verify")
        .unwrap();
    assert_eq!(step.state, drbot_state::StepState::Done);

    // The platform failing is a failure, said with its answer.
    api.script(
        "/uploads/test",
        vec![crate::fake_http::Answer::status(
            500,
            serde_json::json!({"error": "R2 write failed"}),
        )],
    );
    let r = s.run("/storage verify").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("500") && r.text.contains("R2 write failed"),
        "{}",
        r.text
    );
    assert!(!s.timeline_text().contains(ADMIN_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_scheduled_snapshots_and_watches_the_storage_rpo() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    let storage_posts = |posts: Vec<drbot_commands::watch::Post>| -> Vec<String> {
        posts
            .into_iter()
            .map(|p| p.text)
            .filter(|t| t.starts_with("Storage RPO"))
            .collect()
    };
    let posts = storage_posts(s.engine.tick().await.unwrap());
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains("Storage RPO breached") && posts[0].contains("no snapshot"),
        "{posts:?}"
    );
    // Once, not every round.
    assert!(storage_posts(s.engine.tick().await.unwrap()).is_empty());

    s.engine.scheduled().await.unwrap();
    assert_eq!(keys(&s.backup, "media/snapshots/").await.len(), 1);
    // Not due again until every_mins (30) have passed.
    s.clock.advance(Duration::minutes(10));
    s.engine.scheduled().await.unwrap();
    assert_eq!(keys(&s.backup, "media/snapshots/").await.len(), 1);
    let posts = storage_posts(s.engine.tick().await.unwrap());
    assert!(
        posts.len() == 1 && posts[0].contains("Storage RPO recovered"),
        "{posts:?}"
    );
    s.clock.advance(Duration::minutes(21));
    s.engine.scheduled().await.unwrap();
    assert_eq!(keys(&s.backup, "media/snapshots/").await.len(), 2);
    assert!(s.timeline_text().contains("Scheduled: Snapshot"));

    // A scheduled snapshot that fails is posted, and not retried at once.
    s.r2.fail_copies(Some("art/"));
    put_obj(
        &s.media,
        &Obj {
            key: "art/z.jpg",
            body: b"new".to_vec(),
            content_type: "image/jpeg",
            meta: &[],
        },
    )
    .await;
    s.clock.advance(Duration::minutes(31));
    let posts = s.engine.scheduled().await.unwrap();
    assert!(
        posts
            .iter()
            .any(|p| p.text.contains("scheduled snapshot") && p.text.contains("failed")),
        "{posts:?}"
    );
    assert!(s.engine.scheduled().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_versioned_bucket_a_prefix_and_a_key_come_back_through_the_versions() {
    let s = setup(true, "").await;
    seed_media(&s.media).await;
    let before_a = held(&s.media, "art/a.jpg").await.unwrap();
    let before_b = held(&s.media, "art/b.png").await.unwrap();
    // S3 times are to the second: leave a clear second on each side of `at`.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    put_obj(
        &s.media,
        &Obj {
            key: "art/a.jpg",
            body: b"vandalised".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    delete(&s.media, "art/b.png").await;
    put_obj(
        &s.media,
        &Obj {
            key: "art/new.txt",
            body: b"created after".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    let c = held(&s.media, "art/c d+é.txt").await.unwrap();

    let r = s.run("/storage check").await;
    ok(&r);
    assert!(r.text.contains("Versioning: enabled"), "{}", r.text);
    let r = s.run("/storage versions key:art/a.jpg").await;
    ok(&r);
    assert!(r.text.contains("2 version(s)"), "{}", r.text);
    let r = s.run("/storage versions prefix:art/b").await;
    ok(&r);
    assert!(r.text.contains("delete marker"), "{}", r.text);

    let line = format!(
        "/storage restore prefix:art/ at:{} delete_newer:true",
        at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let r = s.run(&line).await;
    assert!(
        matches!(r.outcome, Outcome::AwaitingApproval(_)),
        "{}",
        r.text
    );
    assert!(r.text.contains("its versions at"), "{}", r.text);
    assert!(
        r.text.contains("create     1 object") && r.text.contains("art/b.png"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("overwrite  1 object") && r.text.contains("art/a.jpg"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("delete     1 object") && r.text.contains("art/new.txt"),
        "{}",
        r.text
    );
    let r = s.approved(&line).await;
    ok(&r);
    assert!(
        r.text.contains("every object in scope now matches"),
        "{}",
        r.text
    );
    let a = held(&s.media, "art/a.jpg").await.unwrap();
    assert_eq!(
        (&a.body, &a.content_type, &a.meta),
        (&before_a.body, &before_a.content_type, &before_a.meta)
    );
    let b = held(&s.media, "art/b.png").await.unwrap();
    assert_eq!((&b.body, &b.meta), (&before_b.body, &before_b.meta));
    assert!(held(&s.media, "art/new.txt").await.is_none());
    assert_eq!(
        held(&s.media, "art/c d+é.txt").await.unwrap(),
        c,
        "unchanged is not rewritten"
    );

    // One key, one version: the vandalised one, by its id.
    let versions = s3()
        .list_object_versions()
        .bucket(&s.media)
        .prefix("art/a.jpg")
        .send()
        .await
        .unwrap();
    let vandal = versions
        .versions()
        .iter()
        .find(|v| v.size() == Some(10))
        .and_then(|v| v.version_id())
        .unwrap()
        .to_string();
    let r = s
        .approved(&format!("/storage restore key:art/a.jpg version:{vandal}"))
        .await;
    ok(&r);
    assert_eq!(
        held(&s.media, "art/a.jpg").await.unwrap().body,
        b"vandalised"
    );
    let r = s
        .run("/storage restore key:art/a.jpg version:no-such-version")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("has no version no-such-version"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_restores_are_refused_and_change_nothing() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;

    // No snapshot yet.
    let r = s
        .run("/storage restore prefix:art/ at:2026-11-30T09:00:00Z")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("no snapshot of"), "{}", r.text);
    ok(&s.run("/storage snapshot").await);

    // Before the first snapshot: names the oldest.
    let r = s
        .run("/storage restore prefix:art/ at:2026-11-30T08:00:00Z")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("the oldest is 2026-11-30T09-00-00Z"),
        "{}",
        r.text
    );
    // Usage mistakes.
    for (line, want) in [
        ("/storage restore", "Say what to restore"),
        ("/storage restore prefix:art/", "prefix: needs at:"),
        ("/storage restore key:art/a.jpg", "key: needs version:"),
        ("/storage restore key:a prefix:b", "not both"),
        (
            "/storage restore prefix:art/ at:yesterday",
            "neither a UTC time",
        ),
        (
            "/storage restore key:art/a.jpg version:v1 at:2026-11-30",
            "go with prefix:",
        ),
    ] {
        let r = s.run(line).await;
        assert_eq!(r.outcome, Outcome::Usage, "{line}: {}", r.text);
        assert!(r.text.contains(want), "{line}: {}", r.text);
    }
    // R2 has no versions: a version id is refused, pointing at the snapshots.
    let r = s
        .run("/storage restore key:art/a.jpg version:3HL4kqtJlcpXroDTDmJ")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("keeps no object versions"), "{}", r.text);
    // A prefix with no objects anywhere.
    let r = s
        .run("/storage restore prefix:Art/ at:2026-11-30T09:00:00Z")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("No object in prefix Art/"), "{}", r.text);
    assert!(
        r.text.contains("art/") && r.text.contains("other/"),
        "names what it holds: {}",
        r.text
    );
    assert!(s.engine.store().approvals().unwrap().is_empty());

    // A live object changed between the request and the approval: void, nothing written.
    s.clock.advance(Duration::minutes(5));
    delete(&s.media, "art/b.png").await;
    let line = "/storage restore prefix:art/ at:2026-11-30T09-00-00Z";
    let r = s.run(line).await;
    let Outcome::AwaitingApproval(id) = r.outcome.clone() else {
        panic!("{}", r.text)
    };
    put_obj(
        &s.media,
        &Obj {
            key: "art/c d+é.txt",
            body: b"edited meanwhile".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    s.r2.clear();
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("is void") && r.text.contains("changed since the diff was approved"),
        "{}",
        r.text
    );
    assert!(held(&s.media, "art/b.png").await.is_none());
    assert!(s.r2.wrote_nothing());

    // A copy missing from the backup bucket: no request, nothing written.
    let copy = keys(&s.backup, "media/objects/eb30383b").await;
    assert_eq!(copy.len(), 1, "b.png's copy");
    delete(&s.backup, &copy[0]).await;
    let r = s.run(line).await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("1 copy this restore needs is missing") && r.text.contains(&copy[0]),
        "{}",
        r.text
    );
    assert!(r.text.contains("Nothing was written"), "{}", r.text);
    assert!(held(&s.media, "art/b.png").await.is_none());
    assert!(held(&s.media, "art/c d+é.txt").await.unwrap().body == b"edited meanwhile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_gone_between_request_and_approval_writes_nothing() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    ok(&s.run("/storage snapshot").await);
    delete(&s.media, "art/a.jpg").await;
    delete(&s.media, "art/b.png").await;
    let line = "/storage restore prefix:art/ at:2026-11-30T09-00-00Z";
    let r = s.run(line).await;
    let Outcome::AwaitingApproval(id) = r.outcome.clone() else {
        panic!("{}", r.text)
    };
    let copy = keys(&s.backup, "media/objects/eb30383b").await;
    delete(&s.backup, &copy[0]).await;
    s.r2.clear();
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("missing") && r.text.contains("Nothing was written"),
        "{}",
        r.text
    );
    // Checked before anything was written: a.jpg, whose copy is there, is not back either.
    assert!(held(&s.media, "art/a.jpg").await.is_none());
    assert!(s.r2.wrote_nothing());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_snapshot_writes_no_manifest_and_the_next_one_resumes() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    // Copies of one object fail (R2 answers 500 to them); the others go through.
    s.r2.fail_copies(Some("art/b.png"));
    let r = s.run("/storage snapshot").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(r.text.contains("No manifest was written"), "{}", r.text);
    assert!(keys(&s.backup, "media/snapshots/").await.is_empty());
    let made = keys(&s.backup, "media/objects/").await.len();
    assert!(made >= 1, "other copies were made and kept");
    let r = s
        .run("/storage restore prefix:art/ at:2026-11-30T09:00:00Z")
        .await;
    assert!(r.text.contains("no snapshot of"), "{}", r.text);

    s.r2.fail_copies(None);
    s.clock.advance(Duration::minutes(1));
    s.r2.clear();
    let r = s.run("/storage snapshot").await;
    ok(&r);
    // Only what the failed one did not copy is copied now.
    let copies =
        s.r2.seen()
            .iter()
            .filter(|x| x.copy_source.is_some())
            .count();
    assert_eq!(copies, 5 - made, "{}", r.text);
    assert!(
        r.text.contains(&format!("{} already held", 6 - copies)),
        "{}",
        r.text
    );
}

/// A listing that fails past its first page (the next pages are fetched while the first
/// page's copies run) ends the snapshot failed, with no manifest; the next one completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_part_way_writes_no_manifest() {
    use futures_util::StreamExt;
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    // More than one page (ListObjectsV2 answers 1,000 keys at most).
    let c = s3();
    futures_util::stream::iter(0..1000)
        .map(|i| {
            let (c, media) = (c.clone(), s.media.clone());
            async move {
                c.put_object()
                    .bucket(media)
                    .key(format!("many/{i:04}.txt"))
                    .body(format!("object {i}").into_bytes().into())
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let mut pages = s3()
        .list_objects_v2()
        .bucket(&s.media)
        .into_paginator()
        .send();
    let mut total = 0;
    while let Some(page) = pages.next().await {
        total += page.unwrap().contents().len();
    }
    assert!(total > 1000);

    s.r2.fail_continued_lists(true);
    let r = s.run("/storage snapshot").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(r.text.contains("No manifest was written"), "{}", r.text);
    assert!(r.text.contains("InternalError"), "{}", r.text);
    assert!(keys(&s.backup, "media/snapshots/").await.is_empty());

    s.r2.fail_continued_lists(false);
    s.clock.advance(Duration::minutes(1));
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(
        r.text.contains(&format!(": {total} objects (")),
        "{}",
        r.text
    );
    assert_eq!(keys(&s.backup, "media/snapshots/").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_ridden_out_and_a_failing_object_is_reported_with_the_rest_restored() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    // R2 answers bursts with 429: drbot backs off and the snapshot completes.
    s.r2.throttle(3);
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(s.r2.seen().iter().filter(|x| x.status == 429).count() >= 3);
    assert_eq!(keys(&s.backup, "media/objects/").await.len(), 5);

    delete(&s.media, "art/a.jpg").await;
    delete(&s.media, "art/b.png").await;
    let b_copy = keys(&s.backup, "media/objects/eb30383b").await.remove(0);
    s.r2.fail_copies(Some(&b_copy));
    let line = "/storage restore prefix:art/ at:2026-11-30T09-00-00Z";
    let r = s.approved(line).await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("1 object(s) could not be restored") && r.text.contains("art/b.png"),
        "{}",
        r.text
    );
    assert!(r.text.contains("The rest is restored"), "{}", r.text);
    assert!(r.text.contains("1 object(s) do not match"), "{}", r.text);
    assert!(held(&s.media, "art/a.jpg").await.is_some());
    assert!(held(&s.media, "art/b.png").await.is_none());
    // Running it again does only what is left.
    s.r2.fail_copies(None);
    let r = s.run(line).await;
    assert!(
        r.text.contains("create     1 object") && r.text.contains("unchanged  4 objects"),
        "{}",
        r.text
    );
    let r = s.approved(line).await;
    ok(&r);
    assert!(held(&s.media, "art/b.png").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_manifests_are_named_never_used_half_and_never_stop_the_next_snapshot() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    ok(&s.run("/storage snapshot").await);
    let key = "media/snapshots/2026-11-30T09-00-00Z.jsonl.xz";
    let good = crate::support::get(&s.backup, key).await;
    let text = {
        use std::io::Read;
        let mut out = String::new();
        liblzma::read::XzDecoder::new(good.as_slice())
            .read_to_string(&mut out)
            .unwrap();
        out
    };
    let xz = |t: &str| {
        use std::io::Write;
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(t.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n") + "\n";
    // The last one stays in place: the next snapshot must go on without it.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a copy outside the copies",
            xz(&text.replace(
                "\"copy\":\"media/objects/eb30383b",
                "\"copy\":\"db/eb30383b",
            )),
            "outside media/objects/",
        ),
        (
            "truncated xz",
            good[..good.len() / 2].to_vec(),
            "unreadable",
        ),
        ("no end line", xz(&cut), "ends early"),
        (
            "not json",
            xz(&format!("{}\nnot json\n", lines[0])),
            "line 2",
        ),
        ("garbage", b"\x00\x01garbage".to_vec(), "unreadable"),
    ];
    for (what, body, want) in cases {
        s3().put_object()
            .bucket(&s.backup)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
        delete(&s.media, "art/b.png").await;
        let r = s
            .run("/storage restore prefix:art/ at:2026-11-30T09-00-00Z")
            .await;
        assert_eq!(r.outcome, Outcome::Failed, "{what}: {}", r.text);
        assert!(
            r.text.contains(want) && r.text.contains("2026-11-30T09-00-00Z"),
            "{what}: {}",
            r.text
        );
        assert!(s.engine.store().approvals().unwrap().is_empty(), "{what}");
    }
    // The next snapshot goes on without it, and copies nothing already held.
    s.clock.advance(Duration::minutes(1));
    s.r2.clear();
    let r = s.run("/storage snapshot").await;
    ok(&r);
    assert!(r.text.contains("could not be used"), "{}", r.text);
    assert!(
        !s.r2.seen().iter().any(|x| x.copy_source.is_some()),
        "nothing copied again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_killed_part_way_leaves_no_manifest_and_the_next_one_resumes() {
    let media = bucket("drbot-kmedia-").await;
    let backup = bucket("drbot-kbk-").await;
    let n = 150;
    for i in 0..n {
        put_obj(
            &media,
            &Obj {
                key: &format!("k/{i:04}.jpg"),
                body: format!("object {i}").into_bytes(),
                content_type: "image/jpeg",
                meta: &[],
            },
        )
        .await;
    }
    let d = crate::support::Drbot::new(&format!(
        "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{backup}\"\nmedia_bucket = \"{media}\"\n\
         [storage.snapshots]\nconcurrency = 1\n\
         [people.alice]\nroles = [\"commander\"]\n[console]\ntrust_as = true\n"
    ));
    let exec = |d: &crate::support::Drbot| {
        let mut c = d.command();
        c.args(["exec", "--as", "alice", "/storage snapshot"])
            .env("R2_ENDPOINT", moto())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut child = exec(&d).spawn().unwrap();
    // Kill it once it has made some copies, well before the last.
    let mut made = 0;
    for _ in 0..400 {
        made = keys(&backup, "media/objects/").await.len();
        if made >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(made >= 10 && made < n, "killed after {made} copies");
    assert!(
        keys(&backup, "media/snapshots/").await.is_empty(),
        "no manifest from a killed snapshot"
    );

    let out = exec(&d).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{n} objects")), "{stdout}");
    // What the killed one copied is not copied again.
    let held: usize = stdout
        .split(" already held")
        .next()
        .and_then(|p| p.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(held >= made, "{stdout}");
    assert_eq!(keys(&backup, "media/snapshots/").await.len(), 1);
    assert!(!stdout.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioning_status_that_cannot_be_read_leaves_the_snapshots_as_the_way_back() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    s.r2.garble_versioning();
    ok(&s.run("/storage snapshot").await);
    let r = s.run("/storage check").await;
    ok(&r);
    assert!(
        r.text.contains("Versioning: could not be read"),
        "{}",
        r.text
    );
    let r = s.run("/storage versions key:art/a.jpg").await;
    ok(&r);
    assert!(
        r.text.contains("could not be read") && r.text.contains("2026-11-30T09-00-00Z"),
        "{}",
        r.text
    );
    delete(&s.media, "art/b.png").await;
    let line = "/storage restore prefix:art/ at:2026-11-30T09:30:00Z";
    let r = s.approved(line).await;
    ok(&r);
    assert!(
        r.text.contains("from snapshot 2026-11-30T09-00-00Z"),
        "{}",
        r.text
    );
    assert!(held(&s.media, "art/b.png").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_part_way_is_never_rerun_and_asking_again_does_only_what_is_left() {
    let media = bucket("drbot-rkmedia-").await;
    let backup = bucket("drbot-rkbk-").await;
    let n = 120;
    let body = |i: usize| format!("object {i} {}", "z".repeat(i)).into_bytes();
    for i in 0..n {
        put_obj(
            &media,
            &Obj {
                key: &format!("k/{i:04}.jpg"),
                body: body(i),
                content_type: "image/jpeg",
                meta: &[("n", &i.to_string())],
            },
        )
        .await;
    }
    let d = crate::support::Drbot::new(&format!(
        "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{backup}\"\nmedia_bucket = \"{media}\"\n\
         [storage.snapshots]\nconcurrency = 1\n\
         [people.alice]\nroles = [\"commander\"]\n[people.bob]\nroles = [\"approver\"]\n\
         [console]\ntrust_as = true\n"
    ));
    let exec = |who: &str, line: &str| {
        let mut c = d.command();
        c.args(["exec", "--as", who, line])
            .env("R2_ENDPOINT", moto())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let out = exec("alice", "/storage snapshot").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for i in 0..n {
        delete(&media, &format!("k/{i:04}.jpg")).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let line = "/storage restore prefix:k/ at:2099-01-01T00:00:00Z";
    let ask = |exec: &dyn Fn(&str, &str) -> std::process::Command| {
        let out = exec("alice", line).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(3), "{stdout}");
        let id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("approval request "))
            .unwrap()
            .to_string();
        (id, stdout)
    };
    let (id, _) = ask(&exec);
    let mut child = exec("bob", &format!("/approve request:{id}"))
        .spawn()
        .unwrap();
    let mut back = 0;
    for _ in 0..400 {
        back = keys(&media, "k/").await.len();
        if back >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(back >= 10 && back < n, "killed after {back} objects");

    // The killed approval is never run again: it is marked interrupted, and a second approve
    // of it is refused.
    let out = exec("bob", &format!("/approve request:{id}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("never run twice"), "{stdout}");
    // Asking again: the diff is only what is left, and running it brings the rest back.
    let (again, asked) = ask(&exec);
    let left = n - keys(&media, "k/").await.len();
    assert!(
        asked.contains(&format!("create     {left} object")),
        "{asked}"
    );
    let out = exec("bob", &format!("/approve request:{again}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("every object in scope now matches"),
        "{stdout}"
    );
    for i in [0, n / 2, n - 1] {
        let h = held(&media, &format!("k/{i:04}.jpg")).await.unwrap();
        assert_eq!(h.body, body(i));
        assert_eq!(h.meta.get("n"), Some(&i.to_string()));
    }
    assert_eq!(keys(&media, "k/").await.len(), n);
    assert!(!stdout.contains(SECRET) && !String::from_utf8_lossy(&out.stderr).contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_bucket_comes_back_with_prefix_star() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    let before: Vec<(String, Held)> = {
        let mut v = Vec::new();
        for k in keys(&s.media, "").await {
            v.push((k.clone(), held(&s.media, &k).await.unwrap()));
        }
        v
    };
    ok(&s.run("/storage snapshot").await);
    // The bucket emptied (the disaster the runbook's Scenario 2 is about).
    for (k, _) in &before {
        delete(&s.media, k).await;
    }
    assert!(keys(&s.media, "").await.is_empty());
    let line = "/storage restore prefix:* at:2026-11-30T09-00-00Z";
    let r = s.run(line).await;
    assert!(
        matches!(r.outcome, Outcome::AwaitingApproval(_)),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("the whole bucket") && r.text.contains("create     6 objects"),
        "{}",
        r.text
    );
    let r = s.approved(line).await;
    ok(&r);
    for (k, h) in &before {
        let now = held(&s.media, k)
            .await
            .unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(
            (&now.body, &now.content_type, &now.meta),
            (&h.body, &h.content_type, &h.meta),
            "{k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_drill_restores_a_damaged_sample_and_leaves_the_media_listing_identical() {
    // Every object of the snapshot, the 12 MiB multipart one (copied in parts) included.
    let s = setup(false, "[drills]\nmedia_sample = 6").await;
    seed_media(&s.media).await;
    ok(&s.run("/storage snapshot").await);
    let listing = |bucket: String| async move {
        let mut out = Vec::new();
        let mut pages = s3()
            .list_objects_v2()
            .bucket(&bucket)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            for o in p.unwrap().contents() {
                out.push((
                    o.key().unwrap_or_default().to_string(),
                    o.size(),
                    o.e_tag().map(str::to_string),
                ));
            }
        }
        out
    };
    let before = listing(s.media.clone()).await;
    // 90 minutes after the snapshot: the drill's RPO is the snapshot's age.
    s.clock.advance(chrono::Duration::minutes(90));
    let r = s.run("/drill start kind:storage").await;
    ok(&r);
    let drill = s.engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.steps.len(), 5, "{drill:?}");
    assert!(
        drill.steps.iter().all(|st| st.ok == Some(true)),
        "{drill:?}"
    );
    assert!(
        drill.steps[0].detail.contains("Copied 6 objects"),
        "{drill:?}"
    );
    assert!(
        drill.steps[1].detail.contains("Overwrote 2 and deleted 2"),
        "{drill:?}"
    );
    assert!(
        drill.steps[3].detail.contains("All 6 objects match"),
        "{drill:?}"
    );
    assert_eq!(drill.rpo_secs, Some(90 * 60));
    // Its scratch prefix carries this install's tag (8 hex of the data directory's path), so
    // two drbots drilling on one media bucket never share one.
    let dir = std::fs::canonicalize(s.engine.store().path()).unwrap();
    let tag = crate::support::sh(&format!("printf %s '{}' | sha256sum", dir.display()));
    assert_eq!(
        drill
            .scratch
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>(),
        [format!(".drbot-probe/drills/DRILL-1-{}/", &tag[..8])],
        "{drill:?}"
    );
    assert!(
        drill
            .report
            .contains("| RPO (storage) | 1h00m | 1h30m | missed by 30m |"),
        "{}",
        drill.report
    );
    assert!(r.text.contains("was removed"), "{}", r.text);
    // The live media are exactly as they were; the scratch prefix is gone.
    assert_eq!(listing(s.media.clone()).await, before);
    assert!(keys(&s.media, ".drbot-probe/").await.is_empty());

    // Copies that fail: the drill fails at that step, says why, and leaves nothing behind.
    s.r2.fail_copies(Some("media/objects/"));
    let r = s.run("/drill start kind:storage").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("DRILL-2: storage drill FAILED at step 1"),
        "{}",
        r.text
    );
    assert!(r.text.contains("were not written"), "{}", r.text);
    assert!(r.text.contains("was removed"), "{}", r.text);
    s.r2.fail_copies(None);
    assert_eq!(listing(s.media.clone()).await, before);
    assert!(keys(&s.media, ".drbot-probe/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_drill_without_a_snapshot_fails_at_once_and_creates_nothing() {
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    s.r2.clear();
    let r = s.run("/drill start kind:storage").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(r.text.contains("no snapshot of"), "{}", r.text);
    assert!(r.text.contains("/storage snapshot"), "{}", r.text);
    let drill = s.engine.store().drills().unwrap().remove(0);
    assert!(drill.scratch.is_empty(), "{drill:?}");
    assert!(drill.rpo_secs.is_none());
    assert!(s.r2.wrote_nothing());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_drill_cut_short_has_its_prefix_removed_at_the_next_start_and_nothing_else() {
    use drbot_state::{DrillStatus, Scratch, ScratchState};
    let s = setup(false, "").await;
    seed_media(&s.media).await;
    // What a killed storage drill leaves: its recorded prefix, half written.
    for key in [
        ".drbot-probe/drills/DRILL-1/art/a.jpg",
        ".drbot-probe/drills/DRILL-1/art/b.png",
        // Not recorded by any drill: never touched.
        ".drbot-probe/drills/DRILL-9/other.txt",
    ] {
        put_obj(
            &s.media,
            &Obj {
                key,
                body: b"partial".to_vec(),
                content_type: "text/plain",
                meta: &[],
            },
        )
        .await;
    }
    crate::support::stage_drill(
        s.engine.store(),
        "storage",
        DrillStatus::Running,
        vec![Scratch {
            kind: "prefix".into(),
            name: ".drbot-probe/drills/DRILL-1/".into(),
            state: ScratchState::Planned,
        }],
    );
    let said = drbot_commands::scenarios::drill::recover(&s.engine).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("DRILL-1: the storage drill was interrupted")
            && said[0].contains("dropped prefix .drbot-probe/drills/DRILL-1/"),
        "{said:?}"
    );
    assert_eq!(
        keys(&s.media, ".drbot-probe/").await,
        [".drbot-probe/drills/DRILL-9/other.txt"]
    );
    let drill = s.engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Interrupted);
    assert_eq!(drill.scratch[0].state, ScratchState::Dropped);
    assert!(drill.report.contains("interrupted"), "{}", drill.report);
    // Once: the next start has nothing to do.
    assert!(
        drbot_commands::scenarios::drill::recover(&s.engine)
            .await
            .is_empty()
    );
    // The live media were not touched.
    assert_eq!(keys(&s.media, "art/").await.len(), 5);

    // What an ended drill could not drop is dropped before the next drill, which says so.
    put_obj(
        &s.media,
        &Obj {
            key: ".drbot-probe/drills/DRILL-2/left.txt",
            body: b"left".to_vec(),
            content_type: "text/plain",
            meta: &[],
        },
    )
    .await;
    crate::support::stage_drill(
        s.engine.store(),
        "storage",
        DrillStatus::Interrupted,
        vec![Scratch {
            kind: "prefix".into(),
            name: ".drbot-probe/drills/DRILL-2/".into(),
            state: ScratchState::Created,
        }],
    );
    // Not at an exec's start: only running drills are cleaned up there.
    assert!(
        drbot_commands::scenarios::drill::recover(&s.engine)
            .await
            .is_empty()
    );
    let r = s.run("/drill start kind:storage").await;
    assert!(
        r.text.contains("Before it: DRILL-2: the storage drill had left scratch resources; dropped prefix .drbot-probe/drills/DRILL-2/"),
        "{}",
        r.text
    );
    assert_eq!(
        keys(&s.media, ".drbot-probe/").await,
        [".drbot-probe/drills/DRILL-9/other.txt"]
    );
}

/// The content `art/b.png` has on day `d` of the prune test.
fn day_body(d: usize) -> Vec<u8> {
    bytes(100 + d as u8, 1500 + d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_snapshots_are_pruned_their_copies_swept_past_the_grace_and_kept_ones_still_whole() {
    let retention = "[retention]\nkeep_all_hours = 24\ndaily_days = 3\nweekly_weeks = 0\nmonthly_months = 0\nmin_keep = 2\ncopy_grace_hours = 24\n";
    let s = setup(false, &format!("[backup]\nevery_mins = 0\n{retention}")).await;
    seed_media(&s.media).await;
    // Engine time runs ahead of the bucket's own clock, so copies written now are past the
    // grace when the prune runs days later (engine time).
    let ahead = Utc::now() - t0();
    if ahead > Duration::zero() {
        s.clock.advance(ahead);
    }
    // Eight daily snapshots; art/b.png changes every day, so each day has a copy of its own.
    let days = 8;
    for d in 0..days {
        put_obj(
            &s.media,
            &Obj {
                key: "art/b.png",
                body: day_body(d),
                content_type: "image/png",
                meta: &[],
            },
        )
        .await;
        ok(&s.run("/storage snapshot").await);
        if d + 1 < days {
            s.clock.advance(Duration::days(1));
        }
    }
    let manifests_before = keys(&s.backup, "media/snapshots/").await;
    assert_eq!(manifests_before.len(), days, "{manifests_before:?}");
    let copies_before = keys(&s.backup, "media/objects/").await;

    // Copies are swept only past the grace (a snapshot being taken writes its copies before
    // its manifest): with a grace longer than the test's days, none is listed.
    let config = Config::from_toml(
        &format!(
            "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{}\"\nmedia_bucket = \"{}\"\n\
             [storage.snapshots]\nprefix = \"media/\"\n[backup]\nevery_mins = 0\n{}",
            s.backup,
            s.media,
            retention.replace("copy_grace_hours = 24", "copy_grace_hours = 1000")
        ),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("R2_ENDPOINT".to_string(), s.r2.endpoint.clone()),
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            "drbot-test-key".to_string(),
        ),
        ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET.to_string()),
    ]);
    let patient = Engine::new(
        Arc::new(config),
        Store::open(dir.path()).unwrap(),
        s.clock.clone(),
    )
    .with_env(Arc::new(move |k| env.get(k).cloned()));
    let r = patient
        .run(&commander(), "/backup prune dry_run:true")
        .await;
    ok(&r);
    assert!(
        r.text.contains("Media snapshots: keep 3") && r.text.contains("(past the grace): delete 0"),
        "{}",
        r.text
    );

    let r = s.run("/backup prune dry_run:true").await;
    ok(&r);
    // Kept: the young (the last day) and the newest of each of the last 3 days.
    assert!(r.text.contains("Media snapshots: keep 3"), "{}", r.text);
    assert!(r.text.contains("delete 5"), "{}", r.text);
    assert!(
        r.text
            .contains("Snapshot copies no kept snapshot references (past the grace): delete 5"),
        "{}",
        r.text
    );
    let r = s.approved("/backup prune dry_run:false").await;
    ok(&r);
    assert!(
        r.text.contains("5 snapshots") && r.text.contains("5 copies"),
        "{}",
        r.text
    );
    let manifests = keys(&s.backup, "media/snapshots/").await;
    assert_eq!(manifests.len(), 3, "{manifests:?}");
    let copies = keys(&s.backup, "media/objects/").await;
    assert_eq!(copies.len(), copies_before.len() - 5, "{copies:?}");
    // Every kept snapshot is still whole: every copy it names is there, byte for byte.
    for m in &manifests {
        let raw = crate::support::get(&s.backup, m).await;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut liblzma::read::XzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        let day = manifests_before.iter().position(|k| k == m).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(copy) = v.get("copy").and_then(|c| c.as_str()) else {
                continue;
            };
            let body = crate::support::get(&s.backup, copy).await;
            assert_eq!(body.len() as u64, v["size"].as_u64().unwrap(), "{copy}");
            if v["key"] == "art/b.png" {
                assert_eq!(body, day_body(day), "{m}: art/b.png");
            }
        }
    }
    // A kept snapshot still restores: art/ as it was three days ago comes back byte-identical.
    put_obj(
        &s.media,
        &Obj {
            key: "art/b.png",
            body: b"damaged".to_vec(),
            content_type: "image/png",
            meta: &[],
        },
    )
    .await;
    let oldest_kept =
        drbot_commands::scenarios::storage::manifest::snapshot_name(&manifests[0]).to_string();
    let r = s
        .approved(&format!(
            "/storage restore prefix:art/ at:{oldest_kept} delete_newer:false"
        ))
        .await;
    ok(&r);
    assert_eq!(held(&s.media, "art/b.png").await.unwrap().body, day_body(5));
    // Each deletion is on the audit log with its key.
    let audit = s.engine.store().audit().unwrap();
    for k in manifests_before.iter().filter(|k| !manifests.contains(k)) {
        assert!(audit.iter().any(|e| e.text.contains(k.as_str())), "{k}");
    }
}

/// An endpoint that accepts connections and never answers is given up on within
/// `[storage] timeout_secs` (retries included), named, and nothing else is tried against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_bucket_endpoint_is_given_up_on_within_its_timeout_and_named() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = Config::from_toml(
        "[people.alice]\nroles = [\"commander\"]\n\
         [storage]\nregion = \"us-east-1\"\nbackup_bucket = \"bk\"\nmedia_bucket = \"media\"\ntimeout_secs = 2\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("R2_ENDPOINT".to_string(), endpoint.clone()),
        ("AWS_ACCESS_KEY_ID".to_string(), "k".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET.to_string()),
    ]);
    let engine = Engine::new(
        Arc::new(config),
        Store::open(dir.path()).unwrap(),
        Arc::new(ManualClock::new(t0())),
    )
    .with_env(Arc::new(move |k| env.get(k).cloned()));
    let started = std::time::Instant::now();
    let r = engine.run(&commander(), "/storage snapshot").await;
    let took = started.elapsed();
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "no answer from {endpoint} within 2 s ([storage] timeout_secs)"
        )),
        "{}",
        r.text
    );
    assert!(!r.text.contains(SECRET), "{}", r.text);
    // The SDK's three attempts, each waiting the whole timeout, would take 6 s.
    assert!(took < std::time::Duration::from_millis(4500), "{took:?}");

    let bad = Config::from_toml(
        "[storage]\nbackup_bucket = \"bk\"\ntimeout_secs = 0\n",
        std::path::Path::new("t.toml"),
    );
    assert!(bad.is_err_and(|e| {
        e.to_string()
            .contains("[storage] timeout_secs must be 1 to 600, not 0")
    }));
}

/// The timeout bounds a request, not a download: a body that takes longer than
/// `[storage] timeout_secs` to read still arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_longer_than_the_timeout_still_arrives_whole() {
    let backup = bucket("drbot-slow-").await;
    let body = bytes(7, 4 << 20);
    s3().put_object()
        .bucket(&backup)
        .key("big.bin")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    let config = Config::from_toml(
        &format!(
            "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{backup}\"\ntimeout_secs = 1\n"
        ),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let storage = config.storage.clone().unwrap();
    let env = |k: &str| match k {
        "R2_ENDPOINT" => Some(moto().to_string()),
        "AWS_ACCESS_KEY_ID" => Some("test".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("test".to_string()),
        _ => None,
    };
    let b = drbot_commands::bucket::Bucket::from_config(&storage, &backup, &env).unwrap();
    let (_, mut stream) = b.get("big.bin", None).await.unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
        if started.elapsed() < std::time::Duration::from_millis(2500) {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    assert!(started.elapsed() > std::time::Duration::from_secs(2));
    assert_eq!(got.len(), body.len());
    assert!(got == body);
}

/// While other work holds the media bucket, a snapshot is refused, naming what holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_on_a_busy_media_bucket_is_refused_naming_what_holds_it() {
    let s = setup(false, "").await;
    let lock = drbot_commands::scenarios::storage::action::lock_name(&s.media);
    let _held = s
        .engine
        .restores()
        .take(&lock, "carol restoring artworks/".to_string())
        .unwrap();
    let r = s.run("/storage snapshot").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "{} is busy (carol restoring artworks/). Wait for it to finish, then /storage snapshot.",
            s.media
        )),
        "{}",
        r.text
    );
}
