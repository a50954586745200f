//! drbot's own state off the host: export to moto, the data directory lost, import on a "new
//! host" — the same timelines, waiting approvals void, undelivered notices sent once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use drbot_commands::state_export;
use drbot_commands::{Config, Engine, Outcome, SystemClock};
use drbot_state::{ApprovalStatus, DeliveryStatus, IncidentId, Store};

use crate::database::{approver, commander, config_text, env_map, setup};
use crate::fake_http::{Answer, FakeHttp};
use crate::notify::outbox_item;
use crate::support::{Drbot, age_key, bucket, moto};

fn engine(dir: &Path, config: &Config, env: HashMap<String, String>) -> Engine {
    Engine::new(
        Arc::new(config.clone()),
        Store::open(dir).unwrap(),
        Arc::new(SystemClock),
    )
    .with_env(Arc::new(move |k| env.get(k).cloned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_wipe_import_gives_the_same_state_and_sends_nothing_twice() {
    let s = setup().await;
    s.source
        .psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let fake = FakeHttp::start().await;
    // Email fails for now (it stays queued with its key); the status page takes it.
    fake.script(
        "/emails",
        vec![Answer::status(
            500,
            serde_json::json!({ "message": "down" }),
        )],
    );
    let old_host = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = {:?}\n{}\n[notify]\nemail_from = \"drbot@example.com\"\n\
         email_to = [\"ceo@example.com\"]\nresend_base = \"{}\"\n",
        old_host.path().display().to_string(),
        config_text(&s.bucket, &s.key),
        fake.base
    );
    let config = Config::from_toml(&text, Path::new("t.toml")).unwrap();
    let mut env = env_map(moto(), &s.source.url(), &s.target.url());
    env.insert("RESEND_API_KEY".into(), "re_test_key".into());
    env.insert(
        "STATUSPAGE_WEBHOOK_URL".into(),
        format!("{}/hook", fake.base),
    );
    let e = engine(old_host.path(), &config, env.clone());
    let r = e
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"db lost\"",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    for n in 0..20 {
        e.run(&commander(), &format!("/incident note text:note {n}"))
            .await;
    }
    e.run(&commander(), "/step done step:stop-apps").await;
    let r = e
        .run(&commander(), "/db restore backup:latest target:staging")
        .await;
    let Outcome::AwaitingApproval(request) = r.outcome else {
        panic!("{}", r.text)
    };
    let timeline_before = e.store().timeline(IncidentId(1)).unwrap();
    let email_before = outbox_item(&e, "email");
    assert_eq!(email_before.status, DeliveryStatus::Pending);
    let exported = state_export::export(&e).await.unwrap();
    assert!(exported.key.starts_with("state/"), "{}", exported.key);
    drop(e);

    // The old host is gone; a new one with the same config but an empty data directory.
    std::fs::remove_dir_all(old_host.path()).unwrap();
    let new_host = tempfile::tempdir().unwrap();
    let data = new_host.path().join("data");
    let mut config = config.clone();
    config.data_dir = data.clone();
    let env_fn = {
        let env = env.clone();
        move |k: &str| env.get(k).cloned()
    };
    let said = state_export::import(&config, &env_fn, "latest")
        .await
        .unwrap();
    assert!(
        said.contains("1 incidents") && said.contains(&request),
        "{said}"
    );
    // Importing again over it is refused and changes nothing.
    let again = state_export::import(&config, &env_fn, "latest").await;
    let again = again.unwrap_err().to_string();
    assert!(again.contains("not empty"), "{again}");

    let e = engine(&data, &config, env);
    let after = e.store().timeline(IncidentId(1)).unwrap();
    assert_eq!(after[..timeline_before.len()], timeline_before[..]);
    assert!(
        after[timeline_before.len()..]
            .iter()
            .any(|t| t.text.contains("is void: drbot's state was imported")),
        "{after:?}"
    );
    let req = e.store().approvals().unwrap().pop().unwrap();
    assert_eq!(req.status, ApprovalStatus::Voided);
    // Bob's approval cannot run it now.
    let r = e
        .run(&approver(), &format!("/approve request:{request}"))
        .await;
    assert_ne!(r.outcome, Outcome::Done, "{}", r.text);
    // The notice that was waiting goes out once, with the key it had.
    let email = outbox_item(&e, "email");
    assert_eq!(email, email_before);
    e.store()
        .update_outbox(email.id, |i| {
            i.next_at = chrono::Utc::now();
            Ok::<_, drbot_state::StateError>(vec![])
        })
        .unwrap();
    e.deliver_due().await.unwrap();
    e.deliver_due().await.unwrap();
    let emails = fake.hits("/emails");
    assert_eq!(emails.len(), 2, "one failed try before, one now");
    assert_eq!(
        emails[0].headers["idempotency-key"],
        emails[1].headers["idempotency-key"]
    );
    assert_eq!(fake.delivered("/emails"), 1);
    assert_eq!(fake.delivered("/hook"), 1);
    // New entries follow the imported ones.
    let r = e
        .run(&commander(), "/incident note text:on the new host")
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let last = e.store().timeline(IncidentId(1)).unwrap();
    assert_eq!(last.last().unwrap().text, "on the new host");
    assert!(last.len() > after.len());
}

/// A bucket of the test's own and an age key, as drbot's config (keep the key alive).
async fn bucket_and_key(prefix: &str) -> (String, crate::support::AgeKey, String) {
    let bucket = bucket(prefix).await;
    let key = age_key();
    let config = format!(
        "[storage]\nregion = \"us-east-1\"\nbackup_bucket = \"{bucket}\"\n\
         [backup]\nage_identity_file = \"{}\"\nage_recipients = [\"{}\"]\n",
        key.file.display(),
        key.recipient
    );
    (bucket, key, config)
}

/// moto's address and credentials for a `drbot` command.
fn bucket_env(c: &mut std::process::Command) {
    c.env("R2_ENDPOINT", moto())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
}

#[test]
fn the_state_commands_round_trip_through_the_binary() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_bucket, _key, config) = rt.block_on(bucket_and_key("drbot-state-"));
    let old = Drbot::new(&config);
    let r = old.exec(
        None,
        "/incident declare scenario:storage severity:sev3 title:\"images\"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    old.exec(None, "/incident note text:from the old host");
    let mut c = old.command();
    c.args(["state", "export"]);
    bucket_env(&mut c);
    let out = c.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {out:?}");
    assert!(said.contains("Exported drbot's state to state/"), "{said}");
    let timeline = old.exec(None, "/incident timeline").stdout;

    let new = Drbot::new(&config);
    // Without the bucket's credentials it fails, says why, and leaves no directory.
    let out = new
        .command()
        .args(["state", "import", "latest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!new.data_dir().exists());
    // A name that is no export is refused, naming the newest.
    let mut c = new.command();
    c.args(["state", "import", "nope"]);
    bucket_env(&mut c);
    let out = c.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("The newest: state/"), "{said}");
    let mut c = new.command();
    c.args(["state", "import"]);
    bucket_env(&mut c);
    let out = c.output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {out:?}");
    assert_eq!(new.exec(None, "/incident timeline").stdout, timeline);
}

#[test]
fn serve_exports_at_start_and_its_last_word_at_shutdown() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bucket, _key, config) = rt.block_on(bucket_and_key("drbot-serve-state-"));
    let exports = || {
        rt.block_on(async {
            crate::support::s3()
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("state/")
                .send()
                .await
                .unwrap()
                .contents()
                .len()
        })
    };
    let old = Drbot::new(&config);
    let mut c = old.command();
    c.arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    bucket_env(&mut c);
    let mut serve = c.spawn().unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while exports() == 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(exports(), 1, "serve exports when it starts");
    // A change right after it, then SIGTERM: the change still goes off the host.
    let r = old.exec(
        None,
        "/incident declare scenario:search severity:sev3 title:\"search slow\"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    assert!(serve.wait().unwrap().success());
    let new = Drbot::new(&config);
    let mut c = new.command();
    c.args(["state", "import", "latest"]);
    bucket_env(&mut c);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = new.exec(None, "/incident status");
    assert!(r.stdout.contains("search slow"), "{r:?}");
}
