//! Two-person approval against real PostgreSQL and moto: every refusal leaves the target as it
//! was and lands on the timeline; expiry runs on a controlled clock; requests survive restarts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use drbot_commands::{Actor, Config, Context, Engine, ManualClock, Outcome, Place, Reply};
use drbot_state::{ApprovalStatus, EntryKind, IncidentId, Proof, RequestId, Store};

use crate::database::{Setup, approver, commander, config_text, env_map, setup};
use crate::support::{Drbot, assert_same_dump, moto, os_user, put};

fn person(name: &str, roles: &[&str]) -> Context {
    Context {
        actor: Actor {
            id: drbot_commands::identity::Principal::person(name),
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    }
}

/// Opens a store that this process has just dropped (sled lets go of its lock a moment
/// after the last handle is gone, when its background flush finishes).
fn reopen(dir: &Path) -> Store {
    for _ in 0..50 {
        match Store::open(dir) {
            Ok(s) => return s,
            Err(drbot_state::StateError::Locked(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store stayed locked");
}

const RESTORE: &str = "/db restore backup:latest target:staging";

/// A source with data, a backup of it in the bucket, and a target with its own data.
async fn prepared() -> (Setup, String) {
    let s = setup().await;
    s.source
        .psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100);");
    s.target
        .psql("CREATE TABLE precious (x int); INSERT INTO precious VALUES (42);");
    s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let before = s.target.dump();
    (s, before)
}

async fn ask(engine: &Engine) -> String {
    let r = engine.run(&commander(), RESTORE).await;
    match r.outcome {
        Outcome::AwaitingApproval(id) => id,
        other => panic!("expected a request, got {other:?}: {}", r.text),
    }
}

fn refused(r: &Reply, says: &str) {
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert_eq!(r.outcome.exit_code(), 1);
    assert!(r.text.contains(says), "{says}: {}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_matrix_never_touches_the_target() {
    let (s, before) = prepared().await;
    s.run("/incident declare scenario:database severity:sev1 title:\"db lost\"")
        .await;
    let id = ask(&s.engine).await;
    let approve = format!("/approve request:{id}");

    // The requester cannot approve their own request.
    refused(&s.engine.run(&commander(), &approve).await, "yourself");
    // Someone without the approver role cannot approve.
    let carol = person("carol", &["commander", "responder"]);
    refused(
        &s.engine.run(&carol, &approve).await,
        "needs the approver role",
    );
    // Nor deny.
    let r = s
        .engine
        .run(&carol, &format!("/deny request:{id} reason:no"))
        .await;
    refused(&r, "Denying needs the approver role");
    // Unknown requests are a usage error.
    let r = s.engine.run(&approver(), "/approve request:A-99").await;
    assert_eq!(r.outcome, Outcome::Usage, "{}", r.text);
    assert!(r.text.contains(&format!("Pending: {id}")), "{}", r.text);
    assert_same_dump(&before, &s.target.dump(), "after refusals");

    // The approver runs it, once.
    let r = s.engine.run(&approver(), &approve).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text.contains("approved by bob (asked by alice)"),
        "{}",
        r.text
    );
    let after = s.target.dump();
    assert!(after.contains("CREATE TABLE public.t"), "restored");
    // A second use, by the same or another approver, is refused.
    refused(
        &s.engine.run(&approver(), &approve).await,
        "runs at most once",
    );
    let dave = person("dave", &["approver"]);
    refused(&s.engine.run(&dave, &approve).await, "runs at most once");
    assert_same_dump(&after, &s.target.dump(), "after second use");

    // A denied request cannot be approved.
    let id2 = ask(&s.engine).await;
    let r = s
        .engine
        .run(
            &approver(),
            &format!("/deny request:{id2} reason:wrong backup"),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    refused(
        &s.engine
            .run(&dave, &format!("/approve request:{id2}"))
            .await,
        "denied by bob",
    );
    // The requester may withdraw their own.
    let id3 = ask(&s.engine).await;
    let r = s
        .engine
        .run(
            &commander(),
            &format!("/deny request:{id3} reason:changed my mind"),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert_same_dump(&after, &s.target.dump(), "after denials");

    // Every decision is on the incident's timeline; every refusal on the audit log, marked
    // with the incident.
    let timeline = s.engine.store().timeline(IncidentId(1)).unwrap();
    assert!(!timeline.iter().any(|e| e.kind == EntryKind::Refused));
    let refusals = s
        .engine
        .store()
        .audit_about(IncidentId(1))
        .unwrap()
        .iter()
        .filter(|e| e.kind == EntryKind::Refused)
        .count();
    assert!(refusals >= 6, "{refusals} refusals");
    let text: String = timeline.iter().map(|e| format!("{}\n", e.text)).collect();
    assert!(text.contains(&format!("{id} requested by alice")), "{text}");
    assert!(text.contains(&format!("{id} approved by bob")), "{text}");
    assert!(
        text.contains(&format!("{id2} denied by bob: wrong backup")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{id3} withdrawn by alice")),
        "{text}"
    );
    let refused: String = s
        .engine
        .store()
        .audit_about(IncidentId(1))
        .unwrap()
        .iter()
        .map(|e| format!("{}\n", e.text))
        .collect();
    assert!(refused.contains("yourself"), "{refused}");
    assert!(!text.contains("yourself"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_inputs_void_the_approval() {
    let (s, before) = prepared().await;
    // The backup is replaced after the request: its ETag changes.
    let id = ask(&s.engine).await;
    put(
        &s.bucket,
        "db/2026-11-25T10-00-00Z.sql.xz.age",
        b"SELECT 1;\n".to_vec(),
    )
    .await;
    let r = s
        .engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    refused(&r, "changed since it was requested");
    assert!(r.text.contains("Nothing was run"), "{}", r.text);
    assert_same_dump(&before, &s.target.dump(), "voided by ETag");
    let req = s
        .engine
        .store()
        .approval(id.parse::<RequestId>().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(req.status, ApprovalStatus::Voided);
    refused(
        &s.engine
            .run(&approver(), &format!("/approve request:{id}"))
            .await,
        "was voided",
    );

    // The target is pointed elsewhere after the request.
    let env = Arc::new(Mutex::new(env_map(
        moto(),
        &s.source.url(),
        &s.target.url(),
    )));
    let dir = tempfile::tempdir().unwrap();
    let shared = env.clone();
    let engine = Engine::new(
        Arc::new(Config::from_toml(&config_text(&s.bucket, &s.key), Path::new("t.toml")).unwrap()),
        Store::open(dir.path()).unwrap(),
        Arc::new(drbot_commands::SystemClock),
    )
    .with_env(Arc::new(move |k| shared.lock().unwrap().get(k).cloned()));
    let id = ask(&engine).await;
    env.lock()
        .unwrap()
        .insert("STAGING_URL".into(), s.source.url());
    let r = engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    refused(&r, "now points to");
    assert_same_dump(&before, &s.target.dump(), "voided by target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_expire_on_the_clock() {
    let (s, before) = prepared().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock) = clocked(&s, dir.path());
    let id = ask(&engine).await;
    clock.advance(Duration::seconds(599));
    // Still pending: a refusal for the wrong person does not use it up.
    refused(
        &engine
            .run(&commander(), &format!("/approve request:{id}"))
            .await,
        "yourself",
    );
    clock.advance(Duration::seconds(2));
    let r = engine
        .run(&approver(), &format!("/approve request:{id}"))
        .await;
    refused(&r, "expired");
    assert_same_dump(&before, &s.target.dump(), "expired");
    let req = engine
        .store()
        .approval(id.parse::<RequestId>().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(req.status, ApprovalStatus::Expired);
    refused(
        &engine
            .run(&approver(), &format!("/approve request:{id}"))
            .await,
        "expired",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_survives_a_restart_and_an_interrupted_one_never_reruns() {
    let (s, before) = prepared().await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_map(moto(), &s.source.url(), &s.target.url());
    let make = |env: HashMap<String, String>| {
        Engine::new(
            Arc::new(
                Config::from_toml(&config_text(&s.bucket, &s.key), Path::new("t.toml")).unwrap(),
            ),
            reopen(dir.path()),
            Arc::new(drbot_commands::SystemClock),
        )
        .with_env(Arc::new(move |k| env.get(k).cloned()))
    };
    let engine = make(env.clone());
    let first = ask(&engine).await;
    let second = ask(&engine).await;
    let third = ask(&engine).await;
    // Simulate a crash while the second was running, and one while the third's preflight
    // was (approved already: it would have run the moment it passed).
    engine
        .store()
        .update_approval(second.parse::<RequestId>().unwrap(), |r| {
            r.status = ApprovalStatus::Executing;
            Ok::<_, drbot_state::StateError>(vec![])
        })
        .unwrap();
    engine
        .store()
        .update_approval(third.parse::<RequestId>().unwrap(), |r| {
            r.preflight = drbot_state::PreflightState::Running;
            r.approvals = vec!["bob".into()];
            r.approval_ids = vec!["person:bob".into()];
            Ok::<_, drbot_state::StateError>(vec![])
        })
        .unwrap();
    engine.store().flush().await.unwrap();
    drop(engine);

    let engine = make(env);
    let marked = engine.recover_interrupted().unwrap();
    assert_eq!(
        marked,
        [
            format!("{second} was interrupted"),
            format!("{third} was voided (its preflight was interrupted)")
        ]
    );
    refused(
        &engine
            .run(&approver(), &format!("/approve request:{second}"))
            .await,
        "never run twice",
    );
    let r = engine
        .run(&approver(), &format!("/approve request:{third}"))
        .await;
    refused(&r, "its preflight was interrupted");
    assert_eq!(
        engine
            .store()
            .approval(third.parse::<RequestId>().unwrap())
            .unwrap()
            .unwrap()
            .status,
        ApprovalStatus::Voided
    );
    assert_same_dump(&before, &s.target.dump(), "interrupted");
    let r = engine
        .run(&approver(), &format!("/approve request:{first}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
}

#[test]
fn exec_waits_with_status_3_and_another_person_approves() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (s, _before) = rt.block_on(prepared());
    let people = |trust: bool| {
        format!(
            "{}\n[people.alice]\nroles = [\"commander\"]\nunix_user = \"{}\"\n\
             [people.bob]\nroles = [\"approver\"]\nunix_user = \"bob-elsewhere\"\n\
             [console]\ntrust_as = {trust}\n",
            config_text(&s.bucket, &s.key),
            os_user()
        )
    };
    let env = env_map(moto(), &s.source.url(), &s.target.url());
    let run = |d: &Drbot, as_name: &str, line: &str| {
        let out = d
            .command()
            .args(["exec", "--as", as_name, line])
            .envs(&env)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Without trust_as, the OS user (alice) cannot act as bob: one shell, one person.
    let d = Drbot::new(&people(false));
    let (code, out, _) = run(&d, "alice", RESTORE);
    assert_eq!(code, Some(3), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
        .expect("approval request line")
        .to_string();
    let (code, _, err) = run(&d, "bob", &format!("/approve request:{id}"));
    assert_eq!(code, Some(1));
    assert!(err.contains("--as bob refused"), "{err}");
    let (code, out, _) = run(&d, "alice", &format!("/approve request:{id}"));
    assert_eq!(code, Some(1));
    assert!(out.contains("yourself"), "{out}");

    // With trust_as (demos), bob's approval runs it and prints the result.
    let d = Drbot::new(&people(true));
    let (code, out, _) = run(&d, "alice", RESTORE);
    assert_eq!(code, Some(3), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
        .unwrap()
        .to_string();
    let (code, out, err) = run(&d, "bob", &format!("/approve request:{id}"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("Restored db/2026-11-25T10-00-00Z.sql.xz.age into staging"),
        "{out}"
    );
    assert!(s.target.dump().contains("CREATE TABLE public.t"));
    let (code, out, _) = run(&d, "bob", &format!("/approve request:{id}"));
    assert_eq!(code, Some(1), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_needs_two_approvals_runs_on_the_second_distinct_one() {
    let (s, before) = prepared().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = crate::database::engine_with(
        dir.path(),
        &format!(
            "{}\n[approvals]\nrequired = {{ \"db-restore:staging\" = 2 }}\n",
            config_text(&s.bucket, &s.key)
        ),
        env_map(moto(), &s.source.url(), &s.target.url()),
    );
    engine
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"db lost\"",
        )
        .await;
    let r = engine.run(&commander(), RESTORE).await;
    let Outcome::AwaitingApproval(id) = r.outcome.clone() else {
        panic!("{}", r.text)
    };
    assert!(
        r.text.contains("(0 of 2 approvals)") && r.text.contains("2 other people"),
        "{}",
        r.text
    );
    let stored = engine
        .store()
        .approval(id.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(stored.command, RESTORE, "the canonical form is stored");
    let approve = format!("/approve request:{id}");

    // The first approval is recorded; nothing runs.
    let r = engine.run(&approver(), &approve).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("(1 of 2 approvals)"), "{}", r.text);
    assert_eq!(s.target.dump(), before);
    let status = engine.run(&commander(), "/incident status").await;
    assert!(
        status.text.contains("(1 of 2 approvals)"),
        "{}",
        status.text
    );
    // The same person twice, and the requester, do not count.
    refused(&engine.run(&approver(), &approve).await, "already approved");
    refused(&engine.run(&commander(), &approve).await, "You asked for");
    assert_eq!(s.target.dump(), before);
    // A second, different approver runs it.
    let carol = person("carol", &["approver"]);
    let r = engine.run(&carol, &approve).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert_ne!(s.target.dump(), before);
    let req = engine
        .store()
        .approval(id.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(req.approvals, ["bob", "carol"]);
    assert_eq!(req.status, ApprovalStatus::Executed);
    // Settled: nobody approves it again.
    let dave = person("dave", &["approver"]);
    refused(&engine.run(&dave, &approve).await, "already approved");
}

/// Someone on Discord (or an unmapped OS user) whose name is "alice" is not alice: they do not
/// pass alice's commander check, cannot withdraw her request, and their approval is a second
/// person's, while alice herself (the same principal from any place) cannot approve her own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_user_named_like_a_configured_person_is_someone_else() {
    use drbot_commands::identity::Principal;
    let (s, before) = prepared().await;
    let as_actor = |id: Principal, name: &str, roles: &[&str]| Context {
        actor: Actor {
            id,
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    };
    s.run("/incident declare scenario:database severity:sev1 title:\"db lost\"")
        .await;
    // A Discord member called alice, with no roles: not the incident's commander.
    let impostor = as_actor(Principal::discord(999), "alice", &[]);
    let r = s
        .engine
        .run(&impostor, "/incident role role:comms user:bob")
        .await;
    refused(&r, "needs the commander role");
    // Their refused attempt is on the record as them, not as alice.
    let entries = s.engine.store().audit_about(IncidentId(1)).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.kind, EntryKind::Refused);
    assert_eq!(last.actor, "alice (discord:999)");
    let id = ask(&s.engine).await;
    let r = s
        .engine
        .run(&impostor, &format!("/deny request:{id} reason:mine"))
        .await;
    refused(
        &r,
        "Denying needs the approver role (or being the one who asked)",
    );
    // alice herself, however she comes (here: her Discord id mapped to person:alice, with the
    // approver role Discord grants), is the requester.
    let alice_on_discord = as_actor(Principal::person("alice"), "alice", &["approver"]);
    let r = s
        .engine
        .run(&alice_on_discord, &format!("/approve request:{id}"))
        .await;
    refused(&r, "You asked for");
    assert_same_dump(&before, &s.target.dump(), "refusals change nothing");
    // An unmapped OS user named alice with the approver role is a different person: their
    // approval runs it, and the record shows who they are.
    let other = as_actor(Principal::unix(4242), "alice", &["approver"]);
    let r = s
        .engine
        .run(&other, &format!("/approve request:{id}"))
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let req = s
        .engine
        .store()
        .approval(id.parse::<RequestId>().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(req.requested_by_id, "person:alice");
    assert_eq!(req.approval_ids, ["unix:4242"]);
    assert_eq!(req.status, ApprovalStatus::Executed);
    let text = s.timeline(IncidentId(1));
    assert!(
        text.contains(&format!("{id} approved by alice (unix:4242)")),
        "{text}"
    );
}

/// Decides a request while its preflight runs: when the request is posted (before the
/// preflight has read a byte), another person's `line` (`{id}` is the request) runs on another
/// thread, and the requester's command waits for it; the clock is moved past the request's
/// time to live first. Keeps the decision's reply and the target as it was at that moment.
struct DecideDuringPreflight<'a> {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    line: &'static str,
    target: &'a crate::support::TestDb,
    seen: Mutex<Option<(Reply, String)>>,
}

impl drbot_commands::progress::ProgressSink for DecideDuringPreflight<'_> {
    fn update(&self, _line: &str) {}

    fn requested(&self, id: &str, text: &str) {
        assert!(text.contains("can approve it now"), "{text}");
        self.clock.advance(Duration::seconds(601));
        let engine = self.engine.clone();
        let line = self.line.replace("{id}", id);
        let handle = tokio::runtime::Handle::current();
        let reply = std::thread::spawn(move || {
            // Nothing expires while the preflight runs, however long it takes.
            assert_eq!(drbot_commands::approval::expire_due(&engine).unwrap(), 0);
            handle.block_on(engine.run(&approver(), &line))
        })
        .join()
        .unwrap();
        *self.seen.lock().unwrap() = Some((reply, self.target.dump()));
    }
}

/// An engine on a manual clock with a ten-minute time to live, and its clock.
fn clocked(s: &Setup, dir: &Path) -> (Arc<Engine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let env: HashMap<String, String> = env_map(moto(), &s.source.url(), &s.target.url());
    let config = format!(
        "{}\n[approvals]\nttl_secs = 600\n",
        config_text(&s.bucket, &s.key)
    );
    let engine = Engine::new(
        Arc::new(Config::from_toml(&config, Path::new("t.toml")).unwrap()),
        Store::open(dir).unwrap(),
        clock.clone(),
    )
    .with_env(Arc::new(move |k| env.get(k).cloned()));
    (Arc::new(engine), clock)
}

/// Asks for the restore as alice with `line` decided by bob during its preflight; returns
/// alice's reply, bob's, the target when bob decided, and the request as it ended.
async fn decided_during_preflight(
    s: &Setup,
    engine: &Arc<Engine>,
    clock: &Arc<ManualClock>,
    line: &'static str,
) -> (Reply, Reply, String, drbot_state::ApprovalRequest) {
    let sink = DecideDuringPreflight {
        engine: engine.clone(),
        clock: clock.clone(),
        line,
        target: &s.target,
        seen: Mutex::new(None),
    };
    let asked = engine.run_with(&commander(), RESTORE, &sink).await;
    let (decision, at_decision) = sink
        .seen
        .lock()
        .unwrap()
        .take()
        .expect("the request was posted before its preflight");
    let req = engine.store().approvals().unwrap().pop().unwrap();
    (asked, decision, at_decision, req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_while_the_preflight_runs_runs_once_it_passes() {
    let (s, before) = prepared().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock) = clocked(&s, dir.path());
    let (asked, approved, at_approval, req) =
        decided_during_preflight(&s, &engine, &clock, "/approve request:{id}").await;
    assert_eq!(approved.outcome, Outcome::Done, "{}", approved.text);
    assert!(
        approved
            .text
            .contains("runs the moment the preflight passes"),
        "{}",
        approved.text
    );
    assert_same_dump(&before, &at_approval, "approved, preflight running");
    // The preflight passed, then the restore ran in the requester's command.
    assert_eq!(asked.outcome, Outcome::Done, "{}", asked.text);
    assert!(
        asked
            .text
            .contains("approved by bob while its preflight ran")
            && asked
                .text
                .contains("Restored db/2026-11-25T10-00-00Z.sql.xz.age into staging"),
        "{}",
        asked.text
    );
    assert!(s.target.dump().contains("CREATE TABLE public.t"));
    assert_eq!(req.status, ApprovalStatus::Executed);
    assert_eq!(req.preflight, drbot_state::PreflightState::Passed);
    assert_eq!(req.decided_by.as_deref(), Some("bob"));
    assert!(
        req.summary.contains("read whole and complete"),
        "{}",
        req.summary
    );
    // On the timeline: posted, approved while it ran, passed and run, done — in that order.
    let text = crate::support::recorded_text(engine.store());
    let order = [
        "Its preflight runs now",
        "it runs the moment its preflight passes",
        "preflight passed",
        "Approved already (by bob): running it",
        "done.",
    ];
    let mut at = 0;
    for want in order {
        let found = text[at..]
            .find(want)
            .unwrap_or_else(|| panic!("{want} after {at}: {text}"));
        at += found + want.len();
    }
    // It ran once: approving again is refused.
    refused(
        &engine
            .run(&approver(), &format!("/approve request:{}", req.id))
            .await,
        "runs at most once",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_before_a_failing_preflight_never_runs() {
    let (s, before) = prepared().await;
    // The newest backup is cut in half: its preflight fails at its end.
    let whole = std::fs::read(s.work.path().join("2026-11-25T10-00-00Z.sql.xz.age")).unwrap();
    put(
        &s.bucket,
        "db/2026-11-26T10-00-00Z.sql.xz.age",
        whole[..whole.len() / 2].to_vec(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock) = clocked(&s, dir.path());
    let (asked, approved, at_approval, req) =
        decided_during_preflight(&s, &engine, &clock, "/approve request:{id}").await;
    assert_eq!(approved.outcome, Outcome::Done, "{}", approved.text);
    assert_same_dump(&before, &at_approval, "approved, preflight running");
    assert_eq!(asked.outcome, Outcome::Failed, "{}", asked.text);
    assert!(
        asked.text.contains("ends early") && asked.text.contains("is void: nothing was run"),
        "{}",
        asked.text
    );
    assert_eq!(req.status, ApprovalStatus::Voided);
    assert_eq!(req.preflight, drbot_state::PreflightState::Failed);
    assert_same_dump(&before, &s.target.dump(), "failed preflight");
    let again = engine
        .run(&approver(), &format!("/approve request:{}", req.id))
        .await;
    refused(&again, "was voided: its preflight failed");
    assert!(!again.text.contains(".."), "{}", again.text);
    assert_same_dump(&before, &s.target.dump(), "approved again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_denied_while_its_preflight_runs_never_runs() {
    let (s, before) = prepared().await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock) = clocked(&s, dir.path());
    let (asked, denied, _, req) = decided_during_preflight(
        &s,
        &engine,
        &clock,
        "/deny request:{id} reason:\"wrong backup\"",
    )
    .await;
    assert_eq!(denied.outcome, Outcome::Done, "{}", denied.text);
    refused(&asked, "was denied by bob");
    assert_eq!(req.status, ApprovalStatus::Denied);
    assert_same_dump(&before, &s.target.dump(), "denied during preflight");
}
