//! Why a command did not do what was asked, each variant mapped to an [`Outcome`].

use drbot_state::StateError;

use crate::grammar::UsageError;
use crate::reply::Outcome;

/// A command's failure. Messages are full sentences for the person who typed the command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command line is unusable: unknown command or option, bad value, unknown step.
    #[error("{0}")]
    Usage(String),
    /// Not allowed, or not possible in the incident's current state.
    #[error("{0}")]
    Refused(String),
    /// A system drbot drives failed.
    #[error("{0}")]
    Failed(String),
    /// The state store failed.
    #[error("Could not record this: {0}")]
    State(#[from] StateError),
}

impl CommandError {
    /// The outcome this failure reports.
    pub fn outcome(&self) -> Outcome {
        match self {
            CommandError::Usage(_) => Outcome::Usage,
            CommandError::Refused(_) => Outcome::Refused,
            CommandError::Failed(_) | CommandError::State(_) => Outcome::Failed,
        }
    }
}

impl From<UsageError> for CommandError {
    fn from(e: UsageError) -> Self {
        CommandError::Usage(e.0)
    }
}
