//! The restore's preflight, run when the restore is asked for, while its request waits for
//! approval (nothing runs until it has passed): the whole backup is read (download, decrypt, decompress, split, and for custom
//! format pg_restore's script) without touching the target, under the same rules the restore
//! applies; then the target is only looked at: the roles and extensions the backup needs that
//! it lacks, and the sessions connected to it.

use std::time::Instant;

use tokio::sync::mpsc;

use super::load::{Blocker, sessions};
use super::pipeline::{Counters, Format, Layer, Msg};
use super::script::{Needs, Policy};
use super::splitter::Piece;
use crate::pg::{Target, pg_error};
use crate::progress::ProgressSink;
use crate::render::size;

/// What reading the whole backup found.
#[derive(Debug, Default)]
pub struct BackupFacts {
    /// Encryption and compression layers, outermost first.
    pub layers: Vec<Layer>,
    /// Plain SQL or custom format.
    pub format: Option<Format>,
    /// Bytes of SQL.
    pub sql_bytes: u64,
    /// Statements (COPY blocks included).
    pub statements: u64,
    /// COPY blocks (tables with data).
    pub tables: u64,
    /// COPY rows.
    pub rows: u64,
    /// Roles and extensions it needs.
    pub needs: Needs,
    /// How long reading it took.
    pub elapsed: std::time::Duration,
    /// The local copy of its SQL, when one was asked for and kept.
    pub spool: Option<crate::spool::Spool>,
}

/// What the target lacks and who is connected to it.
#[derive(Clone, Debug, Default)]
pub struct TargetFacts {
    /// Roles the backup needs that the target does not have.
    pub missing_roles: Vec<String>,
    /// Extensions the backup creates that the target's server cannot install.
    pub missing_extensions: Vec<String>,
    /// Schemas the backup needs, does not create, and the target does not have.
    pub missing_schemas: Vec<String>,
    /// Extensions the backup creates that the target does not have installed yet (their
    /// scripts may create schemas of their own).
    pub new_extensions: Vec<String>,
    /// Settings the backup sets that the target's server does not know (a newer pg_dump's):
    /// the restore skips them, as psql would.
    pub unknown_settings: Vec<String>,
    /// Other sessions connected to the target's database.
    pub sessions: Vec<Blocker>,
}

impl BackupFacts {
    /// One line: `complete: 105.3 MiB of SQL, 12 tables, 1234 rows`.
    pub fn line(&self) -> String {
        format!(
            "backup read whole and complete: {} of SQL, {} statements, {} tables, {} rows",
            size(self.sql_bytes),
            self.statements,
            self.tables,
            self.rows
        )
    }
}

/// Why a preflight could not finish: the backup, a statement the rules refuse, or the target.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The backup could not be read to its end.
    #[error("{0}")]
    Backup(String),
    /// A statement the restore's rules refuse.
    #[error("{0}")]
    Refused(String),
    /// The target could not be reached.
    #[error(transparent)]
    Connect(#[from] crate::pg::TargetError),
    /// The target could not be looked at.
    #[error("{0}")]
    Target(String),
}

/// How often the preflight reports progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the whole decoded stream under the restore's rules. `database` is the target's
/// database name, for `\connect`.
pub async fn read(
    mut rx: mpsc::Receiver<Msg>,
    counters: &Counters,
    database: Option<String>,
    progress: &dyn ProgressSink,
    what: &str,
) -> Result<BackupFacts, PreflightError> {
    let started = Instant::now();
    let mut facts = BackupFacts::default();
    let mut policy = Policy::new(database);
    let mut last_progress = Instant::now();
    loop {
        let msg = rx.recv().await;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let (read, total) = (
                Counters::get(&counters.downloaded),
                Counters::get(&counters.total),
            );
            progress.update(&format!(
                "Checking {what}: {} of {} read ({}%), {} of SQL, {} tables, {} rows",
                size(read),
                size(total),
                (read * 100).checked_div(total).unwrap_or(0),
                size(Counters::get(&counters.sql_bytes)),
                facts.tables,
                facts.rows
            ));
        }
        let pieces = match msg {
            Some(Msg::Found(layers, format)) => {
                facts.layers = layers;
                facts.format = Some(format);
                continue;
            }
            Some(Msg::Pieces(p)) => p,
            Some(Msg::Complete) => break,
            Some(Msg::Spooled(copy)) => {
                facts.spool = Some(copy);
                continue;
            }
            Some(Msg::Failed(e)) => return Err(PreflightError::Backup(e)),
            None => {
                return Err(PreflightError::Backup(format!(
                    "the backup reader stopped without saying the backup was complete (after {} bytes of SQL)",
                    Counters::get(&counters.sql_bytes)
                )));
            }
        };
        for piece in pieces {
            match piece {
                Piece::Statement(s) => {
                    policy
                        .statement(&s)
                        .map_err(|r| PreflightError::Refused(r.to_string()))?;
                    facts.needs.add(&s.class);
                    facts.statements += 1;
                }
                Piece::CopyStart { statement, .. } => {
                    policy
                        .statement(&statement)
                        .map_err(|r| PreflightError::Refused(r.to_string()))?;
                    facts.needs.add(&statement.class);
                    facts.statements += 1;
                }
                Piece::CopyData(_) => {}
                Piece::CopyEnd { rows } => {
                    facts.tables += 1;
                    facts.rows += rows;
                }
                Piece::Meta {
                    command,
                    argument,
                    line,
                } => {
                    if let super::script::MetaStep::SetRole(r) = policy
                        .meta(&command, &argument, line)
                        .map_err(|r| PreflightError::Refused(r.to_string()))?
                    {
                        facts.needs.roles.insert(r);
                    }
                }
            }
        }
    }
    policy
        .finish()
        .map_err(|r| PreflightError::Refused(r.to_string()))?;
    facts.sql_bytes = Counters::get(&counters.sql_bytes);
    facts.elapsed = started.elapsed();
    Ok(facts)
}

/// Looks at the target (reads only): what it lacks of `needs`, and who is connected.
pub async fn look_at(target: &Target, needs: &Needs) -> Result<TargetFacts, PreflightError> {
    let client = target.connect().await?;
    let roles: Vec<String> = needs.roles.iter().cloned().collect();
    let have = present(
        &client,
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY($1)",
        &roles,
        "roles",
    )
    .await?;
    let extensions: Vec<String> = needs.extensions.iter().cloned().collect();
    let available = present(
        &client,
        "SELECT name::text FROM pg_catalog.pg_available_extensions WHERE name = ANY($1)",
        &extensions,
        "extensions",
    )
    .await?;
    let schemas: Vec<String> = needs.schemas.iter().cloned().collect();
    let have_schemas = present(
        &client,
        "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)",
        &schemas,
        "schemas",
    )
    .await?;
    let installed = present(
        &client,
        "SELECT extname::text FROM pg_catalog.pg_extension WHERE extname = ANY($1)",
        &extensions,
        "installed extensions",
    )
    .await?;
    // Custom settings (`app.x`) are accepted by any server; only plain names can be unknown.
    let settings: Vec<String> = needs
        .settings
        .iter()
        .filter(|n| !n.contains('.'))
        .cloned()
        .collect();
    let known = present(
        &client,
        "SELECT name::text FROM pg_catalog.pg_settings WHERE name = ANY($1)",
        &settings,
        "settings",
    )
    .await?;
    let rows = client
        .query(
            "SELECT pid, coalesce(application_name, ''), coalesce(usename::text, ''), \
             coalesce(state, ''), coalesce(query, '') FROM pg_catalog.pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' ORDER BY pid",
            &[],
        )
        .await
        .map_err(|e| {
            PreflightError::Target(format!(
                "could not list the target's sessions: {}",
                pg_error(&e)
            ))
        })?;
    let sessions = sessions(&rows);
    Ok(TargetFacts {
        missing_roles: roles.into_iter().filter(|r| !have.contains(r)).collect(),
        missing_extensions: extensions
            .iter()
            .filter(|e| !available.contains(e))
            .cloned()
            .collect(),
        missing_schemas: schemas
            .into_iter()
            .filter(|s| !have_schemas.contains(s))
            .collect(),
        new_extensions: extensions
            .iter()
            .filter(|e| !installed.contains(e))
            .cloned()
            .collect(),
        unknown_settings: settings
            .into_iter()
            .filter(|s| !known.contains(s))
            .collect(),
        sessions,
    })
}

/// Which of `names` the target has, by a query taking them as `$1`.
async fn present(
    client: &tokio_postgres::Client,
    sql: &str,
    names: &[String],
    what: &str,
) -> Result<Vec<String>, PreflightError> {
    Ok(client
        .query(sql, &[&names])
        .await
        .map_err(|e| {
            PreflightError::Target(format!(
                "could not read the target's {what}: {}",
                pg_error(&e)
            ))
        })?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
