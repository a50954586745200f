//! Server-side copies with the object's headers and user metadata: CopyObject up to the
//! configured size, UploadPartCopy in parts above it (one copy request moves at most 5 GiB).
//! The bytes never pass through drbot.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use serde::{Deserialize, Serialize};

use super::retry::throttled;
use super::{Bucket, BucketError, ObjectInfo, to_chrono, unquote};

/// The headers and user metadata that make an object what the web app serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `x-amz-meta-*`, names lowercased as S3 returns them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Sets an object's headers and user metadata on a request builder (CopyObject and
/// CreateMultipartUpload name them alike but are different types).
macro_rules! with_headers {
    ($builder:expr, $h:expr) => {
        $builder
            .set_content_type($h.content_type.clone())
            .set_cache_control($h.cache_control.clone())
            .set_content_disposition($h.content_disposition.clone())
            .set_content_encoding($h.content_encoding.clone())
            .set_content_language($h.content_language.clone())
            .set_metadata(Some($h.metadata.clone().into_iter().collect()))
    };
}

/// Parts of a copy above the single-request limit: at least 5 MiB, at most 1 GiB, and no more
/// than 10,000 of them.
fn part_size(size: u64, single_limit: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    single_limit
        .min(1024 * MIB)
        .max(size.div_ceil(10_000))
        .max(5 * MIB)
}

/// `bucket/key` for `x-amz-copy-source`: the key percent-encoded except `/`.
pub fn copy_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if let Some(v) = version {
        out.push_str("?versionId=");
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Where a copy comes from: a bucket on the same endpoint, a key, optionally a version, and the
/// ETag it must still have (so a copy is of exactly what was looked at).
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The bucket.
    pub bucket: &'a Bucket,
    /// The key.
    pub key: &'a str,
    /// The version, on a bucket with versioning.
    pub version: Option<&'a str>,
    /// The ETag the source must have.
    pub etag: Option<&'a str>,
    /// Its size (picks one request or parts).
    pub size: u64,
}

impl Bucket {
    /// The object's listing and its headers, or `None` when there is no such key.
    pub async fn head_headers(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<(ObjectInfo, Headers)>, BucketError> {
        let result = throttled(|| {
            self.client
                .head_object()
                .bucket(&self.name)
                .key(key)
                .set_version_id(version.map(str::to_string))
                .send()
        })
        .await;
        match result {
            Ok(h) => Ok(Some((
                ObjectInfo {
                    key: key.to_string(),
                    size: h.content_length().unwrap_or(0).max(0) as u64,
                    last_modified: h.last_modified().and_then(to_chrono),
                    etag: h.e_tag().map(unquote),
                },
                Headers {
                    content_type: h.content_type().map(str::to_string),
                    cache_control: h.cache_control().map(str::to_string),
                    content_disposition: h.content_disposition().map(str::to_string),
                    content_encoding: h.content_encoding().map(str::to_string),
                    content_language: h.content_language().map(str::to_string),
                    metadata: h
                        .metadata()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                },
            ))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.fail(&format!("Reading {key}"), e)),
        }
    }

    /// Copies `from` to `key` in this bucket, server-side, giving it `headers`. Objects above
    /// `single_limit` bytes are copied in parts. Returns the new object's ETag.
    pub async fn copy_from(
        &self,
        from: Source<'_>,
        key: &str,
        headers: &Headers,
        single_limit: u64,
    ) -> Result<Option<String>, BucketError> {
        let source = copy_source(from.bucket.name(), from.key, from.version);
        if from.size > single_limit {
            return self
                .copy_in_parts(from, &source, key, headers, single_limit)
                .await;
        }
        let out = throttled(|| {
            with_headers!(
                self.client
                    .copy_object()
                    .bucket(&self.name)
                    .key(key)
                    .copy_source(&source)
                    .set_copy_source_if_match(from.etag.map(|e| format!("\"{e}\"")))
                    .metadata_directive(MetadataDirective::Replace),
                headers
            )
            .send()
        })
        .await
        .map_err(|e| self.fail(&format!("Copying {} to {key}", from.key), e))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(unquote))
    }

    async fn copy_in_parts(
        &self,
        from: Source<'_>,
        source: &str,
        key: &str,
        headers: &Headers,
        single_limit: u64,
    ) -> Result<Option<String>, BucketError> {
        let created = throttled(|| {
            with_headers!(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.name)
                    .key(key),
                headers
            )
            .send()
        })
        .await
        .map_err(|e| self.fail(&format!("Starting the copy of {} to {key}", from.key), e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let step = part_size(from.size, single_limit);
        let result = async {
            let mut parts = Vec::new();
            let mut start = 0u64;
            let mut number = 1;
            while start < from.size {
                let end = (start + step).min(from.size) - 1;
                let out = throttled(|| {
                    self.client
                        .upload_part_copy()
                        .bucket(&self.name)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={start}-{end}"))
                        .set_copy_source_if_match(from.etag.map(|e| format!("\"{e}\"")))
                        .send()
                })
                .await
                .map_err(|e| {
                    self.fail(
                        &format!("Copying part {number} of {} to {key}", from.key),
                        e,
                    )
                })?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_string),
                        )
                        .build(),
                );
                start = end + 1;
                number += 1;
            }
            let done = throttled(|| {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts.clone()))
                            .build(),
                    )
                    .send()
            })
            .await
            .map_err(|e| self.fail(&format!("Finishing the copy of {} to {key}", from.key), e))?;
            Ok(done.e_tag().map(unquote))
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_encoded_but_keep_slashes() {
        assert_eq!(copy_source("b", "a/b c+d.jpg", None), "b/a/b%20c%2Bd.jpg");
        assert_eq!(
            copy_source("b", "é?x", Some("v 1")),
            "b/%C3%A9%3Fx?versionId=v%201"
        );
    }

    #[test]
    fn parts_stay_within_s3_limits() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size(12 * MIB, 5 * MIB), 5 * MIB);
        assert_eq!(part_size(100 * 1024 * MIB, 5115 * MIB), 1024 * MIB);
        // 5 TiB, the largest S3 object: 10,000 parts at most.
        let huge = 5 * 1024 * 1024 * MIB;
        assert!(huge.div_ceil(part_size(huge, 5115 * MIB)) <= 10_000);
    }
}
