//! `drbot console`: the incident channel in a terminal, with line editing and history.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustyline::ExternalPrinter as _;

use drbot_commands::{Outcome, Reply};
use rustyline::error::ReadlineError;

use crate::local::Local;

/// Runs the console until `/quit` or end of input; returns the exit status.
pub async fn run(local: Local) -> u8 {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("drbot: cannot start line editing: {e}");
            return 1;
        }
    };
    let (history, banner) = if local.served().await {
        let reply = local.run("/incident status").await;
        (
            served_history(local.data_dir()),
            format!(
                "drbot console — acting as {}, through the running drbot serve.\n{}\nType /help for commands, /quit to leave.",
                local.ctx.actor.display(),
                reply.text
            ),
        )
    } else {
        match local.engine().await {
            Ok(engine) => (
                engine.store().path().join("console_history"),
                banner(&local, &engine),
            ),
            Err(e) => {
                eprintln!("drbot: {e}");
                return 1;
            }
        }
    };
    scrub_history(&history);
    let _ = editor.load_history(&history);
    println!("{banner}");
    // What happens from elsewhere (exec, Discord, serve's background work) is printed as it
    // happens; the console's own commands are shown by their replies.
    let seen = local
        .timeline_since(0)
        .await
        .and_then(|all| all.last().map(|e| e.seq))
        .unwrap_or(0);
    let cursor = Arc::new(tokio::sync::Mutex::new(seen));
    let stop = Arc::new(AtomicBool::new(false));
    let printer: Box<dyn FnMut(String) + Send> = match editor.create_external_printer() {
        Ok(mut p) => Box::new(move |s| {
            if p.print(s.clone()).is_err() {
                println!("{s}");
            }
        }),
        Err(_) => Box::new(|s| println!("{s}")),
    };
    let watcher = watch(local.clone(), cursor.clone(), stop.clone(), printer);
    let me = local.ctx.actor.recorded();
    loop {
        let line = match editor.readline("drbot> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                println!("(Ctrl-D or /quit leaves the console.)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("drbot: cannot read input: {e}");
                break;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // What is kept on disk is what was typed, minus its secrets.
        let _ = editor.add_history_entry(crate::redact(line));
        match line {
            "/quit" | "/exit" | "quit" | "exit" => break,
            "/help" | "help" | "?" => {
                println!("{}", drbot_commands::commands().help());
                continue;
            }
            _ => {}
        }
        let mut after = cursor.lock().await;
        let reply = local.run(line).await;
        println!("{}", show(&reply));
        // Others' entries written meanwhile are shown; this console's own are its reply.
        if let Some(entries) = local.timeline_since(*after).await {
            for e in entries {
                *after = (*after).max(e.seq);
                if e.actor != me {
                    println!("{}", elsewhere(&e));
                }
            }
        }
        drop(after);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    if let Err(e) = editor.save_history(&history) {
        tracing::warn!(error = %e, "could not save console history");
    } else {
        restrict(&history);
    }
    0
}

/// How often the console looks for what happened elsewhere.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Prints every timeline entry written after `cursor` as it appears, until `stop`.
fn watch(
    local: Local,
    cursor: Arc<tokio::sync::Mutex<u64>>,
    stop: Arc<AtomicBool>,
    mut print: Box<dyn FnMut(String) + Send>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(WATCH_EVERY);
            let mut after = cursor.blocking_lock();
            if let Some(entries) = rt.block_on(local.timeline_since(*after)) {
                for e in entries {
                    *after = (*after).max(e.seq);
                    print(elsewhere(&e));
                }
            }
        }
    })
}

/// One entry from elsewhere, marked so it is not taken for a reply.
fn elsewhere(e: &drbot_state::TimelineEntry) -> String {
    let incident = e.incident.map(|i| format!("{i} ")).unwrap_or_default();
    format!(
        "· {incident}{} {} ({}): {}",
        e.at.format("%H:%M:%S"),
        e.actor,
        e.kind.as_str(),
        e.text
    )
}

/// Failures are marked so they stand out at 3 a.m.
fn show(reply: &Reply) -> String {
    match reply.outcome {
        Outcome::Done => reply.full_text(),
        _ => format!("✗ {}", reply.full_text()),
    }
}

fn banner(local: &Local, engine: &drbot_commands::Engine) -> String {
    let actor = &local.ctx.actor;
    let roles: Vec<&str> = actor.roles.iter().map(String::as_str).collect();
    let mut s = format!(
        "drbot console — acting as {} ({}). State in {}.\n",
        actor.display(),
        if roles.is_empty() {
            "no roles".to_string()
        } else {
            roles.join(", ")
        },
        engine.store().path().display()
    );
    match engine.store().active_incidents() {
        Ok(open) if open.is_empty() => {
            s.push_str("No open incident. Declare one with /incident declare scenario:database severity:sev1 title:\"...\"\n");
        }
        Ok(open) => {
            for i in open {
                let _ = writeln!(
                    s,
                    "Open: {} “{}” ({} {}, {}).",
                    i.id,
                    i.title,
                    i.severity,
                    i.scenario,
                    i.status.as_str()
                );
            }
        }
        Err(e) => {
            let _ = writeln!(s, "Could not list incidents: {e}");
        }
    }
    s.push_str("Type /help for commands, /quit to leave. Others can use drbot exec meanwhile.");
    s
}

/// History holds what was typed during an incident: owner-only.
fn restrict(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Rewrites a history file that an older drbot (or a hand edit) left with secrets in it.
/// Where a console talking to a running serve keeps its history: the data directory when it
/// is ours, else (another OS user, through `[serve] socket_group`) the user's own home, so
/// one engineer's history is never in another's directory.
fn served_history(data_dir: &std::path::Path) -> std::path::PathBuf {
    use nix::unistd::{AccessFlags, access};
    if access(data_dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() {
        return data_dir.join("console_history");
    }
    match std::env::var_os("HOME") {
        Some(home) => std::path::PathBuf::from(home).join(".drbot_console_history"),
        None => data_dir.join("console_history"),
    }
}

fn scrub_history(path: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let clean = crate::redact(&text);
    if clean != text {
        let tmp = path.with_extension("scrubbed");
        if std::fs::write(&tmp, &clean).is_ok() {
            restrict(&tmp);
            let _ = std::fs::rename(&tmp, path);
        }
    }
}
