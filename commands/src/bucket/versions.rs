//! S3 object versioning, where the bucket has it (AWS S3, MinIO). Cloudflare R2 implements
//! none: it answers every versioning call with 501 `NotImplemented`, which is reported as
//! [`Versioning::Unsupported`], not as a failure.

use chrono::{DateTime, Utc};

use super::retry::throttled;
use super::{Bucket, BucketError, to_chrono, unquote};

/// What the bucket says about versioning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Every write keeps the previous version.
    Enabled,
    /// Versioning was on and is suspended: versions written then are still there.
    Suspended,
    /// The bucket could have versions but never had them turned on.
    Never,
    /// The service has no object versioning at all (R2: 501 NotImplemented).
    Unsupported,
}

impl Versioning {
    /// Whether earlier versions may exist to restore from.
    pub fn has_versions(&self) -> bool {
        matches!(self, Versioning::Enabled | Versioning::Suspended)
    }
}

/// One version of an object, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The key.
    pub key: String,
    /// Its version id.
    pub version_id: String,
    /// Whether it is the current one.
    pub is_latest: bool,
    /// When it was written.
    pub last_modified: Option<DateTime<Utc>>,
    /// Size (0 for a delete marker).
    pub size: u64,
    /// ETag (none for a delete marker).
    pub etag: Option<String>,
    /// A delete marker: the key did not exist from then on.
    pub delete_marker: bool,
}

impl Bucket {
    /// Whether the bucket keeps object versions.
    pub async fn versioning(&self) -> Result<Versioning, BucketError> {
        let result = throttled(|| {
            self.client
                .get_bucket_versioning()
                .bucket(&self.name)
                .send()
        })
        .await;
        match result {
            Ok(v) => Ok(match v.status() {
                Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled) => Versioning::Enabled,
                Some(aws_sdk_s3::types::BucketVersioningStatus::Suspended) => Versioning::Suspended,
                _ => Versioning::Never,
            }),
            Err(e) if not_implemented(&e) => Ok(Versioning::Unsupported),
            Err(e) => Err(self.fail("Reading the versioning status", e)),
        }
    }

    /// The versioning status for choosing a way back: `None` (logged) when it cannot be read.
    pub async fn versioning_or_none(&self) -> Option<Versioning> {
        match self.versioning().await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "the versioning status could not be read");
                None
            }
        }
    }

    /// Every version and delete marker under `prefix`, by key, newest first within a key.
    pub async fn versions(&self, prefix: &str) -> Result<Vec<Version>, BucketError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = throttled(|| {
                self.client
                    .list_object_versions()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .set_key_marker(key_marker.clone())
                    .set_version_id_marker(version_marker.clone())
                    .send()
            })
            .await
            .map_err(|e| self.fail(&format!("Listing the versions under {prefix}"), e))?;
            for v in page.versions() {
                out.push(Version {
                    key: v.key().unwrap_or_default().to_string(),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    is_latest: v.is_latest().unwrap_or(false),
                    last_modified: v.last_modified().and_then(to_chrono),
                    size: v.size().unwrap_or(0).max(0) as u64,
                    etag: v.e_tag().map(unquote),
                    delete_marker: false,
                });
            }
            for m in page.delete_markers() {
                out.push(Version {
                    key: m.key().unwrap_or_default().to_string(),
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    is_latest: m.is_latest().unwrap_or(false),
                    last_modified: m.last_modified().and_then(to_chrono),
                    size: 0,
                    etag: None,
                    delete_marker: true,
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        // Versions and delete markers come in two lists: put each key's history in time order,
        // newest first (the latest one first when two share a second).
        out.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.is_latest.cmp(&a.is_latest))
                .then(b.last_modified.cmp(&a.last_modified))
        });
        Ok(out)
    }
}

/// R2's answer to a call it does not implement.
fn not_implemented<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            s.raw().status().as_u16() == 501 || s.err().code() == Some("NotImplemented")
        }
        _ => false,
    }
}
