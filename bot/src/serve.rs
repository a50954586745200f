//! `drbot serve`: holds the data directory, connects to Discord (when `[discord]` is set),
//! runs the background work (status posts, RTO warnings, nudges, RPO watch) and answers the
//! control socket. Without `[discord]` it serves locally and prints its posts, which is also
//! how it keeps watching the day chat is down.
//!
//! SIGTERM or Ctrl-C: stop taking commands, give running ones time to finish (a restore that
//! cannot finish is cut off and rolls back; its step shows as interrupted at the next start),
//! flush state, remove the socket.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use drbot_commands::identity::{OsUser, local_actor};
use drbot_commands::progress::ProgressSink;
use drbot_commands::{Config, Context, Engine, Place, SystemClock};
use drbot_state::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::control::{Request, Response, socket_path};

/// How often the background work looks at the clock.
const TICK: Duration = Duration::from_secs(60);
/// How often queued notifications are retried.
const DELIVER: Duration = Duration::from_secs(5);
/// Incident headers are looked at this often: at most one edit each per round.
const HEADER_EVERY: Duration = Duration::from_secs(5);
/// How long running commands get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(240);

/// Creates the control socket. Owner-only; with `[serve] socket_group`, the group may connect
/// to it and pass through its directory (not list it), and nothing else drbot keeps there is
/// open to the group.
fn open_socket(config: &Config) -> Result<(UnixListener, std::path::PathBuf), String> {
    let dir = config.socket_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the socket directory {}: {e}", dir.display()))?;
    let path = socket_path(dir);
    // A socket left by a crash: nobody holds the data directory but us, so it is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot create the control socket {}: {e}", path.display()))?;
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
            .map_err(|e| format!("cannot set the mode of {} to {m:o}: {e}", p.display()))
    };
    let Some(group) = &config.serve.socket_group else {
        mode(&path, 0o600)?;
        return Ok((listener, path));
    };
    let gid = match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => g.gid.as_raw(),
        Ok(None) => return Err(format!("[serve] socket_group: there is no group `{group}`")),
        Err(e) => return Err(format!("[serve] socket_group `{group}`: {e}")),
    };
    let chgrp = |p: &std::path::Path| {
        std::os::unix::fs::chown(p, None, Some(gid)).map_err(|e| {
            format!(
                "cannot give {} to group {group} ({e}); the user drbot serve runs as must be a \
                 member of {group} (systemd: SupplementaryGroups={group})",
                p.display()
            )
        })
    };
    chgrp(&path)?;
    mode(&path, 0o660)?;
    chgrp(dir)?;
    mode(dir, 0o710)?;
    if dir == config.data_dir.as_path() {
        // The group passes through the data directory to the socket: what drbot keeps there
        // stays the service user's alone.
        private_below(dir, &path)?;
    }
    Ok((listener, path))
}

/// Takes group and other permissions off everything under `dir` except `keep`.
fn private_below(dir: &std::path::Path, keep: &std::path::Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p == keep {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let m = meta.permissions().mode() & 0o7777;
        if m & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m & 0o700))
                .map_err(|e| format!("cannot make {} private: {e}", p.display()))?;
        }
        if meta.is_dir() {
            private_below(&p, keep)?;
        }
    }
    Ok(())
}

/// Runs until SIGTERM or Ctrl-C; returns the exit status.
pub async fn run(config: Config) -> u8 {
    // What serve creates (state, reports, the socket before its mode is set) is the service
    // user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let config = Arc::new(config);
    let store = match open_store(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("drbot: {e}");
            return 1;
        }
    };
    let engine = Arc::new(Engine::new(config.clone(), store, Arc::new(SystemClock)));
    recover(&engine).await;
    let (listener, path) = match open_socket(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("drbot: {e}");
            return 1;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut gateway = JoinSet::new();
    let discord = match connect_discord(&engine, &config, &stop_rx, &mut gateway).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("drbot: {e}");
            let _ = std::fs::remove_file(&path);
            return 1;
        }
    };
    tracing::info!(socket = %path.display(), "drbot serve is up");
    println!(
        "drbot serve: listening on {} (drbot exec and drbot console use it).",
        path.display()
    );

    let mut tasks = JoinSet::new();
    let names = Arc::new(PeerNames::default());
    let mut posts_out = JoinSet::new();
    let mut scheduled = JoinSet::new();
    let mut scheduled_running: std::collections::HashSet<&'static str> = Default::default();
    // Incident headers in Discord: refreshed beside the loop, one round at a time.
    let mut header_tick = tokio::time::interval(HEADER_EVERY);
    let mut header_job = JoinSet::new();
    let headers = Arc::new(crate::discord::header::Headers::default());
    let mut exports = crate::state::Exporter::new(&config);
    let mut export_jobs = JoinSet::new();
    let mut export_tick = tokio::time::interval(crate::state::EXPORT_CHECK);
    let mut tick = tokio::time::interval(TICK);
    let mut deliver = tokio::time::interval(DELIVER);
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("drbot: cannot watch for SIGTERM: {e}");
            return 1;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                match engine.tick().await {
                    Ok(posts) => send_posts(&engine, &config, &discord, &mut posts_out, posts),
                    Err(e) => tracing::error!(error = %e, "background work failed"),
                }
                // Scheduled work (snapshots, drills) may take long: beside the loop, one round
                // at a time per scenario, so an hour-long drill never holds up a snapshot.
                for name in drbot_commands::scenarios::ALL.iter().map(|s| s.name()) {
                    if scheduled_running.insert(name) {
                        let engine = engine.clone();
                        scheduled.spawn(async move { (name, engine.scheduled_of(name).await) });
                    }
                }
            }
            Some(done) = scheduled.join_next(), if !scheduled.is_empty() => {
                match done {
                    Ok((name, result)) => {
                        scheduled_running.remove(name);
                        match result {
                            Ok(posts) => send_posts(&engine, &config, &discord, &mut posts_out, posts),
                            Err(e) => tracing::error!(scenario = name, error = %e, "scheduled work failed"),
                        }
                    }
                    Err(e) => {
                        // A task that panicked: its scenario is tried again next round.
                        scheduled_running.clear();
                        tracing::error!(error = %e, "scheduled work stopped");
                    }
                }
            }
            _ = header_tick.tick() => {
                if let Some((http, _)) = &discord
                    && header_job.is_empty()
                {
                    let (http, engine, headers) = (http.clone(), engine.clone(), headers.clone());
                    header_job.spawn(async move {
                        crate::discord::header::refresh(&http, &engine, &headers).await;
                    });
                }
            }
            Some(_) = header_job.join_next(), if !header_job.is_empty() => {}
            _ = export_tick.tick() => {
                // Beside the loop: a slow bucket never holds up the socket.
                if let Some(generation) = exports.due(&engine) {
                    let engine = engine.clone();
                    export_jobs.spawn(async move {
                        (generation, drbot_commands::state_export::export(&engine).await)
                    });
                }
            }
            Some(done) = export_jobs.join_next(), if !export_jobs.is_empty() => {
                if let Ok((generation, result)) = done {
                    exports.finished(generation, result);
                }
            }
            _ = deliver.tick() => {
                if let Err(e) = engine.deliver_due().await {
                    tracing::error!(error = %e, "delivering notifications failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (engine, config, names) = (engine.clone(), config.clone(), names.clone());
                    tasks.spawn(async move { handle(&engine, &config, &names, stream).await });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            Some(_) = posts_out.join_next(), if !posts_out.is_empty() => {}
        }
    }
    println!("drbot serve: stopping; no new commands are taken.");
    let _ = stop_tx.send(true);
    drop(listener);
    let _ = std::fs::remove_file(&path);
    drain(&mut tasks, &mut gateway).await;
    if let Err(e) = engine.store().flush().await {
        eprintln!("drbot: could not flush state: {e}");
        return 1;
    }
    // The last word goes off the host too (after any export still running).
    while let Some(done) = export_jobs.join_next().await {
        if let Ok((generation, result)) = done {
            exports.finished(generation, result);
        }
    }
    exports.final_export(&engine).await;
    println!("drbot serve: stopped.");
    0
}

/// Discord's REST client and config, when `[discord]` is set.
type DiscordHandle = (
    Arc<serenity::http::Http>,
    drbot_commands::config::DiscordConfig,
);

/// Connects to Discord when `[discord]` is set, its gateway running in `gateway` until `stop`.
async fn connect_discord(
    engine: &Arc<Engine>,
    config: &Arc<Config>,
    stop: &tokio::sync::watch::Receiver<bool>,
    gateway: &mut JoinSet<()>,
) -> Result<Option<DiscordHandle>, String> {
    let Some(dc) = &config.discord else {
        tracing::warn!(
            "no [discord] in the config: serving the control socket and background work only"
        );
        return Ok(None);
    };
    let token = std::env::var(&dc.token_env)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("[discord] is configured but {} is not set.", dc.token_env))?;
    let d =
        crate::discord::connect(engine.clone(), config.clone(), dc.clone(), token.trim()).await?;
    let handle = (d.http.clone(), dc.clone());
    let stop = stop.clone();
    gateway.spawn(async move {
        if let Err(e) = d.run(stop).await {
            tracing::error!("{e}");
        }
    });
    Ok(Some(handle))
}

/// Opens the state; an exec or a console's watcher may hold it for a moment: waits for it.
async fn open_store(config: &Config) -> Result<Store, drbot_state::StateError> {
    let started = std::time::Instant::now();
    loop {
        match Store::open(&config.data_dir) {
            Ok(s) => return Ok(s),
            Err(drbot_state::StateError::Locked(_))
                if started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a stop left running is marked interrupted (never resumed on its own), and each
/// scenario tidies what it left (a drill's scratch resources): said in the log.
async fn recover(engine: &Engine) {
    match engine.recover_interrupted() {
        Ok(marked) => {
            for m in marked {
                tracing::warn!("{m} (drbot had stopped while it ran)");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not check for interrupted work"),
    }
    for line in engine.recover_scenarios().await {
        tracing::warn!("{line}");
    }
}

/// At a stop: running commands get [`DRAIN`] to finish (then they are cut off, their steps
/// shown interrupted at the next start), the gateway ten seconds to close.
async fn drain(tasks: &mut JoinSet<()>, gateway: &mut JoinSet<()>) {
    if !tasks.is_empty() {
        println!(
            "drbot serve: waiting up to {}s for {} running command(s).",
            DRAIN.as_secs(),
            tasks.len()
        );
        let drained =
            tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
            tracing::warn!("running commands were cut off; their steps will show as interrupted");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while gateway.join_next().await.is_some() {}
    })
    .await;
}

/// A nudge pings the incident's commander (when their Discord id is known); a failed scheduled
/// drill, the commanders.
fn commander_to_ping(
    engine: &Engine,
    config: &Config,
    p: &drbot_commands::watch::Post,
) -> Option<crate::discord::Mention> {
    use crate::discord::Mention;
    if p.kind == drbot_commands::watch::PostKind::DrillFailed {
        // A failed scheduled drill: the commanders' role, else the first commander drbot knows.
        return config
            .discord
            .as_ref()
            .and_then(|d| d.commander_role_id)
            .map(Mention::Role)
            .or_else(|| {
                config
                    .people
                    .values()
                    .filter(|person| person.roles.iter().any(|r| r == "commander"))
                    .find_map(|person| person.discord_id)
                    .map(Mention::User)
            });
    }
    if p.kind != drbot_commands::watch::PostKind::Nudge {
        return None;
    }
    let incident = engine.store().incident(p.incident?).ok()??;
    let commander = incident.roles.get("commander")?;
    config.people.get(commander)?.discord_id.map(Mention::User)
}

/// Progress over the socket.
struct SocketProgress(mpsc::UnboundedSender<Response>);

impl ProgressSink for SocketProgress {
    fn update(&self, line: &str) {
        let _ = self.0.send(Response::Progress {
            line: line.to_string(),
        });
    }
}

/// How long a socket peer's login name is taken from the cache before it is looked up again:
/// a user renamed (or remapped in `[people] unix_user`) is seen within this.
const NAME_FRESH: Duration = Duration::from_secs(60);

/// The login names of the socket's peers, by uid, each kept for [`NAME_FRESH`]. A burst of
/// commands looks each uid up once instead of once per connection (each lookup may read
/// files or ask a directory service, off the async workers).
#[derive(Default)]
struct PeerNames(std::sync::Mutex<std::collections::HashMap<u32, (String, std::time::Instant)>>);

impl PeerNames {
    /// The name looked up for `uid` less than [`NAME_FRESH`] before `now`.
    fn fresh(&self, uid: u32, now: std::time::Instant) -> Option<String> {
        let names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        names
            .get(&uid)
            .filter(|(_, at)| now.saturating_duration_since(*at) < NAME_FRESH)
            .map(|(name, _)| name.clone())
    }

    fn keep(&self, uid: u32, name: &str, at: std::time::Instant) {
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        names.insert(uid, (name.to_string(), at));
    }

    /// `uid`'s login name (`uid<N>` when it has none).
    async fn of(&self, uid: u32) -> String {
        let now = std::time::Instant::now();
        if let Some(name) = self.fresh(uid, now) {
            return name;
        }
        // The passwd lookup may read files or ask a directory service: off the async worker.
        let name = tokio::task::spawn_blocking(move || {
            match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(u)) => u.name,
                _ => format!("uid{uid}"),
            }
        })
        .await
        .unwrap_or_else(|_| format!("uid{uid}"));
        self.keep(uid, &name, now);
        name
    }
}

async fn handle(engine: &Engine, config: &Config, names: &PeerNames, stream: UnixStream) {
    let uid = match stream.peer_cred() {
        Ok(c) => c.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "control socket peer without credentials");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let request: Request = match lines.next_line().await {
        Ok(Some(l)) => match serde_json::from_str(&l) {
            Ok(r) => r,
            Err(_) => return,
        },
        _ => return,
    };
    let name = names.of(uid).await;
    let os_user = OsUser { name, uid };
    let (tx, mut rx) = mpsc::unbounded_channel::<Response>();
    let writer = tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            let Ok(mut body) = serde_json::to_vec(&r) else {
                continue;
            };
            body.push(b'\n');
            if write.write_all(&body).await.is_err() {
                break;
            }
        }
    });
    let response = match local_actor(config, &os_user, request.as_name.as_deref()) {
        Err(e) => Response::Reply {
            exit: e.outcome().exit_code(),
            text: e.to_string(),
            attachments: Vec::new(),
        },
        Ok(_) if request.op.as_deref() == Some(crate::control::OP_STATE_EXPORT) => {
            let (exit, text) = crate::state::export_text(engine).await;
            Response::Reply {
                exit,
                text,
                attachments: Vec::new(),
            }
        }
        Ok(_) if request.op.as_deref() == Some(crate::control::OP_TIMELINE_SINCE) => {
            let after = request.line.trim().parse::<u64>().unwrap_or(0);
            match engine.store().timeline_since(after) {
                Ok(entries) => Response::Reply {
                    exit: 0,
                    text: serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_string()),
                    attachments: Vec::new(),
                },
                Err(e) => Response::Reply {
                    exit: 1,
                    text: e.to_string(),
                    attachments: Vec::new(),
                },
            }
        }
        Ok(_) if request.op.is_some() => Response::Reply {
            exit: 2,
            text: "This drbot serve does not know that operation; is drbot exec newer than it?"
                .to_string(),
            attachments: Vec::new(),
        },
        Ok(actor) => {
            let ctx = Context {
                actor,
                place: Place::Local,
            };
            let reply = engine
                .run_with(&ctx, &request.line, &SocketProgress(tx.clone()))
                .await;
            Response::Reply {
                exit: reply.outcome.exit_code(),
                text: reply.text,
                // Text files only: a chart stays in the data directory (the reply names it).
                attachments: reply
                    .attachments
                    .into_iter()
                    .filter(|a| a.data.is_empty())
                    .map(|a| (a.name, a.text))
                    .collect(),
            }
        }
    };
    let _ = tx.send(response);
    drop(tx);
    let _ = writer.await;
}

/// Delivers the background work's posts: to Discord in order beside the loop (a Discord that
/// does not answer holds up its posts, 30 s each at most, never the socket), else printed.
fn send_posts(
    engine: &Engine,
    config: &Config,
    discord: &Option<(
        Arc<serenity::http::Http>,
        drbot_commands::config::DiscordConfig,
    )>,
    posts_out: &mut JoinSet<()>,
    posts: Vec<drbot_commands::watch::Post>,
) {
    match discord {
        Some((http, dc)) => {
            let posts: Vec<_> = posts
                .into_iter()
                .map(|p| (commander_to_ping(engine, config, &p), p))
                .collect();
            let (http, dc) = (http.clone(), dc.clone());
            posts_out.spawn(async move {
                for (mention, p) in posts {
                    crate::discord::post(&http, &dc, &p.place, &p.text, mention).await;
                }
            });
        }
        None => {
            for p in posts {
                println!("[{}] {}", p.place, p.text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_name_is_kept_for_a_minute_then_looked_up_again() {
        let names = PeerNames::default();
        let t0 = std::time::Instant::now();
        assert_eq!(names.fresh(1000, t0), None);
        names.keep(1000, "alice", t0);
        let later = |s| t0 + Duration::from_secs(s);
        assert_eq!(names.fresh(1000, later(59)).as_deref(), Some("alice"));
        assert_eq!(names.fresh(1000, t0 + NAME_FRESH), None);
        assert_eq!(names.fresh(1001, t0), None);
    }

    #[tokio::test]
    async fn a_peers_name_comes_from_the_system_and_is_kept() {
        let names = PeerNames::default();
        let uid = nix::unistd::getuid();
        let system = nix::unistd::User::from_uid(uid)
            .unwrap()
            .map_or(format!("uid{uid}"), |u| u.name);
        assert_eq!(names.of(uid.as_raw()).await, system);
        let now = std::time::Instant::now();
        assert_eq!(names.fresh(uid.as_raw(), now), Some(system));
    }
}
