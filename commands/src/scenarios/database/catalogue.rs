//! The backup catalogue: where backups are (the bucket), what they are called, which one
//! `backup:` names, when each was taken, and the age identities that open them.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::pipeline::Identities;
use crate::bucket::{Bucket, ObjectInfo};
use crate::config::StorageConfig;
use crate::context::Engine;
use crate::error::CommandError;

/// The suffix of a backup's manifest object.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The backup bucket and the `[storage]` it comes from.
pub(crate) fn backup_bucket(engine: &Engine) -> Result<(Bucket, StorageConfig), CommandError> {
    Ok(crate::bucket::backup_bucket(
        engine.config(),
        &engine.env(),
    )?)
}

/// The time a backup's name says it was taken: `<prefix>2024-12-26T10-30-00Z.sql.xz.age`.
pub fn name_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    let stamp = name.get(..20)?;
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The object name for a backup taken at `at`.
pub fn backup_name(prefix: &str, at: DateTime<Utc>) -> String {
    format!("{prefix}{}.sql.xz.age", at.format("%Y-%m-%dT%H-%M-%SZ"))
}

/// When a backup was taken: the time in its name, else when the bucket wrote it.
pub fn taken_at(o: &ObjectInfo) -> Option<DateTime<Utc>> {
    name_time(&o.key).or(o.last_modified)
}

/// Backups under the prefix, newest first (by the time in the name, then LastModified).
pub async fn list_backups(bucket: &Bucket, prefix: &str) -> Result<Vec<ObjectInfo>, CommandError> {
    let mut all: Vec<ObjectInfo> = bucket
        .list(prefix)
        .await
        .map_err(|e| CommandError::Failed(format!("{e}.")))?
        .into_iter()
        .filter(|o| !o.key.ends_with(MANIFEST_SUFFIX) && !o.key.ends_with('/'))
        .collect();
    all.sort_by(|a, b| {
        (taken_at(b), b.last_modified, &b.key).cmp(&(taken_at(a), a.last_modified, &a.key))
    });
    Ok(all)
}

/// Resolves `backup:` — `latest`, a full key, or a name under the prefix — to an object.
pub async fn resolve_backup(
    bucket: &Bucket,
    prefix: &str,
    raw: &str,
) -> Result<ObjectInfo, CommandError> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("latest") {
        return list_backups(bucket, prefix)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CommandError::Failed(format!(
                    "There are no backups under {}/{prefix}, so there is no latest one.",
                    bucket.name()
                ))
            });
    }
    let mut candidates = vec![raw.to_string()];
    if !raw.starts_with(prefix) {
        candidates.push(format!("{prefix}{raw}"));
    }
    for key in &candidates {
        if let Some(o) = bucket
            .head(key)
            .await
            .map_err(|e| CommandError::Failed(format!("{e}.")))?
        {
            return Ok(o);
        }
    }
    let newest: Vec<String> = list_backups(bucket, prefix)
        .await
        .map(|l| l.into_iter().take(3).map(|o| o.key).collect())
        .unwrap_or_default();
    let hint = if newest.is_empty() {
        String::new()
    } else {
        format!(" Newest: {}. Or use backup:latest.", newest.join(", "))
    };
    Err(CommandError::Failed(format!(
        "There is no backup `{raw}` in bucket {} (looked for {}).{hint}",
        bucket.name(),
        candidates.join(" and ")
    )))
}

pub use crate::render::size;

/// The age identities from `[backup] age_identity_file`, or none.
pub(crate) fn identities(engine: &Engine) -> Result<Identities, CommandError> {
    match engine
        .config()
        .backup
        .as_ref()
        .and_then(|b| b.age_identity_file.as_deref())
    {
        Some(path) => Identities::load(path),
        None => Ok(Identities::none()),
    }
}

/// Whether only verified backups count: `[backup] verify_after_upload` (on by default).
pub fn verified_only(engine: &Engine) -> bool {
    engine
        .config()
        .backup
        .as_ref()
        .is_some_and(|b| b.verify_after_upload)
}
