//! The two buckets the storage scenario works between, and its errors.

use crate::bucket::{Bucket, BucketError};
use crate::config::{SnapshotsConfig, StorageConfig};
use crate::context::Engine;
use crate::error::CommandError;

/// The media bucket, the backup bucket its snapshots go to, and the snapshot settings.
#[derive(Clone, Debug)]
pub struct Buckets {
    /// The media bucket (`[storage] media_bucket`).
    pub media: Bucket,
    /// The backup bucket (`[storage] backup_bucket`).
    pub backup: Bucket,
    /// `[storage.snapshots]`.
    pub snapshots: SnapshotsConfig,
}

impl Buckets {
    /// The configured buckets, or why they cannot be used.
    pub fn of(engine: &Engine) -> Result<Buckets, StorageError> {
        let s: &StorageConfig = crate::bucket::storage(engine.config())?;
        let media = s.media_bucket.as_deref().ok_or(StorageError::NoMedia)?;
        let env = engine.env();
        Ok(Buckets {
            media: Bucket::from_config(s, media, &env)?,
            backup: Bucket::from_config(s, &s.backup_bucket, &env)?,
            snapshots: s.snapshots.clone(),
        })
    }

    /// Objects above this many bytes are copied in parts.
    pub fn single_copy_limit(&self) -> u64 {
        self.snapshots.part_copy_above_mib * 1024 * 1024
    }
}

/// Why a storage command could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No `[storage] media_bucket`.
    #[error("No media bucket is configured: add media_bucket to [storage].")]
    NoMedia,
    /// A bucket failed.
    #[error("{0}")]
    Bucket(#[from] BucketError),
    /// A snapshot manifest cannot be used.
    #[error("{0}")]
    Manifest(String),
    /// Not possible as asked; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A snapshot stopped part-way: no manifest was written.
    #[error(
        "The snapshot stopped after {listed} objects listed and {copies} new copies: {why}. \
         No manifest was written, so no snapshot exists from this attempt; the copies made are \
         kept and the next snapshot will not copy them again."
    )]
    SnapshotFailed {
        /// Objects listed before it stopped.
        listed: u64,
        /// Copies made.
        copies: u64,
        /// Why.
        why: String,
    },
}

impl From<StorageError> for CommandError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Bucket(b) => CommandError::from(b),
            StorageError::NoMedia | StorageError::Refused(_) => {
                CommandError::Refused(e.to_string())
            }
            StorageError::Manifest(_) | StorageError::SnapshotFailed { .. } => {
                CommandError::Failed(e.to_string())
            }
        }
    }
}

/// Where drbot's own probe objects go in the media bucket (`/storage verify`); snapshots leave
/// them out.
pub const PROBE_PREFIX: &str = ".drbot-probe/";
