//! Work that runs one at a time per resource, held by the engine for every scenario: a
//! second restore into the same target is refused, naming the running one.

/// The running restores (or other exclusive work), by target: one at a time per target.
#[derive(Debug, Default)]
pub struct RestoreLocks(std::sync::Mutex<std::collections::HashMap<String, String>>);

/// A target's slot is held by other work.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("A restore into {target} is already running ({running}). Wait for it to finish.")]
pub struct Busy {
    /// The target.
    pub target: String,
    /// What holds it, as its holder said (`alice restoring db/x into production`).
    pub running: String,
}

/// Holds a target's restore slot until dropped.
pub struct RestoreGuard<'a> {
    locks: &'a RestoreLocks,
    target: String,
}

impl RestoreLocks {
    /// Takes the target's slot for `what`, or says what holds it.
    pub fn take(&self, target: &str, what: String) -> Result<RestoreGuard<'_>, Busy> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = m.get(target) {
            return Err(Busy {
                target: target.to_string(),
                running: running.clone(),
            });
        }
        m.insert(target.to_string(), what);
        Ok(RestoreGuard {
            locks: self,
            target: target.to_string(),
        })
    }
}

impl Drop for RestoreGuard<'_> {
    fn drop(&mut self) {
        let mut m = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_names_its_holder_and_is_free_once_dropped() {
        let locks = RestoreLocks::default();
        let held = locks.take("production", "alice restoring db/x".to_string());
        assert!(held.is_ok());
        let busy = locks.take("production", "bob".to_string()).err();
        assert_eq!(
            busy,
            Some(Busy {
                target: "production".to_string(),
                running: "alice restoring db/x".to_string(),
            })
        );
        assert_eq!(
            busy.map(|b| b.to_string()).as_deref(),
            Some(
                "A restore into production is already running (alice restoring db/x). Wait for it to finish."
            )
        );
        // Another target is its own slot; a dropped guard frees its own.
        assert!(locks.take("staging", "carol".to_string()).is_ok());
        drop(held);
        assert!(locks.take("production", "bob".to_string()).is_ok());
    }
}
