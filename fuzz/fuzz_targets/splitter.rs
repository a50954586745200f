//! The SQL splitter and the restore's statement rules on any bytes, in any chunking: no panic,
//! and the chunking never changes the result.
#![no_main]

use drbot_commands::scenarios::database::script::{Needs, Policy};
use drbot_commands::scenarios::database::splitter::{Piece, Splitter};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8], chunk: usize) -> Result<Vec<Piece>, String> {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        s.feed(c, &mut out).map_err(|e| e.to_string())?;
    }
    s.finish(&mut out).map_err(|e| e.to_string())?;
    // COPY data may be handed on in other pieces; join them to compare.
    let mut merged: Vec<Piece> = Vec::new();
    for p in out {
        match (merged.last_mut(), p) {
            (Some(Piece::CopyData(a)), Piece::CopyData(b)) => a.extend_from_slice(&b),
            (_, p) => merged.push(p),
        }
    }
    Ok(merged)
}

fuzz_target!(|data: &[u8]| {
    // Statements are parsed by PostgreSQL's grammar, which wants the decode thread's stack.
    let data = data.to_vec();
    drbot_commands::scenarios::database::sql::on_parser_stack(move || check(&data))
        .expect("the parser thread");
});

fn check(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let whole = split(rest, rest.len());
    let chunked = split(rest, usize::from(k % 64) + 1);
    assert_eq!(whole, chunked, "chunking changed the split");
    let Ok(pieces) = whole else { return };
    let mut policy = Policy::new(Some("app".to_string()));
    let mut needs = Needs::default();
    for p in &pieces {
        match p {
            Piece::Statement(s) | Piece::CopyStart { statement: s, .. } => {
                let _ = policy.statement(s);
                needs.add(&s.class);
                let _ = s.head();
            }
            Piece::Meta {
                command,
                argument,
                line,
            } => {
                let _ = policy.meta(command, argument, *line);
            }
            Piece::CopyData(_) | Piece::CopyEnd { .. } => {}
        }
    }
    let _ = policy.finish();
}
