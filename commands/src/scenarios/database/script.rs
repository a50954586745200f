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
//! - The roles and extensions a statement needs are read from it, for the preflight.
//!
//! Everything here is pure text work: the preflight and the loader apply the same [`Policy`].

use std::collections::BTreeSet;
use std::fmt;

use super::splitter::Statement;

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
}

/// What to do with an accepted psql meta-command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaStep {
    /// Nothing (`\restrict`, `\unrestrict`, `\connect` to the same database).
    Nothing,
    /// `\connect - ROLE`: what follows runs as this role.
    SetRole(String),
}

/// A word of SQL, as PostgreSQL reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// An unquoted word, lowercased.
    Word(String),
    /// A `"quoted"` identifier, as written inside the quotes.
    Quoted(String),
    /// A string literal's content.
    Str(String),
    /// Any other character outside whitespace.
    Punct(char),
}

impl Token {
    /// The word, if this is the unquoted keyword `w`.
    fn is(&self, w: &str) -> bool {
        matches!(self, Token::Word(x) if x == w)
    }

    /// An identifier's name (unquoted words lowercased, quoted ones as written).
    fn name(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

/// The first `max` tokens of a statement. Strings and quoted identifiers are read whole;
/// comments are skipped (the splitter has removed most of them).
pub fn tokens(sql: &str, max: usize) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < max {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0u32;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' || c == b'\'' {
            let start = i + 1;
            let mut j = start;
            let mut text = Vec::new();
            while j < b.len() {
                if b[j] == c {
                    if b.get(j + 1) == Some(&c) {
                        text.push(c);
                        j += 2;
                        continue;
                    }
                    break;
                }
                text.push(b[j]);
                j += 1;
            }
            let s = String::from_utf8_lossy(&text).into_owned();
            out.push(if c == b'"' {
                Token::Quoted(s)
            } else {
                Token::Str(s)
            });
            i = j + 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token::Word(
                String::from_utf8_lossy(&b[start..i]).to_ascii_lowercase(),
            ));
        } else {
            // A whole UTF-8 character, so slicing never splits one.
            match sql.get(i..).and_then(|rest| rest.chars().next()) {
                Some(ch) => {
                    out.push(Token::Punct(ch));
                    i += ch.len_utf8();
                }
                None => i += 1,
            }
        }
    }
    out
}

/// Why a statement escapes the restore's transaction, if it does (`BEGIN`/`COMMIT` are
/// handled by [`Policy`], which knows pg_dump's large-object block).
fn escapes(t: &[Token]) -> Option<&'static str> {
    let w = |i: usize, s: &str| t.get(i).is_some_and(|x| x.is(s));
    let any = |s: &str| t.iter().any(|x| x.is(s));
    if w(0, "rollback") || w(0, "abort") {
        return Some("ROLLBACK would undo the restore half-way and leave the rest outside it");
    }
    if w(0, "commit") && w(1, "prepared") || w(0, "prepare") && w(1, "transaction") {
        return Some("two-phase commit statements end the restore's transaction");
    }
    if w(0, "savepoint") || w(0, "release") {
        return Some("savepoints are drbot's to manage inside the restore's transaction");
    }
    if (w(0, "create") || w(0, "drop") || w(0, "alter")) && w(1, "database") {
        return Some(
            "CREATE/DROP/ALTER DATABASE acts outside the target's transaction (dump without --create)",
        );
    }
    if (w(0, "create") || w(0, "drop") || w(0, "reindex")) && any("concurrently") {
        return Some("… CONCURRENTLY cannot run inside a transaction");
    }
    if w(0, "vacuum") {
        return Some("VACUUM cannot run inside a transaction");
    }
    if w(0, "alter") && w(1, "system") {
        return Some("ALTER SYSTEM changes the server's configuration outside any transaction");
    }
    if (w(0, "create") || w(0, "drop")) && w(1, "tablespace") {
        return Some("tablespaces cannot be created or dropped inside a transaction");
    }
    if w(0, "copy") && (any("program") || !(any("stdin") || any("pstdin"))) {
        return Some("COPY is only run FROM stdin: no server files or programs");
    }
    None
}

/// True for pg_dump's `--clean` DROPs: `DROP …`, `ALTER … DROP …`, `SELECT pg_catalog.lo_unlink`.
fn is_clean(t: &[Token]) -> bool {
    let w = |i: usize, s: &str| t.get(i).is_some_and(|x| x.is(s));
    w(0, "drop")
        || (w(0, "alter") && t.iter().any(|x| x.is("drop")))
        || (w(0, "select") && w(1, "pg_catalog") && w(3, "lo_unlink"))
}

/// True for settings pg_dump writes before its DROPs.
fn is_setting(t: &[Token]) -> bool {
    let w = |i: usize, s: &str| t.get(i).is_some_and(|x| x.is(s));
    w(0, "set") || (w(0, "select") && w(1, "pg_catalog") && w(3, "set_config"))
}

/// The sequence a `SELECT pg_catalog.setval('seq', …)` sets.
fn setval_target(t: &[Token]) -> Option<String> {
    let w = |i: usize, s: &str| t.get(i).is_some_and(|x| x.is(s));
    if !w(0, "select") {
        return None;
    }
    let at = if w(1, "pg_catalog") && matches!(t.get(2), Some(Token::Punct('.'))) {
        3
    } else {
        1
    };
    if !(w(at, "setval") && matches!(t.get(at + 1), Some(Token::Punct('(')))) {
        return None;
    }
    match t.get(at + 2) {
        Some(Token::Str(s)) => Some(s.clone()),
        _ => None,
    }
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

/// How many tokens decide a statement's class.
const CLASSIFY_TOKENS: usize = 24;

impl Policy {
    /// The rules for a restore into `database` (its name, when known).
    pub fn new(database: Option<String>) -> Policy {
        Policy {
            database,
            prelude: true,
            block: None,
        }
    }

    /// Decides a statement.
    pub fn statement(&mut self, s: &Statement) -> Result<Step, Refusal> {
        let t = tokens(&s.sql, CLASSIFY_TOKENS);
        let refuse = |why: &str| Refusal {
            line: s.line,
            why: format!("`{}` is refused: {why}", s.head()),
        };
        let w = |i: usize, k: &str| t.get(i).is_some_and(|x| x.is(k));
        let begin = (w(0, "begin") || (w(0, "start") && w(1, "transaction"))) && t.len() <= 4;
        let commit = (w(0, "commit") && !w(1, "prepared")) || w(0, "end");
        if begin {
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
        if commit {
            if self.block.take().is_some() {
                return Ok(Step::Skip(
                    "pg_dump's large-object COMMIT is part of the restore's transaction",
                ));
            }
            return Err(refuse(
                "COMMIT would make everything before it permanent whatever happens after",
            ));
        }
        if let Some(why) = escapes(&t) {
            return Err(refuse(why));
        }
        if let Some(at) = self.block {
            let large_object = w(0, "select")
                && w(1, "pg_catalog")
                && t.get(3)
                    .is_some_and(|x| matches!(x, Token::Word(n) if n.starts_with("lo")));
            if !large_object {
                return Err(refuse(&format!(
                    "only large-object writes belong between pg_dump's BEGIN at line {at} and its COMMIT"
                )));
            }
            return Ok(Step::Run);
        }
        let set_at = if w(1, "local") || w(1, "session") {
            2
        } else {
            1
        };
        let set_config_lock = w(0, "select")
            && t.iter().any(|x| x.is("set_config"))
            && t.iter()
                .any(|x| matches!(x, Token::Str(v) if v == "lock_timeout"));
        if (w(0, "set") && w(set_at, "lock_timeout")) || set_config_lock {
            return Ok(Step::LockTimeout);
        }
        if let Some(seq) = setval_target(&t) {
            self.prelude = false;
            return Ok(Step::Setval(seq));
        }
        if is_setting(&t) {
            return Ok(Step::Run);
        }
        if self.prelude && is_clean(&t) {
            return Ok(Step::Clean);
        }
        self.prelude = false;
        Ok(Step::Run)
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

/// Roles and extensions a dump needs from the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Roles named as owners, grantees, policy roles or `SET ROLE` targets.
    pub roles: BTreeSet<String>,
    /// Extensions it creates.
    pub extensions: BTreeSet<String>,
}

/// Role words that are not roles.
const NOT_ROLES: &[&str] = &[
    "public",
    "current_user",
    "session_user",
    "current_role",
    "none",
    "default",
];

impl Needs {
    /// Adds what one statement needs.
    pub fn add(&mut self, sql: &str) {
        let head = tokens(sql, 4);
        let w = |t: &[Token], i: usize, k: &str| t.get(i).is_some_and(|x| x.is(k));
        let interesting = w(&head, 0, "grant")
            || w(&head, 0, "revoke")
            || w(&head, 0, "alter")
            || (w(&head, 0, "create")
                && (w(&head, 1, "extension") || w(&head, 1, "policy") || w(&head, 1, "schema")))
            || (w(&head, 0, "set") && (w(&head, 1, "role") || w(&head, 1, "session")));
        if !interesting {
            return;
        }
        let t = tokens(sql, 4096);
        let mut add = |tok: Option<&Token>| {
            if let Some(n) = tok.and_then(Token::name)
                && !(matches!(tok, Some(Token::Word(_))) && NOT_ROLES.contains(&n))
            {
                self.roles.insert(n.to_string());
            }
        };
        let last = |k: &str| t.iter().rposition(|x| x.is(k));
        if w(&t, 0, "create") && w(&t, 1, "extension") {
            let at = if w(&t, 2, "if") { 5 } else { 2 };
            if let Some(n) = t.get(at).and_then(Token::name) {
                self.extensions.insert(n.to_string());
            }
            return;
        }
        if w(&t, 0, "set") {
            // SET ROLE x / SET SESSION AUTHORIZATION x
            let at = if w(&t, 1, "role") { 2 } else { 3 };
            if matches!(t.get(at), Some(Token::Word(_) | Token::Quoted(_))) {
                add(t.get(at));
            } else if let Some(Token::Str(s)) = t.get(at) {
                self.roles.insert(s.clone());
            }
            return;
        }
        // `ALTER DEFAULT PRIVILEGES FOR ROLE x …` names its role, then a GRANT or REVOKE.
        if w(&t, 0, "alter") && w(&t, 1, "default") && (w(&t, 3, "for")) {
            add(t.get(5));
        }
        if w(&t, 0, "alter") && !w(&t, 1, "default") {
            if let Some(i) = last("owner")
                && w(&t, i + 1, "to")
            {
                add(t.get(i + 2));
            }
            return;
        }
        if w(&t, 0, "create") && w(&t, 1, "schema") {
            if let Some(i) = last("authorization") {
                add(t.get(i + 1));
            }
            return;
        }
        // GRANT … TO a, b [WITH …|GRANTED BY …]; REVOKE … FROM a, b [CASCADE|RESTRICT|GRANTED BY];
        // CREATE POLICY … TO a, b [USING …|WITH CHECK …].
        let (kw, stop): (&str, &[&str]) = if t.iter().any(|x| x.is("revoke")) {
            ("from", &["cascade", "restrict", "granted"])
        } else {
            ("to", &["with", "granted", "using"])
        };
        // A policy's roles follow its first TO, before USING / WITH CHECK expressions (which
        // may hold a `SIMILAR TO`); a GRANT's grantees follow its last.
        let at = if w(&t, 0, "create") && w(&t, 1, "policy") {
            t.iter().position(|x| x.is(kw))
        } else {
            last(kw)
        };
        let Some(i) = at else { return };
        let mut j = i + 1;
        while let Some(tok) = t.get(j) {
            if stop.iter().any(|s| tok.is(s)) {
                break;
            }
            match tok {
                Token::Word(w) if w == "group" => {}
                Token::Word(_) | Token::Quoted(_) => add(Some(tok)),
                Token::Punct(',') => {}
                _ => break,
            }
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn st(sql: &str, line: u64) -> Statement {
        Statement {
            sql: sql.to_string(),
            line,
            offset: 0,
        }
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
        assert_eq!(r[1], Ok(Step::Run));
        assert_eq!(r[2], Ok(Step::Clean));
        assert_eq!(r[3], Ok(Step::Clean));
        assert_eq!(r[4], Ok(Step::Clean));
        assert_eq!(r[5], Ok(Step::Run));
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
    fn needs_reads_roles_and_extensions_the_way_pg_dump_writes_them() {
        let mut n = Needs::default();
        for sql in [
            "CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA graphql",
            "CREATE EXTENSION \"uuid-ossp\"",
            "ALTER TABLE public.t OWNER TO supabase_admin",
            "ALTER FUNCTION public.f(a integer) OWNER TO \"Mixed Role\"",
            "GRANT ALL ON TABLE public.t TO anon",
            "GRANT SELECT(a), UPDATE(b) ON TABLE public.t TO authenticated, service_role WITH GRANT OPTION",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "REVOKE USAGE ON SCHEMA s FROM dashboard_user CASCADE",
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon",
            "CREATE POLICY p ON public.t TO authenticated USING ((auth.uid() = owner))",
            "CREATE POLICY \"q\" ON \"public\".\"t\" FOR SELECT TO \"policy_role\" WITH CHECK ((name SIMILAR TO 'x%'))",
            "CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin",
            "SET SESSION AUTHORIZATION 'olduser'",
            "GRANT pg_read_all_data TO reader",
            "GRANT ALL ON TABLE public.\"to\" TO CURRENT_USER",
            "CREATE TABLE \"GRANT\" (\"to\" int)",
        ] {
            n.add(sql);
        }
        let roles: Vec<&str> = n.roles.iter().map(String::as_str).collect();
        assert_eq!(
            roles,
            [
                "Mixed Role",
                "anon",
                "authenticated",
                "dashboard_user",
                "olduser",
                "policy_role",
                "postgres",
                "reader",
                "service_role",
                "supabase_admin",
                "supabase_auth_admin"
            ]
        );
        let ext: Vec<&str> = n.extensions.iter().map(String::as_str).collect();
        assert_eq!(ext, ["pg_graphql", "uuid-ossp"]);
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
            n.add(&sql);
            let _ = tokens(&sql, usize::MAX);
        }
    }
}
