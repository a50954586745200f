//! What a statement is, read from PostgreSQL's own grammar: each statement the splitter finds
//! is parsed by libpg_query (the server's parser, through the `pg_query` crate) and reduced to
//! the few facts the restore's rules need — its [`Kind`], and the roles, extensions, schemas
//! and settings it names. Nothing here reads a prefix of tokens: a `COPY` with 1600 columns, a
//! keyword used as an identifier, or a `TO` inside a policy's expression are what the tree says.
//!
//! Hand-written lexing stays only where psql differs from the server (backslash meta-commands
//! and COPY data, in the splitter).

use pg_query::protobuf::{self, AlterTableType, RoleSpec, RoleSpecType, TransactionStmtKind};
use pg_query::{NodeEnum, ParserOptions};

/// The stack of the thread that parses a backup's statements. libpg_query sizes its
/// stack-depth limit from the stack it finds, as the server does (capped at the server's
/// default 2 MB), so on this stack its limit is the server's default, not the smaller one an
/// ordinary thread would give; the decoding of its tree into Rust and the walks over it recurse
/// as deep again. Untouched pages of it cost no memory. (The tree is handed over as protobuf,
/// which stops at about 800 levels of `a || b`; see [`classify`] for what happens past it.)
pub const PARSER_STACK: usize = 256 * 1024 * 1024;

/// Runs `f` on a thread with [`PARSER_STACK`] (for callers outside the backup's decode
/// thread, which has one already).
pub fn on_parser_stack<T: Send>(f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(PARSER_STACK)
            .spawn_scoped(s, f)?
            .join()
            .map_err(|_| std::io::Error::other("the parser thread panicked"))
    })
}

/// What a statement does, as far as the restore's rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// A statement that would end or escape the restore's transaction; the reason.
    Escapes(&'static str),
    /// `COPY <table> … FROM STDIN`: its data follows in the dump.
    CopyFromStdin {
        /// The table as the grammar reads it (`public."Mixed"`).
        table: String,
    },
    /// `SET name …` / `RESET name` (and `SET LOCAL`, `SET SESSION`).
    Set {
        /// The setting's name (lowercase unless quoted, as the server reads it).
        name: String,
        /// Its new value when it is one plain word, number or string (`on`, `0`, `''`).
        value: Option<String>,
    },
    /// `SELECT pg_catalog.set_config('name', 'value', false)`.
    SetConfig {
        /// The setting's name.
        name: String,
        /// The value, when a literal.
        value: Option<String>,
    },
    /// `SELECT pg_catalog.setval('sequence', …)`: the sequence, as written in the string.
    Setval(String),
    /// `SELECT pg_catalog.lo_…(…)` / `lowrite`: pg_dump's large-object calls; `unlink` for
    /// `lo_unlink`, which is part of the `--clean` prelude.
    LargeObject {
        /// It is `lo_unlink`.
        unlink: bool,
    },
    /// A `DROP …`, or an `ALTER TABLE` whose every action drops something: what pg_dump's
    /// `--clean` writes.
    Drop,
    /// Anything else: run as written.
    Other,
    /// The parser refused it: its message. A syntax error the server would refuse too; a
    /// "stack depth limit exceeded" one the server may take (its limit can be raised).
    Unparsable(String),
}

/// What one statement is and what it needs from the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// What it does.
    pub kind: Kind,
    /// Roles it names (owners, grantees, policy roles, `SET ROLE`, …), never PUBLIC or
    /// CURRENT_USER and the like.
    pub roles: Vec<String>,
    /// Roles it creates.
    pub creates_roles: Vec<String>,
    /// Extensions it creates.
    pub extensions: Vec<String>,
    /// Schemas it creates.
    pub creates_schemas: Vec<String>,
    /// Schemas it needs to exist: those its names are qualified with, an extension's
    /// `SCHEMA`.
    pub schemas: Vec<String>,
    /// It only builds an index on one table (`CREATE INDEX`, `ALTER TABLE … ADD CONSTRAINT …
    /// PRIMARY KEY | UNIQUE | EXCLUDE`): such statements may run side by side once the data
    /// is in.
    pub index_build: bool,
    /// A plain `PRIMARY KEY` or `UNIQUE` constraint, as the two steps that make it the same
    /// way (see [`KeySplit`]).
    pub key_split: Option<KeySplit>,
}

/// `ALTER TABLE … ADD CONSTRAINT name PRIMARY KEY|UNIQUE (columns)` as two statements with the
/// same outcome: its index built by `CREATE UNIQUE INDEX name`, which takes the table's SHARE
/// lock (other index builds on the table run beside it, where `ADD CONSTRAINT` takes the table
/// whole), then the constraint made from that index (`USING INDEX`: a catalog change).
/// PostgreSQL refuses `USING INDEX` on a partitioned table, so the split is only for an
/// ordinary table (its loader checks which at run time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySplit {
    /// The table, quoted and qualified as written.
    pub table: String,
    /// `CREATE UNIQUE INDEX …`.
    pub index: String,
    /// `ALTER TABLE ONLY … ADD CONSTRAINT … USING INDEX …`.
    pub constraint: String,
}

/// `s` as a string literal (standard_conforming_strings, on since PostgreSQL 9.1).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `s` as an identifier, always quoted.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The split of a lone `ADD CONSTRAINT … PRIMARY KEY|UNIQUE (columns)`: only the plain form
/// (columns alone; no INCLUDE, WITH, tablespace, DEFERRABLE, NULLS NOT DISTINCT), whose index
/// `CREATE UNIQUE INDEX` writes alike.
fn key_split(a: &protobuf::AlterTableStmt) -> Option<KeySplit> {
    use protobuf::node::Node as N;
    let [cmd] = a.cmds.as_slice() else {
        return None;
    };
    let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
        return None;
    };
    if protobuf::AlterTableType::try_from(cmd.subtype)
        != Ok(protobuf::AlterTableType::AtAddConstraint)
        || protobuf::ObjectType::try_from(a.objtype) != Ok(protobuf::ObjectType::ObjectTable)
    {
        return None;
    }
    let Some(N::Constraint(k)) = cmd.def.as_ref().and_then(|d| d.node.as_ref()) else {
        return None;
    };
    let kind = match protobuf::ConstrType::try_from(k.contype) {
        Ok(protobuf::ConstrType::ConstrPrimary) => "PRIMARY KEY",
        Ok(protobuf::ConstrType::ConstrUnique) => "UNIQUE",
        _ => return None,
    };
    let plain = !k.conname.is_empty()
        && !k.deferrable
        && !k.initdeferred
        && !k.nulls_not_distinct
        && k.including.is_empty()
        && k.options.is_empty()
        && k.indexname.is_empty()
        && k.indexspace.is_empty()
        && k.access_method.is_empty()
        && k.where_clause.is_none()
        && !k.keys.is_empty();
    if !plain {
        return None;
    }
    let mut columns = Vec::new();
    for key in &k.keys {
        let Some(N::String(name)) = &key.node else {
            return None;
        };
        columns.push(quote_ident(&name.sval));
    }
    let r = a.relation.as_ref()?;
    let table = if r.schemaname.is_empty() {
        quote_ident(&r.relname)
    } else {
        format!("{}.{}", quote_ident(&r.schemaname), quote_ident(&r.relname))
    };
    let name = quote_ident(&k.conname);
    Some(KeySplit {
        index: format!(
            "CREATE UNIQUE INDEX {name} ON {table} USING btree ({})",
            columns.join(", ")
        ),
        constraint: format!(
            "ALTER TABLE ONLY {table} ADD CONSTRAINT {name} {kind} USING INDEX {name}"
        ),
        table,
    })
}

impl Class {
    fn of(kind: Kind) -> Class {
        Class {
            kind,
            roles: Vec::new(),
            creates_roles: Vec::new(),
            extensions: Vec::new(),
            creates_schemas: Vec::new(),
            schemas: Vec::new(),
            index_build: false,
            key_split: None,
        }
    }
}

/// Classifies one statement (the splitter's unit, without its semicolon). `backslash_strings`
/// is true after `SET standard_conforming_strings = off`, which changes how `'…'` reads.
///
/// A tree too deep to hand over (past about 800 levels) is classified by the parser's summary
/// of its statement types; past about 900 levels the parser's stack-depth check answers and
/// the statement is [`Kind::Unparsable`] — refused, never a crash.
pub fn classify(sql: &str, backslash_strings: bool) -> Class {
    let class = classify_as(sql, backslash_strings);
    // `'…\'…'` reads differently under the two values of standard_conforming_strings. Should
    // the server's value ever differ from the one the dump's SETs led drbot to (a set_config
    // inside an expression, say), a statement drbot runs whole could be several to the
    // server: so text with a backslash is read both ways, and if the other way holds something
    // the rules refuse, it is refused.
    if sql.contains('\\') && !matches!(class.kind, Kind::Escapes(_) | Kind::Unparsable(_)) {
        let other = classify_as(sql, !backslash_strings);
        let dangerous = matches!(
            other.kind,
            Kind::Escapes(_) | Kind::Begin | Kind::Commit | Kind::CopyFromStdin { .. }
        );
        if dangerous && other.kind != class.kind {
            return Class::of(Kind::Escapes(
                "with standard_conforming_strings the other way it reads as statements that end or escape the transaction; drbot will not run text whose meaning hangs on that",
            ));
        }
    }
    class
}

/// [`classify`] under one value of standard_conforming_strings.
fn classify_as(sql: &str, backslash_strings: bool) -> Class {
    let options = if backslash_strings {
        ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
    } else {
        ParserOptions::DEFAULT
    };
    // Rows written as INSERTs (pg_dump --inserts) are most of such a dump's statements, and
    // nothing about them matters to the rules: the parser's summary of statement types (read
    // in C, a third of the cost of handing the whole tree over) says that is all they are.
    // (`VALUES` lists and sub-selects are SelectStmts inside them; a lone SELECT, which may be
    // pg_dump's setval or set_config, always takes the whole tree.)
    if let Ok(Ok(summary)) = std::panic::catch_unwind(|| pg_query::summary(sql, options, -1)) {
        let types = &summary.statement_types;
        if types.iter().any(|t| DATA.contains(&t.as_str()))
            && types
                .iter()
                .all(|t| t == "SelectStmt" || DATA.contains(&t.as_str()))
        {
            return Class::of(Kind::Other);
        }
    }
    // The parser is C underneath and its Rust wrapper walks the tree; whatever a hostile dump
    // makes either of them do, it becomes a refusal of this statement, not a crash.
    let parsed = std::panic::catch_unwind(|| pg_query::parse(sql, options));
    let tree = match parsed {
        Ok(Ok(tree)) => tree,
        Ok(Err(e)) if parse_message(&e).contains("nested too deeply to serialize") => {
            return deep(sql, options);
        }
        Ok(Err(e)) => return Class::of(Kind::Unparsable(parse_message(&e))),
        Err(_) => {
            return Class::of(Kind::Unparsable(
                "PostgreSQL's parser stopped on it".to_string(),
            ));
        }
    };
    let mut stmts = tree
        .protobuf
        .stmts
        .iter()
        .filter_map(|s| s.stmt.as_ref().and_then(|n| n.node.as_ref()));
    let Some(first) = stmts.next() else {
        return Class::of(Kind::Other);
    };
    let mut class = one(first);
    // The splitter and the grammar agree on boundaries; should they not, every statement in
    // the piece is still held to the rules (a COMMIT cannot hide behind a harmless first one).
    for next in stmts {
        let c = one(next);
        class.index_build = false;
        class.key_split = None;
        match (&class.kind, &c.kind) {
            (Kind::Escapes(_) | Kind::Unparsable(_), _) => {}
            (_, Kind::Escapes(_) | Kind::Begin | Kind::Commit | Kind::CopyFromStdin { .. }) => {
                class.kind = Kind::Escapes(
                    "it holds several statements, one of which ends or escapes the transaction",
                );
            }
            _ => class.kind = Kind::Other,
        }
        class.roles.extend(c.roles);
        class.creates_roles.extend(c.creates_roles);
        class.extensions.extend(c.extensions);
        class.creates_schemas.extend(c.creates_schemas);
        class.schemas.extend(c.schemas);
    }
    class
}

/// Statement types that only change rows: nothing in them concerns the restore's rules.
const DATA: &[&str] = &["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"];

/// Statement types whose class depends on more than their type.
const NEEDS_THE_TREE: &[&str] = &[
    "TransactionStmt",
    "CreatedbStmt",
    "DropdbStmt",
    "AlterDatabaseStmt",
    "AlterDatabaseSetStmt",
    "AlterDatabaseRefreshCollStmt",
    "VacuumStmt",
    "AlterSystemStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "CopyStmt",
    "IndexStmt",
    "DropStmt",
    "ReindexStmt",
    "VariableSetStmt",
];

/// A statement parsed whole but too deep for the tree to be handed over (a view of a thousand
/// `a || b`): the parser's own summary names its statement types. An expression that deep
/// sits in a view, a default, a policy or a query, and those run as written; a type whose
/// class hangs on its details is refused rather than guessed.
fn deep(sql: &str, options: ParserOptions) -> Class {
    let summary = std::panic::catch_unwind(|| pg_query::summary(sql, options, -1));
    match summary {
        Ok(Ok(s))
            if s.statement_types
                .iter()
                .any(|t| NEEDS_THE_TREE.contains(&t.as_str())) =>
        {
            Class::of(Kind::Escapes(
                "it nests too deeply for its class to be read, and a statement of its type may end or escape the transaction",
            ))
        }
        Ok(Ok(_)) => Class::of(Kind::Other),
        Ok(Err(e)) => Class::of(Kind::Unparsable(parse_message(&e))),
        Err(_) => Class::of(Kind::Unparsable(
            "PostgreSQL's parser stopped on it".to_string(),
        )),
    }
}

/// The parser's message without the crate's prefix.
fn parse_message(e: &pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Why statements escape the transaction, in words.
const TWO_PHASE: &str = "two-phase commit statements end the restore's transaction";
const ROLLBACK: &str = "ROLLBACK would undo the restore half-way and leave the rest outside it";
const SAVEPOINT: &str = "savepoints are drbot's to manage inside the restore's transaction";
const DATABASE: &str =
    "CREATE/DROP/ALTER DATABASE acts outside the target's transaction (dump without --create)";
const CONCURRENTLY: &str = "… CONCURRENTLY cannot run inside a transaction";
const VACUUM: &str = "VACUUM cannot run inside a transaction";
const SYSTEM: &str = "ALTER SYSTEM changes the server's configuration outside any transaction";
const TABLESPACE: &str = "tablespaces cannot be created or dropped inside a transaction";
const COPY_FILE: &str = "COPY is only run FROM stdin: no server files or programs";
const REINDEX_ALL: &str = "REINDEX DATABASE/SYSTEM cannot run inside a transaction";

fn one(node: &NodeEnum) -> Class {
    use NodeEnum as N;
    let mut c = Class::of(Kind::Other);
    match node {
        N::TransactionStmt(t) => {
            c.kind = match TransactionStmtKind::try_from(t.kind) {
                Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                    Kind::Begin
                }
                Ok(TransactionStmtKind::TransStmtCommit) => Kind::Commit,
                Ok(TransactionStmtKind::TransStmtRollback) => Kind::Escapes(ROLLBACK),
                Ok(
                    TransactionStmtKind::TransStmtSavepoint
                    | TransactionStmtKind::TransStmtRelease
                    | TransactionStmtKind::TransStmtRollbackTo,
                ) => Kind::Escapes(SAVEPOINT),
                _ => Kind::Escapes(TWO_PHASE),
            };
        }
        N::CreatedbStmt(_)
        | N::DropdbStmt(_)
        | N::AlterDatabaseStmt(_)
        | N::AlterDatabaseSetStmt(_)
        | N::AlterDatabaseRefreshCollStmt(_) => c.kind = Kind::Escapes(DATABASE),
        N::IndexStmt(i) if i.concurrent => c.kind = Kind::Escapes(CONCURRENTLY),
        N::IndexStmt(_) => c.index_build = true,
        N::DropStmt(d) if d.concurrent => c.kind = Kind::Escapes(CONCURRENTLY),
        N::ReindexStmt(r) => {
            let concurrently = r
                .params
                .iter()
                .any(|p| matches!(&p.node, Some(N::DefElem(d)) if d.defname == "concurrently"));
            let whole = matches!(
                protobuf::ReindexObjectType::try_from(r.kind),
                Ok(protobuf::ReindexObjectType::ReindexObjectDatabase
                    | protobuf::ReindexObjectType::ReindexObjectSystem)
            );
            if concurrently {
                c.kind = Kind::Escapes(CONCURRENTLY);
            } else if whole {
                c.kind = Kind::Escapes(REINDEX_ALL);
            }
        }
        N::VacuumStmt(v) if v.is_vacuumcmd => c.kind = Kind::Escapes(VACUUM),
        N::AlterSystemStmt(_) => c.kind = Kind::Escapes(SYSTEM),
        N::CreateTableSpaceStmt(_) | N::DropTableSpaceStmt(_) => c.kind = Kind::Escapes(TABLESPACE),
        N::CopyStmt(copy) => {
            c.kind = if copy.is_from && !copy.is_program && copy.filename.is_empty() {
                Kind::CopyFromStdin {
                    table: copy.relation.as_ref().map(range_var).unwrap_or_default(),
                }
            } else {
                Kind::Escapes(COPY_FILE)
            };
        }
        N::VariableSetStmt(v) => {
            set_roles(v, &mut c.roles);
            // `SET TRANSACTION …` and `RESET ALL` name no one setting.
            let one = !matches!(
                protobuf::VariableSetKind::try_from(v.kind),
                Ok(protobuf::VariableSetKind::VarSetMulti | protobuf::VariableSetKind::VarResetAll)
            );
            if one && !v.name.is_empty() {
                c.kind = Kind::Set {
                    name: v.name.clone(),
                    value: v.args.first().and_then(literal),
                };
            }
        }
        N::SelectStmt(s) => c.kind = select_call(s),
        N::DropStmt(_) | N::DropUserMappingStmt(_) | N::DropSubscriptionStmt(_) => {
            c.kind = Kind::Drop
        }
        N::AlterTableStmt(a) => {
            let mut all_drops = !a.cmds.is_empty();
            for cmd in &a.cmds {
                let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                    all_drops = false;
                    continue;
                };
                role(cmd.newowner.as_ref(), &mut c.roles);
                all_drops &= is_drop(cmd);
            }
            if all_drops {
                c.kind = Kind::Drop;
            }
            c.index_build = a.cmds.len() == 1
                && a.cmds.iter().all(|cmd| {
                    let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                        return false;
                    };
                    protobuf::AlterTableType::try_from(cmd.subtype)
                        == Ok(protobuf::AlterTableType::AtAddConstraint)
                        && matches!(
                            cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                            Some(N::Constraint(k)) if matches!(
                                protobuf::ConstrType::try_from(k.contype),
                                Ok(protobuf::ConstrType::ConstrPrimary
                                    | protobuf::ConstrType::ConstrUnique
                                    | protobuf::ConstrType::ConstrExclusion)
                            )
                        )
                });
            c.key_split = key_split(a);
        }
        N::AlterOwnerStmt(o) => role(o.newowner.as_ref(), &mut c.roles),
        N::GrantStmt(g) => grant_roles(g, &mut c.roles),
        N::GrantRoleStmt(g) => {
            for r in &g.granted_roles {
                if let Some(N::AccessPriv(p)) = &r.node
                    && !p.priv_name.is_empty()
                {
                    c.roles.push(p.priv_name.clone());
                }
            }
            roles(&g.grantee_roles, &mut c.roles);
            role(g.grantor.as_ref(), &mut c.roles);
        }
        N::AlterDefaultPrivilegesStmt(a) => {
            for o in &a.options {
                if let Some(N::DefElem(d)) = &o.node
                    && d.defname == "roles"
                    && let Some(N::List(l)) = d.arg.as_ref().and_then(|a| a.node.as_ref())
                {
                    roles(&l.items, &mut c.roles);
                }
            }
            if let Some(g) = &a.action {
                grant_roles(g, &mut c.roles);
            }
        }
        N::CreatePolicyStmt(p) => roles(&p.roles, &mut c.roles),
        N::AlterPolicyStmt(p) => roles(&p.roles, &mut c.roles),
        N::CreateUserMappingStmt(u) => role(u.user.as_ref(), &mut c.roles),
        N::AlterUserMappingStmt(u) => role(u.user.as_ref(), &mut c.roles),
        N::CreateSchemaStmt(s) => {
            role(s.authrole.as_ref(), &mut c.roles);
            if !s.schemaname.is_empty() {
                c.creates_schemas.push(s.schemaname.clone());
            } else if let Some(r) = &s.authrole
                && RoleSpecType::try_from(r.roletype) == Ok(RoleSpecType::RolespecCstring)
            {
                // `CREATE SCHEMA AUTHORIZATION r` names the schema after its owner.
                c.creates_schemas.push(r.rolename.clone());
            }
        }
        N::CreateExtensionStmt(e) => {
            c.extensions.push(e.extname.clone());
            for o in &e.options {
                if let Some(N::DefElem(d)) = &o.node
                    && d.defname == "schema"
                    && let Some(s) = d.arg.as_deref().and_then(literal)
                {
                    c.schemas.push(s);
                }
            }
        }
        N::CreateFunctionStmt(f) => function_set_role(&f.options, &mut c.roles),
        N::AlterFunctionStmt(f) => function_set_role(&f.actions, &mut c.roles),
        N::CreateRoleStmt(r) => c.creates_roles.push(r.role.clone()),
        N::AlterRoleStmt(r) => role(r.role.as_ref(), &mut c.roles),
        N::AlterRoleSetStmt(r) => role(r.role.as_ref(), &mut c.roles),
        _ => {}
    }
    // The schemas its names are qualified with: data and settings need none that the DDL
    // before them did not, and a `--clean` DROP … IF EXISTS passes over a missing schema.
    let data = matches!(
        node,
        N::InsertStmt(_)
            | N::SelectStmt(_)
            | N::CopyStmt(_)
            | N::VariableSetStmt(_)
            | N::TransactionStmt(_)
    );
    if !data && c.kind != Kind::Drop {
        qualified_schemas(node, &mut c.schemas);
    }
    c
}

/// Schemas that no database lacks.
const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast", "pg_temp"];

/// Every schema a name in the statement is qualified with: relations (`schemaname`), and the
/// qualified name lists of functions, types, operators' definitions, collations and
/// classes. Column references are lists too, and are never read as schemas.
fn qualified_schemas(node: &NodeEnum, out: &mut Vec<String>) {
    fn strings(list: &[serde_json::Value]) -> Option<Vec<&str>> {
        list.iter()
            .map(|v| {
                v.pointer("/node/String/sval")
                    .and_then(serde_json::Value::as_str)
            })
            .collect()
    }
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(s)) = m.get("schemaname")
                    && !s.is_empty()
                {
                    out.push(s.clone());
                }
                let pct_type = m.get("pct_type").and_then(serde_json::Value::as_bool) == Some(true);
                for key in [
                    "funcname",
                    "names",
                    "objname",
                    "defnames",
                    "type_name",
                    "domainname",
                    "collname",
                    "opclassname",
                    "opfamilyname",
                ] {
                    if key == "names" && pct_type {
                        continue;
                    }
                    if let Some(serde_json::Value::Array(items)) = m.get(key)
                        && items.len() >= 2
                        && let Some(parts) = strings(items)
                    {
                        out.push(parts[parts.len() - 2].to_string());
                    }
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    if let Ok(v) = serde_json::to_value(node) {
        walk(&v, out);
    }
    out.retain(|s| !SYSTEM_SCHEMAS.contains(&s.as_str()) && !s.starts_with("pg_temp"));
    out.sort();
    out.dedup();
}

/// `ALTER TABLE` actions pg_dump's `--clean` writes: they all remove something.
fn is_drop(cmd: &protobuf::AlterTableCmd) -> bool {
    use AlterTableType as T;
    match AlterTableType::try_from(cmd.subtype) {
        Ok(
            T::AtDropConstraint
            | T::AtDropColumn
            | T::AtDropNotNull
            | T::AtDropIdentity
            | T::AtDropExpression
            | T::AtDropInherit
            | T::AtDropCluster
            | T::AtDropOf,
        ) => true,
        // `ALTER COLUMN … DROP DEFAULT` is a ColumnDefault with nothing to set.
        Ok(T::AtColumnDefault) => cmd.def.is_none(),
        _ => false,
    }
}

/// The one function a `SELECT` calls, when that is all it does: pg_dump's `setval`,
/// `set_config` and large-object calls.
fn select_call(s: &protobuf::SelectStmt) -> Kind {
    let only = s.target_list.len() == 1 && s.larg.is_none() && s.with_clause.is_none();
    let Some(NodeEnum::ResTarget(t)) = s.target_list.first().and_then(|n| n.node.as_ref()) else {
        return Kind::Other;
    };
    let Some(NodeEnum::FuncCall(f)) = t.val.as_ref().and_then(|v| v.node.as_ref()) else {
        return Kind::Other;
    };
    if !only {
        return Kind::Other;
    }
    let names: Vec<&str> = f
        .funcname
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    let name = match names.as_slice() {
        [n] | ["pg_catalog", n] => *n,
        _ => return Kind::Other,
    };
    let arg = |i: usize| f.args.get(i).and_then(literal);
    match name {
        "setval" => arg(0).map_or(Kind::Other, Kind::Setval),
        "set_config" => match arg(0) {
            Some(name) => Kind::SetConfig {
                name,
                value: arg(1),
            },
            None => Kind::Other,
        },
        "lo_unlink" => Kind::LargeObject { unlink: true },
        n if n.starts_with("lo_") || n == "lowrite" || n == "loread" => {
            Kind::LargeObject { unlink: false }
        }
        _ => Kind::Other,
    }
}

/// A literal's text: a string, number or bare word (`SET x = on` holds `on` as a string).
fn literal(n: &protobuf::Node) -> Option<String> {
    match n.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            protobuf::a_const::Val::Ival(i) => Some(i.ival.to_string()),
            protobuf::a_const::Val::Fval(f) => Some(f.fval.clone()),
            protobuf::a_const::Val::Boolval(b) => Some(b.boolval.to_string()),
            protobuf::a_const::Val::Bsval(_) => None,
        },
        NodeEnum::String(s) => Some(s.sval.clone()),
        NodeEnum::TypeCast(t) => t.arg.as_deref().and_then(literal),
        _ => None,
    }
}

/// A named role (not PUBLIC, CURRENT_USER, SESSION_USER, CURRENT_ROLE).
fn role(r: Option<&RoleSpec>, out: &mut Vec<String>) {
    if let Some(r) = r
        && RoleSpecType::try_from(r.roletype) == Ok(RoleSpecType::RolespecCstring)
    {
        out.push(r.rolename.clone());
    }
}

fn roles(list: &[protobuf::Node], out: &mut Vec<String>) {
    for n in list {
        if let Some(NodeEnum::RoleSpec(r)) = &n.node {
            role(Some(r), out);
        }
    }
}

fn grant_roles(g: &protobuf::GrantStmt, out: &mut Vec<String>) {
    roles(&g.grantees, out);
    role(g.grantor.as_ref(), out);
}

/// `SET ROLE r` and `SET SESSION AUTHORIZATION r` name a role.
fn set_roles(v: &protobuf::VariableSetStmt, out: &mut Vec<String>) {
    if (v.name == "role" || v.name == "session_authorization")
        && let Some(r) = v.args.first().and_then(literal)
        && r != "none"
    {
        out.push(r);
    }
}

/// A function's `SET role = r` clause.
fn function_set_role(options: &[protobuf::Node], out: &mut Vec<String>) {
    for o in options {
        if let Some(NodeEnum::DefElem(d)) = &o.node
            && d.defname == "set"
            && let Some(NodeEnum::VariableSetStmt(v)) = d.arg.as_ref().and_then(|a| a.node.as_ref())
        {
            set_roles(v, out);
        }
    }
}

/// `schema.table` as the server reads it, quoted where it must be.
fn range_var(r: &protobuf::RangeVar) -> String {
    let mut parts = Vec::new();
    if !r.schemaname.is_empty() {
        parts.push(display_ident(&r.schemaname));
    }
    parts.push(display_ident(&r.relname));
    parts.join(".")
}

/// An identifier quoted exactly as pg_dump quotes it (its `fmtId`: plain only when it is
/// `[a-z_][a-z0-9_]*` and no keyword but an unreserved one), so the table names a backup's
/// manifest records read as pg_dump wrote them and run as SQL in `/db verify`.
fn display_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !is_keyword(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// True when `word` is a keyword pg_dump would quote: any but the unreserved ones.
fn is_keyword(word: &str) -> bool {
    pg_query::scan(word).is_ok_and(|r| {
        r.tokens.first().is_some_and(|t| {
            !matches!(
                protobuf::KeywordKind::try_from(t.keyword_kind),
                Ok(protobuf::KeywordKind::NoKeyword | protobuf::KeywordKind::UnreservedKeyword)
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(sql: &str) -> Kind {
        classify(sql, false).kind
    }

    #[test]
    fn copy_reads_its_source_from_the_tree_whatever_the_width() {
        let cols: Vec<String> = (0..1600).map(|i| format!("c{i}")).collect();
        let wide = format!("COPY public.t ({}) FROM stdin", cols.join(", "));
        assert_eq!(
            kind(&wide),
            Kind::CopyFromStdin {
                table: "public.t".into()
            }
        );
        assert_eq!(
            kind("COPY \"Odd \"\"name\"\"\" (\"from\", \"to\", \"stdin\") FROM STDIN"),
            Kind::CopyFromStdin {
                table: "\"Odd \"\"name\"\"\"".into()
            }
        );
        for bad in [
            "COPY t FROM '/etc/passwd'",
            "COPY t FROM PROGRAM 'curl evil'",
            "COPY t TO '/tmp/x'",
            "COPY t TO STDOUT",
            "COPY (SELECT 1) TO STDOUT",
        ] {
            assert_eq!(kind(bad), Kind::Escapes(COPY_FILE), "{bad}");
        }
    }

    #[test]
    fn transaction_control_and_database_statements_are_read_from_the_tree() {
        assert_eq!(kind("BEGIN"), Kind::Begin);
        assert_eq!(
            kind("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Kind::Begin
        );
        assert_eq!(kind("COMMIT"), Kind::Commit);
        assert_eq!(kind("end"), Kind::Commit);
        for (sql, why) in [
            ("ROLLBACK", ROLLBACK),
            ("abort", ROLLBACK),
            ("SAVEPOINT a", SAVEPOINT),
            ("RELEASE a", SAVEPOINT),
            ("ROLLBACK TO SAVEPOINT a", SAVEPOINT),
            ("PREPARE TRANSACTION 'x'", TWO_PHASE),
            ("COMMIT PREPARED 'x'", TWO_PHASE),
            ("CREATE DATABASE x", DATABASE),
            ("ALTER DATABASE x SET search_path = a", DATABASE),
            ("DROP DATABASE IF EXISTS x", DATABASE),
            ("CREATE INDEX CONCURRENTLY i ON t (a)", CONCURRENTLY),
            ("DROP INDEX CONCURRENTLY i", CONCURRENTLY),
            ("REINDEX (CONCURRENTLY) TABLE t", CONCURRENTLY),
            ("REINDEX TABLE CONCURRENTLY t", CONCURRENTLY),
            ("REINDEX DATABASE x", REINDEX_ALL),
            ("VACUUM (FULL) t", VACUUM),
            ("ALTER SYSTEM SET fsync = off", SYSTEM),
            ("CREATE TABLESPACE s LOCATION '/x'", TABLESPACE),
        ] {
            assert_eq!(kind(sql), Kind::Escapes(why), "{sql}");
        }
        // A column called `concurrently` or a table called `vacuum` is just a name.
        assert_eq!(kind("CREATE INDEX i ON t (\"concurrently\")"), Kind::Other);
        for (sql, builds) in [
            ("CREATE INDEX i ON public.t USING btree (a)", true),
            (
                "CREATE UNIQUE INDEX i ON ONLY public.t USING btree (a)",
                true,
            ),
            (
                "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id)",
                true,
            ),
            (
                "ALTER TABLE ONLY public.t ADD CONSTRAINT u UNIQUE (a)",
                true,
            ),
            (
                "ALTER TABLE ONLY public.t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)",
                true,
            ),
            (
                "ALTER TABLE ONLY public.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES public.u(id)",
                false,
            ),
            (
                "ALTER TABLE public.t ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
                false,
            ),
            ("ALTER INDEX public.i ATTACH PARTITION public.j", false),
            (
                "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id), ADD COLUMN b int",
                false,
            ),
            ("CREATE INDEX i ON t (a); CREATE INDEX j ON t (b)", false),
        ] {
            assert_eq!(classify(sql, false).index_build, builds, "{sql}");
        }
        assert_eq!(kind("CREATE TABLE vacuum (database int)"), Kind::Other);
        assert_eq!(kind("ANALYZE t"), Kind::Other);
    }

    #[test]
    fn several_statements_in_one_piece_are_all_held_to_the_rules() {
        for sql in [
            "SELECT 1; COMMIT",
            "INSERT INTO t VALUES (1); COMMIT",
            "INSERT INTO t VALUES (1); COPY t FROM stdin",
            "INSERT INTO t VALUES (1); VACUUM t",
            "SELECT 1; COPY t FROM stdin",
        ] {
            assert!(matches!(kind(sql), Kind::Escapes(_)), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1); DELETE FROM t",
            "SELECT pg_catalog.setval('s', 1); INSERT INTO t SELECT * FROM u",
            "SELECT 1; SELECT 2",
        ] {
            assert_eq!(kind(sql), Kind::Other, "{sql}");
        }
        assert!(matches!(
            kind("INSERT INTO t VALUES ((1)"),
            Kind::Unparsable(_)
        ));
    }

    #[test]
    fn pg_dumps_calls_and_settings_are_recognised() {
        assert_eq!(
            kind("SELECT pg_catalog.setval('public.\"Mixed_Id_seq\"', 7, true)"),
            Kind::Setval("public.\"Mixed_Id_seq\"".into())
        );
        assert_eq!(
            kind("SELECT pg_catalog.set_config('search_path', '', false)"),
            Kind::SetConfig {
                name: "search_path".into(),
                value: Some(String::new())
            }
        );
        assert_eq!(
            kind("SET transaction_timeout = 0"),
            Kind::Set {
                name: "transaction_timeout".into(),
                value: Some("0".into())
            }
        );
        assert_eq!(
            kind("SET standard_conforming_strings = off"),
            Kind::Set {
                name: "standard_conforming_strings".into(),
                value: Some("off".into())
            }
        );
        assert_eq!(
            kind(
                "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = '1'"
            ),
            Kind::LargeObject { unlink: true }
        );
        assert_eq!(
            kind("SELECT pg_catalog.lowrite(0, '\\x68')"),
            Kind::LargeObject { unlink: false }
        );
        assert_eq!(kind("SELECT setval_like('x')"), Kind::Other);
        assert_eq!(
            kind("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Kind::Other
        );
        assert_eq!(kind("RESET ALL"), Kind::Other);
        assert_eq!(
            kind("SET TIME ZONE 'UTC'"),
            Kind::Set {
                name: "timezone".into(),
                value: Some("UTC".into())
            }
        );
        assert_eq!(kind("SELECT pg_catalog.setval('s', 1), 2"), Kind::Other);
    }

    #[test]
    fn drops_are_what_clean_writes() {
        for sql in [
            "DROP TABLE IF EXISTS public.t",
            "ALTER TABLE IF EXISTS ONLY public.m_2024 DROP CONSTRAINT IF EXISTS m_2024_pkey",
            "ALTER TABLE public.t ALTER COLUMN id DROP DEFAULT",
            "DROP USER MAPPING IF EXISTS FOR u SERVER s",
        ] {
            assert_eq!(kind(sql), Kind::Drop, "{sql}");
        }
        for sql in [
            "ALTER TABLE public.t ALTER COLUMN id SET DEFAULT 1",
            "ALTER TABLE public.t ADD CONSTRAINT drop_me CHECK (a > 0)",
            "ALTER TABLE t DROP CONSTRAINT c, ADD COLUMN x int",
        ] {
            assert_eq!(kind(sql), Kind::Other, "{sql}");
        }
    }

    #[test]
    fn roles_extensions_and_schemas_come_from_the_tree() {
        let mut roles = Vec::new();
        let mut ext = Vec::new();
        let mut schemas = Vec::new();
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
            "SET ROLE none",
            "GRANT pg_read_all_data TO reader",
            "GRANT ALL ON TABLE public.\"to\" TO CURRENT_USER",
            "CREATE TABLE \"GRANT\" (\"to\" int)",
            "CREATE USER MAPPING FOR mapped SERVER s",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = 'fn_role' AS 'SELECT 1'",
        ] {
            let c = classify(sql, false);
            assert!(
                !matches!(c.kind, Kind::Unparsable(_)),
                "{sql}: {:?}",
                c.kind
            );
            roles.extend(c.roles);
            ext.extend(c.extensions);
            schemas.extend(c.schemas);
        }
        roles.sort();
        roles.dedup();
        assert_eq!(
            roles,
            [
                "Mixed Role",
                "anon",
                "authenticated",
                "dashboard_user",
                "fn_role",
                "mapped",
                "olduser",
                "pg_read_all_data",
                "policy_role",
                "postgres",
                "reader",
                "service_role",
                "supabase_admin",
                "supabase_auth_admin"
            ]
        );
        assert_eq!(ext, ["pg_graphql", "uuid-ossp"]);
        schemas.sort();
        schemas.dedup();
        assert_eq!(schemas, ["auth", "graphql", "public"]);
        assert_eq!(
            classify("CREATE SCHEMA auth AUTHORIZATION a", false).creates_schemas,
            ["auth"]
        );
        assert_eq!(
            classify("CREATE ROLE r NOLOGIN", false).creates_roles,
            ["r"]
        );
    }

    #[test]
    fn schemas_are_the_qualifiers_of_names_never_of_columns() {
        let schemas = |sql: &str| classify(sql, false).schemas;
        assert_eq!(
            schemas(
                "ALTER TABLE ONLY public.posts ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES auth.users(id)"
            ),
            ["auth", "public"]
        );
        assert_eq!(
            schemas("CREATE POLICY p ON app.t USING ((t.owner = auth.uid()))"),
            ["app", "auth"]
        );
        assert_eq!(
            schemas("CREATE TABLE s1.t (a s2.mood, b integer, c text COLLATE s3.\"de\")"),
            ["s1", "s2", "s3"]
        );
        assert_eq!(
            schemas("CREATE FUNCTION f1.g(x t.c%TYPE) RETURNS int LANGUAGE sql AS 'SELECT 1'"),
            ["f1"]
        );
        assert_eq!(
            schemas("CREATE VIEW v AS SELECT t.a, pg_catalog.now() FROM t"),
            Vec::<String>::new()
        );
        assert!(schemas("DROP TABLE IF EXISTS gone.t").is_empty());
        assert!(schemas("INSERT INTO x.t VALUES (1)").is_empty());
    }

    #[test]
    fn deep_expressions_are_read_far_past_prosts_limit_and_deeper_ones_are_refused_not_crashed() {
        // A view concatenating 900 columns nests 900 levels: prost's default limit refused 50.
        let kinds = on_parser_stack(|| {
            [50usize, 400, 900]
                .map(|n| {
                    let e = (0..n)
                        .map(|i| format!("c{i}"))
                        .collect::<Vec<_>>()
                        .join(" || ");
                    classify(
                        &format!("CREATE VIEW public.v AS SELECT {e} FROM public.t"),
                        false,
                    )
                })
                .map(|c| (c.kind, c.schemas))
        })
        .unwrap();
        for (kind, schemas) in kinds {
            assert_eq!(kind, Kind::Other);
            assert!(schemas.is_empty() || schemas == ["public"], "{schemas:?}");
        }
        // Far past what the server takes, the parser's own limit answers, not a crash.
        let deep = on_parser_stack(|| {
            let e = vec!["a"; 200_000].join(" || ");
            classify(&format!("SELECT {e}"), false).kind
        })
        .unwrap();
        assert!(
            matches!(&deep, Kind::Unparsable(m) if m.contains("stack depth")),
            "{deep:?}"
        );
    }

    #[test]
    fn text_whose_meaning_hangs_on_standard_conforming_strings_is_refused() {
        // With standard_conforming_strings off this is one SELECT; with it on, a SELECT, a
        // COMMIT and a comment.
        let hostile = "SELECT 'a\\'; COMMIT; --'";
        assert!(matches!(classify(hostile, true).kind, Kind::Escapes(_)));
        assert!(matches!(classify(hostile, false).kind, Kind::Escapes(_)));
        // Ordinary backslashes read the same either way.
        for sql in [
            "INSERT INTO t VALUES ('\\x0a00ff', E'tab\\there')",
            "SELECT 'a\\b'",
            "COPY t FROM stdin",
        ] {
            assert!(
                !matches!(classify(sql, false).kind, Kind::Escapes(_)),
                "{sql}"
            );
        }
        // E'…' strings a dump wrote with it off stay fine when read with it off.
        assert_eq!(classify("SELECT 'it\\'s'", true).kind, Kind::Other);
    }

    #[test]
    fn what_the_parser_refuses_is_said_and_backslash_strings_follow_the_setting() {
        assert!(
            matches!(kind("CREATE TABLE (("), Kind::Unparsable(m) if m.contains("syntax error"))
        );
        // With standard_conforming_strings off, `\'` does not end the string.
        assert!(matches!(classify("SELECT 'a\\'b'", true).kind, Kind::Other));
        assert!(matches!(
            classify("SELECT 'a\\'b'", false).kind,
            Kind::Unparsable(_)
        ));
    }

    #[test]
    fn plain_keys_split_into_their_index_and_a_constraint_made_from_it() {
        let split = |sql: &str| classify(sql, false).key_split;
        assert_eq!(
            split("ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id)"),
            Some(KeySplit {
                table: "\"public\".\"t\"".into(),
                index: "CREATE UNIQUE INDEX \"t_pkey\" ON \"public\".\"t\" USING btree (\"id\")".into(),
                constraint: "ALTER TABLE ONLY \"public\".\"t\" ADD CONSTRAINT \"t_pkey\" PRIMARY KEY USING INDEX \"t_pkey\"".into(),
            })
        );
        let odd = split(
            "ALTER TABLE ONLY \"Odd \"\"s\".\"T 1\" ADD CONSTRAINT \"k, \"\"x\" UNIQUE (a, \"B c\")",
        )
        .expect("split");
        assert_eq!(
            odd.index,
            "CREATE UNIQUE INDEX \"k, \"\"x\" ON \"Odd \"\"s\".\"T 1\" USING btree (\"a\", \"B c\")"
        );
        assert!(odd.constraint.ends_with("UNIQUE USING INDEX \"k, \"\"x\""));
        // Forms whose index CREATE UNIQUE INDEX would not make alike, or that are no key.
        for sql in [
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id) DEFERRABLE",
            "ALTER TABLE ONLY t ADD CONSTRAINT k UNIQUE (a) DEFERRABLE INITIALLY DEFERRED",
            "ALTER TABLE ONLY t ADD CONSTRAINT k UNIQUE NULLS NOT DISTINCT (a)",
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id) INCLUDE (b)",
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id) WITH (fillfactor = 70)",
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id) USING INDEX TABLESPACE ts",
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY USING INDEX i",
            "ALTER TABLE ONLY t ADD CONSTRAINT k EXCLUDE USING gist (r WITH &&)",
            "ALTER TABLE ONLY t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
            "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id), ADD CONSTRAINT u UNIQUE (a)",
            "ALTER FOREIGN TABLE t ADD CONSTRAINT k UNIQUE (a)",
            "CREATE UNIQUE INDEX k ON t (a)",
        ] {
            assert_eq!(split(sql), None, "{sql}");
        }
    }

    #[test]
    fn identifiers_are_quoted_only_where_they_must_be() {
        assert_eq!(display_ident("t"), "t");
        assert_eq!(display_ident("Mixed"), "\"Mixed\"");
        assert_eq!(display_ident("select"), "\"select\"");
        assert_eq!(display_ident("int"), "\"int\"");
        assert_eq!(display_ident("name"), "name");
        assert_eq!(display_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(display_ident("ünï"), "\"ünï\"");
        assert_eq!(display_ident("a$b"), "\"a$b\"");
    }
}
