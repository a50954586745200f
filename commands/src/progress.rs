//! Progress of long work, as lines the chat adapters render (the console prints them; Discord
//! edits its reply, at most once every two seconds).

/// Where long work stands, for adapters that draw it (a card with a bar); the others print
/// the line.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress<'a> {
    /// What the work is (`Restore of db/… into staging`).
    pub title: &'a str,
    /// The newest state, in one line (as [`ProgressSink::update`] gets it).
    pub line: &'a str,
    /// How far along, 0 to 1, when known.
    pub fraction: Option<f64>,
}

/// Receives progress lines while a command runs.
pub trait ProgressSink: Send + Sync {
    /// The newest state of the work, in one line.
    fn update(&self, line: &str);

    /// The same, with a title and how far along it is; by default just the line.
    fn progress(&self, p: &Progress<'_>) {
        self.update(p.line);
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
