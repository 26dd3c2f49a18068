//! `server backup --to FILE` and `server restore --from FILE` (SQLite), and `server erasures
//! replay` (either backend). A backup is one file: the database, copied by SQLite's online
//! backup API (one consistent state while the server serves), and the photos it refers to,
//! sealed with ChaCha20-Poly1305 under the backup key, mode 0600. A restore puts both back
//! (with the server stopped) and re-applies every erasure the journal holds since the backup.
//! Redis is backed up by Redis itself (RDB/AOF, see the README); `erasures replay` re-applies
//! the journal after such a restore.

mod archive;
mod journal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::Connection;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::archive::Archive;
pub use self::journal::Journal;
use crate::clock::Clock;
use crate::config::Settings;
use crate::erasure::{Erasure, ErasureOf};
use crate::receipts::{blob_key, PhotoKind, ReceiptOrder};
use crate::store::{Backend, BlobStore, SqliteStore};

/// `[backup]`: where backups and the erasure journal live, and the key backups are sealed under.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// Unset: `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// Unset: in development a key kept in the data directory; production's backup and
    /// restore commands refuse to run without one (the server itself never needs it).
    pub key: Option<SecretString>,
}

impl BackupSettings {
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }

    pub fn journal(&self, data_dir: &Path) -> Journal {
        Journal::in_dir(&self.dir(data_dir))
    }
}

const DATABASE: &str = "banzheng.db";
const META: &str = "meta.json";
const BLOBS: &str = "blobs/";

/// An erasure journaled this long before a backup started may still have been erasing while
/// the copy was taken: a restore re-applies it too (re-applying is harmless).
const ERASURE_IN_FLIGHT: TimeDelta = TimeDelta::minutes(10);

#[derive(serde::Serialize, Deserialize)]
struct Meta {
    started_at_ms: i64,
}

#[derive(Debug)]
pub struct BackupReport {
    pub database_bytes: usize,
    pub photos: usize,
    pub file_bytes: usize,
}

#[derive(Debug)]
pub struct RestoreReport {
    pub started_at: DateTime<Utc>,
    pub photos: usize,
    pub erasures_reapplied: usize,
}

fn sqlite_only(settings: &Settings) -> anyhow::Result<()> {
    if settings.redis_url.is_some() {
        bail!(
            "BANZHENG_REDIS_URL is set: Redis is backed up by Redis (RDB snapshots or the \
             append-only file, see the README); after restoring one, run `server erasures replay`"
        );
    }
    Ok(())
}

/// The backup key: the setting, or in development one kept in the data directory.
fn key_of(settings: &Settings) -> anyhow::Result<archive::Key> {
    let secret = match (&settings.backup.key, settings.is_production()) {
        (Some(key), _) => key.clone(),
        (None, true) => bail!(
            "BANZHENG_BACKUP__KEY (backup.key) is required to back up or restore in production \
             mode: it encrypts the backups (e.g. `openssl rand -hex 32`; keep it apart from them)"
        ),
        (None, false) => crate::auth::token::development_secret(&settings.data_dir, "backup-key")?,
    };
    Ok(archive::Key::new(secret.expose_secret().as_bytes()))
}

/// Backs the SQLite database and its photos up into `to` (replaced), while the server serves.
pub async fn backup(settings: &Settings, to: &Path) -> anyhow::Result<BackupReport> {
    sqlite_only(settings)?;
    let key = key_of(settings)?;
    let database = settings.data_dir.join(DATABASE);
    if !database.exists() {
        bail!("no database at {}", database.display());
    }
    let started_at = Utc::now();
    let work = tempfile::tempdir()?;
    let snapshot = work.path().join(DATABASE);
    {
        let source = Connection::open(&database)?;
        source.busy_timeout(std::time::Duration::from_secs(30))?;
        let mut copy = Connection::open(&snapshot)?;
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
        // Every page in one step: one read transaction, so the copy is one state of the
        // database whatever the server writes meanwhile.
        backup.step(-1)?;
    }
    let mut archive = Archive::default();
    archive.add(
        META,
        serde_json::to_vec(&Meta {
            started_at_ms: started_at.timestamp_millis(),
        })?,
    );
    let blobs = settings.data_dir.join("blobs");
    let mut photos = 0;
    for photo in photo_keys(&snapshot)? {
        // A photo deleted since the copy (an erasure) stays gone: the journal has it.
        match std::fs::read(blobs.join(&photo)) {
            Ok(bytes) => {
                archive.add(&format!("{BLOBS}{photo}"), bytes);
                photos += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context(format!("reading photo {photo}")),
        }
    }
    let database_bytes = std::fs::read(&snapshot)?;
    let database_len = database_bytes.len();
    archive.add(DATABASE, database_bytes);
    let sealed = archive.seal(&key)?;
    write_private(to, &sealed).with_context(|| format!("writing {}", to.display()))?;
    Ok(BackupReport {
        database_bytes: database_len,
        photos,
        file_bytes: sealed.len(),
    })
}

/// The photos the orders in the database at `path` stand on.
fn photo_keys(path: &Path) -> anyhow::Result<Vec<String>> {
    let conn = Connection::open(path)?;
    let mut statement = conn.prepare("SELECT doc FROM receipt_orders")?;
    let docs = statement
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut keys = Vec::new();
    for doc in docs {
        let order: ReceiptOrder = serde_json::from_str(&doc).context("a stored order")?;
        keys.extend([PhotoKind::Original, PhotoKind::Normalised].map(|k| blob_key(&order, k)));
    }
    Ok(keys)
}

/// `bytes` into `path` (replacing it) for the server's user only: written aside, synced and
/// renamed, so `path` is the old file or the whole new one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // NamedTempFile is created 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Restores the database and photos of `from` into the data directory (the server must be
/// stopped), then re-applies the erasures journaled since the backup.
pub async fn restore(settings: &Settings, from: &Path) -> anyhow::Result<RestoreReport> {
    sqlite_only(settings)?;
    let key = key_of(settings)?;
    let sealed = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut archive = Archive::open(&sealed, &key)?;
    let meta: Meta = serde_json::from_slice(&archive.take(META).context("no meta.json")?)?;
    let started_at =
        DateTime::from_timestamp_millis(meta.started_at_ms).context("the backup's start time")?;
    let database_bytes = archive
        .take(DATABASE)
        .context("no database in the backup")?;
    let data_dir = &settings.data_dir;
    crate::store::private_dir(data_dir)?;
    let database = data_dir.join(DATABASE);
    // The old WAL belongs to the old file: applied to the restored one it would corrupt it.
    for suffix in ["-wal", "-shm"] {
        let mut file = database.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    write_private(&database, &database_bytes)?;
    match std::fs::remove_dir_all(data_dir.join("blobs")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let store = Arc::new(SqliteStore::open(&database)?);
    let mut photos = 0;
    for (name, bytes) in archive.into_entries() {
        let photo = name
            .strip_prefix(BLOBS)
            .with_context(|| format!("unexpected entry `{name}` in the backup"))?;
        store.blob_put(photo, &bytes).await?;
        photos += 1;
    }
    let erasures_reapplied =
        reapply_journal(settings, store, started_at - ERASURE_IN_FLIGHT).await?;
    Ok(RestoreReport {
        started_at,
        photos,
        erasures_reapplied,
    })
}

/// Re-applies the journal's erasures since `since` (all of them: `None`) to the configured
/// store: after Redis was restored from an RDB or AOF file. Returns how many.
pub async fn replay(settings: &Settings, since: Option<DateTime<Utc>>) -> anyhow::Result<usize> {
    let since = since.unwrap_or(DateTime::<Utc>::MIN_UTC);
    match crate::store::open(
        settings.redis_url.as_deref(),
        &settings.redis_key_prefix,
        &settings.data_dir,
        settings.store_durability(),
    )
    .await?
    {
        Backend::Sqlite(store) => reapply_journal(settings, store, since).await,
        Backend::Redis(store) => reapply_journal(settings, store, since).await,
    }
}

async fn reapply_journal<S>(
    settings: &Settings,
    store: Arc<S>,
    since: DateTime<Utc>,
) -> anyhow::Result<usize>
where
    S: crate::startup::AllStores + 'static,
{
    let journal = settings.backup.journal(&settings.data_dir);
    let erasures: Vec<ErasureOf> = journal.since(since)?;
    let erasure = Erasure::over(
        store,
        journal,
        settings.erasure.clone(),
        Arc::new(Clock::default()),
    );
    for each in &erasures {
        erasure.reapply(each).await?;
    }
    Ok(erasures.len())
}
