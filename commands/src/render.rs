//! Small formatting helpers shared by replies: durations, times, percentages.

use chrono::{DateTime, Duration, Utc};

/// A duration the way people say it: `45s`, `12m`, `1h05m`, `2d03h`.
pub fn duration(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{mins}m")
    } else if secs < 86_400 {
        format!("{hours}h{mins:02}m")
    } else {
        format!("{days}d{hours:02}h")
    }
}

/// How long work took: tenths of a second under a minute (`0.4 s`), else as [`duration`].
pub fn took(d: std::time::Duration) -> String {
    if d.as_secs() < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        duration(Duration::from_std(d).unwrap_or_default())
    }
}

/// A span between two times, as [`took`] says it (tenths of a second under a minute).
pub fn span(d: Duration) -> String {
    took(d.to_std().unwrap_or_default())
}

/// A time of day in UTC, with the date when it is not today.
pub fn time(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// A timestamp for timeline lines.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time to the minute, with the date, for reports: `2026-11-25 09:00 UTC`.
pub fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Text shortened to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Human size: `812 B`, `4.2 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The first `n` words of SQL for a message, stopping before any literal or `VALUES` (which
/// may hold row data), at most `max` characters.
pub fn words_before_data(sql: &str, n: usize, max: usize) -> String {
    let mut out = Vec::new();
    for w in sql.split_whitespace().take(n) {
        if w.contains('\'') || w.contains('$') || w.eq_ignore_ascii_case("values") {
            out.push("…");
            break;
        }
        out.push(w);
    }
    truncate(&out.join(" "), max)
}

/// The last `n` non-empty lines of a tool's error output, joined for one message.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// The message a caught panic carried.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Whether an objective was met: `met, 5m to spare` or `missed by 12m`.
pub fn verdict(target: Duration, achieved: Duration) -> String {
    if achieved <= target {
        format!("met, {} to spare", duration(target - achieved))
    } else {
        format!("missed by {}", duration(achieved - target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(duration(Duration::seconds(45)), "45s");
        assert_eq!(duration(Duration::seconds(12 * 60 + 5)), "12m");
        assert_eq!(duration(Duration::seconds(3600 + 5 * 60)), "1h05m");
        assert_eq!(duration(Duration::hours(51)), "2d03h");
        assert_eq!(duration(Duration::seconds(-5)), "0s");
    }

    #[test]
    fn times_show_the_date_only_when_needed() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 25, 18, 0, 0)
            .single()
            .expect("test setup");
        assert_eq!(time(now - Duration::hours(1), now), "17:00 UTC");
        assert_eq!(time(now - Duration::days(1), now), "2026-11-24 18:00 UTC");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
