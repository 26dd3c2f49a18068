//! The audit log on both backends: SQLite a table with an increasing key; Redis a sorted set
//! per reader (all entries, and each actor's) scored by a counter, written by one script.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;
use rusqlite::params;

use super::{AuditEntry, AuditStore};
use crate::store::{RedisStore, SqliteStore, StoreError};

/// What is stored of an entry besides its sequence number (the same on both backends).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    at: DateTime<Utc>,
    actor: String,
    role: String,
    action: String,
    records: Vec<String>,
    status: u16,
}

impl Stored {
    fn of(entry: &AuditEntry) -> Self {
        Stored {
            at: entry.at,
            actor: entry.actor.clone(),
            role: entry.role.clone(),
            action: entry.action.clone(),
            records: entry.records.clone(),
            status: entry.status,
        }
    }

    fn entry(self, seq: u64) -> AuditEntry {
        AuditEntry {
            seq,
            at: self.at,
            actor: self.actor,
            role: self.role,
            action: self.action,
            records: self.records,
            status: self.status,
        }
    }
}

fn backend(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("audit entry: {e}"))
}

/// Sequence numbers are 1, 2, …: no `before` means from the newest.
fn below(before: Option<u64>) -> i64 {
    before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let stored = Stored::of(entry);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO audit_log (at, actor, role, action, records, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    stored.at.to_rfc3339(),
                    stored.actor,
                    stored.role,
                    stored.action,
                    serde_json::to_string(&stored.records).map_err(backend)?,
                    stored.status
                ],
            )?;
            Ok(tx.last_insert_rowid() as u64)
        })
        .await
    }

    async fn audit_entries(
        &self,
        before: Option<u64>,
        actor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let actor = actor.map(str::to_owned);
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT seq, at, actor, role, action, records, status FROM audit_log
                 WHERE seq < ?1 AND (?2 IS NULL OR actor = ?2) ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![below(before), actor, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, u16>(6)?,
                ))
            })?;
            rows.map(|row| {
                let (seq, at, actor, role, action, records, status) = row?;
                let at = DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| StoreError::Backend(format!("audit entry time: {e}")))?;
                Ok(Stored {
                    at,
                    actor,
                    role,
                    action,
                    records: serde_json::from_str(&records).map_err(backend)?,
                    status,
                }
                .entry(seq as u64))
            })
            .collect()
        })
        .await
    }
}

/// KEYS: the counter, the log, the actor's log; ARGV: the entry (JSON). Members are
/// `seq:json`, scored by `seq`, so pages are ranges of scores.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local seq = redis.call('INCR', KEYS[1])
          local member = seq .. ':' .. ARGV[1]
          redis.call('ZADD', KEYS[2], seq, member)
          redis.call('ZADD', KEYS[3], seq, member)
          return seq",
    )
});

impl RedisStore {
    /// Every audit key shares the tag `audit`, so the append is one script.
    fn audit_key(&self, rest: &str) -> String {
        self.key("audit", rest)
    }
}

#[async_trait]
impl AuditStore for RedisStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let json = serde_json::to_string(&Stored::of(entry)).map_err(backend)?;
        let seq: u64 = APPEND
            .key(self.audit_key("seq"))
            .key(self.audit_key("log"))
            .key(self.audit_key(&format!("actor:{}", entry.actor)))
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(seq)
    }

    async fn audit_entries(
        &self,
        before: Option<u64>,
        actor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let key = match actor {
            Some(actor) => self.audit_key(&format!("actor:{actor}")),
            None => self.audit_key("log"),
        };
        let members: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(key)
            .arg(before.map_or_else(|| "+inf".to_owned(), |b| format!("({b}")))
            .arg("-inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        members
            .iter()
            .map(|member| {
                let (seq, json) = member
                    .split_once(':')
                    .ok_or_else(|| StoreError::Backend("audit entry without seq".into()))?;
                let seq = seq
                    .parse()
                    .map_err(|_| StoreError::Backend("audit entry seq".into()))?;
                Ok(serde_json::from_str::<Stored>(json)
                    .map_err(backend)?
                    .entry(seq))
            })
            .collect()
    }
}
