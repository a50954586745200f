//! The local place (console and exec): the OS user as identity, the store opened directly.

use std::sync::Arc;

use drbot_commands::identity::local_actor;
use drbot_commands::progress::ProgressSink;
use drbot_commands::{Config, Context, Engine, Place, Reply, SystemClock};
use drbot_state::Store;

/// Progress lines on standard error, so standard output holds only the reply.
struct StderrProgress;

impl ProgressSink for StderrProgress {
    fn update(&self, line: &str) {
        eprintln!("… {line}");
    }
}

/// An engine bound to the local user.
pub struct Local {
    pub engine: Engine,
    pub ctx: Context,
}

/// The operating-system user running drbot.
pub fn os_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => std::env::var("USER").unwrap_or_else(|_| format!("uid{uid}")),
    }
}

impl Local {
    /// Proves who is acting, then opens the data directory. Errors are printed; the exit status
    /// is returned.
    pub fn open(config: Config, as_name: Option<&str>) -> Result<Local, u8> {
        let actor = match local_actor(&config, &os_user(), as_name) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("drbot: {e}");
                return Err(u8::try_from(e.outcome().exit_code()).unwrap_or(1));
            }
        };
        let store = match Store::open(&config.data_dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("drbot: {e}");
                return Err(1);
            }
        };
        let engine = Engine::new(Arc::new(config), store, Arc::new(SystemClock));
        // A previous drbot may have died mid-step: say so, and never resume it silently.
        match engine.recover_interrupted() {
            Ok(marked) => {
                for m in marked {
                    eprintln!("drbot: {m} (drbot had stopped while it ran).");
                }
            }
            Err(e) => eprintln!("drbot: could not check for interrupted work: {e}"),
        }
        Ok(Local {
            engine,
            ctx: Context {
                actor,
                place: Place::Local,
            },
        })
    }

    /// Runs one line, printing progress of long work to standard error.
    pub async fn run(&self, line: &str) -> Reply {
        self.engine.run_with(&self.ctx, line, &StderrProgress).await
    }

    /// Flushes state before the process ends.
    pub fn close(&self) {
        if let Err(e) = self.engine.store().flush_blocking() {
            eprintln!("drbot: {e}");
        }
    }
}
