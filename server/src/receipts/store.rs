//! Storage of receipt orders on both backends. An order is saved whole, and only over the
//! version it was read at (optimistic concurrency): two reviewers deciding one order, or a
//! review racing a resubmission, cannot both win. A receipt number belongs to one order.

use std::sync::LazyLock;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use redis::Script;
use rusqlite::{params, OptionalExtension};

use super::domain::{ReceiptOrder, Status};
use super::number::ReceiptNo;
use crate::notify::store::{enqueue_in_tx, outbox_keys, OUTBOX_LUA};
use crate::notify::Notification;
use crate::store::{RedisStore, SqliteStore, StoreError};

/// What became of a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// Someone changed the order since it was read.
    Stale,
    /// The receipt number is another order's (vanishingly rare: draw another).
    NumberTaken,
}

/// Where a page of the 订单 tab starts: after the order created at `created_ms` with `id`.
/// Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(order: &ReceiptOrder) -> Self {
        Cursor {
            created_ms: order.created_at.timestamp_millis(),
            id: order.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.created_ms, self.id))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once(':')?;
        Some(Cursor {
            created_ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }

    fn is_before(&self, order: &ReceiptOrder) -> bool {
        (order.created_at.timestamp_millis(), order.id.as_str())
            < (self.created_ms, self.id.as_str())
    }
}

/// One page of a user's orders, newest first.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub status: Option<Status>,
    /// Expiry is judged at this time.
    pub now: DateTime<Utc>,
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl OrderPage {
    /// This page of all of a user's orders (a person has a handful, so both backends read
    /// them all and page here): the status is `status_at(now)`, never a restatement of it.
    fn of(&self, mut orders: Vec<ReceiptOrder>) -> Vec<ReceiptOrder> {
        orders.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        orders
            .into_iter()
            .filter(|o| self.after.as_ref().is_none_or(|c| c.is_before(o)))
            .filter(|o| self.status.is_none_or(|s| o.status_at(self.now) == s))
            .take(self.limit)
            .collect()
    }
}

#[async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Stores a new order (version 1).
    async fn insert_receipt_order(&self, order: &ReceiptOrder) -> Result<(), StoreError>;
    async fn receipt_order(&self, id: &str) -> Result<Option<ReceiptOrder>, StoreError>;
    async fn receipt_order_by_no(&self, no: &ReceiptNo)
        -> Result<Option<ReceiptOrder>, StoreError>;
    /// Replaces the order if the stored one is still at `order.version - 1`, and writes
    /// `notice` to the notification outbox in the same step (neither without the other).
    async fn save_receipt_order(
        &self,
        order: &ReceiptOrder,
        notice: Option<&Notification>,
    ) -> Result<Saved, StoreError>;
    async fn user_receipt_orders(
        &self,
        user_id: &str,
        page: &OrderPage,
    ) -> Result<Vec<ReceiptOrder>, StoreError>;
    /// Orders waiting for review, the longest waiting first.
    async fn review_queue(&self, limit: usize) -> Result<Vec<ReceiptOrder>, StoreError>;
}

fn to_json(order: &ReceiptOrder) -> Result<String, StoreError> {
    serde_json::to_string(order).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json(doc: &str) -> Result<ReceiptOrder, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Backend(format!("stored order: {e}")))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[async_trait]
impl ReceiptStore for SqliteStore {
    async fn insert_receipt_order(&self, order: &ReceiptOrder) -> Result<(), StoreError> {
        let doc = to_json(order)?;
        let o = order.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO receipt_orders
                   (id, user_id, status, created_at, submitted_at, receipt_no, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    o.id,
                    o.user_id,
                    o.status.as_str(),
                    o.created_at.timestamp_millis(),
                    o.submitted_at.timestamp_millis(),
                    o.receipt.as_ref().map(|r| r.no.as_str().to_owned()),
                    o.version as i64,
                    doc
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn receipt_order(&self, id: &str) -> Result<Option<ReceiptOrder>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row("SELECT doc FROM receipt_orders WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .map(|doc| from_json(&doc))
            .transpose()
        })
        .await
    }

    async fn receipt_order_by_no(
        &self,
        no: &ReceiptNo,
    ) -> Result<Option<ReceiptOrder>, StoreError> {
        let no = no.as_str().to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT doc FROM receipt_orders WHERE receipt_no = ?1",
                [no],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|doc| from_json(&doc))
            .transpose()
        })
        .await
    }

    async fn save_receipt_order(
        &self,
        order: &ReceiptOrder,
        notice: Option<&Notification>,
    ) -> Result<Saved, StoreError> {
        let doc = to_json(order)?;
        let o = order.clone();
        let notice = notice.cloned();
        self.write(move |tx| {
            let updated = tx.execute(
                "UPDATE receipt_orders SET status = ?2, submitted_at = ?3, receipt_no = ?4,
                   version = ?5, doc = ?6
                 WHERE id = ?1 AND version = ?5 - 1",
                params![
                    o.id,
                    o.status.as_str(),
                    o.submitted_at.timestamp_millis(),
                    o.receipt.as_ref().map(|r| r.no.as_str().to_owned()),
                    o.version as i64,
                    doc
                ],
            );
            match updated {
                Ok(1) => {
                    if let Some(notice) = &notice {
                        enqueue_in_tx(tx, notice)?;
                    }
                    Ok(Saved::Saved)
                }
                Ok(_) => Ok(Saved::Stale),
                Err(e) if is_unique_violation(&e) => Ok(Saved::NumberTaken),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn user_receipt_orders(
        &self,
        user_id: &str,
        page: &OrderPage,
    ) -> Result<Vec<ReceiptOrder>, StoreError> {
        let user_id = user_id.to_owned();
        let orders = self
            .read(move |c| {
                let mut statement =
                    c.prepare("SELECT doc FROM receipt_orders WHERE user_id = ?1")?;
                let docs = statement
                    .query_map([user_id], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                docs.iter().map(|d| from_json(d)).collect()
            })
            .await?;
        Ok(page.of(orders))
    }

    async fn review_queue(&self, limit: usize) -> Result<Vec<ReceiptOrder>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT doc FROM receipt_orders WHERE status = 'pending'
                 ORDER BY submitted_at, id LIMIT ?1",
            )?;
            let docs = statement
                .query_map([limit as i64], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
    }
}

// Redis: every receipt key shares the tag `receipts`, so each change (the order, the user's
// list, the queue, the number index) is one script. Photo orders are a few per minute per
// city, far below what one Redis Cluster slot serves.
const TAG: &str = "receipts";

impl RedisStore {
    fn order_key(&self, id: &str) -> String {
        self.key(TAG, &format!("order:{id}"))
    }
    fn user_orders_key(&self, user_id: &str) -> String {
        self.key(TAG, &format!("user:{user_id}"))
    }
    fn queue_key(&self) -> String {
        self.key(TAG, "queue")
    }
    fn number_key(&self, no: &str) -> String {
        self.key(TAG, &format!("no:{no}"))
    }

    async fn order_docs(&self, ids: &[String]) -> Result<Vec<ReceiptOrder>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.order_key(id), "doc");
        }
        let docs: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
        docs.into_iter().flatten().map(|d| from_json(&d)).collect()
    }
}

/// KEYS: order, user list, queue. ARGV: doc, version, created ms, submitted ms, id.
static INSERT_ORDER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
          redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2])
          redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
          redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
          return 1",
    )
});

/// KEYS: order, queue, number index (or the order key again when there is no number), then
/// the five outbox keys. ARGV: doc, new version, pending (1/0), submitted ms, id, has number
/// (1/0), has notice (1/0), then the notice's four outbox values.
static SAVE_ORDER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{OUTBOX_LUA}{}",
        r"local current = redis.call('HGET', KEYS[1], 'version')
          if not current or tonumber(current) ~= tonumber(ARGV[2]) - 1 then return 'stale' end
          if ARGV[6] == '1' then
            local owner = redis.call('GET', KEYS[3])
            if owner and owner ~= ARGV[5] then return 'taken' end
            redis.call('SET', KEYS[3], ARGV[5])
          end
          redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2])
          if ARGV[3] == '1' then
            redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
          else
            redis.call('ZREM', KEYS[2], ARGV[5])
          end
          if ARGV[7] == '1' then outbox_enqueue(4, ARGV[8], ARGV[9], ARGV[10], ARGV[11]) end
          return 'saved'"
    ))
});

#[async_trait]
impl ReceiptStore for RedisStore {
    async fn insert_receipt_order(&self, order: &ReceiptOrder) -> Result<(), StoreError> {
        let inserted: i64 = INSERT_ORDER
            .key(self.order_key(&order.id))
            .key(self.user_orders_key(&order.user_id))
            .key(self.queue_key())
            .arg(to_json(order)?)
            .arg(order.version)
            .arg(order.created_at.timestamp_millis())
            .arg(order.submitted_at.timestamp_millis())
            .arg(&order.id)
            .invoke_async(&mut self.conn())
            .await?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Backend(format!("order {} exists", order.id)))
        }
    }

    async fn receipt_order(&self, id: &str) -> Result<Option<ReceiptOrder>, StoreError> {
        Ok(self.order_docs(&[id.to_owned()]).await?.pop())
    }

    async fn receipt_order_by_no(
        &self,
        no: &ReceiptNo,
    ) -> Result<Option<ReceiptOrder>, StoreError> {
        let id: Option<String> = redis::cmd("GET")
            .arg(self.number_key(no.as_str()))
            .query_async(&mut self.conn())
            .await?;
        match id {
            Some(id) => self.receipt_order(&id).await,
            None => Ok(None),
        }
    }

    async fn save_receipt_order(
        &self,
        order: &ReceiptOrder,
        notice: Option<&Notification>,
    ) -> Result<Saved, StoreError> {
        let order_key = self.order_key(&order.id);
        let number_key = match &order.receipt {
            Some(r) => self.number_key(r.no.as_str()),
            None => order_key.clone(),
        };
        let notice_args: [String; 4] = notice.map(Notification::redis_args).unwrap_or_default();
        let outcome: String = SAVE_ORDER
            .key(&order_key)
            .key(self.queue_key())
            .key(number_key)
            .key(&outbox_keys(self, TAG))
            .arg(to_json(order)?)
            .arg(order.version)
            .arg(if order.status == Status::Pending {
                "1"
            } else {
                "0"
            })
            .arg(order.submitted_at.timestamp_millis())
            .arg(&order.id)
            .arg(if order.receipt.is_some() { "1" } else { "0" })
            .arg(if notice.is_some() { "1" } else { "0" })
            .arg(&notice_args)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match outcome.as_str() {
            "saved" => Saved::Saved,
            "taken" => Saved::NumberTaken,
            _ => Saved::Stale,
        })
    }

    async fn user_receipt_orders(
        &self,
        user_id: &str,
        page: &OrderPage,
    ) -> Result<Vec<ReceiptOrder>, StoreError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.user_orders_key(user_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        Ok(page.of(self.order_docs(&ids).await?))
    }

    async fn review_queue(&self, limit: usize) -> Result<Vec<ReceiptOrder>, StoreError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.queue_key())
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut self.conn())
            .await?;
        self.order_docs(&ids).await
    }
}
