//! What the benchmarks share: numbers from the environment, medians, and drbot run under
//! /usr/bin/time (seconds, peak RSS, reply).

use std::process::Command;
use std::time::Instant;

use crate::support::Drbot;

pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs drbot under /usr/bin/time; returns seconds, peak RSS in KiB and the reply.
pub fn drbot_timed(
    d: &Drbot,
    as_name: &str,
    line: &str,
    env: &[(&str, String)],
) -> (f64, u64, String) {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "maxrss=%M", env!("CARGO_BIN_EXE_drbot")])
        .arg("--config")
        .arg(d.config_path())
        .args(["exec", "--as", as_name, line]);
    for (k, v) in env {
        c.env(k, v);
    }
    let t = Instant::now();
    let out = c.output().expect("run drbot");
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // 0: done; 3: waiting for approval (the request half of a restore).
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{line}: {stdout}\n{stderr}"
    );
    let rss = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("maxrss="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (secs, rss, stdout)
}
