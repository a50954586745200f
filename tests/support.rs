//! Running the `drbot` binary in a scratch directory with its own config and data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A scratch drbot installation: a temp dir holding config.toml and the data directory.
pub struct Drbot {
    pub dir: tempfile::TempDir,
}

/// What one run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Drbot {
    /// A scratch install whose config is `extra` after `data_dir`.
    pub fn new(extra: &str) -> Drbot {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = format!("data_dir = {:?}\n{extra}", data.display().to_string());
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Drbot { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A `drbot` command with this install's config and a clean environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drbot"));
        c.arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .env_remove("DRBOT_CONFIG")
            .env_remove("DRBOT_DATA_DIR")
            .env_remove("RUST_LOG");
        c
    }

    /// `drbot exec [--as NAME] LINE`.
    pub fn exec(&self, as_name: Option<&str>, line: &str) -> Run {
        let mut c = self.command();
        c.arg("exec");
        if let Some(n) = as_name {
            c.args(["--as", n]);
        }
        c.arg(line).output().expect("run drbot exec").into()
    }

    /// `drbot console` fed `lines` on standard input, then end of input.
    pub fn console(&self, as_name: Option<&str>, lines: &[&str]) -> Run {
        let mut child = self.spawn_console(as_name);
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            for l in lines {
                writeln!(stdin, "{l}").expect("write to console");
            }
        }
        child.wait_with_output().expect("console exits").into()
    }

    /// A console left running, with piped standard streams.
    pub fn spawn_console(&self, as_name: Option<&str>) -> Child {
        let mut c = self.command();
        c.arg("console");
        if let Some(n) = as_name {
            c.args(["--as", n]);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn console")
    }
}

/// The operating-system user running the tests (the identity `exec` proves).
pub fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// True when `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

// ---------------------------------------------------------------------------------------------
// Real servers: PostgreSQL on 127.0.0.1:5432 and one moto S3 server per test process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// Runs a shell command; panics with its output when it fails.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{script}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PostgreSQL server tests use.
pub const PG: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of its own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(prefix: &str) -> TestDb {
        let name = unique(prefix);
        sh(&format!(
            "psql -q -X '{PG}/postgres' -c 'CREATE DATABASE \"{name}\"'"
        ));
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("{PG}/{}?sslmode=disable", self.name)
    }

    /// Drops and creates the database again, empty.
    pub fn recreate(&self) {
        sh(&format!(
            "psql -q -X '{PG}/postgres' -c 'DROP DATABASE \"{n}\" WITH (FORCE)' -c 'CREATE DATABASE \"{n}\"'",
            n = self.name
        ));
    }

    /// Runs SQL through psql, stopping at the first error.
    pub fn psql(&self, sql: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), sql).expect("write sql");
        sh(&format!(
            "psql -q -X -v ON_ERROR_STOP=1 '{PG}/{}' -f {}",
            self.name,
            file.path().display()
        ));
    }

    /// Runs SQL on the server's `postgres` database (about this one: ALTER DATABASE …).
    pub fn psql_admin(&self, sql: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), sql).expect("write sql");
        sh(&format!(
            "psql -q -X -v ON_ERROR_STOP=1 '{PG}/postgres' -f {}",
            file.path().display()
        ));
    }

    /// pg_dump of the database, without the per-run `\restrict` key lines.
    pub fn dump(&self) -> String {
        sh(&format!("pg_dump '{PG}/{}'", self.name))
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-q",
                "-X",
                &format!("{PG}/postgres"),
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Asserts two dumps are the same, showing the first difference rather than both dumps.
pub fn assert_same_dump(a: &str, b: &str, what: &str) {
    if a == b {
        return;
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = la
        .iter()
        .zip(&lb)
        .position(|(x, y)| x != y)
        .unwrap_or(la.len().min(lb.len()));
    let from = i.saturating_sub(3);
    panic!(
        "{what}: dumps differ at line {}:\n--- expected\n{}\n--- got\n{}",
        i + 1,
        la[from..(i + 4).min(la.len())].join("\n"),
        lb[from..(i + 4).min(lb.len())].join("\n")
    );
}

/// The moto S3 server, started once per test process and stopped when the process ends.
pub fn moto() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let dir = std::env::temp_dir().join(unique("drbot-moto-"));
        std::fs::create_dir_all(&dir).expect("moto dir");
        let log = dir.join("moto.log");
        // A watcher stops moto when this test process exits; the watcher itself is reaped by
        // init when we are gone, so it is deliberately not waited for.
        // moto 5.2.5+ (see .ci/run); DRBOT_MOTO_SERVER or CI's virtualenv, else the PATH's.
        let server = std::env::var("DRBOT_MOTO_SERVER").unwrap_or_else(|_| {
            let venv = "/var/tmp/drbot-py/bin/moto_server";
            if Path::new(venv).exists() {
                venv
            } else {
                "moto_server"
            }
            .to_string()
        });
        let script = format!(
            "{server} -H 127.0.0.1 -p 0 > {log} 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
            log = log.display(),
            parent = std::process::id()
        );
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        for _ in 0..300 {
            if let Ok(text) = std::fs::read_to_string(&log)
                && let Some(rest) = text.split("Running on ").nth(1)
            {
                let url = rest.split_whitespace().next().unwrap_or_default();
                return url.trim_end_matches('/').to_string();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "moto_server did not start: {:?}",
            std::fs::read_to_string(&log)
        );
    })
}

/// An S3 client for moto.
pub fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(moto())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A new, empty bucket of the test's own.
pub async fn bucket(prefix: &str) -> String {
    let name = unique(prefix).to_lowercase();
    s3().create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

/// Uploads bytes as an object.
pub async fn put(bucket: &str, key: &str, body: Vec<u8>) {
    s3().put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}

/// Downloads an object whole.
pub async fn get(bucket: &str, key: &str) -> Vec<u8> {
    s3().get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get object")
        .body
        .collect()
        .await
        .expect("read object")
        .to_vec()
}

/// An age key pair made by age-keygen: the identity file and the public key.
pub struct AgeKey {
    pub file: PathBuf,
    pub recipient: String,
    _dir: tempfile::TempDir,
}

pub fn age_key() -> AgeKey {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.agekey");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen (apt-get install age)");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let recipient = text
        .split("Public key: ")
        .nth(1)
        .expect("public key")
        .trim()
        .to_string();
    AgeKey {
        file,
        recipient,
        _dir: dir,
    }
}

/// `%XX` escapes decoded (and `+` as a space in query strings, when `plus` is set).
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if plus && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything a store has recorded: the audit log and every active incident's timeline.
pub fn recorded_text(store: &drbot_state::Store) -> String {
    let mut all: Vec<String> = store.audit().unwrap().into_iter().map(|e| e.text).collect();
    for i in store.active_incidents().unwrap() {
        all.extend(store.timeline(i.id).unwrap().into_iter().map(|e| e.text));
    }
    all.join("\n")
}

/// A drill record as stored, for tests that stage what an earlier drbot left: its scratch
/// resources, `kind` and `status`; nothing measured.
pub fn drill_record(
    id: drbot_state::DrillId,
    kind: &str,
    status: drbot_state::DrillStatus,
    scratch: Vec<drbot_state::Scratch>,
) -> drbot_state::Drill {
    let now = chrono::Utc::now();
    drbot_state::Drill {
        id,
        kind: kind.into(),
        started_by: "test".into(),
        place: "console".into(),
        scheduled: false,
        started_at: now,
        finished_at: (status != drbot_state::DrillStatus::Running).then_some(now),
        status,
        reason: None,
        steps: Vec::new(),
        scratch,
        restored: None,
        rto_ms: None,
        rpo_secs: None,
        storage_restored: None,
        storage_rpo_secs: None,
        app_checks: Vec::new(),
        report: String::new(),
    }
}

/// Stores a drill staged by [`drill_record`].
pub fn stage_drill(
    store: &drbot_state::Store,
    kind: &str,
    status: drbot_state::DrillStatus,
    scratch: Vec<drbot_state::Scratch>,
) {
    store
        .create_drill(|id| {
            Ok::<_, drbot_state::StateError>((
                drill_record(id, kind, status, scratch.clone()),
                Vec::new(),
            ))
        })
        .unwrap();
}

/// The markdown table row of a report that starts with `| name`, or "" when there is none.
pub fn report_row<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("| {name}")))
        .unwrap_or_default()
}

/// The keys under `prefix` in `bucket` (one page: tests keep few).
pub async fn list(bucket: &str, prefix: &str) -> Vec<String> {
    s3().list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}
