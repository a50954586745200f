//! Property tests for the class of databases, not the corpus's examples (issue 24): generated
//! schemas with 1 to 1600 columns, identifiers that are keywords, quoted, 63 bytes long,
//! non-ASCII or hold `"`, spaces, `$`, `;`, `--` and backslashes; every table and data shape
//! pg_dump writes (COPY with and without column lists, `--inserts`, `--column-inserts`,
//! `--rows-per-insert`, custom format, `--clean --if-exists`, large objects, generated and
//! identity columns, partitions with a default, inheritance, an unpopulated materialized
//! view), each restored by drbot's decoder and loader into an empty database and compared with
//! its source by pg_dump.

use std::fmt::Write;
use std::io;
use std::sync::Arc;

use drbot_commands::pg::Target;
use drbot_commands::scenarios::database::load::{self, LoadOptions};
use drbot_commands::scenarios::database::pipeline::{self, Counters, Identities};
use proptest::prelude::*;

use crate::support::{TestDb, assert_same_dump};

/// Identifiers that break hand-written readers of SQL.
const ODD: &[&str] = &[
    "select",
    "from",
    "user",
    "to",
    "stdin",
    "copy",
    "order",
    "Mixed Case",
    "with \"quote\"",
    "semi;colon",
    "dash--dash",
    "slash/*star",
    "back\\slash",
    "dollar$sign",
    "$$",
    "ünïcødé",
    "表名",
    "emoji🚀",
    "a123456789b123456789c123456789d123456789e123456789f123456789g12",
];

/// `name` with `suffix`, within PostgreSQL's 63 bytes (cut at a character boundary), so
/// derived names never collide by being truncated to the same prefix.
fn derived(name: &str, suffix: &str) -> String {
    let mut base = name.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

/// An identifier, quoted as it must be.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal.
fn lit(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Text values COPY and INSERT must carry unchanged.
const TEXTS: &[&str] = &[
    "",
    "plain",
    "tab\there",
    "new\nline",
    "cr\r\nlf",
    "\\.",
    "\\.\n\\.",
    "back\\slash",
    "it's",
    "-- not a comment; /* nor this */",
    "$$dollar$$",
    "ünïcødé 🚀",
    "\\N",
];

/// The shape of one generated table.
#[derive(Clone, Debug)]
struct Table {
    name: String,
    columns: usize,
    /// Which of a column's types: int, text, bytea, jsonb, numeric, bool, text[].
    types: Vec<u8>,
    rows: usize,
    seed: usize,
    shape: Shape,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Plain,
    Generated,
    Identity,
    Partitioned,
    Inherited,
}

const TYPES: &[&str] = &["int", "text", "bytea", "jsonb", "numeric", "bool", "text[]"];

fn value(ty: u8, seed: usize) -> String {
    let text = TEXTS[seed % TEXTS.len()];
    if seed % 11 == 3 {
        return "NULL".to_string();
    }
    match TYPES[usize::from(ty) % TYPES.len()] {
        "int" => format!("{}", (seed as i64 * 7919) % 100_000 - 50_000),
        "text" => format!("E{}", lit(&text.replace('\\', "\\\\"))),
        "bytea" => format!("'\\x{:02x}00ff'::bytea", seed % 256),
        "jsonb" => format!(
            "{}::jsonb",
            lit(&format!("{{\"k\": {}}}", serde_json(text)))
        ),
        "numeric" => format!("{}.{}", seed, seed % 97),
        "bool" => seed.is_multiple_of(2).to_string(),
        _ => format!("ARRAY[{}, NULL]::text[]", lit(text)),
    }
}

/// A JSON string literal of `s`.
fn serde_json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Table {
    /// Its own columns: with drbot's `id` (and `twice`, or the child's `extra`), at most 1600.
    fn width(&self) -> usize {
        let extra = match self.shape {
            Shape::Generated | Shape::Inherited => 2,
            _ => 1,
        };
        self.columns.min(1600 - extra)
    }

    fn column(&self, i: usize) -> String {
        // Odd names for the first columns, numbered ones after (names must be unique).
        match ODD.get(i) {
            Some(n) if i < 6 || self.width() < 40 => n.to_string(),
            _ => format!("c{i}"),
        }
    }

    fn ty(&self, i: usize) -> &'static str {
        // Wide tables stay within a row's 8 kB: ints, and a short text every 50 columns.
        let t = self.types[i % self.types.len()];
        if self.width() > 200 {
            if i.is_multiple_of(50) { "text" } else { "int" }
        } else {
            TYPES[usize::from(t) % TYPES.len()]
        }
    }

    fn ddl(&self) -> String {
        let t = q(&self.name);
        let mut cols: Vec<String> = (0..self.width())
            .map(|i| format!("{} {}", q(&self.column(i)), self.ty(i)))
            .collect();
        let mut sql = String::new();
        match self.shape {
            Shape::Generated => {
                cols.push("id int NOT NULL".into());
                cols.push("twice int GENERATED ALWAYS AS (id * 2) STORED".into());
            }
            Shape::Identity | Shape::Partitioned | Shape::Inherited => {
                cols.push(if matches!(self.shape, Shape::Identity) {
                    "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY".into()
                } else {
                    "id int NOT NULL".into()
                });
            }
            Shape::Plain => cols.push("id int NOT NULL".into()),
        }
        let _ = write!(sql, "CREATE TABLE {t} ({})", cols.join(", "));
        if matches!(self.shape, Shape::Partitioned) {
            let _ = writeln!(sql, " PARTITION BY RANGE (id);");
            let _ = writeln!(
                sql,
                "CREATE TABLE {} PARTITION OF {t} FOR VALUES FROM (0) TO (2);",
                q(&derived(&self.name, "_low"))
            );
            let _ = writeln!(
                sql,
                "CREATE TABLE {} PARTITION OF {t} DEFAULT;",
                q(&derived(&self.name, "_rest"))
            );
            let _ = writeln!(sql, "ALTER TABLE {t} ADD PRIMARY KEY (id);");
        } else {
            let _ = writeln!(sql, ";");
        }
        if matches!(self.shape, Shape::Inherited) {
            let _ = writeln!(
                sql,
                "CREATE TABLE {} (extra text) INHERITS ({t});",
                q(&derived(&self.name, "_child"))
            );
        }
        sql
    }

    fn data(&self) -> String {
        let t = q(&self.name);
        let mut sql = String::new();
        for r in 0..self.rows {
            let seed = self.seed + r * 31;
            let mut names: Vec<String> = (0..self.width()).map(|i| q(&self.column(i))).collect();
            let mut values: Vec<String> = (0..self.width())
                .map(|i| {
                    let ty = TYPES.iter().position(|x| *x == self.ty(i)).unwrap_or(0) as u8;
                    value(ty, seed + i)
                })
                .collect();
            if !matches!(self.shape, Shape::Identity) {
                names.push("id".into());
                values.push(r.to_string());
            }
            let _ = writeln!(
                sql,
                "INSERT INTO {t} ({}) VALUES ({});",
                names.join(", "),
                values.join(", ")
            );
            if matches!(self.shape, Shape::Inherited) {
                names.push("extra".into());
                values.push(lit(TEXTS[seed % TEXTS.len()]));
                let _ = writeln!(
                    sql,
                    "INSERT INTO {} ({}) VALUES ({});",
                    q(&derived(&self.name, "_child")),
                    names.join(", "),
                    values.join(", ")
                );
            }
        }
        sql
    }
}

fn table() -> impl Strategy<Value = Table> {
    (
        prop::sample::select(ODD),
        prop_oneof![Just(1usize), 2usize..24, Just(100usize), Just(1600usize)],
        prop::collection::vec(0u8..7, 1..8),
        0usize..6,
        0usize..1000,
        prop_oneof![
            Just(Shape::Plain),
            Just(Shape::Generated),
            Just(Shape::Identity),
            Just(Shape::Partitioned),
            Just(Shape::Inherited),
        ],
    )
        .prop_map(|(name, columns, types, rows, seed, shape)| Table {
            name: name.to_string(),
            columns,
            types,
            rows,
            seed,
            shape,
        })
}

/// A whole schema: tables (names made unique), a view and an unpopulated materialized view
/// over the first, and large objects.
fn schema(tables: &[Table], large_objects: usize) -> String {
    let mut sql = String::new();
    for (i, t) in tables.iter().enumerate() {
        let mut t = t.clone();
        if i > 0 {
            // A prefix, which truncation to 63 bytes never takes off.
            t.name = derived(&format!("{i}{}", t.name), "");
        }
        sql.push_str(&t.ddl());
        sql.push_str(&t.data());
        if i == 0 {
            let _ = writeln!(
                sql,
                "CREATE MATERIALIZED VIEW {} AS SELECT count(*) AS n FROM {} WITH NO DATA;",
                q(&derived(&t.name, " mv")),
                q(&t.name)
            );
        }
    }
    for i in 0..large_objects {
        let _ = writeln!(
            sql,
            "SELECT lo_from_bytea(0, convert_to({}, 'UTF8'));",
            lit(&TEXTS[i % TEXTS.len()].repeat(i * 500 + 1))
        );
    }
    sql
}

/// How pg_dump is asked to write the backup.
const FORMS: &[&str] = &[
    "",
    WITHOUT_COLUMN_LISTS,
    "--clean --if-exists",
    "--inserts",
    "--column-inserts",
    "--rows-per-insert=3",
    "-Fc",
];

/// Not a pg_dump option: its plain output with `COPY t (a, b) FROM stdin;` written
/// `COPY t FROM stdin;`, as hand-made dumps and other tools write it.
const WITHOUT_COLUMN_LISTS: &str = "(COPY without column lists)";

/// `COPY t (a, b) FROM stdin;` lines written without their column lists (the generated names
/// hold no ` (`).
fn without_column_lists(dump: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(dump.to_vec()).expect("a UTF-8 dump");
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        match (line.strip_prefix("COPY "), line.find(" (")) {
            (Some(_), Some(at)) if line.ends_with(") FROM stdin;\n") => {
                out.push_str(&line[..at]);
                out.push_str(" FROM stdin;\n");
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// drbot's decoder and loader on `bytes` into `db`, as a restore does after its approval.
fn restore(rt: &tokio::runtime::Runtime, db: &TestDb, bytes: Vec<u8>) -> Result<(), String> {
    rt.block_on(async {
        let target = Target::new("t", db.url());
        let client = target.connect().await.map_err(|e| e.to_string())?;
        let counters = Arc::new(Counters::default());
        let rx = pipeline::decode(
            Box::new(io::Cursor::new(bytes)),
            Arc::new(Identities::none()),
            counters.clone(),
        );
        load::load(&client, &target, rx, &counters, &LoadOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

fn dump_bytes(db: &TestDb, form: &str) -> Vec<u8> {
    if form == WITHOUT_COLUMN_LISTS {
        return without_column_lists(&dump_bytes(db, ""));
    }
    let out = std::process::Command::new("pg_dump")
        .args(form.split_whitespace())
        .arg(format!("{}/{}", crate::support::PG, db.name))
        .output()
        .expect("pg_dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds the schema in a source, then restores every form of its backup and compares.
fn round_trip(rt: &tokio::runtime::Runtime, sql: &str) -> Result<(), TestCaseError> {
    let source = TestDb::new("drbot_gen_src_");
    source.psql(sql);
    let expected = source.dump();
    let target = TestDb::new("drbot_gen_tgt_");
    for form in FORMS {
        target.recreate();
        let bytes = dump_bytes(&source, form);
        restore(rt, &target, bytes)
            .map_err(|e| TestCaseError::fail(format!("pg_dump {form}: {e}")))?;
        let got = target.dump();
        if got != expected {
            let shown = std::panic::catch_unwind(|| {
                assert_same_dump(&expected, &got, &format!("pg_dump {form}"))
            });
            let msg = shown
                .err()
                .map(|e| drbot_commands::render::panic_text(e.as_ref()))
                .unwrap_or_default();
            return Err(TestCaseError::fail(msg));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 8, ..ProptestConfig::default() })]

    #[test]
    fn generated_schemas_restore_identical_in_every_form_pg_dump_writes(
        tables in prop::collection::vec(table(), 1..4),
        large_objects in 0usize..3,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        round_trip(&rt, &schema(&tables, large_objects))?;
    }
}

/// The edges the generator reaches only by chance, every run: PostgreSQL's most columns
/// (1600), each odd identifier as a table of its own, every shape.
#[test]
fn the_widest_table_and_every_odd_name_restore_identical() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shapes = [
        Shape::Plain,
        Shape::Generated,
        Shape::Identity,
        Shape::Partitioned,
        Shape::Inherited,
    ];
    let mut tables = vec![Table {
        name: "widest".into(),
        columns: 1600,
        types: vec![0, 1],
        rows: 3,
        seed: 1,
        shape: Shape::Plain,
    }];
    for (i, name) in ODD.iter().enumerate() {
        tables.push(Table {
            name: name.to_string(),
            columns: 1 + i % 12,
            types: vec![(i % 7) as u8, ((i + 3) % 7) as u8],
            rows: 3,
            seed: i * 13,
            shape: shapes[i % shapes.len()],
        });
    }
    // Names must not collide with the generated partitions' and children's.
    let sql = schema(&tables, 2);
    round_trip(&rt, &sql).unwrap();
}

#[test]
fn copy_column_lists_are_taken_off_as_the_form_says() {
    assert_eq!(
        without_column_lists(
            b"COPY public.\"Mixed Case\" (a, \"b c\") FROM stdin;\n1\t2\n\\.\nSELECT 1;\n"
        ),
        b"COPY public.\"Mixed Case\" FROM stdin;\n1\t2\n\\.\nSELECT 1;\n".to_vec()
    );
}
