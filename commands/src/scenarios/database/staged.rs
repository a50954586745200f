//! Staged restores (`[targets.NAME] staged = true`): the backup goes into a new database beside
//! the live one while the request waits for its approvals; the approval authorises only the
//! swap, by rename, in one transaction on the server; the database it replaced is kept as
//! `<name>_before_<tag>` for `/db rollback`.
//!
//! Everything drbot makes here carries a comment starting with [`MARK`], so it is known again
//! after a restart, and a database drbot did not make is never dropped.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::load::{Blocker, quote_ident};
use crate::error::CommandError;
use crate::pg::{Target, TargetError, pg_error};

/// How every comment drbot puts on a database it made starts.
pub const MARK: &str = "drbot:";

/// Why a step on a staged target's server did not happen; each message says what was left.
#[derive(Debug, thiserror::Error)]
pub enum StagedError {
    /// The target's URL is unusable, or its server cannot be reached.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The target's URL names no database.
    #[error("{0}'s URL names no database")]
    NoDatabase(String),
    /// The server's state does not allow it: a database that is not drbot's, sessions that
    /// would not end, no free name.
    #[error("{0}")]
    Refused(String),
    /// The server failed a statement: what was being done, and the server's message.
    #[error("{0}")]
    Server(String),
}

impl StagedError {
    fn server(e: tokio_postgres::Error) -> StagedError {
        StagedError::Server(pg_error(&e))
    }

    /// The same failure, with what it left said after it.
    fn and(self, left: String) -> StagedError {
        match self {
            StagedError::Refused(m) => StagedError::Refused(m + &left),
            other => StagedError::Server(format!("{other}{left}")),
        }
    }
}

impl From<StagedError> for CommandError {
    fn from(e: StagedError) -> Self {
        match e {
            StagedError::Target(t) => t.into(),
            StagedError::NoDatabase(_) | StagedError::Refused(_) => {
                CommandError::Refused(e.to_string())
            }
            StagedError::Server(m) => CommandError::Failed(m),
        }
    }
}

/// The longest name PostgreSQL keeps (it truncates longer ones).
const MAX_NAME: usize = 63;

/// How long the swap waits for the live database's sessions to end once told to.
const SESSIONS_GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// `base` cut (at a character boundary) so that `base` + `suffix` fits a database name.
fn fit(base: &str, suffix: &str) -> String {
    let room = MAX_NAME.saturating_sub(suffix.len());
    let mut end = base.len().min(room);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &base[..end])
}

/// The staging database's name for a restore into `live` asked at `now`.
pub fn staging_name(live: &str, now: DateTime<Utc>) -> String {
    fit(live, &format!("_staging_{}", now.format("%Y%m%d%H%M%S")))
}

/// The name the replaced database is kept under: `<live>_before_<tag>`.
pub fn kept_name(live: &str, tag: &str) -> String {
    fit(live, &format!("_before_{tag}"))
}

/// The live database's name: the URL's database (or, as libpq does, the user's name).
pub fn live_database(target: &Target) -> Result<String, StagedError> {
    let (config, _) = target.pg_config()?;
    config
        .get_dbname()
        .or(config.get_user())
        .map(str::to_string)
        .ok_or_else(|| StagedError::NoDatabase(target.name.clone()))
}

/// The same server, connected to a database other than `live` (one cannot rename the database
/// one is connected to): `postgres`, or `template1` when `live` is `postgres`.
pub fn server(target: &Target, live: &str) -> Target {
    let via = if live == "postgres" {
        "template1"
    } else {
        "postgres"
    };
    target.with_database(&target.name, via)
}

/// Why a staged target cannot be staged on its server, if it cannot: drbot must be able to
/// create databases and rename the live one (own it, or be a superuser), and the live one
/// must not be the server's main `postgres` database (Supabase's cannot be renamed: its
/// platform's services connect to it by that name).
pub async fn cannot_stage(target: &Target) -> Result<Option<String>, StagedError> {
    let live = live_database(target)?;
    if live == "postgres" {
        return Ok(Some(
            "its database is the server's main database `postgres`, which cannot be renamed (on Supabase the platform's services connect to it by name): restore it in place (staged = false), or stage on a server of your own"
                .to_string(),
        ));
    }
    // Through the server, not the database: a live database that is gone (dropped, lost) is
    // exactly what a staged restore can bring back.
    let client = connect(&server(target, &live)).await?;
    let row = client
        .query_one(
            "SELECT r.rolsuper, r.rolcreatedb, \
                    coalesce((SELECT pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER') \
                              FROM pg_catalog.pg_database d WHERE d.datname = $1), true) \
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[&live],
        )
        .await
        .map_err(StagedError::server)?;
    let (superuser, createdb, owner): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let mut lacks = Vec::new();
    if !superuser && !createdb {
        lacks.push("may not create databases (ALTER ROLE … CREATEDB)");
    }
    if !superuser && !owner {
        lacks.push("does not own the live database, so may not rename it");
    }
    Ok((!lacks.is_empty()).then(|| format!("its user {}", lacks.join(" and "))))
}

async fn connect(server: &Target) -> Result<Client, StagedError> {
    Ok(server.connect().await?)
}

use super::sql::quote_literal as literal;

/// A database setting as `ALTER DATABASE … SET` takes it: list settings (`search_path`) as
/// their quoted elements, as pg_dump writes them; the rest as one string.
fn setting_value(name: &str, value: &str) -> String {
    const LISTS: &[&str] = &[
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
    ];
    if !LISTS.contains(&name) {
        return literal(value);
    }
    let mut items = Vec::new();
    let mut item = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                item.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut item)),
            c if !quoted && c.is_whitespace() => {}
            c => item.push(c),
        }
    }
    items.push(item);
    items
        .iter()
        .map(|i| literal(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates `name` on the server beside `live`, as `live` was made: encoding and collation,
/// owner, database privileges and settings (a plain pg_dump carries none of them), marked with
/// `comment`. Fails with nothing left behind.
pub async fn create(
    server: &Target,
    live: &str,
    name: &str,
    comment: &str,
) -> Result<(), StagedError> {
    let client = connect(server).await?;
    let row = client
        .query_opt(
            "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate::text, datctype::text, \
                    pg_catalog.pg_get_userbyid(datdba)::text, datacl IS NOT NULL, oid \
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&live],
        )
        .await
        .map_err(StagedError::server)?;
    // The live database is gone: the new one is made as the server makes them.
    let Some(row) = row else {
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} WITH TEMPLATE template0",
                quote_ident(name)
            ))
            .await
            .map_err(|e| {
                StagedError::Server(format!("CREATE DATABASE {name} failed: {}", pg_error(&e)))
            })?;
        let commented = client
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                quote_ident(name),
                literal(comment)
            ))
            .await;
        if let Err(e) = commented {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))
                .await;
            return Err(StagedError::Server(format!(
                "marking {name} as drbot's failed: {}",
                pg_error(&e)
            )));
        }
        return Ok(());
    };
    let (encoding, collate, ctype, owner, has_acl): (String, String, String, String, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let oid: u32 = row.get(5);
    client
        .batch_execute(&format!(
            "CREATE DATABASE {} WITH TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            quote_ident(name),
            literal(&encoding),
            literal(&collate),
            literal(&ctype)
        ))
        .await
        .map_err(|e| {
            StagedError::Server(format!("CREATE DATABASE {name} failed: {}", pg_error(&e)))
        })?;
    let made = async {
        let db = quote_ident(name);
        let mut sql = format!("COMMENT ON DATABASE {db} IS {};", literal(comment));
        if has_acl {
            let _ = std::fmt::Write::write_fmt(
                &mut sql,
                format_args!("REVOKE ALL ON DATABASE {db} FROM PUBLIC;"),
            );
            let grants = client
                .query(
                    "SELECT a.privilege_type, \
                            CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END, \
                            a.is_grantable \
                     FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a \
                     WHERE d.datname = $1",
                    &[&live],
                )
                .await
                .map_err(StagedError::server)?;
            for g in grants {
                let (privilege, grantee, grantable): (String, String, bool) =
                    (g.get(0), g.get(1), g.get(2));
                let _ = std::fmt::Write::write_fmt(
                    &mut sql,
                    format_args!(
                        "GRANT {privilege} ON DATABASE {db} TO {grantee}{};",
                        if grantable { " WITH GRANT OPTION" } else { "" }
                    ),
                );
            }
        }
        let settings = client
            .query(
                "SELECT CASE WHEN s.setrole = 0 THEN '' \
                             ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(s.setrole)) END, \
                        c \
                 FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c \
                 WHERE s.setdatabase = $1",
                &[&oid],
            )
            .await
            .map_err(StagedError::server)?;
        for s in settings {
            let (role, setting): (String, String) = (s.get(0), s.get(1));
            let Some((k, v)) = setting.split_once('=') else {
                continue;
            };
            let value = setting_value(k, v);
            let _ = if role.is_empty() {
                std::fmt::Write::write_fmt(
                    &mut sql,
                    format_args!("ALTER DATABASE {db} SET {} = {value};", quote_ident(k)),
                )
            } else {
                std::fmt::Write::write_fmt(
                    &mut sql,
                    format_args!(
                        "ALTER ROLE {role} IN DATABASE {db} SET {} = {value};",
                        quote_ident(k)
                    ),
                )
            };
        }
        client
            .batch_execute(&sql)
            .await
            .map_err(StagedError::server)?;
        // The owner as the live one's, where drbot may give it (a member of that role).
        if let Err(e) = client
            .batch_execute(&format!("ALTER DATABASE {db} OWNER TO {}", quote_ident(&owner)))
            .await
        {
            tracing::info!(database = %name, error = %pg_error(&e), "the staging database keeps drbot's user as its owner");
        }
        Ok::<_, StagedError>(())
    }
    .await;
    if let Err(e) = made {
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))
            .await;
        return Err(StagedError::Server(format!(
            "setting up {name} like {live} failed: {e}"
        )));
    }
    Ok(())
}

/// A database drbot kept, as the server has it now.
#[derive(Clone, Debug)]
pub struct Made {
    /// Its name.
    pub name: String,
    /// Its comment (starts with [`MARK`]).
    pub comment: String,
    /// Its size in bytes.
    pub bytes: i64,
}

/// Whether the database `name` is on the server and drbot made it (its comment says so).
async fn is_made(client: &Client, name: &str) -> Result<bool, StagedError> {
    let row = client
        .query_opt(
            "SELECT coalesce(pg_catalog.shobj_description(oid, 'pg_database'), '') \
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(StagedError::server)?;
    Ok(row.is_some_and(|r| r.get::<_, String>(0).starts_with(MARK)))
}

/// The databases kept from before staged restores of `live` (and rollbacks), newest first.
pub async fn kept(server: &Target, live: &str) -> Result<Vec<(Made, DateTime<Utc>)>, StagedError> {
    let client = connect(server).await?;
    let rows = client
        .query(
            "SELECT datname::text, pg_catalog.shobj_description(oid, 'pg_database'), \
                    pg_catalog.pg_database_size(oid) \
             FROM pg_catalog.pg_database \
             WHERE starts_with(datname::text, $1) \
               AND starts_with(coalesce(pg_catalog.shobj_description(oid, 'pg_database'), ''), $2)",
            &[&kept_name(live, ""), &MARK],
        )
        .await
        .map_err(StagedError::server)?;
    let mut out: Vec<(Made, DateTime<Utc>)> = rows
        .iter()
        .filter_map(|r| {
            let m = Made {
                name: r.get(0),
                comment: r.get(1),
                bytes: r.get(2),
            };
            kept_at(&m.comment).map(|at| (m, at))
        })
        .collect();
    out.sort_by_key(|k| std::cmp::Reverse(k.1));
    Ok(out)
}

/// When a kept database was kept, from its comment (`… kept at <RFC 3339> …`).
fn kept_at(comment: &str) -> Option<DateTime<Utc>> {
    let rest = comment.split_once(" kept at ")?.1;
    let stamp = rest
        .split_whitespace()
        .next()?
        .trim_end_matches([';', ',', '.']);
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The comment on a database kept from before a swap that brought `incoming` in.
pub fn kept_comment(live: &str, why: &str, incoming: &str, at: DateTime<Utc>) -> String {
    format!(
        "{MARK} {live} as it was before {why} {}, kept at {} for /db rollback; dropped by retention",
        swapped_out_for(incoming),
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// How a kept database's comment names the database swapped in for it.
pub fn swapped_out_for(incoming: &str) -> String {
    format!("(swapped out for {incoming})")
}

/// The database kept when `incoming` was swapped in for `live`, if that swap happened: found by
/// its comment, when `incoming` is no longer on the server under its own name. Tells a swap
/// that finished (its transaction committed) from one that did not, after drbot stopped in it.
pub async fn kept_for(
    server: &Target,
    live: &str,
    incoming: &str,
) -> Result<Option<String>, StagedError> {
    if exists(server, incoming).await? {
        return Ok(None);
    }
    let mark = swapped_out_for(incoming);
    Ok(kept(server, live)
        .await?
        .into_iter()
        .find(|(m, _)| m.comment.contains(&mark))
        .map(|(m, _)| m.name))
}

/// Whether a database named `name` is on the server (drbot's or not).
pub async fn exists(server: &Target, name: &str) -> Result<bool, StagedError> {
    let client = connect(server).await?;
    exists_with(&client, name).await
}

async fn exists_with(client: &Client, name: &str) -> Result<bool, StagedError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(StagedError::server)?
        .is_some())
}

/// Drops a database drbot made (its comment says so); `Ok(false)` when it is not there. Never
/// ends sessions: a load still connected makes it fail, to be tried again later.
pub async fn drop_made(server: &Target, name: &str) -> Result<bool, StagedError> {
    let client = connect(server).await?;
    if !is_made(&client, name).await? {
        return Ok(false);
    }
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))
        .await
        .map_err(|e| {
            StagedError::Server(format!("DROP DATABASE {name} failed: {}", pg_error(&e)))
        })?;
    Ok(true)
}

/// What a swap did.
#[derive(Debug)]
pub struct Swapped {
    /// The sessions on the live database that were ended, as they were.
    pub ended: Vec<String>,
    /// How long the live database was out of service (connections refused).
    pub took: std::time::Duration,
    /// The replaced database was kept (false: there was no live database to replace).
    pub kept: bool,
}

/// Sessions connected to `database`, other than this one.
async fn sessions_on(client: &Client, database: &str) -> Result<Vec<Blocker>, StagedError> {
    let rows = client
        .query(
            "SELECT pid, coalesce(application_name, ''), coalesce(usename::text, ''), \
                    coalesce(state, ''), coalesce(query, '') \
             FROM pg_catalog.pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY pid",
            &[&database],
        )
        .await
        .map_err(StagedError::server)?;
    Ok(super::load::sessions(&rows))
}

/// The sessions connected to the target's live database, as lines.
pub async fn live_sessions(target: &Target) -> Result<Vec<String>, StagedError> {
    let live = live_database(target)?;
    let client = connect(&server(target, &live)).await?;
    Ok(sessions_on(&client, &live)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Swaps `incoming` in as `live`: new connections to `live` are refused, its sessions ended,
/// then in one transaction `live` is renamed `keep_as` (marked with `kept`) and `incoming`
/// renamed `live` (its mark removed: it is the live one now). On any failure the live
/// database is as it was and accepts connections again.
pub async fn swap(
    server: &Target,
    live: &str,
    incoming: &str,
    keep_as: &str,
    kept: &str,
) -> Result<Swapped, StagedError> {
    let client = connect(server).await?;
    if !is_made(&client, incoming).await? {
        return Err(StagedError::Refused(format!(
            "{incoming} is not on the server (or not drbot's): nothing to swap in"
        )));
    }
    let (l, i, k) = (
        quote_ident(live),
        quote_ident(incoming),
        quote_ident(keep_as),
    );
    let started = std::time::Instant::now();
    // No live database (it was lost): the incoming one takes its name, nothing to keep.
    if !exists_with(&client, live).await? {
        client
            .batch_execute(&format!(
                "BEGIN; ALTER DATABASE {i} RENAME TO {l}; COMMENT ON DATABASE {l} IS NULL; COMMIT"
            ))
            .await
            .map_err(|e| {
                StagedError::Server(format!(
                    "{}. Nothing was swapped: {live} is still missing",
                    pg_error(&e)
                ))
            })?;
        return Ok(Swapped {
            ended: Vec::new(),
            took: started.elapsed(),
            kept: false,
        });
    }
    client
        .batch_execute(&format!("ALTER DATABASE {l} WITH ALLOW_CONNECTIONS false"))
        .await
        .map_err(|e| {
            StagedError::Server(format!(
                "could not stop new connections to {live}: {}",
                pg_error(&e)
            ))
        })?;
    let swapped = async {
        let mut ended = Vec::new();
        loop {
            // Both databases: neither may be renamed with sessions on it.
            let mut on = Vec::new();
            for db in [live, incoming] {
                on.extend(sessions_on(&client, db).await?.into_iter().map(|s| (s, db)));
            }
            if on.is_empty() {
                break;
            }
            if started.elapsed() > SESSIONS_GONE_WITHIN {
                let names: Vec<String> = on.iter().map(|(s, db)| format!("{s} on {db}")).collect();
                return Err(StagedError::Refused(format!(
                    "these sessions did not end within {}s when told to: {}",
                    SESSIONS_GONE_WITHIN.as_secs(),
                    names.join("; ")
                )));
            }
            for (s, db) in &on {
                let text = format!("{s} on {db}");
                if !ended.contains(&text) {
                    ended.push(text);
                }
                client
                    .query("SELECT pg_catalog.pg_terminate_backend($1)", &[&s.pid])
                    .await
                    .map_err(|e| {
                        StagedError::Server(format!(
                            "could not end session {}: {}",
                            s.pid,
                            pg_error(&e)
                        ))
                    })?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        client
            .batch_execute(&format!(
                "BEGIN; \
                 ALTER DATABASE {l} RENAME TO {k}; \
                 ALTER DATABASE {i} RENAME TO {l}; \
                 COMMENT ON DATABASE {k} IS {}; \
                 COMMENT ON DATABASE {l} IS NULL; \
                 ALTER DATABASE {k} WITH ALLOW_CONNECTIONS true; \
                 COMMIT",
                literal(kept)
            ))
            .await
            .map_err(StagedError::server)?;
        Ok::<_, StagedError>(ended)
    }
    .await;
    match swapped {
        Ok(ended) => Ok(Swapped {
            ended,
            took: started.elapsed(),
            kept: true,
        }),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            let reopened = client
                .batch_execute(&format!("ALTER DATABASE {l} WITH ALLOW_CONNECTIONS true"))
                .await;
            Err(e.and(match reopened {
                Ok(()) => format!(
                    ". Nothing was swapped: {live} is as it was and accepts connections again"
                ),
                Err(r) => format!(
                    ". Nothing was swapped, but {live} still refuses new connections ({}): run ALTER DATABASE {l} WITH ALLOW_CONNECTIONS true",
                    pg_error(&r)
                ),
            }))
        }
    }
}

/// Lets connections in to `live` again (after a swap that was interrupted), if it refuses them.
pub async fn reopen(server: &Target, live: &str) -> Result<bool, StagedError> {
    let client = connect(server).await?;
    let row = client
        .query_opt(
            "SELECT datallowconn FROM pg_catalog.pg_database WHERE datname = $1",
            &[&live],
        )
        .await
        .map_err(StagedError::server)?;
    if row.is_none_or(|r| r.get::<_, bool>(0)) {
        return Ok(false);
    }
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            quote_ident(live)
        ))
        .await
        .map_err(StagedError::server)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_and_cut_at_characters() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(staging_name("app", now), "app_staging_20261207103005");
        assert_eq!(kept_name("app", "inc3"), "app_before_inc3");
        let long = "é".repeat(40);
        let n = staging_name(&long, now);
        assert!(n.len() <= MAX_NAME, "{n}");
        assert!(n.ends_with("_staging_20261207103005"));
        assert!(n.starts_with('é'));
    }

    #[test]
    fn list_settings_are_written_element_by_element() {
        assert_eq!(
            setting_value("search_path", "\"$user\", public, \"a,b\"\"c\""),
            "'$user', 'public', 'a,b\"c'"
        );
        assert_eq!(setting_value("work_mem", "64MB"), "'64MB'");
        assert_eq!(setting_value("app.x", "it's"), "'it''s'");
    }

    #[test]
    fn the_time_a_database_was_kept_is_read_back_from_its_comment() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            kept_at(&kept_comment("app", "restore of db/x", "app_staging_x", at)),
            Some(at)
        );
        assert_eq!(kept_at("drbot: nothing"), None);
    }
}
