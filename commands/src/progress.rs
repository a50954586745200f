//! Progress of long work, as lines the chat adapters render (the console prints them; Discord
//! edits its reply, at most once every two seconds).

/// Receives progress lines while a command runs.
pub trait ProgressSink: Send + Sync {
    /// The newest state of the work, in one line.
    fn update(&self, line: &str);
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
