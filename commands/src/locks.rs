//! Work that runs one at a time per resource, held by the engine for every scenario: a
//! second restore into the same target is refused, naming the running one.

/// The running restores (or other exclusive work), by target: one at a time per target.
#[derive(Debug, Default)]
pub struct RestoreLocks(std::sync::Mutex<std::collections::HashMap<String, String>>);

/// Holds a target's restore slot until dropped.
pub struct RestoreGuard<'a> {
    locks: &'a RestoreLocks,
    target: String,
}

impl RestoreLocks {
    /// Takes the target's slot, or says who holds it.
    pub fn take(&self, target: &str, what: String) -> Result<RestoreGuard<'_>, String> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = m.get(target) {
            return Err(running.clone());
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
