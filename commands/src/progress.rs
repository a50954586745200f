//! Progress of long work, as lines the chat adapters render (the console prints them; Discord
//! edits its reply, at most once every two seconds).

/// Where long work stands, for adapters that draw it (a card with a bar); the others print
/// the line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress<'a> {
    /// What the work is (`Restore of db/… into staging`).
    pub title: &'a str,
    /// The newest state, in one line (as [`ProgressSink::update`] gets it).
    pub line: &'a str,
    /// How far along, 0 to 1, when known.
    pub fraction: Option<f64>,
    /// Named facts for the card, in order: `Rate`, `ETA`, `Elapsed`, `Step`, `Running`…
    pub facts: Vec<(String, String)>,
}

/// `Rate`, `Elapsed` and `ETA` of work that has done `done` of `total` units in `elapsed`,
/// `unit` naming what is counted (`bytes` shows MiB/s, anything else `n <unit>/s`). No rate
/// before a second has passed or a unit is done; no ETA without a total.
pub fn pace(
    done: u64,
    total: Option<u64>,
    elapsed: std::time::Duration,
    unit: &str,
) -> Vec<(String, String)> {
    let secs = elapsed.as_secs_f64();
    let mut facts = Vec::new();
    let per_sec = (secs >= 1.0 && done > 0).then(|| done as f64 / secs);
    if let Some(r) = per_sec {
        let rate = if unit == "bytes" {
            format!("{}/s", crate::render::size(r as u64))
        } else {
            format!("{r:.1} {unit}/s")
        };
        facts.push(("Rate".to_string(), rate));
    }
    facts.push(("Elapsed".to_string(), crate::render::took(elapsed)));
    if let (Some(r), Some(total)) = (per_sec, total)
        && total > done
    {
        let left = ((total - done) as f64 / r).ceil() as i64;
        let left = left.max(1);
        let eta = if left < 60 {
            format!("{left} s")
        } else {
            crate::render::duration(chrono::Duration::seconds(left))
        };
        facts.push(("ETA".to_string(), format!("about {eta}")));
    }
    facts
}

/// Receives progress lines while a command runs.
pub trait ProgressSink: Send + Sync {
    /// The newest state of the work, in one line.
    fn update(&self, line: &str);

    /// The same, with a title and how far along it is; by default just the line.
    fn progress(&self, p: &Progress<'_>) {
        self.update(p.line);
    }

    /// An approval request was stored and may be decided now, while the command goes on (its
    /// preflight): `text` says so, with the request's id. By default just a line.
    fn requested(&self, id: &str, text: &str) {
        let _ = id;
        self.update(text);
    }
}

/// Passes on only the lines of another sink's progress: for work shown inside something else
/// (a staged restore's load, shown on its approval request as its preflight's newest line).
pub struct Lines<'a>(pub &'a dyn ProgressSink);

impl ProgressSink for Lines<'_> {
    fn update(&self, line: &str) {
        self.0.update(line);
    }
}

/// Discards progress (for `exec` scripts and tests that do not look).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _line: &str) {}
}

/// Collects progress lines (tests).
#[derive(Debug, Default)]
pub struct Collect(pub std::sync::Mutex<Vec<String>>);

impl ProgressSink for Collect {
    fn update(&self, line: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(line.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn get<'a>(facts: &'a [(String, String)], name: &str) -> Option<&'a str> {
        facts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn pace_gives_the_rate_and_what_is_left_at_that_rate() {
        // 30 MiB of 90 MiB in 10 s: 3 MiB/s, 20 s left.
        let f = pace(30 << 20, Some(90 << 20), Duration::from_secs(10), "bytes");
        assert_eq!(get(&f, "Rate"), Some("3.0 MiB/s"), "{f:?}");
        assert_eq!(get(&f, "ETA"), Some("about 20 s"), "{f:?}");
        assert_eq!(get(&f, "Elapsed"), Some("10.0 s"), "{f:?}");
        let f = pace(12, Some(48), Duration::from_secs(4), "objects");
        assert_eq!(get(&f, "Rate"), Some("3.0 objects/s"), "{f:?}");
        assert_eq!(get(&f, "ETA"), Some("about 12 s"), "{f:?}");
    }

    #[test]
    fn pace_claims_no_rate_it_has_not_measured() {
        // Nothing done yet, or under a second: no rate, no ETA.
        for (done, millis) in [(0, 30_000), (100, 500)] {
            let f = pace(done, Some(1000), Duration::from_millis(millis), "bytes");
            assert_eq!(get(&f, "ETA"), None, "{f:?}");
            assert_eq!(get(&f, "Rate"), None, "{f:?}");
        }
        // No total: a rate, no ETA; all done: no ETA.
        let f = pace(100, None, Duration::from_secs(10), "rows");
        assert!(
            get(&f, "Rate").is_some() && get(&f, "ETA").is_none(),
            "{f:?}"
        );
        let f = pace(100, Some(100), Duration::from_secs(10), "rows");
        assert_eq!(get(&f, "ETA"), None, "{f:?}");
    }
}
