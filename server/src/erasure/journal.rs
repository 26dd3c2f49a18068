//! The erasure journal: one line per erasure on request (`{"user_id":…,"at_ms":…}`), appended
//! and fsynced before the erasure starts, in a file beside the backups. A backup taken before
//! an erasure still holds the person's data; restoring it re-applies the journal's erasures
//! made since, so a restore never brings erased data back.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ErasureOf;

const FILE_NAME: &str = "erasures.journal";

#[derive(Serialize, Deserialize)]
struct Line {
    user_id: String,
    at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal in the backup directory `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Journal {
            path: dir.join(FILE_NAME),
        }
    }

    /// Appends `erasure` and waits until it is on disk.
    pub async fn append(&self, erasure: &ErasureOf) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&Line {
            user_id: erasure.user_id.clone(),
            at_ms: erasure.at.timestamp_millis(),
        })?;
        line.push('\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().unwrap_or_else(|| Path::new("."));
            crate::store::private_dir(dir)?;
            let created = !path.exists();
            let mut options = std::fs::OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path)?;
            // One write of one short line: a crash leaves it whole or absent (`read` skips a
            // torn last line).
            file.write_all(line.as_bytes())?;
            file.sync_all()?;
            if created {
                // The new file's name is durable only once its directory is.
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The erasures made at `since` or later, oldest first (none when there is no journal).
    pub fn since(&self, since: DateTime<Utc>) -> std::io::Result<Vec<ErasureOf>> {
        let file = match std::fs::File::open(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut erasures = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(Line { user_id, at_ms }) = serde_json::from_str::<Line>(&line?) else {
                continue;
            };
            match DateTime::from_timestamp_millis(at_ms) {
                Some(at) if at >= since => erasures.push(ErasureOf { user_id, at }),
                _ => {}
            }
        }
        erasures.sort_by_key(|e| e.at);
        Ok(erasures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appended_erasures_are_read_back_since_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_dir(&dir.path().join("backups"));
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        for (user, ms) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
            let erasure = ErasureOf {
                user_id: user.into(),
                at: at(ms),
            };
            journal.append(&erasure).await.unwrap();
        }
        // A torn last line (a crash mid-append) is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&journal.path)
            .unwrap()
            .write_all(b"{\"user_id\":\"d\",\"at")
            .unwrap();
        let users: Vec<String> = journal
            .since(at(2_000))
            .unwrap()
            .into_iter()
            .map(|e| e.user_id)
            .collect();
        assert_eq!(users, ["b", "c"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&journal.path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
