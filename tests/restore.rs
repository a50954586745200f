//! A restore you can trust (SPEC §6): every way a restore can go wrong leaves the target
//! identical (compared by pg_dump), a restore over the populated source works for what pg_dump
//! writes, and the preflight refuses what could not succeed before anyone approves it.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use drbot_commands::pg::Target;
use drbot_commands::progress::Collect;
use drbot_commands::scenarios::database::load::{self, LoadOptions};
use drbot_commands::scenarios::database::pipeline::{self, Counters, Identities, Msg};
use drbot_commands::scenarios::database::splitter::{Piece, Statement};
use drbot_commands::{Outcome, Reply};
use drbot_state::ApprovalStatus;

use crate::database::{
    Setup, approved_with, commander, config_text, engine_with, env_map, nothing_can_run, setup,
};
use crate::support::{PG, TestDb, assert_same_dump, moto, put, sh};

const PRECIOUS: &str = "CREATE TABLE precious (id serial PRIMARY KEY, x int, secret text);
INSERT INTO precious (x, secret) VALUES (42, 'hunter2-row-data');";

/// Runs the decoder and the loader on `bytes`, as a restore does after its approval — the
/// preflight skipped, so the loader's own defences are what is tested.
async fn load_bytes(
    url: &str,
    reader: Box<dyn Read + Send>,
    options: LoadOptions,
) -> Result<load::Loaded, String> {
    let target = Target::new("t", url);
    let client = target.connect().await.map_err(|e| e.to_string())?;
    let counters = Arc::new(Counters::default());
    let rx = pipeline::decode(reader, Arc::new(Identities::none()), counters.clone());
    load::load(&client, &target, rx, &counters, &options)
        .await
        .map_err(|e| e.to_string())
}

async fn load_sql(db: &TestDb, sql: &str) -> Result<load::Loaded, String> {
    load_bytes(
        &db.url(),
        Box::new(io::Cursor::new(sql.as_bytes().to_vec())),
        LoadOptions::default(),
    )
    .await
}

/// A reader that hands out `data`, then fails as told.
struct Breaking {
    data: io::Cursor<Vec<u8>>,
    panic: bool,
}

impl Read for Breaking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.panic {
            panic!("decoder bug injected by the test");
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "xz: corrupt block injected by the test",
        ))
    }
}

fn statement(sql: &str, line: u64) -> Piece {
    Piece::Statement(Statement::new(sql, line, 0))
}

/// A hostile dump turns standard_conforming_strings back on behind drbot's back (inside an
/// expression, so no SET says so), then writes text that is one harmless SELECT as drbot last
/// knew the setting and a DROP plus a COMMIT to the server. It is refused, nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_reads_as_a_commit_under_the_other_string_setting_is_refused() {
    let db = TestDb::new("drbot_scs_");
    db.psql(PRECIOUS);
    let before = db.dump();
    let sql = "SET standard_conforming_strings = off;
SELECT 1, pg_catalog.set_config('standard_conforming_strings', 'on', false);
SELECT 'a\\'; DROP TABLE precious; COMMIT; --';
";
    let e = load_sql(&db, sql).await.expect_err("must be refused");
    assert!(e.contains("line 3"), "{e}");
    assert!(
        e.contains("standard_conforming_strings the other way"),
        "{e}"
    );
    assert_same_dump(&before, &db.dump(), "string-setting trick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_panics_or_fails_never_commits() {
    let db = TestDb::new("drbot_reader_");
    db.psql(PRECIOUS);
    let before = db.dump();

    // A decode thread that panics after the DROP, and one whose reader fails: both roll back.
    let sql = format!(
        "DROP TABLE precious;\nSELECT 1;\n{}\n",
        "-- padding ".repeat(10)
    );
    for panic in [true, false] {
        let r = load_bytes(
            &db.url(),
            Box::new(Breaking {
                data: io::Cursor::new(sql.clone().into_bytes()),
                panic,
            }),
            LoadOptions::default(),
        )
        .await;
        let e = r.expect_err("must fail");
        let at = format!("after {} bytes of SQL", sql.len());
        if panic {
            assert!(e.contains("stopped unexpectedly") && e.contains(&at), "{e}");
        } else {
            assert!(e.contains("corrupt block") && e.contains(&at), "{e}");
        }
        assert_same_dump(&before, &db.dump(), "reader failure");
    }

    // A channel that closes without the final "complete" message rolls back too.
    let target = Target::new("t", db.url());
    let client = target.connect().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Msg::Found(Vec::new(), pipeline::Format::Plain))
        .await
        .unwrap();
    tx.send(Msg::Pieces(vec![statement("DROP TABLE precious", 1)]))
        .await
        .unwrap();
    drop(tx);
    let counters = Arc::new(Counters::default());
    let e = load::load(&client, &target, rx, &counters, &LoadOptions::default())
        .await
        .expect_err("no complete message");
    assert!(matches!(e, load::LoadError::Backup(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("without saying the backup was complete"),
        "{e}"
    );
    assert_same_dump(&before, &db.dump(), "closed channel");

    // `\connect` to the same database is fine, and `\connect - ROLE` runs what follows as ROLE.
    let loaded = load_sql(
        &db,
        &format!(
            "\\connect {}\n\\connect - postgres\nCREATE TABLE made_as (a int);\nDROP TABLE made_as;\n",
            db.name
        ),
    )
    .await;
    assert!(loaded.is_ok(), "{loaded:?}");
    assert_same_dump(&before, &db.dump(), "connect");

    // The issue's reproduction: a malformed `COPY FROM stdin;` after a DROP no longer panics
    // the splitter; the server refuses it and everything is rolled back.
    let e = load_sql(&db, "DROP TABLE precious;\nCOPY FROM stdin;\n1\n\\.\n")
        .await
        .expect_err("bad COPY");
    assert!(e.contains("line 2"), "{e}");
    assert_same_dump(&before, &db.dump(), "malformed COPY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_would_end_the_transaction_are_refused_before_anything_runs() {
    let s = setup().await;
    s.target.psql(PRECIOUS);
    let before = s.target.dump();
    let cases = [
        (
            "COMMIT;",
            "COMMIT would make everything before it permanent",
        ),
        ("END;", "COMMIT would make"),
        ("ROLLBACK;", "ROLLBACK would undo"),
        ("BEGIN;\nDROP TABLE x;\nCOMMIT;", "only large-object writes"),
        ("SAVEPOINT a;", "savepoints are drbot's"),
        ("PREPARE TRANSACTION 'p';", "two-phase"),
        ("CREATE DATABASE evil;", "CREATE/DROP/ALTER DATABASE"),
        ("DROP DATABASE postgres;", "CREATE/DROP/ALTER DATABASE"),
        (
            "CREATE INDEX CONCURRENTLY i ON precious (x);",
            "CONCURRENTLY",
        ),
        ("REINDEX TABLE CONCURRENTLY precious;", "CONCURRENTLY"),
        ("VACUUM precious;", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '1GB';", "ALTER SYSTEM"),
        (
            "COPY precious FROM PROGRAM 'id';",
            "no server files or programs",
        ),
        ("\\connect postgres", "another database (postgres)"),
    ];
    for (i, (bad, says)) in cases.iter().enumerate() {
        let sql = format!("DROP TABLE precious;\n{bad}\nSELECT 1;\n");
        // Straight into the loader: refused when reached, the DROP before it rolled back.
        let e = load_sql(&s.target, &sql).await.expect_err(bad);
        assert!(e.contains("line 2") && e.contains(says), "{bad}: {e}");
        assert_same_dump(&before, &s.target.dump(), bad);
        // Through the command: the preflight refuses it; no approval is asked for.
        let key = format!("db/escape{i}.sql");
        put(&s.bucket, &key, sql.into_bytes()).await;
        let r = s
            .run(&format!("/db restore backup:{key} target:staging"))
            .await;
        assert_eq!(r.outcome, Outcome::Failed, "{bad}: {}", r.text);
        assert!(
            r.text.contains("The preflight of") && r.text.contains("line 2"),
            "{}",
            r.text
        );
        assert!(r.text.contains("is void: nothing was run"), "{}", r.text);
    }
    nothing_can_run(&s.engine);
    assert_same_dump(&before, &s.target.dump(), "after all");

    // pg_dump's own BEGIN … COMMIT around large objects is folded into the one transaction.
    s.source
        .psql("CREATE TABLE t (a int); SELECT lo_from_bytea(0, 'hello');");
    let key = s
        .upload("blobs.sql", &format!("{} | cat", s.dump_cmd()))
        .await;
    let r = s
        .approved(&format!("/db restore backup:{key} target:staging"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let n = sh(&format!(
        "psql -tA -X '{}' -c \"SELECT count(*) FROM pg_largeobject_metadata\"",
        s.target.url()
    ));
    assert_eq!(n.trim(), "1");
}

const PARTITIONED: &str = "
CREATE TABLE m (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX m_v ON m (v);
CREATE UNIQUE INDEX m_uv ON m (v, at);
CREATE TABLE ref (id int PRIMARY KEY, mid int, mat date, FOREIGN KEY (mid, mat) REFERENCES m (id, at));
CREATE TABLE par (id serial PRIMARY KEY, note text);
CREATE TABLE chi (extra int) INHERITS (par);
CREATE TABLE h (id int PRIMARY KEY, k text) PARTITION BY HASH (id);
CREATE TABLE h0 PARTITION OF h FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE h1 PARTITION OF h FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO m VALUES (1, '2024-02-02', 'a'), (2, '2025-02-02', 'b');
INSERT INTO ref VALUES (1, 1, '2024-02-02');
INSERT INTO par (note) VALUES ('p'); INSERT INTO chi (note, extra) VALUES ('c', 1);
INSERT INTO h SELECT g, g::text FROM generate_series(1, 20) g;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_the_populated_source_leaves_it_identical() {
    let s = setup().await;
    s.source.psql(PARTITIONED);
    s.source.psql(crate::database::FIXTURE);
    let before = s.source.dump();
    let plain = s
        .upload(
            "2026-11-25T10-00-00Z.sql.xz.age",
            &format!("{} | xz | {}", s.dump_cmd(), s.age()),
        )
        .await;
    let custom = s
        .upload("custom.dump", &format!("pg_dump -Fc '{}'", s.source.url()))
        .await;
    // Something made after the backup was taken, in a schema the restore writes into.
    s.source
        .psql("CREATE TABLE made_since (x int); INSERT INTO made_since VALUES (7);");
    for key in [&plain, &custom] {
        let r = s
            .approved(&format!("/db restore backup:{key} target:source"))
            .await;
        assert_eq!(r.outcome, Outcome::Done, "{key}: {}", r.text);
        assert!(
            r.text.contains("were moot once the others had run"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains(
                "created since it was taken; left as they are): public.made_since (table)"
            ),
            "{}",
            r.text
        );
        assert!(r.text.contains("Verify source: PASS"), "{}", r.text);
        s.source.psql("DROP TABLE made_since;");
        assert_same_dump(&before, &s.source.dump(), key);
        s.source
            .psql("CREATE TABLE made_since (x int); INSERT INTO made_since VALUES (7);");
    }
    // A view made since on a restored table is not dropped behind anyone's back: the restore
    // fails on pg_dump's DROP, names the view, and changes nothing.
    s.source
        .psql("CREATE VIEW made_since_v AS SELECT * FROM public.m;");
    let with_view = s.source.dump();
    let r = s
        .approved(&format!("/db restore backup:{plain} target:source"))
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(r.text.contains("made_since_v"), "{}", r.text);
    assert_same_dump(&with_view, &s.source.dump(), "dependent view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_format_failure_mid_way_leaves_the_target_unchanged() {
    let s = setup().await;
    s.source.psql(PARTITIONED);
    s.target.psql(PRECIOUS);
    let before = s.target.dump();
    let file = s.work.path().join("c.dump");
    sh(&format!(
        "pg_dump -Fc -f {} '{}'",
        file.display(),
        s.source.url()
    ));
    let bytes = std::fs::read(&file).unwrap();
    // Cut in the data: pg_restore has already written the DROPs and CREATEs when it fails.
    let cut = bytes[..bytes.len() * 9 / 10].to_vec();
    let e = load_bytes(
        &s.target.url(),
        Box::new(io::Cursor::new(cut.clone())),
        LoadOptions::default(),
    )
    .await
    .expect_err("truncated archive");
    assert!(
        e.contains(&format!(
            "the backup ends early: its custom-format archive stops after {} bytes",
            cut.len()
        )),
        "{e}"
    );
    assert_same_dump(&before, &s.target.dump(), "custom cut");
    // Through the command, the preflight finds it before an approval is asked for.
    put(&s.bucket, "db/cut.dump", cut).await;
    let r = s.run("/db restore backup:cut.dump target:staging").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("The preflight of db/cut.dump"),
        "{}",
        r.text
    );
    // A whole one, written to a seekable file, restores.
    let key = s
        .upload("whole.dump", &format!("cat {}", file.display()))
        .await;
    let r = s
        .approved(&format!("/db restore backup:{key} target:staging"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("custom format"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_the_application_bounds_the_wait_and_names_the_session() {
    let key = crate::support::age_key();
    let bucket = crate::support::bucket("drbot-lock-").await;
    let target = TestDb::new("drbot_lock_");
    target.psql(PRECIOUS);
    let before = target.dump();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[restore]\nlock_wait_secs = 3\n",
        config_text(&bucket, &key)
    );
    let engine = engine_with(
        dir.path(),
        &config,
        env_map(moto(), &target.url(), &target.url()),
    );
    put(
        &bucket,
        "db/drop.sql",
        b"DROP TABLE precious;\nCREATE TABLE precious (y int);\n".to_vec(),
    )
    .await;
    // The application, still running: a transaction that read the table and stays open.
    let (app, conn) = tokio_postgres::connect(
        &format!("{PG}/{}?application_name=platform-api", target.name),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let app_pid: i32 = app
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    app.batch_execute("BEGIN; SELECT count(*) FROM precious;")
        .await
        .unwrap();

    let progress = Collect::default();
    let r = engine
        .run_with(
            &commander(),
            "/db restore backup:drop.sql target:staging",
            &progress,
        )
        .await;
    let Outcome::AwaitingApproval(_) = r.outcome else {
        panic!("{}", r.text)
    };
    // The preflight lists who is connected.
    assert!(
        r.text
            .contains(&format!("pid {app_pid} (application platform-api")),
        "{}",
        r.text
    );
    let started = std::time::Instant::now();
    let r = approved_with(
        &engine,
        "/db restore backup:drop.sql target:staging",
        &progress,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(r.text.contains("lock_wait_secs"), "{}", r.text);
    assert!(
        r.text.contains(&format!("pid {app_pid} (application platform-api, user postgres, idle in transaction: `BEGIN; SELECT count(*) FROM precious;`)")),
        "{}",
        r.text
    );
    assert!(r.text.contains("/step done step:stop-apps"), "{}", r.text);
    let lines = progress.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("waiting for a lock held by pid")),
        "{lines:?}"
    );
    app.batch_execute("ROLLBACK").await.unwrap();
    assert_same_dump(&before, &target.dump(), "lock wait");
}

/// Drops test roles (and what they own in the target) when the test ends, passed or not.
struct DropRoles {
    db: String,
    roles: Vec<String>,
}

impl Drop for DropRoles {
    fn drop(&mut self) {
        for r in &self.roles {
            let _ = std::process::Command::new("psql")
                .args([
                    "-q",
                    "-X",
                    &self.db,
                    "-c",
                    &format!("DROP OWNED BY \"{r}\""),
                ])
                .output();
            let _ = std::process::Command::new("psql")
                .args([
                    "-q",
                    "-X",
                    &format!("{PG}/postgres"),
                    "-c",
                    &format!("DROP ROLE IF EXISTS \"{r}\""),
                ])
                .output();
        }
    }
}

/// A dump of a Supabase app's `public` schema names `auth.users` and `auth.uid()`; into a
/// database without that schema the restore could not succeed, and the preflight says why
/// before anyone approves. When the dump installs an extension the target lacks (which may make
/// the schema), it is said, not blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_a_dump_uses_but_never_creates_are_named_before_approval() {
    let s = setup().await;
    let sql = "SET lock_timeout = 0;
CREATE TABLE public.posts (id int PRIMARY KEY, user_id uuid);
ALTER TABLE ONLY public.posts ADD CONSTRAINT posts_user FOREIGN KEY (user_id) REFERENCES auth.users(id);
ALTER TABLE public.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.posts USING ((user_id = auth.uid()));
";
    let before = s.target.dump();
    put(&s.bucket, "db/app.sql", sql.as_bytes().to_vec()).await;
    let r = s.run("/db restore backup:app.sql target:staging").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains(
            "the backup needs what staging lacks: schemas auth (the backup uses them but does not create them)"
        ),
        "{}",
        r.text
    );
    nothing_can_run(&s.engine);
    assert_same_dump(&before, &s.target.dump(), "schema missing");
    // With the schema created by the dump itself, nothing is missing.
    let whole = format!(
        "CREATE SCHEMA auth;\nCREATE TABLE auth.users (id uuid PRIMARY KEY);\nCREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid';\n{sql}"
    );
    put(&s.bucket, "db/whole.sql", whole.into_bytes()).await;
    let r = s
        .approved("/db restore backup:whole.sql target:staging")
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    // An extension the target lacks may create it: said, and the approval is still asked for.
    s.target.recreate();
    let with_extension = format!("CREATE EXTENSION IF NOT EXISTS pgcrypto;\n{sql}");
    put(&s.bucket, "db/ext.sql", with_extension.into_bytes()).await;
    let r = s.run("/db restore backup:ext.sql target:staging").await;
    assert!(
        matches!(r.outcome, Outcome::AwaitingApproval(_)),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("uses schemas auth that neither the backup nor staging has (the extensions it installs, pgcrypto, may create them"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supabase_shaped_dump_is_refused_naming_every_missing_role_and_extension() {
    let s = setup().await;
    let sql = "SET lock_timeout = 0;
CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pgsodium;
CREATE EXTENSION IF NOT EXISTS supabase_vault WITH SCHEMA public;
CREATE TABLE public.profiles (id int PRIMARY KEY, name text);
ALTER TABLE public.profiles OWNER TO supabase_admin;
GRANT ALL ON TABLE public.profiles TO anon;
GRANT ALL ON TABLE public.profiles TO authenticated;
GRANT ALL ON TABLE public.profiles TO service_role;
";
    let before = s.target.dump();
    put(&s.bucket, "db/supabase.sql", sql.as_bytes().to_vec()).await;
    let r = s
        .run("/db restore backup:supabase.sql target:staging")
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    for name in [
        "anon",
        "authenticated",
        "service_role",
        "supabase_admin",
        "pg_graphql",
        "pgsodium",
        "supabase_vault",
    ] {
        assert!(r.text.contains(name), "{name}: {}", r.text);
    }
    assert!(r.text.contains("create_missing_roles = true"), "{}", r.text);
    nothing_can_run(&s.engine);

    // Without the extensions, and with create_missing_roles, the roles are made inside the
    // restore's transaction (so a failed restore leaves none behind).
    let roles_sql = sql
        .lines()
        .filter(|l| !l.contains("EXTENSION"))
        .collect::<Vec<_>>()
        .join("\n");
    let suffix = crate::support::unique("r").to_lowercase();
    let mut roles_sql = roles_sql;
    for role in ["anon", "authenticated", "service_role", "supabase_admin"] {
        roles_sql = roles_sql.replace(role, &format!("{role}_{suffix}"));
    }
    let failing = format!("{roles_sql}\nSELECT no_such_function();\n");
    put(&s.bucket, "db/roles.sql", roles_sql.clone().into_bytes()).await;
    put(&s.bucket, "db/roles-fail.sql", failing.into_bytes()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_text(&s.bucket, &s.key).replace(
        "url_env = \"STAGING_URL\"",
        "url_env = \"STAGING_URL\"\ncreate_missing_roles = true",
    );
    let e = engine_with(
        dir.path(),
        &config,
        env_map(moto(), &s.source.url(), &s.target.url()),
    );
    let anon = format!("anon_{suffix}");
    // Roles are the cluster's, not the database's: whatever happens, they go again.
    let _roles = DropRoles {
        db: s.target.url(),
        roles: ["anon", "authenticated", "service_role", "supabase_admin"]
            .map(|r| format!("{r}_{suffix}"))
            .to_vec(),
    };
    let role_exists = |name: &str| {
        sh(&format!("psql -tA -X '{PG}/postgres' -c \"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'\"")).trim() == "1"
    };
    let r = approved_with(
        &e,
        "/db restore backup:roles-fail.sql target:staging",
        &drbot_commands::progress::NoProgress,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(!role_exists(&anon), "a rolled-back restore left its role");
    assert_same_dump(&before, &s.target.dump(), "roles rolled back");
    let asked = e
        .run(&commander(), "/db restore backup:roles.sql target:staging")
        .await;
    assert!(
        asked.text.contains(&format!("will create roles {anon}")),
        "{}",
        asked.text
    );
    let r = approved_with(
        &e,
        "/db restore backup:roles.sql target:staging",
        &drbot_commands::progress::NoProgress,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "Created the roles the backup needs (NOLOGIN): supabase_admin_{suffix}, {anon}, authenticated_{suffix}, service_role_{suffix}."
        )),
        "{}",
        r.text
    );
    assert!(role_exists(&anon));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_values_set_before_a_failure_are_put_back() {
    let db = TestDb::new("drbot_seq_");
    db.psql("CREATE TABLE t (id serial PRIMARY KEY); SELECT setval('t_id_seq', 100); CREATE SEQUENCE untouched;");
    let e = load_sql(
        &db,
        "SELECT pg_catalog.setval('public.t_id_seq', 500, true);\nSELECT pg_catalog.setval('public.untouched', 9, true);\nSELECT no_such_function();\n",
    )
    .await
    .expect_err("fails");
    assert!(
        e.contains("The 2 sequence value(s) it had set were put back"),
        "{e}"
    );
    let next = sh(&format!(
        "psql -tA -X '{}' -c \"SELECT nextval('t_id_seq'), nextval('untouched')\"",
        db.url()
    ));
    assert_eq!(next.trim(), "101|1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_copy_is_named_by_table_and_line_never_by_its_data() {
    let db = TestDb::new("drbot_copy_");
    db.psql(PRECIOUS);
    let before = db.dump();
    let sql = "DROP TABLE precious;\nCREATE TABLE precious (id int PRIMARY KEY, secret text);\nCOPY public.precious (id, secret) FROM stdin;\n1\thunter2-first\nnotanumber\thunter2-second\n\\.\n";
    let e = load_sql(&db, sql).await.expect_err("bad row");
    assert!(
        e.contains("loading public.precious (COPY at line 3)"),
        "{e}"
    );
    assert!(
        e.contains("data row 2 (line 5 of the dump), column id"),
        "{e}"
    );
    assert!(e.contains("22P02"), "{e}");
    assert!(!e.contains("hunter2") && !e.contains("notanumber"), "{e}");
    let dup = "DROP TABLE precious;\nCREATE TABLE precious (id int PRIMARY KEY, secret text);\nCOPY public.precious (id, secret) FROM stdin;\n7\thunter2-a\n7\thunter2-b\n\\.\n";
    let e = load_sql(&db, dup).await.expect_err("duplicate");
    assert!(
        e.contains("duplicate key (23505), constraint precious_pkey"),
        "{e}"
    );
    assert!(!e.contains("hunter2") && !e.contains("=(7)"), "{e}");
    assert_same_dump(&before, &db.dump(), "copy errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_reads_the_whole_backup_before_anything_can_run() {
    let s: Setup = setup().await;
    s.source.psql(crate::database::FIXTURE);
    let good = s
        .upload(
            "good.sql.xz.age",
            &format!("{} | xz | {}", s.dump_cmd(), s.age()),
        )
        .await;
    let bytes = std::fs::read(s.work.path().join("good.sql.xz.age")).unwrap();
    put(
        &s.bucket,
        "db/cut.sql.xz.age",
        bytes[..bytes.len() / 2].to_vec(),
    )
    .await;
    let r = s
        .run("/db restore backup:cut.sql.xz.age target:staging")
        .await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text
            .contains("The preflight of db/cut.sql.xz.age for staging failed"),
        "{}",
        r.text
    );
    nothing_can_run(&s.engine);
    let r: Reply = s
        .run(&format!("/db restore backup:{good} target:staging"))
        .await;
    let Outcome::AwaitingApproval(id) = &r.outcome else {
        panic!("{}", r.text)
    };
    assert!(
        r.text.contains("backup read whole and complete:") && r.text.contains("4 tables, 12 rows"),
        "{}",
        r.text
    );
    let req = s
        .engine
        .store()
        .approval(id.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(req.status, ApprovalStatus::Pending);
    assert!(
        req.summary.contains("read whole and complete"),
        "{}",
        req.summary
    );
}

#[test]
fn exec_waits_for_the_preflight_with_progress_on_stderr() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = crate::support::age_key();
    let (bucket, target) = rt.block_on(async {
        let b = crate::support::bucket("drbot-exec-pre-").await;
        put(&b, "db/good.sql", b"CREATE TABLE t (a int);\n".to_vec()).await;
        put(
            &b,
            "db/bad.sql",
            b"CREATE TABLE t (a int);\nCOMMIT;\n".to_vec(),
        )
        .await;
        (b, TestDb::new("drbot_exec_pre_"))
    });
    let d = crate::support::Drbot::new(&config_text(&bucket, &key));
    let run = |line: &str| {
        let out = d
            .command()
            .args(["exec", line])
            .envs(env_map(moto(), &target.url(), &target.url()))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run("/db restore backup:good.sql target:staging");
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Checking db/good.sql (24 B) while the request waits"),
        "{stderr}"
    );
    // The request is there (and can be approved) before its preflight has read the backup.
    let posted = stderr.find("approval request A-").expect("posted");
    assert!(
        posted < stderr.find("Checking db/good.sql").unwrap(),
        "{stderr}"
    );
    assert!(
        stdout.contains("backup read whole and complete"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run("/db restore backup:bad.sql target:staging");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("line 2: `COMMIT` is refused"), "{stdout}");
    assert!(!stdout.contains("approval request"), "{stdout}");
}
