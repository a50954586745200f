//! The foundation: the incident lifecycle through `drbot exec` and `drbot console`, across
//! separate processes, with the exit statuses of SPEC §3.

use std::io::{BufRead, BufReader, Write};

use crate::support::{Drbot, exists, os_user};

const DECLARE: &str =
    r#"/incident declare scenario:database severity:sev1 title:"Primary DB down""#;

#[test]
fn the_lifecycle_survives_each_process_ending() {
    let d = Drbot::new("");
    let r = d.exec(None, DECLARE);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Declared INC-1"), "{r:?}");
    assert!(exists(&d.data_dir()));

    let r = d.exec(None, "/step done step:stop-apps");
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.exec(None, "/incident note text:web shows the maintenance page");
    assert_eq!(r.code, 0, "{r:?}");

    let r = d.exec(None, "/incident status");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("✓  2. stop-apps"), "{}", r.stdout);
    assert!(r.stdout.contains("Next: 1. Assess impact"), "{}", r.stdout);

    let r = d.exec(None, "/incident timeline");
    assert_eq!(r.code, 0, "{r:?}");
    for want in [
        "declared",
        "Step 2. Stop API and web applications marked done by hand.",
        "web shows the maintenance page",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }

    let r = d.exec(None, "/incident resolve");
    assert_eq!(r.code, 0, "{r:?}");
    // exec prints the post-incident report after the reply.
    assert!(
        r.stdout.contains("--- INC-1-report.md ---") && r.stdout.contains("## Lessons learned"),
        "{}",
        r.stdout
    );
    assert_eq!(d.exec(None, "/incident close confirm:yes").code, 0);
    let r = d.exec(None, "/incident close incident:INC-1");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("already closed"), "{r:?}");
}

#[test]
fn console_work_is_readable_from_exec_afterwards() {
    let d = Drbot::new("");
    let r = d.console(
        None,
        &[
            DECLARE,
            "/step list",
            "/step done step:stop-apps",
            "/incident note text:API and web stopped",
            "/incident timeline",
            "/quit",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("acting as"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Stop API and web applications"),
        "{}",
        r.stdout
    );

    let r = d.exec(None, "/incident timeline");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("Step 2. Stop API and web applications marked done by hand."),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("API and web stopped"), "{}", r.stdout);
    // The history file is owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.data_dir().join("console_history"))
        .expect("history")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn a_second_process_on_busy_data_gets_a_clear_error() {
    let d = Drbot::new("");
    // Another process holds the data directory (as a long restore does).
    let held = drbot_state::Store::open(&d.data_dir()).expect("open");
    let r = d.exec(None, "/incident status");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("in use by another drbot process"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    drop(held);
}

#[test]
fn exec_works_while_a_console_waits_at_its_prompt() {
    let d = Drbot::new("");
    let mut console = d.spawn_console(None);
    let mut out = BufReader::new(console.stdout.take().expect("stdout"));
    let mut stdin = console.stdin.take().expect("stdin");
    writeln!(stdin, "{DECLARE}").expect("declare");
    let mut line = String::new();
    while !line.contains("Declared INC-1") {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "console ended");
    }
    // A second person, in another terminal, while the console is open.
    let r = d.exec(None, "/incident note text:from another terminal");
    assert_eq!(r.code, 0, "{r:?}");
    writeln!(stdin, "/incident timeline").expect("timeline");
    writeln!(stdin, "/quit").expect("quit");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(console.wait().expect("console exits").success());
    assert!(rest.contains("from another terminal"), "{rest}");
}

#[test]
fn exit_statuses_follow_the_spec() {
    let d = Drbot::new("");
    // 2: unusable command lines.
    for line in [
        "/incdent status",
        "/incident declare scenario:nonsense severity:sev1 title:x",
        "/incident declare scenario:database title:x",
        "/incident status verbose:yes",
        "incident status",
    ] {
        let r = d.exec(None, line);
        assert_eq!(r.code, 2, "{line}: {r:?}");
        assert!(r.stdout.contains("Nothing was changed."), "{line}: {r:?}");
    }
    assert_eq!(d.exec(None, DECLARE).code, 0);
    let r = d.exec(None, "/step done step:42");
    assert_eq!(r.code, 2, "{r:?}");
    // 1: refused.
    let r = d.exec(None, DECLARE);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("still open here"), "{r:?}");
    // Clap's own usage errors are 2 as well.
    let out = d.command().arg("exec").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = d.command().arg("frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    // Nothing above changed the incident: still one, with no step done.
    let r = d.exec(None, "/incident status");
    assert!(
        r.stdout
            .contains("Steps: 0 done, 0 skipped, 15 to go of 15."),
        "{}",
        r.stdout
    );
    // Refusals are on the audit log, not the incident's timeline.
    let r = d.exec(None, "/incident timeline");
    assert_eq!(r.stdout.matches("  refused  ").count(), 0, "{}", r.stdout);
}

#[test]
fn the_console_shows_what_others_do_as_it_happens() {
    let d = Drbot::new(&people(true));
    let mut console = d.spawn_console(Some("alice"));
    let out = BufReader::new(console.stdout.take().expect("stdout"));
    let mut stdin = console.stdin.take().expect("stdin");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |want: &str| -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                let hit = line.contains(want);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
        }
        panic!("the console never printed {want:?}; it printed {seen:#?}");
    };
    writeln!(stdin, "{DECLARE}").expect("declare");
    wait_for("Declared INC-1");
    // Someone else, in another terminal, while the console waits at its prompt: it shows up
    // without anyone typing in the console.
    let r = d.exec(Some("bob"), "/incident note text:replica  \"b\" is lagging");
    assert_eq!(r.code, 0, "{r:?}");
    let seen = wait_for("replica  \"b\" is lagging");
    let line = seen.last().expect("a line");
    assert!(
        line.contains("INC-1") && line.contains("bob") && line.contains("(note)"),
        "{line}"
    );
    // The console's own commands are shown once, by their replies.
    writeln!(stdin, "/incident note text:mine").expect("note");
    wait_for("Noted on INC-1");
    writeln!(stdin, "/quit").expect("quit");
    drop(stdin);
    assert!(console.wait().expect("console exits").success());
    let rest: Vec<String> = rx.iter().collect();
    let _ = reader.join();
    assert!(
        !rest.iter().any(|l| l.contains("(note): mine")),
        "{rest:#?}"
    );
}

#[test]
fn a_bad_config_stops_before_anything_runs() {
    let d = Drbot::new("[status]\nevery_mins = \"often\"\n");
    let r = d.exec(None, DECLARE);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("config.toml is invalid"), "{r:?}");
    assert!(!exists(&d.data_dir()));
}

fn people(trust_as: bool) -> String {
    format!(
        "[people.alice]\nroles = [\"commander\"]\nunix_user = \"{}\"\n\
         [people.bob]\nroles = [\"approver\"]\nunix_user = \"bob-not-here\"\n\
         [console]\ntrust_as = {trust_as}\n",
        os_user()
    )
}

#[test]
fn as_needs_proof_unless_trusted() {
    let d = Drbot::new(&people(false));
    let r = d.exec(Some("alice"), DECLARE);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.exec(Some("bob"), "/incident note text:hello");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--as bob refused"), "{r:?}");
    let r = d.exec(Some("nobody"), "/incident status");
    assert_eq!(r.code, 2, "{r:?}");

    let d = Drbot::new(&people(true));
    assert_eq!(d.exec(None, DECLARE).code, 0);
    let r = d.exec(Some("bob"), "/incident note text:hello from bob");
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.exec(None, "/incident timeline");
    assert!(
        r.stdout.contains("bob*") && r.stdout.contains("asserted"),
        "{}",
        r.stdout
    );
}

#[test]
fn check_reports_settings_without_secrets() {
    let d = Drbot::new("");
    let r: crate::support::Run = d.command().arg("check").output().expect("check").into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("database") && r.stdout.contains("off"),
        "{}",
        r.stdout
    );

    let d = Drbot::new(
        "[targets.production]\nurl_env = \"DATABASE_URL\"\n[targets.staging]\nurl_env = \"DRBOT_TEST_UNSET_URL\"\n",
    );
    let r: crate::support::Run = d
        .command()
        .arg("check")
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@db.example:5432/postgres",
        )
        .env_remove("DRBOT_TEST_UNSET_URL")
        .output()
        .expect("check")
        .into();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        !r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("postgres://app:***@db.example:5432/postgres"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("staging: DRBOT_TEST_UNSET_URL is not set"),
        "{r:?}"
    );
}

#[test]
fn the_console_history_and_the_logs_keep_no_secret() {
    let d = Drbot::new("[targets.production]\nurl_env = \"DATABASE_URL\"\n");
    std::fs::create_dir_all(d.data_dir()).unwrap();
    let history = d.data_dir().join("console_history");
    // A history written before redaction existed is scrubbed when the console opens.
    std::fs::write(
        &history,
        "#V2\n/incident note text:old postgres://x:0ld-secret@h/d\n",
    )
    .unwrap();
    let mut child = d
        .command()
        .arg("console")
        .env("DATABASE_URL", "postgres://app:s3cr3t-pw@127.0.0.1:1/app")
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in [
            DECLARE,
            "/incident note text:replica at postgres://u:hunter22@10.0.0.9/db",
            "/incident note text:the password is s3cr3t-pw, rotate it",
            "/incident note text:host=db password=conn1nfo-pw dbname=app",
            "/db check",
            "/quit",
        ] {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.contains("/incident note text:"), "{kept}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("/db check"), "{stdout}");
    for secret in ["0ld-secret", "hunter22", "s3cr3t-pw", "conn1nfo-pw"] {
        assert!(!kept.contains(secret), "{secret} kept in history: {kept}");
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
        assert!(!stderr.contains(secret), "{secret} logged: {stderr}");
    }
}
