//! Benchmark: drbot's `/db restore` and `/db backup` against the runbook's own procedure,
//! on the same ≥100 MB dump, same machine, interleaved runs.
//!
//! The backup is compressed as drbot's own are (xz -6 in 4 MiB blocks; `xz -d` decodes it on
//! one thread, drbot on the cores).
//! Restore: `aws s3 cp` to disk, then `age -d | xz -d | psql -1` — versus
//! `drbot exec '/db restore backup:latest target:bench'` then another person's `/approve`
//! (only the approval, which runs the restore, is timed).
//! Backup: `pg_dump | xz -6 | age | aws s3 cp -` — versus `drbot exec '/db backup'`.
//! Reports medians, their ratio (drbot / runbook; below 1 is faster) and drbot's peak RSS.
//! Also: drbot's restore against `psql -1 -f` of the same SQL from a local file (the cost of
//! streaming and of drbot's rules, target ≤ 1.05×), and the preflight (the whole backup read
//! when the restore is asked for) against the restore; and a dump of single-row INSERTs, where
//! every statement is parsed with PostgreSQL's grammar, against `psql -1 -f` of it.
//!
//! Run: `cargo bench -p drbot --bench restore` (needs PostgreSQL on 127.0.0.1:5432, moto_server,
//! age, xz, the AWS CLI and /usr/bin/time). DRBOT_BENCH_ROWS, DRBOT_BENCH_ROUNDS,
//! DRBOT_BENCH_INSERT_ROWS and DRBOT_BENCH_BACKUP_ROUNDS resize it; DRBOT_BENCH_ONLY=staged runs
//! the staged section alone, DRBOT_BENCH_ONLY=served the request-to-restored section alone.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support.rs"]
mod support;
#[path = "support/timed.rs"]
mod timed;

use std::time::Instant;

use support::{Drbot, TestDb, age_key, bucket, moto, sh};
use timed::{drbot_timed, env_num, median};

/// Asks for a restore as alice (timed apart: the preflight reads the whole backup), then times
/// bob's approval, which runs it. Returns (preflight s, restore s, peak RSS KiB).
fn drbot_restore(d: &Drbot, backup: &str, env: &[(&str, String)]) -> (f64, f64, u64) {
    let (pre, pre_rss, out) = drbot_timed(
        d,
        "alice",
        &format!("/db restore backup:{backup} target:bench"),
        env,
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
        .expect("approval request line")
        .to_string();
    let (secs, rss, _) = drbot_timed(d, "bob", &format!("/approve request:{id}"), env);
    (pre, secs, rss.max(pre_rss))
}

/// drbot's decoder and loader in this process on a local SQL file, connection included — the
/// restore itself, against psql on the same file.
fn drbot_load_local(rt: &tokio::runtime::Runtime, path: &str, url: &str) -> f64 {
    use drbot_commands::pg::Target;
    use drbot_commands::scenarios::database::{load, pipeline};
    use std::sync::Arc;
    rt.block_on(async {
        let t = Instant::now();
        let target = Target::new("bench", url);
        let client = target.connect().await.expect("connect");
        let counters = Arc::new(pipeline::Counters::default());
        let file = std::fs::File::open(path).expect("open the dump");
        let rx = pipeline::decode(
            Box::new(file),
            Arc::new(pipeline::Identities::none()),
            counters.clone(),
        );
        load::load(
            &client,
            &target,
            rx,
            &counters,
            &load::LoadOptions::default(),
        )
        .await
        .expect("load");
        t.elapsed().as_secs_f64()
    })
}

/// drbot's decoder alone on a local backup (age → xz → split), every piece dropped: what
/// reading it costs before any rule. Returns seconds.
fn drbot_decode_local(rt: &tokio::runtime::Runtime, path: &str, ids: &str) -> f64 {
    use drbot_commands::scenarios::database::pipeline;
    use std::sync::Arc;
    rt.block_on(async {
        let t = Instant::now();
        let ids = pipeline::Identities::load(std::path::Path::new(ids)).expect("identities");
        let counters = Arc::new(pipeline::Counters::default());
        let file = std::fs::File::open(path).expect("open the backup");
        let mut rx = pipeline::decode(Box::new(file), Arc::new(ids), counters);
        loop {
            match rx.recv().await {
                Some(pipeline::Msg::Complete) => break,
                Some(pipeline::Msg::Failed(e)) => panic!("{e}"),
                None => panic!("the reader stopped"),
                Some(_) => {}
            }
        }
        t.elapsed().as_secs_f64()
    })
}

/// drbot's preflight reading on a local backup: the decoder and the restore's rules over
/// every statement. Returns seconds.
fn drbot_preflight_local(rt: &tokio::runtime::Runtime, path: &str, ids: &str) -> f64 {
    use drbot_commands::progress::NoProgress;
    use drbot_commands::scenarios::database::{pipeline, preflight};
    use std::sync::Arc;
    rt.block_on(async {
        let t = Instant::now();
        let ids = pipeline::Identities::load(std::path::Path::new(ids)).expect("identities");
        let counters = Arc::new(pipeline::Counters::default());
        let file = std::fs::File::open(path).expect("open the backup");
        let rx = pipeline::decode(Box::new(file), Arc::new(ids), counters.clone());
        preflight::read(rx, &counters, None, &NoProgress, "bench")
            .await
            .expect("preflight");
        t.elapsed().as_secs_f64()
    })
}

/// `drbot serve` on `d`'s data directory, with `env`; returns it once it listens.
fn serve(d: &Drbot, env: &[(&str, String)]) -> std::process::Child {
    use std::io::BufRead;
    let mut c = d.command();
    c.arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("start serve");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert!(line.contains("listening on"), "{line}");
    std::thread::spawn(move || for _ in out.lines() {});
    child
}

/// Peak RSS of a running process, KiB.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Under `drbot serve`: alice asks for the restore, bob approves 1 s after she asked (while
/// the preflight reads the backup), and the clock stops when the restore is done — request to
/// restored, as an on-call engineer sees it. Returns seconds.
fn drbot_request_to_restored(d: &Drbot, backup: &str, env: &[(&str, String)]) -> f64 {
    use std::io::BufRead;
    let t = Instant::now();
    let mut c = d.command();
    c.args([
        "exec",
        "--as",
        "alice",
        &format!("/db restore backup:{backup} target:bench"),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut alice = c.spawn().expect("alice asks");
    let err = std::io::BufReader::new(alice.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("approval request ").nth(1) {
                let id: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(id.trim_end_matches(':').to_string());
            }
        }
    });
    let id = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the request is posted");
    if let Some(wait) = std::time::Duration::from_secs(1).checked_sub(t.elapsed()) {
        std::thread::sleep(wait);
    }
    let (_, _, approved) = drbot_timed(d, "bob", &format!("/approve request:{id}"), env);
    let out = alice.wait_with_output().expect("alice's reply");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("Restored ") || approved.contains("Restored "),
        "{said}\n{approved}"
    );
    t.elapsed().as_secs_f64()
}

/// drbot's staged load in this process on a local SQL file into an empty database: the rows
/// dealt out to `sessions` sessions. Seconds.
fn drbot_load_staged_local(
    rt: &tokio::runtime::Runtime,
    path: &str,
    url: &str,
    sessions: usize,
) -> f64 {
    use drbot_commands::pg::Target;
    use drbot_commands::scenarios::database::{load, pipeline};
    use std::sync::Arc;
    rt.block_on(async {
        let t = Instant::now();
        let target = Target::new("bench", url);
        let client = target.connect().await.expect("connect");
        let counters = Arc::new(pipeline::Counters::default());
        let file = std::fs::File::open(path).expect("open the dump");
        let rx = pipeline::decode(
            Box::new(file),
            Arc::new(pipeline::Identities::none()),
            counters.clone(),
        );
        let options = load::LoadOptions {
            parallel: sessions,
            ..load::LoadOptions::default()
        };
        load::load(&client, &target, rx, &counters, &options)
            .await
            .expect("load");
        t.elapsed().as_secs_f64()
    })
}

/// Drops the databases drbot kept or staged beside `live`.
fn drop_beside(live: &str) {
    let names = sh(&format!(
        "psql -At -X '{}/postgres' -c \"SELECT datname FROM pg_database WHERE starts_with(datname, '{live}_')\"",
        support::PG
    ));
    for n in names.lines().filter(|l| !l.is_empty()) {
        sh(&format!(
            "psql -q -X '{}/postgres' -c 'DROP DATABASE \"{n}\" WITH (FORCE)'",
            support::PG
        ));
    }
}

/// What every section of the bench shares.
#[derive(Clone, Copy)]
struct Bench<'a> {
    rt: &'a tokio::runtime::Runtime,
    d: &'a Drbot,
    env: &'a [(&'a str, String)],
    /// The AWS CLI with moto's endpoint and keys.
    aws: &'a str,
    bucket_name: &'a str,
    key: &'a support::AgeKey,
    /// The work directory.
    w: &'a str,
    rounds: usize,
}

impl Bench<'_> {
    /// The runbook's procedure into `url`: download the backup, then
    /// `age -d | xz -d | psql -1`. Seconds.
    fn runbook(&self, url: &str) -> f64 {
        let w = self.w;
        timed(&format!(
            "{} s3 cp --quiet s3://{}/db/2026-01-01T00-00-00Z.sql.xz.age {w}/dl && \
             age -d -i {} {w}/dl | xz -d | psql -1 -q -X -v ON_ERROR_STOP=1 '{url}' > /dev/null && rm {w}/dl",
            self.aws,
            self.bucket_name,
            self.key.file.display()
        ))
    }
}

/// Staged restores: approval to recovered (the load ran while the request waited; bob
/// approves once it is loaded, which runs only the swap) against the runbook's procedure; the
/// staged load alone against `psql -1 -f` ingest alone and `pg_restore -j 2` of the same
/// database's custom-format dump, each into an empty database.
fn staged_bench(b: &Bench<'_>, source: &TestDb) {
    let Bench {
        rt,
        d,
        env,
        w,
        rounds,
        ..
    } = *b;
    // The sessions of the parallel staged load measured (drbot's default, 2).
    let sessions = env_num("DRBOT_BENCH_SESSIONS", 2);
    let live = TestDb::new("drbot_bench_live_");
    let scratch = TestDb::new("drbot_bench_scratch_");
    sh(&format!("pg_dump -Fc '{}' > {w}/custom.dump", source.url()));
    let config = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(
        d.config_path(),
        format!("{config}\n[targets.live]\nurl_env = \"LIVE_URL\"\nstaged = true\n"),
    )
    .unwrap();
    let mut env = env.to_vec();
    env.push(("LIVE_URL", live.url()));
    let (mut base, mut ask, mut swap, mut psql, mut ours1, mut ours2, mut pgr) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut rss = 0u64;
    for round in 0..rounds {
        for k in 0..6 {
            scratch.recreate();
            drop_beside(&live.name);
            match (round + k) % 6 {
                0 => base.push(b.runbook(&scratch.url())),
                1 => {
                    let (pre, pre_rss, out) =
                        drbot_timed(d, "alice", "/db restore backup:latest target:live", &env);
                    let id = out
                        .lines()
                        .find_map(|l| l.strip_prefix("approval request "))
                        .expect("approval request line")
                        .to_string();
                    let (secs, r, said) =
                        drbot_timed(d, "bob", &format!("/approve request:{id}"), &env);
                    assert!(said.contains("Swapped in"), "{said}");
                    ask.push(pre);
                    swap.push(secs);
                    rss = rss.max(r).max(pre_rss);
                }
                2 => psql.push(timed(&format!(
                    "psql -1 -q -X -v ON_ERROR_STOP=1 -f {w}/plain.sql '{}' > /dev/null",
                    scratch.url()
                ))),
                3 => ours2.push(drbot_load_staged_local(
                    rt,
                    &format!("{w}/plain.sql"),
                    &scratch.url(),
                    sessions,
                )),
                4 => ours1.push(drbot_load_staged_local(
                    rt,
                    &format!("{w}/plain.sql"),
                    &scratch.url(),
                    1,
                )),
                _ => pgr.push(timed(&format!(
                    "pg_restore -j 2 -d '{}' {w}/custom.dump",
                    scratch.url()
                ))),
            }
        }
        eprintln!("bench: staged round {} done", round + 1);
    }
    drop_beside(&live.name);
    let (mb, ma, ms, mp, m1, m2, mr) = (
        median(&mut base),
        median(&mut ask),
        median(&mut swap),
        median(&mut psql),
        median(&mut ours1),
        median(&mut ours2),
        median(&mut pgr),
    );
    println!(
        "staged: approval to recovered (the load done while the request waited; the approval runs the swap, process start included): runbook median {mb:.2} s, drbot median {ms:.2} s, ratio {:.3} (target <= 0.1); the request itself (the staged load, by exec) median {ma:.2} s; peak RSS {:.1} MiB",
        ms / mb,
        rss as f64 / 1024.0
    );
    println!(
        "staged load alone, in process from local SQL into an empty database: psql -1 -f median {mp:.2} s; drbot with {sessions} sessions {m2:.2} s, ratio {:.2} (target <= 0.7); with 1 session {m1:.2} s, ratio {:.2}; pg_restore -j 2 of the custom dump {mr:.2} s, ratio {:.2}",
        m2 / mp,
        m1 / mp,
        mr / mp
    );
}

fn timed(script: &str) -> f64 {
    let t = Instant::now();
    sh(script);
    t.elapsed().as_secs_f64()
}

/// Request to restored, under serve, bob approving 1 s after alice asked: against the
/// runbook's procedure; with the preflight's parts in process (decode alone, decode and the
/// rules) and the CLI's decode for scale.
fn served_bench(b: &Bench<'_>, target: &TestDb) {
    let Bench {
        rt,
        d,
        env,
        key,
        w,
        rounds,
        ..
    } = *b;
    let served = serve(d, env);
    // The same under a second serve that runs on glibc's allocator defaults (the variables
    // set, so drbot does not start itself again with its leaner ones): what they cost in time.
    let config = std::fs::read_to_string(d.config_path()).expect("config");
    let rest: String = config
        .lines()
        .filter(|l| !l.starts_with("data_dir"))
        .map(|l| format!("{l}\n"))
        .collect();
    let plain_alloc = Drbot::new(&rest);
    let mut alloc_env = env.to_vec();
    alloc_env.push(("MALLOC_ARENA_MAX", "16".to_string()));
    let served_plain = serve(&plain_alloc, &alloc_env);
    let (mut base2, mut r2r, mut dec, mut pre_in, mut cli_dec, mut r2r_plain) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let ids = key.file.display().to_string();
    let local_backup = format!("{w}/backup.sql.xz.age");
    for round in 0..rounds {
        for k in 0..6 {
            target.recreate();
            match (round + k) % 6 {
                0 => base2.push(b.runbook(&target.url())),
                1 => r2r.push(drbot_request_to_restored(d, "latest", env)),
                2 => dec.push(drbot_decode_local(rt, &local_backup, &ids)),
                3 => pre_in.push(drbot_preflight_local(rt, &local_backup, &ids)),
                4 => r2r_plain.push(drbot_request_to_restored(&plain_alloc, "latest", env)),
                _ => cli_dec.push(timed(&format!(
                    "age -d -i {ids} {local_backup} | xz -d -T0 > /dev/null"
                ))),
            }
        }
        eprintln!("bench: request-to-restored round {} done", round + 1);
    }
    let serve_rss = peak_rss(served.id());
    let plain_rss = peak_rss(served_plain.id());
    for mut s in [served, served_plain] {
        let _ = std::process::Command::new("kill")
            .arg(s.id().to_string())
            .status();
        let _ = s.wait();
    }
    let mp2 = median(&mut r2r_plain);
    let (mb2, mr, md, mpi, mc) = (
        median(&mut base2),
        median(&mut r2r),
        median(&mut dec),
        median(&mut pre_in),
        median(&mut cli_dec),
    );
    println!(
        "request to restored under serve, approved 1 s after the request (the preflight running meanwhile): runbook median {mb2:.2} s, drbot median {mr:.2} s, ratio {:.2} (target <= 0.85); serve's peak RSS {:.1} MiB",
        mr / mb2,
        serve_rss as f64 / 1024.0
    );
    println!(
        "the same on glibc's allocator defaults (no MALLOC_ARENA_MAX=2 re-exec): drbot median {mp2:.2} s, ratio {:.2}; that serve's peak RSS {:.1} MiB",
        mp2 / mb2,
        plain_rss as f64 / 1024.0
    );
    println!(
        "the preflight's parts, in process on the local backup: decode alone (age, xz, split) median {md:.2} s, with the restore's rules {mpi:.2} s; age -d | xz -d -T0 > /dev/null median {mc:.2} s"
    );
}

fn main() {
    let rows = env_num("DRBOT_BENCH_ROWS", 700_000);
    let rounds = env_num("DRBOT_BENCH_ROUNDS", 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = moto().to_string();
    let bucket_name = rt.block_on(bucket("drbot-bench-"));
    let key = age_key();
    let source = TestDb::new("drbot_bench_src_");
    let target = TestDb::new("drbot_bench_tgt_");
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();

    eprintln!("bench: generating {rows} rows…");
    source.psql(&format!(
        "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz, kind text, payload jsonb, note text);
         INSERT INTO events SELECT g, timestamptz '2026-01-01' - g * interval '1 second',
           (ARRAY['view','click','buy'])[1 + g % 3],
           jsonb_build_object('user', g % 10000, 'v', md5(g::text)),
           md5((g * 7)::text) || ' ' || md5((g * 13)::text)
         FROM generate_series(1, {rows}) g;
         CREATE INDEX events_at ON events (at);
         CREATE TABLE users (id int PRIMARY KEY, name text);
         INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 10000) g;"
    ));
    let aws = format!(
        "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url {endpoint}"
    );
    let dump = format!("pg_dump --clean --if-exists '{}'", source.url());
    sh(&format!("{dump} > {w}/plain.sql"));
    let plain = std::fs::metadata(format!("{w}/plain.sql")).unwrap().len();
    eprintln!(
        "bench: plain dump is {:.1} MB; compressing…",
        plain as f64 / 1e6
    );
    sh(&format!(
        "xz -6 -T0 --block-size=4MiB < {w}/plain.sql | age -r {} > {w}/backup.sql.xz.age && \
         {aws} s3 cp --quiet {w}/backup.sql.xz.age s3://{bucket_name}/db/2026-01-01T00-00-00Z.sql.xz.age",
        key.recipient
    ));
    // The same SQL, stored as it is: drbot's loader against psql's, decompression aside.
    sh(&format!(
        "{aws} s3 cp --quiet {w}/plain.sql s3://{bucket_name}/plain/dump.sql"
    ));
    let stored = std::fs::metadata(format!("{w}/backup.sql.xz.age"))
        .unwrap()
        .len();

    let d = Drbot::new(&format!(
        "[targets.bench]\nurl_env = \"BENCH_URL\"\n[targets.source]\nurl_env = \"SOURCE_URL\"\n\
         [storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{bucket_name}\"\n\
         [backup]\nage_identity_file = \"{}\"\nage_recipients = [\"{}\"]\nxz_level = 6\n\
         [people.alice]\nroles = [\"commander\"]\n[people.bob]\nroles = [\"approver\"]\n\
         [console]\ntrust_as = true\n",
        key.file.display(),
        key.recipient
    ));
    let env = [
        ("R2_ENDPOINT", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("BENCH_URL", target.url()),
        ("SOURCE_URL", source.url()),
    ];

    let b = Bench {
        rt: &rt,
        d: &d,
        env: &env,
        aws: &aws,
        bucket_name: &bucket_name,
        key: &key,
        w: &w,
        rounds,
    };
    // DRBOT_BENCH_ONLY=staged: the staged section alone.
    if std::env::var("DRBOT_BENCH_ONLY").is_ok_and(|v| v == "staged") {
        staged_bench(&b, &source);
        return;
    }
    // DRBOT_BENCH_ONLY=served: request to restored under serve alone.
    if std::env::var("DRBOT_BENCH_ONLY").is_ok_and(|v| v == "served") {
        served_bench(&b, &target);
        return;
    }
    let mut in_process = Vec::new();
    let (mut base, mut local, mut ours, mut pre, mut plain_sql, mut rss) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        0u64,
    );
    for round in 0..rounds {
        // Five ways, their order rotated each round.
        for k in 0..5 {
            target.recreate();
            match (round + k) % 5 {
                0 => base.push(b.runbook(&target.url())),
                1 => local.push(timed(&format!(
                    "psql -1 -q -X -v ON_ERROR_STOP=1 -f {w}/plain.sql '{}' > /dev/null",
                    target.url()
                ))),
                2 => {
                    let (p, s, r) = drbot_restore(&d, "latest", &env);
                    pre.push(p);
                    ours.push(s);
                    rss = rss.max(r);
                }
                3 => in_process.push(drbot_load_local(
                    &rt,
                    &format!("{w}/plain.sql"),
                    &target.url(),
                )),
                _ => {
                    let (_, s, r) = drbot_restore(&d, "plain/dump.sql", &env);
                    plain_sql.push(s);
                    rss = rss.max(r);
                }
            }
        }
        eprintln!("bench: restore round {} done", round + 1);
    }
    let mi = median(&mut in_process);
    let (mb, ml, mo, mp, mq) = (
        median(&mut base),
        median(&mut local),
        median(&mut ours),
        median(&mut pre),
        median(&mut plain_sql),
    );
    println!(
        "restore: {:.1} MB SQL ({:.1} MB stored), {rounds} interleaved rounds: runbook median {mb:.1} s, drbot median {mo:.1} s, ratio {:.2}; drbot peak RSS {:.1} MiB",
        plain as f64 / 1e6,
        stored as f64 / 1e6,
        mo / mb,
        rss as f64 / 1024.0
    );
    println!(
        "the restore itself (drbot's decoder and loader, in process) vs psql -1 -f, both on the same local SQL file: psql median {ml:.2} s, drbot median {mi:.2} s, ratio {:.2} (target <= 1.05)",
        mi / ml
    );
    println!(
        "restore of the same SQL stored plain vs psql -1 -f of it on local disk: psql median {ml:.2} s, drbot median {mq:.2} s, ratio {:.2} (process start, download and the verification included)",
        mq / ml
    );
    println!(
        "restore of the xz+age backup vs that psql: drbot median {mo:.2} s, ratio {:.2} (decompression included)",
        mo / ml
    );
    println!(
        "preflight (asking for the restore: the whole xz+age backup read, the target looked at): median {mp:.2} s, {:.2} of the restore's time",
        mp / mo
    );

    served_bench(&b, &target);

    staged_bench(&b, &source);

    // Statement-heavy SQL: rows as INSERTs (pg_dump --inserts), where drbot parses every
    // statement with PostgreSQL's grammar; the same file through psql -1 -f.
    let insert_rows = env_num("DRBOT_BENCH_INSERT_ROWS", 100_000);
    source.psql(&format!(
        "DROP TABLE IF EXISTS events_inserts; CREATE TABLE events_inserts AS SELECT * FROM events ORDER BY id LIMIT {insert_rows};"
    ));
    sh(&format!(
        "pg_dump --inserts -t events_inserts '{}' > {w}/inserts.sql",
        source.url()
    ));
    let (mut psql_ins, mut ours_ins) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for first in [round % 2 == 0, round % 2 != 0] {
            target.recreate();
            if first {
                psql_ins.push(timed(&format!(
                    "psql -1 -q -X -v ON_ERROR_STOP=1 -f {w}/inserts.sql '{}' > /dev/null",
                    target.url()
                )));
            } else {
                ours_ins.push(drbot_load_local(
                    &rt,
                    &format!("{w}/inserts.sql"),
                    &target.url(),
                ));
            }
        }
    }
    let (mp, mo) = (median(&mut psql_ins), median(&mut ours_ins));
    println!(
        "{insert_rows} rows as single-row INSERTs (every statement parsed by drbot), drbot's loader vs psql -1 -f of the same file: psql median {mp:.2} s, drbot median {mo:.2} s, ratio {:.2}",
        mo / mp
    );

    // DRBOT_BENCH_BACKUP_ROUNDS=0 measures the restore alone.
    let backup_rounds = env_num("DRBOT_BENCH_BACKUP_ROUNDS", rounds);
    if backup_rounds == 0 {
        return;
    }
    // drbot as configured by default (each backup read back and verified), and without the
    // read-back, which the runbook's pipeline does not do either.
    let unverified = Drbot::new(&format!(
        "[targets.source]\nurl_env = \"SOURCE_URL\"\n\
         [storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{bucket_name}\"\n\
         [backup]\nage_identity_file = \"{}\"\nage_recipients = [\"{}\"]\nxz_level = 6\nverify_after_upload = false\n\
         [people.alice]\nroles = [\"commander\"]\n[console]\ntrust_as = true\n",
        key.file.display(),
        key.recipient
    ));
    let (mut base, mut ours, mut bare, mut brss, mut bare_rss) =
        (Vec::new(), Vec::new(), Vec::new(), 0u64, 0u64);
    for round in 0..backup_rounds {
        let order = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for which in order {
            match which {
                0 => base.push(timed(&format!(
                    "{dump} | xz -6 | age -r {} | {aws} s3 cp --quiet - s3://{bucket_name}/manual/{round}.sql.xz.age",
                    key.recipient
                ))),
                1 => {
                    // Backups are named by the second they start: keep them apart.
                    std::thread::sleep(std::time::Duration::from_millis(1100));
                    let (s, r, _) = drbot_timed(&d, "alice", "/db backup target:source", &env);
                    ours.push(s);
                    brss = brss.max(r);
                }
                _ => {
                    std::thread::sleep(std::time::Duration::from_millis(1100));
                    let (s, r, _) =
                        drbot_timed(&unverified, "alice", "/db backup target:source", &env);
                    bare.push(s);
                    bare_rss = bare_rss.max(r);
                }
            }
        }
        eprintln!("bench: backup round {} done", round + 1);
    }
    let (mb, mo, mn) = (median(&mut base), median(&mut ours), median(&mut bare));
    println!(
        "backup: {backup_rounds} interleaved rounds at xz -6: runbook median {mb:.1} s; drbot without the read-back median {mn:.1} s, ratio {:.2}, peak RSS {:.1} MiB; drbot with it (the default) median {mo:.1} s, ratio {:.2}, peak RSS {:.1} MiB",
        mn / mb,
        bare_rss as f64 / 1024.0,
        mo / mb,
        brss as f64 / 1024.0
    );
}
