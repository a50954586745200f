//! Real databases nobody here wrote (`../shared/corpus`, its README says what each needs):
//! every file is loaded with psql, backed up exactly as the runbook does
//! (`pg_dump --clean --if-exists | xz | age`, and `pg_dump -Fc`), and restored by drbot
//! (a) into an empty database and (b) over a populated copy that moved on since the backup
//! (rows deleted, changed and added); the target's pg_dump must equal the source's. The file
//! itself, as the plain SQL it is, restores too. Adding a file to the corpus adds a case.
//!
//! Also here: drbot's statement boundaries agree with PostgreSQL's own
//! (`pg_query::split_with_parser`) on every corpus file and on pg_dump's output of each.

use std::path::{Path, PathBuf};

use drbot_commands::Outcome;
use drbot_commands::scenarios::database::splitter::{Piece, Splitter};

use crate::database::{Setup, setup};
use crate::support::{PG, assert_same_dump, sh};

/// The corpus folder: `DRBOT_CORPUS`, else `shared/corpus` beside the checkout.
fn corpus_dir() -> PathBuf {
    std::env::var_os("DRBOT_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        PathBuf::from,
    )
}

/// Every SQL file of the corpus (`.sql`, `.sql.xz`), sorted.
fn corpus() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus at {} cannot be read: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".sql") || n.ends_with(".sql.xz")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .sql or .sql.xz files in {}",
        dir.display()
    );
    files
}

/// A shell command that prints the corpus file's SQL.
fn cat(file: &Path) -> String {
    if file.to_string_lossy().ends_with(".xz") {
        format!("xz -dc '{}'", file.display())
    } else {
        format!("cat '{}'", file.display())
    }
}

/// Rows deleted, changed and added in every table that holds data and is not an extension's
/// (triggers and foreign keys off, as an application that moved on would not be bound by a
/// restore's order); prints how many of each.
const MOVE_ON: &str = r#"
SET session_replication_role = replica;
DO $move$
DECLARE
  r record; col text; key text; keytype text; cols text; vals text;
  deleted int := 0; changed int := 0; added int := 0; n int;
BEGIN
  FOR r IN
    SELECT c.oid, c.oid::regclass AS t FROM pg_class c
    JOIN pg_namespace s ON s.oid = c.relnamespace
    WHERE c.relkind = 'r' AND s.nspname NOT IN ('pg_catalog', 'information_schema')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 3) x', r.t) INTO n;
    CONTINUE WHEN n < 3;
    -- Deleted: the first row.
    BEGIN
      EXECUTE format('DELETE FROM %s WHERE ctid = (SELECT min(ctid) FROM %s)', r.t, r.t);
      deleted := deleted + 1;
    EXCEPTION WHEN others THEN NULL; END;
    -- Changed: a text column of the next row, outside any unique index.
    SELECT a.attname INTO col FROM pg_attribute a
    WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)
      AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = r.oid AND i.indisunique
                      AND a.attnum = ANY (i.indkey))
    ORDER BY a.attnum LIMIT 1;
    IF col IS NOT NULL THEN
      BEGIN
        EXECUTE format('UPDATE %s SET %I = coalesce(%I, '''') || '' (moved on)'' WHERE ctid = (SELECT min(ctid) FROM %s)',
                       r.t, col, col, r.t);
        changed := changed + 1;
      EXCEPTION WHEN others THEN NULL; END;
    END IF;
    -- Added: a copy of a row with a new value in its one-column key (or none needed).
    SELECT a.attname, a.atttypid::regtype::text INTO key, keytype FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = r.oid AND i.indisprimary AND i.indnatts = 1;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg(CASE WHEN a.attname = key THEN
                        CASE WHEN keytype IN ('integer', 'bigint', 'smallint')
                             THEN format('(SELECT max(%I) + 1000 FROM %s)', key, r.t)
                             ELSE format('%I || ''-new''', key) END
                      ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum)
      INTO cols, vals
    FROM pg_attribute a
    WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    BEGIN
      EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s LIMIT 1',
                     r.t, cols, vals, r.t);
      added := added + 1;
    EXCEPTION WHEN others THEN NULL; END;
  END LOOP;
  RAISE NOTICE 'moved on: % deleted % changed % added', deleted, changed, added;
END
$move$;
"#;

/// What each way of backing up a source is called and how it is made.
fn backups(s: &Setup, file: &Path) -> Vec<(&'static str, String, String)> {
    let src = s.source.url();
    vec![
        (
            "runbook (pg_dump --clean --if-exists | xz | age)",
            "2026-12-01T00-00-00Z.sql.xz.age".to_string(),
            format!(
                "pg_dump --clean --if-exists '{src}' | xz | age -r {}",
                s.key.recipient
            ),
        ),
        (
            "custom format (pg_dump -Fc)",
            "2026-12-01T01-00-00Z.dump".to_string(),
            format!("pg_dump -Fc '{src}'"),
        ),
        (
            "the corpus file itself (plain SQL, xz)",
            "2026-12-01T02-00-00Z.sql.xz".to_string(),
            format!("{} | xz", cat(file)),
        ),
    ]
}

/// One corpus file through every backup form, into an empty target and over a populated one.
/// Returns what went wrong, if anything.
async fn round_trip(file: &Path) -> Vec<String> {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let s = setup().await;
    sh(&format!(
        "{} | psql -X -q -v ON_ERROR_STOP=1 '{}' -f - > /dev/null",
        cat(file),
        s.source.url()
    ));
    let source_dump = s.source.dump();
    let mut problems = Vec::new();
    for (how, object, script) in backups(&s, file) {
        let key = s.upload(&object, &script).await;
        for populated in [false, true] {
            let case = format!(
                "{name}, {how}, into {}",
                if populated {
                    "a populated copy that moved on"
                } else {
                    "an empty database"
                }
            );
            // The corpus file is not a --clean dump: it restores into an empty database only.
            if populated && how.starts_with("the corpus file") {
                continue;
            }
            if populated {
                sh(&format!(
                    "psql -X -q '{PG}/postgres' -c 'DROP DATABASE \"{t}\" WITH (FORCE)' -c 'CREATE DATABASE \"{t}\" TEMPLATE \"{src}\"'",
                    t = s.target.name,
                    src = s.source.name
                ));
                let moved = sh(&format!(
                    "psql -X -q -v ON_ERROR_STOP=1 '{}' 2>&1 <<'EOF'\n{MOVE_ON}\nEOF",
                    s.target.url()
                ));
                assert!(moved.contains("moved on: "), "{case}: {moved}");
                if !moved.contains("moved on: 0 deleted 0 changed 0 added") {
                    assert_ne!(
                        s.target.dump(),
                        source_dump,
                        "{case}: the target did not move on"
                    );
                }
            } else {
                s.target.recreate();
            }
            let r = s
                .approved(&format!("/db restore backup:{key} target:staging"))
                .await;
            if r.outcome != Outcome::Done {
                problems.push(format!("{case}: {:?}\n{}", r.outcome, r.text));
                continue;
            }
            // Asked and approved in one process: what was restored is what the preflight
            // decoded and kept, not a second download.
            if !r.text.contains("restored from the preflight's local copy") {
                problems.push(format!(
                    "{case}: not restored from the preflight's copy\n{}",
                    r.text
                ));
            }
            let got = s.target.dump();
            if got != source_dump {
                let r = std::panic::catch_unwind(|| assert_same_dump(&source_dump, &got, &case));
                if let Err(e) = r {
                    problems.push(drbot_commands::render::panic_text(e.as_ref()));
                }
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_database_restores_identical_from_every_backup_form() {
    let mut problems = Vec::new();
    for file in corpus() {
        problems.extend(round_trip(&file).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A staged restore of every corpus file, in every backup form: loaded beside the live
/// database by parallel sessions, swapped in, identical to the source (each table's rows in
/// whatever order the sessions wrote them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_database_restores_identical_staged() {
    let mut problems = Vec::new();
    for file in corpus() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let s = crate::database::setup_with(crate::staged::staged).await;
        let _beside = crate::staged::Beside(s.target.name.clone());
        sh(&format!(
            "{} | psql -X -q -v ON_ERROR_STOP=1 '{}' -f - > /dev/null",
            cat(&file),
            s.source.url()
        ));
        let source_dump = s.source.dump();
        for (how, object, script) in backups(&s, &file) {
            let key = s.upload(&object, &script).await;
            let case = format!("{name}, {how}, staged");
            let r = s
                .approved(&format!("/db restore backup:{key} target:staging"))
                .await;
            if r.outcome != Outcome::Done || !r.text.contains("Swapped in") {
                problems.push(format!("{case}: {:?}\n{}", r.outcome, r.text));
                continue;
            }
            let got = s.target.dump();
            let r = std::panic::catch_unwind(|| {
                crate::staged::assert_same_rows(&source_dump, &got, &case)
            });
            if let Err(e) = r {
                problems.push(drbot_commands::render::panic_text(e.as_ref()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The statements drbot's splitter finds, as token lists (comments and spacing aside).
fn splitter_statements(sql: &str) -> Vec<Vec<String>> {
    let mut splitter = Splitter::new();
    let mut pieces = Vec::new();
    splitter.feed(sql.as_bytes(), &mut pieces).unwrap();
    splitter.finish(&mut pieces).unwrap();
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Statement(s) => Some(tokens(&s.sql)),
            Piece::CopyStart { statement, .. } => Some(tokens(&statement.sql)),
            _ => None,
        })
        .collect()
}

/// PostgreSQL's own statements in `sql` (psql meta-lines blanked first), as token lists.
fn server_statements(sql: &str) -> Vec<Vec<String>> {
    let blanked: String = sql
        .lines()
        .map(|l| if l.starts_with('\\') { "" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    pg_query::split_with_parser(&blanked)
        .unwrap()
        .into_iter()
        .map(tokens)
        .filter(|t| !t.is_empty())
        .collect()
}

/// The statement's tokens as PostgreSQL's scanner reads them, without comments.
fn tokens(sql: &str) -> Vec<String> {
    let scanned = pg_query::scan(sql).unwrap();
    scanned
        .tokens
        .iter()
        .filter(|t| {
            !matches!(
                pg_query::protobuf::Token::try_from(t.token),
                Ok(pg_query::protobuf::Token::SqlComment | pg_query::protobuf::Token::CComment)
            )
        })
        .map(|t| sql[t.start as usize..t.end as usize].to_string())
        .filter(|t| t != ";")
        .collect()
}

fn assert_same_statements(what: &str, sql: &str) {
    let ours = splitter_statements(sql);
    let server = server_statements(sql);
    let first_difference = ours.iter().zip(&server).position(|(a, b)| a != b);
    assert!(
        ours.len() == server.len() && first_difference.is_none(),
        "{what}: drbot found {} statements, PostgreSQL {}; first difference at statement {:?}:\n{:?}\n{:?}",
        ours.len(),
        server.len(),
        first_difference,
        first_difference.map(|i| ours[i].join(" ")),
        first_difference.map(|i| server[i].join(" "))
    );
}

#[test]
fn statement_boundaries_agree_with_postgresqls_parser_on_every_corpus_file() {
    let db = crate::support::TestDb::new("drbot_bounds_");
    for file in corpus() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let sql = sh(&cat(&file));
        assert_same_statements(&name, &sql);
        // pg_dump's own writing of it, as INSERTs (COPY data is psql's, not the grammar's).
        db.recreate();
        sh(&format!(
            "{} | psql -X -q -v ON_ERROR_STOP=1 '{}' -f - > /dev/null",
            cat(&file),
            db.url()
        ));
        let dumped = sh(&format!(
            "pg_dump --clean --if-exists --inserts '{}'",
            db.url()
        ));
        assert_same_statements(&format!("pg_dump --inserts of {name}"), &dumped);
    }
}
