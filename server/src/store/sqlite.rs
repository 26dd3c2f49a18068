//! The embedded backend: one SQLite file in WAL mode. Writes go through one connection (SQLite
//! has one writer anyway, and a mutex is cheaper than busy retries); reads use a few more.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{KvStore, StoreError};

/// Versioned migrations, applied in order at start-up; a version never changes once released.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_foundation.sql")),
    (2, include_str!("../../migrations/0002_admins.sql")),
    (3, include_str!("../../migrations/0003_notify.sql")),
    (4, include_str!("../../migrations/0004_booking.sql")),
    (5, include_str!("../../migrations/0005_receipts.sql")),
    (
        6,
        include_str!("../../migrations/0006_receipt_expiry_in_domain.sql"),
    ),
    (7, include_str!("../../migrations/0007_user_phone.sql")),
    (
        1501,
        include_str!("../../migrations/1501_forget_session_keys.sql"),
    ),
    (
        1503,
        include_str!("../../migrations/1503_admin_accounts_and_audit.sql"),
    ),
    (
        1511,
        include_str!("../../migrations/1511_booking_rules_per_account.sql"),
    ),
    (
        2011,
        include_str!("../../migrations/2011_privacy_consent.sql"),
    ),
    (
        2101,
        include_str!("../../migrations/2101_kf_conversations.sql"),
    ),
    (
        2051,
        include_str!("../../migrations/2051_pending_erasures.sql"),
    ),
];

/// Recorded among the migrations once the file was first scrubbed (`scrub`): the free pages and
/// WAL of a database from before issue 15 may hold plain ID numbers of changed or deleted rows.
const FIRST_SCRUB: i64 = 1502;

const READERS: usize = 4;

#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<[Mutex<Connection>]>,
    next_reader: Arc<AtomicUsize>,
    /// Photos and other blobs: files beside the database.
    pub(super) blobs: PathBuf,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(code, _)
                if matches!(
                    code.code,
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Backend(other.to_string()),
        }
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL lets readers run beside the writer; FULL makes an acknowledged write durable.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // What is deleted or overwritten is zeroed, not left in free pages (personal data).
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The database for the server's user only (0600): created so before SQLite opens it, which
/// then gives its WAL and shared-memory files the same mode; existing files are made so.
fn private_files(database: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(database)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = database.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// The value of the unexpired key-value entry `key` (also inside a transaction: a guard).
pub fn live_kv_value(c: &rusqlite::Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(c.query_row(
        "SELECT value FROM kv WHERE key = ?1 AND expires_at > ?2",
        params![key, now_ms()],
        |r| r.get(0),
    )
    .optional()?)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        private_files(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot make {} private: {e}", path.display()))
        })?;
        // Migrated on a connection of its own: one that edits the schema in place (2101)
        // leaves that connection's cached schema behind, never the writer's.
        migrate(&mut connect(path)?)?;
        let writer = connect(path)?;
        let readers = (0..READERS)
            .map(|_| connect(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            readers: readers.into(),
            next_reader: Arc::new(AtomicUsize::new(0)),
            blobs: super::blob::blob_dir(path),
        })
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer: all of it commits, or none of it.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = self.writer.clone();
        blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        blocking(move || {
            let conn = readers[index].lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Each capability has its own reserved numbers and they land in any order, so apply every
    // missing version rather than only those above the highest applied.
    let applied: Vec<i64> = tx
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, chrono::Utc::now().to_rfc3339()],
        )?;
        tracing::info!(version, "applied SQLite migration");
    }
    tx.commit()?;
    Ok(())
}

/// Removes a few expired keys on each write, so the table does not grow without a sweeper.
fn sweep_expired(tx: &rusqlite::Transaction) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at <= ?1 LIMIT 16)",
        [now_ms()],
    )?;
    Ok(())
}

fn expiry(ttl: Duration) -> i64 {
    now_ms() + ttl.as_millis() as i64
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| live_kv_value(c, &key)).await
    }

    async fn kv_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |tx| {
            sweep_expired(tx)?;
            tx.execute(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                params![key, value, expiry(ttl)],
            )?;
            Ok(())
        })
        .await
    }

    async fn kv_set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |tx| {
            let changed = tx.execute(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE kv.expires_at <= ?4",
                params![key, value, expiry(ttl), now_ms()],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM kv WHERE key = ?1 AND expires_at > ?2",
                params![key, now_ms()],
            )? == 1)
        })
        .await
    }

    async fn kv_delete_if_eq(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        let (key, expected) = (key.to_owned(), expected.to_owned());
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM kv WHERE key = ?1 AND value = ?2 AND expires_at > ?3",
                params![key, expected, now_ms()],
            )? == 1)
        })
        .await
    }

    async fn kv_incr(&self, key: &str, ttl: Duration) -> Result<i64, StoreError> {
        let key = key.to_owned();
        self.write(move |tx| {
            sweep_expired(tx)?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, '1', ?2)
                 ON CONFLICT (key) DO UPDATE SET
                   value = CASE WHEN kv.expires_at <= ?3 THEN '1' ELSE CAST(kv.value AS INTEGER) + 1 END,
                   expires_at = CASE WHEN kv.expires_at <= ?3 THEN excluded.expires_at ELSE kv.expires_at END",
                params![key, expiry(ttl), now],
            )?;
            let count: String =
                tx.query_row("SELECT value FROM kv WHERE key = ?1", [&key], |r| r.get(0))?;
            count
                .parse()
                .map_err(|_| StoreError::Backend(format!("counter {key} is not a number")))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn scrub(&self, changed: bool) -> Result<(), StoreError> {
        let writer = self.writer.clone();
        blocking(move || {
            let conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            let done = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [FIRST_SCRUB],
                |r| r.get::<_, bool>(0),
            )?;
            if done && !changed {
                return Ok(());
            }
            conn.execute(
                "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![FIRST_SCRUB, chrono::Utc::now().to_rfc3339()],
            )?;
            // VACUUM rewrites the file without free pages; the checkpoint moves it out of the
            // WAL and truncates the WAL, so no page of the old file remains.
            conn.execute_batch("VACUUM")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            tracing::info!("SQLite file scrubbed of deleted and overwritten data");
            Ok(())
        })
        .await
    }
}
