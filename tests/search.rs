//! Scenario 3, search, and `/api health`: against a stand-in of Meilisearch written from its
//! documented API and a stand-in of the platform API whose reindex feeds it; the expected count
//! from a real PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drbot_commands::{Config, Engine, Outcome, Reply, SystemClock};
use drbot_state::Store;

use crate::database::commander;
use crate::fake_meili::{FakeMeili, FakePlatform};
use crate::support::{TestDb, bucket, moto, put};

const MASTER: &str = "meili-m4ster-never-shown";
const TOKEN: &str = "admin-t0ken-never-shown-either";
const ROWS: usize = 1000;

struct Setup {
    _dir: tempfile::TempDir,
    _db: TestDb,
    engine: Engine,
    meili: FakeMeili,
    platform: FakePlatform,
    backup: String,
}

async fn setup_with(key: &str, host: Option<&str>) -> Setup {
    setup_full(key, host, "", Arc::new(SystemClock)).await
}

/// The setup with lines added to `[search]`, on `clock`.
async fn setup_full(
    key: &str,
    host: Option<&str>,
    search_extra: &str,
    clock: Arc<dyn drbot_commands::Clock>,
) -> Setup {
    let meili = FakeMeili::start(MASTER).await;
    let platform = FakePlatform::start(&meili, TOKEN, "artworks", ROWS).await;
    let db = TestDb::new("drbot_search_");
    db.psql(&format!(
        "CREATE TABLE artworks (id int PRIMARY KEY, published bool);
         INSERT INTO artworks SELECT g, true FROM generate_series(1, {ROWS}) g;
         INSERT INTO artworks SELECT g, false FROM generate_series({ROWS} + 1, {ROWS} + 50) g;"
    ));
    let backup = bucket("drbot-search-").await;
    let config = format!(
        r#"
[targets.production]
url_env = "DATABASE_URL"
[storage]
region = "us-east-1"
backup_bucket = "{backup}"
[search]
expected_count_sql = "SELECT count(*) FROM artworks WHERE published"
timeout_secs = 2
{follow}
{search_extra}
[api]
base_url = "{base}"
web_url = "{base}"
timeout_secs = 2
"#,
        base = platform.base,
        follow = if search_extra.contains("follow_secs") {
            ""
        } else {
            "follow_secs = 30"
        },
    );
    let config = Config::from_toml(&config, std::path::Path::new("t.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("DATABASE_URL".to_string(), db.url()),
        (
            "MEILI_HOST".to_string(),
            host.unwrap_or(&meili.host).to_string(),
        ),
        ("MEILI_MASTER_KEY".to_string(), key.to_string()),
        ("ADMIN_TOKEN".to_string(), TOKEN.to_string()),
        ("R2_ENDPOINT".to_string(), moto().to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
    ]);
    let engine = Engine::new(Arc::new(config), Store::open(dir.path()).unwrap(), clock)
        .with_env(Arc::new(move |k| env.get(k).cloned()));
    Setup {
        _dir: dir,
        _db: db,
        engine,
        meili,
        platform,
        backup,
    }
}

impl Setup {
    async fn run(&self, line: &str) -> Reply {
        let r = self.engine.run(&commander(), line).await;
        assert!(
            !r.text.contains(MASTER) && !r.text.contains(TOKEN),
            "{}",
            r.text
        );
        r
    }

    fn timeline(&self) -> String {
        crate::support::recorded_text(self.engine.store())
    }

    fn step(&self, id: &str) -> drbot_state::StepState {
        let i = self.engine.store().active_incidents().unwrap().remove(0);
        i.steps.iter().find(|s| s.id == id).unwrap().state
    }
}

fn outcome(r: &Reply, want: Outcome) {
    assert_eq!(r.outcome, want, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_health_says_plainly_whether_search_matches_the_database() {
    let s = setup_with(MASTER, None).await;
    s.run("/incident declare scenario:search severity:sev2 title:\"search broken\"")
        .await;
    // No index at all.
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("index_not_found") && r.text.contains("NOT healthy"),
        "{}",
        r.text
    );
    // Short of the database's count.
    s.meili.set_documents("artworks", 900);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("900 documents where the database has 1000"),
        "{}",
        r.text
    );
    assert!(r.text.contains("/search reindex"), "{}", r.text);
    // Within 0.5%.
    s.meili.set_documents("artworks", 996);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("Search is healthy") && r.text.contains("version 1.11.3"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("Failed tasks in the last 24 h: none"),
        "{}",
        r.text
    );
    assert_eq!(s.step("search-health"), drbot_state::StepState::Done);
    // Must restart: its 500 and message.
    s.meili.state.lock().unwrap().unavailable = true;
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("500 internal: Meilisearch must restart"),
        "{}",
        r.text
    );
    assert!(!s.timeline().contains(MASTER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_and_a_host_that_is_down_are_named_as_such() {
    let s = setup_with("not-the-key", None).await;
    s.meili.set_documents("artworks", ROWS);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("refuses drbot's key") && r.text.contains("invalid_api_key"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("not-the-key"), "{}", r.text);
    // No key at all: Meilisearch's 401.
    let s = setup_with("", None).await;
    s.meili.set_documents("artworks", ROWS);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("missing_authorization_header"),
        "{}",
        r.text
    );
    // A server that accepts and never answers: a timeout, named as such.
    let s = setup_with(MASTER, None).await;
    s.meili.set_documents("artworks", ROWS);
    s.meili.state.lock().unwrap().hang = Duration::from_secs(30);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(r.text.contains("timed out after 2 s"), "{}", r.text);
    let s = setup_with(MASTER, Some("http://127.0.0.1:9")).await;
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text
            .contains("Meilisearch at http://127.0.0.1:9 cannot connect"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reindex_runs_through_the_platform_and_is_followed_to_the_databases_count() {
    let s = setup_with(MASTER, None).await;
    s.meili.set_documents("artworks", 0);
    s.run("/incident declare scenario:search severity:sev2 title:\"search broken\"")
        .await;
    let progress = drbot_commands::progress::Collect::default();
    let r = s
        .engine
        .run_with(&commander(), "/search reindex", &progress)
        .await;
    outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("1000 of 1000 documents") && r.text.contains("complete"),
        "{}",
        r.text
    );
    let lines = progress.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("processing") && l.contains("of 1000 documents")),
        "{lines:?}"
    );
    assert_eq!(
        s.platform.state.lock().unwrap().reindex_calls,
        [Some(format!("Bearer {TOKEN}"))]
    );
    assert_eq!(s.step("search-reindex"), drbot_state::StepState::Done);
    let r = s.run("/search progress").await;
    outcome(&r, Outcome::Done);
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Done);
    assert!(!s.timeline().contains(TOKEN));

    // Reindexing an index that already has the count: not done before its tasks are.
    let before = s.meili.tasks();
    let r = s.run("/search reindex").await;
    outcome(&r, Outcome::Done);
    assert!(r.text.contains("1000 of 1000 documents"), "{}", r.text);
    assert_eq!(
        (s.meili.tasks(), s.meili.unfinished()),
        (before + ROWS / 100, 0),
        "declared done before its tasks were: {}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_or_a_refusing_api_fails_the_reindex_with_its_words() {
    let s = setup_with(MASTER, None).await;
    s.meili.set_documents("artworks", 0);
    s.run("/incident declare scenario:search severity:sev2 title:\"search broken\"")
        .await;
    s.platform.state.lock().unwrap().reindex_status = Some(500);
    let r = s.run("/search reindex").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("answered 500") && r.text.contains("database unreachable"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Nothing was started"), "{}", r.text);
    s.platform.state.lock().unwrap().reindex_status = None;
    s.meili.state.lock().unwrap().fail_documents = true;
    let r = s.run("/search reindex").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("The reindex failed") && r.text.contains("invalid_document_id"),
        "{}",
        r.text
    );
    assert_eq!(s.step("search-reindex"), drbot_state::StepState::Failed);
    // /search health shows the failed task of the last 24 h.
    let r = s.run("/search health").await;
    assert!(
        r.text.contains("Failed tasks in the last 24 h") && r.text.contains("invalid_document_id"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumps_are_created_and_followed_and_listed_with_the_way_to_use_them() {
    let s = setup_with(MASTER, None).await;
    let r = s.run("/search dump").await;
    outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("created") && r.text.contains("--import-dump"),
        "{}",
        r.text
    );
    let r = s.run("/search dumps").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("No Meilisearch dumps") && r.text.contains("/search reindex"),
        "{}",
        r.text
    );
    put(&s.backup, "meili/20261201-070000000.dump", b"dump".to_vec()).await;
    let r = s.run("/search dumps").await;
    outcome(&r, Outcome::Done);
    assert!(r.text.contains("within the 15m search RPO"), "{}", r.text);
    assert!(
        r.text
            .contains(&format!("s3://{}/meili/20261201-070000000.dump", s.backup)),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("imports a dump only at launch"),
        "{}",
        r.text
    );
}

/// A dump still running when drbot stops following it is said to go on (not a failure); one
/// Meilisearch fails is a failure with its reason. Neither stores anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_still_running_goes_on_and_a_failed_one_says_why() {
    let s = setup_full(MASTER, None, "follow_secs = 1", Arc::new(SystemClock)).await;
    s.meili.state.lock().unwrap().stalled = true;
    let r = s.run("/search dump").await;
    outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("Dump task 0 is still enqueued after ")
            && r.text.contains("it goes on in Meilisearch")
            && r.text.contains("will not be stored in the bucket"),
        "{}",
        r.text
    );
    {
        let mut m = s.meili.state.lock().unwrap();
        m.stalled = false;
        m.fail_dumps = true;
    }
    let r = s.run("/search dump").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text
            .contains("The dump failed: dump task 1 failed: Permission denied (os error 13)"),
        "{}",
        r.text
    );
    let r = s.run("/search dumps").await;
    assert!(r.text.contains("No Meilisearch dumps"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_health_checks_both_and_a_hang_is_a_timeout() {
    let s = setup_with(MASTER, None).await;
    s.run("/incident declare scenario:database severity:sev2 title:\"db down\"")
        .await;
    let r = s.run("/api health").await;
    outcome(&r, Outcome::Done);
    assert!(
        r.text.contains("API") && r.text.contains("200 in") && r.text.contains("(status: ok)"),
        "{}",
        r.text
    );
    assert_eq!(s.step("restart-apps"), drbot_state::StepState::Done);
    assert_eq!(s.step("post-integrity"), drbot_state::StepState::Done);
    s.platform.state.lock().unwrap().health_status = Some(503);
    let r = s.run("/api health").await;
    outcome(&r, Outcome::Failed);
    assert!(r.text.contains("FAILING: 503"), "{}", r.text);
    s.platform.state.lock().unwrap().health_status = None;
    s.platform.state.lock().unwrap().health_delay = Duration::from_secs(5);
    let r = s.run("/api health").await;
    outcome(&r, Outcome::Failed);
    assert!(r.text.contains("timed out after 2 s"), "{}", r.text);
}

/// An answer far past what the API documents is read only to 64 KiB, and Meilisearch's is
/// named as unreadable: nothing is taken from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_past_64_kib_are_cut_there_and_said_so() {
    let s = setup_with(MASTER, None).await;
    s.meili.set_documents("artworks", 1000);
    s.meili.state.lock().unwrap().padding = 4 << 20;
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("an answer over 64 KiB (not read further)"),
        "{}",
        r.text
    );
    assert!(r.text.len() < 4000, "{}", r.text.len());
    s.meili.state.lock().unwrap().padding = 0;
    let r = s.run("/search health").await;
    outcome(&r, Outcome::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_health_fails_when_only_the_web_is_down() {
    let meili = FakeMeili::start(MASTER).await;
    let platform = FakePlatform::start(&meili, TOKEN, "artworks", 1).await;
    let config = format!(
        "[api]\nbase_url = \"{}\"\nweb_url = \"http://127.0.0.1:9\"\ntimeout_secs = 2\n",
        platform.base
    );
    let config = Config::from_toml(&config, std::path::Path::new("t.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        Arc::new(config),
        Store::open(dir.path()).unwrap(),
        Arc::new(SystemClock),
    );
    let r = engine.run(&commander(), "/api health").await;
    outcome(&r, Outcome::Failed);
    assert!(
        r.text.contains("API") && r.text.contains("healthy: 200"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("Web http://127.0.0.1:9/api/health FAILING: cannot connect"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drbot_check_probes_every_configured_service_for_real_and_shows_no_secret() {
    use crate::fake_http::{Answer, FakeHttp};
    let meili = FakeMeili::start(MASTER).await;
    let platform = FakePlatform::start(&meili, TOKEN, "artworks", 10).await;
    let other = FakeHttp::start().await;
    other.script(
        "/api/v10/users/@me",
        vec![Answer::status(
            200,
            serde_json::json!({"id": "1", "username": "drbot-bot"}),
        )],
    );
    let d = crate::support::Drbot::new(&format!(
        r#"
[search]
[api]
base_url = "{p}"
web_url = "{p}"
[discord]
guild_id = 1
incident_channel_id = 2
api_base = "{o}"
[notify]
email_from = "drbot@example.com"
email_to = ["ops@example.com"]
resend_base = "{o}"
[check]
stripe_key_env = "STRIPE_KEY"
stripe_base = "{o}"
"#,
        p = platform.base,
        o = other.base
    ));
    let hook = format!("{}/hooks/s3cr3t-hook-path", other.base);
    let run = |key: &'static str| {
        let mut c = d.command();
        c.arg("check")
            .env("MEILI_HOST", &meili.host)
            .env("MEILI_MASTER_KEY", key)
            .env("DISCORD_TOKEN", "discord-t0ken-secret")
            .env("RESEND_API_KEY", "re_s3cret")
            .env("STATUSPAGE_WEBHOOK_URL", &hook)
            .env("STRIPE_KEY", "sk_test_s3cret")
            .env("ADMIN_TOKEN", TOKEN);
        c
    };
    let mut c = run(MASTER);
    let r: crate::support::Run = tokio::task::spawn_blocking(move || c.output().unwrap().into())
        .await
        .unwrap();
    for secret in [
        MASTER,
        "discord-t0ken-secret",
        "re_s3cret",
        "s3cr3t-hook-path",
        "sk_test_s3cret",
    ] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret}: {r:?}"
        );
    }
    for want in [
        "the key is accepted",
        "version 1.11.3",
        "/healthz 200 in",
        "/api/health 200 in",
        "the bot is drbot-bot",
        "nothing was posted",
        "the key reads the balance",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    assert_eq!(r.code, 0, "{r:?}");
    // The keys were sent where they belong.
    assert_eq!(
        other.hits("/api/v10/users/@me")[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bot discord-t0ken-secret")
    );
    assert_eq!(other.hits("/hooks/s3cr3t-hook-path")[0].method, "HEAD");
    // A wrong key shows, and fails the check.
    let mut c = run("wrong-key");
    let r: crate::support::Run = tokio::task::spawn_blocking(move || c.output().unwrap().into())
        .await
        .unwrap();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("refuses the key on /version: 403 invalid_api_key"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("wrong-key"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stores_a_dump_on_schedule_and_the_search_rpo_follows_it() {
    let dumps = tempfile::tempdir().unwrap();
    let clock = Arc::new(drbot_commands::ManualClock::new(chrono::Utc::now()));
    let s = setup_full(
        MASTER,
        None,
        &format!(
            "dump_every_mins = 15\ndump_dir = {:?}",
            dumps.path().display().to_string()
        ),
        clock.clone(),
    )
    .await;
    s.meili.state.lock().unwrap().dump_dir = Some(dumps.path().to_path_buf());
    let search_posts = |posts: Vec<drbot_commands::watch::Post>| -> Vec<String> {
        posts
            .into_iter()
            .map(|p| p.text)
            .filter(|t| t.contains("Search RPO") || t.contains("Meilisearch dump"))
            .collect()
    };
    // No dump yet: the search RPO is breached, said once.
    let posts = search_posts(s.engine.tick().await.unwrap());
    assert!(
        posts.len() == 1 && posts[0].contains("there is no Meilisearch dump"),
        "{posts:?}"
    );
    assert!(search_posts(s.engine.tick().await.unwrap()).is_empty());
    // Due: asked for, followed, stored under meili/ by its time, the local file removed.
    assert!(search_posts(s.engine.scheduled().await.unwrap()).is_empty());
    let stored = crate::support::list(&s.backup, "meili/").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].ends_with(".dump") && stored[0].starts_with("meili/20"),
        "{stored:?}"
    );
    let body = crate::support::get(&s.backup, &stored[0]).await;
    assert!(body.starts_with(b"MEILIDUMP"), "{body:?}");
    assert_eq!(std::fs::read_dir(dumps.path()).unwrap().count(), 0);
    let posts = search_posts(s.engine.tick().await.unwrap());
    assert!(
        posts.len() == 1 && posts[0].contains("Search RPO recovered"),
        "{posts:?}"
    );
    let r = s.run("/search dumps").await;
    outcome(&r, Outcome::Done);
    assert!(r.text.contains("within the 15m search RPO"), "{}", r.text);
    // Not again within 15 minutes.
    clock.advance(chrono::Duration::minutes(5));
    s.engine.scheduled().await.unwrap();
    assert_eq!(crate::support::list(&s.backup, "meili/").await.len(), 1);

    // Meilisearch's dump directory is not where drbot looks: said once, then once recovered.
    let elsewhere = tempfile::tempdir().unwrap();
    s.meili.state.lock().unwrap().dump_dir = Some(elsewhere.path().to_path_buf());
    clock.advance(chrono::Duration::minutes(16));
    let posts = search_posts(s.engine.scheduled().await.unwrap());
    assert!(
        posts.len() == 1
            && posts[0].contains("The scheduled Meilisearch dump failed")
            && posts[0].contains("dump_dir"),
        "{posts:?}"
    );
    clock.advance(chrono::Duration::minutes(16));
    assert!(
        search_posts(s.engine.scheduled().await.unwrap()).is_empty(),
        "said once"
    );
    let posts = search_posts(s.engine.tick().await.unwrap());
    assert!(
        posts.len() == 1 && posts[0].contains("Search RPO breached"),
        "{posts:?}"
    );
    s.meili.state.lock().unwrap().dump_dir = Some(dumps.path().to_path_buf());
    clock.advance(chrono::Duration::minutes(16));
    let posts = search_posts(s.engine.scheduled().await.unwrap());
    assert!(
        posts.len() == 1 && posts[0].contains("work again"),
        "{posts:?}"
    );
    assert_eq!(crate::support::list(&s.backup, "meili/").await.len(), 2);
}
