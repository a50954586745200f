//! Stakeholder notifications through the durable outbox, against fake Resend and status page
//! servers: retries with backoff, the same idempotency key on every retry, permanent failures,
//! and a kill -9 mid-delivery that still sends each notification exactly once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Minutes;
use drbot_commands::{Config, Engine, ManualClock, Outcome};
use drbot_state::{DeliveryStatus, EntryKind, IncidentId, Store};

use crate::database::commander;
use crate::fake_http::{Answer, FakeHttp};
use crate::support::Drbot;

fn notify_config(resend: &str) -> String {
    format!(
        "[notify]\nmin_severity = \"sev2\"\nemail_from = \"drbot@example.com\"\n\
         email_to = [\"ceo@example.com\", \"support@example.com\"]\nresend_base = \"{resend}\"\n"
    )
}

fn engine(dir: &Path, config: &str, hook: &str, clock: Arc<ManualClock>) -> Engine {
    let config = Config::from_toml(config, Path::new("t.toml")).unwrap();
    let hook = hook.to_string();
    Engine::new(Arc::new(config), Store::open(dir).unwrap(), clock).with_env(Arc::new(move |k| {
        match k {
            "RESEND_API_KEY" => Some("re_secret_key".to_string()),
            "STATUSPAGE_WEBHOOK_URL" => Some(hook.clone()),
            _ => None,
        }
    }))
}

/// The engine's notification on `channel`.
pub(crate) fn outbox_item(e: &Engine, channel: &str) -> drbot_state::OutboxItem {
    e.store()
        .outbox()
        .unwrap()
        .into_iter()
        .find(|i| i.channel == channel)
        .unwrap()
}

/// An engine on a manual clock, wired to `fake`, with a sev1 incident just declared.
async fn declared(
    fake: &FakeHttp,
) -> (
    tempfile::TempDir,
    Arc<ManualClock>,
    Engine,
    drbot_commands::Reply,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let e = engine(
        dir.path(),
        &notify_config(&fake.base),
        &format!("{}/hook", fake.base),
        clock.clone(),
    );
    let r = e
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
        )
        .await;
    (dir, clock, e, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_retry_with_backoff_and_the_same_key() {
    let fake = FakeHttp::start().await;
    fake.script(
        "/emails",
        vec![
            Answer { retry_after: Some("30".into()), ..Answer::status(429, serde_json::json!({ "statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests" })) },
            Answer::status(500, serde_json::json!({ "statusCode": 500, "name": "internal_server_error", "message": "oops" })),
        ],
    );
    let (_dir, clock, e, r) = declared(&fake).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains("Stakeholders are being notified (email, statuspage)"),
        "{}",
        r.text
    );
    // The status page got it at once; email was told to come back in 30 s.
    let hook = fake.hits("/hook");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].body["status"], "investigating");
    assert_eq!(hook[0].body["incident"], "INC-1");
    assert!(hook[0].headers.contains_key("idempotency-key"));
    assert_eq!(fake.hits("/emails").len(), 1);
    assert_eq!(e.deliver_due().await.unwrap(), 0);
    assert_eq!(fake.hits("/emails").len(), 1, "not due before Retry-After");
    clock.advance(Minutes::seconds(30));
    e.deliver_due().await.unwrap(); // 500: back off 10 s
    clock.advance(Minutes::seconds(9));
    e.deliver_due().await.unwrap();
    assert_eq!(fake.hits("/emails").len(), 2);
    clock.advance(Minutes::seconds(1));
    assert_eq!(e.deliver_due().await.unwrap(), 1);
    let emails = fake.hits("/emails");
    assert_eq!(emails.len(), 3);
    let key = &emails[0].headers["idempotency-key"];
    assert!(
        emails
            .iter()
            .all(|h| &h.headers["idempotency-key"] == key && h.body == emails[0].body)
    );
    assert_eq!(emails[0].headers["authorization"], "Bearer re_secret_key");
    assert!(emails.iter().all(|h| h.method == "POST"));
    let body = &emails[0].body;
    assert_eq!(
        body["to"],
        serde_json::json!(["ceo@example.com", "support@example.com"])
    );
    assert!(
        body["subject"]
            .as_str()
            .unwrap()
            .starts_with("[SEV1] Service disruption"),
        "{body}"
    );
    assert!(
        body["text"].as_str().unwrap().contains("Next update by"),
        "{body}"
    );
    assert!(body["html"].as_str().unwrap().starts_with("<p>"), "{body}");

    let timeline = e.store().timeline(IncidentId(1)).unwrap();
    let notes: Vec<&str> = timeline
        .iter()
        .filter(|x| x.kind == EntryKind::Notification)
        .map(|x| x.text.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|t| t.starts_with("Stakeholder notice queued for email, statuspage")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|t| t.starts_with("Stakeholder notice delivered by statuspage")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|t| t.starts_with("Stakeholder notice delivered by email")),
        "{notes:?}"
    );
    let all: String = timeline.iter().map(|x| x.text.clone()).collect();
    assert!(!all.contains("re_secret_key"));

    // A rejected request fails for good, on the timeline.
    fake.script(
        "/emails",
        vec![Answer::status(422, serde_json::json!({ "statusCode": 422, "name": "validation_error", "message": "Invalid `to` field" }))],
    );
    let r = e
        .run(
            &commander(),
            "/notify stakeholders message:Orders are back for most customers",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains("email: FAILED (HTTP 422: Invalid `to` field)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("statuspage: delivered"), "{}", r.text);
    let failed = e
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|i| i.status == DeliveryStatus::Failed)
        .count();
    assert_eq!(failed, 1);
    // Resolving tells stakeholders too.
    let r = e.run(&commander(), "/incident resolve").await;
    assert!(
        r.text.contains("Stakeholders are being notified"),
        "{}",
        r.text
    );
    assert_eq!(
        fake.hits("/hook").last().unwrap().body["status"],
        "resolved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_channel_notify_is_refused_and_minor_incidents_are_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let e = engine(dir.path(), "", "", clock);
    e.run(
        &commander(),
        "/incident declare scenario:search severity:sev3 title:slow",
    )
    .await;
    let r = e
        .run(&commander(), "/notify stakeholders message:hello")
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{}", r.text);
    assert!(
        r.text.contains("No stakeholder channel is configured"),
        "{}",
        r.text
    );
    let fake = FakeHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine(
        dir.path(),
        &notify_config(&fake.base),
        "",
        Arc::new(ManualClock::new(chrono::Utc::now())),
    );
    let r = e
        .run(
            &commander(),
            "/incident declare scenario:search severity:sev3 title:slow",
        )
        .await;
    assert!(!r.text.contains("Stakeholders"), "{}", r.text);
    assert!(fake.hits("/emails").is_empty());
}

#[test]
fn a_kill_mid_delivery_still_sends_each_notice_exactly_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeHttp::start());
    fake.slow(Duration::from_secs(3));
    let d = Drbot::new(&notify_config(&fake.base));
    let exec = |line: &str| {
        d.command()
            .args(["exec", line])
            .env("RESEND_API_KEY", "re_secret_key")
            .output()
            .unwrap()
    };
    assert!(
        exec("/incident declare scenario:storage severity:sev3 title:\"images missing\"")
            .status
            .success()
    );
    let mut child = d
        .command()
        .args([
            "exec",
            "/notify stakeholders message:Images are being restored",
        ])
        .env("RESEND_API_KEY", "re_secret_key")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while the email service is still answering.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while fake.hits("/emails").is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fake.hits("/emails").len(), 1);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // The next drbot delivers what is still pending, with the same key.
    let out = exec("/incident status");
    assert!(out.status.success());
    let hits = fake.hits("/emails");
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].headers["idempotency-key"],
        hits[1].headers["idempotency-key"]
    );
    assert_eq!(hits[0].body, hits[1].body);
    // One key: Resend sends one email. And nothing more is pending.
    assert_eq!(fake.delivered("/emails"), 1);
    let again = exec("/incident status");
    assert!(again.status.success());
    assert_eq!(fake.hits("/emails").len(), 2);
    let store = Store::open(&d.data_dir()).unwrap();
    assert!(store.pending_outbox().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_retry_after_headers_and_huge_bodies_leave_drbot_answering() {
    let fake = FakeHttp::start().await;
    let rate_limited = |v: &str| Answer {
        retry_after: Some(v.to_string()),
        ..Answer::status(429, serde_json::json!({ "message": "slow down" }))
    };
    fake.script(
        "/emails",
        vec![
            rate_limited("1e30"),
            rate_limited("-5"),
            rate_limited("nan"),
            rate_limited("Thu, 01 Jan 1970 00:00:00 GMT"),
            Answer::status(500, serde_json::json!({ "message": "x".repeat(10 << 20) })),
        ],
    );
    let (_dir, clock, e, r) = declared(&fake).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    // 1e30 seconds is an hour at most; every command keeps working meanwhile.
    let r = e.run(&commander(), "/incident status").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    clock.advance(Minutes::minutes(59));
    assert_eq!(e.deliver_due().await.unwrap(), 0);
    assert_eq!(fake.hits("/emails").len(), 1, "not before the hour");
    // Then -5, nan and a date in 1970 fall back to the backoff (10 s, 20 s, 40 s), and a 10 MB
    // error body is read only in part; the sixth attempt delivers.
    for wait in [60, 10, 20, 40, 80] {
        clock.advance(Minutes::seconds(wait));
        e.deliver_due().await.unwrap();
        let r = e.run(&commander(), "/incident status").await;
        assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    }
    assert_eq!(fake.hits("/emails").len(), 6);
    let item = outbox_item(&e, "email");
    assert_eq!(item.status, DeliveryStatus::Delivered, "{item:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_answers_costs_its_timeout_and_is_retried() {
    let fake = FakeHttp::start().await;
    fake.slow(Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let config = format!("{}timeout_secs = 1\n", notify_config(&fake.base));
    let e = engine(dir.path(), &config, &format!("{}/hook", fake.base), clock);
    let started = std::time::Instant::now();
    let r = e
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    // Two channels, a second each: the declare is not held for the hour the fake would take.
    assert!(started.elapsed() < Duration::from_secs(30));
    let outbox = e.store().outbox().unwrap();
    assert_eq!(outbox.len(), 2);
    for item in &outbox {
        assert_eq!(item.status, DeliveryStatus::Pending, "{item:?}");
        assert_eq!(
            item.last_error.as_deref(),
            Some("timed out after 1 s"),
            "{item:?}"
        );
    }
    let r = e.run(&commander(), "/incident status").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_echoed_back_in_an_error_body_is_never_repeated() {
    let fake = FakeHttp::start().await;
    fake.script(
        "/emails",
        vec![Answer::status(
            403,
            serde_json::json!({ "statusCode": 403, "name": "invalid_api_key",
                "message": "API key re_secret_key is invalid" }),
        )],
    );
    fake.script(
        "/hook",
        vec![Answer::status(
            500,
            serde_json::json!({ "message": "cannot post to the hook at this URL" }),
        )],
    );
    let (dir, _clock, e, r) = declared(&fake).await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let email = outbox_item(&e, "email");
    assert_eq!(email.status, DeliveryStatus::Failed, "{email:?}");
    assert_eq!(
        email.last_error.as_deref(),
        Some("HTTP 403: API key *** is invalid")
    );
    let status = e.run(&commander(), "/incident status").await;
    let timeline = e.run(&commander(), "/incident timeline").await;
    let stored: String = e
        .store()
        .timeline(IncidentId(1))
        .unwrap()
        .iter()
        .map(|t| t.text.clone())
        .collect();
    assert!(stored.contains("failed for good"), "{stored}");
    for text in [&status.text, &timeline.text, &stored] {
        assert!(!text.contains("re_secret_key"), "{text}");
    }
    drop(e);
    // Nor in the store's bytes on disk.
    let mut on_disk = Vec::new();
    for f in walk(dir.path()) {
        on_disk.extend(std::fs::read(f).unwrap());
    }
    let needle = b"re_secret_key";
    assert!(!on_disk.windows(needle.len()).any(|w| w == needle));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
