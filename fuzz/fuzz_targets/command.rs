//! The command parser on any line: no panic; a line it accepts, written back canonically,
//! parses to the same command (what the approval gate stores and runs later).
#![no_main]

use drbot_commands::redact::Secrets;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Secrets::new([line.to_string()]).redact(line);
    let Ok(inv) = drbot_commands::commands().parse(line) else {
        return;
    };
    let canonical = inv.canonical();
    match drbot_commands::commands().parse(&canonical) {
        Ok(again) => assert_eq!(again, inv, "{line:?} → {canonical:?}"),
        Err(e) => panic!("{line:?} parsed, its canonical form {canonical:?} does not: {e}"),
    }
});
