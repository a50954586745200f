//! Errors of the state store, each naming the resource it is about.

use std::path::PathBuf;

use crate::model::{DrillId, IncidentId, PageId, RequestId};

/// What can go wrong reading or writing incident state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process (a running `drbot serve` or console) holds the data directory.
    #[error(
        "the data directory {} is in use by another drbot process (a running `drbot serve` or `drbot console`); \
         run the command there, or stop that process first",
        .0.display()
    )]
    Locked(PathBuf),

    /// The directory could not be opened or created.
    #[error("cannot open the data directory {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data was written by a newer drbot whose schema this build does not understand.
    #[error(
        "the data directory {} was written by a newer drbot (schema {found}); this build understands schema {supported} or older",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The incident does not exist.
    #[error("incident {0} does not exist")]
    NoSuchIncident(IncidentId),

    /// The approval request does not exist.
    #[error("approval request {0} does not exist")]
    NoSuchRequest(RequestId),

    /// The drill does not exist.
    #[error("drill {0} does not exist")]
    NoSuchDrill(DrillId),

    /// The page does not exist.
    #[error("page {0} does not exist")]
    NoSuchPage(PageId),

    /// A write that would leave the store inconsistent was refused (a bug, said plainly).
    #[error("a write was refused: {0}")]
    Inconsistent(String),

    /// The notification does not exist.
    #[error("notification {0} does not exist")]
    NoSuchNotification(u64),

    /// A stored record could not be decoded.
    #[error("stored record {what} is unreadable: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// The store's files are damaged beyond what drbot tidies at open.
    #[error(
        "the state store in {} is damaged and does not open ({source}). Keep it for inspection: \
         move the directory aside, then `drbot state import latest` brings back the newest export",
        path.display()
    )]
    Damaged {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    /// A state export could not be read.
    #[error("the state export cannot be imported: {0}")]
    BadExport(String),

    /// An import was pointed at a directory that already holds state.
    #[error("{} is not empty ({why}); an import only fills an empty data directory — move it aside first", path.display())]
    NotEmpty { path: PathBuf, why: String },

    /// sled reported an error.
    #[error("state store error: {0}")]
    Sled(#[from] sled::Error),
}
