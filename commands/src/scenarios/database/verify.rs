//! `/db verify`: integrity checks on a restored database, as a pass/fail table.
//!
//! Invalid indexes, unvalidated constraints, sequences behind their column's max, row counts
//! against the backup's manifest (when there is one), and the checks configured in
//! `[verify] checks` (SQL returning true when all is well).

use std::fmt::Write as _;

use tokio_postgres::Client;

use super::backup::Manifest;
use crate::context::Engine;
use crate::error::CommandError;
use crate::pg::{Target, pg_error};

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// What was checked.
    pub name: String,
    /// Passed, failed, or not run.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// All well.
    Pass,
    /// Something is wrong.
    Fail,
    /// Not run (nothing to compare with).
    Skip,
}

/// The whole report.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target checked.
    pub target: String,
    /// Each check.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The table, first line a verdict.
    pub fn render(&self) -> String {
        let failed = self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count();
        let mut s = if failed == 0 {
            format!(
                "Verify {}: PASS ({} checks).\n",
                self.target,
                self.checks.len()
            )
        } else {
            format!(
                "Verify {}: FAIL ({failed} of {} checks failed).\n",
                self.target,
                self.checks.len()
            )
        };
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let mark = match c.verdict {
                Verdict::Pass => "✓",
                Verdict::Fail => "✗",
                Verdict::Skip => "–",
            };
            let _ = writeln!(s, "  {mark} {:<width$}  {}", c.name, c.detail);
        }
        s.trim_end().to_string()
    }
}

fn result(name: &str, verdict: Verdict, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        verdict,
        detail: detail.into(),
    }
}

/// Lists up to five items and how many more.
fn listed(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        let _ = write!(s, " and {} more", items.len() - 5);
    }
    s
}

/// Runs every check against the target.
pub async fn run(
    engine: &Engine,
    target: &Target,
    manifest: Option<&Manifest>,
) -> Result<Report, CommandError> {
    let client = target.connect().await?;
    let mut checks = Vec::new();
    checks.push(invalid_indexes(&client).await?);
    checks.push(unvalidated_constraints(&client).await?);
    checks.push(sequences(&client).await?);
    checks.push(row_counts(&client, manifest).await);
    let configured = &engine.config().verify.checks;
    if configured.is_empty() {
        checks.push(result(
            "configured checks",
            Verdict::Skip,
            "none in [verify] checks",
        ));
    }
    for c in configured {
        let r = match client.simple_query(&c.sql).await {
            Ok(rows) => {
                let first = rows.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some(r.get(0).map(str::to_string))
                    }
                    _ => None,
                });
                match first.flatten().as_deref() {
                    Some("t" | "true") => result(&c.name, Verdict::Pass, "true"),
                    Some(other) => result(
                        &c.name,
                        Verdict::Fail,
                        format!("returned {other}, expected true"),
                    ),
                    None => result(&c.name, Verdict::Fail, "returned no row"),
                }
            }
            Err(e) => result(&c.name, Verdict::Fail, format!("error: {}", pg_error(&e))),
        };
        checks.push(r);
    }
    Ok(Report {
        target: target.name.clone(),
        checks,
    })
}

fn failed(what: &str, e: tokio_postgres::Error) -> CommandError {
    CommandError::Failed(format!("Verify could not check {what}: {}.", pg_error(&e)))
}

async fn invalid_indexes(client: &Client) -> Result<CheckResult, CommandError> {
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| failed("indexes", e))?;
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(if names.is_empty() {
        result("invalid indexes", Verdict::Pass, "none")
    } else {
        result(
            "invalid indexes",
            Verdict::Fail,
            format!("{}: REINDEX them", listed(&names)),
        )
    })
}

async fn unvalidated_constraints(client: &Client) -> Result<CheckResult, CommandError> {
    let rows = client
        .query(
            "SELECT format('%s.%I', conrelid::regclass, conname) FROM pg_constraint \
             WHERE NOT convalidated ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| failed("constraints", e))?;
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(if names.is_empty() {
        result("unvalidated constraints", Verdict::Pass, "none")
    } else {
        result(
            "unvalidated constraints",
            Verdict::Fail,
            format!("{}: ALTER TABLE … VALIDATE CONSTRAINT", listed(&names)),
        )
    })
}

async fn sequences(client: &Client) -> Result<CheckResult, CommandError> {
    // Sequences owned by a column (serial or identity) and that column.
    let owned = client
        .query(
            "SELECT s.seqrelid::regclass::text, format('%s', c.oid::regclass), quote_ident(a.attname) \
             FROM pg_sequence s \
             JOIN pg_depend d ON d.objid = s.seqrelid AND d.classid = 'pg_class'::regclass \
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
             JOIN pg_class c ON c.oid = d.refobjid \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid \
             WHERE c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| failed("sequences", e))?;
    let mut behind = Vec::new();
    for row in &owned {
        let seq: String = row.get(0);
        let table: String = row.get(1);
        let column: String = row.get(2);
        let sql = format!(
            "SELECT (SELECT max({column})::bigint FROM {table}), last_value, is_called FROM {seq}"
        );
        let r = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(|e| failed("sequences", e))?;
        let max: Option<i64> = r.get(0);
        let last: i64 = r.get(1);
        let called: bool = r.get(2);
        if let Some(max) = max {
            let next = if called { last + 1 } else { last };
            if next <= max {
                behind.push(format!(
                    "{seq} would give {next} but {table}.{column} reaches {max}"
                ));
            }
        }
    }
    Ok(if behind.is_empty() {
        result(
            "sequences",
            Verdict::Pass,
            format!("{} ahead of their columns", owned.len()),
        )
    } else {
        result(
            "sequences",
            Verdict::Fail,
            format!("{}: setval() them past the max", listed(&behind)),
        )
    })
}

async fn row_counts(client: &Client, manifest: Option<&Manifest>) -> CheckResult {
    let Some(m) = manifest else {
        return result("row counts", Verdict::Skip, "no manifest to compare with");
    };
    let mut wrong = Vec::new();
    for (table, expected) in m.rows() {
        let sql = format!("SELECT count(*) FROM ONLY {table}");
        match client.query_one(sql.as_str(), &[]).await {
            Ok(r) => {
                let n: i64 = r.get(0);
                if n as u64 != expected {
                    wrong.push(format!("{table} has {n}, backup had {expected}"));
                }
            }
            Err(e) => wrong.push(format!("{table}: {}", pg_error(&e))),
        }
    }
    if wrong.is_empty() {
        result(
            "row counts",
            Verdict::Pass,
            format!("{} tables match the backup's manifest", m.tables.len()),
        )
    } else {
        result("row counts", Verdict::Fail, listed(&wrong))
    }
}
