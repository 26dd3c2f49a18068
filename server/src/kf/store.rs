//! 客服 conversations on both backends: one per WeChat user, each message the user wrote and
//! each reply (automatic or a person's) with its time and who answered. A step's messages and
//! the reply it sends are written together with the reply's outbox entry (one SQLite
//! transaction; one Redis script), so a reply is recorded exactly when it is queued.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::notify::store::{enqueue_in_tx, Notices, PLAN};
use crate::notify::Notification;
use crate::store::plan::{Ran, RedisPlan};
use crate::store::{RedisStore, SqliteStore, StoreError};

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    /// The resident, from the 客服 button.
    User,
    /// An automatic answer.
    Auto,
    /// A `support` account (`staff_id`).
    Staff,
}

impl Author {
    fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Auto => "auto",
            Author::Staff => "staff",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "user" => Ok(Author::User),
            "auto" => Ok(Author::Auto),
            "staff" => Ok(Author::Staff),
            other => Err(StoreError::Backend(format!(
                "unknown 客服 author `{other}`"
            ))),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KfMessage {
    pub id: String,
    pub at: DateTime<Utc>,
    pub author: Author,
    /// The `support` account that wrote a staff reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    pub text: String,
}

/// A conversation's summary: what the inbox lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub openid: String,
    /// The last message, whoever wrote it.
    pub last_at: DateTime<Utc>,
    /// The user's last message: WeChat takes replies for 48 hours after it.
    pub last_user_at: DateTime<Utc>,
    /// The last user message no automatic answer could answer.
    pub needs_person_at: Option<DateTime<Utc>>,
    /// The last reply of a person.
    pub staff_at: Option<DateTime<Utc>>,
    pub last_text: String,
}

impl Conversation {
    /// A person has yet to answer what the user last asked that nothing automatic could.
    pub fn awaiting(&self) -> bool {
        match (self.needs_person_at, self.staff_at) {
            (Some(asked), Some(answered)) => asked > answered,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What one step adds to the conversation `conversation_id` (created by its first step), in
/// order, and the reply it queues.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub conversation_id: String,
    pub openid: String,
    pub messages: Vec<KfMessage>,
    /// The user's message needs a person's answer.
    pub needs_person: bool,
    pub reply: Option<Notification>,
}

impl Exchange {
    fn last_at(&self, author: Author) -> Option<DateTime<Utc>> {
        self.messages
            .iter()
            .filter(|m| m.author == author)
            .map(|m| m.at)
            .max()
    }

    fn needs_person_at(&self) -> Option<DateTime<Utc>> {
        self.needs_person
            .then(|| self.last_at(Author::User))
            .flatten()
    }
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Appends the exchange's messages, updates the summary and queues its reply, at once.
    async fn record_exchange(&self, exchange: &Exchange) -> Result<(), StoreError>;
    /// Up to `limit` conversations, the most recent first.
    async fn conversations(&self, limit: usize) -> Result<Vec<Conversation>, StoreError>;
    /// One conversation and its messages, oldest first.
    async fn conversation(
        &self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<KfMessage>)>, StoreError>;
    /// Deletes the conversations whose last message is older than `cutoff`; how many.
    async fn delete_conversations_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Deletes one conversation with its messages; false when there was none.
    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError>;
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// 0 (never) as `None`.
fn optional_ms(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0).then(|| from_ms(ms))
}

fn last_text(exchange: &Exchange) -> String {
    exchange
        .messages
        .last()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

const SUMMARY_COLUMNS: &str =
    "id, openid, last_at, last_user_at, needs_person_at, staff_at, last_text";

fn summary_row(r: &rusqlite::Row) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get(0)?,
        openid: r.get(1)?,
        last_at: from_ms(r.get(2)?),
        last_user_at: from_ms(r.get(3)?),
        needs_person_at: optional_ms(r.get(4)?),
        staff_at: optional_ms(r.get(5)?),
        last_text: r.get(6)?,
    })
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn record_exchange(&self, exchange: &Exchange) -> Result<(), StoreError> {
        let exchange = exchange.clone();
        self.write(move |tx| {
            let Some(last) = exchange.messages.iter().map(|m| m.at).max() else {
                return Ok(());
            };
            let or_zero = |t: Option<DateTime<Utc>>| t.map(ms).unwrap_or(0);
            tx.execute(
                "INSERT INTO kf_conversations
                   (id, openid, last_at, last_user_at, needs_person_at, staff_at, last_text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET
                   last_at = max(last_at, excluded.last_at),
                   last_user_at = max(last_user_at, excluded.last_user_at),
                   needs_person_at = max(needs_person_at, excluded.needs_person_at),
                   staff_at = max(staff_at, excluded.staff_at),
                   last_text = excluded.last_text",
                params![
                    exchange.conversation_id,
                    exchange.openid,
                    ms(last),
                    or_zero(exchange.last_at(Author::User)),
                    or_zero(exchange.needs_person_at()),
                    or_zero(exchange.last_at(Author::Staff)),
                    last_text(&exchange),
                ],
            )?;
            for m in &exchange.messages {
                tx.execute(
                    "INSERT INTO kf_messages (id, conversation_id, at, author, staff_id, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                    params![
                        m.id,
                        exchange.conversation_id,
                        ms(m.at),
                        m.author.as_str(),
                        m.staff_id,
                        m.text
                    ],
                )?;
            }
            if let Some(reply) = &exchange.reply {
                enqueue_in_tx(tx, reply)?;
            }
            Ok(())
        })
        .await
    }

    async fn conversations(&self, limit: usize) -> Result<Vec<Conversation>, StoreError> {
        self.read(move |c| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM kf_conversations ORDER BY last_at DESC, id LIMIT ?1"
            );
            let rows = c
                .prepare(&sql)?
                .query_map([limit as i64], summary_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn conversation(
        &self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<KfMessage>)>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM kf_conversations WHERE id = ?1");
            let Some(summary) = c.query_row(&sql, [&id], summary_row).optional()? else {
                return Ok(None);
            };
            let rows = c
                .prepare(
                    "SELECT id, at, author, staff_id, text FROM kf_messages
                     WHERE conversation_id = ?1 ORDER BY at, rowid",
                )?
                .query_map([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let messages = rows
                .into_iter()
                .map(|(id, at, author, staff_id, text)| {
                    Ok(KfMessage {
                        id,
                        at: from_ms(at),
                        author: Author::parse(&author)?,
                        staff_id,
                        text,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some((summary, messages)))
        })
        .await
    }

    async fn delete_conversations_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write(move |tx| {
            // Messages go with their conversation (ON DELETE CASCADE); `secure_delete` zeroes them.
            Ok(tx.execute(
                "DELETE FROM kf_conversations WHERE last_at < ?1",
                [ms(cutoff)],
            )? as u64)
        })
        .await
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            Ok(tx.execute("DELETE FROM kf_conversations WHERE id = ?1", [id])? == 1)
        })
        .await
    }
}

/// Every 客服 key shares this tag, with the outbox entries of the replies.
pub const TAG: &str = "kf";

/// KEYS: the conversations by last message, the conversation, its messages; ARGV: its id,
/// the cutoff (ms). Deletes it if its last message is still older than the cutoff.
static DELETE_OLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
if last and tonumber(last) < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
",
    )
});

impl RedisStore {
    fn kf_index_key(&self) -> String {
        self.key(TAG, "conversations")
    }

    fn kf_conversation_key(&self, id: &str) -> String {
        self.key(TAG, &format!("conversation:{id}"))
    }

    fn kf_messages_key(&self, id: &str) -> String {
        self.key(TAG, &format!("conversation:{id}:messages"))
    }

    async fn kf_summary(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let fields: std::collections::HashMap<String, String> =
            self.conn().hgetall(self.kf_conversation_key(id)).await?;
        let Some(openid) = fields.get("openid") else {
            return Ok(None);
        };
        let time = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(Conversation {
            id: id.to_owned(),
            openid: openid.clone(),
            last_at: from_ms(time("last_at")),
            last_user_at: from_ms(time("last_user_at")),
            needs_person_at: optional_ms(time("needs_person_at")),
            staff_at: optional_ms(time("staff_at")),
            last_text: fields.get("last_text").cloned().unwrap_or_default(),
        }))
    }
}

#[async_trait]
impl ConversationStore for RedisStore {
    async fn record_exchange(&self, exchange: &Exchange) -> Result<(), StoreError> {
        let Some(last) = exchange.messages.iter().map(|m| m.at).max() else {
            return Ok(());
        };
        let id = &exchange.conversation_id;
        let mut plan = RedisPlan::new();
        // The server's clock only moves forward, so the newest times overwrite older ones.
        let (last_ms, text) = (ms(last).to_string(), last_text(exchange));
        let mut fields = vec![
            ("openid", exchange.openid.clone()),
            ("last_at", last_ms),
            ("last_text", text),
        ];
        for (name, at) in [
            ("last_user_at", exchange.last_at(Author::User)),
            ("needs_person_at", exchange.needs_person_at()),
            ("staff_at", exchange.last_at(Author::Staff)),
        ] {
            if let Some(at) = at {
                fields.push((name, ms(at).to_string()));
            }
        }
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        plan.hset(self.kf_conversation_key(id), &fields);
        plan.zadd(self.kf_index_key(), ms(last), id);
        for (i, m) in exchange.messages.iter().enumerate() {
            // Kept to the millisecond, as SQLite keeps it.
            let m = KfMessage {
                at: from_ms(ms(m.at)),
                ..m.clone()
            };
            let doc = serde_json::to_string(&m)
                .map_err(|e| StoreError::Backend(format!("客服 message: {e}")))?;
            // Members of one time sort by their position in the exchange.
            plan.zadd(self.kf_messages_key(id), ms(m.at), &format!("{i}|{doc}"));
        }
        Notices {
            send: exchange.reply.iter().cloned().collect(),
            withdraw: Vec::new(),
        }
        .plan(&mut plan, self, TAG);
        match plan.run(self, &PLAN).await? {
            Ran::Done(_) => Ok(()),
            other => Err(StoreError::Backend(format!(
                "客服 exchange not recorded: {other:?}"
            ))),
        }
    }

    async fn conversations(&self, limit: usize) -> Result<Vec<Conversation>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self
            .conn()
            .zrevrange(self.kf_index_key(), 0, limit as isize - 1)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(summary) = self.kf_summary(&id).await? {
                out.push(summary);
            }
        }
        Ok(out)
    }

    async fn conversation(
        &self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<KfMessage>)>, StoreError> {
        let Some(summary) = self.kf_summary(id).await? else {
            return Ok(None);
        };
        let members: Vec<String> = self.conn().zrange(self.kf_messages_key(id), 0, -1).await?;
        let messages = members
            .iter()
            .map(|member| {
                let doc = member.split_once('|').map_or(member.as_str(), |(_, d)| d);
                serde_json::from_str(doc)
                    .map_err(|e| StoreError::Backend(format!("客服 message: {e}")))
            })
            .collect::<Result<Vec<KfMessage>, _>>()?;
        Ok(Some((summary, messages)))
    }

    async fn delete_conversations_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let index = self.kf_index_key();
        let old: Vec<String> = self
            .conn()
            .zrangebyscore(&index, "-inf", format!("({}", ms(cutoff)))
            .await?;
        let mut deleted = 0;
        for id in old {
            let gone: i64 = DELETE_OLD
                .key(&index)
                .key(self.kf_conversation_key(&id))
                .key(self.kf_messages_key(&id))
                .arg(&id)
                .arg(ms(cutoff))
                .invoke_async(&mut self.conn())
                .await?;
            deleted += gone as u64;
        }
        Ok(deleted)
    }

    async fn delete_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.kf_conversation_key(id))
            .del(self.kf_messages_key(id))
            .zrem(self.kf_index_key(), id);
        let (conversations, _, _): (i64, i64, i64) = pipe.query_async(&mut self.conn()).await?;
        Ok(conversations == 1)
    }
}
