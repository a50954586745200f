//! The `drbot` binary: a thin layer that turns the command line into one of the entry points
//! of SPEC §3 and hands typed lines to `drbot_commands::Engine`.
//!
//! - `console`: an interactive incident channel in the terminal ([`console`]).
//! - `exec`: one command, its reply printed, the exit status of SPEC §3.
//! - `check`: each configured system, one line each.
//! - `serve`: background work and the control socket ([`serve`], [`control`]); Discord joins here.

mod cli;
mod console;
mod control;
mod discord;
mod local;
mod serve;
mod state;

use std::process::ExitCode;
use std::sync::OnceLock;

use clap::Parser;
use drbot_commands::redact::Secrets;

/// The configured secrets' values, known once the config is loaded.
static SECRETS: OnceLock<Secrets> = OnceLock::new();

/// `text` with every URL password, `password=`, age identity and configured secret removed:
/// for anything drbot itself writes outside the engine (logs, panics, console history).
pub fn redact(text: &str) -> String {
    match SECRETS.get() {
        Some(s) => s.redact(text),
        None => Secrets::default().redact(text),
    }
}

/// Learns the secrets of the loaded config (their values from the environment).
pub fn know_secrets(config: &drbot_commands::Config) {
    let values = config
        .secret_envs()
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .collect::<Vec<_>>();
    let _ = SECRETS.set(Secrets::new(values));
}

/// Standard error with every log line redacted: an error echoed back by a remote service, a
/// connection string in a driver's message, never reach the journal in the clear.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing's formatter hands over one whole event per call.
        let text = redact(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// glibc's allocator gives every thread that allocates an arena of its own and keeps what is
/// freed in it: with the decoder's threads beside the runtime's, a restore's peak RSS was
/// 67–71 MiB, whatever the backup's size. Two arenas, and blocks of 128 KiB or more (the
/// decode's chunks) handed back as they are freed, hold it at 58–60 MiB, at no measured cost
/// in speed. These are environment settings read when the process starts, so drbot starts
/// itself again once with them (same process id, arguments and streams), unless they are
/// set already; should that fail, it goes on as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lean_allocator() {
    use std::os::unix::process::CommandExt;
    const SETTINGS: [(&str, &str); 2] = [
        ("MALLOC_ARENA_MAX", "2"),
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ];
    if SETTINGS.iter().any(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut c = std::process::Command::new(me);
    if let Some(arg0) = args.next() {
        c.arg0(arg0);
    }
    // Returns only if the exec failed.
    let e = c.args(args).envs(SETTINGS).exec();
    tracing::debug!(error = %e, "drbot runs with the allocator's defaults");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lean_allocator() {}

fn main() -> ExitCode {
    lean_allocator();
    let args = cli::Cli::parse();
    // serenity's own spans are at info: formatting each HTTP request's fields cost serve a
    // few percent of its CPU under load (bot/benches/load.rs); its warnings still show.
    let default_level = match args.command {
        cli::Command::Serve => "info,serenity=warn",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic's message may quote a value it choked on: it is shown redacted, once.
    std::panic::set_hook(Box::new(|info| {
        let what = drbot_commands::render::panic_text(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("drbot: internal error{at}: {}", redact(&what));
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // More workers than cores, so Discord acknowledgements do not queue behind a task in
        // blocking work (a store write that waits for a flush leaves its worker first).
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drbot: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::run(args));
    ExitCode::from(code)
}
