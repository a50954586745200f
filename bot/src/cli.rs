//! The command line (clap) and what each subcommand does.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use drbot_commands::check::{CheckState, check_config};

use crate::local::Local;

/// drbot runs the platform's disaster-recovery runbook: from Discord (`serve`), from a
/// terminal (`console`), or one command at a time (`exec`).
#[derive(Debug, Parser)]
#[command(name = "drbot", version, about, long_about = None)]
pub struct Cli {
    /// Config file (TOML). Default: $DRBOT_CONFIG, else built-in defaults.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The entry points of SPEC §3.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to Discord and run the incident channel there.
    Serve,
    /// An interactive incident channel in this terminal.
    Console {
        /// Act as this person from the config ([people.NAME]); must match your OS user
        /// unless [console] trust_as = true.
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
    },
    /// Run one command and print its reply. Exit status: 0 done, 1 failed or refused,
    /// 2 unusable command line, 3 waiting for an approval.
    Exec {
        /// Act as this person from the config ([people.NAME]).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// The command, as typed in Discord: '/incident status'.
        #[arg(value_name = "COMMAND", num_args = 1.., required = true)]
        line: Vec<String>,
    },
    /// Show each configured system's settings, one line each.
    Check,
    /// Print the slash commands as Discord registers them (JSON), from the same table the
    /// console parses.
    SlashCommands,
    /// drbot's own state off the host: export it to the backup bucket, or import it on a new
    /// host into an empty data directory.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

/// `drbot state …`.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Write the whole state (age-encrypted, xz) under [state] prefix in the backup bucket.
    Export,
    /// Fill this host's empty data directory from an export: `latest`, or its key or name.
    Import {
        #[arg(value_name = "EXPORT", default_value = "latest")]
        which: String,
    },
}

/// Runs the chosen entry point; returns the process exit status.
pub async fn run(cli: Cli) -> u8 {
    let env = |k: &str| std::env::var(k).ok();
    let (config, source) = match drbot_commands::Config::load(cli.config.as_deref(), env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drbot: {e}");
            return 2;
        }
    };
    crate::know_secrets(&config);
    match cli.command {
        Command::Check => {
            let mut lines = check_config(&config, &source, &env);
            lines.extend(drbot_commands::check::probe(&config, &env).await);
            for l in &lines {
                println!("{l}");
            }
            u8::from(lines.iter().any(|l| l.state == CheckState::Problem))
        }
        Command::Serve => crate::serve::run(config).await,
        Command::SlashCommands => {
            match serde_json::to_string_pretty(&crate::discord::registration::commands()) {
                Ok(json) => {
                    println!("{json}");
                    0
                }
                Err(e) => {
                    eprintln!("drbot: {e}");
                    1
                }
            }
        }
        Command::State {
            action: StateAction::Export,
        } => {
            let local = match Local::new(config, None) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let request = crate::control::Request {
                as_name: None,
                line: String::new(),
                op: Some(crate::control::OP_STATE_EXPORT.to_string()),
            };
            let (exit, text) =
                match crate::control::send_request(local.socket_dir(), &request).await {
                    Some((exit, text, _)) => (exit, text),
                    None => match local.engine().await {
                        Ok(engine) => crate::state::export_text(&engine).await,
                        Err(e) => (1, e.to_string()),
                    },
                };
            println!("{text}");
            u8::try_from(exit).unwrap_or(1)
        }
        Command::State {
            action: StateAction::Import { which },
        } => {
            let env = |k: &str| std::env::var(k).ok();
            match drbot_commands::state_export::import(&config, &env, &which).await {
                Ok(text) => {
                    println!("{text}");
                    0
                }
                Err(e) => {
                    println!("{e}");
                    u8::try_from(e.outcome().exit_code()).unwrap_or(1)
                }
            }
        }
        Command::Console { as_name } => {
            let local = match Local::new(config, as_name.as_deref()) {
                Ok(l) => l,
                Err(code) => return code,
            };
            crate::console::run(local).await
        }
        Command::Exec { as_name, line } => {
            let local = match Local::new(config, as_name.as_deref()) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let reply = local.run(&line.join(" ")).await;
            println!("{}", reply.full_text());
            u8::try_from(reply.outcome.exit_code()).unwrap_or(1)
        }
    }
}
