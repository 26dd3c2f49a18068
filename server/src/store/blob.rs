//! Blobs (photos): files in a directory beside the SQLite database, or binary values in Redis
//! so every instance sees every photo. Keys are paths of lower-case letters, digits, `-`,
//! `_` and `.`, separated by `/`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use redis::AsyncCommands;

use super::{RedisStore, SqliteStore, StoreError};

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn blob_put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    async fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn blob_delete(&self, key: &str) -> Result<(), StoreError>;
    /// Deletes every blob whose key starts with `prefix/`; how many.
    async fn blob_delete_under(&self, prefix: &str) -> Result<usize, StoreError>;
    /// The largest original photo worth keeping here, in pixels; `None`: keep it as uploaded.
    /// Redis holds everything in memory, so it keeps a review-sized copy only.
    fn original_max_pixels(&self) -> Option<u32>;
}

fn checked(key: &str) -> Result<&str, StoreError> {
    let valid = !key.is_empty()
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        });
    if valid {
        Ok(key)
    } else {
        Err(StoreError::Backend(format!("bad blob key `{key}`")))
    }
}

pub(super) fn blob_dir(database: &Path) -> PathBuf {
    database
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("blobs")
}

/// Files under `dir` (none when it does not exist).
fn count_files(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        other => other?,
    };
    entries
        .map(|entry| {
            let path = entry?.path();
            if path.is_dir() {
                count_files(&path)
            } else {
                Ok(1)
            }
        })
        .sum()
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("blob directory: {e}"))
}

#[async_trait]
impl BlobStore for SqliteStore {
    async fn blob_put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blobs.join(checked(key)?);
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().expect("a blob path has a parent");
            super::private_dir(dir)?;
            // Written aside (0600, as every temporary file) and renamed into place, so a
            // reader never sees half a photo.
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.as_file().sync_all()?;
            file.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(io_error)
    }

    async fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match tokio::fs::read(self.blobs.join(checked(key)?)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn blob_delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.blobs.join(checked(key)?)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(e)),
            _ => Ok(()),
        }
    }

    async fn blob_delete_under(&self, prefix: &str) -> Result<usize, StoreError> {
        let dir = self.blobs.join(checked(prefix)?);
        tokio::task::spawn_blocking(move || {
            let count = count_files(&dir)?;
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(count),
            }
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(io_error)
    }

    fn original_max_pixels(&self) -> Option<u32> {
        None
    }
}

impl RedisStore {
    fn blob_key(&self, key: &str) -> Result<String, StoreError> {
        Ok(self.key(&format!("blob:{}", checked(key)?), "b"))
    }
}

/// About 2 megapixels: enough for a reviewer to judge a photo.
const REDIS_ORIGINAL_MAX_PIXELS: u32 = 2_000_000;

#[async_trait]
impl BlobStore for RedisStore {
    async fn blob_put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _: () = self.conn().set(self.blob_key(key)?, bytes).await?;
        Ok(())
    }

    async fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.conn().get(self.blob_key(key)?).await?)
    }

    async fn blob_delete(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn().del(self.blob_key(key)?).await?;
        Ok(())
    }

    async fn blob_delete_under(&self, prefix: &str) -> Result<usize, StoreError> {
        // Each blob is tagged by its own key, so the ones under `prefix` are found by a SCAN
        // over the whole keyspace of this prefix.
        let keys = self
            .scan_tags_starting(&format!("blob:{}/", checked(prefix)?), "b")
            .await?;
        let mut conn = self.conn();
        for key in &keys {
            let _: i64 = conn.del(key).await?;
        }
        Ok(keys.len())
    }

    fn original_max_pixels(&self) -> Option<u32> {
        Some(REDIS_ORIGINAL_MAX_PIXELS)
    }
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn keys_cannot_escape_the_directory() {
        assert!(checked("receipt-orders/abc/1/original.jpg").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "A/b",
            "a/b/",
            "..",
            "a\\b",
        ] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
