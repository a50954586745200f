//! Issue 29, staged restores (`[targets.NAME] staged = true`): the backup is loaded into a new
//! database beside the live one while the request waits; the approval swaps it in by rename;
//! the replaced one is kept for `/db rollback`; nothing is left of a request that never ran,
//! even when drbot is killed in the middle of the load.

use std::process::Command;
use std::time::{Duration, Instant};

use drbot_commands::Outcome;
use drbot_state::{ApprovalStatus, Store};

use crate::database::{FIXTURE, Setup, approver, commander, config_text, env_map, setup_with};
use crate::support::{Drbot, PG, assert_same_dump, moto, os_user, sh};

pub(crate) fn staged(config: String) -> String {
    config.replace(
        "url_env = \"STAGING_URL\"",
        "url_env = \"STAGING_URL\"\nstaged = true",
    )
}

fn psql_at(db: &str, sql: &str) -> String {
    sh(&format!(
        "psql -At -X '{PG}/{db}' -c \"{}\"",
        sql.replace('"', "\\\"")
    ))
    .trim()
    .to_string()
}

/// pg_dump of a database the test does not own, as [`crate::support::TestDb::dump`].
fn dump_of(name: &str) -> String {
    sh(&format!("pg_dump '{PG}/{name}'"))
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A dump with the rows of each COPY block sorted: a staged load deals a table's rows out to
/// parallel sessions, so their order on disk (and in pg_dump's output) is not the backup's.
fn rows_sorted(dump: &str) -> String {
    let mut out = Vec::new();
    let mut rows: Option<Vec<&str>> = None;
    for line in dump.lines() {
        match rows.as_mut() {
            Some(r) if line == "\\." => {
                r.sort_unstable();
                out.append(r);
                out.push(line);
                rows = None;
            }
            Some(r) => r.push(line),
            None => {
                out.push(line);
                if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
                    rows = Some(Vec::new());
                }
            }
        }
    }
    out.join("\n")
}

/// The same data and schema, whatever the order of each table's rows.
pub(crate) fn assert_same_rows(a: &str, b: &str, what: &str) {
    assert_same_dump(&rows_sorted(a), &rows_sorted(b), what);
}

/// Databases on the server whose names start with `prefix`.
fn databases(prefix: &str) -> Vec<String> {
    let all = psql_at(
        "postgres",
        &format!(
            "SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}') ORDER BY datname"
        ),
    );
    all.lines().map(str::to_string).collect()
}

/// Drops what a test left beside its target (kept and staging databases).
pub(crate) struct Beside(pub(crate) String);

impl Drop for Beside {
    fn drop(&mut self) {
        for name in databases(&format!("{}_", self.0)) {
            let _ = Command::new("psql")
                .args([
                    "-q",
                    "-X",
                    &format!("{PG}/postgres"),
                    "-c",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ])
                .output();
        }
    }
}

async fn staged_setup() -> (Setup, Beside) {
    let s = setup_with(staged).await;
    s.source.psql(FIXTURE);
    // Big enough that its rows are dealt out to the parallel sessions in many shares, and
    // rows that span lines in the dump's escapes.
    s.source.psql(
        "CREATE TABLE bulk (id int PRIMARY KEY, t text, n numeric); \
         INSERT INTO bulk SELECT g, md5(g::text) || E'\\n\\ttab' || repeat('y', g % 50), g / 7.0 FROM generate_series(1, 60000) g; \
         CREATE INDEX bulk_t ON bulk (t);",
    );
    let beside = Beside(s.target.name.clone());
    (s, beside)
}

async fn asked(s: &Setup, line: &str) -> (String, String) {
    let r = s.engine.run(&commander(), line).await;
    match r.outcome {
        Outcome::AwaitingApproval(id) => (id, r.text),
        other => panic!("{other:?}: {}", r.text),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_restore_loads_beside_the_live_database_swaps_it_in_and_rolls_back() {
    let (s, _beside) = staged_setup().await;
    let live = s.target.name.clone();
    s.backup_and_declare().await;
    // The live database: its own data, settings and privileges, and an application connected.
    s.target
        .psql("CREATE TABLE live_marker (n int); INSERT INTO live_marker VALUES (42);");
    s.target.psql_admin(&format!(
        "ALTER DATABASE \"{live}\" SET work_mem = '7MB'; \
         ALTER DATABASE \"{live}\" SET search_path = \"$user\", public, \"odd, name\"; \
         REVOKE ALL ON DATABASE \"{live}\" FROM PUBLIC; GRANT CONNECT ON DATABASE \"{live}\" TO pg_monitor;"
    ));
    let before = s.target.dump();
    let mut app = Command::new("psql")
        .args(["-X", "-q", &s.target.url(), "-c", "SELECT pg_sleep(300)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let (id, text) = asked(&s, "/db restore backup:latest target:staging").await;
    assert!(
        text.contains("loaded into")
            && text.contains("side by side, with 5 index builds among them), verified;")
            && text.contains("60012 rows, by 2 sessions side by side"),
        "{text}"
    );
    assert!(text.contains("the swap ends them"), "{text}");
    // Loaded beside it, the live one untouched while the request waits.
    let staging = databases(&format!("{live}_staging_"));
    assert_eq!(staging.len(), 1, "{staging:?}");
    assert_same_rows(&s.source.dump(), &dump_of(&staging[0]), "staging");
    assert_same_dump(&before, &s.target.dump(), "live while waiting");
    assert!(
        app.try_wait().unwrap().is_none(),
        "the application's session ended early"
    );

    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let kept = format!("{live}_before_inc1");
    assert!(
        r.text.contains("Swapped in") && r.text.contains(&kept),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("Ended 1 session(s) in its way: pid")
            && r.text.contains(&format!(") on {live}.")),
        "{}",
        r.text
    );
    assert!(r.text.contains("/db rollback target:staging"), "{}", r.text);
    assert_same_rows(&s.source.dump(), &s.target.dump(), "swapped in");
    assert!(databases(&format!("{live}_staging_")).is_empty());
    assert_eq!(psql_at(&kept, "SELECT n FROM live_marker"), "42");
    assert!(app.wait().is_ok());
    // The live database is made as the old one was: settings and privileges.
    let settings = psql_at(
        "postgres",
        &format!(
            "SELECT array_to_string(setconfig, '|') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '{live}'"
        ),
    );
    assert!(settings.contains("work_mem=7MB"), "{settings}");
    assert!(
        settings.contains("search_path=\"$user\", public, \"odd, name\""),
        "{settings}"
    );
    let acl = psql_at(
        "postgres",
        &format!("SELECT datacl::text FROM pg_database WHERE datname = '{live}'"),
    );
    assert!(
        acl.contains("pg_monitor=c/") && !acl.contains("=Tc/"),
        "{acl}"
    );
    // Nothing marks the live one as drbot's: it can never be taken for a staging database.
    let comment = psql_at(
        "postgres",
        &format!(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = '{live}'"
        ),
    );
    assert_eq!(comment, "");

    // /db rollback: the kept one is swapped back in, the restored one kept in its turn.
    let (rid, text) = asked(&s, "/db rollback target:staging").await;
    assert!(text.contains(&kept), "{text}");
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{rid}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("Rolled back"), "{}", r.text);
    assert_same_dump(&before, &s.target.dump(), "rolled back");
    assert!(databases(&kept).is_empty(), "{:?}", databases(&kept));
    let undone = format!("{live}_before_rollback");
    assert_same_rows(&s.source.dump(), &dump_of(&undone), "kept after rollback");
    // A second rollback undoes the first.
    let (rid, text) = asked(&s, "/db rollback target:staging").await;
    assert!(text.contains(&undone), "{text}");
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{rid}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert_same_rows(&s.source.dump(), &s.target.dump(), "rolled forward");
    let timeline = s.timeline(drbot_state::IncidentId(1));
    assert!(timeline.contains("Swapped in"), "{timeline}");
    assert!(timeline.contains("Rolled back"), "{timeline}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_or_a_denial_leaves_nothing_and_the_live_database_as_it_was() {
    let (s, _beside) = staged_setup().await;
    let live = s.target.name.clone();
    s.target
        .psql("CREATE TABLE live_marker (n int); INSERT INTO live_marker VALUES (42);");
    let before = s.target.dump();
    // A backup cut short: the load fails, the request is void, the staging database dropped.
    s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!(
            "({} | xz || true) | head -c 100000 | {}",
            s.dump_cmd(),
            s.age()
        ),
    )
    .await;
    let r = s
        .engine
        .run(&commander(), "/db restore backup:latest target:staging")
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("The staged load") && r.text.contains("is void"),
        "{}",
        r.text
    );
    assert!(databases(&format!("{live}_staging_")).is_empty());
    assert_same_dump(&before, &s.target.dump(), "after a failed load");

    // A good backup, loaded, then denied: its staging database goes with the denial.
    s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let (id, _) = asked(&s, "/db restore backup:latest target:staging").await;
    assert_eq!(databases(&format!("{live}_staging_")).len(), 1);
    let r = s
        .engine
        .run(
            &approver(),
            &format!("/deny request:{id} reason:\"wrong backup\""),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("staging database"), "{}", r.text);
    assert!(databases(&format!("{live}_staging_")).is_empty());
    assert_same_dump(&before, &s.target.dump(), "after a denial");
    // Nothing kept, so nothing to roll back to: refused, nothing changed.
    let r = s
        .engine
        .run(&commander(), "/db rollback target:staging")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("nothing to roll back to"), "{}", r.text);
    // A target that is not staged has no rollback.
    let r = s
        .engine
        .run(&commander(), "/db rollback target:source")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("is not staged"), "{}", r.text);
}

/// `kill -9` in the middle of the staged load: the live database is untouched, and the next
/// start of drbot (any command) voids the request and drops the staging database.
#[test]
fn a_kill_during_a_staged_load_leaves_live_untouched_and_the_next_start_drops_staging() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (s, _beside) = rt.block_on(staged_setup());
    let live = s.target.name.clone();
    s.source.psql(
        "CREATE TABLE big (id int PRIMARY KEY, t text); \
         INSERT INTO big SELECT g, md5(g::text) || repeat('x', 200) FROM generate_series(1, 400000) g;",
    );
    rt.block_on(s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!("{} | xz -1 | {}", s.dump_cmd(), s.age()),
    ));
    s.target
        .psql("CREATE TABLE live_marker (n int); INSERT INTO live_marker VALUES (42);");
    let before = s.target.dump();
    let install = Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\nunix_user = \"{}\"\n",
        staged(config_text(&s.bucket, &s.key)),
        os_user()
    ));
    let env = env_map(moto(), &s.source.url(), &s.target.url());
    let exec = |line: &str| -> Command {
        let mut c = install.command();
        c.args(["exec", line]).envs(&env);
        c
    };
    let mut child = exec("/db restore backup:latest target:staging")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let staging = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before the kill"
        );
        let busy = psql_at(
            "postgres",
            &format!(
                "SELECT datname FROM pg_stat_activity WHERE starts_with(datname, '{live}_staging_') AND query ILIKE 'COPY%big%'"
            ),
        );
        if let Some(name) = busy.lines().next().filter(|l| !l.is_empty()) {
            break name.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        databases(&staging),
        vec![staging.clone()],
        "the kill came too late"
    );
    assert_same_dump(&before, &s.target.dump(), "live after the kill");
    // The next start: the request is void, its staging database dropped.
    let out = exec("/incident list").output().unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("A-1 was voided (its preflight was interrupted)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("its staging database {staging} was dropped")),
        "{stderr}"
    );
    assert!(databases(&staging).is_empty());
    assert_same_dump(&before, &s.target.dump(), "live after the next start");
    let store = Store::open(&install.data_dir()).unwrap();
    let r = store.approvals().unwrap().remove(0);
    assert_eq!(r.status, ApprovalStatus::Voided);
    assert!(r.released);
}

fn allows_connections(db: &str) -> String {
    psql_at(
        "postgres",
        &format!("SELECT datallowconn FROM pg_database WHERE datname = '{db}'"),
    )
}

/// A role that may create databases and owns `db`, with its URL to `db` (`in_url`: the
/// password as the URL writes it); dropped when the value is, once what it owns is gone.
struct Role(String);

impl Role {
    fn owning(db: &str, password: &str, in_url: &str) -> (Role, String) {
        let role = crate::support::unique("drbot_owner_");
        sh(&format!(
            "psql -q -X '{PG}/postgres' -c \"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'\" \
             -c 'ALTER DATABASE \"{db}\" OWNER TO {role}'"
        ));
        let url = format!("postgres://{role}:{in_url}@127.0.0.1:5432/{db}?sslmode=disable");
        (Role(role), url)
    }
}

/// An engine whose staged target is reached by `url`, and the restore it was asked for
/// (awaiting approval): its directory, the engine, the request's id and the reply.
async fn asked_by_url(
    s: &Setup,
    url: &str,
) -> (
    tempfile::TempDir,
    drbot_commands::Engine,
    String,
    drbot_commands::Reply,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = crate::database::engine_with(
        dir.path(),
        &staged(config_text(&s.bucket, &s.key)),
        env_map(moto(), &s.source.url(), url),
    );
    let asked = engine
        .run(&commander(), "/db restore backup:latest target:staging")
        .await;
    let Outcome::AwaitingApproval(id) = &asked.outcome else {
        panic!("{:?}: {}", asked.outcome, asked.text)
    };
    (dir, engine, id.clone(), asked)
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-q",
                "-X",
                &format!("{PG}/postgres"),
                "-c",
                &format!("DROP ROLE IF EXISTS {}", self.0),
            ])
            .output();
    }
}

/// The swap cannot end a session in its way (drbot runs as the database's owner, the session
/// is a superuser's): it fails, nothing is swapped, the live database is as it was and accepts
/// connections again, that session is alive, and the staging database is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_that_cannot_end_a_session_leaves_the_live_database_as_it_was() {
    let live_db = crate::support::TestDb::new("drbot_noend_");
    let live = live_db.name.clone();
    let beside = Beside(live.clone());
    let (role, url) = Role::owning(&live, "pw", "pw");
    let s = setup_with(staged).await;
    s.source.psql(FIXTURE);
    s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!("pg_dump --no-owner '{}' | xz | {}", s.source.url(), s.age()),
    )
    .await;
    live_db.psql("CREATE TABLE live_marker (n int); INSERT INTO live_marker VALUES (42);");
    let before = live_db.dump();
    let (_dir, engine, id, _) = asked_by_url(&s, &url).await;
    let staging = databases(&format!("{live}_staging_")).remove(0);
    // A superuser's session on the live database: its owner may not end it.
    let mut admin = Command::new("psql")
        .args([
            "-X",
            "-q",
            &format!("{PG}/{live}"),
            "-c",
            "SELECT pg_sleep(300)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while psql_at(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{live}' AND query LIKE '%pg_sleep(300)%'"
        ),
    ) != "1"
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no session");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("could not end session")
            && r.text.contains(&format!(
                "Nothing was swapped: {live} is as it was and accepts connections again"
            )),
        "{}",
        r.text
    );
    assert!(admin.try_wait().unwrap().is_none(), "the session was ended");
    assert_eq!(allows_connections(&live), "t");
    assert_same_dump(&before, &live_db.dump(), "live after the failed swap");
    assert!(databases(&format!("{live}_before_")).is_empty());
    assert!(databases(&staging).is_empty(), "{staging} left");
    let req = engine.store().approvals().unwrap().remove(0);
    assert_eq!(req.status, ApprovalStatus::Failed);
    assert!(req.released);
    let said = crate::support::recorded_text(engine.store());
    assert!(
        said.contains(&format!(
            "A-1 ended without its swap: its staging database {staging} was dropped"
        )),
        "{said}"
    );
    let _ = admin.kill();
    let _ = admin.wait();
    drop(engine);
    drop(beside);
    drop(live_db);
    drop(role);
}

/// An install whose alice (this OS user) asks and bob (`--as bob`) approves.
fn two_people(s: &Setup) -> Drbot {
    Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\nunix_user = \"{}\"\n\
         [people.bob]\nroles = [\"approver\"]\nunix_user = \"bob-not-here\"\n\
         [console]\ntrust_as = true\n",
        staged(config_text(&s.bucket, &s.key)),
        os_user()
    ))
}

/// Loads a staged restore by `drbot exec` in `install`; returns the staging database.
fn loaded_by_exec(s: &Setup, install: &Drbot, live: &str) -> String {
    let env = env_map(moto(), &s.source.url(), &s.target.url());
    let out = install
        .command()
        .args(["exec", "/db restore backup:latest target:staging"])
        .envs(&env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("A-1"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    databases(&format!("{live}_staging_")).remove(0)
}

/// Runs `sql` in an open transaction on the server's `postgres` database, holding what it
/// locks until the returned client rolls back.
async fn holding(sql: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&format!("{PG}/postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("BEGIN; {sql}"))
        .await
        .unwrap();
    client
}

/// Waits until a session runs a statement like `like` and waits on a lock; panics if `child`
/// ends first.
fn until_held(child: &mut std::process::Child, like: &str) {
    let started = Instant::now();
    while psql_at(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '{like}'"
        ),
    ) != "1"
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the swap ended before the kill"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "never held");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no session but this one runs a statement like `like`.
fn until_gone(like: &str) {
    let started = Instant::now();
    while psql_at(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '{like}' AND pid <> pg_backend_pid()"
        ),
    ) != "0"
    {
        assert!(started.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A staged restore loaded by one `drbot exec`, whose approval (another) was killed with
/// `kill -9` while its swap waited on a lock the test held; the lock is then let go and the
/// server finishes the statement it was running.
struct KilledSwap {
    s: Setup,
    _beside: Beside,
    live: String,
    staging: String,
    before: String,
    install: Drbot,
    env: std::collections::HashMap<String, String>,
    /// Last: what the setup made is dropped while its runtime still runs.
    _rt: tokio::runtime::Runtime,
}

impl KilledSwap {
    /// `hold(live, staging)` is the statement whose lock holds the swap; `like` matches the
    /// swap's statement that waits on it.
    fn new(hold: impl Fn(&str, &str) -> String, like: &str) -> KilledSwap {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (s, beside) = rt.block_on(staged_setup());
        let live = s.target.name.clone();
        rt.block_on(s.upload(
            "2026-11-25T09-00-00Z.sql.xz.age",
            &format!("{} | xz | {}", s.dump_cmd(), s.age()),
        ));
        s.target
            .psql("CREATE TABLE live_marker (n int); INSERT INTO live_marker VALUES (42);");
        let before = s.target.dump();
        let install = two_people(&s);
        let env = env_map(moto(), &s.source.url(), &s.target.url());
        let staging = loaded_by_exec(&s, &install, &live);
        let holder = rt.block_on(holding(&hold(&live, &staging)));
        let mut child = install
            .command()
            .args(["exec", "--as", "bob", "/approve request:A-1"])
            .envs(&env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        until_held(&mut child, like);
        child.kill().unwrap();
        child.wait().unwrap();
        rt.block_on(holder.batch_execute("ROLLBACK")).unwrap();
        until_gone(like);
        KilledSwap {
            s,
            _beside: beside,
            live,
            staging,
            before,
            install,
            env,
            _rt: rt,
        }
    }

    /// drbot's next start (any command): what it said.
    fn next_start(&self) -> String {
        let out = self
            .install
            .command()
            .args(["exec", "/incident list"])
            .envs(&self.env)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}");
        said
    }
}

/// `kill -9` as the swap turns new connections to the live database away (held there by a
/// lock on its row that the test takes; the server finishes that statement after drbot is
/// gone): the live database refuses connections and nothing is renamed. The next start lets
/// connections in again and drops the staging database; the live database is as it was.
#[test]
fn a_kill_as_the_swap_refuses_connections_leaves_live_open_and_as_it_was_at_the_next_start() {
    let k = KilledSwap::new(
        |live, _| format!("ALTER DATABASE \"{live}\" WITH CONNECTION LIMIT 50"),
        "%ALLOW_CONNECTIONS false%",
    );
    let (live, staging) = (&k.live, &k.staging);
    assert_eq!(allows_connections(live), "f", "the state this test is for");
    assert_eq!(databases(staging), vec![staging.clone()]);

    let said = k.next_start();
    assert!(said.contains("A-1 was interrupted"), "{said}");
    assert!(
        said.contains(&format!(
            "A-1 ended without its swap: its staging database {staging} was dropped and {live} accepts connections again"
        )),
        "{said}"
    );
    assert_eq!(allows_connections(live), "t");
    assert!(databases(staging).is_empty());
    assert!(databases(&format!("{live}_before_")).is_empty());
    assert_same_dump(&k.before, &k.s.target.dump(), "live after the next start");
}

/// `kill -9` inside the swap's transaction (held at its second rename by a lock the test
/// takes on the staging database, as a COMMENT takes it): the server still runs the
/// transaction it was sent to its end once the lock goes, so the swap is whole, never half;
/// the next start says it finished, drops nothing, and names the kept database.
#[test]
fn a_kill_inside_the_swap_transaction_leaves_it_whole_and_the_next_start_says_so() {
    let k = KilledSwap::new(
        |_, staging| format!("COMMENT ON DATABASE \"{staging}\" IS 'held by the test'"),
        "%RENAME TO%",
    );
    let (live, staging) = (&k.live, &k.staging);
    // Whole: the restored database is live, the old one kept, nothing refuses connections.
    let kept = databases(&format!("{live}_before_"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_same_dump(&k.before, &dump_of(&kept[0]), "kept");
    assert_same_rows(&k.s.source.dump(), &k.s.target.dump(), "swapped in");
    assert!(databases(staging).is_empty());
    assert_eq!(allows_connections(live), "t");
    // Killed before it could say so, drbot has not recorded the restore yet.
    let last = || {
        Store::open(&k.install.data_dir())
            .unwrap()
            .last_restore("staging")
            .unwrap()
    };
    assert_eq!(last(), None);

    let said = k.next_start();
    assert!(
        said.contains(&format!(
            "A-1 finished its swap before drbot stopped: {live} is the restored database (loaded into {staging}); the one it replaced is kept as {}",
            kept[0]
        )),
        "{said}"
    );
    // Found finished, it is the target's last restore: what /db verify compares with.
    let last = last().expect("the finished swap is recorded as the last restore");
    assert!(
        last.key.ends_with("2026-11-25T09-00-00Z.sql.xz.age"),
        "{last:?}"
    );
    assert_eq!(last.by, "drbot");
    assert_eq!(
        databases(&format!("{live}_before_")),
        kept,
        "nothing dropped"
    );
    assert_same_rows(
        &k.s.source.dump(),
        &k.s.target.dump(),
        "after the next start",
    );
}

/// Kept databases go by `[retention]`: past `keep_all_hours`, with no incident open, `/backup
/// prune` lists them with their bytes and, approved, drops them (on the audit log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_kept_databases_once_past_keep_all_hours() {
    let s = setup_with(|c| staged(c) + "\n[retention]\nkeep_all_hours = 0\n").await;
    s.source.psql(FIXTURE);
    let _beside = Beside(s.target.name.clone());
    let live = s.target.name.clone();
    s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let (id, _) = asked(&s, "/db restore backup:latest target:staging").await;
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let kept = databases(&format!("{live}_before_"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let r = s
        .engine
        .run(&commander(), "/backup prune dry_run:true")
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains("Databases kept from before staged restores")
            && r.text.contains("drop 1"),
        "{}",
        r.text
    );
    assert_eq!(databases(&kept[0]), kept, "a dry run dropped it");
    let (pid, text) = asked(&s, "/backup prune dry_run:false").await;
    assert!(text.contains(&format!("staging/{}", kept[0])), "{text}");
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{pid}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(databases(&kept[0]).is_empty(), "not dropped: {}", r.text);
    assert!(!databases(&live).is_empty(), "the live database went");
    let audit = crate::support::recorded_text(s.engine.store());
    assert!(
        audit.contains(&format!("Pruned kept database staging/{}", kept[0])),
        "{audit}"
    );
}

/// The runbook's worst case: the live database is gone. A staged restore brings it back
/// under its name (nothing to keep, nothing to roll back to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_brought_back_by_a_staged_restore() {
    let (s, _beside) = staged_setup().await;
    let live = s.target.name.clone();
    s.backup_and_declare().await;
    sh(&format!(
        "psql -q -X '{PG}/postgres' -c 'DROP DATABASE \"{live}\" WITH (FORCE)'"
    ));
    assert!(databases(&live).is_empty());
    let (id, text) = asked(&s, "/db restore backup:latest target:staging").await;
    assert!(text.contains("loaded into"), "{text}");
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains(&format!("There was no {live} to replace: it is back")),
        "{}",
        r.text
    );
    assert!(!r.text.contains("/db rollback"), "{}", r.text);
    assert_same_rows(&s.source.dump(), &s.target.dump(), "brought back");
    assert_eq!(databases(&format!("{live}_")), Vec::<String>::new());
}

/// `drbot check` says whether a staged target can be: yes for a database drbot's user owns
/// on a server where it may create databases; no for the server's main `postgres` database
/// (Supabase's cannot be renamed), with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_whether_a_staged_target_can_be() {
    let live = crate::support::TestDb::new("drbot_chk_");
    let config = drbot_commands::Config::from_toml(
        "[targets.ok]\nurl_env = \"OK_URL\"\nstaged = true\n\
         [targets.main]\nurl_env = \"MAIN_URL\"\nstaged = true\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let (ok, main) = (live.url(), format!("{PG}/postgres?sslmode=disable"));
    let env = move |k: &str| match k {
        "OK_URL" => Some(ok.clone()),
        "MAIN_URL" => Some(main.clone()),
        _ => None,
    };
    let lines: Vec<String> = drbot_commands::check::probe(&config, &env)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    let text = lines.join("\n");
    assert!(
        text.contains("ok: staged: drbot may create databases beside it and rename it"),
        "{text}"
    );
    assert!(
        text.contains("main: configured staged but cannot be: its database is the server's main database `postgres`"),
        "{text}"
    );
}

/// Approves the request the moment it is posted, before its preflight (the staged load) has
/// begun, as bob would in another window.
struct ApproveAtOnce {
    engine: std::sync::Arc<drbot_commands::Engine>,
    seen: std::sync::Mutex<Option<drbot_commands::Reply>>,
}

impl drbot_commands::progress::ProgressSink for ApproveAtOnce {
    fn update(&self, _line: &str) {}

    fn requested(&self, id: &str, _text: &str) {
        let engine = self.engine.clone();
        let line = format!("/approve request:{id}");
        let handle = tokio::runtime::Handle::current();
        let reply = std::thread::spawn(move || handle.block_on(engine.run(&approver(), &line)))
            .join()
            .unwrap();
        *self.seen.lock().unwrap() = Some(reply);
    }
}

/// The load may run while the approval is pending, and the approval may come before it ends:
/// it authorises only the swap, which runs the moment the load has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_during_the_staged_load_swaps_once_it_is_loaded() {
    let (s, _beside) = staged_setup().await;
    let live = s.target.name.clone();
    s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    s.target.psql("CREATE TABLE live_marker (n int);");
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(crate::database::engine_with(
        dir.path(),
        &staged(config_text(&s.bucket, &s.key)),
        env_map(moto(), &s.source.url(), &s.target.url()),
    ));
    let sink = ApproveAtOnce {
        engine: engine.clone(),
        seen: std::sync::Mutex::new(None),
    };
    let asked = engine
        .run_with(
            &commander(),
            "/db restore backup:latest target:staging",
            &sink,
        )
        .await;
    let approved = sink
        .seen
        .lock()
        .unwrap()
        .take()
        .expect("posted before its load");
    assert_eq!(approved.outcome, Outcome::Done, "{}", approved.text);
    assert!(
        approved
            .text
            .contains("runs the moment the preflight passes"),
        "{}",
        approved.text
    );
    assert_eq!(asked.outcome, Outcome::Done, "{}", asked.text);
    assert!(
        asked
            .text
            .contains("approved by bob while its preflight ran")
            && asked.text.contains("Swapped in"),
        "{}",
        asked.text
    );
    assert_same_rows(&s.source.dump(), &s.target.dump(), "swapped in");
    assert_eq!(databases(&format!("{live}_before_")).len(), 1);
    assert!(databases(&format!("{live}_staging_")).is_empty());
}

/// A target whose URL holds a user that is not a superuser and a password with `@ : / #`
/// (percent-encoded, as URLs must): the staged restore runs as that user (it may create
/// databases and owns the live one), and the password is nowhere in what drbot says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_restore_runs_as_an_owner_with_an_odd_password_and_never_shows_it() {
    let live_db = crate::support::TestDb::new("drbot_pw_");
    let _beside = Beside(live_db.name.clone());
    let (role, url) = Role::owning(&live_db.name, "p@ss:w/rd#1", "p%40ss%3Aw%2Frd%231");
    let s = setup_with(staged).await;
    s.source.psql(FIXTURE);
    s.upload(
        "2026-11-25T09-00-00Z.sql.xz.age",
        &format!(
            "pg_dump --no-owner --clean --if-exists '{}' | xz | {}",
            s.source.url(),
            s.age()
        ),
    )
    .await;
    let (_dir, engine, id, asked) = asked_by_url(&s, &url).await;
    let r = engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("Swapped in"), "{}", r.text);
    let said = format!(
        "{}\n{}\n{}",
        asked.text,
        r.text,
        crate::support::recorded_text(engine.store())
    );
    for secret in ["p@ss", "p%40ss", "w/rd#1", "w%2Frd"] {
        assert!(!said.contains(secret), "{secret} shown: {said}");
    }
    assert_eq!(
        psql_at(&live_db.name, "SELECT count(*) FROM data"),
        "3",
        "the restored data"
    );
    assert_eq!(
        psql_at(
            "postgres",
            &format!(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{}'",
                live_db.name
            )
        ),
        role.0
    );
    drop(engine);
    drop(_beside);
    drop(live_db);
    drop(role);
}

/// A staged target whose URL names no database is refused as configured wrong (not failed as
/// if its server broke), and no request is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_target_whose_url_names_no_database_is_refused_and_nothing_is_asked() {
    let config = drbot_commands::Config::from_toml(
        "[targets.nodb]\nurl_env = \"NODB_URL\"\nstaged = true\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = drbot_commands::Engine::new(
        std::sync::Arc::new(config),
        Store::open(dir.path()).unwrap(),
        std::sync::Arc::new(drbot_commands::SystemClock),
    )
    .with_env(std::sync::Arc::new(|k: &str| {
        (k == "NODB_URL").then(|| "postgres://127.0.0.1:5432?sslmode=disable".to_string())
    }));
    let r = engine.run(&commander(), "/db rollback target:nodb").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("nodb's URL names no database"),
        "{}",
        r.text
    );
    assert!(engine.store().approvals().unwrap().is_empty());
}
