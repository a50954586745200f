//! Scenario 1, the database: backups in a real (moto) bucket, restored by drbot into a real
//! PostgreSQL, compared with pg_dump; bad backups leave the target as it was.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use drbot_commands::progress::Collect;
use drbot_commands::{Actor, Config, Context, Engine, Outcome, Place, Reply, SystemClock};
use drbot_state::{IncidentId, Proof, StepState, Store};

use crate::support::{AgeKey, Drbot, TestDb, age_key, assert_same_dump, bucket, moto, put, s3, sh};

/// Tables, types and data that break naive restorers.
pub(crate) const FIXTURE: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE "MixedCase" ("Id" serial PRIMARY KEY, "Note" text, n posint, m mood);
CREATE TABLE data (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  t text, b bytea, arr text[], j jsonb, u text,
  doubled bigint GENERATED ALWAYS AS (id * 2) STORED
);
CREATE TABLE measurements (id int, at date, v float8) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE FUNCTION semi() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN 'a;b'; END; $body$;
CREATE FUNCTION tagged() RETURNS text LANGUAGE sql AS $x$ SELECT $y$;$y$ $x$;
CREATE FUNCTION atomic_fn() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
INSERT INTO "MixedCase" ("Note", n, m) VALUES
  (E'tab\there', 1, 'happy'), (E'back\\slash', 2, 'it''s complicated'), (E'\\.', 3, 'sad'),
  (E'cr\r\nlf', 4, NULL), ('', 5, 'happy'), (NULL, 6, NULL), (E'\\.\n\\.', 7, 'sad');
INSERT INTO data (t, b, arr, j, u) VALUES
  ('ünïcødé 🚀 -- not a comment; /* nor this */', '\xdeadbeef00', ARRAY['a,b', 'c"d', NULL], '{"k": [1, "two", null]}', E'line1\nline2'),
  (NULL, NULL, '{}', 'null', ''),
  ('$$dollar$$', '\x', ARRAY[]::text[], '"str"', E'\\N');
INSERT INTO measurements VALUES (1, '2024-05-01', 1.5), (2, '2025-05-01', -0.25);
CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM data;
CREATE INDEX data_t ON data (t);
COMMENT ON TABLE data IS 'semi; colon and ''quotes''';
"#;

pub(crate) struct Setup {
    pub _dir: tempfile::TempDir,
    pub engine: Engine,
    pub bucket: String,
    pub key: AgeKey,
    pub source: TestDb,
    pub target: TestDb,
    pub work: tempfile::TempDir,
}

pub(crate) fn commander() -> Context {
    Context {
        actor: Actor {
            id: drbot_commands::identity::Principal::person("alice"),
            name: "alice".into(),
            roles: ["commander".to_string()].into(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    }
}

pub(crate) fn env_map(s3_endpoint: &str, source: &str, target: &str) -> HashMap<String, String> {
    HashMap::from([
        ("R2_ENDPOINT".to_string(), s3_endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
        ("SOURCE_URL".to_string(), source.to_string()),
        ("STAGING_URL".to_string(), target.to_string()),
    ])
}

pub(crate) fn config_text(bucket: &str, key: &AgeKey) -> String {
    format!(
        r#"
[targets.source]
url_env = "SOURCE_URL"
[targets.staging]
url_env = "STAGING_URL"
[storage]
region = "us-east-1"
backup_bucket = "{bucket}"
[backup]
age_identity_file = "{}"
age_recipients = ["{}"]
xz_level = 1
"#,
        key.file.display(),
        key.recipient
    )
}

pub(crate) fn engine_with(dir: &Path, config: &str, env: HashMap<String, String>) -> Engine {
    let config = Config::from_toml(config, Path::new("test.toml")).expect("config");
    let store = Store::open(dir).expect("store");
    Engine::new(Arc::new(config), store, Arc::new(SystemClock))
        .with_env(Arc::new(move |k| env.get(k).cloned()))
}

pub(crate) async fn setup() -> Setup {
    setup_with(|c| c).await
}

/// The setup with `staging` marked as the production target (`production = true`): the
/// runbook's steps are done by commands on it.
pub(crate) async fn setup_staging_is_production() -> Setup {
    setup_with(|c| {
        c.replace(
            "url_env = \"STAGING_URL\"",
            "url_env = \"STAGING_URL\"\nproduction = true",
        )
    })
    .await
}

pub(crate) async fn setup_with(config: impl FnOnce(String) -> String) -> Setup {
    let key = age_key();
    let bucket = bucket("drbot-db-").await;
    let source = TestDb::new("drbot_src_");
    let target = TestDb::new("drbot_tgt_");
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_with(
        dir.path(),
        &config(config_text(&bucket, &key)),
        env_map(moto(), &source.url(), &target.url()),
    );
    Setup {
        _dir: dir,
        engine,
        bucket,
        key,
        source,
        target,
        work: tempfile::tempdir().expect("work dir"),
    }
}

impl Setup {
    /// Runs `pipeline` (a shell pipeline reading the source's plain dump on stdin when it
    /// starts with `|`) and uploads its output as `db/<name>`.
    pub async fn upload(&self, name: &str, script: &str) -> String {
        let out = self.work.path().join(name);
        sh(&format!("{script} > {}", out.display()));
        let key = format!("db/{name}");
        put(&self.bucket, &key, std::fs::read(&out).expect("read")).await;
        key
    }

    pub fn dump_cmd(&self) -> String {
        format!("pg_dump --clean --if-exists '{}'", self.source.url())
    }

    pub fn age(&self) -> String {
        format!("age -r {}", self.key.recipient)
    }

    pub async fn run(&self, line: &str) -> Reply {
        self.engine.run(&commander(), line).await
    }

    /// A destructive command asked for by alice and approved by bob.
    /// The incident's timeline, one entry a line.
    pub fn timeline(&self, id: IncidentId) -> String {
        self.engine
            .store()
            .timeline(id)
            .unwrap()
            .into_iter()
            .map(|e| e.text + "\n")
            .collect()
    }

    /// A backup of the source taken at 2026-11-25 09:00, and a sev1 database incident.
    pub async fn backup_and_declare(&self) {
        self.upload(
            "2026-11-25T09-00-00Z.sql.xz.age",
            &format!("{} | xz | {}", self.dump_cmd(), self.age()),
        )
        .await;
        self.run("/incident declare scenario:database severity:sev1 title:\"db gone\"")
            .await;
    }

    pub async fn approved(&self, line: &str) -> Reply {
        approved_with(&self.engine, line, &drbot_commands::progress::NoProgress).await
    }
}

/// bob, who may approve.
pub(crate) fn approver() -> Context {
    Context {
        actor: Actor {
            id: drbot_commands::identity::Principal::person("bob"),
            name: "bob".into(),
            roles: ["approver".to_string()].into(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    }
}

/// Asks as alice; if that needs approval, approves as bob and returns bob's reply.
pub(crate) async fn approved_with(
    engine: &Engine,
    line: &str,
    progress: &dyn drbot_commands::progress::ProgressSink,
) -> Reply {
    let r = engine.run(&commander(), line).await;
    match &r.outcome {
        Outcome::AwaitingApproval(id) => {
            assert!(
                r.text
                    .lines()
                    .any(|l| l == format!("approval request {id}")),
                "{}",
                r.text
            );
            engine
                .run_with(&approver(), &format!("/approve request:{id}"), progress)
                .await
        }
        _ => r,
    }
}

/// After a preflight that failed: its request (if the restore got that far) is void, and
/// nothing is left that could ever run.
pub(crate) fn nothing_can_run(engine: &Engine) {
    for r in engine.store().approvals().unwrap() {
        assert_eq!(
            r.status,
            drbot_state::ApprovalStatus::Voided,
            "{}: {:?}",
            r.id,
            r.reason
        );
        assert_eq!(r.preflight, drbot_state::PreflightState::Failed, "{}", r.id);
    }
}

/// A restore into staging that failed (exit 1), saying `says`, with staging as it was.
fn assert_refused_unchanged(s: &Setup, r: &Reply, says: &str, before: &str, what: &str) {
    assert_eq!(r.outcome.exit_code(), 1, "{what}: {}", r.text);
    assert!(r.text.contains(says), "{what}: {}", r.text);
    assert!(
        r.text.contains("staging is as it was before"),
        "{what}: {}",
        r.text
    );
    assert_same_dump(before, &s.target.dump(), what);
}

fn assert_outcome(r: &Reply, want: Outcome) {
    assert_eq!(r.outcome, want, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tricky_database_round_trips_through_xz_and_age() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    s.target
        .psql("CREATE TABLE leftover (x int); INSERT INTO leftover VALUES (1);");
    let key = s
        .upload(
            "2026-11-25T10-00-00Z.sql.xz.age",
            &format!("{} | xz -6 | {}", s.dump_cmd(), s.age()),
        )
        .await;
    let progress = Collect::default();
    let r = approved_with(
        &s.engine,
        "/db restore backup:latest target:staging",
        &progress,
    )
    .await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains(&format!("Restored {key} into staging")),
        "{}",
        r.text
    );
    // Asked and approved in one process: what the preflight decoded is what was restored.
    assert!(
        r.text.contains("restored from the preflight's local copy")
            && r.text.contains("(age → xz)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Verify staging: PASS"), "{}", r.text);
    assert!(!progress.0.lock().unwrap().is_empty());
    // The dump had no DROP for `leftover` (it is not in the source): compare what the source has.
    s.target.psql("DROP TABLE leftover;");
    assert_same_dump(&s.source.dump(), &s.target.dump(), "restore");
}

/// Asks for the latest backup to be restored into staging; returns the request.
async fn asked(engine: &Engine) -> String {
    let r = engine
        .run(&commander(), "/db restore backup:latest target:staging")
        .await;
    match r.outcome {
        Outcome::AwaitingApproval(id) => id,
        other => panic!("{other:?}: {}", r.text),
    }
}

/// The files of the engine's local copies.
fn spooled(engine: &Engine) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(engine.store().path().join("spool"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Issue 29: the restore reads what its preflight decoded (kept encrypted on local disk)
/// instead of downloading and decompressing the backup again; a copy damaged on disk is found
/// by its authentication, rolled back, and the bucket read instead; no copy outlives its use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_reads_the_preflights_copy_and_a_damaged_copy_falls_back_to_the_bucket() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    s.source.psql(
        "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;",
    );
    let key = s
        .upload(
            "2026-11-25T10-00-00Z.sql.xz.age",
            &format!("{} | xz | {}", s.dump_cmd(), s.age()),
        )
        .await;
    let id = asked(&s.engine).await;
    // Kept encrypted: the data is not on disk as it is.
    let files = spooled(&s.engine);
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read(&files[0]).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/"));
    assert!(
        !raw.windows(32)
            .any(|w| w == "c4ca4238a0b923820dcc509a6f75849b".as_bytes()),
        "md5('1') is in the clear"
    );
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains(&format!("Restored {key} into staging"))
            && r.text.contains("restored from the preflight's local copy"),
        "{}",
        r.text
    );
    assert_same_dump(&s.source.dump(), &s.target.dump(), "from the copy");
    assert!(spooled(&s.engine).is_empty(), "{:?}", spooled(&s.engine));

    // A copy damaged on disk after the preflight.
    s.target.recreate();
    let id = asked(&s.engine).await;
    let files = spooled(&s.engine);
    let mut raw = std::fs::read(&files[0]).unwrap();
    let middle = raw.len() / 2;
    raw[middle] ^= 0x55;
    std::fs::write(&files[0], &raw).unwrap();
    // Found in the middle of a COPY: the load must end and roll back, not wait for data.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        s.engine.run(&approver(), &format!("/approve request:{id}")),
    )
    .await
    .expect("a failure inside a COPY rolls back at once");
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text
            .contains("The preflight's local copy could not be read back")
            && r.text.contains("downloaded (age → xz)"),
        "{}",
        r.text
    );
    assert_same_dump(&s.source.dump(), &s.target.dump(), "from the bucket");
    assert!(spooled(&s.engine).is_empty(), "{:?}", spooled(&s.engine));
}

/// `[restore] preflight_copy = false`: nothing is written to disk; the restore reads the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_preflight_copy_the_restore_reads_the_bucket() {
    let s = setup_with(|c| format!("{c}\n[restore]\npreflight_copy = false\n")).await;
    s.source.psql(FIXTURE);
    s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let id = asked(&s.engine).await;
    assert!(spooled(&s.engine).is_empty(), "{:?}", spooled(&s.engine));
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_outcome(&r, Outcome::Done);
    assert!(r.text.contains("downloaded (age → xz)"), "{}", r.text);
    assert_same_dump(&s.source.dump(), &s.target.dump(), "from the bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_builds_in_a_restore_get_the_configured_maintenance_memory() {
    // The dump records the session's setting as it runs (as an index build would see it).
    for (config, want) in [("", "256MB"), ("maintenance_work_mem_mb = 96\n", "96MB")] {
        let s = setup_with(|c| format!("{c}\n[restore]\n{config}")).await;
        s.upload(
            "2026-11-25T10-00-00Z.sql.xz.age",
            &format!(
                "printf '%s\\n' \"CREATE TABLE public.seen AS SELECT current_setting('maintenance_work_mem') AS v;\" | xz | {}",
                s.age()
            ),
        )
        .await;
        let r = s.approved("/db restore backup:latest target:staging").await;
        assert_outcome(&r, Outcome::Done);
        let seen = crate::support::sh(&format!(
            "psql -tA -X '{}' -c 'SELECT v FROM public.seen'",
            s.target.url()
        ));
        assert_eq!(seen.trim(), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layering_restores_by_magic_bytes_not_names() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    let dump = s.dump_cmd();
    let variants = [
        (
            "armored.bin",
            format!("{dump} | xz | age -a -r {}", s.key.recipient),
            "age (armored) → xz",
        ),
        ("plain.sql.xz.age", dump.clone(), "statements"),
        ("xz-only.sql", format!("{dump} | xz"), "(xz)"),
        ("age-only.sql", format!("{dump} | {}", s.age()), "(age)"),
        (
            "custom.dump",
            format!("pg_dump -Fc '{}' | {}", s.source.url(), s.age()),
            "custom format",
        ),
    ];
    for (name, script, says) in variants {
        s.target.recreate();
        let key = s.upload(name, &script).await;
        let r = s
            .approved(&format!("/db restore backup:{key} target:staging"))
            .await;
        assert_outcome(&r, Outcome::Done);
        assert!(r.text.contains(says), "{name}: {}", r.text);
        assert_same_dump(&s.source.dump(), &s.target.dump(), name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drbots_own_backup_restores_to_the_same_database() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    let r = s.run("/db backup target:source").await;
    assert_outcome(&r, Outcome::Done);
    assert!(r.text.contains("Backed up source to"), "{}", r.text);
    let objects = s3()
        .list_objects_v2()
        .bucket(&s.bucket)
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let manifest_key = keys
        .iter()
        .find(|k| k.ends_with(".manifest.json"))
        .expect("manifest");
    let body = s3()
        .get_object()
        .bucket(&s.bucket)
        .key(*manifest_key)
        .send()
        .await
        .expect("get manifest")
        .body
        .collect()
        .await
        .expect("read")
        .into_bytes();
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        manifest["tables"]["public.\"MixedCase\""]["rows"], 7,
        "{manifest}"
    );
    assert!(
        manifest["pg_dump_version"]
            .as_str()
            .unwrap()
            .contains("pg_dump")
    );
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);

    let r = s.approved("/db restore backup:latest target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("row counts") && r.text.contains("match the backup's manifest"),
        "{}",
        r.text
    );
    assert_same_dump(&s.source.dump(), &s.target.dump(), "restore");
    // A later /db verify compares with the manifest of the backup restored last.
    let r = s.run("/db verify target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("tables match the backup's manifest"),
        "{}",
        r.text
    );
    // The age CLI reads drbot's backups too (the runbook's manual path still works).
    let key = keys
        .iter()
        .find(|k| !k.ends_with(".manifest.json"))
        .unwrap();
    let out = s.work.path().join("b");
    let obj = s3()
        .get_object()
        .bucket(&s.bucket)
        .key(*key)
        .send()
        .await
        .unwrap();
    std::fs::write(&out, obj.body.collect().await.unwrap().into_bytes()).unwrap();
    let sql = sh(&format!(
        "age -d -i {} {} | xz -d",
        s.key.file.display(),
        out.display()
    ));
    assert!(sql.contains("PostgreSQL database dump complete"));
}

/// Issue 24: pg_dump 17 (Supabase runs 15 and 17) writes settings PostgreSQL 15 does not know;
/// drbot restores such a backup into 15, naming each setting it skipped, before approval and
/// after, and still fails on any other failing statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_pg_dumps_unknown_settings_are_skipped_and_named_and_nothing_else_is() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    // What pg_dump 17 writes after `SET statement_timeout = 0;` (and a second one, quoted).
    let newer = format!(
        "{} | sed 's/^SET statement_timeout = 0;$/SET statement_timeout = 0;\\nSET transaction_timeout = 0;\\nSELECT pg_catalog.set_config($$newer_unknown_knob$$, $$on$$, false);/' | xz | {}",
        s.dump_cmd(),
        s.age()
    );
    let key = s.upload("2026-11-25T09-00-00Z.sql.xz.age", &newer).await;
    let w = s.work.path().display().to_string();
    let sql = sh(&format!(
        "age -d -i {} < {w}/2026-11-25T09-00-00Z.sql.xz.age | xz -dc",
        s.key.file.display()
    ));
    let line = sql
        .lines()
        .position(|l| l == "SET transaction_timeout = 0;")
        .expect("the backup sets transaction_timeout")
        + 1;
    s.target.psql("CREATE TABLE precious (x int);");
    let asked = s
        .run(&format!("/db restore backup:{key} target:staging"))
        .await;
    let Outcome::AwaitingApproval(id) = &asked.outcome else {
        panic!("{asked:?}");
    };
    assert!(
        asked.text.contains(
            "will skip settings newer_unknown_knob, transaction_timeout (written by a newer pg_dump"
        ),
        "{}",
        asked.text
    );
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains(&format!(
            "Skipped settings staging's server does not know (written by a newer pg_dump; psql skips them too): transaction_timeout (line {line}), newer_unknown_knob (line {})",
            line + 1
        )),
        "{}",
        r.text
    );
    s.target.psql("DROP TABLE IF EXISTS precious;");
    assert_same_dump(&s.source.dump(), &s.target.dump(), "pg_dump 17 backup");

    // A known setting given a bad value still fails the restore, naming it; nothing changes.
    s.target.psql("CREATE TABLE precious (x int);");
    let before = s.target.dump();
    let bad = format!(
        "{} | sed 's/^SET statement_timeout = 0;$/SET transaction_timeout = 0;\\nSET statement_timeout = $$soon$$;/' | xz",
        s.dump_cmd()
    );
    let key = s.upload("bad-setting.sql.xz", &bad).await;
    let r = s
        .approved(&format!("/db restore backup:{key} target:staging"))
        .await;
    assert_refused_unchanged(&s, &r, "statement_timeout", &before, "bad setting");
}

/// The manifest names tables as pg_dump writes them, from the parse tree, and `/db verify`
/// counts their rows with those names as SQL: odd names must round-trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_table_names_are_counted_against_drbots_own_manifest() {
    let s = setup().await;
    s.source.psql(
        r#"CREATE TABLE "select" (a int); INSERT INTO "select" VALUES (1), (2);
CREATE TABLE "dollar$sign" (a int); INSERT INTO "dollar$sign" VALUES (1);
CREATE TABLE "with ""quote"" and space" (a int); INSERT INTO "with ""quote"" and space" VALUES (1), (2), (3);
CREATE TABLE "表名" (a int); INSERT INTO "表名" VALUES (1);
CREATE TABLE action (a int); INSERT INTO action VALUES (1);
CREATE TABLE "int" (a int); INSERT INTO "int" VALUES (1);"#,
    );
    let r = s.run("/db backup target:source").await;
    assert_outcome(&r, Outcome::Done);
    let r = s.approved("/db restore backup:latest target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("6 tables match the backup's manifest"),
        "{}",
        r.text
    );
    assert_same_dump(&s.source.dump(), &s.target.dump(), "odd names");
}

/// Issue 24: a backup shorter than its manifest records is shown broken in `/db backups` and
/// refused by the preflight before a byte of it is downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_shorter_than_its_manifest_is_shown_truncated_and_never_offered() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    let r = s.run("/db backup target:source").await;
    assert_outcome(&r, Outcome::Done);
    let key = s3()
        .list_objects_v2()
        .bucket(&s.bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| !k.ends_with(".manifest.json"))
        .unwrap()
        .to_string();
    let whole = crate::support::get(&s.bucket, &key).await;
    let cut = whole.len() / 3;
    put(&s.bucket, &key, whole[..cut].to_vec()).await;
    let r = s.run("/db backups").await;
    assert!(
        r.text.contains(&format!(
            "BROKEN — truncated: {cut} of the {} bytes its manifest records",
            whole.len()
        )),
        "{}",
        r.text
    );
    let before = s.target.dump();
    let r = s.run("/db restore backup:latest target:staging").await;
    assert_eq!(r.outcome.exit_code(), 1, "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "the backup is truncated: {cut} of the {} bytes its manifest records, so the upload or copy is incomplete; pick the previous backup",
            whole.len()
        )),
        "{}",
        r.text
    );
    assert!(r.text.contains("is void: nothing was run"), "{}", r.text);
    nothing_can_run(&s.engine);
    assert_same_dump(&before, &s.target.dump(), "manifest-truncated");
}

/// SPEC §6 and issue 24: a backup cut short is said to be cut short, at which byte and in
/// which layer, with what to do; damage in the middle is not mistaken for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_is_said_as_truncation_in_every_layer_and_damage_is_not() {
    let s = setup().await;
    // Big enough for several age chunks (64 KiB each) even compressed.
    s.source.psql(
        "CREATE TABLE noise AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS t \
         FROM generate_series(1, 20000) g;",
    );
    s.target.psql("CREATE TABLE precious (x int);");
    let before = s.target.dump();
    let dump = s.dump_cmd();
    let w = s.work.path().display().to_string();
    sh(&format!(
        "{dump} > {w}/full.sql && xz -c {w}/full.sql > {w}/full.xz && {} < {w}/full.xz > {w}/full.age && age -a -r {} < {w}/full.xz > {w}/full.asc && pg_dump -Fc '{}' > {w}/full.dump",
        s.age(),
        s.key.recipient,
        s.source.url()
    ));
    let len = |f: &str| std::fs::metadata(format!("{w}/{f}")).unwrap().len();
    let (age_len, xz_len) = (len("full.age"), len("full.xz"));
    assert!(age_len > 3 * 65536, "{age_len}");
    let cut = |f: &str, n: u64| format!("head -c {n} {w}/{f}");
    let cases = [
        (
            "age.sql.xz.age",
            cut("full.age", age_len / 2),
            format!("the backup ends early (truncated at byte {})", age_len / 2),
        ),
        (
            "age-header.sql.xz.age",
            cut("full.age", 40),
            "the backup ends early (truncated at byte 40)".to_string(),
        ),
        (
            "age-last-byte.sql.xz.age",
            cut("full.age", age_len - 1),
            format!("the backup ends early (truncated at byte {})", age_len - 1),
        ),
        (
            "xz-tiny.sql.xz",
            cut("full.xz", 10),
            "the backup ends early (truncated at byte 10)".to_string(),
        ),
        (
            "armored.sql.xz.age",
            cut("full.asc", len("full.asc") / 2),
            "the backup ends early".to_string(),
        ),
        (
            "xz-in-age.sql.xz.age",
            format!("{} | {}", cut("full.xz", xz_len / 2), s.age()),
            "the xz data inside its age layer stops after".to_string(),
        ),
        (
            "xz.sql.xz",
            cut("full.xz", xz_len / 2),
            format!("the backup ends early (truncated at byte {})", xz_len / 2),
        ),
        (
            "sql-in-xz.sql.xz",
            format!("head -c 2000 {w}/full.sql | xz"),
            "the backup ends early: its SQL is truncated".to_string(),
        ),
        (
            "custom.dump",
            cut("full.dump", len("full.dump") / 2),
            "ends early".to_string(),
        ),
    ];
    for (name, script, says) in cases {
        s.upload(name, &script).await;
        let r = s
            .approved(&format!("/db restore backup:{name} target:staging"))
            .await;
        assert_refused_unchanged(&s, &r, &says, &before, name);
        assert!(
            r.text.contains("pick the previous backup"),
            "{name}: {}",
            r.text
        );
    }
    // Damage in the middle of a long age file is damage, not truncation.
    s.upload(
        "damaged.sql.xz.age",
        &format!(
            "cp {w}/full.age {w}/damaged && printf 'XXXXXXXX' | dd of={w}/damaged bs=1 seek={} conv=notrunc 2>/dev/null && cat {w}/damaged",
            age_len / 3
        ),
    )
    .await;
    let r = s
        .approved("/db restore backup:damaged.sql.xz.age target:staging")
        .await;
    assert_eq!(r.outcome.exit_code(), 1, "{}", r.text);
    assert!(
        r.text
            .contains("age: decryption error: the backup is damaged (within the first"),
        "{}",
        r.text
    );
    assert!(r.text.contains("pick the previous backup"), "{}", r.text);
    assert!(!r.text.contains("ends early"), "{}", r.text);
    assert_same_dump(&before, &s.target.dump(), "damaged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_backups_fail_clearly_and_leave_the_target_alone() {
    let s = setup().await;
    s.source.psql(FIXTURE);
    s.target
        .psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (42);");
    let before = s.target.dump();
    let dump = s.dump_cmd();
    let good = s
        .upload("good.sql.xz.age", &format!("{dump} | xz | {}", s.age()))
        .await;
    let good_bytes = std::fs::read(s.work.path().join("good.sql.xz.age")).unwrap();
    let other = age_key();

    let truncated = good_bytes[..good_bytes.len() * 6 / 10].to_vec();
    put(&s.bucket, "db/truncated.sql.xz.age", truncated).await;
    s.upload(
        "wrongkey.sql.xz.age",
        &format!("{dump} | xz | age -r {}", other.recipient),
    )
    .await;
    put(
        &s.bucket,
        "db/notage.sql.xz.age",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
    )
    .await;
    s.upload(
        "corruptxz.sql.xz.age",
        &format!(
            "{dump} | xz > {w}/x.xz && printf 'XXXXXXXX' | dd of={w}/x.xz bs=1 seek=200 conv=notrunc 2>/dev/null && cat {w}/x.xz | {}",
            s.age(),
            w = s.work.path().display()
        ),
    )
    .await;
    s.upload(
        "sqlerror.sql.xz.age",
        &format!("{dump} | sed 's/^CREATE TABLE public.data (/SELECT no_such_function();\\nCREATE TABLE public.data (/' | xz | {}", s.age()),
    )
    .await;
    s.upload(
        "meta.sql.xz.age",
        &format!("{dump} | sed 's/^CREATE TABLE public.data (/\\\\! echo pwned\\nCREATE TABLE public.data (/' | xz | {}", s.age()),
    )
    .await;
    s.upload(
        "cutsql.sql.xz.age",
        &format!(
            "{dump} > {w}/full.sql && head -c 3000 {w}/full.sql | xz | {}",
            s.age(),
            w = s.work.path().display()
        ),
    )
    .await;

    let cases = [
        (
            "truncated.sql.xz.age",
            "the backup ends early (truncated at byte",
        ),
        (
            "wrongkey.sql.xz.age",
            "none of the configured identities can decrypt",
        ),
        (
            "notage.sql.xz.age",
            "not age, xz, pg_dump custom format or SQL",
        ),
        ("corruptxz.sql.xz.age", "xz"),
        ("sqlerror.sql.xz.age", "no_such_function"),
        (
            "meta.sql.xz.age",
            "meta-command `\\! echo pwned` is not supported",
        ),
        (
            "cutsql.sql.xz.age",
            "the backup ends early: its SQL is truncated",
        ),
        ("missing.sql.xz.age", "There is no backup"),
    ];
    for (name, says) in cases {
        let r = s
            .approved(&format!("/db restore backup:{name} target:staging"))
            .await;
        assert_eq!(r.outcome.exit_code(), 1, "{name}: {}", r.text);
        assert!(r.text.contains(says), "{name}: {}", r.text);
        if name != "missing.sql.xz.age" {
            assert!(
                r.text.contains("staging is as it was before"),
                "{name}: {}",
                r.text
            );
        }
        assert_same_dump(&before, &s.target.dump(), name);
    }
    let r = s
        .approved("/db restore backup:sqlerror.sql.xz.age target:staging")
        .await;
    assert!(
        r.text.contains("line ") && r.text.contains("SELECT no_such_function()"),
        "{}",
        r.text
    );

    // Unreachable bucket, unreachable target.
    let dir = tempfile::tempdir().unwrap();
    let broken = engine_with(
        dir.path(),
        &config_text(&s.bucket, &s.key),
        env_map(
            "http://127.0.0.1:9",
            &s.source.url(),
            "postgres://postgres@127.0.0.1:9/x?sslmode=disable",
        ),
    );
    let r = approved_with(
        &broken,
        &format!("/db restore backup:{good} target:staging"),
        &drbot_commands::progress::NoProgress,
    )
    .await;
    assert_eq!(r.outcome.exit_code(), 1, "{}", r.text);
    assert!(r.text.contains("cannot reach"), "{}", r.text);
    let dir2 = tempfile::tempdir().unwrap();
    let no_target = engine_with(
        dir2.path(),
        &config_text(&s.bucket, &s.key),
        env_map(
            moto(),
            &s.source.url(),
            "postgres://postgres:hunter2@127.0.0.1:9/x?sslmode=disable",
        ),
    );
    let r = approved_with(
        &no_target,
        &format!("/db restore backup:{good} target:staging"),
        &drbot_commands::progress::NoProgress,
    )
    .await;
    assert_eq!(r.outcome.exit_code(), 1, "{}", r.text);
    assert!(
        r.text.contains("Cannot connect to target staging"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("hunter2"));
    assert_same_dump(&before, &s.target.dump(), "unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_listed_newest_first_against_the_rpo() {
    let s = setup().await;
    for name in [
        "2026-11-20T10-00-00Z.sql.xz.age",
        "2026-11-24T10-00-00Z.sql.xz.age",
        "2026-11-22T10-00-00Z.sql.xz.age",
    ] {
        put(&s.bucket, &format!("db/{name}"), b"x".to_vec()).await;
    }
    put(
        &s.bucket,
        "db/2026-11-24T10-00-00Z.sql.xz.age.manifest.json",
        b"{}".to_vec(),
    )
    .await;
    let r = s.run("/db backups limit:2").await;
    assert_outcome(&r, Outcome::Done);
    let lines: Vec<&str> = r.text.lines().collect();
    assert!(lines[0].contains("past the 30m RPO"), "{}", r.text);
    assert!(lines[1].contains("2026-11-24T10-00-00Z"), "{}", r.text);
    assert!(lines[2].contains("2026-11-22T10-00-00Z"), "{}", r.text);
    assert!(!r.text.contains("2026-11-20T10"), "{}", r.text);
    // Manifests are not backups; a backup without a readable manifest is not verified.
    assert!(!r.text.contains(".manifest.json"), "{}", r.text);
    assert!(
        lines[1].contains("not verified (no readable manifest)"),
        "{}",
        r.text
    );

    let empty = bucket("drbot-empty-").await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir.path(),
        &config_text(&empty, &s.key),
        env_map(moto(), &s.source.url(), &s.target.url()),
    );
    let r = e.run(&commander(), "/db backups").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.text.contains("No backups"), "{}", r.text);
    let r = e
        .run(&commander(), "/db restore backup:latest target:staging")
        .await;
    assert!(r.text.contains("no latest one"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_restore_per_target_at_a_time() {
    let s = setup().await;
    let _held = s
        .engine
        .restores()
        .take("staging", "bob restoring db/x since 10:00 UTC".into())
        .expect("free");
    put(&s.bucket, "db/a.sql", b"SELECT 1;\n".to_vec()).await;
    let r = s.approved("/db restore backup:a.sql target:staging").await;
    assert_outcome(&r, Outcome::Refused);
    assert!(
        r.text.contains("already running (bob restoring db/x"),
        "{}",
        r.text
    );
    // Another target is free.
    let r = s.approved("/db restore backup:a.sql target:source").await;
    assert_outcome(&r, Outcome::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_verify_report_without_secrets() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://postgres:hunter2@127.0.0.1:5432/{}?sslmode=prefer",
        s.target.name
    );
    let e = engine_with(
        dir.path(),
        &config_text(&s.bucket, &s.key),
        env_map(moto(), &url, &url),
    );
    e.run(
        &commander(),
        "/incident declare scenario:database severity:sev2 title:db",
    )
    .await;
    let r = e.run(&commander(), "/db check target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("Target staging is up: PostgreSQL 1"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("postgres://postgres:***@127.0.0.1"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("hunter2"));
    // A check of staging is on the timeline but does not assess production.
    let incident = e.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(
        incident.step("db-assess").unwrap().state,
        StepState::Pending
    );

    s.target
        .psql("CREATE TABLE t (id serial PRIMARY KEY); INSERT INTO t (id) VALUES (1), (2), (10);");
    let r = e.run(&commander(), "/db verify target:staging").await;
    assert_outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("Verify staging: FAIL") && r.text.contains("t_id_seq would give 1"),
        "{}",
        r.text
    );
    s.target.psql("SELECT setval('t_id_seq', 10);");
    let r = e.run(&commander(), "/db verify target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(r.text.contains("PASS"), "{}", r.text);
    let all: String = e
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .iter()
        .map(|x| x.text.clone())
        .collect();
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("/db verify staging"), "{all}");

    let r = e.run(&commander(), "/db check target:nowhere").await;
    assert_outcome(&r, Outcome::Usage);
    assert!(r.text.contains("Targets: source, staging"), "{}", r.text);

    // A URL without a password is shown as it is: no stray marker where the URL was.
    let bare = format!("postgres://postgres@127.0.0.1:5432/{}", s.target.name);
    let dir2 = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir2.path(),
        &config_text(&s.bucket, &s.key),
        env_map(moto(), &bare, &bare),
    );
    let r = e.run(&commander(), "/db check target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(r.text.contains(&bare), "{}", r.text);
    assert!(!r.text.contains("***"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_inside_an_incident_marks_its_step() {
    let s = setup_staging_is_production().await;
    s.source
        .psql("CREATE TABLE a (x int); INSERT INTO a SELECT generate_series(1, 1000);");
    s.backup_and_declare().await;
    let r = s.approved("/db restore backup:latest target:staging").await;
    assert_outcome(&r, Outcome::Done);
    let incident = s.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(incident.step("db-restore").unwrap().state, StepState::Done);
    let timeline: Vec<String> = s
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    let joined = timeline.join("\n");
    assert!(
        joined.contains("Restore of db/2026-11-25T09-00-00Z.sql.xz.age"),
        "{joined}"
    );
    assert!(
        joined.contains("Step 3. Restore database started"),
        "{joined}"
    );
    assert!(joined.contains("Step 3. Restore database done"), "{joined}");
    // The report measures the RPO from the restored backup's time to the incident's start.
    let r = s.run("/incident resolve").await;
    assert_outcome(&r, Outcome::Done);
    let report = &r.attachments[0].text;
    assert!(
        report.contains("| RPO (database) | 30m |") && report.contains("| missed by"),
        "{report}"
    );
    // The RPO row says where the restore came from.
    let rpo_row = crate::support::report_row(report, "RPO (database)");
    assert!(
        rpo_row
            .contains("(restored db/2026-11-25T09-00-00Z.sql.xz.age, taken 2026-11-25 09:00 UTC)"),
        "{rpo_row}"
    );
    assert!(
        report.contains(
            "Restored db/2026-11-25T09-00-00Z.sql.xz.age (taken 2026-11-25 09:00 UTC) into staging"
        ),
        "{report}"
    );
}

/// Steps are bound to the production target: a restore into staging is on the timeline but
/// leaves "Restore database" (and the report's RPO) to a restore into production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_staging_leaves_the_production_restore_step_pending() {
    let s = setup().await;
    s.source
        .psql("CREATE TABLE a (x int); INSERT INTO a VALUES (1);");
    s.backup_and_declare().await;
    let r = s.approved("/db restore backup:latest target:staging").await;
    assert_outcome(&r, Outcome::Done);
    assert!(s.target.dump().contains("CREATE TABLE public.a"));
    let r = s.run("/db verify target:staging").await;
    assert_outcome(&r, Outcome::Done);
    let incident = s.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    for step in ["db-restore", "db-verify", "post-integrity"] {
        assert_eq!(
            incident.step(step).unwrap().state,
            StepState::Pending,
            "{step}"
        );
    }
    let joined = s.timeline(IncidentId(1));
    assert!(
        joined.contains("Restore of db/2026-11-25T09-00-00Z.sql.xz.age"),
        "{joined}"
    );
    assert!(!joined.contains("Step 3. Restore database"), "{joined}");
    let r = s.run("/incident resolve").await;
    let report = &r.attachments[0].text;
    assert!(
        report.contains("| RPO (database) | 30m | no restore into production in this incident |"),
        "{report}"
    );
}

#[test]
fn exec_lists_backups_from_a_separate_process() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bucket_name, key) = rt.block_on(async {
        let b = bucket("drbot-exec-").await;
        put(&b, "db/2026-11-25T08-00-00Z.sql.xz.age", vec![0u8; 2048]).await;
        (b, age_key())
    });
    let d = Drbot::new(&config_text(&bucket_name, &key));
    let out = d
        .command()
        .args(["exec", "/db backups"])
        .env("R2_ENDPOINT", moto())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("db/2026-11-25T08-00-00Z.sql.xz.age") && stdout.contains("2.0 KiB"),
        "{stdout}"
    );
    let out = d
        .command()
        .args(["exec", "/db restore backup:latest target:staging"])
        .env_remove("R2_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("STAGING_URL is not set"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpo_watch_posts_once_when_breached_and_once_when_recovered() {
    use drbot_commands::watch::PostKind;
    let s = setup().await;
    let kinds =
        |p: &[drbot_commands::watch::Post]| p.iter().map(|p| p.kind.clone()).collect::<Vec<_>>();
    put(
        &s.bucket,
        "db/2026-01-01T00-00-00Z.sql.xz.age",
        b"x".to_vec(),
    )
    .await;
    put(
        &s.bucket,
        "db/2026-01-01T00-00-00Z.sql.xz.age.manifest.json",
        verified_manifest("db/2026-01-01T00-00-00Z.sql.xz.age", 1),
    )
    .await;
    let posts = s.engine.tick().await.unwrap();
    assert_eq!(kinds(&posts), [PostKind::RpoBreached]);
    assert!(
        posts[0].text.contains("past the 30m target"),
        "{}",
        posts[0].text
    );
    assert!(s.engine.tick().await.unwrap().is_empty());
    // A fresh backup nobody read back does not count: the RPO is met by verified ones only.
    let fresh = drbot_commands::scenarios::database::backup_name("db/", chrono::Utc::now());
    put(&s.bucket, &fresh, b"x".to_vec()).await;
    assert!(s.engine.tick().await.unwrap().is_empty());
    put(
        &s.bucket,
        &format!("{fresh}.manifest.json"),
        verified_manifest(&fresh, 1),
    )
    .await;
    let posts = s.engine.tick().await.unwrap();
    assert_eq!(kinds(&posts), [PostKind::RpoRecovered]);
    assert!(s.engine.tick().await.unwrap().is_empty());
    // Outside any incident, the watch writes to the audit log.
    let audit = s.engine.store().audit().unwrap();
    assert!(audit.iter().any(|e| e.text.starts_with("RPO breached")));
    assert!(audit.iter().any(|e| e.text.starts_with("RPO recovered")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_offers_the_newest_backups_and_pending_requests() {
    let s = setup().await;
    for name in [
        "2026-11-20T10-00-00Z.sql.xz.age",
        "2026-11-24T10-00-00Z.sql.xz.age",
    ] {
        // Real SQL: the restore request reads the backup whole before it is offered.
        put(&s.bucket, &format!("db/{name}"), b"SELECT 1;\n".repeat(410)).await;
    }
    let backups = s.engine.complete(&commander(), "backup", "").await;
    let values: Vec<&str> = backups.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "latest",
            "db/2026-11-24T10-00-00Z.sql.xz.age",
            "db/2026-11-20T10-00-00Z.sql.xz.age"
        ]
    );
    assert!(
        backups[1]
            .name
            .starts_with("2026-11-24T10-00-00Z.sql.xz.age (4.0 KiB, "),
        "{}",
        backups[1].name
    );
    let r = s.run("/db restore backup:latest target:staging").await;
    let Outcome::AwaitingApproval(id) = r.outcome else {
        panic!("{}", r.text)
    };
    let requests = s.engine.complete(&approver(), "request", "").await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].value, id);
    assert!(
        requests[0].name.contains("asked by alice"),
        "{}",
        requests[0].name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_the_database_the_bucket_and_the_age_key() {
    let s = setup().await;
    put(
        &s.bucket,
        "db/2026-11-25T08-00-00Z.sql.xz.age",
        b"x".to_vec(),
    )
    .await;
    let other = age_key();
    let run = |config: &str, target_url: &str| {
        let d = Drbot::new(config);
        let out = d
            .command()
            .arg("check")
            .envs(env_map(moto(), &s.source.url(), target_url))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&config_text(&s.bucket, &s.key), &s.target.url());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("staging: answers: PostgreSQL 1"), "{out}");
    assert!(
        out.contains("answers: 1 backups under db/, newest db/2026-11-25T08-00-00Z.sql.xz.age"),
        "{out}"
    );
    assert!(out.contains("new backups can be restored"), "{out}");
    // A dead target and recipients that do not match the identity are problems.
    let mismatched = config_text(&s.bucket, &s.key).replace(&s.key.recipient, &other.recipient);
    let (code, out) = run(
        &mismatched,
        "postgres://postgres:hunter2@127.0.0.1:9/x?sslmode=disable",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Cannot connect to target staging"), "{out}");
    assert!(out.contains("is not among age_recipients"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

/// A manifest for `key` (`size` bytes) that says it was read back and verified.
pub(crate) fn verified_manifest(key: &str, size: u64) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339();
    serde_json::to_vec(&serde_json::json!({
        "version": 1, "key": key, "size": size, "sha256": "", "sql_bytes": 0,
        "pg_dump_version": "pg_dump (PostgreSQL) 15", "started_at": now, "finished_at": now,
        "xz_level": 6, "tables": {}, "verified_at": now
    }))
    .expect("json")
}
