//! `drbot serve` without Discord: the control socket for exec and console while it holds the
//! data directory, graceful shutdown on SIGTERM, and a clean fallback after a crash.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::support::Drbot;

const DECLARE: &str = r#"/incident declare scenario:database severity:sev2 title:"served""#;

fn start(d: &Drbot) -> Child {
    let mut child = d
        .command()
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert!(line.contains("listening on"), "{line}");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    child
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn exec_talks_to_serve_over_its_socket_and_serve_stops_cleanly() {
    let d = Drbot::new("");
    let mut serve = start(&d);
    let sock = d.data_dir().join("drbot.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let dir_mode = std::fs::metadata(d.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "{dir_mode:o}");

    // serve holds sled; these only work through the socket.
    let r = d.exec(None, DECLARE);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Declared INC-1"), "{r:?}");
    let r = d.exec(None, "/incident stauts");
    assert_eq!(r.code, 2, "{r:?}");
    let r = d.exec(None, "/step done step:stop-apps");
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.console(None, &["/incident note text:from the console", "/quit"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("through the running drbot serve"),
        "{}",
        r.stdout
    );

    signal(&serve, "-TERM");
    let status = serve.wait().expect("serve exits");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists());
    // Everything was flushed: read directly now that serve is gone.
    let r = d.exec(None, "/incident timeline");
    assert_eq!(r.code, 0, "{r:?}");
    for want in [
        "Declared sev2",
        "Stop API and web applications marked done by hand",
        "from the console",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    // The typo went to the audit log, not the timeline; the report counts it.
    assert!(!r.stdout.contains("stauts"), "{}", r.stdout);
    let r = d.exec(None, "/incident report");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("1 command typed in this incident was refused"),
        "{}",
        r.stdout
    );
}

#[test]
fn after_a_crash_exec_falls_back_to_the_data_directory() {
    let d = Drbot::new("");
    let mut serve = start(&d);
    assert_eq!(d.exec(None, DECLARE).code, 0);
    signal(&serve, "-KILL");
    let _ = serve.wait();
    // The stale socket is left behind; nobody answers it.
    assert!(d.data_dir().join("drbot.sock").exists());
    let r = d.exec(None, "/incident status");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("“served”"), "{r:?}");
    // And a new serve replaces the stale socket.
    let mut serve = start(&d);
    assert_eq!(d.exec(None, "/incident note text:back").code, 0);
    signal(&serve, "-TERM");
    assert!(serve.wait().expect("exits").success());
}

/// A socket group that does not exist, or one the service user cannot hand the socket to, is
/// a clear error at start, and serve leaves no socket behind.
#[test]
fn a_socket_group_serve_cannot_use_stops_it_at_start() {
    let d = Drbot::new("[serve]\nsocket_group = \"drbot-no-such-group\"\n");
    let out = d.command().arg("serve").output().expect("serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[serve] socket_group: there is no group `drbot-no-such-group`"),
        "{stderr}"
    );
    let run = d.exec(None, "/incident status");
    assert!(
        !run.stdout.contains("through the running drbot serve"),
        "{run:?}"
    );

    // A socket directory inside the data directory would need the group to pass through it.
    let d = Drbot::new("");
    let inside = d.data_dir().join("run");
    let mut text = std::fs::read_to_string(d.config_path()).unwrap();
    text.push_str(&format!("[serve]\nsocket_dir = \"{}\"\n", inside.display()));
    std::fs::write(d.config_path(), text).unwrap();
    let out = d.command().arg("serve").output().expect("serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[serve] socket_dir"), "{stderr}");
    assert!(!inside.exists());
}
