//! The erasures that kept something still needed, until the sweep has erased it too.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use rusqlite::params;

use crate::store::{RedisStore, SqliteStore, StoreError};

/// One erasure on request: whose, and when (what was stored by then is erased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureOf {
    pub user_id: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ErasureStore: Send + Sync {
    async fn add_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError>;
    async fn pending_erasures(&self) -> Result<Vec<ErasureOf>, StoreError>;
    async fn remove_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError>;
}

#[async_trait]
impl ErasureStore for SqliteStore {
    async fn add_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError> {
        let (user_id, at) = (erasure.user_id.clone(), erasure.at.timestamp_millis());
        self.write(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO pending_erasures (user_id, erased_at) VALUES (?1, ?2)",
                params![user_id, at],
            )?;
            Ok(())
        })
        .await
    }

    async fn pending_erasures(&self) -> Result<Vec<ErasureOf>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare("SELECT user_id, erased_at FROM pending_erasures")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.map(|row| {
                let (user_id, at): (String, i64) = row?;
                erasure_of(user_id, at)
            })
            .collect()
        })
        .await
    }

    async fn remove_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError> {
        let (user_id, at) = (erasure.user_id.clone(), erasure.at.timestamp_millis());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM pending_erasures WHERE user_id = ?1 AND erased_at = ?2",
                params![user_id, at],
            )?;
            Ok(())
        })
        .await
    }
}

fn erasure_of(user_id: String, at_ms: i64) -> Result<ErasureOf, StoreError> {
    let at = DateTime::from_timestamp_millis(at_ms)
        .ok_or_else(|| StoreError::Backend(format!("bad erasure time {at_ms}")))?;
    Ok(ErasureOf { user_id, at })
}

impl RedisStore {
    /// One hash: a field `<user id>:<ms>` per pending erasure.
    fn pending_erasures_key(&self) -> String {
        self.key("erasure", "pending")
    }
}

fn field(erasure: &ErasureOf) -> String {
    format!("{}:{}", erasure.user_id, erasure.at.timestamp_millis())
}

#[async_trait]
impl ErasureStore for RedisStore {
    async fn add_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .hset(self.pending_erasures_key(), field(erasure), "")
            .await?;
        Ok(())
    }

    async fn pending_erasures(&self) -> Result<Vec<ErasureOf>, StoreError> {
        let fields: Vec<String> = self.conn().hkeys(self.pending_erasures_key()).await?;
        fields
            .into_iter()
            .map(|field| {
                let (user_id, at) = field
                    .rsplit_once(':')
                    .and_then(|(user, at)| Some((user.to_owned(), at.parse().ok()?)))
                    .ok_or_else(|| StoreError::Backend(format!("bad pending erasure `{field}`")))?;
                erasure_of(user_id, at)
            })
            .collect()
    }

    async fn remove_pending_erasure(&self, erasure: &ErasureOf) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .hdel(self.pending_erasures_key(), field(erasure))
            .await?;
        Ok(())
    }
}
