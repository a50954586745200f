//! The config loader on any text: a clear error or a config, never a panic; an accepted
//! config's values are usable (bounds were checked at load).
#![no_main]

use std::path::Path;

use drbot_commands::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, Path::new("fuzz.toml")) {
        Ok(c) => {
            let _ = c.secret_envs();
            for s in [
                drbot_commands::runbook::Scenario::Database,
                drbot_commands::runbook::Scenario::Storage,
                drbot_commands::runbook::Scenario::Search,
                drbot_commands::runbook::Scenario::Full,
            ] {
                let mins = s.rto_mins(&c);
                let _ = chrono::Duration::try_minutes(mins as i64).expect("bounded at load");
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{e}"),
    }
});
