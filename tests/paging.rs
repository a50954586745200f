//! The runbook's emergency contacts, paged and escalated, against stand-ins of Resend, Discord
//! and PagerDuty's Events API v2: a sev1 declare pages the primary group once; unacknowledged,
//! the escalation group is paged once; `/ack` stops it; resolving closes it; a kill -9
//! between the two neither loses nor doubles a page; the report has the time to acknowledge.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use drbot_commands::context::{Context, Place};
use drbot_commands::identity::{Actor, Principal};
use drbot_commands::{Config, Engine, ManualClock, Outcome};
use drbot_state::{PageStatus, Proof, Store};

use crate::database::commander;
use crate::fake_discord::FakeDiscord;
use crate::fake_http::FakeHttp;
use crate::fake_pagerduty::FakePagerDuty;
use crate::support::Drbot;

/// A PagerDuty integration key: 32 characters, secret.
const ROUTING_KEY: &str = "R0uTiNgKeY0123456789abcdefSECRET";

struct Services {
    resend: FakeHttp,
    discord: FakeDiscord,
    pd: FakePagerDuty,
}

impl Services {
    async fn start() -> Services {
        Services {
            resend: FakeHttp::start().await,
            discord: FakeDiscord::start().await,
            pd: FakePagerDuty::start().await,
        }
    }

    /// The addresses the page emails went to, one per accepted idempotency key.
    fn emailed(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeMap::new();
        for h in self.resend.hits("/emails") {
            let key = h.headers["idempotency-key"].clone();
            seen.entry(key)
                .or_insert_with(|| h.body["to"][0].as_str().unwrap_or_default().to_string());
        }
        let mut to: Vec<String> = seen.into_values().collect();
        to.sort();
        to
    }

    /// The Discord messages posted in the incident channel (content), one per nonce.
    fn posted(&self) -> Vec<serde_json::Value> {
        let mut nonces = std::collections::BTreeSet::new();
        self.discord
            .seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.path == "/api/v10/channels/2/messages")
            .filter(|s| nonces.insert(s.body["nonce"].to_string()))
            .map(|s| s.body)
            .collect()
    }
}

fn config(s: &Services, extra: &str) -> String {
    format!(
        "[notify]\nemail_from = \"drbot@example.com\"\nresend_base = \"{resend}\"\n\
         [discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 4\napi_base = \"{discord}\"\n\
         [contacts.dba]\nname = \"Dana DBA\"\nemail = \"dana@example.com\"\nphone = \"+1 555 0100\"\n\
         discord_id = 101\ngroups = [\"primary\"]\nscenarios = [\"database\", \"full\"]\n\
         [contacts.infra]\nname = \"Ian Infra\"\nemail = \"ian@example.com\"\ndiscord_id = 102\n\
         groups = [\"primary\"]\nscenarios = [\"storage\"]\n\
         [contacts.cto]\nname = \"Chris CTO\"\nemail = \"chris@example.com\"\nphone = \"+1 555 0199\"\n\
         groups = [\"escalation\"]\n\
         [contacts.supabase]\nname = \"Supabase Support\"\nemail = \"support@supabase.com\"\n\
         url = \"https://supabase.com/support\"\ngroups = [\"external\"]\nscenarios = [\"database\"]\n\
         [contacts.stripe]\nname = \"Stripe Support\"\nurl = \"https://support.stripe.com\"\n\
         groups = [\"external\"]\nscenarios = [\"post-recovery\"]\n\
         [paging]\nsev1 = [\"primary\"]\nescalation = [\"primary\", \"escalation\"]\n\
         pagerduty_routing_key_env = \"PAGERDUTY_ROUTING_KEY\"\nevents_base = \"{pd}\"\n{extra}",
        resend = s.resend.base,
        discord = s.discord.base,
        pd = s.pd.base,
    )
}

fn env(k: &str) -> Option<String> {
    match k {
        "RESEND_API_KEY" => Some("re_secret_key".to_string()),
        "DISCORD_TOKEN" => Some("fake.bot.token".to_string()),
        "PAGERDUTY_ROUTING_KEY" => Some(ROUTING_KEY.to_string()),
        _ => None,
    }
}

fn engine(dir: &Path, config: &str, clock: Arc<ManualClock>) -> Engine {
    engine_with(dir, config, clock, env)
}

fn engine_with(
    dir: &Path,
    config: &str,
    clock: Arc<ManualClock>,
    env: fn(&str) -> Option<String>,
) -> Engine {
    let config = Config::from_toml(config, Path::new("t.toml")).expect("config");
    Engine::new(Arc::new(config), Store::open(dir).unwrap(), clock).with_env(Arc::new(env))
}

fn bob() -> Context {
    Context {
        actor: Actor {
            id: Principal::person("bob"),
            name: "bob".into(),
            roles: ["approver".to_string()].into(),
            proof: Proof::Proven,
        },
        place: Place::Local,
    }
}

/// The stand-ins and an engine wired to them on a manual clock (keep the directory alive).
async fn started() -> (Services, tempfile::TempDir, Arc<ManualClock>, Engine) {
    let s = Services::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let e = engine(dir.path(), &config(&s, ""), clock.clone());
    (s, dir, clock, e)
}

/// Everything drbot stored: timeline, audit log, and every queued request's body.
fn stored_text(e: &Engine) -> String {
    let mut text = crate::support::recorded_text(e.store());
    for i in e.store().outbox().unwrap() {
        text.push_str(&i.body);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev1_page_goes_to_the_primary_group_once_escalates_once_and_an_ack_stops_it() {
    let (s, _dir, clock, e) = started().await;

    let r = e
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("Paged primary (PAGE-1)"), "{}", r.text);
    // The primary group: an email each, one Discord message mentioning both, one PagerDuty
    // alert keyed by incident and page.
    assert_eq!(s.emailed(), ["dana@example.com", "ian@example.com"]);
    let posted = s.posted();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let content = posted[0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("<@101> <@102> PAGE-1 for INC-1 (sev1 database): “orders failing”"),
        "{content}"
    );
    assert!(content.contains("/ack page:PAGE-1") && content.contains("goes to escalation at"));
    assert_eq!(
        posted[0]["allowed_mentions"],
        serde_json::json!({ "parse": [], "users": ["101", "102"] })
    );
    let triggers = s.pd.accepted("trigger");
    assert_eq!(triggers.len(), 1, "{:?}", s.pd.events());
    assert_eq!(triggers[0]["dedup_key"], "drbot-INC-1-PAGE-1");
    assert_eq!(triggers[0]["payload"]["severity"], "critical");
    assert!(s.pd.events().iter().all(|e| e.status == 202));

    // Not due yet: nothing more, however often the watch runs.
    e.tick().await.unwrap();
    clock.advance(Span::minutes(14));
    e.tick().await.unwrap();
    assert_eq!(s.emailed().len(), 2);
    assert_eq!(s.posted().len(), 1);

    // Unacknowledged past 15 minutes: the escalation group, once.
    clock.advance(Span::minutes(2));
    e.tick().await.unwrap();
    e.tick().await.unwrap();
    assert_eq!(
        s.emailed(),
        ["chris@example.com", "dana@example.com", "ian@example.com"]
    );
    let posted = s.posted();
    assert_eq!(posted.len(), 2, "{posted:?}");
    let escalated = posted[1]["content"].as_str().unwrap();
    assert!(
        escalated.contains("Escalated: nobody acknowledged it since"),
        "{escalated}"
    );
    // PagerDuty runs its own escalation: one alert, never a second trigger.
    assert_eq!(s.pd.alerts(), 1);
    assert_eq!(s.pd.accepted("trigger").len(), 1);
    let timeline = crate::support::recorded_text(e.store());
    assert_eq!(
        timeline
            .matches("PAGE-1 escalated to escalation: Chris CTO")
            .count(),
        1,
        "{timeline}"
    );

    // At the top of its path: said once, nothing more sent.
    clock.advance(Span::minutes(20));
    e.tick().await.unwrap();
    e.tick().await.unwrap();
    let timeline = crate::support::recorded_text(e.store());
    assert_eq!(
        timeline
            .matches("at the top of its escalation path")
            .count(),
        1,
        "{timeline}"
    );
    assert_eq!(s.emailed().len(), 3);

    // bob acknowledges: PagerDuty's alert is acknowledged; a second ack is refused.
    let r = e.run(&bob(), "/ack").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .contains("PAGE-1 acknowledged by bob after 36m: it escalates no further."),
        "{}",
        r.text
    );
    assert_eq!(s.pd.accepted("acknowledge").len(), 1);
    assert_eq!(
        s.pd.accepted("acknowledge")[0]["dedup_key"],
        "drbot-INC-1-PAGE-1"
    );
    let none = e.run(&bob(), "/ack page:PAGE-9").await;
    assert_eq!(none.outcome, Outcome::Usage, "{}", none.text);
    assert!(none.text.contains("PAGE-9 does not exist"), "{}", none.text);
    let again = e.run(&bob(), "/ack page:PAGE-1").await;
    assert_eq!(again.outcome, Outcome::Refused, "{}", again.text);
    assert!(
        again.text.contains("already acknowledged by bob"),
        "{}",
        again.text
    );

    // Resolving closes it and resolves PagerDuty's alert; the report has the time to ack.
    let r = e.run(&commander(), "/incident resolve").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert_eq!(s.pd.accepted("resolve").len(), 1);
    let page = e.store().pages().unwrap().remove(0);
    assert_eq!(page.status, PageStatus::Closed);
    assert_eq!(page.acked_by.as_deref(), Some("bob"));
    let report = r
        .attachments
        .iter()
        .find(|a| a.name == "INC-1-report.md")
        .expect("report")
        .text
        .clone();
    assert!(report.contains("## Pages"), "{report}");
    assert!(
        report.contains("PAGE-1: paged primary at ") && report.contains(", then escalation at "),
        "{report}"
    );
    assert!(
        report.contains("acknowledged by bob — time to acknowledge 36m"),
        "{report}"
    );
    // The routing key is sent, never stored, shown or logged.
    assert!(!stored_text(&e).contains(ROUTING_KEY));
    assert!(!r.full_text().contains(ROUTING_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_before_the_delay_stops_the_escalation() {
    let (s, _dir, clock, e) = started().await;
    e.run(
        &commander(),
        "/incident declare scenario:storage severity:sev1 title:\"images gone\"",
    )
    .await;
    clock.advance(Span::minutes(4));
    let r = e.run(&bob(), "/ack").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    clock.advance(Span::minutes(30));
    e.tick().await.unwrap();
    assert_eq!(s.emailed(), ["dana@example.com", "ian@example.com"]);
    assert_eq!(s.posted().len(), 1);
    assert_eq!(s.pd.accepted("trigger").len(), 1);
    assert_eq!(s.pd.accepted("acknowledge").len(), 1);
    let timeline = crate::support::recorded_text(e.store());
    assert!(!timeline.contains("escalated"), "{timeline}");
    assert!(
        timeline.contains("PAGE-1 acknowledged by bob after 4m"),
        "{timeline}"
    );
    // A sev2 declare pages nobody ([paging] lists sev1 only).
    let r = e
        .run(
            &Context {
                place: Place::Channel(9),
                ..commander()
            },
            "/incident declare scenario:search severity:sev2 title:\"search slow\"",
        )
        .await;
    assert!(!r.text.contains("Paged"), "{}", r.text);
    assert_eq!(e.store().pages().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_say_whom_to_call_and_page_reaches_anyone_on_the_list() {
    let (s, _dir, _clock, e) = started().await;
    e.run(
        &commander(),
        "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
    )
    .await;
    let r = e.run(&commander(), "/contacts").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    let t = &r.text;
    // The database's owner first, with a number to dial; then escalation; then the external
    // support for the step in progress (a database step: Supabase, not Stripe).
    let dana = t.find("Dana DBA (dba) — phone +1 555 0100").expect(t);
    let ian = t.find("Ian Infra (infra)").expect(t);
    assert!(dana < ian, "{t}");
    assert!(t.contains("owns this scenario"), "{t}");
    assert!(
        t.contains("Escalation (escalation):\n  Chris CTO (cto) — phone +1 555 0199"),
        "{t}"
    );
    assert!(
        t.contains("External support for the step in progress"),
        "{t}"
    );
    assert!(t.contains("Supabase Support (supabase)"), "{t}");
    assert!(!t.contains("Stripe"), "{t}");
    assert!(t.contains("Open page: PAGE-1"), "{t}");

    // /page who: a contact, with a message, in the incident: its own page, escalating.
    let r = e
        .run(
            &commander(),
            "/page who:cto message:DB restore needs a decision",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(
        r.text
            .starts_with("PAGE-2 sent to cto (email, discord, pagerduty)."),
        "{}",
        r.text
    );
    assert!(s.emailed().contains(&"chris@example.com".to_string()));
    assert_eq!(s.pd.alerts(), 2);
    let last = s.posted().pop().unwrap();
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .contains("DB restore needs a decision"),
        "{last}"
    );
    // Nobody by that name: a usage error naming who can be paged; nothing sent.
    let before = s.emailed().len();
    let r = e.run(&commander(), "/page who:ceo message:wake up").await;
    assert_eq!(r.outcome, Outcome::Usage, "{}", r.text);
    assert!(
        r.text
            .contains("`ceo` is no contact or group. Page one of: cto, dba"),
        "{}",
        r.text
    );
    assert_eq!(s.emailed().len(), before);
    // Several pages open: /ack in the incident acknowledges them all.
    let r = e.run(&bob(), "/ack").await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert!(r.text.contains("PAGE-1 acknowledged") && r.text.contains("PAGE-2 acknowledged"));

    // The Discord message of a page leads back to it (a ✅ on it acknowledges it).
    let delivered: Vec<drbot_state::OutboxItem> = e
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|i| i.channel == "discord")
        .collect();
    let id: u64 = delivered[0]
        .delivered_ref
        .as_deref()
        .expect("the message id Discord answered")
        .parse()
        .unwrap();
    assert_eq!(
        drbot_commands::paging::page_of_message(&e, id),
        Some(drbot_state::PageId(1))
    );
    assert_eq!(drbot_commands::paging::page_of_message(&e, 999_999), None);
}

#[test]
fn contacts_nobody_can_reach_and_paging_of_unknown_groups_are_named() {
    let bad = Config::from_toml(
        "[contacts.a]\nname = \"A\"\nemail = \"a@x\"\ngroups = [\"primary\"]\n[paging]\nsev1 = [\"oncall\"]\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains(
            "[paging] sev1 names group `oncall`, which no [contacts.*] is in (groups: primary)"
        ),
        "{bad}"
    );
    let c = Config::from_toml(
        "[contacts.a]\nname = \"A\"\nemail = \"a@x\"\ngroups = [\"primary\"]\n\
         [contacts.b]\nname = \"B\"\nphone = \"+1 555\"\n[contacts.c]\nname = \"C\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        drbot_commands::paging::unreachable(&c),
        ["b (phone only: +1 555)", "c"]
    );
    let lines =
        drbot_commands::check::check_config(&c, &drbot_commands::config::Source::Defaults, &|_| {
            None
        });
    let contacts = lines.iter().find(|l| l.system == "contacts").unwrap();
    assert!(
        contacts
            .text
            .contains("a page cannot reach b (phone only: +1 555), c"),
        "{contacts:?}"
    );
}

/// A kill -9 of serve between the page and its escalation: after the restart the escalation
/// goes out once; a second kill just after it is recorded still delivers it exactly once.
#[test]
fn a_kill_between_the_page_and_its_escalation_neither_loses_nor_doubles_a_page() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(Services::start());
    let d = Drbot::new(&config(&s, "escalate_after_mins = 1\n"));
    let serve = |d: &Drbot| {
        d.command()
            .arg("serve")
            .env("RESEND_API_KEY", "re_secret_key")
            .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
            .env("DISCORD_TOKEN", "fake.bot.token")
            .env("RUST_LOG", "drbot=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool, within: Duration| {
        let until = std::time::Instant::now() + within;
        while !f() {
            assert!(std::time::Instant::now() < until, "waited for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let kill = |child: &mut std::process::Child| {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
    };
    let mut child = serve(&d);
    let socket = d.data_dir().join("drbot.sock");
    wait_for("serve", &|| socket.exists(), Duration::from_secs(30));
    let out = d
        .command()
        .args([
            "exec",
            "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the first page",
        &|| s.emailed().len() == 2,
        Duration::from_secs(30),
    );
    // Killed before the escalation is due.
    kill(&mut child);
    // Due while drbot is down; the next serve escalates, and is killed while Resend is still
    // answering the escalation's email (recorded and sent, its delivery not yet known).
    std::thread::sleep(Duration::from_secs(62));
    s.resend.slow(Duration::from_secs(3));
    child = serve(&d);
    wait_for(
        "the escalation",
        &|| s.emailed().contains(&"chris@example.com".to_string()),
        Duration::from_secs(60),
    );
    kill(&mut child);
    s.resend.slow(Duration::ZERO);
    // The restart sends the same request again (same key: Resend sends one email) and no new
    // round.
    child = serve(&d);
    let chris = || {
        s.resend
            .hits("/emails")
            .into_iter()
            .filter(|h| h.body["to"][0] == "chris@example.com")
            .collect::<Vec<_>>()
    };
    wait_for(
        "the retried delivery",
        &|| chris().len() >= 2,
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(3));
    kill(&mut child);
    let keys: std::collections::BTreeSet<String> = chris()
        .iter()
        .map(|h| h.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        s.emailed(),
        ["chris@example.com", "dana@example.com", "ian@example.com"]
    );
    assert_eq!(s.pd.alerts(), 1);
    assert_eq!(s.posted().len(), 2, "{:?}", s.posted());
    let store = Store::open(&d.data_dir()).unwrap();
    let page = store.pages().unwrap().remove(0);
    assert_eq!(page.rounds.len(), 2, "{page:?}");
    assert!(store.pending_outbox().unwrap().is_empty());
    let timeline = crate::support::recorded_text(&store);
    assert_eq!(
        timeline.matches("PAGE-1 sent to primary").count(),
        1,
        "{timeline}"
    );
    assert_eq!(
        timeline.matches("PAGE-1 escalated to").count(),
        1,
        "{timeline}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pagerduty_event_is_said_and_the_other_channels_still_page() {
    let s = Services::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    // A key PagerDuty refuses (not 32 characters): 400 "invalid event", never retried.
    let e = engine_with(dir.path(), &config(&s, ""), clock, |k| match k {
        "PAGERDUTY_ROUTING_KEY" => Some("too-short-key".to_string()),
        other => env(other),
    });
    let r = e
        .run(
            &commander(),
            "/incident declare scenario:database severity:sev1 title:\"orders failing\"",
        )
        .await;
    assert_eq!(r.outcome, Outcome::Done, "{}", r.text);
    assert_eq!(s.emailed(), ["dana@example.com", "ian@example.com"]);
    assert_eq!(s.posted().len(), 1);
    assert_eq!(s.pd.events().len(), 1);
    assert_eq!(s.pd.events()[0].status, 400);
    let timeline = crate::support::recorded_text(e.store());
    assert!(
        timeline.contains("Page by pagerduty failed for good: HTTP 400: Event object is invalid"),
        "{timeline}"
    );
    // Not tried again on the next rounds.
    e.deliver_due().await.unwrap();
    e.tick().await.unwrap();
    assert_eq!(s.pd.events().len(), 1);
    assert!(!stored_text(&e).contains("too-short-key"));
}
