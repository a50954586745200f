//! Loading decoded backups into a target: plain SQL natively over tokio-postgres in one
//! transaction (COPY blocks through `copy_in`), custom-format archives through `pg_restore
//! --single-transaction`. Either way a failure leaves the target as it was.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyInSink};

use super::pg::{Target, pg_error};
use super::pipeline::{Counters, Format, Layer, Msg};
use super::splitter::{Piece, Statement};

/// What a finished load found.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Encryption and compression layers, outermost first.
    pub layers: Vec<Layer>,
    /// Plain SQL or custom format.
    pub format: Format,
}

/// Loads everything `rx` yields into the target. On error the transaction is rolled back and
/// the message says which byte or statement failed.
pub async fn load(
    client: &Client,
    target: &Target,
    mut rx: mpsc::Receiver<Msg>,
    counters: &Counters,
) -> Result<Loaded, String> {
    let (layers, format) = match rx.recv().await {
        Some(Msg::Found(l, f)) => (l, f),
        Some(Msg::Failed(e)) => return Err(e),
        Some(_) | None => return Err("the backup could not be read".to_string()),
    };
    match format {
        Format::Plain => {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| format!("could not start the transaction: {}", pg_error(&e)))?;
            match load_plain(client, &mut rx, counters).await {
                Ok(()) => {
                    client
                        .batch_execute("COMMIT")
                        .await
                        .map_err(|e| format!("the final COMMIT failed: {}", pg_error(&e)))?;
                }
                Err(e) => {
                    // Best effort: if the connection is gone the server has rolled back already.
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        Format::Custom => load_custom(target, &mut rx).await?,
    }
    Ok(Loaded { layers, format })
}

/// A COPY in progress: its sink, statement and table.
type OpenCopy = (Pin<Box<CopyInSink<Bytes>>>, Statement, String);

async fn load_plain(
    client: &Client,
    rx: &mut mpsc::Receiver<Msg>,
    counters: &Counters,
) -> Result<(), String> {
    let mut copy: Option<OpenCopy> = None;
    while let Some(msg) = rx.recv().await {
        let pieces = match msg {
            Msg::Pieces(p) => p,
            Msg::Failed(e) => return Err(e),
            Msg::Found(..) | Msg::Raw(_) => {
                return Err("the backup changed format mid-way".to_string());
            }
        };
        for piece in pieces {
            match piece {
                Piece::Statement(s) => {
                    client
                        .batch_execute(&s.sql)
                        .await
                        .map_err(|e| statement_error(&s, &e))?;
                    Counters::add(&counters.statements, 1);
                }
                Piece::CopyStart { statement, table } => {
                    let sink = client
                        .copy_in::<_, Bytes>(statement.sql.as_str())
                        .await
                        .map_err(|e| statement_error(&statement, &e))?;
                    counters.set_table(&table);
                    copy = Some((Box::pin(sink), statement, table));
                }
                Piece::CopyData(data) => {
                    let Some((sink, statement, table)) = copy.as_mut() else {
                        return Err("COPY data arrived outside a COPY block".to_string());
                    };
                    sink.send(Bytes::from(data))
                        .await
                        .map_err(|e| copy_error(statement, table, &e))?;
                }
                Piece::CopyEnd { rows } => {
                    let Some((mut sink, statement, table)) = copy.take() else {
                        return Err("a COPY block ended that never began".to_string());
                    };
                    sink.as_mut()
                        .finish()
                        .await
                        .map_err(|e| copy_error(&statement, &table, &e))?;
                    Counters::add(&counters.rows, rows);
                    Counters::add(&counters.tables, 1);
                    Counters::add(&counters.statements, 1);
                }
                Piece::Meta {
                    command,
                    argument,
                    line,
                } => {
                    // \restrict / \unrestrict guard psql sessions; \connect would switch
                    // databases, but the restore always goes into the chosen target.
                    tracing::debug!(%command, %argument, line, "psql meta-command passed over");
                }
            }
        }
    }
    if let Some((_, statement, table)) = copy {
        return Err(format!(
            "the backup ended inside the COPY into {table} begun at line {}",
            statement.line
        ));
    }
    Ok(())
}

fn statement_error(s: &Statement, e: &tokio_postgres::Error) -> String {
    format!(
        "the statement at line {} (byte {} of the SQL) failed: `{}`: {}",
        s.line,
        s.offset,
        s.head(),
        pg_error(e)
    )
}

fn copy_error(s: &Statement, table: &str, e: &tokio_postgres::Error) -> String {
    format!(
        "loading {table} (COPY at line {}) failed: {}",
        s.line,
        pg_error(e)
    )
}

/// The last `n` non-empty lines of a tool's error output, joined for one message.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// A conninfo string for libpq tools, without the password (which goes in PGPASSWORD).
pub(crate) fn libpq_env(target: &Target) -> Result<(String, Vec<(String, String)>), String> {
    let (config, verify) = target.pg_config().map_err(|e| e.to_string())?;
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
        (_, super::pg::Verify::None) => "require",
        (_, super::pg::Verify::Roots(_)) => "verify-full",
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

/// Streams a custom-format archive into `pg_restore --single-transaction`.
async fn load_custom(target: &Target, rx: &mut mpsc::Receiver<Msg>) -> Result<(), String> {
    let (conninfo, env) = libpq_env(target)?;
    let mut child = tokio::process::Command::new("pg_restore")
        .args([
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            "--clean",
            "--if-exists",
            "--dbname",
            &conninfo,
        ])
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run pg_restore (needed for custom-format backups): {e}"))?;
    let mut stdin = child.stdin.take().ok_or("pg_restore has no input")?;
    let mut fed = Ok(());
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Raw(data) => {
                if stdin.write_all(&data).await.is_err() {
                    break; // pg_restore stopped; its exit status says why
                }
            }
            Msg::Failed(e) => {
                fed = Err(e);
                break;
            }
            _ => {
                fed = Err("the backup changed format mid-way".to_string());
                break;
            }
        }
    }
    if fed.is_err() {
        // Killing pg_restore mid-transaction leaves the target as it was.
        let _ = child.kill().await;
        return fed;
    }
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("pg_restore did not finish: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pg_restore failed ({}): {}",
            out.status,
            last_lines(&String::from_utf8_lossy(&out.stderr), 3)
        ))
    }
}
