//! Crash consistency: `drbot exec` killed with SIGKILL at random moments across commands that
//! write (notes, steps, roles, stakeholder notices, approval requests), the store reopened
//! after every kill. Every change whose reply said done is there, nothing is doubled, a
//! change is whole or absent, and the store opens every time.
//!
//! The count and seed come from DRBOT_KILLS (default 500) and DRBOT_KILL_SEED; the long run
//! is `scripts/kill-loop.sh 1000`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drbot_state::{IncidentId, StateError, StepState, Store};

use crate::database::{config_text, setup};
use crate::fake_http::FakeHttp;
use crate::support::{Drbot, moto};

/// xorshift64*: a fixed seed gives the same kills on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one command was meant to change.
#[derive(Clone, Debug)]
enum Change {
    Note(String),
    Notice(String),
    Step(String),
    Role(String),
    Request,
}

fn open(dir: &std::path::Path) -> Store {
    let started = Instant::now();
    loop {
        match Store::open(dir) {
            Ok(s) => return s,
            Err(StateError::Locked(_)) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the store does not open after a kill: {e}"),
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged_and_doubles_nothing() {
    let kills: usize = std::env::var("DRBOT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seed: u64 = std::env::var("DRBOT_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_D7B0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeHttp::start());
    let s = rt.block_on(setup());
    s.source
        .psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    rt.block_on(s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    ));
    let d = Drbot::new(&format!(
        "{}\n[notify]\nemail_from = \"drbot@example.com\"\nemail_to = [\"ceo@example.com\"]\n\
         resend_base = \"{}\"\n",
        config_text(&s.bucket, &s.key),
        fake.base
    ));
    let exec = |line: &str| -> Command {
        let mut c = d.command();
        c.args(["exec", line])
            .env("R2_ENDPOINT", moto())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SOURCE_URL", s.source.url())
            .env("STAGING_URL", s.target.url())
            .env("RESEND_API_KEY", "re_kill_key")
            .env("STATUSPAGE_WEBHOOK_URL", format!("{}/hook", fake.base))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        c
    };
    let out = exec("/incident declare scenario:database severity:sev1 title:\"kill loop\"")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // How long a note takes, to spread the kills across a command's whole life: the quickest
    // of three, so a moment of load on the machine does not spread the kills past the commands.
    let typical = (0..3)
        .map(|_| {
            let t = Instant::now();
            assert!(
                exec("/incident note text:warm-up")
                    .output()
                    .unwrap()
                    .status
                    .success()
            );
            t.elapsed().as_micros() as u64
        })
        .min()
        .unwrap_or(1);

    let steps = [
        "stop-apps",
        "restart-apps",
        "post-integrity",
        "post-performance",
        "post-backups",
        "post-comms",
        "ok-services",
        "ok-integrity",
        "ok-performance",
        "ok-security",
        "ok-monitoring",
    ];
    let mut rng = Rng(seed | 1);
    let mut acked: Vec<Change> = Vec::new();
    let mut tried: Vec<Change> = Vec::new();
    let mut killed = 0usize;
    // Kills that left sled's unfinished snapshot behind (the store must open anyway).
    let mut unfinished = 0usize;
    let mut next_step = 0usize;
    let mut roles = 0usize;
    for i in 0..kills {
        let change = match rng.below(10) {
            0..=3 => Change::Note(format!("note{i}x")),
            4 | 5 => Change::Notice(format!("kn{i}x")),
            6 if next_step < steps.len() => Change::Step(steps[next_step].to_string()),
            7 => {
                roles += 1;
                Change::Role(format!("p{roles}x"))
            }
            8 => Change::Request,
            _ => Change::Note(format!("note{i}x")),
        };
        let line = match &change {
            Change::Note(t) => format!("/incident note text:{t}"),
            Change::Notice(t) => format!("/notify stakeholders message:{t}"),
            Change::Step(id) => format!("/step done step:{id}"),
            Change::Role(p) => format!("/incident role role:scribe user:{p}"),
            Change::Request => "/db restore backup:latest target:staging".to_string(),
        };
        let mut child = exec(&line).spawn().unwrap();
        // Requests read the backup first: they live longer.
        let span = if matches!(change, Change::Request) {
            typical * 6
        } else {
            typical * 3 / 2
        };
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        if code.is_none() {
            killed += 1;
        }
        let done = match &change {
            Change::Request => code == Some(3),
            _ => code == Some(0),
        };
        if done {
            if let Change::Step(_) = change {
                next_step += 1;
            }
            acked.push(change.clone());
        } else if let (Change::Step(_), Some(_)) = (&change, code) {
            panic!("{line} ended {code:?} without a kill: {said}");
        }
        tried.push(change);

        // After every command, killed or not: the store opens and holds what was acknowledged.
        let leftovers = std::fs::read_dir(d.data_dir().join("sled"))
            .map(|r| {
                r.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(".generating"))
            })
            .unwrap_or(false);
        unfinished += usize::from(leftovers);
        let store = open(&d.data_dir());
        check(&store, &acked, &tried, i);
        // A step that a killed command may have completed is moved past.
        if let Some(id) = steps.get(next_step) {
            let inc = store.incident(IncidentId(1)).unwrap().unwrap();
            if inc.step(id).is_some_and(|r| r.state == StepState::Done) {
                next_step += 1;
            }
        }
    }
    // Most commands were cut off somewhere; some finished (both must be exercised).
    assert!(
        killed * 4 >= kills,
        "only {killed} of {kills} were killed mid-way"
    );
    assert!(
        acked.len() * 10 >= kills,
        "only {} of {kills} finished",
        acked.len()
    );
    eprintln!(
        "kill loop: {kills} runs, {killed} killed mid-way, {} acknowledged, {unfinished} left an unfinished sled snapshot",
        acked.len()
    );
}

fn check(store: &Store, acked: &[Change], tried: &[Change], round: usize) {
    let timeline = store.timeline(IncidentId(1)).unwrap();
    let texts: Vec<&str> = timeline.iter().map(|e| e.text.as_str()).collect();
    let mut seqs = BTreeSet::new();
    for e in &timeline {
        assert!(seqs.insert(e.seq), "round {round}: entry {} twice", e.seq);
    }
    let count = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count();
    let outbox = store.outbox().unwrap();
    let mut notices: BTreeMap<String, usize> = BTreeMap::new();
    for c in tried {
        if let Change::Notice(t) = c {
            let queued = outbox
                .iter()
                .filter(|i| i.body.contains(t.as_str()))
                .count();
            notices.insert(t.clone(), queued);
        }
    }
    for c in tried {
        match c {
            Change::Note(t) => assert!(count(t) <= 1, "round {round}: {t} doubled"),
            Change::Notice(t) => {
                // Both channels queued with the entry, or nothing.
                let queued = notices.get(t).copied().unwrap_or(0);
                assert!(
                    queued == 0 || queued == 2,
                    "round {round}: {t} queued {queued} times"
                );
            }
            _ => {}
        }
    }
    let incident = store.incident(IncidentId(1)).unwrap().unwrap();
    let requests = store.approvals().unwrap().len();
    let tried_requests = tried
        .iter()
        .filter(|c| matches!(c, Change::Request))
        .count();
    assert!(
        requests <= tried_requests,
        "round {round}: more requests than asked"
    );
    let mut acked_requests = 0;
    for c in acked {
        match c {
            Change::Note(t) => assert_eq!(count(t), 1, "round {round}: acknowledged {t} lost"),
            Change::Notice(t) => assert_eq!(
                notices.get(t).copied(),
                Some(2),
                "round {round}: acknowledged notice {t} lost"
            ),
            Change::Step(id) => assert_eq!(
                incident.step(id).map(|r| r.state),
                Some(StepState::Done),
                "round {round}: acknowledged step {id} lost"
            ),
            Change::Role(p) => {
                assert!(
                    texts.iter().any(|t| t.contains(&format!("{p} is scribe"))),
                    "round {round}: acknowledged role for {p} lost"
                )
            }
            Change::Request => acked_requests += 1,
        }
    }
    assert!(
        requests >= acked_requests,
        "round {round}: an acknowledged request was lost"
    );
}
