//! The incident lifecycle through the engine, with a controlled clock and a real sled store.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use drbot_state::{EntryKind, IncidentId, IncidentStatus, Proof, StepState, Store};

use crate::{Actor, Config, Context, Engine, ManualClock, Outcome, Place};
use embedded_graphics::pixelcolor::RgbColor;

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
}

fn fixture_with(config: Config) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap(),
    ));
    let engine = Engine::new(Arc::new(config), store, clock.clone());
    Fixture {
        _dir: dir,
        engine,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(Config::default())
}

fn person(name: &str, roles: &[&str]) -> Context {
    Context {
        actor: Actor {
            id: crate::identity::Principal::person(name),
            name: name.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    }
}

fn alice() -> Context {
    person("alice", &["commander"])
}

async fn ok(f: &Fixture, ctx: &Context, line: &str) -> String {
    let r = f.engine.run(ctx, line).await;
    assert_eq!(r.outcome, Outcome::Done, "{line}: {}", r.text);
    r.text
}

const DECLARE: &str =
    r#"/incident declare scenario:database severity:sev1 title:"Primary DB down""#;

#[tokio::test]
async fn a_database_incident_from_declare_to_close() {
    let f = fixture();
    let a = alice();
    let text = ok(&f, &a, DECLARE).await;
    assert!(
        text.contains("Declared INC-1") && text.contains("RTO target 2h00m"),
        "{text}"
    );
    assert!(text.contains("Next: 1. Assess impact"), "{text}");

    let text = ok(&f, &a, "/step list").await;
    assert!(
        text.contains("stop-apps") && text.contains("Stop API and web applications"),
        "{text}"
    );
    assert!(
        text.contains("Post-recovery") && text.contains("Success criteria"),
        "{text}"
    );

    f.clock.advance(Duration::minutes(10));
    let text = ok(&f, &a, "/step done step:stop-apps").await;
    assert!(
        text.contains("Step 2. Stop API and web applications is done"),
        "{text}"
    );
    ok(&f, &a, "/step done step:1").await;
    ok(&f, &a, "/step skip step:db-reindex reason:search is fine").await;
    ok(
        &f,
        &a,
        "/incident note text:API stopped; web shows maintenance page",
    )
    .await;
    ok(&f, &a, "/incident role role:comms user:bob").await;

    f.clock.advance(Duration::minutes(20));
    let status = ok(&f, &a, "/incident status").await;
    assert!(
        status.contains("Elapsed 30m of the 2h00m RTO (25%)"),
        "{status}"
    );
    assert!(status.contains("✓  2. stop-apps"), "{status}");
    assert!(status.contains("comms bob"), "{status}");
    assert!(status.contains("Next: 3. Restore database"), "{status}");
    assert!(
        status.contains("– ") && status.contains("search is fine"),
        "{status}"
    );

    let text = ok(&f, &a, "/incident resolve").await;
    assert!(text.contains("Took 30m of the 2h00m RTO"), "{text}");
    f.clock.advance(Duration::minutes(5));
    ok(&f, &a, "/step done step:post-comms").await;
    // Recovery steps are open: closing asks to confirm, and names them.
    let r = f.engine.run(&a, "/incident close").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text
            .contains("3 recovery steps still open (3. Restore database; 4. Verify restore")
            && r.text.contains("/incident close confirm:yes"),
        "{}",
        r.text
    );
    let text = ok(&f, &a, "/incident close confirm:yes").await;
    assert!(text.contains("Closed INC-1"), "{text}");

    let incident = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Closed);
    assert_eq!(incident.step("stop-apps").unwrap().state, StepState::Done);
    assert_eq!(
        incident.step("db-reindex").unwrap().state,
        StepState::Skipped
    );
    let kinds: Vec<EntryKind> = f
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    use EntryKind::*;
    assert_eq!(
        kinds,
        [
            Declared, Step, Step, Step, Note, Role, Resolved, Step, Closed
        ]
    );

    // Closed incidents stay readable by id, and a new one can be declared.
    let text = ok(&f, &a, "/incident timeline incident:INC-1").await;
    assert!(
        text.contains("API stopped; web shows maintenance page"),
        "{text}"
    );
    let text = ok(&f, &a, DECLARE).await;
    assert!(text.contains("Declared INC-2"), "{text}");
}

/// Runs a bad line and checks its outcome, that the incident and its timeline are unchanged,
/// and that the refusal is on the audit log, marked with the incident it was typed in.
async fn refused(f: &Fixture, ctx: &Context, line: &str, outcome: Outcome, says: &str) {
    let store = f.engine.store();
    let before: Vec<_> = store.incidents().unwrap();
    let timeline_before = store.timeline(IncidentId(1)).unwrap();
    let audit_before = store.audit().unwrap().len();
    let r = f.engine.run(ctx, line).await;
    assert_eq!(r.outcome, outcome, "{line}: {}", r.text);
    assert!(r.text.contains(says), "{line}: {}", r.text);
    assert_eq!(
        store.incidents().unwrap(),
        before,
        "{line} changed an incident"
    );
    assert_eq!(
        store.timeline(IncidentId(1)).unwrap(),
        timeline_before,
        "{line} went on the timeline"
    );
    let audit = store.audit().unwrap();
    assert_eq!(audit.len(), audit_before + 1, "{line}");
    let last = audit.last().unwrap();
    assert_eq!(last.kind, EntryKind::Refused);
    // A drill's commands never concern an incident.
    let typed_in = (!before.is_empty() && before[0].is_active() && !line.starts_with("/drill"))
        .then_some(IncidentId(1));
    assert_eq!(last.incident, typed_in, "{line}");
}

#[tokio::test]
async fn bad_input_is_a_clear_message_and_changes_nothing() {
    let f = fixture();
    let a = alice();
    refused(
        &f,
        &a,
        "/incident status",
        Outcome::Refused,
        "no open incident",
    )
    .await;
    refused(&f, &a, "/step done step:1", Outcome::Refused, "Declare one").await;
    ok(&f, &a, DECLARE).await;
    use Outcome::{Refused, Usage};
    let cases: &[(&str, Outcome, &str)] = &[
        ("/incdent status", Usage, "Did you mean /incident?"),
        ("/incident frobnicate", Usage, "Valid: declare, status"),
        ("/incident status verbose:yes", Usage, "takes no options"),
        ("/incident note", Usage, "needs text:"),
        (
            "/incident declare scenario:nonsense severity:sev1 title:x",
            Usage,
            "database, storage, search, full",
        ),
        (
            "/step done step:99",
            Usage,
            "Step `99` is not in INC-1's runbook",
        ),
        (
            "/step done step:reboot-everything",
            Usage,
            "1 db-assess, 2 stop-apps",
        ),
        ("/step skip step:2", Usage, "needs reason:"),
        (
            "/incident status incident:INC-9",
            Usage,
            "INC-9 does not exist",
        ),
        (
            "/incident status incident:banana",
            Usage,
            "not an incident id",
        ),
        (
            DECLARE,
            Refused,
            "INC-1 “Primary DB down” is still open here",
        ),
        ("/search health", Refused, "No Meilisearch is configured"),
        ("/api health", Refused, "No API is configured"),
        ("/drill report", Refused, "No drill has run yet"),
        ("/drill report drill:DRILL-x", Usage, "not a drill id"),
        (
            "/drill start kind:storage keep:true",
            Usage,
            "a storage drill has none",
        ),
        (
            "/drill start kind:database",
            Refused,
            "set DRILL_DATABASE_URL",
        ),
        (
            "/db restore backup:latest target:production",
            Refused,
            "No database targets are configured",
        ),
    ];
    for (line, outcome, says) in cases {
        refused(&f, &a, line, outcome.clone(), says).await;
    }
    ok(&f, &a, "/step done step:stop-apps").await;
    refused(&f, &a, "/step done step:stop-apps", Refused, "already done").await;
    refused(
        &f,
        &a,
        "/step skip step:2 reason:x",
        Refused,
        "nothing to skip",
    )
    .await;

    let responder = person("carol", &[]);
    refused(
        &f,
        &responder,
        "/incident resolve",
        Refused,
        "needs the commander role",
    )
    .await;
    refused(
        &f,
        &responder,
        "/incident role role:scribe user:carol",
        Refused,
        "commander role",
    )
    .await;

    ok(&f, &a, "/incident close confirm:yes").await;
    let closed = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    let r = f.engine.run(&a, "/incident close incident:INC-1").await;
    assert_eq!(r.outcome, Refused);
    assert!(r.text.contains("already closed"), "{}", r.text);
    let r = f
        .engine
        .run(&a, "/incident note incident:1 text:late")
        .await;
    assert!(r.text.contains("is closed"), "{}", r.text);
    assert_eq!(
        f.engine.store().incident(IncidentId(1)).unwrap().unwrap(),
        closed
    );
    // With no open incident, refusals go to the audit log.
    let audit = f.engine.store().audit().unwrap();
    assert!(audit.len() >= 3, "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|e| e.text.contains("/incident close incident:INC-1"))
    );
    assert!(audit.last().unwrap().text.contains("text:late"));
}

#[tokio::test]
async fn declaring_needs_the_commander_role_when_people_are_configured() {
    let config = Config::from_toml(
        "[people.alice]\nroles = [\"commander\"]\n[people.dave]\nroles = [\"responder\"]\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let f = fixture_with(config);
    let dave = person("dave", &["responder"]);
    refused(
        &f,
        &dave,
        DECLARE,
        Outcome::Refused,
        "needs the commander role",
    )
    .await;
    assert!(f.engine.store().incidents().unwrap().is_empty());
    ok(&f, &alice(), DECLARE).await;
    // Roles go to configured people only.
    refused(
        &f,
        &alice(),
        "/incident role role:comms user:zed",
        Outcome::Usage,
        "choose one of alice, dave",
    )
    .await;
    ok(&f, &alice(), "/incident role role:commander user:@dave").await;
    // The incident's commander may resolve even without the role in the config.
    ok(&f, &dave, "/incident resolve").await;
}

#[tokio::test]
async fn several_open_incidents_need_incident_option_locally() {
    let f = fixture();
    let channel = Context {
        place: Place::Channel(42),
        ..alice()
    };
    ok(&f, &channel, DECLARE).await;
    ok(&f, &alice(), DECLARE).await;
    // The Discord channel sees only its own incident.
    let text = ok(&f, &channel, "/incident status").await;
    assert!(text.starts_with("INC-1"), "{text}");
    let r = f.engine.run(&alice(), "/incident status").await;
    assert_eq!(r.outcome, Outcome::Usage);
    assert!(
        r.text.contains("Several incidents are open") && r.text.contains("incident:INC-1"),
        "{}",
        r.text
    );
    let text = ok(
        &f,
        &alice(),
        "/incident note incident:INC-2 text:console one",
    )
    .await;
    assert!(text.contains("INC-2"), "{text}");
}

#[tokio::test]
async fn running_past_the_rto_is_said_plainly() {
    let f = fixture();
    ok(
        &f,
        &alice(),
        "/incident declare scenario:search severity:sev3 title:slow search",
    )
    .await;
    f.clock.advance(Duration::minutes(45));
    let text = ok(&f, &alice(), "/incident status").await;
    assert!(
        text.contains("Elapsed 45m of the 30m RTO (150%) — over the RTO by 15m"),
        "{text}"
    );
}

#[tokio::test]
async fn secrets_pasted_into_notes_never_reach_the_timeline() {
    let f = fixture();
    ok(&f, &alice(), DECLARE).await;
    let r = f
        .engine
        .run(
            &alice(),
            "/incident note text:replica at postgres://app:hunter2@10.0.0.5/postgres",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done);
    let r2 = f
        .engine
        .run(&alice(), "/incident notes text:postgres://u:hunter2@h/db")
        .await;
    assert!(!r2.text.contains("hunter2") || r2.outcome == Outcome::Usage);
    let all: String = f
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .iter()
        .map(|e| e.text.clone())
        .collect();
    assert!(!all.contains("hunter2"), "{all}");
    assert!(
        all.contains("postgres://app:***@10.0.0.5/postgres"),
        "{all}"
    );
}

#[tokio::test]
async fn asserted_identities_are_marked_on_the_timeline() {
    let f = fixture();
    let mut ctx = alice();
    ctx.actor.proof = Proof::Asserted;
    ok(&f, &ctx, DECLARE).await;
    let text = ok(&f, &ctx, "/incident timeline").await;
    assert!(
        text.contains("alice*") && text.contains("asserted"),
        "{text}"
    );
    let entries = f.engine.store().timeline(IncidentId(1)).unwrap();
    assert_eq!(entries[0].proof, Proof::Asserted);
}

fn kinds(posts: &[crate::watch::Post]) -> Vec<crate::watch::PostKind> {
    posts.iter().map(|p| p.kind.clone()).collect()
}

#[tokio::test]
async fn status_posts_rto_warnings_and_nudges_come_once_each() {
    use crate::watch::PostKind::{Nudge, RtoWarning, Status};
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    let mut now = 0i64;
    let mut to = |m: i64| {
        f.clock.advance(Duration::minutes(m - now));
        now = m;
    };
    assert!(f.engine.tick().await.unwrap().is_empty());
    to(15);
    assert_eq!(kinds(&f.engine.tick().await.unwrap()), [Status]);
    assert!(f.engine.tick().await.unwrap().is_empty());
    to(16);
    ok(&f, &a, "/incident note text:still digging").await;
    to(30);
    assert_eq!(kinds(&f.engine.tick().await.unwrap()), [Status]);
    to(50);
    let posts = f.engine.tick().await.unwrap();
    assert_eq!(kinds(&posts), [Status, Nudge]);
    assert!(
        posts[1]
            .text
            .starts_with("alice: nothing has been recorded on INC-1 for 34m"),
        "{}",
        posts[1].text
    );
    assert_eq!(posts[1].place, "console");
    to(55);
    assert!(f.engine.tick().await.unwrap().is_empty());
    to(61);
    let posts = f.engine.tick().await.unwrap();
    assert_eq!(kinds(&posts), [RtoWarning(50)]);
    assert!(
        posts[0]
            .text
            .contains("INC-1 is at 50% of its 2h00m RTO: 59m left"),
        "{}",
        posts[0].text
    );
    // A long gap crosses 80% and 100% at once: only the highest is posted.
    to(130);
    let posts = f.engine.tick().await.unwrap();
    assert_eq!(kinds(&posts), [RtoWarning(100), Status]);
    assert!(
        posts[0].text.contains("has passed its 2h00m RTO"),
        "{}",
        posts[0].text
    );
    assert!(f.engine.tick().await.unwrap().is_empty());
    // What was posted is stored, so a restart does not repeat it.
    let i = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(i.watch.rto_warned, [50, 80, 100]);
    let status_entries = f
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Status && e.proof == Proof::System)
        .count();
    assert_eq!(status_entries, 7);
    // Resolved incidents are quiet.
    ok(&f, &a, "/incident resolve").await;
    to(400);
    assert!(f.engine.tick().await.unwrap().is_empty());
}

/// A burst of notes moves the incident's last activity once per ACTIVITY_GRAIN, every note is
/// on the timeline, and the nudge comes after the quiet it waits for, from the last activity
/// recorded (early by less than the grain, never late).
#[tokio::test]
async fn a_burst_of_notes_moves_the_last_activity_once_per_grain() {
    use crate::incident::ACTIVITY_GRAIN;
    use crate::watch::PostKind::Nudge;
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    let declared = f.engine.now();
    let last = |f: &Fixture| {
        f.engine
            .store()
            .incident(IncidentId(1))
            .unwrap()
            .unwrap()
            .last_activity
    };
    // Within the grain of the declare: on the timeline, the activity unmoved.
    f.clock.advance(Duration::seconds(10));
    ok(&f, &a, "/incident note text:one").await;
    f.clock.advance(Duration::seconds(10));
    ok(&f, &a, "/incident note text:two").await;
    assert_eq!(last(&f), declared);
    // Past the grain: moved to this note.
    f.clock.advance(ACTIVITY_GRAIN);
    ok(&f, &a, "/incident note text:three").await;
    let moved = f.engine.now();
    assert_eq!(last(&f), moved);
    let notes: Vec<String> = f
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Note)
        .map(|e| e.text)
        .collect();
    assert_eq!(notes, ["one", "two", "three"]);
    // The nudge waits its quiet from the activity recorded (at most the grain early).
    let quiet = Duration::minutes(i64::try_from(f.engine.config().status.quiet_mins).unwrap());
    f.clock.advance(quiet - Duration::seconds(1));
    assert!(
        !kinds(&f.engine.tick().await.unwrap()).contains(&Nudge),
        "nudged before the quiet"
    );
    f.clock.advance(Duration::seconds(1));
    assert!(kinds(&f.engine.tick().await.unwrap()).contains(&Nudge));
}

#[tokio::test]
async fn autocomplete_offers_targets_open_steps_and_nothing_unknown() {
    let config = Config::from_toml(
        "[targets.production]\nurl_env = \"DATABASE_URL\"\n[targets.staging]\nurl_env = \"STAGING_URL\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let f = fixture_with(config);
    let a = alice();
    let targets = f.engine.complete(&a, "target", "").await;
    assert_eq!(
        targets.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
        ["production", "staging"]
    );
    assert_eq!(targets[1].name, "staging (STAGING_URL)");
    assert_eq!(f.engine.complete(&a, "target", "STAG").await.len(), 1);
    assert!(f.engine.complete(&a, "step", "").await.is_empty());
    ok(&f, &a, DECLARE).await;
    ok(&f, &a, "/step done step:1").await;
    let steps = f.engine.complete(&a, "step", "").await;
    assert_eq!(steps[0].value, "stop-apps");
    assert_eq!(steps[0].name, "2. Stop API and web applications (pending)");
    assert!(steps.len() <= crate::complete::MAX_CHOICES);
    let restore = f.engine.complete(&a, "step", "restore").await;
    assert_eq!(restore[0].value, "db-restore");
    // Without a bucket, `latest` is still offered; unknown options offer nothing.
    let backups = f.engine.complete(&a, "backup", "").await;
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].value, "latest");
    assert!(f.engine.complete(&a, "request", "").await.is_empty());
    assert!(f.engine.complete(&a, "nonsense", "").await.is_empty());
}

/// Compares with a snapshot file; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/snapshots")
        .join(name);
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got, want,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept)"
    );
}

#[tokio::test]
async fn the_post_incident_report_of_a_scripted_incident() {
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    ok(&f, &a, "/incident role role:comms user:bob").await;
    f.clock.advance(Duration::minutes(4));
    ok(&f, &a, "/step done step:db-assess").await;
    f.clock.advance(Duration::minutes(6));
    ok(&f, &a, "/step done step:stop-apps").await;
    f.clock.advance(Duration::minutes(40));
    ok(&f, &a, "/step done step:db-restore").await;
    ok(&f, &a, "/incident note text:restored from the 02:30 backup").await;
    f.clock.advance(Duration::minutes(12));
    ok(
        &f,
        &a,
        "/step skip step:db-reindex reason:search was not affected",
    )
    .await;
    f.clock.advance(Duration::minutes(10));
    let r = f.engine.run(&a, "/incident resolve").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("Post-incident report: "), "{}", r.text);
    assert!(r.text.contains("Timeline chart: "), "{}", r.text);
    let chart = r
        .attachments
        .iter()
        .find(|x| x.name == "INC-1-timeline.png")
        .expect("chart attached");
    let decoder = png::Decoder::new(std::io::Cursor::new(chart.data.clone()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // 15 steps under 3 phase headings.
    assert_eq!((info.width, info.height), (1000, 112 + 18 * 24 + 44));
    let done = crate::chart::colour(StepState::Done);
    let green = buf
        .chunks(3)
        .filter(|p| p == &[done.r(), done.g(), done.b()])
        .count();
    assert!(green > 50, "{green} done-coloured pixels");
    let saved = f.engine.store().path().join("reports/INC-1.timeline.png");
    assert_eq!(std::fs::read(saved).unwrap(), chart.data);
    if let Ok(dir) = std::env::var("DRBOT_CHART_OUT") {
        std::fs::write(std::path::Path::new(&dir).join("chart.png"), &chart.data).unwrap();
    }
    let incident = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    let md = crate::report::build(&f.engine, &incident).unwrap();
    snapshot("report_database.md", &md);
    let written = f.engine.store().path().join("reports/INC-1.md");
    assert_eq!(std::fs::read_to_string(written).unwrap(), md);
}

#[tokio::test]
async fn long_timelines_are_condensed_with_the_full_text_attached() {
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    for n in 0..40 {
        f.clock.advance(Duration::minutes(1));
        ok(&f, &a, &format!("/incident note text:checked replica {n}")).await;
    }
    f.clock.advance(Duration::minutes(30));
    ok(&f, &a, "/step done step:stop-apps").await;
    let r = f.engine.run(&a, "/incident timeline").await;
    assert_eq!(r.outcome, Outcome::Done);
    assert!(
        r.text.contains("42 entries over 1h10m. Condensed below"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(
            "03:01–03:40 (39m)  alice  40 note entries: checked replica 0 … checked replica 39"
        ),
        "{}",
        r.text
    );
    assert!(r.text.lines().count() < 8, "{}", r.text);
    assert_eq!(r.attachments.len(), 1);
    assert_eq!(r.attachments[0].name, "INC-1-timeline.txt");
    assert_eq!(r.attachments[0].text.lines().count(), 42);
    assert!(r.full_text().contains("checked replica 17"));
}

#[tokio::test]
async fn a_panic_inside_a_command_is_a_recorded_failure_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap(),
    ));
    // Reading the target's URL panics, with a secret in the panic's message.
    let config = Config::from_toml(
        "[targets.production]\nurl_env = \"DATABASE_URL\"\n",
        Path::new("drbot.toml"),
    )
    .unwrap();
    // Once armed (after the engine has read its secrets).
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = armed.clone();
    let engine = Engine::new(Arc::new(config), store, clock).with_env(Arc::new(move |k| {
        if k == "DATABASE_URL" && trigger.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("boom at postgres://app:hunter2@db/x");
        }
        None
    }));
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let a = alice();
    let r = engine.run(&a, DECLARE).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);

    let r = engine.run(&a, "/db check").await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.text);
    assert!(
        r.text.contains("/db check stopped on an internal error") && r.text.contains("boom"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("hunter2"), "{}", r.text);
    let timeline = engine.store().timeline(IncidentId(1)).unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(last.kind, EntryKind::Command);
    assert!(
        last.text.contains("/db check — failed: /db check stopped"),
        "{}",
        last.text
    );
    assert!(!timeline.iter().any(|e| e.text.contains("hunter2")));

    // The same engine answers the next command, and the one after that writes.
    let r = engine.run(&a, "/incident note text:still here").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let r = engine.run(&a, "/incident status").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
}

#[tokio::test]
async fn a_scenario_not_built_yet_answers_so_and_changes_nothing() {
    let f = fixture();
    let engine = &f.engine;
    // Every scenario is built now; the answer of one that is not yet stays tested.
    let inv = crate::scenarios::table().parse("/drill report").unwrap();
    let text = crate::scenario::not_built(&inv).to_string();
    assert!(
        text.contains("/drill report is not built into this drbot yet"),
        "{text}"
    );
    let r = engine.run(&alice(), "/drill history").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("No drill has run yet"), "{}", r.text);
    assert!(engine.store().drills().unwrap().is_empty());
    // A destructive command whose bucket is not configured never becomes an approval request.
    let r = engine
        .run(
            &alice(),
            "/storage restore prefix:artworks/ at:2026-11-25T10:00:00Z",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(r.text.contains("No bucket is configured"), "{}", r.text);
    assert!(engine.store().approvals().unwrap().is_empty());
}

#[tokio::test]
async fn a_step_left_running_is_interrupted_whatever_target_the_panic_knew() {
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    let inv = crate::scenarios::table().parse("/db backup").unwrap();
    f.engine
        .step_started(&a, &inv, inv.spec, Some("production"))
        .unwrap();
    let step = |id: &str| {
        f.engine
            .store()
            .incident(IncidentId(1))
            .unwrap()
            .unwrap()
            .step(id)
            .unwrap()
            .state
    };
    assert_eq!(step("post-backups"), StepState::Running);
    // A command on staging does not finish production's step …
    f.engine
        .step_finished(&a, &inv, inv.spec, Some("staging"), StepState::Done, None)
        .unwrap();
    assert_eq!(step("post-backups"), StepState::Running);
    // … but the panic guard, which knows no target, marks it interrupted.
    f.engine
        .step_finished(&a, &inv, inv.spec, None, StepState::Interrupted, None)
        .unwrap();
    assert_eq!(step("post-backups"), StepState::Interrupted);
}

#[tokio::test]
async fn the_full_scenario_groups_its_steps_and_keeps_a_clock_per_component() {
    let f = fixture();
    let a = alice();
    ok(
        &f,
        &a,
        "/incident declare scenario:full severity:sev1 title:\"region down\"",
    )
    .await;
    f.clock.advance(chrono::Duration::minutes(45));
    // The search steps settle at 45 minutes: past its 30-minute RTO.
    for step in ["search-health", "search-dump", "search-reindex"] {
        ok(&f, &a, &format!("/step skip step:{step} reason:drill")).await;
    }
    let text = ok(&f, &a, "/incident status").await;
    assert!(text.contains("Per component:"), "{text}");
    assert!(
        text.contains("database 45m of its 2h00m RTO (37%), 0 of 6 steps settled"),
        "{text}"
    );
    assert!(
        text.contains("storage  45m of its 1h00m RTO (75%), 0 of 4 steps settled"),
        "{text}"
    );
    assert!(
        text.contains("search   done in 45m of its 30m RTO (missed by 15m)"),
        "{text}"
    );
    // Grouped: each component's steps under its heading, the manual ones by themselves.
    for heading in [
        " Infrastructure\n",
        " Database\n",
        " Storage\n",
        " Search\n",
        " Applications and network\n",
    ] {
        assert!(text.contains(heading), "{heading:?} in {text}");
    }
    f.clock.advance(chrono::Duration::minutes(30));
    let text = ok(&f, &a, "/incident status").await;
    assert!(
        text.contains("storage  1h15m of its 1h00m RTO (125%) — OVER by 15m"),
        "{text}"
    );
    // Other scenarios have one clock.
    let g = fixture();
    ok(&g, &a, DECLARE).await;
    assert!(
        !ok(&g, &a, "/incident status")
            .await
            .contains("Per component")
    );
}

/// The objectives table's row for `name`, split into its cells.
fn objective_row(md: &str, name: &str) -> Vec<String> {
    md.lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no {name} row in {md}"))
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

#[tokio::test]
async fn a_full_incident_left_half_done_is_reported_as_half_done() {
    let f = fixture();
    let a = alice();
    ok(
        &f,
        &a,
        "/incident declare scenario:full severity:sev1 title:Regiune căzută: fișierele șterse 🔥 数据库故障 한국어 — and a title long enough to run past any legend",
    )
    .await;
    f.clock.advance(Duration::minutes(20));
    for step in ["search-health", "search-dump", "search-reindex"] {
        ok(
            &f,
            &a,
            &format!("/step skip step:{step} reason:not affected"),
        )
        .await;
    }
    ok(&f, &a, "/step done step:db-restore").await;
    // Steps drbot ran: one done (12 minutes), one still running.
    let now = f.engine.now();
    f.engine
        .store()
        .update_incident(IncidentId(1), |i| {
            let s = i.step_mut("storage-assess").unwrap();
            s.state = StepState::Done;
            s.started_at = Some(now - Duration::minutes(12));
            s.at = Some(now);
            s.by = Some("alice".to_string());
            let s = i.step_mut("db-verify").unwrap();
            s.state = StepState::Running;
            s.started_at = Some(now - Duration::minutes(3));
            Ok::<_, drbot_state::StateError>(Vec::new())
        })
        .unwrap();
    // Typos and refusals are not the incident's story.
    for bad in [
        "/incident stauts",
        "/step done step:99",
        "/drill start kind:nope",
    ] {
        let r = f.engine.run(&a, bad).await;
        assert_ne!(r.outcome, Outcome::Done, "{bad}");
    }
    f.clock.advance(Duration::minutes(28));
    let r = ok(&f, &a, "/incident resolve").await;
    let open = f
        .engine
        .store()
        .incident(IncidentId(1))
        .unwrap()
        .unwrap()
        .steps;
    assert!(open.iter().any(|s| !s.state.is_settled()));
    assert!(
        r.contains("recovery steps and") && r.contains("checklist items are still open"),
        "{r}"
    );
    let incident = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    let md = crate::report::build(&f.engine, &incident).unwrap();
    // Resolved at 48 minutes, under the 4-hour RTO, but not met: recovery is unfinished.
    let full = objective_row(&md, "RTO (full)");
    assert!(full[2].starts_with("not finished:"), "{full:?}");
    assert_eq!(full[3], "not finished");
    let db = objective_row(&md, "RTO (database)");
    assert!(
        db[2].starts_with("not finished: 5 of 6 steps open"),
        "{db:?}"
    );
    // Search was settled (by hand) at 20 minutes: met, and said how.
    let search = objective_row(&md, "RTO (search)");
    assert_eq!(search[2], "20m (3 of 3 steps marked by hand)", "{search:?}");
    assert!(search[3].starts_with("met"), "{search:?}");
    assert!(
        md.contains("| Restore database | done (marked by hand) | alice"),
        "{md}"
    );
    assert!(
        md.contains("2 commands typed in this incident were refused"),
        "{md}"
    );
    assert!(!md.contains("stauts"), "{md}");
    // The card agrees with the table: nothing green while recovery is unfinished.
    let r = f.engine.run(&a, "/incident report").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let card = r.card.expect("a report card");
    assert_ne!(card.state, crate::reply::CardState::Good, "{card:?}");
    let chart = r
        .attachments
        .iter()
        .find(|x| x.name == "INC-1-timeline.png")
        .expect("chart attached");
    if let Ok(dir) = std::env::var("DRBOT_CHART_OUT") {
        std::fs::write(std::path::Path::new(&dir).join("full.png"), &chart.data).unwrap();
    }
}

#[tokio::test]
async fn mistakes_in_the_record_can_be_corrected_and_each_correction_is_on_the_timeline() {
    let f = fixture();
    let a = alice();
    ok(&f, &a, DECLARE).await;
    // A step marked by mistake goes back to pending; one drbot did cannot be undone by hand.
    ok(&f, &a, "/step done step:stop-apps").await;
    let text = ok(&f, &a, "/step undo step:2").await;
    assert!(
        text.contains("Step 2. Stop API and web applications is pending again"),
        "{text}"
    );
    let rec = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(rec.step("stop-apps").unwrap().state, StepState::Pending);
    refused(&f, &a, "/step undo step:2", Outcome::Refused, "is pending").await;
    f.engine
        .store()
        .update_incident(IncidentId(1), |i| {
            let s = i.step_mut("db-restore").unwrap();
            s.state = StepState::Done;
            s.by = Some("alice".to_string());
            Ok::<_, drbot_state::StateError>(Vec::new())
        })
        .unwrap();
    refused(
        &f,
        &a,
        "/step undo step:db-restore",
        Outcome::Refused,
        "not marked by hand",
    )
    .await;

    // Title and severity; byte for byte.
    let text = ok(
        &f,
        &a,
        "/incident edit title:Primary  DB “down” ăîș 数据库 🔥",
    )
    .await;
    assert!(text.contains("Corrected title"), "{text}");
    ok(&f, &a, "/incident edit severity:sev2").await;
    let rec = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(rec.title, "Primary  DB “down” ăîș 数据库 🔥");
    assert_eq!(rec.severity, "sev2");
    refused(
        &f,
        &a,
        "/incident edit",
        Outcome::Usage,
        "Say what to correct",
    )
    .await;
    refused(
        &f,
        &a,
        "/incident edit severity:sev2",
        Outcome::Refused,
        "nothing to correct",
    )
    .await;

    // Resolve, reopen, list.
    ok(&f, &a, "/incident resolve").await;
    f.clock.advance(Duration::minutes(5));
    let text = ok(&f, &a, "/incident reopen").await;
    assert!(text.contains("Reopened INC-1"), "{text}");
    let rec = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(rec.status, IncidentStatus::Open);
    assert_eq!(rec.resolved_at, None);
    ok(&f, &a, "/incident close confirm:yes").await;
    let text = ok(&f, &a, "/incident list").await;
    assert!(
        text.contains("No incident is open") && text.contains("INC-1 closed"),
        "{text}"
    );
    let text = ok(&f, &a, "/incident reopen incident:INC-1").await;
    assert!(
        text.contains("it was closed") || text.contains("Reopened INC-1"),
        "{text}"
    );
    let text = ok(&f, &a, "/incident list").await;
    assert!(text.contains("INC-1 open"), "{text}");

    let kinds: Vec<(EntryKind, String)> = f
        .engine
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.text))
        .collect();
    let has =
        |k: EntryKind, says: &str| kinds.iter().any(|(kind, t)| *kind == k && t.contains(says));
    assert!(
        has(
            EntryKind::Step,
            "put back to pending (it was marked done by alice)"
        ),
        "{kinds:#?}"
    );
    assert!(
        has(EntryKind::Edited, "title “Primary DB down” → “Primary  DB"),
        "{kinds:#?}"
    );
    assert!(has(EntryKind::Edited, "severity sev1 → sev2"), "{kinds:#?}");
    assert!(has(EntryKind::Reopened, "it was resolved"), "{kinds:#?}");
    assert!(has(EntryKind::Reopened, "it was closed"), "{kinds:#?}");
}

#[tokio::test]
async fn reopening_is_refused_when_it_would_break_one_incident_per_channel() {
    let f = fixture();
    let a = alice();
    refused(
        &f,
        &a,
        "/incident reopen",
        Outcome::Refused,
        "no open incident",
    )
    .await;
    refused(
        &f,
        &a,
        "/incident report",
        Outcome::Refused,
        "no open incident",
    )
    .await;
    ok(&f, &a, DECLARE).await;
    refused(&f, &a, "/incident reopen", Outcome::Refused, "already open").await;
    ok(&f, &a, "/incident close confirm:yes").await;
    ok(&f, &a, DECLARE).await;
    // INC-2 is open in the same place: INC-1 stays closed.
    let r = f.engine.run(&a, "/incident reopen incident:INC-1").await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("INC-2") && r.text.contains("one incident per channel"),
        "{}",
        r.text
    );
    let one = f.engine.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(one.status, IncidentStatus::Closed);
    // Someone without the commander role cannot reopen, edit or close.
    let bob = person("bob", &[]);
    for line in [
        "/incident edit incident:INC-2 severity:sev3",
        "/incident close incident:INC-2 confirm:yes",
    ] {
        let r = f.engine.run(&bob, line).await;
        assert_eq!(r.outcome, Outcome::Refused, "{line}: {}", r.text);
        assert!(r.text.contains("commander role"), "{line}: {}", r.text);
    }
    let two = f.engine.store().incident(IncidentId(2)).unwrap().unwrap();
    assert_eq!(
        (two.severity.as_str(), two.status),
        ("sev1", IncidentStatus::Open)
    );
}

#[tokio::test]
async fn status_comes_with_a_card_that_turns_red_past_the_rto() {
    let f = fixture();
    let a = alice();
    ok(
        &f,
        &a,
        "/incident declare scenario:full severity:sev1 title:\"region down\"",
    )
    .await;
    let r = f.engine.run(&a, "/incident status").await;
    let card = r.card.expect("a status card");
    assert_eq!(card.state, crate::reply::CardState::Neutral);
    let field = |name: &str| {
        card.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {card:?}"))
    };
    assert!(field("Clock").contains("of the 4h00m RTO"), "{card:?}");
    assert!(field("Per component").contains("database"), "{card:?}");
    assert!(field("Next").starts_with("1. "), "{card:?}");
    assert!(field("Roles").contains("commander alice"), "{card:?}");
    f.clock.advance(Duration::hours(5));
    let r = f.engine.run(&a, "/incident status").await;
    assert_eq!(r.card.expect("card").state, crate::reply::CardState::Bad);
}
