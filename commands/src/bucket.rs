//! The bucket (Cloudflare R2 or any S3 API) through aws-sdk-s3: custom endpoint, path-style
//! addressing, and checksums only "when required" (R2 answers the SDK's default CRC32 upload
//! checksums with 501).

mod copy;
pub mod retry;
mod versions;

pub use copy::{Headers, Source, copy_source};
pub use versions::{Version, Versioning};

use std::time::Duration;

use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, TimeZone, Utc};

use crate::config::{Config, StorageConfig};
use crate::redact::redact_url;

/// The configured `[storage]`, or a refusal naming what is missing.
pub fn storage(config: &Config) -> Result<&StorageConfig, BucketError> {
    config.storage.as_ref().ok_or(BucketError::NotConfigured)
}

/// The backup bucket (database backups, drbot's own state), with the `[storage]` it is from.
pub fn backup_bucket(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Bucket, StorageConfig), BucketError> {
    let s = storage(config)?.clone();
    let bucket = Bucket::from_config(&s, &s.backup_bucket, env)?;
    Ok((bucket, s))
}

/// One object's listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the bucket last wrote it.
    pub last_modified: Option<DateTime<Utc>>,
    /// Its ETag, quotes removed.
    pub etag: Option<String>,
}

/// Why the bucket could not be used, said for people. [`crate::error`] maps each to the
/// reply's outcome.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// No `[storage]` in the config.
    #[error(
        "No bucket is configured: add [storage] with backup_bucket (and R2_ENDPOINT in the environment)."
    )]
    NotConfigured,
    /// The endpoint variable is not set.
    #[error("The bucket's endpoint is not set: put it in {0} (see [storage] endpoint_env).")]
    EndpointUnset(String),
    /// The access keys are not set.
    #[error(
        "The bucket's keys are not set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are needed."
    )]
    KeysUnset,
    /// A request to the bucket failed: what was done, in which bucket, and why.
    #[error("{what} in bucket {bucket}: {detail}")]
    Request {
        /// What drbot asked for (`listing db/`).
        what: String,
        /// The bucket.
        bucket: String,
        /// Why it failed (the endpoint unreachable, S3's code and message).
        detail: String,
    },
    /// What was being uploaded failed on its way (the producer's words).
    #[error("{0}")]
    Source(String),
}

/// One bucket on one endpoint.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    endpoint: String,
    /// `[storage] timeout_secs`.
    timeout: Duration,
}

/// Parts of a multipart upload (S3's minimum part is 5 MiB; 8 MiB keeps memory small).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

impl Bucket {
    /// The bucket `name` on the endpoint configured in `[storage]`; keys from the environment.
    pub fn from_config(
        storage: &StorageConfig,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Bucket, BucketError> {
        let endpoint = env(&storage.endpoint_env)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| BucketError::EndpointUnset(storage.endpoint_env.clone()))?;
        let key = env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty());
        let secret = env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty());
        let (Some(key), Some(secret)) = (key, secret) else {
            return Err(BucketError::KeysUnset);
        };
        let creds = Credentials::new(key, secret, None, None, "drbot-env");
        // Every request, its retries included, ends within the timeout; a download's body is
        // not part of it (the SDK hands the body over once the answer's head has come).
        let timeout = Duration::from_secs(storage.timeout_secs);
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout)
            .operation_timeout(timeout)
            .build();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(endpoint.trim())
            .region(Region::new(storage.region.clone()))
            .credentials_provider(creds)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(timeouts)
            .build();
        Ok(Bucket {
            client: aws_sdk_s3::Client::from_conf(config),
            name: name.to_string(),
            endpoint: redact_url(endpoint.trim()),
            timeout,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SDK client, for operations this type does not wrap.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn fail<E>(&self, what: &str, e: aws_sdk_s3::error::SdkError<E>) -> BucketError
    where
        E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        let timed_out = match &e {
            SdkError::TimeoutError(_) => true,
            SdkError::DispatchFailure(d) => d.is_timeout(),
            _ => false,
        };
        let detail = match &e {
            _ if timed_out => format!(
                "no answer from {} within {} s ([storage] timeout_secs)",
                self.endpoint,
                self.timeout.as_secs()
            ),
            SdkError::DispatchFailure(_) => format!(
                "cannot reach {} ({})",
                self.endpoint,
                aws_sdk_s3::error::DisplayErrorContext(&e)
                    .to_string()
                    .rsplit(": ")
                    .next()
                    .unwrap_or("no answer")
            ),
            SdkError::ServiceError(s) => {
                let code = aws_sdk_s3::error::ProvideErrorMetadata::code(s.err())
                    .map(str::to_string)
                    .unwrap_or_else(|| aws_sdk_s3::error::DisplayErrorContext(s.err()).to_string());
                let msg = aws_sdk_s3::error::ProvideErrorMetadata::message(s.err())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                format!("{code}{msg} (HTTP {})", s.raw().status().as_u16())
            }
            _ => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        };
        BucketError::Request {
            what: what.to_string(),
            bucket: self.name.clone(),
            detail,
        }
    }

    /// Every object under `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BucketError> {
        let mut out = Vec::new();
        let mut pages = self.pages(prefix);
        while let Some(page) = pages.next().await? {
            out.extend(page);
        }
        Ok(out)
    }

    /// The objects under `prefix` a page (up to 1,000) at a time, in key order: memory stays
    /// that of one page however many objects there are.
    pub fn pages(&self, prefix: &str) -> Pages<'_> {
        Pages {
            bucket: self,
            prefix: prefix.to_string(),
            token: None,
            done: false,
            requests: 0,
        }
    }
    /// The object's metadata, or `None` when there is no such key.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BucketError> {
        match self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(h) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: h.content_length().unwrap_or(0).max(0) as u64,
                last_modified: h.last_modified().and_then(to_chrono),
                etag: h.e_tag().map(unquote),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.fail(&format!("Reading {key}"), e)),
        }
    }

    /// Opens the object for streaming; `if_match` makes the read fail if the ETag changed.
    pub async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(ObjectInfo, ByteStream), BucketError> {
        let mut req = self.client.get_object().bucket(&self.name).key(key);
        if let Some(etag) = if_match {
            req = req.if_match(format!("\"{etag}\""));
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.fail(&format!("Downloading {key}"), e))?;
        let info = ObjectInfo {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: out.last_modified().and_then(to_chrono),
            etag: out.e_tag().map(unquote),
        };
        Ok((info, out.body))
    }

    /// Deletes an object (a missing one is no error, as in S3).
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        retry::throttled(|| {
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .send()
        })
        .await
        .map_err(|e| self.fail(&format!("Deleting {key}"), e))?;
        Ok(())
    }

    /// Stores a small object in one request.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), BucketError> {
        self.put_with(key, body, content_type, &Default::default())
            .await
    }

    /// Stores a small object in one request with user metadata (`x-amz-meta-*`).
    pub async fn put_with(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), BucketError> {
        let body = bytes::Bytes::from(body);
        let meta: std::collections::HashMap<String, String> =
            metadata.clone().into_iter().collect();
        retry::throttled(|| {
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .content_type(content_type)
                .set_metadata((!meta.is_empty()).then(|| meta.clone()))
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await
        .map_err(|e| self.fail(&format!("Uploading {key}"), e))?;
        Ok(())
    }

    /// Uploads parts as they arrive on `parts` (each at least 5 MiB but the last), as one
    /// multipart upload; aborts it on any failure so no partial object is left.
    pub async fn put_multipart(
        &self,
        key: &str,
        mut parts: tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    ) -> Result<u64, BucketError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .content_type("application/octet-stream")
            .send()
            .await
            .map_err(|e| self.fail(&format!("Starting the upload of {key}"), e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = async {
            let mut done = Vec::new();
            let mut total = 0u64;
            let mut number = 1;
            while let Some(part) = parts.recv().await {
                let part = part.map_err(BucketError::Source)?;
                total += part.len() as u64;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(part))
                    .send()
                    .await
                    .map_err(|e| self.fail(&format!("Uploading part {number} of {key}"), e))?;
                done.push(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                );
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(done))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.fail(&format!("Finishing the upload of {key}"), e))?;
            Ok(total)
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

/// A listing read page by page ([`Bucket::pages`]).
pub struct Pages<'a> {
    bucket: &'a Bucket,
    prefix: String,
    token: Option<String>,
    done: bool,
    requests: u64,
}

impl Pages<'_> {
    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<ObjectInfo>>, BucketError> {
        if self.done {
            return Ok(None);
        }
        let b = self.bucket;
        let page = retry::throttled(|| {
            b.client
                .list_objects_v2()
                .bucket(&b.name)
                .prefix(&self.prefix)
                .set_continuation_token(self.token.clone())
                .send()
        })
        .await
        .map_err(|e| b.fail(&format!("Listing {}", self.prefix), e))?;
        self.requests += 1;
        self.token = page.next_continuation_token().map(str::to_string);
        self.done = page.is_truncated() != Some(true) || self.token.is_none();
        Ok(Some(
            page.contents()
                .iter()
                .map(|o| ObjectInfo {
                    key: o.key().unwrap_or_default().to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: o.last_modified().and_then(to_chrono),
                    etag: o.e_tag().map(unquote),
                })
                .collect(),
        ))
    }

    /// List requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}
