//! `drbot serve` against the fake Discord: registration, acknowledgement within 3 seconds,
//! the reply edited with the result.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::fake_discord::{APP_ID, FakeDiscord, Seen, command, reaction};
use crate::support::Drbot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_command_is_acknowledged_then_answered() {
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\nstakeholder_channel_id = 3\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n",
        fake.base
    ));
    let mut serve = d
        .command()
        .arg("serve")
        .env("DISCORD_TOKEN", "fake.bot.token")
        .env("RUST_LOG", "drbot=debug,serenity=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {l}");
        }
    });
    let stdout = serve.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});

    let reg = fake
        .wait_for(Duration::from_secs(20), |s| {
            s.method == "PUT" && s.path.contains("/commands")
        })
        .await
        .expect("slash commands registered");
    assert_eq!(
        reg.path,
        format!("/api/v10/applications/{APP_ID}/guilds/1/commands")
    );
    // Every built scenario is registered, drills included.
    let names: Vec<&str> = reg
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "incident", "step", "db", "storage", "search", "api", "drill", "backup", "approve",
            "deny", "notify", "contacts", "page", "ack"
        ]
    );
    assert!(fake.identified.lock().unwrap().is_some());

    let data = json!({
        "id": "500", "name": "incident", "type": 1,
        "options": [{ "name": "declare", "type": 1, "options": [
            { "name": "scenario", "type": 3, "value": "database" },
            { "name": "severity", "type": 3, "value": "sev1" },
            { "name": "title", "type": 3, "value": "Primary DB down" }
        ]}]
    });
    let sent = std::time::Instant::now();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(1001, 11, "alice", &[], 2, data),
    );
    let ack = fake
        .wait_for(Duration::from_secs(5), |s| {
            s.path.contains("/interactions/1001/tok1001/callback")
        })
        .await
        .expect("acknowledged");
    assert!(ack.at.duration_since(sent) < Duration::from_secs(3));
    assert_eq!(ack.body["type"], 5);
    let edit = fake
        .wait_for(Duration::from_secs(10), |s| {
            s.method == "PATCH" && s.path.contains("tok1001/messages/@original")
        })
        .await
        .expect("reply edited");
    let content = edit.body["content"].as_str().unwrap();
    assert!(content.contains("Declared INC-1"), "{content}");
    assert!(content.contains("Commander: alice"), "{content}");
    // A sev1 tells stakeholders in their channel, with Discord's duplicate guard.
    let notice = fake
        .wait_for(Duration::from_secs(10), |s| {
            s.method == "POST" && s.path == "/api/v10/channels/3/messages"
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "stakeholder notice: {content} {:#?}",
                fake.seen()
                    .iter()
                    .map(|s| (s.method.clone(), s.path.clone()))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(notice.body["nonce"], "drbot-n1");
    assert_eq!(notice.body["enforce_nonce"], true);
    assert!(
        notice.body["content"]
            .as_str()
            .unwrap()
            .contains("Service disruption"),
        "{}",
        notice.body
    );

    // Outside the incident channel: an ephemeral refusal, nothing run.
    fake.dispatch(
        "INTERACTION_CREATE",
        command(1002, 11, "alice", &[], 77, json!({ "id": "501", "name": "incident", "type": 1, "options": [{ "name": "status", "type": 1, "options": [] }] })),
    );
    let refusal = fake
        .wait_for(Duration::from_secs(5), |s| {
            s.path.contains("/interactions/1002/tok1002/callback")
        })
        .await
        .expect("refused");
    assert_eq!(refusal.body["type"], 4);
    assert_eq!(refusal.body["data"]["flags"], 64);

    // Someone without the commander role: the refusal is ephemeral, and on the timeline.
    let data = json!({
        "id": "502", "name": "incident", "type": 1,
        "options": [{ "name": "resolve", "type": 1, "options": [] }]
    });
    fake.dispatch(
        "INTERACTION_CREATE",
        command(1003, 33, "mallory", &[], 2, data),
    );
    let follow = fake
        .wait_for(Duration::from_secs(5), |s| {
            s.method == "POST" && s.path == format!("/api/v10/webhooks/{APP_ID}/tok1003")
        })
        .await
        .expect("ephemeral refusal");
    assert_eq!(follow.body["flags"], 64);
    assert!(
        follow.body["content"]
            .as_str()
            .unwrap()
            .contains("needs the commander role"),
        "{}",
        follow.body
    );
    assert!(
        fake.wait_for(Duration::from_secs(1), |s| s.method == "DELETE"
            && s.path.contains("tok1003/messages/@original"))
            .await
            .is_some()
    );

    // Resolving uploads the report and the chart as files with the reply.
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            1005,
            11,
            "alice",
            &[],
            2,
            json!({ "id": "504", "name": "incident", "type": 1,
                    "options": [{ "name": "resolve", "type": 1, "options": [] }] }),
        ),
    );
    let upload = fake
        .wait_for(Duration::from_secs(10), |s| {
            s.method == "PATCH" && s.path.contains("tok1005/messages/@original")
        })
        .await
        .expect("resolve reply");
    let files = upload.body["_files"]
        .as_array()
        .expect("a multipart upload");
    let file = |name: &str| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {files:?}"))
    };
    assert!(
        file("INC-1-report.md")["text"]
            .as_str()
            .unwrap()
            .contains("## Lessons learned")
    );
    assert!(
        file("INC-1-timeline.png")["text"]
            .as_str()
            .unwrap()
            .contains("PNG")
    );
    // And a summary card: the objectives coloured by verdict, the chart as its image.
    let card = &upload.body["embeds"][0];
    assert_eq!(
        card["image"]["url"], "attachment://INC-1-timeline.png",
        "{card}"
    );
    let payload = card.to_string();
    // Resolved with no step done: not met, said so.
    assert!(
        payload.contains("RTO (database)") && payload.contains("not finished: 6 of 6 steps open"),
        "{payload}"
    );
    assert!(!payload.contains("— met"), "{payload}");
    // Not green: nothing was measured as met.
    assert!(
        !payload.contains(&format!("\"color\":{}", 0x2ECC71)),
        "{payload}"
    );

    // Autocomplete answers with choices (type 8).
    let mut ac = command(
        1004,
        11,
        "alice",
        &[],
        2,
        json!({
            "id": "503", "name": "step", "type": 1,
            "options": [{ "name": "done", "type": 1, "options": [
                { "name": "step", "type": 3, "value": "stop", "focused": true }
            ]}]
        }),
    );
    ac["type"] = json!(4);
    fake.dispatch("INTERACTION_CREATE", ac);
    let choices = fake
        .wait_for(Duration::from_secs(5), |s| {
            s.path.contains("/interactions/1004/tok1004/callback")
        })
        .await
        .expect("autocomplete");
    assert_eq!(choices.body["type"], 8);
    assert_eq!(
        choices.body["data"]["choices"][0]["value"], "stop-apps",
        "{}",
        choices.body
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The declare is on the timeline, read directly after serve stopped.
    let r = d.exec(None, "/incident timeline incident:INC-1");
    assert!(
        r.stdout
            .contains("Declared sev1 database incident “Primary DB down”; commander alice"),
        "{r:?}"
    );
    // mallory's refused attempt is not the incident's story: it is on the audit log, marked
    // with the incident it was typed in.
    assert!(!r.stdout.contains("mallory"), "{r:?}");
    let store = drbot_state::Store::open(&d.data_dir()).unwrap();
    assert!(
        store
            .audit_about(drbot_state::IncidentId(1))
            .unwrap()
            .iter()
            .any(|e| e.kind == drbot_state::EntryKind::Refused && e.actor.contains("mallory")),
        "{:?}",
        store.audit()
    );
    // The wrong-channel refusal, outside any incident, is in the audit log.
    assert!(
        store
            .audit()
            .unwrap()
            .iter()
            .any(|e| e.text.contains("in channel 77")),
        "{:?}",
        store.audit()
    );
}

fn start_serve(d: &Drbot, env: &[(String, String)]) -> std::process::Child {
    let mut serve = d
        .command()
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "drbot=info,serenity=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {l}");
        }
    });
    serve
}

/// `drbot serve` of `d` with `env`, once its slash commands are registered.
async fn serve_registered(
    fake: &FakeDiscord,
    d: &Drbot,
    env: &[(String, String)],
) -> std::process::Child {
    let serve = start_serve(d, env);
    fake.wait_for(Duration::from_secs(20), |r| {
        r.method == "PUT" && r.path.contains("/commands")
    })
    .await
    .expect("registered");
    serve
}

/// Checks that every payload the fake saw stayed within Discord's limits (it refuses the others
/// with 50035), then stops serve cleanly.
fn stop_within_limits(fake: &FakeDiscord, serve: &mut std::process::Child) {
    assert!(!fake.seen().iter().any(|r| r.reply["code"] == 50035));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The environment of a serve over the database setup: the bucket through `s3`, the targets'
/// URLs, and the fake's token.
fn serve_env(s: &crate::database::Setup, s3: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        crate::database::env_map(s3, &s.source.url(), &s.target.url())
            .into_iter()
            .collect();
    env.push(("DISCORD_TOKEN".into(), "fake.bot.token".into()));
    env
}

/// `drbot serve` with the database setup's bucket (reached through `s3`), targets and age
/// key, alice (commander) and bob (approver by Discord role), connected to the fake.
async fn serve_with_db(
    s: &crate::database::Setup,
    fake: &FakeDiscord,
    s3: &str,
) -> (Drbot, std::process::Child) {
    use crate::database::config_text;
    let d = Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n[people.bob]\ndiscord_id = 22\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n",
        config_text(&s.bucket, &s.key),
        fake.base
    ));
    let env = serve_env(s, s3);
    let serve = serve_registered(fake, &d, &env).await;
    (d, serve)
}

/// `/db restore backup:latest target:staging` as Discord sends it.
fn restore_latest() -> serde_json::Value {
    slash(
        "db",
        "restore",
        json!([
            { "name": "backup", "type": 3, "value": "latest" },
            { "name": "target", "type": 3, "value": "staging" }
        ]),
    )
}

fn slash(group: &str, sub: &str, options: serde_json::Value) -> serde_json::Value {
    json!({ "id": "600", "name": group, "type": 1,
            "options": [{ "name": sub, "type": 1, "options": options }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_is_approved_with_a_reaction_by_the_right_person() {
    let s = crate::database::setup().await;
    s.source
        .psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 50);");
    s.upload(
        "2026-11-25T10-00-00Z.sql.xz.age",
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let fake = FakeDiscord::start().await;
    let (_d, mut serve) = serve_with_db(&s, &fake, crate::support::moto()).await;

    let data = restore_latest();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(2001, 11, "alice", &[5], 2, data),
    );
    let edit = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PATCH" && r.path.contains("tok2001")
        })
        .await
        .expect("reply");
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("approval request A-1"),
        "{}",
        edit.body
    );
    let posted = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "POST"
                && r.path == "/api/v10/channels/2/messages"
                && r.body["components"].is_array()
        })
        .await
        .expect("approval message");
    // The request is a card: a yellow embed with the preflight, and live buttons.
    let card = &posted.body["embeds"][0];
    assert_eq!(card["title"], "Approval needed — A-1", "{}", posted.body);
    assert_eq!(card["color"], 0xF1C40F, "{}", posted.body);
    assert!(
        card["description"]
            .as_str()
            .unwrap()
            .contains("backup read whole and complete"),
        "{}",
        posted.body
    );
    assert!(
        !card["description"]
            .as_str()
            .unwrap()
            .contains("approval request A-1")
    );
    // What the approver weighs, each named: the backup, its size and age, the target, what is
    // connected to it, and how many approvals it has of how many.
    let field = |name: &str| -> String {
        card["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} field: {card}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("Backup"), "db/2026-11-25T10-00-00Z.sql.xz.age");
    assert!(
        field("Size").ends_with(" KiB") || field("Size").ends_with(" B"),
        "{card}"
    );
    assert!(
        field("Age").contains("old when asked (taken 2026-11-25 10:00:00)"),
        "{card}"
    );
    assert!(field("Target").starts_with("staging ("), "{card}");
    assert!(field("Target").contains(&s.target.name), "{card}");
    assert_eq!(field("Sessions connected"), "none", "{card}");
    assert_eq!(field("Approvals"), "0 of 1", "{card}");
    let buttons = &posted.body["components"][0]["components"];
    assert_eq!(buttons[0]["custom_id"], "drbot:approve:A-1");
    assert_eq!(buttons[0]["disabled"], false);
    let reacted = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PUT" && r.path.contains("/reactions/")
        })
        .await
        .expect("reactions added");
    let message_id = reacted.path.split('/').nth(6).unwrap().to_string();

    // Another emoji is ignored; alice's ✅ is refused (her own request); bob's ✅ runs it.
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(22, "bob", &[4], 2, &message_id, "👍"),
    );
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(11, "alice", &[5], 2, &message_id, "✅"),
    );
    let refused = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.path.starts_with("/api/v10/channels/2/messages")
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("yourself"))
        })
        .await
        .expect("self-approval refused");
    assert!(refused.body["components"].is_null());
    assert!(!s.target.dump().contains("CREATE TABLE public.t"));
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(22, "bob", &[4], 2, &message_id, "✅"),
    );
    let done = fake
        .wait_for(Duration::from_secs(20), |r| {
            r.path.starts_with("/api/v10/channels/2/messages")
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("approved by bob"))
        })
        .await
        .expect("approved and run");
    assert!(
        done.body["content"]
            .as_str()
            .unwrap()
            .contains("Restored db/2026-11-25T10-00-00Z.sql.xz.age into staging"),
        "{}",
        done.body
    );
    assert!(s.target.dump().contains("CREATE TABLE public.t"));
    // The card turns green, says who decided, and its buttons are disabled.
    let redrawn = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PATCH"
                && r.path == format!("/api/v10/channels/2/messages/{message_id}")
                && r.body["embeds"][0]["color"] == 0x2ECC71
        })
        .await
        .expect("the card redrawn green");
    let buttons = &redrawn.body["components"][0]["components"];
    assert_eq!(
        (
            buttons[0]["disabled"].clone(),
            buttons[1]["disabled"].clone()
        ),
        (true.into(), true.into())
    );
    assert!(
        redrawn.body["embeds"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Decision" && f["value"].as_str().unwrap().contains("bob")),
        "{}",
        redrawn.body
    );
    // One refusal, one result; the 👍 was ignored (a long restore would edit its progress
    // message into the result, so both posts and edits count).
    let decisions = fake
        .seen()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/api/v10/channels/2/messages") && r.body["components"].is_null()
        })
        .map(|r| r.body["content"].to_string())
        .collect::<Vec<_>>();
    let refusals = decisions.iter().filter(|c| c.contains("yourself")).count();
    let results = decisions
        .iter()
        .filter(|c| c.contains("approved by bob"))
        .count();
    assert_eq!((refusals, results), (1, 1), "{decisions:#?}");
    // The background work posts to the incident channel too: the old backup breaks the RPO.
    assert!(
        decisions.iter().any(|c| c.contains("RPO breached")),
        "{decisions:#?}"
    );

    stop_within_limits(&fake, &mut serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_bucket_never_delays_the_acknowledgement_and_buttons_decide() {
    use crate::database::setup;
    use crate::fake_discord::{click, slow_proxy};
    let s = setup().await;
    crate::support::put(
        &s.bucket,
        "db/2026-11-25T10-00-00Z.sql.xz.age",
        b"SELECT 1;\n".to_vec(),
    )
    .await;
    let slow = slow_proxy(crate::support::moto(), Duration::from_secs(4)).await;
    let fake = FakeDiscord::start().await;
    let (d, mut serve) = serve_with_db(&s, &fake, &slow).await;

    let sent = std::time::Instant::now();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            3001,
            11,
            "alice",
            &[5],
            2,
            slash("db", "backups", json!([])),
        ),
    );
    let ack = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.path.contains("/interactions/3001/tok3001/callback")
        })
        .await
        .expect("acknowledged");
    assert!(
        ack.at.duration_since(sent) < Duration::from_secs(3),
        "{:?}",
        ack.at.duration_since(sent)
    );
    let edit = fake
        .wait_for(Duration::from_secs(30), |r| {
            r.method == "PATCH" && r.path.contains("tok3001")
        })
        .await
        .expect("answered");
    assert!(edit.at.duration_since(sent) >= Duration::from_secs(4));
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("2026-11-25T10-00-00Z"),
        "{}",
        edit.body
    );

    // A request denied with the Deny button by an approver.
    let data = restore_latest();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(3002, 11, "alice", &[5], 2, data),
    );
    fake.wait_for(Duration::from_secs(30), |r| r.body["components"].is_array())
        .await
        .expect("approval message");
    // Deny asks why: a modal, whose answer denies it with that reason.
    fake.dispatch(
        "INTERACTION_CREATE",
        click(3003, 22, "bob", &[4], 2, "drbot:deny:A-1"),
    );
    let modal = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.path.contains("/interactions/3003/tok3003/callback")
        })
        .await
        .expect("the deny modal");
    assert_eq!(modal.body["type"], 9, "{}", modal.body);
    assert_eq!(modal.body["data"]["custom_id"], "drbot:denyreason:A-1");
    fake.dispatch(
        "INTERACTION_CREATE",
        crate::fake_discord::modal_submit(
            3005,
            22,
            "bob",
            &[4],
            2,
            "drbot:denyreason:A-1",
            &[("reason", "wrong backup: use the 09:00 one")],
        ),
    );
    let denied = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.path == "/api/v10/channels/2/messages"
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("A-1 is denied"))
        })
        .await
        .expect("denied by button");
    assert!(
        denied.body["content"]
            .as_str()
            .unwrap()
            .contains("wrong backup: use the 09:00 one"),
        "{}",
        denied.body
    );
    let ack = fake
        .wait_for(Duration::from_secs(5), |r| {
            r.path.contains("/interactions/3005/tok3005/callback")
        })
        .await
        .expect("modal acknowledged");
    assert_eq!(ack.body["type"], 6);
    // The card turns red, with the reason, and its buttons are disabled.
    let red = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PATCH" && r.body["embeds"][0]["color"] == 0xE74C3C
        })
        .await
        .expect("the card redrawn red");
    assert!(
        red.body
            .to_string()
            .contains("wrong backup: use the 09:00 one"),
        "{}",
        red.body
    );
    assert_eq!(red.body["components"][0]["components"][1]["disabled"], true);

    // A restore approved with ✅ over the slow bucket while its preflight still reads the
    // backup: the card is posted at once and says so; the approval is taken and the restore
    // runs the moment the preflight passes, its progress and result in alice's reply.
    let data = restore_latest();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(3004, 11, "alice", &[5], 2, data),
    );
    let request = fake
        .wait_for(Duration::from_secs(60), |r| {
            r.method == "POST"
                && r.body["components"].is_array()
                && r.body["embeds"][0]["title"]
                    .as_str()
                    .is_some_and(|c| c.contains("A-2"))
        })
        .await
        .expect("second approval message");
    assert!(
        request.body["embeds"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Preflight"
                && f["value"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("running"))),
        "{}",
        request.body
    );
    let message_id = request.reply["id"].as_str().unwrap().to_string();
    fake.wait_for(Duration::from_secs(30), |r| {
        r.method == "PUT"
            && r.path
                .contains(&format!("/messages/{message_id}/reactions/"))
    })
    .await
    .expect("reactions");
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(22, "bob", &[4], 2, &message_id, "✅"),
    );
    fake.wait_for(Duration::from_secs(30), |r| {
        r.path == "/api/v10/channels/2/messages"
            && r.body["content"].as_str().is_some_and(|c| {
                c.contains("A-2 approved by bob") && c.contains("the moment the preflight passes")
            })
    })
    .await
    .expect("the approval taken while the preflight runs");
    let done = fake
        .wait_for(Duration::from_secs(60), |r| {
            r.method == "PATCH"
                && r.path.contains("tok3004")
                && r.body["content"].as_str().is_some_and(|c| {
                    c.contains("A-2 approved by bob while its preflight ran")
                        && c.contains("Restored db/2026-11-25T10-00-00Z.sql.xz.age into staging")
                })
        })
        .await
        .expect("the result edited into alice's reply");
    // Long work is a progress card: blue with a bar while it runs, green with the result.
    let card = fake
        .seen()
        .into_iter()
        .find(|r| {
            r.path.contains("tok3004")
                && r.body["embeds"][0]["color"] == 0x3498DB
                && r.body["embeds"][0]["title"].as_str().is_some_and(|t| {
                    t.starts_with("Restore of db/2026-11-25T10-00-00Z.sql.xz.age into staging")
                })
        })
        .expect("a progress card while the restore ran");
    assert!(
        card.body["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains('%'),
        "{}",
        card.body
    );
    assert_eq!(done.body["embeds"][0]["color"], 0x2ECC71, "{}", done.body);
    assert!(
        done.body["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("100%"),
        "{}",
        done.body
    );
    // The request's card ends green: done.
    fake.wait_for(Duration::from_secs(30), |r| {
        r.method == "PATCH"
            && r.path.contains(&format!("/messages/{message_id}"))
            && r.body["embeds"][0]["color"] == 0x2ECC71
    })
    .await
    .expect("the request's card redrawn done");

    stop_within_limits(&fake, &mut serve);
    // The reason typed in the deny form is the request's, and on the record.
    let store = drbot_state::Store::open(&d.data_dir()).unwrap();
    let denied = store
        .approvals()
        .unwrap()
        .into_iter()
        .find(|r| r.id.to_string() == "A-1")
        .unwrap();
    assert_eq!(
        denied.reason.as_deref(),
        Some("wrong backup: use the 09:00 one")
    );
    assert!(
        store
            .audit()
            .unwrap()
            .iter()
            .any(|e| e.text.contains("wrong backup: use the 09:00 one")),
        "{:?}",
        store.audit()
    );
}

/// A Discord that rate-limits with absurd Retry-After values, answers errors with 10 MB bodies
/// or never answers at all: `serve` keeps answering the control socket throughout, and takes
/// interactions again once Discord recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_discord_never_stops_serve() {
    use crate::fake_discord::Hostile;
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\nunix_user = \"{}\"\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\nstakeholder_channel_id = 3\napi_base = \"{}\"\n",
        crate::support::os_user(),
        fake.base
    ));
    let mut serve = crate::fake_discord::serve_on(&fake, &d).await;
    let declare = |title: &str| crate::fake_discord::declare("database", "sev3", title);
    let cases = [
        ("/callback", Hostile::Silent),
        ("/callback", Hostile::RateLimited("1e30".into())),
        ("/callback", Hostile::RateLimited("-5".into())),
        ("/callback", Hostile::RateLimited("nan".into())),
        (
            "/callback",
            Hostile::RateLimited("Thu, 01 Jan 1970 00:00:00 GMT".into()),
        ),
        ("/callback", Hostile::Huge),
        ("/messages", Hostile::Silent),
        ("/messages", Hostile::Huge),
    ];
    for (n, (path, how)) in cases.into_iter().enumerate() {
        fake.heal();
        fake.hostile(path, how.clone());
        let id = 3000 + n as u64;
        fake.dispatch(
            "INTERACTION_CREATE",
            command(
                id,
                11,
                "alice",
                &[],
                1000 + n as u64,
                declare(&format!("case {n}")),
            ),
        );
        fake.wait_for(Duration::from_secs(10), |s| {
            s.path.contains(&format!("tok{id}"))
        })
        .await
        .unwrap_or_else(|| panic!("{how:?}: the interaction never reached Discord"));
        // The socket answers at once whatever Discord does.
        let started = std::time::Instant::now();
        let r = d.exec(None, "/incident note incident:INC-1 text:still answering");
        assert!(
            r.code == 0 || r.stdout.contains("does not exist"),
            "{how:?}: {r:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{how:?}: the socket waited {:?}",
            started.elapsed()
        );
        assert!(serve.try_wait().unwrap().is_none(), "{how:?}: serve exited");
    }
    // Discord recovers: the next interaction is acknowledged as usual.
    fake.heal();
    fake.dispatch(
        "INTERACTION_CREATE",
        command(3999, 11, "alice", &[], 1999, declare("after")),
    );
    fake.wait_for(Duration::from_secs(10), |s| {
        s.method == "PATCH" && s.path.contains("tok3999/messages/@original")
    })
    .await
    .expect("answered after recovery");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
}

/// The incident header: posted and pinned on declare, edited when a step changes (the same
/// message), its Next-step button completes the step, and after a restart of serve the same
/// pinned message is edited, never a new one posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_header_is_pinned_and_kept_current_across_a_restart() {
    use crate::fake_discord::{click, declare};
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\nstakeholder_channel_id = 3\ncommander_role_id = 5\napi_base = \"{}\"\n",
        fake.base
    ));
    let env = vec![("DISCORD_TOKEN".to_string(), "fake.bot.token".to_string())];
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            4001,
            11,
            "alice",
            &[5],
            2,
            declare("database", "sev1", "Primary DB down"),
        ),
    );
    let posted = fake
        .wait_for(Duration::from_secs(20), |r| {
            r.method == "POST"
                && r.path == "/api/v10/channels/2/messages"
                && r.body["embeds"][0]["title"] == "INC-1 · Primary DB down"
        })
        .await
        .expect("the header posted");
    let header = &posted.body["embeds"][0];
    assert_eq!(header["color"], 0xE74C3C, "sev1 is red: {header}");
    assert_eq!(header["description"], "sev1 · database · open");
    let field = |h: &serde_json::Value, name: &str| {
        h["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["value"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(field(header, "Steps").ends_with(" 0/15"), "{header}");
    assert!(
        field(header, "Next").starts_with("1. Assess impact"),
        "{header}"
    );
    assert!(field(header, "Started").starts_with("<t:"), "{header}");
    assert!(field(header, "RTO deadline").contains(":t>"), "{header}");
    let id = posted.reply["id"].as_str().unwrap().to_string();
    fake.wait_for(Duration::from_secs(10), |r| {
        r.method == "PUT" && r.path == format!("/api/v10/channels/2/pins/{id}")
    })
    .await
    .expect("the header pinned");

    // Step 2 (stop the applications) is manual: mark it from the header's button.
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            4002,
            11,
            "alice",
            &[5],
            2,
            slash(
                "step",
                "skip",
                json!([
                    { "name": "step", "type": 3, "value": "1" },
                    { "name": "reason", "type": 3, "value": "checked by hand" }
                ]),
            ),
        ),
    );
    let edited = fake
        .wait_for(Duration::from_secs(20), |r| {
            r.method == "PATCH"
                && r.path == format!("/api/v10/channels/2/messages/{id}")
                && field(&r.body["embeds"][0], "Steps").ends_with(" 1/15")
        })
        .await
        .expect("the header edited after a step change");
    let button = &edited.body["components"][0]["components"][0];
    assert_eq!(
        button["custom_id"], "drbot:stepdone:INC-1:stop-apps",
        "{}",
        edited.body
    );
    assert_eq!(button["disabled"], false);
    fake.dispatch(
        "INTERACTION_CREATE",
        click(4003, 11, "alice", &[5], 2, "drbot:stepdone:INC-1:stop-apps"),
    );
    fake.wait_for(Duration::from_secs(20), |r| {
        r.method == "PATCH"
            && r.path == format!("/api/v10/channels/2/messages/{id}")
            && field(&r.body["embeds"][0], "Steps").ends_with(" 2/15")
    })
    .await
    .expect("the button completed the step");

    // Post update: a modal, whose message goes to the stakeholders.
    fake.dispatch(
        "INTERACTION_CREATE",
        click(4004, 11, "alice", &[5], 2, "drbot:update:INC-1"),
    );
    let modal = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.path.contains("/interactions/4004/tok4004/callback")
        })
        .await
        .expect("the update modal");
    assert_eq!(modal.body["type"], 9);
    assert_eq!(modal.body["data"]["custom_id"], "drbot:update:INC-1");
    fake.dispatch(
        "INTERACTION_CREATE",
        crate::fake_discord::modal_submit(
            4005,
            11,
            "alice",
            &[5],
            2,
            "drbot:update:INC-1",
            &[(
                "message",
                "Uploads are back; search follows within the hour.",
            )],
        ),
    );
    fake.wait_for(Duration::from_secs(20), |r| {
        r.method == "POST"
            && r.path == "/api/v10/channels/3/messages"
            && r.body
                .to_string()
                .contains("Uploads are back; search follows within the hour.")
    })
    .await
    .expect("the update posted to the stakeholders");

    // A restart edits the same pinned message.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let before = fake.seen().len();
    let restarted = std::time::Instant::now();
    let mut serve = start_serve(&d, &env);
    fake.wait_for(Duration::from_secs(20), |r| {
        r.at > restarted
            && r.method == "PATCH"
            && r.path == format!("/api/v10/channels/2/messages/{id}")
    })
    .await
    .expect("the header edited after a restart");
    let posts_since: Vec<_> = fake.seen()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v10/channels/2/messages")
        .cloned()
        .collect();
    assert!(
        posts_since.is_empty(),
        "a new header was posted: {posts_since:?}"
    );
    // Every payload stayed within Discord's limits (the fake refuses the others with 50035).
    assert!(!fake.seen().iter().any(|r| r.reply["code"] == 50035));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A request nobody decides turns its card red once it expires, without anyone touching it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_request_turns_its_card_red_when_it_expires() {
    use crate::database::config_text;
    let s = crate::database::setup().await;
    crate::support::put(
        &s.bucket,
        "db/2026-11-25T10-00-00Z.sql.xz.age",
        b"SELECT 1;\n".to_vec(),
    )
    .await;
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n[approvals]\nttl_secs = 2\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n",
        config_text(&s.bucket, &s.key),
        fake.base
    ));
    let env = serve_env(&s, crate::support::moto());
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(5001, 11, "alice", &[5], 2, restore_latest()),
    );
    let card = fake
        .wait_for(Duration::from_secs(30), |r| {
            r.method == "POST" && r.body["embeds"][0]["title"] == "Approval needed — A-1"
        })
        .await
        .expect("the card");
    let id = card.reply["id"].as_str().unwrap().to_string();
    let red = fake
        .wait_for(Duration::from_secs(20), |r| {
            r.method == "PATCH"
                && r.path == format!("/api/v10/channels/2/messages/{id}")
                && r.body["embeds"][0]["color"] == 0xE74C3C
        })
        .await
        .expect("the card redrawn red on expiry");
    assert_eq!(
        red.body["embeds"][0]["title"], "A-1 — expired",
        "{}",
        red.body
    );
    assert_eq!(red.body["components"][0]["components"][0]["disabled"], true);
    stop_within_limits(&fake, &mut serve);
}

/// With `thread_per_incident`, a declare opens the incident's thread, the header lives there,
/// and commands typed in the thread apply to that incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declare_can_open_a_thread_for_the_incident() {
    use crate::fake_discord::declare;
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\ncommander_role_id = 5\nthread_per_incident = true\napi_base = \"{}\"\n",
        fake.base
    ));
    let env = vec![("DISCORD_TOKEN".to_string(), "fake.bot.token".to_string())];
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            6001,
            11,
            "alice",
            &[5],
            2,
            declare("storage", "sev2", "Images missing"),
        ),
    );
    let thread = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "POST" && r.path == "/api/v10/channels/2/threads"
        })
        .await
        .expect("a thread opened");
    assert_eq!(thread.body["name"], "incident: Images missing");
    let id = thread.reply["id"].as_str().unwrap().to_string();
    let answered = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PATCH" && r.path.contains("tok6001/messages/@original")
        })
        .await
        .expect("declare answered");
    assert!(
        answered.body["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<#{id}>")),
        "{}",
        answered.body
    );
    fake.wait_for(Duration::from_secs(20), |r| {
        r.method == "POST"
            && r.path == format!("/api/v10/channels/{id}/messages")
            && r.body["embeds"][0]["title"] == "INC-1 · Images missing"
    })
    .await
    .expect("the header in the thread");
    // A command in the thread is the incident's.
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            6002,
            11,
            "alice",
            &[5],
            id.parse().unwrap(),
            slash("incident", "status", json!([])),
        ),
    );
    let status = fake
        .wait_for(Duration::from_secs(10), |r| {
            r.method == "PATCH" && r.path.contains("tok6002/messages/@original")
        })
        .await
        .expect("status answered");
    assert!(
        status.body["content"]
            .as_str()
            .unwrap()
            .contains("INC-1 “Images missing”"),
        "{}",
        status.body
    );
    stop_within_limits(&fake, &mut serve);
}

/// `[drills] schedule`: serve runs a due drill by itself, posts the result in the incident
/// channel, and a failure calls on the commanders' role, saying the drill is overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_due_drill_and_a_failure_alerts_the_commander() {
    use crate::database::config_text;
    let s = crate::database::setup().await;
    // No backup in the bucket: the drill fails at its restore.
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [drills]\nschedule = {{ database = \"monthly\" }}\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n",
        config_text(&s.bucket, &s.key),
        fake.base
    ));
    let mut env = serve_env(&s, crate::support::moto());
    env.push((
        "DRILL_DATABASE_URL".into(),
        format!("{}/postgres?sslmode=disable", crate::support::PG),
    ));
    let mut serve = serve_registered(&fake, &d, &env).await;
    let alert = fake
        .wait_for(Duration::from_secs(60), |r| {
            r.method == "POST"
                && r.path == "/api/v10/channels/2/messages"
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Scheduled DRILL-1"))
        })
        .await
        .expect("the scheduled drill's result in the incident channel");
    let content = alert.body["content"].as_str().unwrap();
    // The commanders' role is called on, and nobody else.
    assert!(content.starts_with("<@&5> "), "{content}");
    assert!(content.contains("FAILED at step 2"), "{content}");
    assert!(
        content.contains("OVERDUE") && !content.contains(".."),
        "{content}"
    );
    let allowed = &alert.body["allowed_mentions"];
    assert_eq!(allowed["roles"], json!(["5"]), "{}", alert.body);
    assert_eq!(allowed["users"], json!([]), "{}", alert.body);
    stop_within_limits(&fake, &mut serve);
    // Run once: the store holds one drill, failed, scheduled.
    let store = drbot_state::Store::open(&d.data_dir()).unwrap();
    let drills = store.drills().unwrap();
    assert_eq!(drills.len(), 1);
    assert!(drills[0].scheduled && drills[0].status == drbot_state::DrillStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_outlives_its_token_reports_in_the_channel() {
    let fake = FakeDiscord::start().await;
    // The interaction token lives 2 s here (15 minutes on Discord); the command takes longer:
    // an API that accepts connections and never answers, with a 5 s timeout.
    fake.token_lifetime(Duration::from_secs(2));
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n\
         [api]\nbase_url = \"{api}\"\ntimeout_secs = 5\n",
        fake.base
    ));
    let env = vec![("DISCORD_TOKEN".to_string(), "fake.bot.token".to_string())];
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            2001,
            11,
            "alice",
            &[],
            2,
            json!({ "id": "601", "name": "api", "type": 1, "options": [
                { "name": "health", "type": 1, "options": [] }
            ]}),
        ),
    );
    // The result reaches the channel as an ordinary message, through the bot token.
    let posted = fake
        .wait_for(Duration::from_secs(30), |s| {
            s.method == "POST"
                && s.path == "/api/v10/channels/2/messages"
                && s.body.to_string().contains("timed out")
        })
        .await
        .expect("the result in the channel");
    assert!(
        posted.body.to_string().contains("/healthz"),
        "{}",
        posted.body
    );
    // The dead token was tried once at most, and never again after Discord refused it.
    let seen = fake.seen();
    let refused = seen
        .iter()
        .filter(|s| s.path.contains("/webhooks/") && s.reply["code"] == 50027)
        .count();
    assert!(refused <= 1, "{refused} requests with a dead token");
    let after = seen
        .iter()
        .skip_while(|s| s.reply["code"] != 50027)
        .skip(1)
        .filter(|s| s.path.contains("tok2001"))
        .count();
    assert_eq!(after, 0, "the dead token was used again");
    stop_within_limits(&fake, &mut serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_shows_a_live_card_and_ends_with_the_report_embed() {
    use crate::database::config_text;
    let s = crate::database::setup().await;
    s.source
        .psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let taken = chrono::Utc::now() - chrono::Duration::minutes(10);
    s.upload(
        &format!("{}.sql.xz.age", taken.format("%Y-%m-%dT%H-%M-%SZ")),
        &format!("{} | xz | {}", s.dump_cmd(), s.age()),
    )
    .await;
    let fake = FakeDiscord::start().await;
    // The token lives 3 s; the drill takes longer (its application check sleeps 6 s), so its
    // card goes on, and its report arrives, through the bot token.
    fake.token_lifetime(Duration::from_secs(3));
    let d = Drbot::new(&format!(
        "{}\n[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [drills]\napp_checks = [\"SELECT pg_sleep(6)\"]\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n",
        config_text(&s.bucket, &s.key),
        fake.base
    ));
    let mut env = serve_env(&s, crate::support::moto());
    env.push((
        "DRILL_DATABASE_URL".into(),
        format!("{}/postgres?sslmode=disable", crate::support::PG),
    ));
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            2101,
            11,
            "alice",
            &[5],
            2,
            slash(
                "drill",
                "start",
                json!([{ "name": "kind", "type": 3, "value": "database" }]),
            ),
        ),
    );
    let titled = |s: &Seen, title: &str| {
        s.body["embeds"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["title"] == title))
    };
    // A live card while it runs: step n of m, the running step, the time against the RTO.
    let live = fake
        .wait_for(Duration::from_secs(60), |s| {
            titled(s, "DRILL-1 — database drill — running")
                && s.body.to_string().contains("Test application connectivity")
        })
        .await
        .expect("a live card for the drill");
    let card = live.body["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == "DRILL-1 — database drill — running")
        .unwrap()
        .clone();
    let field = |card: &serde_json::Value, name: &str| -> String {
        card["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} field: {card}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(field(&card, "Step"), "4 of 4", "{card}");
    assert_eq!(field(&card, "Running"), "Test application connectivity");
    assert!(
        field(&card, "Elapsed").ends_with("of the 2h00m RTO"),
        "{card}"
    );
    assert!(
        card["description"].as_str().unwrap().contains('%'),
        "{card}"
    );
    // It ends with the report as an embed, in the channel: the verdicts marked, the trend chart
    // as its image, the markdown and the steps' chart attached.
    let report = fake
        .wait_for(Duration::from_secs(60), |s| {
            s.path.starts_with("/api/v10/channels/2/messages")
                && titled(s, "DRILL-1 — database drill passed")
        })
        .await
        .expect("the report embed in the channel");
    let embeds = report.body["embeds"].as_array().unwrap();
    let card = embeds
        .iter()
        .find(|e| e["title"] == "DRILL-1 — database drill passed")
        .unwrap();
    assert_eq!(card["color"], 0x2ECC71, "{card}");
    assert_eq!(card["image"]["url"], "attachment://DRILL-1-trend.png");
    assert!(field(card, "RTO (database)").starts_with("🟢 "), "{card}");
    assert!(field(card, "RPO (database)").starts_with("🟢 "), "{card}");
    assert!(field(card, "Steps").contains("4 of 4 passed"), "{card}");
    let files: Vec<&str> = report.body["_files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in [
        "DRILL-1-report.md",
        "DRILL-1-trend.png",
        "DRILL-1-steps.png",
    ] {
        assert!(files.contains(&name), "{name} not in {files:?}");
    }
    // The progress card ends green beside it, with nothing left "to come".
    let done = embeds
        .iter()
        .find(|e| e["title"] == "DRILL-1 — database drill — done")
        .expect("the progress card, ended");
    assert!(!done.to_string().contains("\"Running\""), "{done}");
    // Nothing was sent with the token after Discord refused it.
    let seen = fake.seen();
    let after = seen
        .iter()
        .skip_while(|s| s.reply["code"] != 50027)
        .skip(1)
        .filter(|s| s.path.contains("tok2101"))
        .count();
    assert_eq!(after, 0, "the dead token was used again");
    stop_within_limits(&fake, &mut serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev1_declare_pages_in_the_channel_and_a_check_mark_on_the_page_acknowledges_it() {
    let fake = FakeDiscord::start().await;
    let d = Drbot::new(&format!(
        "[people.alice]\nroles = [\"commander\"]\ndiscord_id = 11\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\ncommander_role_id = 5\napi_base = \"{}\"\n\
         [contacts.dba]\nname = \"Dana DBA\"\ndiscord_id = 101\ngroups = [\"primary\"]\n\
         [contacts.cto]\nname = \"Chris CTO\"\ndiscord_id = 102\ngroups = [\"escalation\"]\n\
         [paging]\nsev1 = [\"primary\"]\nescalation = [\"primary\", \"escalation\"]\n",
        fake.base
    ));
    let env = vec![("DISCORD_TOKEN".to_string(), "fake.bot.token".to_string())];
    let mut serve = serve_registered(&fake, &d, &env).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        command(
            2201,
            11,
            "alice",
            &[5],
            2,
            crate::fake_discord::declare("database", "sev1", "orders failing"),
        ),
    );
    // The page: one message in the incident channel mentioning the primary group, and only it.
    let page = fake
        .wait_for(Duration::from_secs(30), |s| {
            s.method == "POST"
                && s.path == "/api/v10/channels/2/messages"
                && s.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("PAGE-1"))
        })
        .await
        .expect("the page in the channel");
    let content = page.body["content"].as_str().unwrap();
    assert!(content.starts_with("<@101> PAGE-1 for INC-1"), "{content}");
    assert_eq!(page.body["allowed_mentions"]["users"], json!(["101"]));
    let message_id = page.reply["id"].as_str().unwrap().to_string();
    // Another emoji does nothing; bob's ✅ on it acknowledges the page.
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(22, "bob", &[4], 2, &message_id, "👍"),
    );
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        reaction(22, "bob", &[4], 2, &message_id, "✅"),
    );
    let acked = fake
        .wait_for(Duration::from_secs(20), |s| {
            s.method == "POST"
                && s.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("PAGE-1 acknowledged by bob"))
        })
        .await
        .expect("the acknowledgement");
    assert!(
        acked.body["content"]
            .as_str()
            .unwrap()
            .contains("it escalates no further"),
        "{}",
        acked.body
    );
    stop_within_limits(&fake, &mut serve);
    let store = drbot_state::Store::open(&d.data_dir()).unwrap();
    let pages = store.pages().unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].status, drbot_state::PageStatus::Acknowledged);
    assert_eq!(pages[0].acked_by.as_deref(), Some("bob (discord:22)"));
}
