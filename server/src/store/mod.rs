//! Storage: one `Store` trait, two backends. SQLite is the embedded default; Redis lets any
//! number of stateless instances share all state. Each capability declares the storage calls
//! it needs as a trait of its own (users live in `auth`), implemented for both backends; the
//! generic pieces every capability uses (key-value with expiry, locks) live here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::admin::AdminStore;
use crate::auth::UserStore;
use crate::booking::BookingStore;
use crate::config::Settings;
use crate::notify::NotifyStore;
use crate::receipts::ReceiptStore;

pub mod blob;
mod redis;
mod sqlite;

pub use self::blob::BlobStore;
pub use self::redis::RedisStore;
pub use self::sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached; callers get 503 and the store recovers by itself.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Backend(String),
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => crate::error::ApiError::StoreUnavailable(why),
            StoreError::Backend(why) => crate::error::ApiError::Internal(why),
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
}

/// Everything the server stores. Each capability adds its own trait here.
pub trait Store:
    KvStore + BlobStore + UserStore + AdminStore + BookingStore + ReceiptStore + NotifyStore
{
}
impl<
        T: KvStore + BlobStore + UserStore + AdminStore + BookingStore + ReceiptStore + NotifyStore,
    > Store for T
{
}

/// A lock with expiry, so a crashed holder cannot keep it forever.
pub struct Lock<'a> {
    store: &'a dyn Store,
    key: String,
    owner: String,
}

impl<'a> Lock<'a> {
    /// Takes the lock `name` when free; `None` when someone else holds it.
    pub async fn try_acquire(
        store: &'a dyn Store,
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

/// Opens the configured backend: Redis when a URL is set, else SQLite under the data directory.
pub async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &settings.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url, &settings.redis_key_prefix).await?),
        None => {
            std::fs::create_dir_all(&settings.data_dir)?;
            Arc::new(SqliteStore::open(&settings.data_dir.join("banzheng.db"))?)
        }
    })
}
