//! drbot's own state, off the host: `drbot state export` writes the whole store (incidents,
//! timelines, approvals, notifications, audit log) as one snapshot, xz-compressed and
//! age-encrypted to the backup recipients, under `[state] prefix` in the backup bucket;
//! `serve` does so every `[state] export_every_mins` and soon after each change.
//! `drbot state import latest` fills an empty data directory on a new host from one: approvals
//! that were waiting come back void (a decision must be asked again, by people who can see
//! the new host), an action that was running comes back interrupted, and notifications keep
//! their idempotency keys, so nothing is sent twice.

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use drbot_state::{ApprovalStatus, EntryKind, Store};

use crate::bucket::Bucket;
use crate::config::Config;
use crate::context::{Context, Engine, Place};
use crate::error::CommandError;
use crate::identity::Actor;
use crate::render::size;
use crate::scenarios::database::pipeline::Identities;

/// The largest export an import reads (stored and decoded): far above any real state.
const MAX_EXPORT: u64 = 1 << 30;

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    /// Its key in the backup bucket.
    pub key: String,
    /// Its stored size.
    pub bytes: usize,
    /// Older exports deleted to keep `[state] keep`.
    pub pruned: usize,
}

/// The object name of an export taken at `at`.
pub fn export_name(prefix: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}/{}.drbot-state.json.xz.age",
        prefix.trim_end_matches('/'),
        at.format("%Y-%m-%dT%H-%M-%SZ")
    )
}

/// Exports the whole state to the backup bucket, then prunes old exports.
pub async fn export(engine: &Engine) -> Result<Exported, CommandError> {
    let recipients = crate::scenarios::database::backup::recipients(engine)?;
    let (bucket, _) = crate::bucket::backup_bucket(engine.config(), &engine.env())?;
    let now = engine.now();
    let store = engine.store().clone();
    let stamp = now.to_rfc3339();
    let sealed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let doc = store.export(&stamp).map_err(|e| e.to_string())?;
        seal(&doc, &recipients)
    })
    .await
    .map_err(|e| CommandError::Failed(format!("the export stopped: {e}")))?
    .map_err(|e| CommandError::Failed(format!("Could not build the state export: {e}")))?;
    let prefix = &engine.config().state.prefix;
    let key = export_name(prefix, now);
    let bytes = sealed.len();
    bucket
        .put(&key, sealed, "application/octet-stream")
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    let pruned = prune(&bucket, prefix, engine.config().state.keep).await;
    Ok(Exported { key, bytes, pruned })
}

/// xz, then age to `recipients`.
fn seal(doc: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, String> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| format!("age: {e}"))?;
    let mut out = Vec::new();
    let encrypted = encryptor
        .wrap_output(&mut out)
        .map_err(|e| format!("age: {e}"))?;
    let mut xz = liblzma::write::XzEncoder::new(encrypted, 6);
    xz.write_all(doc).map_err(|e| format!("xz: {e}"))?;
    let encrypted = xz.finish().map_err(|e| format!("xz: {e}"))?;
    encrypted.finish().map_err(|e| format!("age: {e}"))?;
    Ok(out)
}

/// Exports under `prefix`, oldest first (by the time in the name).
async fn exports(bucket: &Bucket, prefix: &str) -> Result<Vec<String>, CommandError> {
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    let mut keys: Vec<String> = bucket
        .list(&dir)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".drbot-state.json.xz.age"))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Deletes all but the newest `keep` exports; a failure only leaves more behind.
async fn prune(bucket: &Bucket, prefix: &str, keep: usize) -> usize {
    let Ok(keys) = exports(bucket, prefix).await else {
        return 0;
    };
    let mut pruned = 0;
    for key in keys.iter().take(keys.len().saturating_sub(keep)) {
        match bucket.delete(key).await {
            Ok(()) => pruned += 1,
            Err(e) => tracing::warn!(error = %e, "could not delete an old state export"),
        }
    }
    pruned
}

/// Fills the (empty) data directory of `config` from the export `which` (`latest`, a key, or
/// a name under the prefix); says what came back.
pub async fn import(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    which: &str,
) -> Result<String, CommandError> {
    let storage = config.storage.as_ref().ok_or_else(|| {
        CommandError::Refused(
            "No [storage] is configured, so there is no bucket to import from.".to_string(),
        )
    })?;
    let identities = match config
        .backup
        .as_ref()
        .and_then(|b| b.age_identity_file.as_deref())
    {
        Some(path) => Identities::load(path)?,
        None => {
            return Err(CommandError::Refused(
                "No [backup] age_identity_file is configured: the export cannot be decrypted."
                    .to_string(),
            ));
        }
    };
    let bucket = Bucket::from_config(storage, &storage.backup_bucket, env)?;
    let prefix = config.state.prefix.trim_end_matches('/');
    let all = exports(&bucket, prefix).await?;
    let key = match which.trim() {
        "latest" | "" => all.last().cloned().ok_or_else(|| {
            CommandError::Refused(format!(
                "There is no state export under {prefix}/ in {}.",
                storage.backup_bucket
            ))
        })?,
        k if all.iter().any(|x| x == k) => k.to_string(),
        name if all.iter().any(|x| x == &format!("{prefix}/{name}")) => {
            format!("{prefix}/{name}")
        }
        other => {
            let newest: Vec<&str> = all.iter().rev().take(3).map(String::as_str).collect();
            return Err(CommandError::Usage(format!(
                "{other} is not a state export. The newest: {}. Or say latest.",
                if newest.is_empty() {
                    "none".to_string()
                } else {
                    newest.join(", ")
                }
            )));
        }
    };
    let (info, body) = bucket
        .get(&key, None)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if info.size > MAX_EXPORT {
        return Err(CommandError::Refused(format!(
            "{key} is {}, more than a state export can be; it is not one.",
            size(info.size)
        )));
    }
    let sealed = body
        .collect()
        .await
        .map_err(|e| CommandError::Failed(format!("Downloading {key} broke off: {e}")))?
        .into_bytes();
    let fail = |e: String| CommandError::Failed(format!("{key} cannot be imported: {e}."));
    let xz = identities.decrypt(&sealed, MAX_EXPORT).map_err(fail)?;
    let mut doc = Vec::new();
    liblzma::read::XzDecoder::new(xz.as_slice())
        .take(MAX_EXPORT + 1)
        .read_to_end(&mut doc)
        .map_err(|e| fail(format!("xz: {e}")))?;
    let dir = config.data_dir.clone();
    let summary = tokio::task::spawn_blocking(move || Store::import(&dir, &doc))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?;
    let settled = settle(config, &key).await?;
    Ok(format!(
        "Imported {key} (exported {}) into {}: {} incidents, {} timeline and audit entries, \
         {} approval requests, {} notifications.{settled}\nNext: start drbot serve here; \
         undelivered notifications go out with their original keys, so none is sent twice.",
        summary.exported_at,
        config.data_dir.display(),
        summary.incidents,
        summary.entries,
        summary.approvals,
        summary.notifications,
    ))
}

/// After an import: waiting approvals become void, running ones interrupted, on the record.
async fn settle(config: &Config, key: &str) -> Result<String, CommandError> {
    let store = Store::open(&config.data_dir)?;
    let engine = Engine::new(
        std::sync::Arc::new(config.clone()),
        store,
        std::sync::Arc::new(crate::clock::SystemClock),
    );
    let ctx = Context {
        actor: Actor::system(),
        place: Place::Local,
    };
    let mut voided = Vec::new();
    for r in engine.store().approvals()? {
        if r.status != ApprovalStatus::Pending {
            continue;
        }
        engine.store().update_approval(r.id, |req| {
            if req.status != ApprovalStatus::Pending {
                return Ok::<_, CommandError>(Vec::new());
            }
            req.status = ApprovalStatus::Voided;
            req.reason = Some("drbot moved to a new host; ask again".to_string());
            Ok(vec![engine.entry(
                &ctx,
                EntryKind::Approval,
                format!(
                    "{} is void: drbot's state was imported on a new host from {key}. \
                     Nothing was run; ask again with {} if it is still wanted.",
                    req.id, req.command
                ),
            )])
        })?;
        voided.push(r.id.to_string());
    }
    let interrupted = engine.recover_interrupted()?;
    engine.store().flush().await?;
    let mut out = String::new();
    if !voided.is_empty() {
        out.push_str(&format!(
            "\nWaiting approvals are void and must be asked again: {}.",
            voided.join(", ")
        ));
    }
    for m in interrupted {
        out.push_str(&format!("\n{m}: check its result before going on."));
    }
    Ok(out)
}
