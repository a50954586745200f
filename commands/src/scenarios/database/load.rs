//! Loading a decoded backup into a target, natively over tokio-postgres, in one transaction
//! (COPY blocks through `copy_in`). Custom-format archives arrive as the SQL pg_restore makes
//! of them, so both formats follow the same rules ([`super::script::Policy`]):
//!
//! - The transaction commits only after the reader said the backup was complete
//!   ([`Msg::Complete`]); any other end rolls it back.
//! - pg_dump's `--clean` DROPs each run in a savepoint; one that fails is tried again when the
//!   prelude is over, and only a failure that remains then (the object still there) fails the
//!   restore. That is how partitioned tables with keys restore over themselves.
//! - Lock waits are bounded by `[restore] lock_wait_secs`; the session holding the lock is named.
//! - Sequence values set before a failure are put back (setval is not transactional).
//! - A setting the server does not know (one a newer pg_dump writes) is skipped and named, as
//!   psql skips it; every other failing statement fails the restore.
//! - Before COMMIT, the objects of the restored schemas that the backup does not hold (created
//!   since) are listed, so the operator knows they are still there.
//! - Error text never carries row data.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyInSink};

use super::pipeline::{Counters, Format, Layer, Msg};
use super::script::{MetaStep, Needs, Policy, Step};
use super::splitter::{Piece, Statement};
use super::sql::KeySplit;
use crate::pg::{Target, pg_error};

/// How a restore behaves beyond what the dump says.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The longest wait for another session's lock.
    pub lock_wait: Duration,
    /// Create the roles the dump needs and the target lacks (NOLOGIN, inside the transaction).
    pub create_missing_roles: bool,
    /// The session's `maintenance_work_mem` in MiB, for the index builds after the data.
    pub maintenance_work_mem_mb: u64,
    /// Sessions loading each table's rows side by side (a staged restore's load into a
    /// database that is not live). Up to 1: everything in one session and one transaction.
    /// More: what comes before the data commits first, then each COPY's rows are dealt out
    /// to that many sessions, each committing its share.
    pub parallel: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            lock_wait: Duration::from_secs(30),
            create_missing_roles: false,
            maintenance_work_mem_mb: 256,
            parallel: 1,
        }
    }
}

/// What a finished load found.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Encryption and compression layers, outermost first.
    pub layers: Vec<Layer>,
    /// Plain SQL or custom format.
    pub format: Format,
    /// `--clean` DROPs that failed at first and were moot once the prelude had run.
    pub moot_drops: u64,
    /// Roles drbot created for the dump (`create_missing_roles`).
    pub roles_created: Vec<String>,
    /// Objects of the restored schemas that the backup does not hold (`schema.name (kind)`).
    pub created_since: Vec<String>,
    /// Settings the target's server does not know, skipped as psql would (`name (line N)`).
    pub skipped_settings: Vec<String>,
    /// The sessions the rows were loaded by (more than one: `LoadOptions::parallel`).
    pub sessions: usize,
    /// Index builds that ran in those sessions, side by side.
    pub parallel_builds: u64,
}

/// A session holding a lock the restore waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// Its backend pid.
    pub pid: i32,
    /// `application_name`.
    pub application: String,
    /// The user it connected as.
    pub user: String,
    /// Its state (`active`, `idle in transaction`).
    pub state: String,
    /// The first words of what it runs (or ran last).
    pub query: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (application {}, user {}, {}",
            self.pid,
            if self.application.is_empty() {
                "(none)"
            } else {
                &self.application
            },
            self.user,
            self.state
        )?;
        if !self.query.is_empty() {
            write!(f, ": `{}`", self.query)?;
        }
        f.write_str(")")
    }
}

/// SQL that lists the sessions blocking a backend, with what they run.
const BLOCKERS_SQL: &str = "SELECT pid, coalesce(application_name, ''), coalesce(usename::text, ''), \
     coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity \
     WHERE pid = ANY (pg_blocking_pids($1)) ORDER BY pid";

/// Reads session rows: pid, application, user, state, query.
pub(crate) fn sessions(rows: &[tokio_postgres::Row]) -> Vec<Blocker> {
    rows.iter()
        .map(|r| Blocker {
            pid: r.get(0),
            application: r.get(1),
            user: r.get(2),
            state: r.get(3),
            query: crate::render::words_before_data(&r.get::<_, String>(4), 6, 60),
        })
        .collect()
}

/// Watches the restore's session from a second connection: whom it waits for, if anyone.
struct Monitor {
    last: Arc<Mutex<Option<Blocker>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    async fn start(target: &Target, pid: i32, counters: Arc<Counters>) -> Option<Monitor> {
        let client = match target.connect().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no second connection to watch the restore's lock waits");
                return None;
            }
        };
        let last = Arc::new(Mutex::new(None));
        let seen = last.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Ok(rows) = client.query(BLOCKERS_SQL, &[&pid]).await else {
                    continue;
                };
                let now = sessions(&rows);
                let line = match now.first() {
                    Some(b) => {
                        if let Ok(mut g) = seen.lock() {
                            *g = Some(b.clone());
                        }
                        format!("waiting for a lock held by {b}")
                    }
                    None => String::new(),
                };
                counters.set_waiting(&line);
            }
        });
        Some(Monitor { last, task })
    }

    fn last(&self) -> Option<Blocker> {
        self.last.lock().ok().and_then(|g| g.clone())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A sequence's value before the restore touched it.
#[derive(Clone, Debug)]
struct SavedSequence {
    oid: u32,
    name: String,
    /// `None`: never called (nextval gives the start value).
    last_value: Option<i64>,
    start: i64,
}

/// Why a restore's load stopped (and was rolled back): each message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The backup could not be read to its end, or its SQL is malformed.
    #[error("{0}")]
    Backup(String),
    /// A statement the restore's rules refuse (it would end the transaction).
    #[error("{0}")]
    Refused(String),
    /// A statement or COPY of the backup failed in the target.
    #[error("{0}")]
    Statement(String),
    /// Another session held a lock past `[restore] lock_wait_secs`.
    #[error("{0}")]
    LockTimeout(String),
    /// The target's session failed around the restore (begin, roles, commit).
    #[error("{0}")]
    Session(String),
}

impl LoadError {
    /// A failed statement: a lock wait that ran out, or another failure.
    fn of(e: &tokio_postgres::Error, text: String) -> LoadError {
        if is_lock_timeout(e) {
            LoadError::LockTimeout(text)
        } else {
            LoadError::Statement(text)
        }
    }

    /// The same error with its text changed.
    fn map(self, f: impl FnOnce(String) -> String) -> LoadError {
        match self {
            LoadError::Backup(m) => LoadError::Backup(f(m)),
            LoadError::Refused(m) => LoadError::Refused(f(m)),
            LoadError::Statement(m) => LoadError::Statement(f(m)),
            LoadError::LockTimeout(m) => LoadError::LockTimeout(f(m)),
            LoadError::Session(m) => LoadError::Session(f(m)),
        }
    }
}

/// Loads everything `rx` yields into the target. On error the transaction is rolled back and
/// the message says which byte or statement failed.
pub async fn load(
    client: &Client,
    target: &Target,
    mut rx: mpsc::Receiver<Msg>,
    counters: &Arc<Counters>,
    options: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let (layers, format) = match rx.recv().await {
        Some(Msg::Found(l, f)) => (l, f),
        Some(Msg::Failed(e)) => return Err(LoadError::Backup(e)),
        Some(_) => {
            return Err(LoadError::Backup(
                "the backup reader sent data before saying what it holds".into(),
            ));
        }
        None => return Err(LoadError::Backup(ended_early(counters))),
    };
    // Before the transaction, so a server that refuses the value (above its limit) costs a
    // warning, not the restore: index builds then use the server's own setting.
    if let Err(e) = client
        .batch_execute(&format!(
            "SET maintenance_work_mem = '{}MB'",
            options.maintenance_work_mem_mb
        ))
        .await
    {
        tracing::warn!(error = %pg_error(&e), "could not raise maintenance_work_mem for the restore");
    }
    client.batch_execute("BEGIN").await.map_err(|e| {
        LoadError::Session(format!("could not start the transaction: {}", pg_error(&e)))
    })?;
    let pid: i32 = match client.query_one("SELECT pg_backend_pid()", &[]).await {
        Ok(r) => r.get(0),
        Err(e) => {
            return Err(LoadError::Session(format!(
                "could not start the restore: {}",
                pg_error(&e)
            )));
        }
    };
    let monitor = Monitor::start(target, pid, counters.clone()).await;
    let database = target
        .pg_config()
        .ok()
        .and_then(|(c, _)| c.get_dbname().map(str::to_string));
    let mut run = Run {
        client,
        counters,
        options,
        policy: Policy::new(database),
        deferred: Vec::new(),
        moot: 0,
        known_roles: BTreeSet::new(),
        roles_created: Vec::new(),
        sequences: HashMap::new(),
        copy: None,
        known_settings: HashSet::new(),
        skipped_settings: Vec::new(),
        parallel: (options.parallel > 1).then(|| Parallel {
            target: target.clone(),
            n: options.parallel,
            workers: Vec::new(),
            copy: None,
            committed: false,
            builds: Vec::new(),
            queue: None,
            built: 0,
        }),
    };
    let result = async {
        run.set_lock_timeout().await?;
        run.read_settings().await?;
        run.pieces(&mut rx).await?;
        run.created_since().await
    }
    .await;
    let result = match result {
        Ok(created_since) => match client.batch_execute("COMMIT").await {
            Ok(()) => Ok(created_since),
            Err(e) => Err(LoadError::Session(format!(
                "the final COMMIT failed: {}",
                pg_error(&e)
            ))),
        },
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(created_since) => Ok(created_since),
        Err(e) => {
            let e = match e {
                LoadError::LockTimeout(m) => LoadError::LockTimeout(lock_message(
                    &m,
                    monitor.as_ref().and_then(Monitor::last),
                    options,
                )),
                other => other,
            };
            // A COPY that was going on is aborted first (dropping its sink sends CopyFail):
            // while it is open the server waits for its data, and the ROLLBACK behind it would
            // wait for ever.
            run.copy = None;
            if let Some(p) = run.parallel.as_mut() {
                p.abort();
            }
            // Best effort: if the connection is gone the server has rolled back already.
            let _ = client.batch_execute("ROLLBACK").await;
            let note = run.put_back_sequences().await;
            Err(e.map(|m| format!("{m}{note}")))
        }
    };
    counters.set_waiting("");
    drop(monitor);
    let created_since = result?;
    Ok(Loaded {
        layers,
        format,
        moot_drops: run.moot,
        roles_created: run.roles_created,
        created_since,
        skipped_settings: run.skipped_settings,
        sessions: run.parallel.as_ref().map_or(1, |p| p.workers.len().max(1)),
        parallel_builds: run.parallel.as_ref().map_or(0, |p| p.built),
    })
}

/// The reader stopped without a last word.
fn ended_early(c: &Counters) -> String {
    format!(
        "the backup reader stopped without saying the backup was complete (after {} bytes of SQL, {} bytes downloaded)",
        Counters::get(&c.sql_bytes),
        Counters::get(&c.downloaded)
    )
}

/// A lock wait that ran out, with the session that held the lock.
fn lock_message(e: &str, blocker: Option<Blocker>, options: &LoadOptions) -> String {
    let who = match blocker {
        Some(b) => format!("another session holds a lock it needs: {b}"),
        None => "another session holds a lock it needs".to_string(),
    };
    format!(
        "{e}. The restore waited {}s (the [restore] lock_wait_secs bound): {who}. Stop the API and web applications first (runbook Scenario 1 Step 2, then /step done step:stop-apps) or end that session, and ask again",
        options.lock_wait.as_secs()
    )
}

/// A COPY in progress: its sink, statement and table.
type OpenCopy = (Pin<Box<CopyInSink<Bytes>>>, Statement, String);

/// The state of one load.
struct Run<'a> {
    client: &'a Client,
    counters: &'a Counters,
    options: &'a LoadOptions,
    policy: Policy,
    /// `--clean` DROPs that failed, to try again once the prelude is over.
    deferred: Vec<(Statement, String)>,
    moot: u64,
    known_roles: BTreeSet<String>,
    roles_created: Vec<String>,
    sequences: HashMap<u32, SavedSequence>,
    copy: Option<OpenCopy>,
    /// The settings the target's server knows.
    known_settings: HashSet<String>,
    skipped_settings: Vec<String>,
    /// Parallel sessions for the rows, when the options ask for more than one.
    parallel: Option<Parallel>,
}

/// Sessions beside the main one that load rows (`LoadOptions::parallel`).
struct Parallel {
    target: Target,
    n: usize,
    workers: Vec<mpsc::Sender<Job>>,
    copy: Option<ParCopy>,
    /// The main session's work so far is committed (visible to the other sessions).
    committed: bool,
    /// Index builds handed out and not yet settled: the statement, and its outcome to come.
    builds: Vec<(Statement, tokio::sync::oneshot::Receiver<Built>)>,
    /// Index builds waiting for a session: whichever is free takes the next one.
    queue: Option<mpsc::Sender<Job>>,
    /// How many index builds were handed out.
    built: u64,
}

/// Work for a parallel session: one share of a COPY's rows, or an index build.
enum Job {
    Copy {
        sql: String,
        data: mpsc::Receiver<Bytes>,
        done: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    Build {
        sql: String,
        split: Option<KeySplit>,
        done: tokio::sync::oneshot::Sender<Built>,
    },
}

/// An index build's outcome: for a key built by its index alone (its [`KeySplit`]), the
/// statement that makes the constraint from that index, run once the builds are settled.
type Built = Result<Option<String>, String>;

/// A COPY whose rows are being dealt out.
struct ParCopy {
    statement: Statement,
    table: String,
    shares: Vec<Option<mpsc::Sender<Bytes>>>,
    dones: Vec<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    next: usize,
    buf: bytes::BytesMut,
}

/// Rows are dealt out in shares of about this many bytes (whole rows: COPY's text format
/// writes one row a line, its newlines escaped).
const SHARE: usize = 512 * 1024;

impl Parallel {
    /// Opens the sessions, set as the main one is (encoding, row security, lock wait).
    async fn open(&mut self, main: &Client, options: &LoadOptions) -> Result<(), LoadError> {
        if !self.workers.is_empty() {
            return Ok(());
        }
        let row = main
            .query_one(
                "SELECT current_setting('client_encoding'), current_setting('row_security')",
                &[],
            )
            .await
            .map_err(|e| {
                LoadError::Session(format!(
                    "could not read the session's settings: {}",
                    pg_error(&e)
                ))
            })?;
        let (encoding, row_security): (String, String) = (row.get(0), row.get(1));
        let (queue, waiting) = mpsc::channel(self.n);
        let builds = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..self.n {
            let client = self.target.connect().await.map_err(|e| {
                LoadError::Session(format!("could not open a parallel session: {e}"))
            })?;
            client
                .batch_execute(&format!(
                    // No lock timeout: only drbot's sessions are in a database being staged,
                    // and two builds on one table wait for each other (each statement locks
                    // one table: they cannot deadlock).
                    "SET client_encoding = '{}'; SET row_security = {}; SET lock_timeout = 0; \
                     SET synchronous_commit = off; SET maintenance_work_mem = '{}MB'",
                    encoding.replace('\'', ""),
                    if row_security == "off" { "off" } else { "on" },
                    options.maintenance_work_mem_mb
                ))
                .await
                .map_err(|e| {
                    LoadError::Session(format!(
                        "could not set up a parallel session: {}",
                        pg_error(&e)
                    ))
                })?;
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(work(client, rx, builds.clone()));
            self.workers.push(tx);
        }
        self.queue = Some(queue);
        Ok(())
    }

    /// Starts a COPY in every session.
    async fn start(&mut self, statement: Statement, table: String) -> Result<(), LoadError> {
        let mut shares = Vec::new();
        let mut dones = Vec::new();
        for w in &self.workers {
            let (tx, rx) = mpsc::channel(2);
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            w.send(Job::Copy {
                sql: statement.sql.clone(),
                data: rx,
                done: done_tx,
            })
            .await
            .map_err(|_| LoadError::Session("a parallel session ended".to_string()))?;
            shares.push(Some(tx));
            dones.push(done_rx);
        }
        self.copy = Some(ParCopy {
            statement,
            table,
            shares,
            dones,
            next: 0,
            buf: bytes::BytesMut::new(),
        });
        Ok(())
    }

    /// Rows for the open COPY: dealt out in whole-row shares.
    async fn data(&mut self, data: &[u8]) -> Result<(), LoadError> {
        let Some(c) = self.copy.as_mut() else {
            return Err(LoadError::Backup(
                "COPY data arrived outside a COPY block".to_string(),
            ));
        };
        c.buf.extend_from_slice(data);
        if c.buf.len() >= SHARE
            && let Some(end) = c.buf.iter().rposition(|b| *b == b'\n')
        {
            let share = c.buf.split_to(end + 1).freeze();
            c.deal(share).await?;
        }
        Ok(())
    }

    /// The COPY's end: the rest dealt out, every session's share committed.
    async fn finish(&mut self) -> Result<(), LoadError> {
        let Some(mut c) = self.copy.take() else {
            return Err(LoadError::Backup(
                "a COPY block ended that never began".to_string(),
            ));
        };
        if !c.buf.is_empty() {
            let rest = std::mem::take(&mut c.buf).freeze();
            c.deal(rest).await?;
        }
        c.shares.clear();
        let mut failed = None;
        for done in c.dones.drain(..) {
            let r = done
                .await
                .unwrap_or_else(|_| Err("its session ended".to_string()));
            if let Err(e) = r {
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(c.failed(&e)),
            None => Ok(()),
        }
    }

    /// Hands an index build to the first session free; it runs beside the others.
    async fn build(&mut self, statement: Statement) -> Result<(), LoadError> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let Some(w) = self.queue.as_ref() else {
            return Err(LoadError::Session(
                "no parallel session is open".to_string(),
            ));
        };
        w.send(Job::Build {
            sql: statement.sql.clone(),
            split: statement.class.key_split.clone(),
            done: done_tx,
        })
        .await
        .map_err(|_| LoadError::Session("a parallel session ended".to_string()))?;
        self.builds.push((statement, done_rx));
        self.built += 1;
        Ok(())
    }

    /// Waits for every index build handed out (what comes next may depend on them), then
    /// makes the constraints of keys built by their index alone, in the main session (which
    /// then holds their tables until it commits: it commits before it hands out more).
    async fn settle(&mut self, main: &Client) -> Result<(), LoadError> {
        let mut failed = None;
        let mut constraints = Vec::new();
        for (statement, done) in self.builds.drain(..) {
            let r = done
                .await
                .unwrap_or_else(|_| Err("its session ended".to_string()));
            match r {
                Ok(Some(sql)) => constraints.push((statement, sql)),
                Ok(None) => {}
                Err(e) => {
                    failed.get_or_insert(LoadError::Statement(format!(
                        "the statement at line {} (byte {} of the SQL) failed in a parallel session: `{}`: {e}",
                        statement.line,
                        statement.offset,
                        statement.head()
                    )));
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        for (statement, sql) in &constraints {
            main.batch_execute(sql)
                .await
                .map_err(|e| statement_error(statement, &e))?;
            self.committed = false;
        }
        Ok(())
    }

    /// Stops every session's work (their database is dropped after a failed staged load).
    fn abort(&mut self) {
        self.copy = None;
        self.builds.clear();
        self.workers.clear();
        self.queue = None;
    }
}

impl ParCopy {
    async fn deal(&mut self, share: Bytes) -> Result<(), LoadError> {
        let n = self.shares.len();
        let i = self.next % n;
        self.next += 1;
        let sent = match &self.shares[i] {
            Some(tx) => tx.send(share).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // That session stopped: its reason.
        self.shares[i] = None;
        let why = match (&mut self.dones[i]).await {
            Ok(Err(e)) => e,
            _ => "its session ended".to_string(),
        };
        Err(self.failed(&why))
    }

    fn failed(&self, why: &str) -> LoadError {
        LoadError::Statement(format!(
            "loading {} (COPY at line {}, its rows shared between parallel sessions) failed: {why}",
            self.table, self.statement.line
        ))
    }
}

/// A parallel session: runs each share it is given as its own COPY, committed, and takes
/// index builds from the queue the sessions share whenever it is free (handed out in turn,
/// a table's small build could hold a big one behind it while another session sat idle).
async fn work(
    client: Client,
    mut jobs: mpsc::Receiver<Job>,
    builds: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    let mut queue_open = true;
    loop {
        let job = tokio::select! {
            j = jobs.recv() => match j {
                Some(j) => j,
                None => break,
            },
            j = async { builds.lock().await.recv().await }, if queue_open => match j {
                Some(j) => j,
                None => {
                    queue_open = false;
                    continue;
                }
            },
        };
        match job {
            Job::Copy {
                sql,
                mut data,
                done,
            } => {
                let r = async {
                    let sink = client
                        .copy_in::<_, Bytes>(sql.as_str())
                        .await
                        .map_err(|e| safe_pg_error(&e))?;
                    let mut sink = Box::pin(sink);
                    while let Some(b) = data.recv().await {
                        sink.send(b).await.map_err(|e| safe_pg_error(&e))?;
                    }
                    sink.as_mut()
                        .finish()
                        .await
                        .map_err(|e| safe_pg_error(&e))?;
                    Ok::<_, String>(())
                }
                .await;
                let _ = done.send(r);
            }
            Job::Build { sql, split, done } => {
                let _ = done.send(build(&client, &sql, split).await);
            }
        }
    }
}

/// Runs an index build; a key with a [`KeySplit`] on an ordinary table is built by its index
/// alone, and the statement that makes its constraint is returned.
async fn build(client: &Client, sql: &str, split: Option<KeySplit>) -> Built {
    if let Some(split) = split {
        let ordinary = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_class \
                 WHERE oid = $1::text::regclass AND relkind = 'r' AND NOT relispartition",
                &[&split.table],
            )
            .await
            .map_err(|e| safe_pg_error(&e))?
            .is_some();
        if ordinary {
            client
                .batch_execute(&split.index)
                .await
                .map_err(|e| safe_pg_error(&e))?;
            return Ok(Some(split.constraint));
        }
    }
    client
        .batch_execute(sql)
        .await
        .map_err(|e| safe_pg_error(&e))?;
    Ok(None)
}

/// SQLSTATEs that say an object is not there (any more).
const GONE: &[&str] = &["42704", "42P01", "42883", "3F000", "42P06"];

impl Run<'_> {
    async fn set_lock_timeout(&self) -> Result<(), LoadError> {
        let ms = self.options.lock_wait.as_millis().max(1);
        self.client
            .batch_execute(&format!("SET lock_timeout = {ms}"))
            .await
            .map_err(|e| {
                LoadError::Session(format!("could not bound lock waits: {}", pg_error(&e)))
            })
    }

    async fn read_settings(&mut self) -> Result<(), LoadError> {
        let rows = self
            .client
            .query("SELECT name::text FROM pg_catalog.pg_settings", &[])
            .await
            .map_err(|e| {
                LoadError::Session(format!(
                    "could not read the server's settings: {}",
                    pg_error(&e)
                ))
            })?;
        self.known_settings = rows.iter().map(|r| r.get(0)).collect();
        Ok(())
    }

    /// A setting the server does not know (a newer pg_dump's, like `transaction_timeout` on
    /// PostgreSQL 15) is tried in a savepoint and skipped when the server says it is
    /// unrecognized (42704), as psql would skip it; any other failure fails the restore.
    async fn setting(&mut self, name: &str, s: &Statement) -> Result<(), LoadError> {
        if name.contains('.') || self.known_settings.contains(name) {
            return self.exec(s).await;
        }
        self.savepoint(s).await?;
        match self.client.batch_execute(&s.sql).await {
            Ok(()) => {
                Counters::add(&self.counters.statements, 1);
                self.release(s).await
            }
            Err(e) if e.code().is_some_and(|c| c.code() == "42704") => {
                self.rollback_to(s).await?;
                tracing::info!(
                    line = s.line,
                    setting = name,
                    "skipped a setting the server does not know"
                );
                self.skipped_settings
                    .push(format!("{name} (line {})", s.line));
                Ok(())
            }
            Err(e) => Err(statement_error(s, &e)),
        }
    }

    async fn pieces(&mut self, rx: &mut mpsc::Receiver<Msg>) -> Result<(), LoadError> {
        loop {
            let pieces = match rx.recv().await {
                Some(Msg::Pieces(p)) => p,
                Some(Msg::Complete) => break,
                Some(Msg::Spooled(_)) => continue,
                Some(Msg::Failed(e)) => return Err(LoadError::Backup(e)),
                Some(Msg::Found(..)) => {
                    return Err(LoadError::Backup(
                        "the backup changed format mid-way".into(),
                    ));
                }
                None => return Err(LoadError::Backup(ended_early(self.counters))),
            };
            for piece in pieces {
                self.piece(piece).await?;
            }
        }
        if let Some(c) = self.parallel.as_ref().and_then(|p| p.copy.as_ref()) {
            return Err(LoadError::Backup(format!(
                "the backup ended inside the COPY into {} begun at line {}",
                c.table, c.statement.line
            )));
        }
        if let Some((_, statement, table)) = &self.copy {
            return Err(LoadError::Backup(format!(
                "the backup ended inside the COPY into {table} begun at line {}",
                statement.line
            )));
        }
        if let Some(p) = self.parallel.as_mut() {
            p.settle(self.client).await?;
        }
        self.policy
            .finish()
            .map_err(|r| LoadError::Refused(r.to_string()))?;
        self.retry_deferred().await
    }

    async fn piece(&mut self, piece: Piece) -> Result<(), LoadError> {
        match piece {
            Piece::Statement(s) => self.statement(s).await,
            Piece::CopyStart { statement, table } => {
                self.policy
                    .statement(&statement)
                    .map_err(|r| LoadError::Refused(r.to_string()))?;
                self.retry_deferred().await?;
                if let Some(p) = self.parallel.as_mut() {
                    p.settle(self.client).await?;
                    // What the main session made so far must be visible to the others.
                    if !p.committed {
                        self.client
                            .batch_execute("COMMIT; BEGIN")
                            .await
                            .map_err(|e| statement_error(&statement, &e))?;
                        p.committed = true;
                    }
                    p.open(self.client, self.options).await?;
                    self.counters.set_table(&table);
                    return p.start(statement, table).await;
                }
                let sink = self
                    .client
                    .copy_in::<_, Bytes>(statement.sql.as_str())
                    .await
                    .map_err(|e| statement_error(&statement, &e))?;
                self.counters.set_table(&table);
                self.copy = Some((Box::pin(sink), statement, table));
                Ok(())
            }
            Piece::CopyData(data) => {
                if let Some(p) = self.parallel.as_mut()
                    && p.copy.is_some()
                {
                    return p.data(&data).await;
                }
                let Some((sink, statement, table)) = self.copy.as_mut() else {
                    return Err(LoadError::Backup(
                        "COPY data arrived outside a COPY block".to_string(),
                    ));
                };
                sink.send(Bytes::from(data))
                    .await
                    .map_err(|e| copy_error(statement, table, &e))
            }
            Piece::CopyEnd { rows } => {
                if let Some(p) = self.parallel.as_mut()
                    && p.copy.is_some()
                {
                    p.finish().await?;
                    Counters::add(&self.counters.rows, rows);
                    Counters::add(&self.counters.tables, 1);
                    Counters::add(&self.counters.statements, 1);
                    return Ok(());
                }
                let Some((mut sink, statement, table)) = self.copy.take() else {
                    return Err(LoadError::Backup(
                        "a COPY block ended that never began".to_string(),
                    ));
                };
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(|e| copy_error(&statement, &table, &e))?;
                Counters::add(&self.counters.rows, rows);
                Counters::add(&self.counters.tables, 1);
                Counters::add(&self.counters.statements, 1);
                Ok(())
            }
            Piece::Meta {
                command,
                argument,
                line,
            } => match self
                .policy
                .meta(&command, &argument, line)
                .map_err(|r| LoadError::Refused(r.to_string()))?
            {
                MetaStep::Nothing => Ok(()),
                MetaStep::SetRole(role) => {
                    self.ensure_roles(std::iter::once(role.clone()).collect())
                        .await?;
                    self.client
                        .batch_execute(&format!("SET ROLE {}", quote_ident(&role)))
                        .await
                        .map_err(|e| {
                            LoadError::Statement(format!(
                                "line {line}: `\\connect - {role}` (SET ROLE) failed: {}",
                                pg_error(&e)
                            ))
                        })
                }
            },
        }
    }

    async fn statement(&mut self, s: Statement) -> Result<(), LoadError> {
        let step = self
            .policy
            .statement(&s)
            .map_err(|r| LoadError::Refused(r.to_string()))?;
        if let Some(p) = self.parallel.as_mut() {
            // An index build, once the data is in: handed to a parallel session.
            if s.class.index_build && step == Step::Run && !p.workers.is_empty() {
                if !p.committed {
                    self.client
                        .batch_execute("COMMIT; BEGIN")
                        .await
                        .map_err(|e| statement_error(&s, &e))?;
                    p.committed = true;
                }
                Counters::add(&self.counters.statements, 1);
                return p.build(s).await;
            }
            // Anything else may depend on what was handed out: it waits for it.
            p.settle(self.client).await?;
            p.committed = false;
        }
        if step != Step::Clean {
            self.retry_deferred().await?;
        }
        if self.options.create_missing_roles {
            self.ensure_roles(Needs::roles_of(&s.class)).await?;
        }
        match step {
            Step::Run => self.exec(&s).await?,
            Step::Setting(name) => self.setting(&name, &s).await?,
            Step::Skip(_) | Step::LockTimeout => {}
            Step::Setval(seq) => {
                self.save_sequence(&seq, &s).await?;
                self.exec(&s).await?;
            }
            Step::Clean => {
                self.savepoint(&s).await?;
                match self.client.batch_execute(&s.sql).await {
                    Ok(()) => self.release(&s).await?,
                    Err(e) if is_lock_timeout(&e) => return Err(statement_error(&s, &e)),
                    Err(e) => {
                        self.rollback_to(&s).await?;
                        self.deferred.push((s, pg_error(&e)));
                        return Ok(());
                    }
                }
                Counters::add(&self.counters.statements, 1);
            }
        }
        Ok(())
    }

    async fn exec(&self, s: &Statement) -> Result<(), LoadError> {
        self.client
            .batch_execute(&s.sql)
            .await
            .map_err(|e| statement_error(s, &e))?;
        Counters::add(&self.counters.statements, 1);
        Ok(())
    }

    async fn savepoint(&self, s: &Statement) -> Result<(), LoadError> {
        self.client
            .batch_execute("SAVEPOINT drbot_clean")
            .await
            .map_err(|e| statement_error(s, &e))
    }

    async fn release(&self, s: &Statement) -> Result<(), LoadError> {
        self.client
            .batch_execute("RELEASE SAVEPOINT drbot_clean")
            .await
            .map_err(|e| statement_error(s, &e))
    }

    async fn rollback_to(&self, s: &Statement) -> Result<(), LoadError> {
        self.client
            .batch_execute("ROLLBACK TO SAVEPOINT drbot_clean; RELEASE SAVEPOINT drbot_clean")
            .await
            .map_err(|e| statement_error(s, &e))
    }

    /// The prelude is over: every `--clean` DROP that failed must now succeed or find its
    /// object gone (a later DROP removed it); anything else fails the restore.
    async fn retry_deferred(&mut self) -> Result<(), LoadError> {
        for (s, first) in std::mem::take(&mut self.deferred) {
            self.savepoint(&s).await?;
            match self.client.batch_execute(&s.sql).await {
                Ok(()) => self.release(&s).await?,
                Err(e) if e.code().is_some_and(|c| GONE.contains(&c.code())) => {
                    self.rollback_to(&s).await?;
                }
                Err(e) => {
                    return Err(statement_error(&s, &e).map(|m| {
                        format!(
                            "{m} (pg_dump's --clean step; it failed first with {first}, and still fails after every other DROP ran)"
                        )
                    }));
                }
            }
            self.moot += 1;
            tracing::debug!(line = s.line, %first, "a --clean DROP was moot");
        }
        Ok(())
    }

    /// Creates the roles `roles` names that the target lacks (only with `create_missing_roles`).
    async fn ensure_roles(&mut self, roles: BTreeSet<String>) -> Result<(), LoadError> {
        if !self.options.create_missing_roles {
            return Ok(());
        }
        for role in roles {
            if self.known_roles.contains(&role) {
                continue;
            }
            let exists = self
                .client
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .await
                .map_err(|e| {
                    LoadError::Session(format!("could not look up role {role}: {}", pg_error(&e)))
                })?
                .is_some();
            if !exists {
                self.client
                    .batch_execute(&format!("CREATE ROLE {} NOLOGIN", quote_ident(&role)))
                    .await
                    .map_err(|e| {
                        LoadError::Session(format!(
                            "could not create the role {role} the backup needs: {}",
                            pg_error(&e)
                        ))
                    })?;
                self.roles_created.push(role.clone());
            }
            self.known_roles.insert(role);
        }
        Ok(())
    }

    /// Remembers a sequence's value before the dump's setval changes it.
    async fn save_sequence(&mut self, seq: &str, s: &Statement) -> Result<(), LoadError> {
        let row = self
            .client
            .query_opt(
                "SELECT c.oid, pg_catalog.pg_sequence_last_value(c.oid), q.seqstart \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid \
                 WHERE c.oid = pg_catalog.to_regclass($1)",
                &[&seq],
            )
            .await
            .map_err(|e| statement_error(s, &e))?;
        if let Some(r) = row {
            let oid: u32 = r.get(0);
            self.sequences.entry(oid).or_insert(SavedSequence {
                oid,
                name: seq.to_string(),
                last_value: r.get(1),
                start: r.get(2),
            });
        }
        Ok(())
    }

    /// After a rollback: sequences that existed before the restore get their values back.
    async fn put_back_sequences(&self) -> String {
        let mut restored = 0;
        let mut failed = Vec::new();
        for s in self.sequences.values() {
            let (value, called) = match s.last_value {
                Some(v) => (v, true),
                None => (s.start, false),
            };
            match self
                .client
                .query(
                    "SELECT pg_catalog.setval(c.oid::regclass, $2, $3) FROM pg_catalog.pg_class c WHERE c.oid = $1",
                    &[&s.oid, &value, &called],
                )
                .await
            {
                Ok(rows) => restored += rows.len(),
                Err(_) => failed.push(s.name.clone()),
            }
        }
        match (restored, failed.is_empty()) {
            (0, true) => String::new(),
            (n, true) => format!(". The {n} sequence value(s) it had set were put back"),
            (_, false) => format!(
                ". These sequences may keep the values the backup set (setval is not transactional) and could not be put back: {}",
                failed.join(", ")
            ),
        }
    }

    /// Objects of the schemas the restore wrote into that it did not create: they were made
    /// after the backup was taken, and are still there.
    async fn created_since(&self) -> Result<Vec<String>, LoadError> {
        const SQL: &str = "WITH me AS (SELECT (pg_catalog.pg_current_xact_id()::text::bigint % 4294967296)::text::xid AS x),
  restored AS (SELECT DISTINCT c.relnamespace AS ns FROM pg_catalog.pg_class c, me WHERE c.xmin = me.x),
  objs AS (
    SELECT c.relnamespace AS ns, c.relname::text AS name, c.xmin, 'pg_class'::regclass AS cls, c.oid,
      CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
        WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' END AS kind
    FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT p.pronamespace, p.proname::text || '()', p.xmin, 'pg_proc'::regclass, p.oid, 'function'
    FROM pg_catalog.pg_proc p)
SELECT n.nspname::text, o.name, o.kind FROM objs o JOIN pg_catalog.pg_namespace n ON n.oid = o.ns, me
WHERE o.ns IN (SELECT ns FROM restored) AND o.xmin <> me.x
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = o.cls AND d.objid = o.oid AND d.deptype IN ('e', 'a', 'i'))
ORDER BY 1, 2 LIMIT 51";
        // A diagnostic: it must never fail the restore, so it runs in a savepoint.
        if self
            .client
            .batch_execute("SAVEPOINT drbot_report")
            .await
            .is_err()
        {
            return Ok(Vec::new());
        }
        let found = match self.client.query(SQL, &[]).await {
            Ok(rows) => {
                let _ = self
                    .client
                    .batch_execute("RELEASE SAVEPOINT drbot_report")
                    .await;
                rows.iter()
                    .map(|r| {
                        format!(
                            "{}.{} ({})",
                            r.get::<_, String>(0),
                            r.get::<_, String>(1),
                            r.get::<_, String>(2)
                        )
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %pg_error(&e), "could not list objects created since the backup");
                self.client
                    .batch_execute("ROLLBACK TO SAVEPOINT drbot_report")
                    .await
                    .map_err(|e| {
                        LoadError::Session(format!(
                            "the restore's transaction broke: {}",
                            pg_error(&e)
                        ))
                    })?;
                Vec::new()
            }
        };
        Ok(found)
    }
}

/// An identifier quoted for SQL.
pub(crate) use super::sql::quote_ident;

fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// A server error without the row data PostgreSQL puts in data and constraint errors.
pub(crate) fn safe_pg_error(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return pg_error(e);
    };
    let code = db.code().code();
    let generic = match code {
        "22P02" => "a value is not valid for its column's type",
        "22P04" => "a row is malformed (bad COPY data)",
        "22001" => "a value is too long for its column",
        "22003" => "a number is out of range for its column",
        "22007" | "22008" => "a date or time value is invalid",
        "22021" => "a value is not valid in the database's encoding",
        "23505" => "a duplicate key",
        "23503" => "a foreign key without its referenced row",
        "23502" => "an empty NOT NULL column",
        "23514" => "a row that fails a check constraint",
        c if c.starts_with("22") => "a value the column cannot hold",
        c if c.starts_with("23") => "a row that breaks a constraint",
        _ => return pg_error(e),
    };
    let mut s = format!("{generic} ({code})");
    if let Some(c) = db.constraint() {
        s.push_str(&format!(", constraint {c}"));
    }
    s.push_str("; the row's values are not shown");
    s
}

fn statement_error(s: &Statement, e: &tokio_postgres::Error) -> LoadError {
    LoadError::of(
        e,
        format!(
            "the statement at line {} (byte {} of the SQL) failed: `{}`: {}",
            s.line,
            s.offset,
            s.head(),
            safe_pg_error(e)
        ),
    )
}

fn copy_error(s: &Statement, table: &str, e: &tokio_postgres::Error) -> LoadError {
    // PostgreSQL's context reads `COPY t, line 3, column n: "value"`: keep the line and column.
    let context = e.as_db_error().and_then(|d| d.where_()).unwrap_or_default();
    let row: Option<u64> = context
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    let column = context
        .split(", column ")
        .nth(1)
        .and_then(|c| c.split(':').next())
        .map(|c| format!(", column {c}"))
        .unwrap_or_default();
    let at = match row {
        Some(n) => format!(
            " at its data row {n} (line {} of the dump){column}",
            s.line + n
        ),
        None => String::new(),
    };
    LoadError::of(
        e,
        format!(
            "loading {table} (COPY at line {}) failed{at}: {}",
            s.line,
            safe_pg_error(e)
        ),
    )
}

/// A conninfo string for libpq tools, without the password (which goes in PGPASSWORD).
pub(crate) fn libpq_env(
    target: &Target,
) -> Result<(String, Vec<(String, String)>), crate::pg::TargetError> {
    let (config, verify) = target.pg_config()?;
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = Vec::new();
    if let Some(h) = config.get_hosts().first() {
        let host = match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        parts.push(format!("host={}", quote(&host)));
    }
    if let Some(p) = config.get_ports().first() {
        parts.push(format!("port={p}"));
    }
    if let Some(u) = config.get_user() {
        parts.push(format!("user={}", quote(u)));
    }
    if let Some(d) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(d)));
    }
    let mode = match (config.get_ssl_mode(), verify) {
        (tokio_postgres::config::SslMode::Disable, _) => "disable",
        (tokio_postgres::config::SslMode::Prefer, _) => "prefer",
        (_, crate::pg::Verify::None) => "require",
        (_, crate::pg::Verify::Roots(_)) => "verify-full",
    };
    parts.push(format!("sslmode={mode}"));
    parts.push("application_name=drbot".to_string());
    let mut env = Vec::new();
    if let Some(pw) = config.get_password() {
        env.push((
            "PGPASSWORD".to_string(),
            String::from_utf8_lossy(pw).into_owned(),
        ));
    }
    Ok((parts.join(" "), env))
}
