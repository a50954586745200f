//! The local place (console and exec): the OS user as identity, the store opened directly.
//!
//! The data directory is opened for each command and let go after it, so a second person can
//! use `drbot exec` (to approve a request, say) while a console sits at its prompt. Work in
//! progress keeps it open; another process then waits briefly and gets a clear error.

use std::sync::Arc;
use std::time::Duration;

use drbot_commands::identity::{OsUser, local_actor};
use drbot_commands::progress::ProgressSink;
use drbot_commands::{Config, Context, Engine, Outcome, Place, Reply, SystemClock};
use drbot_state::{StateError, Store};

/// Progress lines on standard error, so standard output holds only the reply.
struct StderrProgress;

impl ProgressSink for StderrProgress {
    fn update(&self, line: &str) {
        eprintln!("… {line}");
    }
}

/// The local user, proven, with the config.
#[derive(Clone)]
pub struct Local {
    config: Arc<Config>,
    as_name: Option<String>,
    pub ctx: Context,
}

/// The operating-system user running drbot.
pub fn os_user() -> OsUser {
    let uid = nix::unistd::getuid();
    let name = match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => std::env::var("USER").unwrap_or_else(|_| format!("uid{uid}")),
    };
    OsUser {
        name,
        uid: uid.as_raw(),
    }
}

/// How long to wait for another drbot process to let go of the data directory.
const LOCK_WAIT: Duration = Duration::from_secs(3);

impl Local {
    /// Proves who is acting. Errors are printed; the exit status is returned.
    pub fn new(config: Config, as_name: Option<&str>) -> Result<Local, u8> {
        match local_actor(&config, &os_user(), as_name) {
            Ok(actor) => Ok(Local {
                config: Arc::new(config),
                as_name: as_name.map(str::to_string),
                ctx: Context {
                    actor,
                    place: Place::Local,
                },
            }),
            Err(e) => {
                eprintln!("drbot: {e}");
                Err(u8::try_from(e.outcome().exit_code()).unwrap_or(1))
            }
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// Where `drbot serve`'s control socket is.
    pub fn socket_dir(&self) -> &std::path::Path {
        self.config.socket_dir()
    }

    /// True when a `drbot serve` answers on the data directory's control socket.
    pub async fn served(&self) -> bool {
        tokio::net::UnixStream::connect(crate::control::socket_path(self.config.socket_dir()))
            .await
            .is_ok()
    }

    /// Opens the data directory (waiting a moment if another drbot holds it) and an engine on
    /// it; marks work a dead process left running as interrupted.
    pub async fn engine(&self) -> Result<Engine, StateError> {
        let started = std::time::Instant::now();
        let store = loop {
            match Store::open(&self.config.data_dir) {
                Ok(s) => break s,
                Err(StateError::Locked(_)) if started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let engine = Engine::new(self.config.clone(), store, Arc::new(SystemClock));
        // A previous drbot may have died mid-step: say so, and never resume it silently.
        match engine.recover_interrupted() {
            Ok(marked) => {
                for m in marked {
                    eprintln!("drbot: {m} (drbot had stopped while it ran).");
                }
            }
            Err(e) => eprintln!("drbot: could not check for interrupted work: {e}"),
        }
        // A drill that was running has its scratch resources dropped.
        for line in engine.recover_scenarios().await {
            eprintln!("drbot: {line}");
        }
        Ok(engine)
    }

    /// The timeline entries written after `after` (every incident's), from a running `drbot
    /// serve` or the data directory itself; `None` when the state cannot be read just now
    /// (another drbot holds it for a moment).
    pub async fn timeline_since(&self, after: u64) -> Option<Vec<drbot_state::TimelineEntry>> {
        let request = crate::control::Request {
            as_name: self.as_name.clone(),
            line: after.to_string(),
            op: Some(crate::control::OP_TIMELINE_SINCE.to_string()),
        };
        if let Some((exit, text, _)) =
            crate::control::send_request(self.config.socket_dir(), &request).await
        {
            return (exit == 0)
                .then(|| serde_json::from_str(&text).ok())
                .flatten();
        }
        // Only an existing state is read: watching never creates a data directory.
        if !self.config.data_dir.exists() {
            return Some(Vec::new());
        }
        let store = Store::open(&self.config.data_dir).ok()?;
        store.timeline_since(after).ok()
    }

    /// Runs one line, printing progress of long work to standard error: through a running
    /// `drbot serve` when there is one, else on the data directory itself.
    pub async fn run(&self, line: &str) -> Reply {
        if let Some((exit, text, attachments)) =
            crate::control::send(self.config.socket_dir(), self.as_name.as_deref(), line).await
        {
            let outcome = match exit {
                0 => Outcome::Done,
                2 => Outcome::Usage,
                3 => Outcome::AwaitingApproval(
                    text.lines()
                        .find_map(|l| l.strip_prefix("approval request "))
                        .unwrap_or_default()
                        .to_string(),
                ),
                _ => Outcome::Failed,
            };
            let mut reply = Reply::new(outcome, text);
            for (name, body) in attachments {
                reply = reply.with_attachment(name, body);
            }
            return reply;
        }
        let engine = match self.engine().await {
            Ok(e) => e,
            Err(e) => {
                return Reply::new(Outcome::Failed, format!("{e}. Nothing was changed."));
            }
        };
        let reply = engine.run_with(&self.ctx, line, &StderrProgress).await;
        if let Err(e) = engine.store().flush_blocking() {
            eprintln!("drbot: {e}");
        }
        reply
    }
}
