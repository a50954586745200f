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

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let default_level = match args.command {
        cli::Command::Serve => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
