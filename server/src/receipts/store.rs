//! Storage of receipt orders on both backends. An order is saved whole, and only over the
//! version it was read at (optimistic concurrency): two reviewers deciding one order, or a
//! review racing a resubmission, cannot both win. A receipt number belongs to one order.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::domain::{ReceiptOrder, Status};
use super::number::ReceiptNo;
use crate::id_hash::IdHasher;
use crate::notify::store::{enqueue_in_tx, Notices, PLAN};
use crate::notify::Notification;
use crate::person::IdNumber;
use crate::store::plan::{Ran, RedisPlan, Refuse};
use crate::store::{RedisStore, SqliteStore, StoreError};

/// What became of a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// Someone changed the order since it was read.
    Stale,
    /// The receipt number is another order's (vanishingly rare: draw another).
    NumberTaken,
    /// The user already has as many orders waiting for review as allowed.
    TooManyOpen,
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

/// A condition on the stored orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// No order has this id (else an error: ids are fresh).
    New { id: String },
    /// The stored order is still at `version` (else `Stale`).
    VersionIs { id: String, version: u64 },
    /// No other order has the receipt number (else `NumberTaken`). Always the last guard:
    /// Redis claims the number as it checks.
    NumberFree { no: ReceiptNo, id: String },
    /// The user has fewer than `limit` orders waiting for review (else `TooManyOpen`).
    OpenBelow { user_id: String, limit: u32 },
}

/// What a plan does once every guard held.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Stores a new order among its user's.
    Insert(Box<ReceiptOrder>),
    /// Replaces the stored order.
    Replace(Box<ReceiptOrder>),
    /// Deletes the order and its receipt number's index (the queue is `Queue`'s).
    Delete(Box<ReceiptOrder>),
    /// The order waits in the review queue (and among its user's open orders) from `since`,
    /// or (`None`) does not.
    Queue {
        id: String,
        user_id: String,
        since: Option<DateTime<Utc>>,
    },
    Notify(Box<Notification>),
}

/// A change of orders: guards checked in order against what is stored, then effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub guards: Vec<Guard>,
    pub effects: Vec<Effect>,
}

/// Where an order waits: in the queue while pending, out of it otherwise.
fn queue(order: &ReceiptOrder) -> Effect {
    Effect::Queue {
        id: order.id.clone(),
        user_id: order.user_id.clone(),
        since: (order.status == Status::Pending).then_some(order.submitted_at),
    }
}

/// A new order: stored and queued for review, if its user has fewer than `max_open` orders
/// waiting (any number when `None`).
pub fn insert_plan(order: &ReceiptOrder, max_open: Option<u32>) -> Plan {
    let mut guards = vec![Guard::New {
        id: order.id.clone(),
    }];
    guards.extend(max_open.map(|limit| Guard::OpenBelow {
        user_id: order.user_id.clone(),
        limit,
    }));
    Plan {
        guards,
        effects: vec![Effect::Insert(Box::new(order.clone())), queue(order)],
    }
}

/// A change made from the copy at `order.version - 1` (optimistic concurrency): a receipt
/// number belongs to one order; the queue follows the status; `notice` goes with it.
pub fn save_plan(order: &ReceiptOrder, notice: Option<&Notification>) -> Plan {
    let mut guards = vec![Guard::VersionIs {
        id: order.id.clone(),
        version: order.version - 1,
    }];
    if let Some(receipt) = &order.receipt {
        guards.push(Guard::NumberFree {
            no: receipt.no.clone(),
            id: order.id.clone(),
        });
    }
    let mut effects = vec![Effect::Replace(Box::new(order.clone())), queue(order)];
    effects.extend(notice.map(|n| Effect::Notify(Box::new(n.clone()))));
    Plan { guards, effects }
}

/// The order erased if it is still the copy read (a resubmission stored meanwhile is judged
/// afresh), with everything that finds it: its receipt number, the user's list, the queue.
pub fn delete_plan(order: &ReceiptOrder) -> Plan {
    Plan {
        guards: vec![Guard::VersionIs {
            id: order.id.clone(),
            version: order.version,
        }],
        effects: vec![
            Effect::Queue {
                id: order.id.clone(),
                user_id: order.user_id.clone(),
                since: None,
            },
            Effect::Delete(Box::new(order.clone())),
        ],
    }
}

/// The answer of a guard that failed.
fn stop(guard: &Guard) -> Result<Saved, StoreError> {
    match guard {
        Guard::New { id } => Err(StoreError::Backend(format!("order {id} exists"))),
        Guard::VersionIs { .. } => Ok(Saved::Stale),
        Guard::NumberFree { .. } => Ok(Saved::NumberTaken),
        Guard::OpenBelow { .. } => Ok(Saved::TooManyOpen),
    }
}

#[async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Carries out `plan` atomically: the guards in order (the first that fails is the
    /// answer), then, if all held, the effects.
    async fn apply_order_plan(&self, plan: Plan) -> Result<Saved, StoreError>;

    /// Stores a new order (version 1).
    async fn insert_receipt_order(&self, order: &ReceiptOrder) -> Result<(), StoreError> {
        match self.apply_order_plan(insert_plan(order, None)).await? {
            Saved::Saved => Ok(()),
            other => Err(StoreError::Backend(format!(
                "inserting an order: {other:?}"
            ))),
        }
    }

    /// Stores a new order unless its user already has `max_open` orders waiting for review
    /// (`TooManyOpen`): counted and inserted in one atomic step.
    async fn insert_receipt_order_capped(
        &self,
        order: &ReceiptOrder,
        max_open: u32,
    ) -> Result<Saved, StoreError> {
        self.apply_order_plan(insert_plan(order, Some(max_open)))
            .await
    }

    async fn receipt_order(&self, id: &str) -> Result<Option<ReceiptOrder>, StoreError>;
    async fn receipt_order_by_no(&self, no: &ReceiptNo)
        -> Result<Option<ReceiptOrder>, StoreError>;

    /// Replaces the order if the stored one is still at `order.version - 1`, and writes
    /// `notice` to the notification outbox in the same step (neither without the other).
    async fn save_receipt_order(
        &self,
        order: &ReceiptOrder,
        notice: Option<&Notification>,
    ) -> Result<Saved, StoreError> {
        self.apply_order_plan(save_plan(order, notice)).await
    }

    async fn user_receipt_orders(
        &self,
        user_id: &str,
        page: &OrderPage,
    ) -> Result<Vec<ReceiptOrder>, StoreError>;
    /// Orders waiting for review, the longest waiting first.
    async fn review_queue(&self, limit: usize) -> Result<Vec<ReceiptOrder>, StoreError>;

    /// Orders stored with the plain ID number (before issue 15) keep its hash and masked
    /// form instead; how many were changed. Safe to run again, and by several instances.
    async fn hide_id_numbers(&self, hasher: &IdHasher) -> Result<usize, StoreError>;

    /// Deletes an order and everything that finds it (its receipt number, the user's list,
    /// the review queue) if the stored one is still at `order.version` ([`delete_plan`]):
    /// `Stale` when it changed since it was read. Its photos are blobs, the caller's to delete.
    async fn delete_receipt_order(&self, order: &ReceiptOrder) -> Result<Saved, StoreError> {
        self.apply_order_plan(delete_plan(order)).await
    }
    /// Orders reviewed at least once whose applicant's details are not removed yet: what the
    /// retention sweep looks at (`ReceiptOrder::due_removals` judges each).
    async fn reviewed_orders(&self) -> Result<Vec<ReceiptOrder>, StoreError>;
}

/// What an order stored with the plain ID number (`"id_number":"…"`) holds now; `None` if
/// `doc` holds no plain number.
fn hidden_doc(doc: &str, hasher: &IdHasher) -> Result<Option<String>, StoreError> {
    if !doc.contains(PLAIN_FIELD) {
        return Ok(None);
    }
    let unreadable = || StoreError::Backend("stored order: unreadable ID number".into());
    let mut value: serde_json::Value = serde_json::from_str(doc).map_err(|_| unreadable())?;
    let fields = value.as_object_mut().ok_or_else(unreadable)?;
    let Some(plain) = fields.remove("id_number") else {
        return Ok(None);
    };
    let id = plain
        .as_str()
        .and_then(|s| IdNumber::parse(s).ok())
        .ok_or_else(unreadable)?;
    fields.insert("id_hash".into(), hasher.hash(&id).into());
    fields.insert("id_number_masked".into(), id.masked().into());
    let order: ReceiptOrder = serde_json::from_value(value)
        .map_err(|e| StoreError::Backend(format!("stored order: {e}")))?;
    to_json(&order).map(Some)
}

/// How the plain number's field starts in a stored order (`"id_number_masked"` does not).
const PLAIN_FIELD: &str = "\"id_number\":";

fn to_json(order: &ReceiptOrder) -> Result<String, StoreError> {
    serde_json::to_string(order).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json(doc: &str) -> Result<ReceiptOrder, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Backend(format!("stored order: {e}")))
}

/// Whether `guard` holds in SQLite.
fn holds(tx: &rusqlite::Transaction, guard: &Guard) -> Result<bool, StoreError> {
    Ok(match guard {
        Guard::New { id } => !tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM receipt_orders WHERE id = ?1)",
            [id],
            |r| r.get::<_, bool>(0),
        )?,
        Guard::VersionIs { id, version } => {
            tx.query_row(
                "SELECT version FROM receipt_orders WHERE id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
                == Some(*version as i64)
        }
        Guard::NumberFree { no, id } => !tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM receipt_orders WHERE receipt_no = ?1 AND id != ?2)",
            params![no.as_str(), id],
            |r| r.get::<_, bool>(0),
        )?,
        Guard::OpenBelow { user_id, limit } => {
            tx.query_row(
                "SELECT COUNT(*) FROM receipt_orders WHERE user_id = ?1 AND status = 'pending'",
                [user_id],
                |r| r.get::<_, i64>(0),
            )? < i64::from(*limit)
        }
    })
}

fn carry_out(tx: &rusqlite::Transaction, effect: &Effect) -> Result<(), StoreError> {
    match effect {
        Effect::Insert(o) => {
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
                    to_json(o)?
                ],
            )?;
        }
        Effect::Replace(o) => {
            tx.execute(
                "UPDATE receipt_orders SET status = ?2, submitted_at = ?3, receipt_no = ?4,
                   version = ?5, doc = ?6
                 WHERE id = ?1",
                params![
                    o.id,
                    o.status.as_str(),
                    o.submitted_at.timestamp_millis(),
                    o.receipt.as_ref().map(|r| r.no.as_str().to_owned()),
                    o.version as i64,
                    to_json(o)?
                ],
            )?;
        }
        Effect::Delete(o) => {
            tx.execute("DELETE FROM receipt_orders WHERE id = ?1", [&o.id])?;
        }
        // Here the queue is the status and submission time `Insert`/`Replace` wrote.
        Effect::Queue { .. } => {}
        Effect::Notify(notice) => {
            enqueue_in_tx(tx, notice)?;
        }
    }
    Ok(())
}

#[async_trait]
impl ReceiptStore for SqliteStore {
    async fn apply_order_plan(&self, plan: Plan) -> Result<Saved, StoreError> {
        self.write(move |tx| {
            for guard in &plan.guards {
                if !holds(tx, guard)? {
                    return stop(guard);
                }
            }
            for effect in &plan.effects {
                carry_out(tx, effect)?;
            }
            Ok(Saved::Saved)
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

    async fn hide_id_numbers(&self, hasher: &IdHasher) -> Result<usize, StoreError> {
        let hasher = hasher.clone();
        self.write(move |tx| {
            let docs = tx
                .prepare("SELECT id, doc FROM receipt_orders WHERE instr(doc, ?1) > 0")?
                .query_map([PLAIN_FIELD], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut hidden = 0;
            for (id, doc) in docs {
                if let Some(doc) = hidden_doc(&doc, &hasher)? {
                    tx.execute(
                        "UPDATE receipt_orders SET doc = ?2 WHERE id = ?1",
                        params![id, doc],
                    )?;
                    hidden += 1;
                }
            }
            Ok(hidden)
        })
        .await
    }

    async fn reviewed_orders(&self) -> Result<Vec<ReceiptOrder>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT doc FROM receipt_orders
                 WHERE status != 'pending' AND instr(doc, '\"applicant_at\"') = 0",
            )?;
            let docs = statement
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
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
    /// The user's orders waiting for review.
    fn user_open_key(&self, user_id: &str) -> String {
        self.key(TAG, &format!("open:{user_id}"))
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

/// The text the plan script answers when `guard` fails.
fn refusal(guard: &Guard) -> &'static str {
    match guard {
        Guard::New { .. } => "EXISTS",
        Guard::VersionIs { .. } => "STALE",
        Guard::NumberFree { .. } => "TAKEN",
        Guard::OpenBelow { .. } => "OPEN",
    }
}

impl RedisStore {
    /// `plan` as a Redis plan (`store::plan`) over the receipt keys.
    fn order_plan(&self, plan: &Plan) -> Result<RedisPlan, StoreError> {
        let mut p = RedisPlan::new();
        for guard in &plan.guards {
            let refuse = Refuse {
                refusal: refusal(guard),
                remembered: false,
            };
            match guard {
                Guard::New { id } => p.absent(self.order_key(id), refuse),
                Guard::VersionIs { id, version } => {
                    p.field_is(self.order_key(id), "version", &version.to_string(), refuse)
                }
                Guard::NumberFree { no, id } => p.claim(self.number_key(no.as_str()), id, refuse),
                Guard::OpenBelow { user_id, limit } => {
                    p.card_below(self.user_open_key(user_id), *limit, refuse)
                }
            }
        }
        for effect in &plan.effects {
            match effect {
                Effect::Insert(o) | Effect::Replace(o) => {
                    let (doc, version) = (to_json(o)?, o.version.to_string());
                    p.hset(
                        self.order_key(&o.id),
                        &[("doc", &doc), ("version", &version)],
                    );
                    if matches!(effect, Effect::Insert(_)) {
                        let created = o.created_at.timestamp_millis();
                        p.zadd(self.user_orders_key(&o.user_id), created, &o.id);
                    }
                }
                Effect::Delete(o) => {
                    p.del(self.order_key(&o.id));
                    p.zrem(self.user_orders_key(&o.user_id), &o.id);
                    if let Some(receipt) = &o.receipt {
                        p.del_if(self.number_key(receipt.no.as_str()), &o.id);
                    }
                }
                Effect::Queue {
                    id,
                    user_id,
                    since: Some(at),
                } => {
                    p.zadd(self.queue_key(), at.timestamp_millis(), id);
                    p.sadd(self.user_open_key(user_id), id);
                }
                Effect::Queue {
                    id,
                    user_id,
                    since: None,
                } => {
                    p.zrem(self.queue_key(), id);
                    p.srem(self.user_open_key(user_id), id);
                }
                Effect::Notify(notice) => Notices {
                    send: vec![(**notice).clone()],
                    withdraw: Vec::new(),
                }
                .plan(&mut p, self, TAG),
            }
        }
        Ok(p)
    }
}

#[async_trait]
impl ReceiptStore for RedisStore {
    async fn apply_order_plan(&self, plan: Plan) -> Result<Saved, StoreError> {
        let ran = self.order_plan(&plan)?.run(self, &PLAN).await?;
        match ran {
            Ran::Done(_) => Ok(Saved::Saved),
            Ran::Stopped(text) => plan.guards.iter().find(|g| refusal(g) == text).map_or_else(
                || Err(StoreError::Backend(format!("unexpected stop `{text}`"))),
                stop,
            ),
            other => Err(StoreError::Backend(format!(
                "unexpected plan reply {other:?}"
            ))),
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

    async fn reviewed_orders(&self) -> Result<Vec<ReceiptOrder>, StoreError> {
        let keys = self.scan(TAG, "order:*").await?;
        let mut reviewed = Vec::new();
        for doc in self.hget_each(&keys, "doc").await?.iter().flatten() {
            let order = from_json(doc)?;
            if order.status != Status::Pending && order.removed.applicant_at.is_none() {
                reviewed.push(order);
            }
        }
        Ok(reviewed)
    }

    async fn hide_id_numbers(&self, hasher: &IdHasher) -> Result<usize, StoreError> {
        let mut hidden = 0;
        // Read in batches: every start reads every order once.
        for keys in self.scan(TAG, "order:*").await?.chunks(500) {
            let mut pipe = redis::pipe();
            for key in keys {
                pipe.hget(key, "doc");
            }
            let docs: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
            for (key, doc) in keys.iter().zip(docs) {
                let Some(doc) = doc else { continue };
                // Another instance may change it meanwhile: then it is theirs to have done.
                if let Some(new) = hidden_doc(&doc, hasher)? {
                    hidden += usize::from(self.hset_if_eq(key, "doc", &doc, &new).await?);
                }
            }
        }
        Ok(hidden)
    }
}
