//! What a restore does with each piece of a dump, decided before it runs: the rules that keep
//! the whole restore inside drbot's one transaction.
//!
//! - Statements that would end or escape the transaction (`COMMIT`, `ROLLBACK`, `SAVEPOINT`,
//!   `CREATE DATABASE`, `… CONCURRENTLY`, `VACUUM`, `ALTER SYSTEM`, `COPY … PROGRAM`, ...) are
//!   refused with their line. The one `BEGIN … COMMIT` pair pg_dump writes itself, around
//!   large-object data, is folded into the restore's transaction.
//! - `\connect` to the same database is accepted (with a role: `SET ROLE`); to another, refused.
//! - pg_dump's `--clean` prelude (the DROPs before the first CREATE) is marked, so the loader can
//!   run each in a savepoint and accept the failures a later DROP makes moot.
//! - `SET lock_timeout` is replaced by drbot's bound; `setval` is marked, so a rollback can put
//!   sequence values back (setval is not transactional).
//! - Settings (`SET`, `set_config`) are marked, so one a newer pg_dump writes that the target's
//!   server does not know is skipped and named instead of failing the restore.
//! - The roles, extensions and schemas a statement needs are collected, for the preflight.
//!
//! What a statement *is* comes from PostgreSQL's own grammar ([`super::sql`]), never from its
//! first words. The preflight and the loader apply the same [`Policy`].

use std::collections::BTreeSet;
use std::fmt;

use super::splitter::Statement;
use super::sql::{Class, Kind};

/// A piece of the dump drbot will not run, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The dump's line.
    pub line: u64,
    /// Why, in a sentence fragment.
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// What to do with a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run it.
    Run,
    /// Run it in a savepoint: a `--clean` prelude DROP whose failure may be moot.
    Clean,
    /// Do not run it; it is already covered (the reason says how).
    Skip(&'static str),
    /// `SET lock_timeout`: run drbot's bound instead.
    LockTimeout,
    /// `SELECT pg_catalog.setval('<sequence>', …)`: remember the sequence's value first.
    Setval(String),
    /// `SET name …` or `set_config('name', …)`: run it; a setting the target's server does not
    /// know (one a newer pg_dump writes, like `transaction_timeout` for PostgreSQL 15) is
    /// skipped and named, as psql would skip it with an error.
    Setting(String),
}

/// What to do with an accepted psql meta-command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaStep {
    /// Nothing (`\restrict`, `\unrestrict`, `\connect` to the same database).
    Nothing,
    /// `\connect - ROLE`: what follows runs as this role.
    SetRole(String),
}

/// The rules of one restore, applied piece by piece in order.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The target's database, for `\connect`.
    database: Option<String>,
    /// Still in pg_dump's `--clean` prelude.
    prelude: bool,
    /// Inside pg_dump's large-object `BEGIN … COMMIT`, begun at this line.
    block: Option<u64>,
}

impl Policy {
    /// The rules for a restore into `database` (its name, when known).
    pub fn new(database: Option<String>) -> Policy {
        Policy {
            database,
            prelude: true,
            block: None,
        }
    }

    /// Decides a statement, from what PostgreSQL's grammar says it is ([`Statement::class`]).
    pub fn statement(&mut self, s: &Statement) -> Result<Step, Refusal> {
        let refuse = |why: &str| Refusal {
            line: s.line,
            why: format!("`{}` is refused: {why}", s.head()),
        };
        match &s.class.kind {
            Kind::Unparsable(message) if message.contains("stack depth limit exceeded") => {
                return Err(refuse(&format!(
                    "it nests deeper than drbot's copy of PostgreSQL's parser reads ({message}; the server may take it under a larger max_stack_depth), so drbot cannot tell it stays inside the transaction; restore this backup with psql -1 by hand"
                )));
            }
            Kind::Unparsable(message) => {
                return Err(refuse(&format!(
                    "PostgreSQL's parser rejects it ({message}), so the server would too"
                )));
            }
            Kind::Escapes(why) => return Err(refuse(why)),
            Kind::Begin => {
                if let Some(at) = self.block {
                    return Err(refuse(&format!(
                        "a BEGIN inside the BEGIN at line {at} is not something pg_dump writes"
                    )));
                }
                self.block = Some(s.line);
                self.prelude = false;
                return Ok(Step::Skip(
                    "pg_dump's large-object BEGIN is part of the restore's transaction",
                ));
            }
            Kind::Commit => {
                if self.block.take().is_some() {
                    return Ok(Step::Skip(
                        "pg_dump's large-object COMMIT is part of the restore's transaction",
                    ));
                }
                return Err(refuse(
                    "COMMIT would make everything before it permanent whatever happens after",
                ));
            }
            _ => {}
        }
        if let Some(at) = self.block {
            if !matches!(s.class.kind, Kind::LargeObject { .. }) {
                return Err(refuse(&format!(
                    "only large-object writes belong between pg_dump's BEGIN at line {at} and its COMMIT"
                )));
            }
            return Ok(Step::Run);
        }
        match &s.class.kind {
            Kind::Set { name, .. } | Kind::SetConfig { name, .. } if name == "lock_timeout" => {
                Ok(Step::LockTimeout)
            }
            Kind::Set { name, .. } | Kind::SetConfig { name, .. } => {
                Ok(Step::Setting(name.clone()))
            }
            Kind::Setval(seq) => {
                self.prelude = false;
                Ok(Step::Setval(seq.clone()))
            }
            Kind::Drop | Kind::LargeObject { unlink: true } if self.prelude => Ok(Step::Clean),
            _ => {
                self.prelude = false;
                Ok(Step::Run)
            }
        }
    }

    /// Decides a psql meta-command the splitter accepted.
    pub fn meta(&mut self, command: &str, argument: &str, line: u64) -> Result<MetaStep, Refusal> {
        if command != "connect" {
            return Ok(MetaStep::Nothing);
        }
        let mut args = argument
            .split_whitespace()
            .filter(|a| !a.starts_with("-reuse-previous"));
        let db = args.next().map(unquote_meta);
        let role = args.next().map(unquote_meta);
        let db = db.map(|d| conninfo_dbname(&d).unwrap_or(d));
        match (db.as_deref(), &self.database) {
            (None | Some("-"), _) => {}
            (Some(d), Some(target)) if d == target => {}
            (Some(d), _) => {
                return Err(Refusal {
                    line,
                    why: format!(
                        "`\\connect {}` is refused: it switches to another database ({d}); drbot restores only into the chosen target",
                        crate::render::truncate(argument, 60)
                    ),
                });
            }
        }
        Ok(match role {
            Some(r) if r != "-" => MetaStep::SetRole(r),
            _ => MetaStep::Nothing,
        })
    }

    /// At the end of the dump: nothing may be left open.
    pub fn finish(&self) -> Result<(), Refusal> {
        match self.block {
            Some(line) => Err(Refusal {
                line,
                why: "the dump ends inside the BEGIN of this line, without its COMMIT".to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// psql's quoting of a `\connect` argument: `"name"` or `'name'`.
fn unquote_meta(a: &str) -> String {
    let t = a.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return t[1..t.len() - 1].replace(&format!("{q}{q}"), &q.to_string());
        }
    }
    t.to_string()
}

/// `dbname=x` in a conninfo string, as pg_dump writes for `--create` dumps.
fn conninfo_dbname(s: &str) -> Option<String> {
    let rest = s.split("dbname=").nth(1)?;
    let v = rest.split_whitespace().next()?.trim_matches('\'');
    Some(v.to_string())
}

/// Roles, extensions, schemas and settings a dump needs from the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Roles named as owners, grantees, policy roles or `SET ROLE` targets, less those the
    /// dump creates itself.
    pub roles: BTreeSet<String>,
    /// Extensions it creates.
    pub extensions: BTreeSet<String>,
    /// Schemas it needs (an extension's `SCHEMA`), less those it creates itself.
    pub schemas: BTreeSet<String>,
    /// Settings it sets (`SET`, `set_config`), which the target's server must know.
    pub settings: BTreeSet<String>,
    created_roles: BTreeSet<String>,
    created_schemas: BTreeSet<String>,
}

impl Needs {
    /// Adds what one statement needs, from its parse tree.
    pub fn add(&mut self, class: &Class) {
        for r in &class.creates_roles {
            self.roles.remove(r);
            self.created_roles.insert(r.clone());
        }
        for s in &class.creates_schemas {
            self.schemas.remove(s);
            self.created_schemas.insert(s.clone());
        }
        self.roles.extend(
            class
                .roles
                .iter()
                .filter(|r| !self.created_roles.contains(*r))
                .cloned(),
        );
        self.schemas.extend(
            class
                .schemas
                .iter()
                .filter(|s| !self.created_schemas.contains(*s))
                .cloned(),
        );
        self.extensions.extend(class.extensions.iter().cloned());
        if let Kind::Set { name, .. } | Kind::SetConfig { name, .. } = &class.kind
            && !name.is_empty()
        {
            self.settings.insert(name.clone());
        }
    }

    /// The roles one statement needs (for creating them as the restore goes).
    pub fn roles_of(class: &Class) -> BTreeSet<String> {
        let mut n = Needs::default();
        n.add(class);
        n.roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn st(sql: &str, line: u64) -> Statement {
        Statement::new(sql, line, 0)
    }

    fn decide(sqls: &[&str]) -> Vec<Result<Step, Refusal>> {
        let mut p = Policy::new(Some("app".into()));
        sqls.iter()
            .enumerate()
            .map(|(i, s)| p.statement(&st(s, i as u64 + 1)))
            .collect()
    }

    #[test]
    fn statements_that_end_or_escape_the_transaction_are_refused_with_their_line() {
        for sql in [
            "COMMIT",
            "commit work",
            "END",
            "ROLLBACK",
            "abort",
            "PREPARE TRANSACTION 'x'",
            "COMMIT PREPARED 'x'",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "CREATE DATABASE other",
            "DROP DATABASE app",
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
            "DROP INDEX CONCURRENTLY i",
            "REINDEX TABLE CONCURRENTLY t",
            "VACUUM FULL t",
            "ALTER SYSTEM SET fsync = off",
            "COPY t FROM PROGRAM 'curl evil'",
            "COPY t FROM '/etc/passwd'",
            "COPY t TO '/tmp/x'",
        ] {
            let r = decide(&["SELECT 1", sql]);
            let e = r[1].clone().expect_err(sql);
            assert_eq!(e.line, 2, "{sql}");
            assert!(e.to_string().starts_with("line 2: `"), "{e}");
        }
    }

    #[test]
    fn pg_dumps_large_object_block_is_folded_in_but_nothing_else_may_hide_there() {
        let r = decide(&[
            "CREATE TABLE t (a int)",
            "BEGIN",
            "SELECT pg_catalog.lo_open('16437', 131072)",
            "SELECT pg_catalog.lowrite(0, '\\x68656c6c6f')",
            "SELECT pg_catalog.lo_close(0)",
            "COMMIT",
            "CREATE INDEX i ON t (a)",
        ]);
        assert!(matches!(r[1], Ok(Step::Skip(_))));
        assert_eq!(r[2], Ok(Step::Run));
        assert!(matches!(r[5], Ok(Step::Skip(_))));
        assert_eq!(r[6], Ok(Step::Run));
        let r = decide(&["BEGIN", "DROP TABLE t", "COMMIT"]);
        assert!(r[1].is_err());
        let r = decide(&["BEGIN", "BEGIN"]);
        assert!(r[1].is_err());
        let mut p = Policy::new(None);
        p.statement(&st("BEGIN", 7)).expect("begin");
        assert_eq!(p.finish().expect_err("open").line, 7);
    }

    #[test]
    fn the_clean_prelude_ends_at_the_first_create() {
        let r = decide(&[
            "SET lock_timeout = 0",
            "SELECT pg_catalog.set_config('search_path', '', false)",
            "ALTER TABLE IF EXISTS ONLY public.m_2024 DROP CONSTRAINT IF EXISTS m_2024_pkey",
            "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = '1'",
            "DROP TABLE IF EXISTS public.m",
            "SET default_tablespace = ''",
            "CREATE TABLE public.m (id int)",
            "DROP TABLE x",
            "SELECT pg_catalog.setval('public.\"Mixed_Id_seq\"', 7, true)",
        ]);
        assert_eq!(r[0], Ok(Step::LockTimeout));
        for sql in [
            "SET LOCAL lock_timeout TO 0",
            "set session lock_timeout = '0'",
            "SELECT pg_catalog.set_config('lock_timeout', '0', false)",
        ] {
            assert_eq!(decide(&[sql])[0], Ok(Step::LockTimeout), "{sql}");
        }
        assert_eq!(r[1], Ok(Step::Setting("search_path".into())));
        assert_eq!(r[2], Ok(Step::Clean));
        assert_eq!(r[3], Ok(Step::Clean));
        assert_eq!(r[4], Ok(Step::Clean));
        assert_eq!(r[5], Ok(Step::Setting("default_tablespace".into())));
        assert_eq!(r[6], Ok(Step::Run));
        assert_eq!(
            r[7],
            Ok(Step::Run),
            "a DROP after the prelude runs as written"
        );
        assert_eq!(
            r[8],
            Ok(Step::Setval("public.\"Mixed_Id_seq\"".to_string()))
        );
    }

    #[test]
    fn connect_to_the_same_database_is_accepted_and_to_another_refused() {
        let mut p = Policy::new(Some("app".into()));
        assert_eq!(p.meta("restrict", "abc", 1), Ok(MetaStep::Nothing));
        assert_eq!(p.meta("connect", "app", 2), Ok(MetaStep::Nothing));
        assert_eq!(p.meta("connect", "-", 2), Ok(MetaStep::Nothing));
        assert_eq!(
            p.meta("connect", "- \"Owner\"", 3),
            Ok(MetaStep::SetRole("Owner".into()))
        );
        assert_eq!(
            p.meta("connect", "-reuse-previous=on \"dbname='app'\"", 4),
            Ok(MetaStep::Nothing)
        );
        let e = p.meta("connect", "other", 9).expect_err("other db");
        assert_eq!(e.line, 9);
        assert!(e.why.contains("another database (other)"), "{e}");
        let e = p
            .meta("connect", "-reuse-previous=on \"dbname='other'\"", 10)
            .expect_err("other db");
        assert!(e.why.contains("(other)"), "{e}");
    }

    #[test]
    fn a_copy_of_any_width_runs_and_the_prelude_ends_there() {
        // The defect of issue 24: a policy that read the first 24 tokens refused every table
        // of nine or more columns. The width must never matter.
        for width in [1usize, 9, 54, 1600] {
            let cols: Vec<String> = (0..width).map(|i| format!("\"col {i}\"")).collect();
            let copy = format!("COPY public.wide ({}) FROM stdin", cols.join(", "));
            let r = decide(&["DROP TABLE IF EXISTS public.wide", &copy, "DROP TABLE x"]);
            assert_eq!(r[0], Ok(Step::Clean));
            assert_eq!(r[1], Ok(Step::Run), "width {width}");
            assert_eq!(r[2], Ok(Step::Run), "width {width}");
            let program = format!("COPY public.wide ({}) FROM PROGRAM 'id'", cols.join(", "));
            assert!(decide(&[&program])[0].is_err(), "width {width}");
        }
    }

    #[test]
    fn needs_collects_roles_extensions_schemas_and_settings_less_what_the_dump_creates() {
        let mut n = Needs::default();
        for sql in [
            "SET transaction_timeout = 0",
            "CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA graphql",
            "CREATE EXTENSION pgcrypto WITH SCHEMA extensions",
            "CREATE SCHEMA extensions",
            "CREATE ROLE made_here NOLOGIN",
            "ALTER TABLE public.t OWNER TO made_here",
            "ALTER TABLE public.t OWNER TO supabase_admin",
            "GRANT ALL ON TABLE public.t TO anon",
        ] {
            n.add(&super::super::sql::classify(sql, false));
        }
        let v = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        assert_eq!(v(&n.roles), ["anon", "supabase_admin"]);
        assert_eq!(v(&n.extensions), ["pg_graphql", "pgcrypto"]);
        assert_eq!(v(&n.schemas), ["graphql", "public"]);
        assert_eq!(v(&n.settings), ["transaction_timeout"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn no_statement_or_meta_line_panics(
            sql in r#"([A-Za-z_ ,;()'".\-/*$\\\n]|BEGIN|COMMIT|GRANT|TO|FROM|OWNER|SELECT pg_catalog.setval\(|ü){0,60}"#,
            arg in r#"([a-z\-"'= ]|dbname=|-reuse-previous=on|ü){0,30}"#,
        ) {
            let mut p = Policy::new(Some("db".into()));
            let _ = p.statement(&st(&sql, 1));
            let _ = p.meta("connect", &arg, 1);
            let mut n = Needs::default();
            n.add(&super::super::sql::classify(&sql, false));
        }
    }
}
