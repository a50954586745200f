//! `drbot state export|import` and `serve`'s exports: drbot's own state off the host
//! (see `drbot_commands::state_export`).

use std::time::{Duration, Instant};

use drbot_commands::{Config, Engine};

/// How often `serve` looks whether an export is due.
pub const EXPORT_CHECK: Duration = Duration::from_secs(15);
/// Changes are exported at most this often (a burst of commands makes one export).
const CHANGE_SPACING: Duration = Duration::from_secs(60);

/// Runs one export; the exit status and the line that says what happened.
pub async fn export_text(engine: &Engine) -> (i32, String) {
    match drbot_commands::state_export::export(engine).await {
        Ok(e) => (
            0,
            format!(
                "Exported drbot's state to {} ({} bytes, encrypted){}. On a new host: drbot state import latest.",
                e.key,
                e.bytes,
                if e.pruned > 0 {
                    format!("; {} older exports removed", e.pruned)
                } else {
                    String::new()
                }
            ),
        ),
        Err(e) => (e.outcome().exit_code(), e.to_string()),
    }
}

/// When `serve` exports: soon after a change, and every `[state] export_every_mins` anyway.
pub struct Exporter {
    enabled: bool,
    every: Duration,
    /// The next export regardless of changes.
    next_due: Instant,
    /// The earliest export for a change.
    change_due: Instant,
    /// The store's generation at the last export.
    seen: Option<u64>,
    failing: bool,
    /// An export is running beside serve's loop.
    running: bool,
}

impl Exporter {
    /// Exports are on when there is a bucket and recipients to encrypt to.
    pub fn new(config: &Config) -> Exporter {
        let enabled = config.storage.is_some()
            && config
                .backup
                .as_ref()
                .is_some_and(|b| !b.age_recipients.is_empty());
        if !enabled {
            tracing::warn!(
                "drbot's own state is not exported: it needs [storage] and [backup] age_recipients"
            );
        }
        let now = Instant::now();
        Exporter {
            enabled,
            every: Duration::from_secs(config.state.export_every_mins.saturating_mul(60)),
            next_due: now,
            change_due: now,
            seen: None,
            failing: false,
            running: false,
        }
    }

    /// Whether an export should start now (none is running): the store's generation it will
    /// cover, and the export is then marked running until [`Exporter::finished`].
    pub fn due(&mut self, engine: &Engine) -> Option<u64> {
        if !self.enabled || self.running {
            return None;
        }
        let generation = engine.store().generation();
        let now = Instant::now();
        let changed = self.seen != Some(generation);
        if now < self.next_due && !(changed && now >= self.change_due) {
            return None;
        }
        self.running = true;
        Some(generation)
    }

    /// Records how an export that [`Exporter::due`] started ended; a failure is logged (once
    /// until it works again) and retried a minute later.
    pub fn finished(
        &mut self,
        generation: u64,
        result: Result<drbot_commands::state_export::Exported, drbot_commands::CommandError>,
    ) {
        self.running = false;
        let now = Instant::now();
        match result {
            Ok(e) => {
                self.seen = Some(generation);
                self.next_due = now + self.every;
                self.change_due = now + CHANGE_SPACING;
                if self.failing {
                    tracing::info!(key = %e.key, "state export works again");
                }
                self.failing = false;
                tracing::debug!(key = %e.key, bytes = e.bytes, "state exported");
            }
            Err(e) => {
                self.next_due = now + CHANGE_SPACING;
                self.change_due = now + CHANGE_SPACING;
                if !self.failing {
                    tracing::error!(error = %e, "exporting drbot's state failed; retrying");
                }
                self.failing = true;
            }
        }
    }

    /// The last export at shutdown: whatever changed since the last one goes off the host,
    /// however recent that was.
    pub async fn final_export(&mut self, engine: &Engine) {
        let generation = engine.store().generation();
        if !self.enabled || self.seen == Some(generation) {
            return;
        }
        self.running = true;
        let result = drbot_commands::state_export::export(engine).await;
        self.finished(generation, result);
    }
}
