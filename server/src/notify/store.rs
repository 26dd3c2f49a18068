//! The outbox and the subscription grants on both backends. Claiming is atomic on both (one
//! IMMEDIATE transaction; one Lua script per tag), so two workers never hold the same entry;
//! a claim is a lease, so an entry claimed by a worker that died is claimed again later.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Notification;
use crate::store::plan::{Extension, Lua, Plans, RedisPlan};
use crate::store::{RedisStore, SqliteStore, StoreError};

/// Redis hash tags that hold outbox entries: every capability that enqueues inside its own
/// script adds its tag here, or, when its tags are chosen at run time (booking's per hall),
/// registers each with [`RedisStore::add_outbox_tag`] before its first entry. `notify` holds
/// entries written outside another script; `booking` those of the layout before issue 16.
pub const OUTBOX_TAGS: &[&str] = &["notify", "booking", "receipts", "kf"];
const OWN_TAG: &str = "notify";

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Sending,
    Sent,
    /// WeChat refused it for good (or it could not be rendered); `last_error` says why.
    Failed,
    /// Transient failures until the attempts ran out.
    Dead,
    /// The user had no subscription grant left for the template: not attempted.
    NoSubscription,
    Cancelled,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Dead => "dead",
            OutboxState::NoSubscription => "no_subscription",
            OutboxState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => OutboxState::Pending,
            "sending" => OutboxState::Sending,
            "sent" => OutboxState::Sent,
            "failed" => OutboxState::Failed,
            "dead" => OutboxState::Dead,
            "no_subscription" => OutboxState::NoSubscription,
            "cancelled" => OutboxState::Cancelled,
            other => return Err(StoreError::Backend(format!("unknown outbox state {other}"))),
        })
    }
}

/// An entry a worker holds until `finish` (or until its lease runs out).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub tag: String,
    pub notification: Notification,
    /// Including this one.
    pub attempts: u32,
}

/// How a claimed entry ended this time.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent,
    Retry { at: DateTime<Utc>, error: String },
    Final { state: OutboxState, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    pub state: OutboxState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A subscription grant of `user_id`'s for `template_id`, held by one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantHold {
    pub user_id: String,
    pub template_id: String,
    pub notification_id: String,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// Writes a notification on its own (not with another state change); false when one
    /// with the same key exists.
    async fn enqueue(&self, notification: &Notification) -> Result<bool, StoreError>;
    /// Claims up to `limit` entries due at `now` for `owner` until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Records each outcome whose entry `owner` still holds (one lost to another claim is
    /// left to its new holder): one call for many entries (on Redis, one per outbox tag).
    async fn finish(&self, finished: &[(&Claimed, Outcome)], owner: &str)
        -> Result<(), StoreError>;
    async fn outbox_entry(&self, tag: &str, id: &str) -> Result<Option<OutboxEntry>, StoreError>;
    /// One more send for each template (one accept each); returns the grants now held.
    async fn grant_subscriptions(
        &self,
        user_id: &str,
        template_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError>;
    /// Holds one grant for each notification, in order; false for one without a grant left.
    /// Idempotent: a notification already holding one (its sender died mid-send) keeps it.
    async fn take_subscriptions(&self, holds: &[GrantHold]) -> Result<Vec<bool>, StoreError>;
    /// Ends each hold: spent when WeChat took the message, given back (`refund`) when not.
    async fn release_subscriptions(&self, released: &[(GrantHold, bool)])
        -> Result<(), StoreError>;
    /// The user refused (43101): whatever we thought was left is gone.
    async fn clear_subscription(&self, user_id: &str, template_id: &str) -> Result<(), StoreError>;
    /// Deletes the settled entries (sent, failed, dead, no subscription, cancelled: they
    /// never change again) due before `before` — their texts name people and places; how
    /// many. SQLite judges by the entry's last due time, Redis by its not-before time.
    async fn delete_settled_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Erasure on request: the user's subscriptions and every outbox entry to them (by user
    /// id or, for 客服 replies, by openid when known), whatever its state.
    async fn erase_recipient(
        &self,
        user_id: &str,
        openid: Option<&str>,
    ) -> Result<ErasedNotices, StoreError>;
}

/// What [`NotifyStore::erase_recipient`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasedNotices {
    pub subscriptions: usize,
    pub outbox_entries: usize,
}

/// The states an entry never leaves.
const SETTLED: [OutboxState; 5] = [
    OutboxState::Sent,
    OutboxState::Failed,
    OutboxState::Dead,
    OutboxState::NoSubscription,
    OutboxState::Cancelled,
];

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn decode(doc: &str) -> Result<Notification, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Backend(format!("outbox document: {e}")))
}

/// SQLite: writes `notification` inside the caller's transaction; false when its key exists.
pub fn enqueue_in_tx(
    tx: &rusqlite::Transaction,
    notification: &Notification,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "INSERT INTO outbox (id, key, doc, state, due_at) VALUES (?1, ?2, ?3, 'pending', ?4)
         ON CONFLICT (key) DO NOTHING",
        params![
            notification.id,
            notification.key,
            notification.to_doc(),
            ms(notification.not_before)
        ],
    )? == 1)
}

/// SQLite: withdraws the pending notification with `key`, inside the caller's transaction.
pub fn cancel_in_tx(tx: &rusqlite::Transaction, key: &str) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE outbox SET state = 'cancelled' WHERE key = ?1 AND state = 'pending'",
        [key],
    )? == 1)
}

/// Notifications written in the same step as the state change that causes them, and the keys
/// of pending ones that change withdraws (the reminder of a cancelled appointment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    pub send: Vec<Notification>,
    pub withdraw: Vec<String>,
}

impl Notices {
    /// SQLite: inside the caller's transaction.
    pub fn write_in_tx(&self, tx: &rusqlite::Transaction) -> Result<(), StoreError> {
        for notification in &self.send {
            enqueue_in_tx(tx, notification)?;
        }
        for key in &self.withdraw {
            cancel_in_tx(tx, key)?;
        }
        Ok(())
    }

    /// Redis: the plan's `outbox` effect writing these in the outbox of `tag` (which must be
    /// in [`OUTBOX_TAGS`] or registered with [`RedisStore::add_outbox_tag`]).
    pub fn plan(&self, plan: &mut RedisPlan, store: &RedisStore, tag: &str) {
        if self.send.is_empty() && self.withdraw.is_empty() {
            return;
        }
        let mut values = vec![self.send.len().to_string()];
        values.extend(self.send.iter().flat_map(Notification::redis_args));
        values.push(self.withdraw.len().to_string());
        values.extend(self.withdraw.iter().cloned());
        plan.extension("outbox", outbox_keys(store, tag).into(), values);
    }
}

fn final_fields(outcome: &Outcome) -> (OutboxState, Option<i64>, Option<&str>) {
    match outcome {
        Outcome::Sent => (OutboxState::Sent, None, None),
        Outcome::Retry { at, error } => (OutboxState::Pending, Some(ms(*at)), Some(error)),
        Outcome::Final { state, error } => (*state, None, Some(error)),
    }
}

#[async_trait]
impl NotifyStore for SqliteStore {
    async fn enqueue(&self, notification: &Notification) -> Result<bool, StoreError> {
        let notification = notification.clone();
        self.write(move |tx| enqueue_in_tx(tx, &notification)).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let owner = owner.to_owned();
        self.write(move |tx| {
            let mut claim = tx.prepare(
                "UPDATE outbox SET state = 'sending', owner = ?1, attempts = attempts + 1, due_at = ?2
                 WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending')
                              AND due_at <= ?3 ORDER BY due_at LIMIT ?4)
                 RETURNING doc, attempts",
            )?;
            let rows = claim
                .query_map(
                    params![owner, ms(lease_until), ms(now), limit as i64],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(doc, attempts)| {
                    Ok(Claimed {
                        tag: OWN_TAG.into(),
                        notification: decode(&doc)?,
                        attempts,
                    })
                })
                .collect()
        })
        .await
    }

    async fn finish(
        &self,
        finished: &[(&Claimed, Outcome)],
        owner: &str,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = finished
            .iter()
            .map(|(claimed, outcome)| {
                let (state, due, error) = final_fields(outcome);
                (
                    claimed.notification.id.clone(),
                    state,
                    due,
                    error.map(str::to_owned),
                )
            })
            .collect();
        let owner = owner.to_owned();
        self.write(move |tx| {
            let mut finish = tx.prepare(
                "UPDATE outbox SET state = ?1, due_at = COALESCE(?2, due_at),
                   last_error = COALESCE(?3, last_error)
                 WHERE id = ?4 AND owner = ?5 AND state = 'sending'",
            )?;
            for (id, state, due, error) in &rows {
                finish.execute(params![state.as_str(), due, error, id, owner])?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox_entry(&self, _tag: &str, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT state, attempts, last_error FROM outbox WHERE id = ?1",
                [&id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()?
            .map(|(state, attempts, last_error)| {
                Ok(OutboxEntry {
                    state: OutboxState::parse(&state)?,
                    attempts,
                    last_error,
                })
            })
            .transpose()
        })
        .await
    }

    async fn grant_subscriptions(
        &self,
        user_id: &str,
        template_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let (user_id, template_ids) = (user_id.to_owned(), template_ids.to_vec());
        self.write(move |tx| {
            template_ids
                .into_iter()
                .map(|template_id| {
                    let remaining = tx.query_row(
                        "INSERT INTO subscription_grants (user_id, template_id, remaining)
                         VALUES (?1, ?2, 1)
                         ON CONFLICT (user_id, template_id) DO UPDATE SET remaining = remaining + 1
                         RETURNING remaining",
                        params![user_id, template_id],
                        |r| r.get(0),
                    )?;
                    Ok((template_id, remaining))
                })
                .collect()
        })
        .await
    }

    async fn take_subscriptions(&self, holds: &[GrantHold]) -> Result<Vec<bool>, StoreError> {
        let holds = holds.to_vec();
        self.write(move |tx| {
            holds
                .iter()
                .map(|hold| {
                    let held = tx
                        .query_row(
                            "SELECT 1 FROM subscription_holds WHERE notification_id = ?1",
                            [&hold.notification_id],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                    if held {
                        return Ok(true);
                    }
                    let taken = tx.execute(
                        "UPDATE subscription_grants SET remaining = remaining - 1
                         WHERE user_id = ?1 AND template_id = ?2 AND remaining > 0",
                        params![hold.user_id, hold.template_id],
                    )? == 1;
                    if taken {
                        tx.execute(
                            "INSERT INTO subscription_holds (notification_id, user_id, template_id)
                             VALUES (?1, ?2, ?3)",
                            params![hold.notification_id, hold.user_id, hold.template_id],
                        )?;
                    }
                    Ok(taken)
                })
                .collect()
        })
        .await
    }

    async fn release_subscriptions(
        &self,
        released: &[(GrantHold, bool)],
    ) -> Result<(), StoreError> {
        let released = released.to_vec();
        self.write(move |tx| {
            for (hold, refund) in &released {
                let held = tx.execute(
                    "DELETE FROM subscription_holds WHERE notification_id = ?1",
                    [&hold.notification_id],
                )? == 1;
                if held && *refund {
                    tx.execute(
                        "UPDATE subscription_grants SET remaining = remaining + 1
                         WHERE user_id = ?1 AND template_id = ?2",
                        params![hold.user_id, hold.template_id],
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn clear_subscription(&self, user_id: &str, template_id: &str) -> Result<(), StoreError> {
        let (user_id, template_id) = (user_id.to_owned(), template_id.to_owned());
        self.write(move |tx| {
            tx.execute(
                "UPDATE subscription_grants SET remaining = 0 WHERE user_id = ?1 AND template_id = ?2",
                params![user_id, template_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn erase_recipient(
        &self,
        user_id: &str,
        openid: Option<&str>,
    ) -> Result<ErasedNotices, StoreError> {
        let (user_id, openid) = (user_id.to_owned(), openid.map(str::to_owned));
        self.write(move |tx| {
            let subscriptions = tx.execute(
                "DELETE FROM subscription_grants WHERE user_id = ?1",
                [&user_id],
            )?;
            tx.execute(
                "DELETE FROM subscription_holds WHERE user_id = ?1",
                [&user_id],
            )?;
            let docs = tx
                .prepare("SELECT id, doc FROM outbox")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut outbox_entries = 0;
            for (id, doc) in docs {
                if decode(&doc)?.is_for(&user_id, openid.as_deref()) {
                    outbox_entries += tx.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
                }
            }
            Ok(ErasedNotices {
                subscriptions,
                outbox_entries,
            })
        })
        .await
    }

    async fn delete_settled_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let settled: Vec<&str> = SETTLED.iter().map(|s| s.as_str()).collect();
        let settled = serde_json::to_string(&settled).expect("strings serialise");
        let before = ms(before);
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM outbox
                 WHERE state IN (SELECT value FROM json_each(?1)) AND due_at < ?2",
                params![settled, before],
            )? as u64)
        })
        .await
    }
}

/// Lua that writes `entries` (each its id, key, document and due time, as Lua expressions)
/// into the outbox `k` (its five keys as Lua expressions, [`outbox_keys`]' order: documents,
/// states, attempts/owner/error, due times, keys), each unless an entry with its key exists;
/// `outbox_fresh[j]` says whether the j-th was written. Straight statements, no Lua function:
/// defining one and building its argument tables cost a booking's script ≈ 24 k of its
/// ≈ 330 k instructions. When all are new (a booking's notices always are), one call per key
/// writes all of them (a script's cost is mostly per call).
fn enqueue_lua(k: &[String; 5], entries: &[[String; 4]]) -> String {
    // One statement each, in order: of two entries with one key, the first is written.
    let fresh: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(j, [id, key, ..])| {
            format!(
                "outbox_fresh[{}] = redis.call('HSETNX', {}, {key}, {id}) == 1",
                j + 1,
                k[4]
            )
        })
        .collect();
    let write = |written: &[&[String; 4]]| {
        let docs: Vec<String> = written
            .iter()
            .map(|[id, _, doc, _]| format!("{id}, {doc}"))
            .collect();
        let states: Vec<String> = written
            .iter()
            .map(|[id, ..]| format!("{id}, 'pending'"))
            .collect();
        let due: Vec<String> = written
            .iter()
            .map(|[id, _, _, due]| format!("{due}, {id}"))
            .collect();
        format!(
            "redis.call('HSET', {}, {})\nredis.call('HSET', {}, {})\nredis.call('ZADD', {}, {})",
            k[0],
            docs.join(", "),
            k[1],
            states.join(", "),
            k[3],
            due.join(", ")
        )
    };
    let all: Vec<String> = (1..=entries.len())
        .map(|j| format!("outbox_fresh[{j}]"))
        .collect();
    let mut text = format!(
        "local outbox_fresh = {{}}\n{}\nif {} then\n{}\n",
        fresh.join("\n"),
        all.join(" and "),
        write(&entries.iter().collect::<Vec<_>>())
    );
    if entries.len() > 1 {
        text.push_str("else\n");
        for (j, entry) in entries.iter().enumerate() {
            text.push_str(&format!("if {} then\n{}\nend\n", all[j], write(&[entry])));
        }
    }
    text.push_str("end");
    text
}

/// The plans' `outbox` effect ([`Notices::plan`]): the five keys; the number of notifications
/// and four values each, the number of keys to withdraw and the keys. The numbers are the
/// statements' shape; every value is passed in `ARGV`.
fn write_outbox(lua: &mut Lua, keys: &[String], values: &[String]) -> Result<(), StoreError> {
    let bad = || StoreError::Backend("an outbox effect cut short".into());
    let count = |n: Option<&String>| n.and_then(|n| n.parse::<usize>().ok()).ok_or_else(bad);
    let keys: &[String; 5] = keys.try_into().map_err(|_| bad())?;
    let mut values = values.iter();
    let sent = count(values.next())?;
    let mut entries = Vec::with_capacity(sent);
    for _ in 0..sent {
        let mut entry: [String; 4] = Default::default();
        for value in &mut entry {
            *value = lua.value(values.next().ok_or_else(bad)?);
        }
        entries.push(entry);
    }
    if !entries.is_empty() {
        lua.line(&enqueue_lua(keys, &entries));
    }
    let withdrawn = count(values.next())?;
    for _ in 0..withdrawn {
        let key = lua.value(values.next().ok_or_else(bad)?);
        // Only a pending entry is withdrawn: one claimed is its sender's to finish.
        lua.line(&format!(
            "do
  local id = redis.call('HGET', {keys}, {key})
  if id and redis.call('HGET', {states}, id) == 'pending' then
    redis.call('HSET', {states}, id, 'cancelled')
    redis.call('ZREM', {due}, id)
  end
end",
            keys = keys[4],
            states = keys[1],
            due = keys[3]
        ));
    }
    Ok(())
}

/// The plans (see `store::plan`) every capability runs its changes as, with the outbox, so
/// notices are written in the same step as the change that causes them.
pub static PLAN: LazyLock<Plans> = LazyLock::new(|| {
    Plans::new(&[Extension {
        name: "outbox",
        write: write_outbox,
    }])
});

/// The five outbox keys under `tag`, in [`enqueue_lua`]'s order.
fn outbox_keys(store: &RedisStore, tag: &str) -> [String; 5] {
    ["docs", "states", "meta", "due", "keys"].map(|part| store.key(tag, &format!("outbox:{part}")))
}

/// Queues the deletion of outbox entry `id` (whose idempotency key is `key`) from every
/// structure of [`outbox_keys`].
fn delete_entry(pipe: &mut redis::Pipeline, outbox: &[String; 5], id: &str, key: &str) {
    let [docs, states, meta, due, keys] = outbox;
    let fields = ["attempts", "owner", "error"].map(|f| format!("{id}:{f}"));
    pipe.hdel(docs, id)
        .hdel(states, id)
        .hdel(meta, &fields[..])
        .zrem(due, id)
        .hdel(keys, key);
}

/// KEYS: [`outbox_keys`]; ARGV: [`Notification::redis_args`]. 1 when written, 0 when an entry
/// with its key exists.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    let k = [1, 2, 3, 4, 5].map(|j| format!("KEYS[{j}]"));
    let entry = [1, 2, 3, 4].map(|j| format!("ARGV[{j}]"));
    Script::new(&format!(
        "{}\nreturn outbox_fresh[1] and 1 or 0",
        enqueue_lua(&k, &[entry])
    ))
});

/// Claims what is due in one tag's outbox: a few calls for the whole batch (a script's cost
/// is mostly per call).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local docs, states, meta, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, lease_until, limit, owner = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
if #ids == 0 then return {} end
local found = redis.call('HMGET', states, unpack(ids))
local claimed, gone, counters = {}, {}, {}
for j, id in ipairs(ids) do
  if found[j] == 'pending' or found[j] == 'sending' then
    claimed[#claimed + 1] = id
    counters[#counters + 1] = id .. ':attempts'
  else
    gone[#gone + 1] = id
  end
end
if #gone > 0 then redis.call('ZREM', due, unpack(gone)) end
if #claimed == 0 then return {} end
local attempts = redis.call('HMGET', meta, unpack(counters))
local texts = redis.call('HMGET', docs, unpack(claimed))
local leases, sending, out = {}, {}, {}
for j, id in ipairs(claimed) do
  local n = tonumber(attempts[j] or '0') + 1
  attempts[j] = n
  leases[#leases + 1] = lease_until; leases[#leases + 1] = id
  sending[#sending + 1] = id; sending[#sending + 1] = 'sending'
  out[#out + 1] = texts[j]; out[#out + 1] = n
end
local marks = {}
for j, id in ipairs(claimed) do
  marks[#marks + 1] = counters[j]; marks[#marks + 1] = attempts[j]
  marks[#marks + 1] = id .. ':owner'; marks[#marks + 1] = owner
end
redis.call('HSET', meta, unpack(marks))
redis.call('HSET', states, unpack(sending))
redis.call('ZADD', due, unpack(leases))
return out
",
    )
});

/// KEYS: one tag's states, meta, due; ARGV: the owner, then id, state, due (ms, or empty when
/// settled) and error (or empty) of each entry. Entries another claim took are left alone.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local states, meta, due = KEYS[1], KEYS[2], KEYS[3]
local owner = ARGV[1]
local ids, owners = {}, {}
for j = 2, #ARGV, 4 do
  ids[#ids + 1] = ARGV[j]
  owners[#owners + 1] = ARGV[j] .. ':owner'
end
local found = redis.call('HMGET', states, unpack(ids))
local held = redis.call('HMGET', meta, unpack(owners))
local next_states, errors, settled, later = {}, {}, {}, {}
for j, id in ipairs(ids) do
  if found[j] == 'sending' and held[j] == owner then
    local at = 4 * j - 2
    local state, due_ms, err = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    next_states[#next_states + 1] = id; next_states[#next_states + 1] = state
    if err ~= '' then errors[#errors + 1] = id .. ':error'; errors[#errors + 1] = err end
    if due_ms == '' then
      settled[#settled + 1] = id
    else
      later[#later + 1] = due_ms; later[#later + 1] = id
    end
  end
end
if #next_states > 0 then redis.call('HSET', states, unpack(next_states)) end
if #errors > 0 then redis.call('HSET', meta, unpack(errors)) end
if #settled > 0 then redis.call('ZREM', due, unpack(settled)) end
if #later > 0 then redis.call('ZADD', due, unpack(later)) end
return 0
",
    )
});

/// KEYS: the holds, then each hold's user's grants; ARGV: template id and notification id of
/// each hold. 1 for each hold taken (or held already), else 0.
static TAKE_GRANTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holds, out = KEYS[1], {}
for j = 2, #KEYS do
  local grants, template, id = KEYS[j], ARGV[2 * j - 3], ARGV[2 * j - 2]
  local taken = redis.call('HEXISTS', holds, id) == 1
  if not taken and tonumber(redis.call('HGET', grants, template) or '0') > 0 then
    redis.call('HINCRBY', grants, template, -1)
    redis.call('HSET', holds, id, template)
    taken = true
  end
  out[j - 1] = taken and 1 or 0
end
return out
",
    )
});

/// KEYS: the holds, then each hold's user's grants; ARGV: template id, notification id and
/// refund (1/0) of each hold.
static RELEASE_GRANTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for j = 2, #KEYS do
  local template, id, refund = ARGV[3 * j - 5], ARGV[3 * j - 4], ARGV[3 * j - 3]
  if redis.call('HDEL', KEYS[1], id) == 1 and refund == '1' then
    redis.call('HINCRBY', KEYS[j], template, 1)
  end
end
return 0
",
    )
});

impl RedisStore {
    fn grants_key(&self, user_id: &str) -> String {
        self.key(OWN_TAG, &format!("grants:{user_id}"))
    }

    fn holds_key(&self) -> String {
        self.key(OWN_TAG, "grant-holds")
    }

    fn outbox_tags_key(&self) -> String {
        self.key(OWN_TAG, "outbox-tags")
    }

    /// Has the worker look in the outbox of `tag` too (idempotent).
    pub async fn add_outbox_tag(&self, tag: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn().sadd(self.outbox_tags_key(), tag).await?;
        Ok(())
    }

    /// Moves the entry with key `key` from the outbox of `from` to that of `to` if it is
    /// still pending (one claimed, or settled, stays where its sender finishes it): written
    /// in `to` first (a repeat finds it there), then withdrawn from `from`. Whether it moved.
    pub async fn move_pending_entry(
        &self,
        from: &str,
        to: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let [docs, states, .., keys] = outbox_keys(self, from);
        let mut conn = self.conn();
        let id: Option<String> = conn.hget(&keys, key).await?;
        let Some(id) = id else {
            return Ok(false);
        };
        let state: Option<String> = conn.hget(&states, &id).await?;
        let doc: Option<String> = conn.hget(&docs, &id).await?;
        let (Some(OutboxState::Pending), Some(doc)) =
            (state.as_deref().map(OutboxState::parse).transpose()?, doc)
        else {
            return Ok(false);
        };
        for (tag, notices) in [
            (
                to,
                Notices {
                    send: vec![decode(&doc)?],
                    withdraw: Vec::new(),
                },
            ),
            (
                from,
                Notices {
                    send: Vec::new(),
                    withdraw: vec![key.to_owned()],
                },
            ),
        ] {
            let mut plan = RedisPlan::new();
            notices.plan(&mut plan, self, tag);
            plan.run(self, &PLAN).await?;
        }
        Ok(true)
    }

    /// [`OUTBOX_TAGS`] and the tags registered at run time.
    async fn outbox_tags(&self) -> Result<Vec<String>, StoreError> {
        let mut added: Vec<String> = self.conn().smembers(self.outbox_tags_key()).await?;
        added.sort();
        let mut tags: Vec<String> = OUTBOX_TAGS.iter().map(|t| (*t).to_owned()).collect();
        tags.extend(added);
        Ok(tags)
    }
}

#[async_trait]
impl NotifyStore for RedisStore {
    async fn enqueue(&self, notification: &Notification) -> Result<bool, StoreError> {
        let mut script = ENQUEUE.prepare_invoke();
        for key in outbox_keys(self, OWN_TAG) {
            script.key(key);
        }
        for arg in notification.redis_args() {
            script.arg(arg);
        }
        let added: i64 = script.invoke_async(&mut self.conn()).await?;
        Ok(added == 1)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut claimed = Vec::new();
        for tag in self.outbox_tags().await? {
            let left = limit - claimed.len();
            if left == 0 {
                break;
            }
            let [docs, states, meta, due, _] = outbox_keys(self, &tag);
            let rows: Vec<redis::Value> = CLAIM
                .key(docs)
                .key(states)
                .key(meta)
                .key(due)
                .arg(ms(now))
                .arg(ms(lease_until))
                .arg(left)
                .arg(owner)
                .invoke_async(&mut self.conn())
                .await?;
            for pair in rows.chunks(2) {
                let doc: String = redis::from_redis_value(pair[0].clone())
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let attempts: u32 = redis::from_redis_value(pair[1].clone())
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                claimed.push(Claimed {
                    tag: tag.clone(),
                    notification: decode(&doc)?,
                    attempts,
                });
            }
        }
        Ok(claimed)
    }

    async fn finish(
        &self,
        finished: &[(&Claimed, Outcome)],
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut tags: Vec<&str> = finished.iter().map(|(c, _)| c.tag.as_str()).collect();
        tags.sort_unstable();
        tags.dedup();
        // One call per tag: each tag's outbox is on its own slot.
        for tag in tags {
            let [_, states, meta, due, _] = outbox_keys(self, tag);
            let mut script = FINISH.prepare_invoke();
            script.key(states).key(meta).key(due).arg(owner);
            for (claimed, outcome) in finished.iter().filter(|(c, _)| c.tag == tag) {
                let (state, due, error) = final_fields(outcome);
                script
                    .arg(&claimed.notification.id)
                    .arg(state.as_str())
                    .arg(due.map(|d| d.to_string()).unwrap_or_default())
                    .arg(error.unwrap_or_default());
            }
            let _: i64 = script.invoke_async(&mut self.conn()).await?;
        }
        Ok(())
    }

    async fn outbox_entry(&self, tag: &str, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let [_, states, meta, _, _] = outbox_keys(self, tag);
        let mut conn = self.conn();
        let (state, attempts, error): (Option<String>, Option<u32>, Option<String>) = redis::pipe()
            .hget(&states, id)
            .hget(&meta, format!("{id}:attempts"))
            .hget(&meta, format!("{id}:error"))
            .query_async(&mut conn)
            .await?;
        state
            .map(|state| {
                Ok(OutboxEntry {
                    state: OutboxState::parse(&state)?,
                    attempts: attempts.unwrap_or(0),
                    last_error: error,
                })
            })
            .transpose()
    }

    async fn grant_subscriptions(
        &self,
        user_id: &str,
        template_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for template_id in template_ids {
            pipe.hincr(self.grants_key(user_id), template_id, 1);
        }
        let counts: Vec<i64> = pipe.query_async(&mut self.conn()).await?;
        Ok(template_ids.iter().cloned().zip(counts).collect())
    }

    async fn take_subscriptions(&self, holds: &[GrantHold]) -> Result<Vec<bool>, StoreError> {
        if holds.is_empty() {
            return Ok(Vec::new());
        }
        let mut script = TAKE_GRANTS.prepare_invoke();
        script.key(self.holds_key());
        for hold in holds {
            script
                .key(self.grants_key(&hold.user_id))
                .arg(&hold.template_id)
                .arg(&hold.notification_id);
        }
        let taken: Vec<i64> = script.invoke_async(&mut self.conn()).await?;
        Ok(taken.into_iter().map(|t| t == 1).collect())
    }

    async fn release_subscriptions(
        &self,
        released: &[(GrantHold, bool)],
    ) -> Result<(), StoreError> {
        if released.is_empty() {
            return Ok(());
        }
        let mut script = RELEASE_GRANTS.prepare_invoke();
        script.key(self.holds_key());
        for (hold, refund) in released {
            script
                .key(self.grants_key(&hold.user_id))
                .arg(&hold.template_id)
                .arg(&hold.notification_id)
                .arg(if *refund { "1" } else { "0" });
        }
        let _: i64 = script.invoke_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn clear_subscription(&self, user_id: &str, template_id: &str) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("HSET")
            .arg(self.grants_key(user_id))
            .arg(template_id)
            .arg(0)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn erase_recipient(
        &self,
        user_id: &str,
        openid: Option<&str>,
    ) -> Result<ErasedNotices, StoreError> {
        let mut conn = self.conn();
        let grants: HashMap<String, i64> = conn.hgetall(self.grants_key(user_id)).await?;
        let _: i64 = conn.del(self.grants_key(user_id)).await?;
        let mut outbox_entries = 0;
        for tag in self.outbox_tags().await? {
            let outbox = outbox_keys(self, &tag);
            let all: HashMap<String, String> = conn.hgetall(&outbox[0]).await?;
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (id, doc) in &all {
                let notification = decode(doc)?;
                if notification.is_for(user_id, openid) {
                    delete_entry(&mut pipe, &outbox, id, &notification.key);
                    outbox_entries += 1;
                }
            }
            let () = pipe.query_async(&mut conn).await?;
        }
        Ok(ErasedNotices {
            subscriptions: grants.len(),
            outbox_entries,
        })
    }

    async fn delete_settled_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for tag in self.outbox_tags().await? {
            let outbox = outbox_keys(self, &tag);
            let [docs, states, ..] = &outbox;
            let all: HashMap<String, String> = self.conn().hgetall(states).await?;
            let settled: Vec<String> = all
                .into_iter()
                .filter(|(_, state)| {
                    OutboxState::parse(state).is_ok_and(|state| SETTLED.contains(&state))
                })
                .map(|(id, _)| id)
                .collect();
            for ids in settled.chunks(500) {
                let found: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(docs)
                    .arg(ids)
                    .query_async(&mut self.conn())
                    .await?;
                let mut pipe = redis::pipe();
                pipe.atomic();
                let mut expired = 0;
                for (id, doc) in ids.iter().zip(found) {
                    let Some(doc) = doc else { continue };
                    let notification: Notification = serde_json::from_str(&doc)
                        .map_err(|e| StoreError::Backend(format!("outbox entry {id}: {e}")))?;
                    if notification.not_before >= before {
                        continue;
                    }
                    // Settled entries never change again, so deleting them races nothing.
                    delete_entry(&mut pipe, &outbox, id, &notification.key);
                    expired += 1;
                }
                if expired > 0 {
                    let _: () = pipe.query_async(&mut self.conn()).await?;
                    deleted += expired;
                }
            }
        }
        Ok(deleted)
    }
}
