//! The documented deployment with real OS users: `drbot serve` runs as a service user whose data
//! directory stays private; two other users in `[serve] socket_group` reach it through the
//! control socket. One asks for a restore, the other approves it, and each is recorded as
//! themselves (their uid from SO_PEERCRED, mapped by `unix_user`) — the two-person rule from
//! the terminal, the day Discord is down.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drbot_state::{ApprovalStatus, Store};

use crate::database::{env_map, setup};
use crate::support::{Run, moto, sh};

/// Users and a group made for one test, removed when it ends.
struct OsUsers {
    group: String,
    users: Vec<String>,
}

impl OsUsers {
    fn new(tag: &str) -> OsUsers {
        let group = format!("drbops{tag}");
        sh(&format!("groupadd {group}"));
        let mut made = OsUsers {
            group,
            users: Vec::new(),
        };
        for who in ["svc", "a", "b"] {
            let name = format!("drb{who}{tag}");
            sh(&format!(
                "useradd -M -U -s /usr/sbin/nologin -G {} {name}",
                made.group
            ));
            made.users.push(name);
        }
        made
    }

    fn user(&self, n: usize) -> &str {
        &self.users[n]
    }
}

impl Drop for OsUsers {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).status();
        }
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

fn chown(path: &Path, user: &str, mode: u32) {
    sh(&format!("chown {user} '{}'", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `drbot --config CONFIG ARGS…` as `user`, through runuser, with `env` set.
fn as_user(user: &str, config: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", user, "--", "env"]);
    drbot(c, config, env, args)
}

/// `drbot serve` as the service user with its groups, by setpriv (which execs, so SIGTERM
/// reaches serve itself, as systemd sends it).
fn serve_as(user: &str, config: &Path, env: &[(String, String)]) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .args(["--init-groups", "--", "env"]);
    drbot(c, config, env, &["serve"])
}

fn drbot(mut c: Command, config: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    c.arg(env!("CARGO_BIN_EXE_drbot"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DRBOT_CONFIG")
        .env_remove("DRBOT_DATA_DIR")
        .env_remove("RUST_LOG");
    c
}

struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM: serve flushes, exports its state and removes its socket.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.1])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn two_os_users_share_serve_through_the_socket_group() {
    // The socket in its own directory (systemd's /run/drbot), and in the data directory.
    two_os_users(true);
    two_os_users(false);
}

fn two_os_users(own_socket_dir: bool) {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this test as root: it creates OS users"
        );
        eprintln!("skipped: creating OS users needs root");
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(async {
        let s = setup().await;
        s.source
            .psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10);");
        s.upload(
            "2026-11-25T10-00-00Z.sql.xz.age",
            &format!("{} | xz | {}", s.dump_cmd(), s.age()),
        )
        .await;
        s
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = format!("{}{}", std::process::id() % 10_000, nanos % 10_000);
    let users = OsUsers::new(&tag);
    let (svc, alice, bob) = (users.user(0), users.user(1), users.user(2));

    // /srv-like layout: a readable config, a private data directory, a socket directory.
    let base = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = base.path().join("data");
    let run_dir = base.path().join("run");
    let key = base.path().join("backup.agekey");
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::copy(&s.key.file, &key).unwrap();
    chown(&data, svc, 0o700);
    chown(&run_dir, svc, 0o755);
    chown(&key, svc, 0o600);
    let config: PathBuf = base.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
[people.alice]
roles = ["commander"]
unix_user = "{alice}"
[people.bob]
roles = ["approver"]
unix_user = "{bob}"
[serve]
socket_group = "{group}"
{socket_dir}
[targets.staging]
url_env = "STAGING_URL"
[storage]
region = "us-east-1"
backup_bucket = "{bucket}"
[backup]
age_identity_file = "{key}"
age_recipients = ["{recipient}"]
"#,
            data = data.display(),
            socket_dir = if own_socket_dir {
                format!("socket_dir = \"{}\"", run_dir.display())
            } else {
                String::new()
            },
            group = users.group,
            bucket = s.bucket,
            key = key.display(),
            recipient = s.key.recipient,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env: Vec<(String, String)> = env_map(moto(), &s.source.url(), &s.target.url())
        .into_iter()
        .collect();

    let serve = serve_as(svc, &config, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serve");
    let serve = Serve(serve, svc.to_string());
    let socket_dir = if own_socket_dir { &run_dir } else { &data };
    let socket = socket_dir.join("drbot.sock");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve made no socket"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The socket is the group's; the data directory is still the service user's alone.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o660);
    assert_eq!(mode(socket_dir), 0o710);
    if own_socket_dir {
        assert_eq!(mode(&data), 0o700);
    } else {
        // The group passes through the data directory; everything else in it is private.
        for entry in walk(&data) {
            if entry != socket {
                assert_eq!(mode(&entry) & 0o077, 0, "{}", entry.display());
            }
        }
    }

    let exec = |user: &str, line: &str| -> Run {
        as_user(user, &config, &[], &["exec", line])
            .output()
            .expect("exec")
            .into()
    };
    let listing = Command::new("runuser")
        .args(["-u", alice, "--", "ls"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        !listing.status.success(),
        "another user can list the data dir"
    );

    let r = exec(
        alice,
        "/incident declare scenario:database severity:sev1 title:\"db lost\"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stderr.contains("Permission denied") && !r.stdout.contains("Permission denied"),
        "{r:?}"
    );
    let r = exec(alice, "/db restore backup:latest target:staging");
    assert_eq!(r.code, 3, "{r:?}");
    let id = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("approval request "))
        .expect("approval request line")
        .to_string();
    // alice cannot approve her own request, whatever she types.
    let r = exec(alice, &format!("/approve request:{id}"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("yourself"), "{r:?}");
    // bob, another OS user, approves it: it runs.
    let r = exec(bob, &format!("/approve request:{id}"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("Restored db/2026-11-25T10-00-00Z.sql.xz.age into staging"),
        "{r:?}"
    );
    assert!(s.target.dump().contains("CREATE TABLE public.t"));
    drop(serve);
    assert!(
        !socket.exists(),
        "serve stopped without removing its socket"
    );

    // Each is on the record as themselves.
    let store = Store::open(&data).expect("store");
    let req = store
        .approvals()
        .unwrap()
        .into_iter()
        .find(|r| r.id.to_string() == id)
        .expect("request");
    assert_eq!(
        (req.requested_by.as_str(), req.requested_by_id.as_str()),
        ("alice", "person:alice")
    );
    assert_eq!(req.approval_ids, ["person:bob"]);
    assert_eq!(req.status, ApprovalStatus::Executed);
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
