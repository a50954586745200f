//! Fire drills for real: a database drill restores the latest backup (moto) into a scratch
//! database on the real PostgreSQL and drops it; a bad backup fails the drill at its step with
//! the scratch database gone; a drill server that is a configured target is refused; a drill
//! killed mid-restore is cleaned up at the next start; the schedule runs a due drill once.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use drbot_commands::{Clock, Config, Engine, ManualClock, Outcome, Reply, SystemClock};
use drbot_state::{DrillStatus, ScratchState, Store};

use crate::database::{FIXTURE, commander, config_text, env_map};
use crate::support::{AgeKey, Drbot, PG, TestDb, age_key, bucket, moto, put, sh};

const DRILL_PASSWORD: &str = "drill-pass-7Hq2";

struct D {
    _dir: tempfile::TempDir,
    engine: Engine,
    bucket: String,
    key: AgeKey,
    source: TestDb,
    staging: TestDb,
    work: tempfile::TempDir,
}

fn drill_url() -> String {
    // Trust auth here ignores the password; it is in the URL to prove it is never shown.
    format!("postgres://postgres:{DRILL_PASSWORD}@127.0.0.1:5432/postgres?sslmode=disable")
}

/// What the application runs at start, in these tests.
const CHECKS: &str = r#"["SELECT count(*) FROM data", "SELECT count(*) FROM \"MixedCase\""]"#;

fn drills_config(bucket: &str, key: &AgeKey, extra: &str) -> String {
    let checks = if extra.contains("app_checks") {
        String::new()
    } else {
        format!("app_checks = {CHECKS}\n")
    };
    format!(
        "{}\n[drills]\nscratch_url_env = \"DRILL_URL\"\n{checks}{extra}",
        config_text(bucket, key)
    )
}

async fn setup_with(
    extra: &str,
    clock: Arc<dyn Clock>,
    url: impl FnOnce(&TestDb, &TestDb) -> String,
) -> D {
    let key = age_key();
    let bucket = bucket("drbot-drill-").await;
    let source = TestDb::new("drbot_dsrc_");
    let staging = TestDb::new("drbot_dstg_");
    source.psql(FIXTURE);
    let dir = tempfile::tempdir().unwrap();
    let mut env = env_map(moto(), &source.url(), &staging.url());
    env.insert("DRILL_URL".to_string(), url(&source, &staging));
    let config = Config::from_toml(&drills_config(&bucket, &key, extra), Path::new("t.toml"))
        .expect("config");
    let engine = Engine::new(Arc::new(config), Store::open(dir.path()).unwrap(), clock)
        .with_env(Arc::new(move |k: &str| env.get(k).cloned()));
    D {
        _dir: dir,
        engine,
        bucket,
        key,
        source,
        staging,
        work: tempfile::tempdir().unwrap(),
    }
}

async fn setup(extra: &str) -> D {
    setup_with(extra, Arc::new(SystemClock), |_, _| drill_url()).await
}

/// A backup name taken `ago` before now.
fn name_at(at: DateTime<Utc>) -> String {
    format!("{}.sql.xz.age", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

impl D {
    async fn upload(&self, name: &str, script: &str) -> String {
        let out = self.work.path().join(name);
        sh(&format!("{script} > {}", out.display()));
        let key = format!("db/{name}");
        put(&self.bucket, &key, std::fs::read(&out).unwrap()).await;
        key
    }

    fn good_backup_script(&self) -> String {
        format!(
            "pg_dump --clean --if-exists '{}' | xz | age -r {}",
            self.source.url(),
            self.key.recipient
        )
    }

    async fn run(&self, line: &str) -> Reply {
        let r = self.engine.run(&commander(), line).await;
        let all = r.full_text();
        assert!(!all.contains(DRILL_PASSWORD), "{all}");
        r
    }

    /// Everything the store recorded (audit log, drills' reports and steps).
    fn recorded(&self) -> String {
        let mut text = crate::support::recorded_text(self.engine.store());
        for d in self.engine.store().drills().unwrap() {
            text.push_str(&format!("{d:?}"));
        }
        text
    }
}

/// The scratch database a drill made: a name it found taken is recorded as not created (and
/// never dropped), so the one it made is the other.
fn made(drill: &drbot_state::Drill) -> &drbot_state::Scratch {
    let made: Vec<_> = drill
        .scratch
        .iter()
        .filter(|s| s.state != ScratchState::NotCreated)
        .collect();
    assert_eq!(made.len(), 1, "{drill:?}");
    made[0]
}

fn database_exists(name: &str) -> bool {
    sh(&format!(
        "psql -At -X '{PG}/postgres' -c \"SELECT count(*) FROM pg_database WHERE datname = '{name}'\""
    ))
    .trim()
        == "1"
}

/// The comment on database `name`, if it exists ("" for none).
fn comment_on(name: &str) -> Option<String> {
    let out = sh(&format!(
        "psql -At -X '{PG}/postgres' -c \"SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = '{name}'\""
    ));
    let line = out.trim_end_matches('\n');
    (!out.is_empty()).then(|| line.to_string())
}

/// Whether the scratch database `drill` made is still there: its name carrying the drill's mark.
/// (By name alone, another test's drill that takes the same name just after would count.)
fn still_there(engine: &Engine, drill: &drbot_state::Drill) -> bool {
    let mark = drbot_commands::scenarios::drill::database::mark(engine, drill.id);
    comment_on(&made(drill).name).is_some_and(|c| c == mark)
}

fn drop_database(name: &str) {
    sh(&format!(
        "psql -q -X '{PG}/postgres' -c 'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)'"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_drill_restores_the_latest_backup_into_scratch_measures_and_drops_it() {
    let d = setup("").await;
    let engine = &d.engine;
    let taken = Utc::now() - chrono::Duration::hours(2);
    d.upload(&name_at(taken), &d.good_backup_script()).await;
    let before = d.source.dump();
    let staging_before = d.staging.dump();

    let r = engine.run(&commander(), "/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(!r.full_text().contains(DRILL_PASSWORD), "{}", r.full_text());
    assert!(
        r.text.contains("DRILL-1: database drill passed"),
        "{}",
        r.text
    );
    // A passed drill still says plainly that the backup was older than the RPO allows.
    assert!(r.text.contains("(target 30m: MISSED by 1h3"), "{}", r.text);
    let drill = engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Passed, "{drill:?}");
    assert_eq!(drill.steps.len(), 4, "{drill:?}");
    assert!(drill.steps.iter().all(|s| s.ok == Some(true)), "{drill:?}");
    // Measured: restored usable within the RTO, and the backup's age (about 2 h) as the RPO.
    let rto = drill.rto_ms.expect("RTO measured");
    assert!(rto < 120 * 60 * 1000, "{rto}");
    let rpo = drill.rpo_secs.expect("RPO measured");
    assert!((2 * 3600..2 * 3600 + 600).contains(&rpo), "{rpo}");
    // The report has both objectives with numbers, the application queries with results.
    let report = &drill.report;
    assert!(report.contains("| RTO (database) | 2h00m |"), "{report}");
    assert!(report.contains("| RPO (database) | 30m | 2h0"), "{report}");
    assert!(report.contains("missed by 1h3"), "{report}");
    assert!(
        report.contains("| `SELECT count(*) FROM data` | 3 |"),
        "{report}"
    );
    assert!(
        report.contains("| `SELECT count(*) FROM \"MixedCase\"` | 7 |"),
        "{report}"
    );
    assert!(r.attachments.iter().any(|a| a.name == "DRILL-1-report.md"));
    assert!(r.attachments.iter().any(|a| a.name == "DRILL-1-steps.png"));
    let card = r.card.as_ref().expect("card");
    assert!(
        card.fields.iter().any(|(n, _)| n == "RPO (database)"),
        "{card:?}"
    );
    // The scratch database is gone; production and staging are untouched.
    let scratch = made(&drill);
    assert_eq!(scratch.state, ScratchState::Dropped);
    // drbot_drill_1, or its tagged name when another test's drill 1 holds that.
    let name = &scratch.name;
    assert!(
        name == "drbot_drill_1" || name.starts_with("drbot_drill_1_"),
        "{name}"
    );
    assert!(!still_there(engine, &drill));
    crate::support::assert_same_dump(&before, &d.source.dump(), "source after a drill");
    crate::support::assert_same_dump(&staging_before, &d.staging.dump(), "staging after a drill");
    // History and report answer from the store, with the trend chart.
    let h = engine.run(&commander(), "/drill history").await;
    assert_eq!(h.outcome, Outcome::Done, "{}", h.text);
    assert!(h.text.contains("DRILL-1 database passed"), "{}", h.text);
    assert!(h.attachments.iter().any(|a| a.name == "drill-history.png"));
    let again = engine.run(&commander(), "/drill report drill:1").await;
    assert_eq!(again.outcome, Outcome::Done, "{}", again.text);
    assert!(
        again
            .attachments
            .iter()
            .any(|a| a.text.contains("| RTO (database)"))
    );
    let none = engine
        .run(&commander(), "/drill report drill:DRILL-9")
        .await;
    assert_eq!(none.outcome, Outcome::Usage, "{}", none.text);
    assert!(
        none.text.contains("DRILL-9 does not exist"),
        "{}",
        none.text
    );
    // One drill at a time: a second one started meanwhile is refused, naming the first.
    let alice = commander();
    let (a, b) = tokio::join!(
        engine.run(&alice, "/drill start kind:database"),
        engine.run(&alice, "/drill start kind:database")
    );
    let (ran, refused) = if a.outcome == Outcome::Refused {
        (b, a)
    } else {
        (a, b)
    };
    assert_eq!(ran.outcome, Outcome::Done, "{}", ran.text);
    assert_eq!(refused.outcome, Outcome::Refused, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("A drill is already running (database drill by alice)"),
        "{}",
        refused.text
    );
    assert_eq!(engine.store().drills().unwrap().len(), 2);
    // keep:true leaves it, and says how to drop it.
    let kept = engine
        .run(&commander(), "/drill start kind:database keep:true")
        .await;
    assert_eq!(kept.outcome, Outcome::Done, "{}", kept.text);
    let drill = engine.store().drills().unwrap().remove(2);
    let name = made(&drill).name.clone();
    assert_eq!(made(&drill).state, ScratchState::Kept);
    assert!(database_exists(&name));
    // It carries the drill's mark: the drill and this install's tag.
    let dir = std::fs::canonicalize(d._dir.path()).unwrap();
    let tag = sh(&format!("printf %s '{}' | sha256sum", dir.display()));
    assert_eq!(
        comment_on(&name).as_deref(),
        Some(
            format!(
                "drbot DRILL-3 {}: a drill's scratch database, dropped when the drill ends",
                &tag[..8]
            )
            .as_str()
        )
    );
    assert!(still_there(engine, &drill));
    assert!(
        kept.text.contains(&format!("DROP DATABASE {name}")),
        "{}",
        kept.text
    );
    drop_database(&name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_latest_backup_fails_the_drill_at_the_restore_with_scratch_dropped() {
    let d = setup("").await;
    let older = Utc::now() - chrono::Duration::hours(5);
    d.upload(&name_at(older), &d.good_backup_script()).await;
    // The newest is cut in half: the drill must take it (it is the latest) and fail there.
    let newest = Utc::now() - chrono::Duration::hours(1);
    let full = d.work.path().join("full");
    sh(&format!("{} > {}", d.good_backup_script(), full.display()));
    let len = std::fs::metadata(&full).unwrap().len();
    let key = d
        .upload(
            &name_at(newest),
            &format!("head -c {} {}", len / 2, full.display()),
        )
        .await;
    let before = d.source.dump();
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text
            .contains("FAILED at step 2 (Restore the latest backup)"),
        "{}",
        r.text
    );
    assert!(r.text.contains(&key), "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "the backup ends early (truncated at byte {})",
            len / 2
        )),
        "{}",
        r.text
    );
    let drill = d.engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Failed);
    assert_eq!(drill.steps[1].ok, Some(false), "{drill:?}");
    assert!(drill.rto_ms.is_none());
    assert!(drill.report.contains("not reached"), "{}", drill.report);
    assert_eq!(made(&drill).state, ScratchState::Dropped);
    assert!(!still_there(&d.engine, &drill));
    crate::support::assert_same_dump(&before, &d.source.dump(), "source after a failed drill");
    assert!(!d.recorded().contains(DRILL_PASSWORD));
    // An application query that fails fails the drill at step 4, and still drops the scratch.
    let d = setup(
        "app_checks = [\"SELECT note FROM nope\", \"SELECT pg_sleep(30)\"]\napp_check_timeout_secs = 1",
    )
    .await;
    d.upload(
        &name_at(Utc::now() - chrono::Duration::minutes(5)),
        &d.good_backup_script(),
    )
    .await;
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("at step 4 (Test application connectivity)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("nope"), "{}", r.text);
    // A query that never ends is ended by the server, and said so.
    assert!(
        r.text
            .contains("SELECT pg_sleep(30) took longer than [drills] app_check_timeout_secs (1 s)"),
        "{}",
        r.text
    );
    let drill = d.engine.store().drills().unwrap().remove(0);
    assert!(!still_there(&d.engine, &drill));
    // A database drbot did not create is never dropped. Drill 50 (no other test gets that far)
    // finds both of its names taken.
    while d.engine.store().drills().unwrap().len() < 49 {
        crate::support::stage_drill(
            d.engine.store(),
            "database",
            DrillStatus::Failed,
            Vec::new(),
        );
    }
    let dir = std::fs::canonicalize(d._dir.path()).unwrap();
    let tag = sh(&format!("printf %s '{}' | sha256sum", dir.display()));
    let theirs = [
        "drbot_drill_50".to_string(),
        format!("drbot_drill_50_{}", &tag[..8]),
    ];
    for name in &theirs {
        sh(&format!(
            "psql -q -X '{PG}/postgres' -c 'CREATE DATABASE \"{name}\"'"
        ));
    }
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text
            .contains("DRILL-50: database drill FAILED at step 1 (Create a scratch database)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("already exist"), "{}", r.text);
    assert!(r.text.contains("leaves them alone"), "{}", r.text);
    let drill = d.engine.store().drills().unwrap().remove(49);
    assert!(drill.scratch.is_empty(), "{drill:?}");
    assert!(
        drbot_commands::scenarios::drill::cleanup(&d.engine, true)
            .await
            .is_empty()
    );
    for name in &theirs {
        assert!(
            database_exists(name),
            "{name}, which drbot did not create, was dropped"
        );
        drop_database(name);
    }
}

/// A drill drbot stopped in recorded a name just before its CREATE DATABASE. At the next start
/// only a database carrying that drill's mark is dropped: another drbot's drill that won the
/// name, or anyone's database of that name, is left alone and said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_drill_drops_only_databases_carrying_its_mark() {
    let d = setup("").await;
    let unique = TestDb::new("drbot_mark_");
    let names = [1, 2, 3].map(|i| format!("{}_{i}", unique.name));
    let id = drbot_state::DrillId(1);
    let ours = drbot_commands::scenarios::drill::database::mark(&d.engine, id);
    let comments = [
        Some(ours.clone()),
        Some(
            "drbot DRILL-1 0badc0de: a drill's scratch database, dropped when the drill ends"
                .to_string(),
        ),
        None,
    ];
    for (name, comment) in names.iter().zip(&comments) {
        let mut args = vec![format!("CREATE DATABASE \"{name}\"")];
        if let Some(c) = comment {
            let c = c.replace('\'', "''");
            args.push(format!("COMMENT ON DATABASE \"{name}\" IS '{c}'"));
        }
        for sql in args {
            let out = Command::new("psql")
                .args([
                    "-q",
                    "-X",
                    "-v",
                    "ON_ERROR_STOP=1",
                    &format!("{PG}/postgres"),
                    "-c",
                    &sql,
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{sql}: {out:?}");
        }
    }
    let scratch = names
        .iter()
        .map(|n| drbot_state::Scratch {
            kind: "database".into(),
            name: n.clone(),
            state: ScratchState::Planned,
        })
        .collect();
    crate::support::stage_drill(d.engine.store(), "database", DrillStatus::Running, scratch);
    let lines = drbot_commands::scenarios::drill::recover(&d.engine).await;
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("dropped database {}", names[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "left database {} alone: it is marked as drbot DRILL-1 0badc0de's",
            names[1]
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "left database {} alone: it carries no drbot drill's mark",
            names[2]
        )),
        "{text}"
    );
    assert_eq!(comment_on(&names[0]), None, "{text}");
    assert_eq!(comment_on(&names[1]).as_deref(), comments[1].as_deref());
    assert_eq!(comment_on(&names[2]).as_deref(), Some(""));
    // Recorded as not this drill's, so no later cleanup tries them again.
    let drill = d.engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Interrupted);
    let states: Vec<_> = drill.scratch.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            ScratchState::Dropped,
            ScratchState::NotCreated,
            ScratchState::NotCreated
        ]
    );
    assert!(
        drbot_commands::scenarios::drill::cleanup(&d.engine, true)
            .await
            .is_empty()
    );
    for name in &names[1..] {
        drop_database(name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_server_that_is_a_configured_target_is_refused_and_nothing_is_created() {
    let d = setup_with("", Arc::new(SystemClock), |_, staging| {
        // The same database as the staging target, spelled another way.
        staging.url().replace("127.0.0.1", "localhost")
    })
    .await;
    d.upload(
        &name_at(Utc::now() - chrono::Duration::hours(1)),
        &d.good_backup_script(),
    )
    .await;
    let before = d.staging.dump();
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("configured target staging."), "{}", r.text);
    assert!(r.text.contains("Nothing was changed"), "{}", r.text);
    assert!(d.engine.store().drills().unwrap().is_empty());
    crate::support::assert_same_dump(&before, &d.staging.dump(), "staging");
    // drbot check says the same before anyone tries.
    let env = env_map(moto(), &d.source.url(), &d.staging.url());
    let same = d.staging.url().replace("127.0.0.1", "localhost");
    let lines = drbot_commands::check::probe(d.engine.config(), &|k: &str| {
        if k == "DRILL_URL" {
            Some(same.clone())
        } else {
            env.get(k).cloned()
        }
    })
    .await;
    let drills: Vec<String> = lines
        .iter()
        .filter(|l| l.system == "drills")
        .map(|l| l.to_string())
        .collect();
    assert_eq!(drills.len(), 1, "{drills:?}");
    assert!(
        drills[0].contains("PROBLEM") && drills[0].contains("configured target staging"),
        "{drills:?}"
    );
    let lines = drbot_commands::check::probe(d.engine.config(), &|k: &str| {
        if k == "DRILL_URL" {
            Some(drill_url())
        } else {
            env.get(k).cloned()
        }
    })
    .await;
    let good: Vec<String> = lines
        .iter()
        .filter(|l| l.system == "drills")
        .map(|l| l.to_string())
        .collect();
    assert!(
        good[0].contains("may CREATE DATABASE") && !good[0].contains(DRILL_PASSWORD),
        "{good:?}"
    );
    // Unset: refused, naming the variable.
    let unset = setup_with("", Arc::new(SystemClock), |_, _| String::new()).await;
    let r = unset.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("set DRILL_URL"), "{}", r.text);
    assert!(unset.engine.store().drills().unwrap().is_empty());
    // A storage drill without a media bucket: refused the same way.
    let r = unset.run("/drill start kind:storage").await;
    assert!(r.text.contains("media_bucket"), "{}", r.text);
    assert!(unset.engine.store().drills().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_runs_a_due_drill_once_and_not_again_until_it_is_due() {
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let d = setup_with(
        "schedule = { database = \"monthly\" }",
        clock.clone(),
        |_, _| drill_url(),
    )
    .await;
    // No backup yet: the due drill runs, fails, and alerts; it is not re-run every round.
    let posts = d.engine.scheduled().await.unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].kind, drbot_commands::watch::PostKind::DrillFailed);
    assert!(posts[0].text.contains("OVERDUE"), "{}", posts[0].text);
    assert!(posts[0].text.contains("no backups"), "{}", posts[0].text);
    assert!(d.engine.scheduled().await.unwrap().is_empty());
    assert_eq!(d.engine.store().drills().unwrap().len(), 1);
    // A backup appears; 29 days on, still not due.
    d.upload(&name_at(t0), &d.good_backup_script()).await;
    clock.advance(chrono::Duration::days(29));
    assert!(d.engine.scheduled().await.unwrap().is_empty());
    assert_eq!(d.engine.store().drills().unwrap().len(), 1);
    // Due at 30 days: runs once, passes, and is scheduled.
    clock.advance(chrono::Duration::days(1));
    let posts = d.engine.scheduled().await.unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        posts[0].kind,
        drbot_commands::watch::PostKind::DrillPassed,
        "{}",
        posts[0].text
    );
    assert!(posts[0].text.contains("DRILL-2"), "{}", posts[0].text);
    let drills = d.engine.store().drills().unwrap();
    assert_eq!(drills.len(), 2);
    assert!(drills[1].scheduled);
    assert_eq!(
        drills[1].status,
        DrillStatus::Passed,
        "{}",
        drills[1].report
    );
    assert!(d.engine.scheduled().await.unwrap().is_empty());
    clock.advance(chrono::Duration::days(29));
    assert!(d.engine.scheduled().await.unwrap().is_empty());
    assert_eq!(d.engine.store().drills().unwrap().len(), 2);
    assert!(!d.recorded().contains(DRILL_PASSWORD));
}

#[test]
fn a_drill_killed_mid_restore_is_dropped_and_marked_interrupted_at_the_next_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt.block_on(setup(""));
    // Big enough that the restore runs for a while.
    d.source.psql(
        "CREATE TABLE big (id int PRIMARY KEY, t text); \
         INSERT INTO big SELECT g, md5(g::text) || repeat('x', 200) FROM generate_series(1, 400000) g;",
    );
    rt.block_on(d.upload(
        &name_at(Utc::now() - chrono::Duration::minutes(10)),
        &d.good_backup_script(),
    ));
    let install = Drbot::new(&drills_config(&d.bucket, &d.key, ""));
    let exec = |line: &str| -> Command {
        let mut c = install.command();
        c.args(["exec", line])
            .env("R2_ENDPOINT", moto())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SOURCE_URL", d.source.url())
            .env("STAGING_URL", d.staging.url())
            .env("DRILL_URL", drill_url());
        c
    };
    let mut child = exec("/drill start kind:database")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The drill's sessions carry its id and this install's tag (other tests' drills run beside
    // this one on the same server).
    std::fs::create_dir_all(install.data_dir()).unwrap();
    let data = std::fs::canonicalize(install.data_dir()).unwrap();
    let tag = sh(&format!("printf %s '{}' | sha256sum", data.display()));
    let session = format!("drbot DRILL-1 {}", &tag[..8]);
    // Wait until the restore is writing into the scratch database, then kill -9.
    let started = Instant::now();
    let scratch = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the drill never started restoring"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the drill ended before the kill"
        );
        let busy = sh(&format!(
            "psql -At -X '{PG}/postgres' -c \"SELECT datname FROM pg_stat_activity WHERE application_name = '{session}' AND query ILIKE 'COPY%'\""
        ));
        if let Some(name) = busy.lines().next().filter(|l| !l.is_empty()) {
            break name.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let mark = format!("{session}: a drill's scratch database, dropped when the drill ends");
    assert_eq!(
        comment_on(&scratch),
        Some(mark.clone()),
        "the kill came too late to test anything"
    );
    // The next start of drbot (any command) drops it and marks the drill interrupted.
    let out = exec("/drill history").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("DRILL-1: the database drill was interrupted"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("dropped database {scratch}")),
        "{stderr}"
    );
    assert!(stdout.contains("DRILL-1 database interrupted"), "{stdout}");
    // Gone (the name may be another test's drill's again by now: it carries this one's mark).
    assert_ne!(comment_on(&scratch), Some(mark));
    assert!(!stdout.contains(DRILL_PASSWORD) && !stderr.contains(DRILL_PASSWORD));
    let store = Store::open(&install.data_dir()).unwrap();
    let drill = store.drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Interrupted);
    // The database the kill left (the first name, or a tagged one when another drill held
    // it: the tests run side by side) is the one dropped.
    let killed = drill
        .scratch
        .iter()
        .find(|s| s.name == scratch)
        .unwrap_or_else(|| panic!("{scratch} in {:?}", drill.scratch));
    assert_eq!(killed.state, ScratchState::Dropped, "{:?}", drill.scratch);
}

/// For a full drill: a media bucket with three objects and a snapshot of it, a backup taken
/// 20 minutes ago, and an engine whose config has `extra` added and whose environment
/// `extra_env`. Returns the media bucket's name, the engine and its directory.
async fn full_drill_setup(
    d: &D,
    extra: &str,
    extra_env: &[(&str, &str)],
) -> (String, Engine, tempfile::TempDir) {
    let media = bucket("drbot-dmedia-").await;
    let config = drills_config(&d.bucket, &d.key, "").replace(
        &format!("backup_bucket = \"{}\"", d.bucket),
        &format!(
            "backup_bucket = \"{}\"\nmedia_bucket = \"{media}\"",
            d.bucket
        ),
    ) + extra;
    let dir = tempfile::tempdir().unwrap();
    let mut env = env_map(moto(), &d.source.url(), &d.staging.url());
    env.insert("DRILL_URL".to_string(), drill_url());
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    let engine = Engine::new(
        Arc::new(Config::from_toml(&config, Path::new("t.toml")).unwrap()),
        Store::open(dir.path()).unwrap(),
        Arc::new(SystemClock),
    )
    .with_env(Arc::new(move |k: &str| env.get(k).cloned()));
    for (k, body) in [
        ("art/1.jpg", vec![1u8; 3000]),
        ("art/2.png", vec![2u8; 10]),
        ("z.txt", b"z".to_vec()),
    ] {
        put(&media, k, body).await;
    }
    d.upload(
        &name_at(Utc::now() - chrono::Duration::minutes(20)),
        &d.good_backup_script(),
    )
    .await;
    let snap = engine.run(&commander(), "/storage snapshot").await;
    assert_eq!(snap.outcome, Outcome::Done, "{}", snap.text);
    (media, engine, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drill_runs_both_drills_and_says_what_it_could_not_check() {
    let d = setup_with("", Arc::new(SystemClock), |_, _| drill_url()).await;
    let (media, engine, _dir) = full_drill_setup(&d, "", &[]).await;
    let r = engine.run(&commander(), "/drill start kind:full").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(!r.full_text().contains(DRILL_PASSWORD));
    let drill = engine.store().drills().unwrap().remove(0);
    let names: Vec<&str> = drill.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 4 + 5 + 3, "{names:?}");
    assert!(
        names.contains(&"Restore the copies from the snapshot"),
        "{names:?}"
    );
    // Search and the API are not configured: said, never counted as passed.
    let search = drill
        .steps
        .iter()
        .find(|s| s.name == "/search health")
        .unwrap();
    assert_eq!(search.ok, None, "{search:?}");
    assert!(search.detail.starts_with("Not checked"), "{search:?}");
    assert!(
        drill.report.contains("| RTO (full) | 4h00m |"),
        "{}",
        drill.report
    );
    // Both recovery points: the backup's (about 20 minutes) and the snapshot's (seconds).
    let rpo = drill.rpo_secs.expect("database RPO");
    assert!((20 * 60..25 * 60).contains(&rpo), "{rpo}");
    assert!(
        drill.storage_rpo_secs.expect("storage RPO") < 120,
        "{drill:?}"
    );
    assert!(r.text.contains("; storage RPO "), "{}", r.text);
    assert!(
        drill
            .restored
            .as_deref()
            .is_some_and(|r| r.starts_with("db/"))
    );
    assert!(
        drill.report.contains("| RPO (database) | 30m | 2"),
        "{}",
        drill.report
    );
    assert!(
        drill.report.contains("| RPO (storage) | 1h00m |"),
        "{}",
        drill.report
    );
    assert!(
        drill.report.contains("Documentation review"),
        "{}",
        drill.report
    );
    assert!(drill.report.contains("not checked"), "{}", drill.report);
    // Every scratch resource made is dropped (a first name another drill had taken at the
    // same moment was never created).
    assert!(
        drill
            .scratch
            .iter()
            .all(|s| matches!(s.state, ScratchState::Dropped | ScratchState::NotCreated)),
        "{:?}",
        drill.scratch
    );
    assert_eq!(
        drill
            .scratch
            .iter()
            .filter(|s| s.state == ScratchState::Dropped)
            .count(),
        2,
        "{:?}",
        drill.scratch
    );
    // The drill's own work never lands on an incident, and its scratch prefix is gone.
    let left = crate::support::s3()
        .list_objects_v2()
        .bucket(&media)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = left
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(keys, ["art/1.jpg", "art/2.png", "z.txt"]);
}

/// With search and the API configured, a full drill checks both for real: it passes while
/// they are healthy and fails, naming search, once Meilisearch is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drill_with_search_and_the_api_configured_checks_both() {
    use crate::fake_meili::{FakeMeili, FakePlatform};
    let meili = FakeMeili::start("drill-master-key").await;
    let platform = FakePlatform::start(&meili, "drill-admin-token", "artworks", 3).await;
    meili.set_documents("artworks", 3);
    let d = setup_with("", Arc::new(SystemClock), |_, _| drill_url()).await;
    let extra = format!(
        "[search]\ntimeout_secs = 2\n[api]\nbase_url = \"{0}\"\nweb_url = \"{0}\"\ntimeout_secs = 2\n",
        platform.base
    );
    let (_media, engine, _dir) = full_drill_setup(
        &d,
        &extra,
        &[
            ("MEILI_HOST", meili.host.as_str()),
            ("MEILI_MASTER_KEY", "drill-master-key"),
            ("ADMIN_TOKEN", "drill-admin-token"),
        ],
    )
    .await;
    let step = |engine: &Engine, n: usize, name: &str| {
        engine.store().drills().unwrap()[n]
            .steps
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap()
    };
    let r = engine.run(&commander(), "/drill start kind:full").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let search = step(&engine, 0, "/search health");
    assert_eq!(search.ok, Some(true), "{search:?}");
    assert!(search.detail.contains("Search is healthy"), "{search:?}");
    let api = step(&engine, 0, "/api health");
    assert_eq!(api.ok, Some(true), "{api:?}");
    assert!(api.detail.contains("healthy: 200"), "{api:?}");
    let drill = engine.store().drills().unwrap().remove(0);
    for name in ["/search health", "/api health"] {
        assert!(
            drill
                .report
                .lines()
                .any(|l| l.contains(&format!("| {name} |")) && l.contains("| passed |")),
            "{}",
            drill.report
        );
    }

    // Meilisearch must restart: the drill fails there, and says so.
    meili.state.lock().unwrap().unavailable = true;
    let r = engine.run(&commander(), "/drill start kind:full").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(r.text.contains("search: "), "{}", r.text);
    let search = step(&engine, 1, "/search health");
    assert_eq!(search.ok, Some(false), "{search:?}");
    assert_eq!(step(&engine, 1, "/api health").ok, Some(true));
    assert!(
        !r.full_text().contains("drill-master-key") && !r.full_text().contains("drill-admin-token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drbots_drill_1_at_once_on_one_scratch_server_both_pass_under_two_names() {
    // Each drbot's first drill wants drbot_drill_1; started together they race for the name
    // (PostgreSQL then answers 23505 from pg_database's index, not 42P04).
    for round in 0..3 {
        let (a, b) = tokio::join!(setup(""), setup(""));
        let taken = Utc::now() - chrono::Duration::minutes(10);
        a.upload(&name_at(taken), &a.good_backup_script()).await;
        b.upload(&name_at(taken), &b.good_backup_script()).await;
        let (ra, rb) = tokio::join!(
            a.run("/drill start kind:database keep:true"),
            b.run("/drill start kind:database keep:true")
        );
        assert_eq!(ra.outcome, Outcome::Done, "round {round}: {}", ra.text);
        assert_eq!(rb.outcome, Outcome::Done, "round {round}: {}", rb.text);
        let na = made(&a.engine.store().drills().unwrap()[0]).name.clone();
        let nb = made(&b.engine.store().drills().unwrap()[0]).name.clone();
        assert_ne!(na, nb, "round {round}");
        for n in [&na, &nb] {
            assert!(n.starts_with("drbot_drill_1"), "{n}");
            assert!(database_exists(n), "{n}");
            drop_database(n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_by_a_racing_create_database_is_recognised_as_taken() {
    use drbot_commands::scenarios::drill::database::name_taken;
    let db = crate::support::TestDb::new("drbot_race_");
    let (client, conn) = tokio_postgres::connect(&format!("{PG}/postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // 42P04: the name existed.
    let e = client
        .batch_execute(&format!("CREATE DATABASE \"{}\"", db.name))
        .await
        .unwrap_err();
    assert!(name_taken(&e), "{e:?}");
    // 23505: what a CREATE DATABASE that lost the race gets (the catalog's unique index).
    client
        .batch_execute("CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = client
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert!(name_taken(&e), "{e:?}");
    // Anything else is a failure, not a taken name.
    let e = client
        .batch_execute("CREATE DATABASE drbot_race_never TEMPLATE drbot_no_such_template")
        .await
        .unwrap_err();
    assert!(!name_taken(&e), "{e:?}");
}

/// A bug inside a drill step (a panic, injected where the scratch database holds the restored
/// backup) ends the drill failed, says so, and drops the scratch database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_drill_step_ends_it_failed_with_its_scratch_dropped() {
    let mut d = setup("").await;
    d.engine
        .set_fail_points(Arc::new(|at: &str| at == "database drill: restored"));
    d.upload(
        &name_at(Utc::now() - chrono::Duration::minutes(5)),
        &d.good_backup_script(),
    )
    .await;
    let before = d.source.dump();
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text
            .contains("drbot hit an internal error and stopped the drill")
            && r.text
                .contains("a failure injected at database drill: restored"),
        "{}",
        r.text
    );
    let drill = d.engine.store().drills().unwrap().remove(0);
    assert_eq!(drill.status, DrillStatus::Failed);
    assert_eq!(made(&drill).state, ScratchState::Dropped, "{drill:?}");
    assert!(!still_there(&d.engine, &drill));
    // The step it stopped in ends failed with the reason, not "did not finish".
    let restore = &drill.steps[1];
    assert_eq!(restore.ok, Some(false), "{drill:?}");
    assert!(restore.finished_at.is_some(), "{drill:?}");
    assert!(
        restore.detail.contains("drbot hit an internal error"),
        "{drill:?}"
    );
    assert!(!drill.report.contains("did not finish"), "{}", drill.report);
    crate::support::assert_same_dump(&before, &d.source.dump(), "source after the drill");
    // The drill lock is given back: the next drill runs.
    d.engine.set_fail_points(Arc::new(|_: &str| false));
    let r = d.run("/drill start kind:database").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
}
