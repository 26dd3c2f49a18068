//! `server backup --to FILE` and `server restore --from FILE` (SQLite). A backup is one
//! file: the database, copied by SQLite's online backup API (one consistent state while the
//! server serves), and the photos it refers to, sealed with ChaCha20-Poly1305 under the backup
//! key, mode 0600. A restore puts both back (with the server stopped); the caller then
//! re-applies the erasures journaled since (`Restored::replay_since`). Redis is backed up by
//! Redis itself (RDB/AOF, see the README), and `server erasures replay` re-applies the journal.

mod archive;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::Connection;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::archive::Archive;
pub use self::archive::Key;
use crate::erasure::Journal;
use crate::receipts::{blob_key, PhotoKind, ReceiptOrder};
use crate::store::{BlobStore, SqliteStore};

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

    /// The backup key: the setting, or in development one kept in `data_dir`.
    pub fn key(&self, production: bool, data_dir: &Path) -> anyhow::Result<Key> {
        let secret = match (&self.key, production) {
            (Some(key), _) => key.clone(),
            (None, true) => bail!(
                "BANZHENG_BACKUP__KEY (backup.key) is required to back up or restore in \
                 production mode: it encrypts the backups (e.g. `openssl rand -hex 32`; keep it \
                 apart from them)"
            ),
            (None, false) => crate::auth::token::development_secret(data_dir, "backup-key")?,
        };
        Ok(Key::new(secret.expose_secret().as_bytes()))
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

/// A restored data directory, its store opened.
pub struct Restored {
    pub store: Arc<SqliteStore>,
    pub started_at: DateTime<Utc>,
    pub photos: usize,
    /// The journal's erasures from then on are to be applied again.
    pub replay_since: DateTime<Utc>,
}

/// Backs the SQLite database in `data_dir` and its photos up into `to` (replaced), while the
/// server serves.
pub async fn backup(data_dir: &Path, key: &Key, to: &Path) -> anyhow::Result<BackupReport> {
    let database = data_dir.join(DATABASE);
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
    let blobs = data_dir.join("blobs");
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
    let sealed = archive.seal(key)?;
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

/// A server running over `database` keeps it open, and SQLite leaves WAL mode only when no
/// other connection has the file open: the one way to tell without knowing the server's port.
fn refuse_if_in_use(database: &Path) -> anyhow::Result<()> {
    if !database.exists() {
        return Ok(());
    }
    let conn = Connection::open(database)?;
    let mode = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    });
    match mode {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => Ok(()),
        _ => bail!(
            "{} is in use: stop the server before restoring",
            database.display()
        ),
    }
}

/// Restores the database and photos of `from` into `data_dir` (the server must be stopped).
pub async fn restore(data_dir: &Path, key: &Key, from: &Path) -> anyhow::Result<Restored> {
    let sealed = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut archive = Archive::open(&sealed, key)?;
    let meta: Meta = serde_json::from_slice(&archive.take(META).context("no meta.json")?)?;
    let started_at =
        DateTime::from_timestamp_millis(meta.started_at_ms).context("the backup's start time")?;
    let database_bytes = archive
        .take(DATABASE)
        .context("no database in the backup")?;
    crate::store::private_dir(data_dir)?;
    let database = data_dir.join(DATABASE);
    refuse_if_in_use(&database)?;
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
    Ok(Restored {
        store,
        started_at,
        photos,
        replay_since: started_at - ERASURE_IN_FLIGHT,
    })
}
