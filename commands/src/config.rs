//! The configuration of SPEC §4: TOML, then the environment, over built-in defaults.
//!
//! With no file at all drbot runs on the defaults: data in `./drbot-data`, no external system
//! configured (commands that need one say which setting is missing), console users act with the
//! commander role. Secrets are never in the file: it names the environment variables that hold
//! them (`url_env`, `token_env`, ...), read when they are used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "DRBOT_CONFIG";
/// Environment variable overriding `data_dir`.
pub const DATA_DIR_ENV: &str = "DRBOT_DATA_DIR";

/// Roles a person may hold in `[people.NAME] roles`.
pub const PERSON_ROLES: &[&str] = &["commander", "approver", "comms", "scribe", "responder"];
/// Severities, worst first.
pub const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3"];

/// Why the config could not be loaded. Nothing starts with a bad config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrong type.
    #[error("the config file {} is invalid: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or inconsistent.
    #[error("the config file {} is invalid: {message}", path.display())]
    Invalid { message: String, path: PathBuf },
}

/// Where the config came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// No file: built-in defaults.
    Defaults,
    /// This file.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Defaults => f.write_str("built-in defaults (no config file)"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where sled keeps incident state.
    pub data_dir: PathBuf,
    /// People by name: their roles and how they are recognised.
    pub people: BTreeMap<String, Person>,
    /// Console and exec settings.
    pub console: ConsoleConfig,
    /// Discord; absent means `serve` cannot run.
    pub discord: Option<DiscordConfig>,
    /// Database targets by name.
    pub targets: BTreeMap<String, Target>,
    /// The bucket (R2 or any S3 API).
    pub storage: Option<StorageConfig>,
    /// Backup encryption and compression.
    pub backup: Option<BackupConfig>,
    /// Two-person approval.
    pub approvals: ApprovalsConfig,
    /// RTO and RPO targets in minutes.
    pub objectives: Objectives,
    /// Meilisearch.
    pub search: Option<SearchConfig>,
    /// The platform's API and web app.
    pub api: Option<ApiConfig>,
    /// Automatic status updates.
    pub status: StatusConfig,
    /// Stakeholder notifications.
    pub notify: Option<NotifyConfig>,
    /// Exports of drbot's own state to the backup bucket.
    pub state: StateConfig,
    /// Extra checks for `/db verify`.
    pub verify: VerifyConfig,
    /// How restores treat other sessions.
    pub restore: RestoreConfig,
    /// `drbot serve`'s control socket.
    pub serve: ServeConfig,
    /// Extra probes of `drbot check`.
    pub check: CheckConfig,
    /// The runbook's fire drills.
    pub drills: DrillsConfig,
    /// What is kept of backups and snapshots.
    pub retention: RetentionConfig,
    /// The runbook's emergency contacts, by a short name (`devops_lead`).
    pub contacts: BTreeMap<String, Contact>,
    /// Who is paged when, and how a page escalates.
    pub paging: Option<PagingConfig>,
}

/// `[contacts.<name>]`: one of the runbook's emergency contacts.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Their name (or the company's, for external support).
    pub name: String,
    /// Where a page's email goes.
    #[serde(default)]
    pub email: Option<String>,
    /// A number a person can dial, as written.
    #[serde(default)]
    pub phone: Option<String>,
    /// A support site (external support contacts).
    #[serde(default)]
    pub url: Option<String>,
    /// Their Discord user, mentioned by a page.
    #[serde(default)]
    pub discord_id: Option<u64>,
    /// `primary`, `escalation`, `external`, or any name `[paging]` uses.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The scenarios they own (`/contacts` lists them first); for external support, the
    /// scenarios whose steps they support (`database` → Supabase, `storage` → Cloudflare), or
    /// `post-recovery` for the post-recovery checks (Stripe).
    #[serde(default)]
    pub scenarios: Vec<String>,
}

impl Contact {
    /// Whether a page can reach them at all (email, Discord).
    pub fn reachable(&self) -> bool {
        self.email.as_deref().is_some_and(|e| !e.trim().is_empty()) || self.discord_id.is_some()
    }
}

/// `[paging]`: which groups a declare pages, and how a page escalates.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PagingConfig {
    /// Groups paged when an incident is declared at sev1.
    #[serde(default)]
    pub sev1: Vec<String>,
    /// At sev2.
    #[serde(default)]
    pub sev2: Vec<String>,
    /// At sev3.
    #[serde(default)]
    pub sev3: Vec<String>,
    /// A page nobody acknowledges within this many minutes goes to the next group.
    #[serde(default = "default_escalate_after")]
    pub escalate_after_mins: u64,
    /// The groups in the order a page climbs them.
    #[serde(default)]
    pub escalation: Vec<String>,
    /// The variable holding a PagerDuty Events API v2 routing key; unset: no PagerDuty.
    #[serde(default)]
    pub pagerduty_routing_key_env: Option<String>,
    /// The Events API's base.
    #[serde(default = "default_events_base")]
    pub events_base: String,
}

fn default_escalate_after() -> u64 {
    15
}

fn default_events_base() -> String {
    "https://events.pagerduty.com".to_string()
}

impl PagingConfig {
    /// The groups a declare at `severity` pages.
    pub fn groups_for(&self, severity: &str) -> &[String] {
        match severity {
            "sev1" => &self.sev1,
            "sev2" => &self.sev2,
            "sev3" => &self.sev3,
            _ => &[],
        }
    }
}

/// How often a scheduled drill runs (`[drills] schedule`).
pub const DRILL_PERIODS: &[(&str, i64)] = &[
    ("daily", 1),
    ("weekly", 7),
    ("monthly", 30),
    ("quarterly", 91),
];

/// The drills there are.
pub const DRILL_KINDS: &[&str] = &["database", "storage", "full"];

/// `[drills]`: the runbook's fire drills, done for real on scratch copies.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DrillsConfig {
    /// The variable holding the URL of a server where drbot may `CREATE DATABASE` for a drill
    /// (and the database it connects to for that); never a production target.
    pub scratch_url_env: String,
    /// Objects a storage drill copies, damages and restores.
    pub media_sample: usize,
    /// What the application runs at start: timed, with their results, in every database drill.
    pub app_checks: Vec<String>,
    /// Drill kind to how often `serve` runs it (`daily`, `weekly`, `monthly`, `quarterly`).
    pub schedule: BTreeMap<String, String>,
    /// An application query that takes longer than this fails the drill (a start-up query
    /// that slow is an outage of its own).
    pub app_check_timeout_secs: u64,
}

impl Default for DrillsConfig {
    fn default() -> Self {
        DrillsConfig {
            scratch_url_env: "DRILL_DATABASE_URL".to_string(),
            media_sample: 20,
            app_checks: Vec::new(),
            schedule: BTreeMap::new(),
            app_check_timeout_secs: 60,
        }
    }
}

impl DrillsConfig {
    /// How many days apart a drill of `kind` is due, if it is scheduled.
    pub fn period_days(&self, kind: &str) -> Option<i64> {
        let every = self.schedule.get(kind)?;
        DRILL_PERIODS
            .iter()
            .find(|(name, _)| *name == every.as_str())
            .map(|(_, d)| *d)
    }
}

/// `[check]`: what `drbot check` probes besides the configured systems.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// The variable holding a Stripe key to probe (`GET /v1/balance`), if any.
    pub stripe_key_env: Option<String>,
    /// Stripe's base URL.
    pub stripe_base: String,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            stripe_key_env: None,
            stripe_base: "https://api.stripe.com".to_string(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./drbot-data"),
            people: BTreeMap::new(),
            console: ConsoleConfig::default(),
            discord: None,
            targets: BTreeMap::new(),
            storage: None,
            backup: None,
            approvals: ApprovalsConfig::default(),
            objectives: Objectives::default(),
            search: None,
            api: None,
            status: StatusConfig::default(),
            notify: None,
            state: StateConfig::default(),
            verify: VerifyConfig::default(),
            restore: RestoreConfig::default(),
            serve: ServeConfig::default(),
            check: CheckConfig::default(),
            drills: DrillsConfig::default(),
            retention: RetentionConfig::default(),
            contacts: BTreeMap::new(),
            paging: None,
        }
    }
}

/// A person who may act in the console, `exec` or Discord.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Person {
    /// `commander`, `approver`, ...
    pub roles: Vec<String>,
    /// Their Discord user id.
    pub discord_id: Option<u64>,
    /// The operating-system user that proves `--as NAME` in console and exec.
    pub unix_user: Option<String>,
}

/// `[console]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Accept `--as NAME` without proof (demos and tests); entries are marked asserted.
    pub trust_as: bool,
}

/// `[discord]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The guild (server) the bot serves.
    pub guild_id: u64,
    /// The channel where incidents are run.
    pub incident_channel_id: u64,
    /// Where stakeholder updates go.
    pub stakeholder_channel_id: Option<u64>,
    /// The role whose members may approve.
    pub approver_role_id: Option<u64>,
    /// The role whose members may declare and command.
    pub commander_role_id: Option<u64>,
    /// Discord's API base; paths stay `/api/v10/...`.
    #[serde(default = "default_discord_base")]
    pub api_base: String,
    /// The variable holding the bot token.
    #[serde(default = "default_discord_token_env")]
    pub token_env: String,
    /// A declare in the incident channel opens a thread for the incident, which is then run
    /// there.
    #[serde(default)]
    pub thread_per_incident: bool,
}

fn default_discord_base() -> String {
    "https://discord.com".to_string()
}
fn default_discord_token_env() -> String {
    "DISCORD_TOKEN".to_string()
}

/// `[targets.NAME]`: a database drbot may check, verify or restore into.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The variable holding its connection URL.
    pub url_env: String,
    /// A restore may create the roles its backup needs and this target lacks (NOLOGIN, inside
    /// the restore's transaction): for scratch and staging targets.
    #[serde(default)]
    pub create_missing_roles: bool,
    /// This target is production: the runbook's restore, verify and assess steps are done by
    /// commands on it. At most one target says so; without one, the target named `production`.
    #[serde(default)]
    pub production: bool,
    /// Restores go into a new database beside the live one (loaded while the request waits),
    /// swapped in by rename once approved; the one it replaced is kept for `/db rollback`. For
    /// a server where drbot may create and rename databases.
    #[serde(default)]
    pub staged: bool,
}

/// `[restore]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RestoreConfig {
    /// The longest a restore waits for a lock another session holds, in seconds.
    pub lock_wait_secs: u64,
    /// The restore session's `maintenance_work_mem`, in MiB: the memory each index build and
    /// constraint check after the data may use (PostgreSQL's default is 64).
    pub maintenance_work_mem_mb: u64,
    /// Whether a restore request's preflight keeps what it decoded (encrypted, in the data
    /// directory, while the disk has room) for the restore that follows, so that need not
    /// download and decompress the backup again.
    pub preflight_copy: bool,
    /// Sessions a staged restore loads each table's rows with, side by side (its staging
    /// database is not live, so the load need not be one transaction). 1 to 16.
    pub staged_sessions: usize,
}

impl Default for RestoreConfig {
    fn default() -> Self {
        RestoreConfig {
            lock_wait_secs: 30,
            maintenance_work_mem_mb: 256,
            preflight_copy: true,
            staged_sessions: 2,
        }
    }
}

/// The most `maintenance_work_mem_mb` may be: PostgreSQL's own limit (2 TiB less a KiB).
pub const MAX_MAINTENANCE_WORK_MEM_MB: u64 = 2 * 1024 * 1024 - 1;

/// The longest any duration in minutes may be: a year.
pub const MAX_MINUTES: u64 = 525_600;

/// The most `lock_wait_secs` may be: a day.
pub const MAX_LOCK_WAIT_SECS: u64 = 86_400;

/// `[storage]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The variable holding the S3 endpoint URL.
    #[serde(default = "default_endpoint_env")]
    pub endpoint_env: String,
    /// The region (`auto` on R2).
    #[serde(default = "default_region")]
    pub region: String,
    /// The bucket holding database and search backups.
    pub backup_bucket: String,
    /// Where database backups live in it.
    #[serde(default = "default_db_prefix")]
    pub db_prefix: String,
    /// Where Meilisearch dumps live in it.
    #[serde(default = "default_meili_prefix")]
    pub meili_prefix: String,
    /// The media bucket.
    pub media_bucket: Option<String>,
    /// drbot's own snapshots of the media bucket, in the backup bucket.
    #[serde(default)]
    pub snapshots: SnapshotsConfig,
    /// How long one request to a bucket may take, retries included, before drbot gives up on
    /// it and names the endpoint (a download's body then streams for as long as it needs).
    #[serde(default = "default_storage_timeout_secs")]
    pub timeout_secs: u64,
}

/// The most `[storage] timeout_secs` may be: ten minutes.
pub const MAX_STORAGE_TIMEOUT_SECS: u64 = 600;

/// `[storage.snapshots]`: drbot's way back for a media bucket without object versioning (R2).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsConfig {
    /// Where snapshots of the media bucket live in the backup bucket.
    pub prefix: String,
    /// `serve` takes one this often; 0: only when asked (`/storage snapshot`).
    pub every_mins: u64,
    /// Copies (and restores) in flight at once.
    pub concurrency: usize,
    /// Objects larger than this many MiB are copied in parts (UploadPartCopy): one copy
    /// request may move at most 5 GiB.
    pub part_copy_above_mib: u64,
}

/// The largest object one CopyObject may copy on R2 (5 GiB − 5 MiB), in MiB.
pub const MAX_SINGLE_COPY_MIB: u64 = 5 * 1024 - 5;

/// The most copies in flight `[storage.snapshots] concurrency` may ask for.
pub const MAX_CONCURRENCY: usize = 256;

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            prefix: "media/".to_string(),
            every_mins: 30,
            concurrency: 16,
            part_copy_above_mib: MAX_SINGLE_COPY_MIB,
        }
    }
}

impl StorageConfig {
    /// The rules `[storage]` must keep: prefixes that cannot swallow one another, snapshots
    /// that cannot land in the bucket they copy.
    fn validate(&self) -> Result<(), String> {
        let snap = &self.snapshots;
        if snap.prefix.is_empty() || !snap.prefix.ends_with('/') || snap.prefix.starts_with('/') {
            return Err(format!(
                "[storage.snapshots] prefix must be a folder such as \"media/\" (ending in /), not `{}`",
                snap.prefix
            ));
        }
        for (key, other) in [
            ("db_prefix", &self.db_prefix),
            ("meili_prefix", &self.meili_prefix),
        ] {
            if other.starts_with(&snap.prefix) || snap.prefix.starts_with(other.as_str()) {
                return Err(format!(
                    "[storage.snapshots] prefix `{}` and [storage] {key} `{other}` overlap; snapshots need a folder of their own",
                    snap.prefix
                ));
            }
        }
        if self.media_bucket.as_deref() == Some(self.backup_bucket.as_str()) {
            return Err(format!(
                "[storage] media_bucket and backup_bucket are both `{}`: snapshots of the media bucket must live in another bucket",
                self.backup_bucket
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&snap.concurrency) {
            return Err(format!(
                "[storage.snapshots] concurrency must be 1 to {MAX_CONCURRENCY}, not {}",
                snap.concurrency
            ));
        }
        if !(1..=MAX_STORAGE_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(format!(
                "[storage] timeout_secs must be 1 to {MAX_STORAGE_TIMEOUT_SECS}, not {}",
                self.timeout_secs
            ));
        }
        if !(5..=MAX_SINGLE_COPY_MIB).contains(&snap.part_copy_above_mib) {
            return Err(format!(
                "[storage.snapshots] part_copy_above_mib must be 5 to {MAX_SINGLE_COPY_MIB}, not {}",
                snap.part_copy_above_mib
            ));
        }
        Ok(())
    }
}

fn default_endpoint_env() -> String {
    "R2_ENDPOINT".to_string()
}
fn default_region() -> String {
    "auto".to_string()
}
fn default_db_prefix() -> String {
    "db/".to_string()
}
fn default_meili_prefix() -> String {
    "meili/".to_string()
}
fn default_storage_timeout_secs() -> u64 {
    60
}

/// `[backup]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The age identity file that decrypts backups.
    pub age_identity_file: Option<PathBuf>,
    /// The age recipients new backups are encrypted to.
    #[serde(default)]
    pub age_recipients: Vec<String>,
    /// xz preset for new backups (0–9).
    #[serde(default = "default_xz_level")]
    pub xz_level: u32,
    /// xz threads for new backups; 0 (the default) uses every core. The encoder writes
    /// independent blocks and is held to about 96 MiB: the dictionary is made smaller to fit.
    #[serde(default)]
    pub xz_threads: u32,
    /// `serve` takes a backup of the production target this often (the database RPO); 0 never.
    #[serde(default = "default_backup_every")]
    pub every_mins: u64,
    /// Every new backup is read back from the bucket through the restore's preflight and
    /// marked verified in its manifest.
    #[serde(default = "default_true")]
    pub verify_after_upload: bool,
}

fn default_xz_level() -> u32 {
    6
}
fn default_backup_every() -> u64 {
    30
}
fn default_true() -> bool {
    true
}

/// `[retention]`: what `serve` (daily) and `/backup prune` keep of database backups and media
/// snapshots. The time of a backup is the time in its name; only verified backups count.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Everything younger is kept.
    pub keep_all_hours: u64,
    /// Then the newest of each day, for this many days.
    pub daily_days: u64,
    /// Then the newest of each ISO week, for this many weeks.
    pub weekly_weeks: u64,
    /// Then the newest of each month, for this many months.
    pub monthly_months: u64,
    /// Never fewer than this many verified backups of a kind.
    pub min_keep: usize,
    /// A snapshot copy no kept manifest references is deleted only when it is older than this.
    pub copy_grace_hours: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_all_hours: 48,
            daily_days: 30,
            weekly_weeks: 12,
            monthly_months: 12,
            min_keep: 3,
            copy_grace_hours: 24,
        }
    }
}

/// `[approvals]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long a request stays open, in seconds.
    pub ttl_secs: u64,
    /// Approvals needed per action kind and target, e.g. `"db-restore:production" = 2`
    /// (default 1).
    pub required: BTreeMap<String, u32>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            ttl_secs: 900,
            required: BTreeMap::new(),
        }
    }
}

/// The most approvals one action may require.
pub const MAX_APPROVALS: u32 = 5;

impl ApprovalsConfig {
    /// Approvals an action of `kind` on `target` needs.
    pub fn required_for(&self, kind: &str, target: Option<&str>) -> u32 {
        target
            .and_then(|t| self.required.get(&format!("{kind}:{t}")))
            .copied()
            .unwrap_or(1)
    }
}

/// `[objectives]`: targets from the runbook, in minutes.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Objectives {
    /// Recovery time objectives per scenario.
    pub rto: Rto,
    /// Recovery point objectives per system.
    pub rpo: Rpo,
}

/// RTO minutes per scenario.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Rto {
    pub database: u64,
    pub storage: u64,
    pub search: u64,
    pub full: u64,
}

impl Default for Rto {
    fn default() -> Self {
        Rto {
            database: 120,
            storage: 60,
            search: 30,
            full: 240,
        }
    }
}

/// RPO minutes per system.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Rpo {
    pub database: u64,
    pub storage: u64,
    pub search: u64,
}

impl Default for Rpo {
    fn default() -> Self {
        Rpo {
            database: 30,
            storage: 60,
            search: 15,
        }
    }
}

/// `[search]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// The variable holding Meilisearch's URL.
    #[serde(default = "default_meili_host_env")]
    pub host_env: String,
    /// The variable holding its master key.
    #[serde(default = "default_meili_key_env")]
    pub key_env: String,
    /// The index the platform searches.
    #[serde(default = "default_index")]
    pub index: String,
    /// SQL giving the number of documents the index should hold.
    pub expected_count_sql: Option<String>,
    /// How long `/search reindex`, `/search progress` and `/search dump` follow their work
    /// before answering (it goes on; `/search progress` picks it up), in seconds.
    #[serde(default = "default_follow_secs")]
    pub follow_secs: u64,
    /// How long one request to Meilisearch may take, in seconds.
    #[serde(default = "default_meili_timeout")]
    pub timeout_secs: u64,
    /// `serve` asks for a dump this often and stores it under `[storage] meili_prefix` (the
    /// search RPO); 0 never.
    #[serde(default = "default_dump_every")]
    pub dump_every_mins: u64,
    /// Where drbot can read the files Meilisearch writes to its `--dump-dir` (the same host, or
    /// a shared volume): a dump is stored in the bucket from there. Without it a dump stays
    /// on Meilisearch's disk and no dump is scheduled.
    #[serde(default)]
    pub dump_dir: Option<PathBuf>,
}

fn default_dump_every() -> u64 {
    15
}

fn default_meili_timeout() -> u64 {
    10
}

fn default_follow_secs() -> u64 {
    300
}

fn default_meili_host_env() -> String {
    "MEILI_HOST".to_string()
}
fn default_meili_key_env() -> String {
    "MEILI_MASTER_KEY".to_string()
}
fn default_index() -> String {
    "artworks".to_string()
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The Fastify API's base URL.
    pub base_url: String,
    /// The Next.js web app's base URL.
    pub web_url: Option<String>,
    /// The variable holding the admin token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// How long one health request may take, in seconds.
    #[serde(default = "default_api_timeout")]
    pub timeout_secs: u64,
}

fn default_api_timeout() -> u64 {
    10
}

fn default_token_env() -> String {
    "ADMIN_TOKEN".to_string()
}

/// `[verify]`: checks `/db verify` runs besides its own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// SQL checks, each returning true when all is well.
    pub checks: Vec<SqlCheck>,
}

/// One configured check.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    /// Its name in the report.
    pub name: String,
    /// A query whose first column of its first row is true when all is well.
    pub sql: String,
}

/// `[state]`: drbot's own state, exported (age-encrypted, xz) to the backup bucket so a new
/// host can take over when this one is lost.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Minutes between exports by `serve` (also one soon after every change).
    pub export_every_mins: u64,
    /// Where exports go in the backup bucket.
    pub prefix: String,
    /// How many exports are kept (older ones are deleted after a successful export).
    pub keep: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            export_every_mins: 5,
            prefix: "state/".to_string(),
            keep: 200,
        }
    }
}

/// `[serve]`: who may reach `drbot serve`'s control socket besides the service user.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Members of this OS group may use the control socket (and only reach it: the data
    /// directory stays private). Who they are is still their uid, from the socket.
    pub socket_group: Option<String>,
    /// Where the socket lives (`drbot.sock` in it): a directory outside the data directory,
    /// such as systemd's `/run/drbot`. Default: the data directory itself.
    pub socket_dir: Option<PathBuf>,
}

impl Config {
    /// The directory holding the control socket.
    pub fn socket_dir(&self) -> &Path {
        self.serve.socket_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

/// `[status]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Minutes between automatic status summaries.
    pub every_mins: u64,
    /// Minutes without any recorded activity before the commander is nudged.
    pub quiet_mins: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            every_mins: 15,
            quiet_mins: 30,
        }
    }
}

/// `[notify]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Declaring at this severity or worse notifies stakeholders.
    #[serde(default = "default_min_severity")]
    pub min_severity: String,
    /// The sender address for email.
    pub email_from: Option<String>,
    /// Stakeholder addresses.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// Resend's API base; the key comes from `RESEND_API_KEY`.
    #[serde(default = "default_resend_base")]
    pub resend_base: String,
    /// The variable holding the status page webhook URL.
    #[serde(default = "default_statuspage_env")]
    pub statuspage_webhook_env: String,
    /// Each delivery attempt ends within this many seconds (then it is retried later).
    #[serde(default = "default_notify_timeout")]
    pub timeout_secs: u64,
}

/// The longest a single remote request may be given, in seconds.
pub const MAX_HTTP_TIMEOUT_SECS: u64 = 300;

fn default_notify_timeout() -> u64 {
    15
}

fn default_min_severity() -> String {
    "sev2".to_string()
}
fn default_resend_base() -> String {
    "https://api.resend.com".to_string()
}
fn default_statuspage_env() -> String {
    "STATUSPAGE_WEBHOOK_URL".to_string()
}

impl Config {
    /// The production target's name: the one marked `production = true`, else `production`.
    /// The runbook's steps apply to it; an incident's RPO is measured by a restore into it.
    pub fn production_target(&self) -> &str {
        self.targets
            .iter()
            .find(|(_, t)| t.production)
            .map_or("production", |(n, _)| n.as_str())
    }

    /// Loads the config: `path`, else `$DRBOT_CONFIG`, else the built-in defaults; then
    /// `$DRBOT_DATA_DIR` overrides `data_dir`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, Source), ConfigError> {
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| env(CONFIG_ENV).filter(|s| !s.is_empty()).map(PathBuf::from));
        let (mut config, source) = match path {
            None => (Config::default(), Source::Defaults),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let config = Config::from_toml(&text, &path)?;
                (config, Source::File(path))
            }
        };
        if let Some(dir) = env(DATA_DIR_ENV).filter(|s| !s.is_empty()) {
            config.data_dir = PathBuf::from(dir);
        }
        Ok((config, source))
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Every section's checks, in order; the first that fails names the key.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        /// One section's checks: what is wrong, naming the key.
        type Check = fn(&Config, &Path) -> Result<(), ConfigError>;
        let checks: [Check; 14] = [
            Config::validate_people,
            Config::validate_backup,
            Config::validate_notify,
            Config::validate_paging,
            Config::validate_drills,
            Config::validate_durations,
            Config::validate_discord,
            Config::validate_services,
            Config::validate_status,
            Config::validate_approvals,
            Config::validate_targets,
            Config::validate_serve,
            Config::validate_state,
            Config::validate_restore,
        ];
        for check in checks {
            check(self, path)?;
        }
        Ok(())
    }

    /// `[people]`: known roles, one person per OS user, real Discord ids.
    fn validate_people(&self, path: &Path) -> Result<(), ConfigError> {
        for (name, p) in &self.people {
            for r in &p.roles {
                if !PERSON_ROLES.contains(&r.as_str()) {
                    return Err(invalid(
                        path,
                        format!(
                            "[people.{name}] has the unknown role `{r}`; roles are {}",
                            PERSON_ROLES.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut unix_users = BTreeSet::new();
        for (name, p) in &self.people {
            if let Some(u) = &p.unix_user
                && !unix_users.insert(u)
            {
                return Err(invalid(
                    path,
                    format!(
                        "[people.{name}] unix_user `{u}` is also another person's; each OS user proves one person"
                    ),
                ));
            }
        }
        for (name, p) in &self.people {
            if p.discord_id == Some(0) {
                return Err(invalid(
                    path,
                    format!("[people.{name}] discord_id must be a Discord id, not 0"),
                ));
            }
        }
        Ok(())
    }

    /// `[backup]` and `[retention]`.
    fn validate_backup(&self, path: &Path) -> Result<(), ConfigError> {
        if let Some(b) = &self.backup
            && b.xz_level > 9
        {
            return Err(invalid(
                path,
                format!("[backup] xz_level must be 0 to 9, not {}", b.xz_level),
            ));
        }
        if let Some(b) = &self.backup
            && b.xz_threads > 64
        {
            return Err(invalid(
                path,
                format!(
                    "[backup] xz_threads must be 0 (automatic) to 64, not {}",
                    b.xz_threads
                ),
            ));
        }
        if self.retention.min_keep == 0 {
            return Err(invalid(
                path,
                "[retention] min_keep must be at least 1: drbot never prunes the last backup"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// `[notify]`.
    fn validate_notify(&self, path: &Path) -> Result<(), ConfigError> {
        if let Some(n) = &self.notify
            && !SEVERITIES.contains(&n.min_severity.as_str())
        {
            return Err(invalid(
                path,
                format!(
                    "[notify] min_severity must be one of {}, not `{}`",
                    SEVERITIES.join(", "),
                    n.min_severity
                ),
            ));
        }
        if let Some(n) = &self.notify
            && !(1..=MAX_HTTP_TIMEOUT_SECS).contains(&n.timeout_secs)
        {
            return Err(invalid(
                path,
                format!(
                    "[notify] timeout_secs must be 1 to {MAX_HTTP_TIMEOUT_SECS}, not {}",
                    n.timeout_secs
                ),
            ));
        }
        Ok(())
    }

    /// `[contacts]` and `[paging]`: every group paging names has someone in it.
    fn validate_paging(&self, path: &Path) -> Result<(), ConfigError> {
        let groups: std::collections::BTreeSet<&str> = self
            .contacts
            .values()
            .flat_map(|c| c.groups.iter().map(String::as_str))
            .collect();
        for (key, c) in &self.contacts {
            if c.name.trim().is_empty() {
                return Err(invalid(path, format!("[contacts.{key}] needs a name")));
            }
        }
        if let Some(p) = &self.paging {
            let named = [("sev1", &p.sev1), ("sev2", &p.sev2), ("sev3", &p.sev3)]
                .into_iter()
                .flat_map(|(k, v)| v.iter().map(move |g| (k, g)))
                .chain(p.escalation.iter().map(|g| ("escalation", g)));
            for (key, group) in named {
                if !groups.contains(group.as_str()) {
                    return Err(invalid(
                        path,
                        format!(
                            "[paging] {key} names group `{group}`, which no [contacts.*] is in (groups: {})",
                            if groups.is_empty() {
                                "none".to_string()
                            } else {
                                groups.iter().copied().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    ));
                }
            }
            if p.escalate_after_mins == 0 {
                return Err(invalid(
                    path,
                    "[paging] escalate_after_mins must be at least 1".to_string(),
                ));
            }
        }
        Ok(())
    }

    /// `[drills]`: known kinds and periods, a server of its own, bounded checks.
    fn validate_drills(&self, path: &Path) -> Result<(), ConfigError> {
        for (kind, every) in &self.drills.schedule {
            if !DRILL_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    path,
                    format!(
                        "[drills] schedule names `{kind}`; the drills are {}",
                        DRILL_KINDS.join(", ")
                    ),
                ));
            }
            if !DRILL_PERIODS.iter().any(|(p, _)| p == every) {
                let periods: Vec<&str> = DRILL_PERIODS.iter().map(|(p, _)| *p).collect();
                return Err(invalid(
                    path,
                    format!(
                        "[drills] schedule.{kind} = \"{every}\" is not one of {}",
                        periods.join(", ")
                    ),
                ));
            }
        }
        if let Some((name, _)) = self
            .targets
            .iter()
            .find(|(_, t)| t.url_env == self.drills.scratch_url_env)
        {
            return Err(invalid(
                path,
                format!(
                    "[drills] scratch_url_env = \"{}\" is also [targets.{name}] url_env: a drill never works on a configured target; give drills a server of their own",
                    self.drills.scratch_url_env
                ),
            ));
        }
        if !(1..=3600).contains(&self.drills.app_check_timeout_secs) {
            return Err(invalid(
                path,
                format!(
                    "[drills] app_check_timeout_secs must be 1 to 3600, not {}",
                    self.drills.app_check_timeout_secs
                ),
            ));
        }
        if !(1..=1000).contains(&self.drills.media_sample) {
            return Err(invalid(
                path,
                format!(
                    "[drills] media_sample must be 1 to 1000, not {}",
                    self.drills.media_sample
                ),
            ));
        }
        Ok(())
    }

    /// Every duration is bounded, naming its key, so none can overflow where it is used.
    fn validate_durations(&self, path: &Path) -> Result<(), ConfigError> {
        // Every duration is used as a chrono Duration: bound them here, naming the key, so none
        // can overflow at use.
        let minutes = [
            ("[status] every_mins", self.status.every_mins),
            ("[status] quiet_mins", self.status.quiet_mins),
            ("[objectives] rto.database", self.objectives.rto.database),
            ("[objectives] rto.storage", self.objectives.rto.storage),
            ("[objectives] rto.search", self.objectives.rto.search),
            ("[objectives] rto.full", self.objectives.rto.full),
            ("[objectives] rpo.database", self.objectives.rpo.database),
            ("[objectives] rpo.storage", self.objectives.rpo.storage),
            ("[objectives] rpo.search", self.objectives.rpo.search),
            (
                "[storage.snapshots] every_mins",
                self.storage.as_ref().map_or(0, |s| s.snapshots.every_mins),
            ),
        ];
        for (key, v) in minutes {
            if v > MAX_MINUTES {
                return Err(invalid(
                    path,
                    format!("{key} must be at most {MAX_MINUTES} (a year in minutes), not {v}"),
                ));
            }
        }
        if self.approvals.ttl_secs > MAX_MINUTES * 60 {
            return Err(invalid(
                path,
                format!(
                    "[approvals] ttl_secs must be at most {} (a year), not {}",
                    MAX_MINUTES * 60,
                    self.approvals.ttl_secs
                ),
            ));
        }
        Ok(())
    }

    /// `[discord]`: real Discord ids (never 0; serenity refuses one).
    fn validate_discord(&self, path: &Path) -> Result<(), ConfigError> {
        // Discord ids are never 0 (and serenity refuses one).
        if let Some(d) = &self.discord {
            let ids = [
                ("guild_id", Some(d.guild_id)),
                ("incident_channel_id", Some(d.incident_channel_id)),
                ("stakeholder_channel_id", d.stakeholder_channel_id),
                ("approver_role_id", d.approver_role_id),
                ("commander_role_id", d.commander_role_id),
            ];
            for (key, id) in ids {
                if id == Some(0) {
                    return Err(invalid(
                        path,
                        format!("[discord] {key} must be a Discord id, not 0"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[storage]`, `[search]` and `[api]`.
    fn validate_services(&self, path: &Path) -> Result<(), ConfigError> {
        if let Some(s) = &self.storage
            && let Err(message) = s.validate()
        {
            return Err(invalid(path, message));
        }
        if let Some(s) = &self.search
            && !(1..=300).contains(&s.timeout_secs)
        {
            return Err(invalid(
                path,
                format!(
                    "[search] timeout_secs must be 1 to 300, not {}",
                    s.timeout_secs
                ),
            ));
        }
        if let Some(s) = &self.search
            && s.follow_secs > 3600
        {
            return Err(invalid(
                path,
                format!(
                    "[search] follow_secs must be at most 3600, not {}",
                    s.follow_secs
                ),
            ));
        }
        if let Some(a) = &self.api
            && !(1..=300).contains(&a.timeout_secs)
        {
            return Err(invalid(
                path,
                format!(
                    "[api] timeout_secs must be 1 to 300, not {}",
                    a.timeout_secs
                ),
            ));
        }
        Ok(())
    }

    /// `[status]`.
    fn validate_status(&self, path: &Path) -> Result<(), ConfigError> {
        if self.status.quiet_mins == 0 {
            return Err(invalid(
                path,
                "[status] quiet_mins must be at least 1".to_string(),
            ));
        }
        if self.status.every_mins == 0 {
            return Err(invalid(
                path,
                "[status] every_mins must be at least 1".to_string(),
            ));
        }
        Ok(())
    }

    /// `[approvals]`.
    fn validate_approvals(&self, path: &Path) -> Result<(), ConfigError> {
        for (key, n) in &self.approvals.required {
            let named = key
                .split_once(':')
                .is_some_and(|(kind, target)| !kind.is_empty() && !target.is_empty());
            if !named {
                return Err(invalid(
                    path,
                    format!(
                        "[approvals] required key `{key}` must be \"<action>:<target>\", e.g. \"db-restore:production\""
                    ),
                ));
            }
            if !(1..=MAX_APPROVALS).contains(n) {
                return Err(invalid(
                    path,
                    format!("[approvals] required.\"{key}\" must be 1 to {MAX_APPROVALS}, not {n}"),
                ));
            }
        }
        if self.approvals.ttl_secs == 0 {
            return Err(invalid(
                path,
                "[approvals] ttl_secs must be at least 1".to_string(),
            ));
        }
        Ok(())
    }

    /// `[targets]`: one-word names, at most one marked production.
    fn validate_targets(&self, path: &Path) -> Result<(), ConfigError> {
        let marked: Vec<&str> = self
            .targets
            .iter()
            .filter(|(_, t)| t.production)
            .map(|(n, _)| n.as_str())
            .collect();
        if marked.len() > 1 {
            return Err(invalid(
                path,
                format!(
                    "only one target may say production = true; {} do",
                    marked.join(" and ")
                ),
            ));
        }
        for name in self.targets.keys() {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(invalid(
                    path,
                    format!("target name `{name}` must be one word"),
                ));
            }
        }
        Ok(())
    }

    /// `[serve]`.
    fn validate_serve(&self, path: &Path) -> Result<(), ConfigError> {
        if let Some(g) = &self.serve.socket_group
            && (g.trim().is_empty() || g.contains(['/', ':', '\n']))
        {
            return Err(invalid(
                path,
                format!("[serve] socket_group `{g}` is not a group name"),
            ));
        }
        if let Some(d) = &self.serve.socket_dir
            && (d.as_os_str().is_empty() || d.starts_with(&self.data_dir) && d != &self.data_dir)
        {
            return Err(invalid(
                path,
                format!(
                    "[serve] socket_dir {} must be outside the data directory {} (or be it)",
                    d.display(),
                    self.data_dir.display()
                ),
            ));
        }
        Ok(())
    }

    /// `[state]`.
    fn validate_state(&self, path: &Path) -> Result<(), ConfigError> {
        if !(1..=MAX_MINUTES).contains(&self.state.export_every_mins) {
            return Err(invalid(
                path,
                format!(
                    "[state] export_every_mins must be 1 to {MAX_MINUTES}, not {}",
                    self.state.export_every_mins
                ),
            ));
        }
        if self.state.keep == 0 {
            return Err(invalid(path, "[state] keep must be at least 1".to_string()));
        }
        if self.state.prefix.trim_matches('/').is_empty() {
            return Err(invalid(
                path,
                "[state] prefix must name a folder, e.g. \"state/\"".to_string(),
            ));
        }
        Ok(())
    }

    /// `[restore]`.
    fn validate_restore(&self, path: &Path) -> Result<(), ConfigError> {
        if !(1..=MAX_MAINTENANCE_WORK_MEM_MB).contains(&self.restore.maintenance_work_mem_mb) {
            return Err(invalid(
                path,
                format!(
                    "[restore] maintenance_work_mem_mb must be 1 to {MAX_MAINTENANCE_WORK_MEM_MB}, not {}",
                    self.restore.maintenance_work_mem_mb
                ),
            ));
        }
        if !(1..=16).contains(&self.restore.staged_sessions) {
            return Err(invalid(
                path,
                format!(
                    "[restore] staged_sessions must be 1 to 16, not {}",
                    self.restore.staged_sessions
                ),
            ));
        }
        if !(1..=MAX_LOCK_WAIT_SECS).contains(&self.restore.lock_wait_secs) {
            return Err(invalid(
                path,
                format!(
                    "[restore] lock_wait_secs must be 1 to {MAX_LOCK_WAIT_SECS}, not {}",
                    self.restore.lock_wait_secs
                ),
            ));
        }
        Ok(())
    }

    /// The environment variables whose values are secrets (tokens, keys, database URLs with
    /// their passwords), configured or drbot's fixed ones: redacted wherever they appear.
    pub fn secret_envs(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "RESEND_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(self.targets.values().map(|t| t.url_env.clone()));
        if let Some(d) = &self.discord {
            v.push(d.token_env.clone());
        }
        if let Some(s) = &self.search {
            v.push(s.key_env.clone());
        }
        if let Some(a) = &self.api {
            v.push(a.token_env.clone());
        }
        if let Some(n) = &self.notify {
            v.push(n.statuspage_webhook_env.clone());
        }
        if let Some(k) = self
            .paging
            .as_ref()
            .and_then(|p| p.pagerduty_routing_key_env.as_ref())
        {
            v.push(k.clone());
        }
        if let Some(k) = &self.check.stripe_key_env {
            v.push(k.clone());
        }
        v.push(self.drills.scratch_url_env.clone());
        v.sort();
        v.dedup();
        v
    }

    /// True when `[people]` lists anyone (identities must then be proven).
    pub fn has_people(&self) -> bool {
        !self.people.is_empty()
    }
}

/// The config at `path` is invalid: `message` says why, naming the key.
fn invalid(path: &Path, message: String) -> ConfigError {
    ConfigError::Invalid {
        message,
        path: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../deploy/config.example.toml");

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_need_no_file() {
        let (c, s) = Config::load(None, no_env).expect("test setup");
        assert_eq!(s, Source::Defaults);
        assert_eq!(c.data_dir, PathBuf::from("./drbot-data"));
        assert_eq!(c.objectives.rto.database, 120);
        assert_eq!(c.objectives.rpo.search, 15);
        assert!(c.discord.is_none() && c.targets.is_empty());
    }

    #[test]
    fn the_deploy_template_parses_with_every_section() {
        let c = Config::from_toml(TEMPLATE, Path::new("config.example.toml")).expect("test setup");
        assert!(c.discord.is_some() && c.storage.is_some() && c.backup.is_some());
        assert!(c.search.is_some() && c.api.is_some() && c.notify.is_some());
        assert!(c.targets.contains_key("production") && c.targets.contains_key("staging"));
        assert_eq!(c.targets["production"].url_env, "DATABASE_URL");
        assert_eq!(c.drills.period_days("database"), Some(30));
        assert_eq!(c.drills.period_days("full"), Some(91));
        assert_eq!(c.drills.app_checks.len(), 1);
    }

    #[test]
    fn a_bad_drill_schedule_is_refused_naming_the_key() {
        for (text, says) in [
            (
                "[drills]\nschedule = { database = \"fortnightly\" }",
                "schedule.database",
            ),
            ("[drills]\nschedule = { search = \"monthly\" }", "`search`"),
            ("[drills]\nmedia_sample = 0", "media_sample"),
            (
                "[targets.production]\nurl_env = \"DATABASE_URL\"\n[drills]\nscratch_url_env = \"DATABASE_URL\"",
                "also [targets.production] url_env",
            ),
        ] {
            let e = Config::from_toml(text, Path::new("c.toml")).expect_err(text);
            assert!(e.to_string().contains(says), "{e}");
        }
        let c = Config::from_toml(
            "[drills]\nschedule = { storage = \"weekly\" }",
            Path::new("c.toml"),
        )
        .expect("parses");
        assert_eq!(c.drills.period_days("storage"), Some(7));
        assert_eq!(c.drills.period_days("database"), None);
        assert!(c.secret_envs().contains(&"DRILL_DATABASE_URL".to_string()));
    }

    #[test]
    fn environment_overrides_the_data_dir_and_names_the_file() {
        let dir = tempfile::tempdir().expect("test setup");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[status]\nevery_mins = 5\n",
        )
        .expect("test setup");
        let f = file.to_string_lossy().to_string();
        let env = |k: &str| match k {
            CONFIG_ENV => Some(f.clone()),
            DATA_DIR_ENV => Some("/from/env".to_string()),
            _ => None,
        };
        let (c, s) = Config::load(None, env).expect("test setup");
        assert_eq!(s, Source::File(file.clone()));
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        assert_eq!(c.status.every_mins, 5);
        // A partial objectives table keeps the runbook's other targets.
        let c = Config::from_toml("[objectives]\nrto = { database = 90 }\n", &file)
            .expect("test setup");
        assert_eq!(
            (c.objectives.rto.database, c.objectives.rto.full),
            (90, 240)
        );
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let p = Path::new("c.toml");
        let cases = [
            ("data_dri = \"x\"", "unknown field `data_dri`"),
            (
                "[targets.a]\nurl_env = \"A\"\nproduction = true\n[targets.b]\nurl_env = \"B\"\nproduction = true",
                "only one target may say production = true; a and b do",
            ),
            ("[people.a]\nroles = [\"boss\"]", "unknown role `boss`"),
            ("[backup]\nxz_level = 12", "xz_level must be 0 to 9"),
            (
                "[storage]\nbackup_bucket = \"b\"\n[storage.snapshots]\nprefix = \"db/x/\"",
                "[storage.snapshots] prefix `db/x/` and [storage] db_prefix `db/` overlap",
            ),
            (
                "[storage]\nbackup_bucket = \"b\"\n[storage.snapshots]\nprefix = \"media\"",
                "must be a folder such as \"media/\"",
            ),
            (
                "[storage]\nbackup_bucket = \"b\"\nmedia_bucket = \"b\"",
                "media_bucket and backup_bucket are both `b`",
            ),
            (
                "[storage]\nbackup_bucket = \"b\"\n[storage.snapshots]\nconcurrency = 0",
                "[storage.snapshots] concurrency must be 1 to 256",
            ),
            (
                "[storage]\nbackup_bucket = \"b\"\n[storage.snapshots]\nevery_mins = 9999999",
                "[storage.snapshots] every_mins must be at most",
            ),
            (
                "[backup]\nxz_threads = 100000",
                "[backup] xz_threads must be 0",
            ),
            ("[status]\nevery_mins = 0", "every_mins must be at least 1"),
            (
                "[notify]\nmin_severity = \"sev9\"",
                "min_severity must be one of",
            ),
            (
                "[people.a]\nunix_user = \"u\"\n[people.b]\nunix_user = \"u\"",
                "also another person's",
            ),
            (
                "[targets.production]\nurl = \"postgres://x\"",
                "unknown field `url`",
            ),
            ("[approvals]\nttl_secs = \"soon\"", "invalid type"),
            (
                "[status]\nquiet_mins = 18446744073709551615",
                "[status] quiet_mins must be at most 525600",
            ),
            (
                "[objectives]\nrpo = { database = 99999999999 }",
                "[objectives] rpo.database must be at most",
            ),
            (
                "[approvals]\nttl_secs = 9223372036854775807",
                "[approvals] ttl_secs must be at most",
            ),
            (
                "[discord]\nguild_id = 0\nincident_channel_id = 2",
                "[discord] guild_id must be a Discord id, not 0",
            ),
            (
                "[discord]\nguild_id = 1\nincident_channel_id = 2\napprover_role_id = 0",
                "[discord] approver_role_id must be a Discord id",
            ),
            (
                "[people.a]\ndiscord_id = 0",
                "[people.a] discord_id must be a Discord id",
            ),
            (
                "[restore]\nmaintenance_work_mem_mb = 0",
                "[restore] maintenance_work_mem_mb must be 1 to 2097151",
            ),
            (
                "[restore]\nlock_wait_secs = 0",
                "[restore] lock_wait_secs must be 1 to 86400",
            ),
            (
                "[restore]\nlock_wait_secs = 86401",
                "[restore] lock_wait_secs must be 1 to 86400",
            ),
            (
                "[approvals]\nrequired = { \"db-restore\" = 2 }",
                "[approvals] required key `db-restore` must be",
            ),
            (
                "[approvals]\nrequired = { \"db-restore:production\" = 0 }",
                "[approvals] required.\"db-restore:production\" must be 1 to 5",
            ),
            (
                "[notify]\ntimeout_secs = 0",
                "[notify] timeout_secs must be 1 to 300",
            ),
            (
                "[notify]\ntimeout_secs = 18446744073709551615",
                "[notify] timeout_secs must be 1 to 300",
            ),
        ];
        for (text, want) in cases {
            let e = Config::from_toml(text, p).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("c.toml"), "{text}: {e}");
        }
        let e = Config::load(Some(Path::new("/nonexistent/drbot.toml")), no_env).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read the config file /nonexistent/drbot.toml")
        );
    }
}
