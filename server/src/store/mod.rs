//! Storage: two backends. SQLite is the embedded default; Redis lets any number of stateless
//! instances share all state. Each capability declares the storage calls it needs as a trait
//! of its own (users live in `auth`), implemented for both backends, and asks for no more; the
//! generic pieces every capability uses (key-value with expiry, locks, blobs) live here, and
//! this module knows no capability.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub mod blob;
pub mod durability;
pub mod plan;
mod redis;
mod replicas;
mod sqlite;

pub use self::blob::BlobStore;
use self::durability::Durability;
pub use self::redis::{RedisAt, RedisConn, RedisStore};
pub use self::replicas::ReplicaWait;
pub use self::sqlite::{live_kv_value, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached; callers get 503 and the store recovers by itself.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Backend(String),
    /// The write is stored, but fewer replicas than asked for had it when the wait was over
    /// (`BANZHENG_REDIS_WAIT_REPLICAS`): a failover now may lose it, or may not.
    #[error("stored, but {acknowledged} of {wanted} replicas had it in time")]
    NotReplicated { acknowledged: u32, wanted: u32 },
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => crate::error::ApiError::StoreUnavailable(why),
            StoreError::Backend(why) => crate::error::ApiError::Internal(why),
            StoreError::NotReplicated { .. } => crate::error::ErrorCode::NotReplicated.into(),
        }
    }
}

/// Key-value with expiry: tokens, idempotency records, rate-limit windows, locks.
#[async_trait]
pub trait KvStore: Send + Sync {
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn kv_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;
    /// Sets only when absent (or expired); true when this call set it.
    async fn kv_set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    async fn kv_delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Deletes only when the value is still `expected`: a compare-and-delete, so a caller
    /// never removes what another caller has put there since.
    async fn kv_delete_if_eq(&self, key: &str, expected: &str) -> Result<bool, StoreError>;
    /// Adds one to a counter that expires `ttl` after its first increment; returns the count.
    async fn kv_incr(&self, key: &str, ttl: Duration) -> Result<i64, StoreError>;
    /// Round-trips to the backend: readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    fn backend_name(&self) -> &'static str;
    /// Leaves no bytes of deleted or overwritten values in the store's files, if `changed` (or
    /// never done): SQLite's free pages and WAL. Redis keeps no old values to scrub.
    async fn scrub(&self, changed: bool) -> Result<(), StoreError>;
}

/// A lock with expiry, so a crashed holder cannot keep it forever.
pub struct Lock<'a> {
    store: &'a dyn KvStore,
    key: String,
    owner: String,
}

impl<'a> Lock<'a> {
    /// Takes the lock `name` when free; `None` when someone else holds it.
    pub async fn try_acquire(
        store: &'a dyn KvStore,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lock<'a>>, StoreError> {
        let key = format!("lock:{name}");
        let owner = uuid::Uuid::new_v4().to_string();
        Ok(store
            .kv_set_if_absent(&key, &owner, ttl)
            .await?
            .then_some(Lock { store, key, owner }))
    }

    /// Releases the lock if this holder still has it (it may have expired and passed on).
    pub async fn release(self) -> Result<bool, StoreError> {
        self.store.kv_delete_if_eq(&self.key, &self.owner).await
    }
}

/// Creates `dir` (and missing parents) for the server's user only (0700), and makes an
/// existing one so: personal data lives under it, whatever the umask.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// The configured backend, as its own type: start-up hands each capability the store traits
/// that capability asks for.
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Redis(Arc<RedisStore>),
}

/// Opens Redis (one node or a cluster) when it is given (its keys under `redis_key_prefix`),
/// else SQLite in `data_dir`. With `durability`, a Redis that does not keep acknowledged
/// writes as it asks is refused, and checked again while the server runs; with `replicas`,
/// Redis plans' writes are acknowledged once that many replicas have them.
pub async fn open(
    redis: Option<RedisAt<'_>>,
    redis_key_prefix: &str,
    data_dir: &Path,
    durability: Option<Durability>,
    replicas: Option<ReplicaWait>,
) -> anyhow::Result<Backend> {
    Ok(match redis {
        Some(at) => {
            let mut store = RedisStore::connect(at, redis_key_prefix).await?;
            if let Some(wait) = replicas {
                store = store.waiting_for(at, wait)?;
            }
            store.require(durability).await?;
            Backend::Redis(Arc::new(store))
        }
        None => {
            private_dir(data_dir)?;
            Backend::Sqlite(Arc::new(SqliteStore::open(&data_dir.join("banzheng.db"))?))
        }
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Every directory under `dir` (and itself) 0700, every file 0600; returns the files.
    fn assert_private(dir: &Path) -> Vec<String> {
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(assert_private(&path));
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        files
    }

    #[tokio::test]
    async fn the_data_directory_and_its_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        // An existing database the umask made readable is made private too.
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("banzheng.db"), b"").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let Backend::Sqlite(store) = open(None, "bz", &data, None, None).await.unwrap() else {
            unreachable!("no Redis URL")
        };
        store
            .kv_set("k", "v", Duration::from_secs(60))
            .await
            .unwrap();
        store
            .blob_put("receipt-orders/o1/1/original.jpg", b"photo")
            .await
            .unwrap();
        let mut files = assert_private(&data);
        files.sort();
        assert_eq!(
            files,
            [
                "banzheng.db",
                "banzheng.db-shm",
                "banzheng.db-wal",
                "original.jpg"
            ]
        );
    }
}
