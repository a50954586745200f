//! Layer detection and decoding (age binary or armored, xz, custom format, plain SQL) on any
//! bytes: every input ends in a clean error or a complete split, never a panic.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use drbot_commands::scenarios::database::pipeline::{Counters, Identities, Msg, decode_blocking};
use libfuzzer_sys::fuzz_target;

/// A key for fuzzing only (its public key is in fuzz/README.md, for making seeds).
const FUZZ_KEY: &str =
    "AGE-SECRET-KEY-1LQHSQ734D0XVUGHJSYYCF0DDH5DU7YWTAX8T6P4GZQSY3ERQXFNQZ3VXT2\n";

fn identities() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("drbot-fuzz-{}.agekey", std::process::id()));
        std::fs::write(&path, FUZZ_KEY).expect("write the fuzz key");
        Identities::load(&path).expect("the fuzz key loads")
    })
}

fuzz_target!(|data: &[u8]| {
    // decode_blocking parses statements with PostgreSQL's grammar: on the decode thread's stack.
    let data = data.to_vec();
    drbot_commands::scenarios::database::sql::on_parser_stack(move || check(data))
        .expect("the parser thread");
});

fn check(data: Vec<u8>) {
    let counters = Counters::default();
    let mut complete = false;
    let r = decode_blocking(
        Box::new(Cursor::new(data)),
        identities(),
        &counters,
        &mut |m| {
            complete |= matches!(m, Msg::Complete);
            true
        },
    );
    assert!(
        r.is_ok() == complete,
        "Ok without Complete, or Complete with an error"
    );
}
