//! Why a command did not do what was asked, each variant mapped to an [`Outcome`].
//!
//! Modules fail with their own typed errors ([`TargetError`], [`BucketError`], [`HttpError`],
//! [`UsageError`], the store's [`StateError`]), whose messages name the resource. This is the
//! one place that decides what each means to the person who typed the command: a usage
//! mistake, a refusal (not possible as configured or now), or a failure of a system.

use drbot_state::StateError;

use crate::bucket::BucketError;
use crate::grammar::UsageError;
use crate::http::HttpError;
use crate::pg::TargetError;
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

impl From<TargetError> for CommandError {
    fn from(e: TargetError) -> Self {
        let text = e.to_string();
        match e {
            TargetError::Unknown { .. } => CommandError::Usage(text),
            TargetError::NoneConfigured { .. }
            | TargetError::UrlUnset { .. }
            | TargetError::BadUrl { .. }
            | TargetError::RootCert { .. } => CommandError::Refused(text),
            TargetError::Connect { .. } | TargetError::Tls(_) => CommandError::Failed(text),
        }
    }
}

impl From<BucketError> for CommandError {
    fn from(e: BucketError) -> Self {
        let text = e.to_string();
        match e {
            BucketError::NotConfigured | BucketError::EndpointUnset(_) | BucketError::KeysUnset => {
                CommandError::Refused(text)
            }
            BucketError::Request { .. } | BucketError::Source(_) => {
                CommandError::Failed(format!("{text}."))
            }
        }
    }
}

impl From<crate::locks::Busy> for CommandError {
    fn from(e: crate::locks::Busy) -> Self {
        CommandError::Refused(e.to_string())
    }
}

impl From<HttpError> for CommandError {
    fn from(e: HttpError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_modules_error_names_its_resource_and_maps_to_one_outcome() {
        let e = CommandError::from(TargetError::Unknown {
            name: "staging".into(),
            configured: "production".into(),
        });
        assert_eq!(e.outcome(), Outcome::Usage);
        assert_eq!(
            e.to_string(),
            "Target `staging` is not configured. Targets: production."
        );
        let e = CommandError::from(TargetError::UrlUnset {
            name: "production".into(),
            var: "DATABASE_URL".into(),
        });
        assert_eq!(e.outcome(), Outcome::Refused);
        assert!(e.to_string().contains("DATABASE_URL is not set"), "{e}");
        let e = CommandError::from(TargetError::Connect {
            name: "production".into(),
            host: "db:5432".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(e.outcome(), Outcome::Failed);
        assert_eq!(
            CommandError::from(BucketError::NotConfigured).outcome(),
            Outcome::Refused
        );
        let e = CommandError::from(BucketError::Request {
            what: "Listing db/".into(),
            bucket: "backups".into(),
            detail: "cannot reach the endpoint".into(),
        });
        assert_eq!(e.outcome(), Outcome::Failed);
        assert_eq!(
            e.to_string(),
            "Listing db/ in bucket backups: cannot reach the endpoint."
        );
    }
}
