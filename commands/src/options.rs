//! Reading a command's options once the grammar has parsed them.

use crate::error::CommandError;
use crate::grammar::Invocation;

/// Reads a required option the grammar has already checked.
pub(crate) fn required<'a>(inv: &'a Invocation, name: &str) -> Result<&'a str, CommandError> {
    inv.get(name).ok_or_else(|| {
        CommandError::Usage(format!(
            "{} needs {name}:. Usage: {}",
            inv.spec.path(),
            inv.spec.usage()
        ))
    })
}
