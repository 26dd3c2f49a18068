//! Redis: the plans the capabilities compute in Rust (booking's rules, receipt orders'
//! transitions), each compiled into a straight Lua script. A plan is guards, checked in order
//! against what is stored (the first that fails is the answer), then effects; its script only
//! carries it out, atomically, in one round trip. A script's text depends only on its plan's
//! *shape* (the operations, which of the plan's keys each touches, which refusals are kept):
//! every value goes in `ARGV`, so a request's text never becomes Lua source, and one script,
//! loaded once and run by its SHA, serves every plan of a shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::{RedisStore, StoreError};

/// An operation a capability adds to plans (e.g. the notification outbox's): the writer of
/// each use's statements.
pub struct Extension {
    pub name: &'static str,
    /// Writes one use: its keys as Lua expressions (`KEYS[3]`), its values passed with
    /// [`Lua::value`].
    pub write: WriteLua,
}

/// An [`Extension`]'s writer: the script, the use's keys, its values.
pub type WriteLua = fn(&mut Lua, &[String], &[String]) -> Result<(), StoreError>;

/// A script being written: its text and the values it reads from `ARGV`.
#[derive(Default)]
pub struct Lua {
    text: String,
    args: Vec<String>,
}

impl Lua {
    /// `value` passed in `ARGV`; the Lua expression that reads it.
    pub fn value(&mut self, value: &str) -> String {
        self.args.push(value.to_owned());
        format!("ARGV[{}]", self.args.len())
    }

    /// A statement (or several) of the script.
    pub fn line(&mut self, lua: &str) {
        self.text.push_str(lua);
        self.text.push('\n');
    }
}

/// The compiler of plans, with its extensions, and the script of each shape it met.
pub struct Plans {
    extensions: &'static [Extension],
    /// By text: a shape's script is hashed (its SHA) once.
    scripts: Mutex<HashMap<String, Arc<Script>>>,
}

impl Plans {
    pub fn new(extensions: &'static [Extension]) -> Self {
        Plans {
            extensions,
            scripts: Mutex::default(),
        }
    }

    /// The script of `text`, made once.
    fn script(&self, text: String) -> Arc<Script> {
        let mut scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        scripts
            .entry(text)
            .or_insert_with_key(|text| Arc::new(Script::new(text)))
            .clone()
    }

    fn extension(&self, name: &str) -> Result<&Extension, StoreError> {
        self.extensions
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| StoreError::Backend(format!("unknown plan operation `{name}`")))
    }
}

/// What a plan came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Every guard held and the effects are stored; the record's `done` text.
    Done(String),
    /// This guard's refusal text (with what the store found, for `at_most`).
    Stopped(String),
    /// The record's earlier outcome, for the same request.
    Replayed(String),
    /// The record is another request's.
    Mismatch,
}

/// Refuse with `refusal` (a code constant: it is written into the script), and say whether an
/// answer record keeps the refusal (a rule's answer) or not (a collision the caller retries
/// with other values).
#[derive(Debug, Clone, Copy)]
pub struct Refuse {
    pub refusal: &'static str,
    pub remembered: bool,
}

/// A guard's condition; keys are `KEYS` indexes (from 1), numbers kept as the text passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Check {
    Absent {
        key: usize,
    },
    CardBelow {
        key: usize,
        n: String,
    },
    FieldBelow {
        key: usize,
        field: String,
        n: String,
    },
    AtMost {
        key: usize,
        n: String,
    },
    FieldIs {
        key: usize,
        field: String,
        value: String,
    },
    JsonNumberIs {
        key: usize,
        field: String,
        name: String,
        n: String,
    },
    FieldAbsent {
        key: usize,
        field: String,
    },
    CountedWithin {
        key: usize,
        ends: String,
        limit: String,
        ttl: String,
    },
    Claim {
        key: usize,
        owner: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Guard {
    check: Check,
    refusal: String,
    remembered: bool,
}

/// An effect; keys are `KEYS` indexes (from 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Change {
    Set {
        key: usize,
        value: String,
    },
    SetPx {
        key: usize,
        value: String,
        ttl: String,
    },
    Del {
        key: usize,
    },
    DelIf {
        key: usize,
        value: String,
    },
    Sadd {
        key: usize,
        member: String,
    },
    Srem {
        key: usize,
        member: String,
    },
    Hdel {
        key: usize,
        field: String,
    },
    HdelIf {
        key: usize,
        field: String,
        value: String,
    },
    Remember {
        key: usize,
        hash: String,
        outcome: String,
        expires: String,
        ttl: String,
    },
    Zadd {
        key: usize,
        score: String,
        member: String,
    },
    Zrem {
        key: usize,
        member: String,
    },
    Hset {
        key: usize,
        fields: Vec<(String, String)>,
    },
    Hincrby {
        key: usize,
        field: String,
        by: String,
    },
    WindowAdd {
        key: usize,
        score: String,
        member: String,
        oldest: String,
        ttl: String,
    },
    DelIfCountBelow {
        counted: usize,
        after: String,
        limit: String,
        key: usize,
    },
    RaiseIfCard {
        counted: usize,
        limit: String,
        key: usize,
        value: String,
        ttl: String,
    },
    Extension {
        name: String,
        keys: Vec<usize>,
        values: Vec<String>,
    },
}

/// The answer record: at `KEYS[key]`, for the request whose digest is `hash`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    key: usize,
    hash: String,
    ttl_ms: String,
    now_ms: String,
    done: String,
}

/// A plan: keys by reference, operations in order. It can be kept (as JSON) to be run later: a
/// step another step promised.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RedisPlan {
    keys: Vec<String>,
    record: Option<Record>,
    /// Guards about who asks: checked before the record.
    caller_guards: Vec<Guard>,
    guards: Vec<Guard>,
    /// The claim, if any: it writes, so it runs after every other guard.
    claim: Option<Guard>,
    effects: Vec<Change>,
}

/// `text` as a Lua string literal: only code constants are written so, and escaped whatever
/// they hold.
fn lua_string(text: &str) -> String {
    let mut literal = String::from("'");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b" _-:.".contains(&byte) {
            literal.push(char::from(byte));
        } else {
            literal.push_str(&format!("\\{byte:03}"));
        }
    }
    literal.push('\'');
    literal
}

/// The key of the counter of the window ending at `window_ends` among the counts under `key`
/// ([`RedisPlan::counted_within`]).
pub fn window_counter(key: &str, window_ends: impl std::fmt::Display) -> String {
    format!("{key}:w:{window_ends}")
}

impl RedisPlan {
    pub fn new() -> Self {
        RedisPlan::default()
    }

    /// `KEYS` index (from 1) of `key`, added once.
    fn key(&mut self, key: String) -> usize {
        match self.keys.iter().position(|k| *k == key) {
            Some(at) => at + 1,
            None => {
                self.keys.push(key);
                self.keys.len()
            }
        }
    }

    /// Answers kept at `key` for `ttl_ms` of the server's clock: a request with the same
    /// `hash` gets the first answer again, another request `Mismatch`; `done` is the answer
    /// when the plan runs (empty: the plan is a first step of several and keeps nothing when it
    /// runs; a later step keeps the answer with [`Self::remember`]).
    pub fn record(&mut self, key: String, hash: &str, ttl_ms: u64, now_ms: i64, done: &str) {
        self.record = Some(Record {
            key: self.key(key),
            hash: hash.to_owned(),
            ttl_ms: ttl_ms.to_string(),
            now_ms: now_ms.to_string(),
            done: done.to_owned(),
        });
    }

    fn guard(&mut self, refuse: Refuse, check: Check) {
        self.guards.push(Guard {
            check,
            refusal: refuse.refusal.to_owned(),
            remembered: refuse.remembered,
        });
    }

    /// The guards added so far are about who asks (a token, a consent): they are checked
    /// before the answer record, so a replay needs them to hold too.
    pub fn checked_first(&mut self) {
        self.caller_guards.append(&mut self.guards);
    }

    /// Holds while `key` does not exist.
    pub fn absent(&mut self, key: String, refuse: Refuse) {
        let key = self.key(key);
        self.guard(refuse, Check::Absent { key });
    }

    /// Holds while the set at `key` has fewer than `n` members.
    pub fn card_below(&mut self, key: String, n: u32, refuse: Refuse) {
        let key = self.key(key);
        let n = n.to_string();
        self.guard(refuse, Check::CardBelow { key, n });
    }

    /// Holds while the number in `field` of the hash at `key` (0 when absent) is below `n`.
    pub fn field_below(&mut self, key: String, field: &str, n: u32, refuse: Refuse) {
        let key = self.key(key);
        let (field, n) = (field.to_owned(), n.to_string());
        self.guard(refuse, Check::FieldBelow { key, field, n });
    }

    /// Holds while the number at `key` (0 when absent) is at most `n`; the refusal text
    /// gets `:<the number>`.
    pub fn at_most(&mut self, key: String, n: i64, refuse: Refuse) {
        let key = self.key(key);
        let n = n.to_string();
        self.guard(refuse, Check::AtMost { key, n });
    }

    /// Holds while the JSON document in `field` of the hash at `key` has the number `n` as
    /// its member `name` (a document without the member has 0).
    pub fn json_number_is(&mut self, key: String, field: &str, name: &str, n: u64, refuse: Refuse) {
        let key = self.key(key);
        let (field, name, n) = (field.to_owned(), name.to_owned(), n.to_string());
        self.guard(
            refuse,
            Check::JsonNumberIs {
                key,
                field,
                name,
                n,
            },
        );
    }

    /// Holds while the hash at `key` has no `field`.
    pub fn field_absent(&mut self, key: String, field: &str, refuse: Refuse) {
        let key = self.key(key);
        let field = field.to_owned();
        self.guard(refuse, Check::FieldAbsent { key, field });
    }

    /// Counts one more in the window ending at `window_ends` (Unix ms of the server's clock)
    /// of the counts under `key`, and holds while the window has at most `limit`; the refusal
    /// text gets `:<window_ends>`. It writes whatever the answer, and runs where it stands
    /// among the guards: the guards before it decide whether it counts. Each window has its
    /// own counter, `<key>:w:<window_ends>`, so a count is one `INCR` (another window's
    /// counter is another key); the counter expires two windows after its first count, so past
    /// the window's end even on a Redis clock somewhat ahead (it only collects garbage: the
    /// window is in the key's name).
    pub fn counted_within(
        &mut self,
        key: String,
        window_ends: i64,
        window_ms: u64,
        limit: u32,
        refuse: Refuse,
    ) {
        let key = self.key(window_counter(&key, window_ends));
        let check = Check::CountedWithin {
            key,
            ends: window_ends.to_string(),
            limit: limit.to_string(),
            ttl: window_ms.max(1).saturating_mul(2).to_string(),
        };
        self.guard(refuse, check);
    }

    /// Holds while `field` of the hash at `key` is `value`.
    pub fn field_is(&mut self, key: String, field: &str, value: &str, refuse: Refuse) {
        let key = self.key(key);
        let (field, value) = (field.to_owned(), value.to_owned());
        self.guard(refuse, Check::FieldIs { key, field, value });
    }

    /// Holds when `key` is free or already `owner`'s, and takes it for `owner`: a uniqueness
    /// the store must decide. It writes, so it runs after every other guard.
    pub fn claim(&mut self, key: String, owner: &str, refuse: Refuse) {
        let key = self.key(key);
        self.claim = Some(Guard {
            check: Check::Claim {
                key,
                owner: owner.to_owned(),
            },
            refusal: refuse.refusal.to_owned(),
            remembered: refuse.remembered,
        });
    }

    pub fn set(&mut self, key: String, value: &str) {
        let key = self.key(key);
        let value = value.to_owned();
        self.effects.push(Change::Set { key, value });
    }

    /// Sets `key` to `value`, to expire `ttl_ms` later.
    pub fn set_expiring(&mut self, key: String, value: &str, ttl_ms: u64) {
        let key = self.key(key);
        let (value, ttl) = (value.to_owned(), ttl_ms.max(1).to_string());
        self.effects.push(Change::SetPx { key, value, ttl });
    }

    pub fn del(&mut self, key: String) {
        let key = self.key(key);
        self.effects.push(Change::Del { key });
    }

    /// Deletes `key` if it still holds `value`.
    pub fn del_if(&mut self, key: String, value: &str) {
        let key = self.key(key);
        let value = value.to_owned();
        self.effects.push(Change::DelIf { key, value });
    }

    pub fn sadd(&mut self, key: String, member: &str) {
        let key = self.key(key);
        let member = member.to_owned();
        self.effects.push(Change::Sadd { key, member });
    }

    pub fn srem(&mut self, key: String, member: &str) {
        let key = self.key(key);
        let member = member.to_owned();
        self.effects.push(Change::Srem { key, member });
    }

    pub fn hdel(&mut self, key: String, field: &str) {
        let key = self.key(key);
        let field = field.to_owned();
        self.effects.push(Change::Hdel { key, field });
    }

    /// Deletes `field` of the hash at `key` if it still holds `value`.
    pub fn hdel_if(&mut self, key: String, field: &str, value: &str) {
        let key = self.key(key);
        let (field, value) = (field.to_owned(), value.to_owned());
        self.effects.push(Change::HdelIf { key, field, value });
    }

    /// Keeps `outcome` as the answer record at `key` (as [`Self::record`] reads it) for the
    /// request whose digest is `hash`, until `expires_ms` of the server's clock; the key is
    /// collected `ttl_ms` later.
    pub fn remember(
        &mut self,
        key: String,
        hash: &str,
        outcome: &str,
        expires_ms: i64,
        ttl_ms: u64,
    ) {
        let key = self.key(key);
        self.effects.push(Change::Remember {
            key,
            hash: hash.to_owned(),
            outcome: outcome.to_owned(),
            expires: expires_ms.to_string(),
            ttl: ttl_ms.max(1).to_string(),
        });
    }

    pub fn zadd(&mut self, key: String, score: i64, member: &str) {
        let key = self.key(key);
        let (score, member) = (score.to_string(), member.to_owned());
        self.effects.push(Change::Zadd { key, score, member });
    }

    pub fn zrem(&mut self, key: String, member: &str) {
        let key = self.key(key);
        let member = member.to_owned();
        self.effects.push(Change::Zrem { key, member });
    }

    pub fn hset(&mut self, key: String, fields: &[(&str, &str)]) {
        let key = self.key(key);
        let fields = fields
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect();
        self.effects.push(Change::Hset { key, fields });
    }

    pub fn hincrby(&mut self, key: String, field: &str, by: i64) {
        let key = self.key(key);
        let (field, by) = (field.to_owned(), by.to_string());
        self.effects.push(Change::Hincrby { key, field, by });
    }

    /// Adds `member` at `score` to the sorted set at `key`, drops members scored at
    /// `oldest` or below, and lets the set expire `ttl_ms` after its last change.
    pub fn window_add(&mut self, key: String, score: i64, member: &str, oldest: i64, ttl_ms: u64) {
        let key = self.key(key);
        self.effects.push(Change::WindowAdd {
            key,
            score: score.to_string(),
            member: member.to_owned(),
            oldest: oldest.to_string(),
            ttl: ttl_ms.to_string(),
        });
    }

    /// When the sorted set at `counted` has fewer than `limit` members scored above `after`,
    /// deletes `key`.
    pub fn del_if_count_below(&mut self, counted: String, after: i64, limit: u32, key: String) {
        let (counted, key) = (self.key(counted), self.key(key));
        let (after, limit) = (after.to_string(), limit.to_string());
        self.effects.push(Change::DelIfCountBelow {
            counted,
            after,
            limit,
            key,
        });
    }

    /// When the sorted set at `counted` has `limit` members or more, raises the number at
    /// `key` to `value` (never lowers it), to expire `ttl_ms` later.
    pub fn raise_if_card(
        &mut self,
        counted: String,
        limit: u32,
        key: String,
        value: i64,
        ttl_ms: u64,
    ) {
        let (counted, key) = (self.key(counted), self.key(key));
        self.effects.push(Change::RaiseIfCard {
            counted,
            limit: limit.to_string(),
            key,
            value: value.to_string(),
            ttl: ttl_ms.to_string(),
        });
    }

    /// An [`Extension`]'s effect: its `name`, keys and values, as its writer reads them.
    pub fn extension(&mut self, name: &str, keys: Vec<String>, values: Vec<String>) {
        let keys = keys.into_iter().map(|k| self.key(k)).collect();
        let name = name.to_owned();
        self.effects.push(Change::Extension { name, keys, values });
    }

    /// Whether the plan checks and changes nothing (a step of a sequence with nothing to do).
    pub fn is_empty(&self) -> bool {
        self.record.is_none()
            && self.caller_guards.is_empty()
            && self.guards.is_empty()
            && self.claim.is_none()
            && self.effects.is_empty()
    }

    /// A key the plan touches first (`None` for an empty plan): its node is where the plan
    /// writes.
    pub fn first_key(&self) -> Option<String> {
        self.keys.first().cloned()
    }

    /// The plan as JSON, to be run later ([`Self::from_json`]).
    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::Backend(format!("plan: {e}")))
    }

    /// A plan kept as JSON, by this version or by the generic executor before it
    /// ([`legacy`]).
    pub fn from_json(json: &str) -> Result<RedisPlan, StoreError> {
        let bad = |e: serde_json::Error| StoreError::Backend(format!("kept plan: {e}"));
        let value: serde_json::Value = serde_json::from_str(json).map_err(bad)?;
        if value.get("effect_count").is_some() {
            return legacy::plan(serde_json::from_value(value).map_err(bad)?);
        }
        serde_json::from_value(value).map_err(bad)
    }

    /// The plan's script and its `ARGV`.
    fn compile(&self, plans: &Plans) -> Result<Lua, StoreError> {
        let mut lua = Lua::default();
        let record = self.record.as_ref().map(|r| {
            let hash = lua.value(&r.hash);
            let (ttl, now) = (lua.value(&r.ttl_ms), lua.value(&r.now_ms));
            lua.line(&format!(
                "local now, ttl = tonumber({now}), tonumber({ttl})
local function answer(kind, outcome)
  if outcome ~= '' then
    redis.call('HSET', KEYS[{k}], 'hash', {hash}, 'outcome', outcome, 'expires', now + ttl)
    redis.call('PEXPIRE', KEYS[{k}], ttl)
  end
  return {{kind, outcome}}
end",
                k = r.key
            ));
            (r, hash)
        });
        for guard in &self.caller_guards {
            guard.write(&mut lua, false);
        }
        if let Some((r, hash)) = &record {
            // Expired by the server's clock, as on SQLite (PEXPIRE only collects the garbage).
            lua.line(&format!(
                "do
  local earlier = redis.call('HMGET', KEYS[{k}], 'hash', 'outcome', 'expires')
  if earlier[1] and tonumber(earlier[3] or '0') > now then
    if earlier[1] ~= {hash} then return {{'MISMATCH'}} end
    return {{'REPLAY', earlier[2]}}
  end
end",
                k = r.key
            ));
        }
        for guard in self.guards.iter().chain(&self.claim) {
            guard.write(&mut lua, record.is_some());
        }
        for change in &self.effects {
            change.write(&mut lua, plans)?;
        }
        match &record {
            Some((r, _)) => {
                let done = lua.value(&r.done);
                lua.line(&format!("return answer('DONE', {done})"));
            }
            None => lua.line("return {'DONE', ''}"),
        }
        Ok(lua)
    }

    /// Runs the plan: one round trip, then the replicas asked for are waited for.
    pub async fn run(self, store: &RedisStore, plans: &Plans) -> Result<Ran, StoreError> {
        let key = self.first_key();
        let ran = self.run_unreplicated(store, plans).await?;
        // What is answered as stored (now, or by the request replayed) is on the replicas
        // asked for first.
        if let (Ran::Done(_) | Ran::Replayed(_), Some(key)) = (&ran, key) {
            store.replicated(&key).await?;
        }
        Ok(ran)
    }

    /// Runs the plan without waiting for replicas: a step of a sequence that waits for them
    /// once, at its end ([`RedisStore::replicated`] on each node it wrote to).
    pub async fn run_unreplicated(
        self,
        store: &RedisStore,
        plans: &Plans,
    ) -> Result<Ran, StoreError> {
        let Lua { text, args } = self.compile(plans)?;
        let script = plans.script(text);
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        for arg in &args {
            invocation.arg(arg);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut store.conn()).await?;
        let detail = || reply.get(1).cloned().unwrap_or_default();
        Ok(match reply.first().map(String::as_str) {
            Some("DONE") => Ran::Done(detail()),
            Some("STOP") => Ran::Stopped(detail()),
            Some("REPLAY") => Ran::Replayed(detail()),
            Some("MISMATCH") => Ran::Mismatch,
            _ => {
                return Err(StoreError::Backend(format!(
                    "unexpected plan reply {reply:?}"
                )))
            }
        })
    }
}

impl Guard {
    /// The guard's statements: a failed condition returns the refusal (kept in the record
    /// when `remembering` and the guard says so), with what it found.
    fn write(&self, lua: &mut Lua, remembering: bool) {
        let refusal = lua_string(&self.refusal);
        let stop = |found: &str| match remembering && self.remembered {
            true => format!("return answer('STOP', {refusal}{found})"),
            false => format!("return {{'STOP', {refusal}{found}}}"),
        };
        let text = match &self.check {
            Check::Absent { key } => format!(
                "if redis.call('EXISTS', KEYS[{key}]) == 1 then {} end",
                stop("")
            ),
            Check::CardBelow { key, n } => format!(
                "if redis.call('SCARD', KEYS[{key}]) >= tonumber({}) then {} end",
                lua.value(n),
                stop("")
            ),
            Check::FieldBelow { key, field, n } => format!(
                "if tonumber(redis.call('HGET', KEYS[{key}], {}) or '0') >= tonumber({}) then {} end",
                lua.value(field),
                lua.value(n),
                stop("")
            ),
            Check::AtMost { key, n } => format!(
                "do
  local v = redis.call('GET', KEYS[{key}]) or '0'
  if tonumber(v) > tonumber({}) then {} end
end",
                lua.value(n),
                stop(" .. ':' .. v")
            ),
            Check::FieldIs { key, field, value } => format!(
                "if redis.call('HGET', KEYS[{key}], {}) ~= {} then {} end",
                lua.value(field),
                lua.value(value),
                stop("")
            ),
            Check::JsonNumberIs { key, field, name, n } => format!(
                "do
  local doc = redis.call('HGET', KEYS[{key}], {})
  if not doc or (cjson.decode(doc)[{}] or 0) ~= tonumber({}) then {} end
end",
                lua.value(field),
                lua.value(name),
                lua.value(n),
                stop("")
            ),
            Check::FieldAbsent { key, field } => format!(
                "if redis.call('HEXISTS', KEYS[{key}], {}) == 1 then {} end",
                lua.value(field),
                stop("")
            ),
            // The window's counter expires `ttl` after its first count (PEXPIRE only
            // collects garbage), so a count in a window already counted is one call.
            Check::CountedWithin {
                key,
                ends,
                limit,
                ttl,
            } => format!(
                "do
  local count = redis.call('INCR', KEYS[{key}])
  if count == 1 then redis.call('PEXPIRE', KEYS[{key}], {}) end
  if count > tonumber({}) then {} end
end",
                lua.value(ttl),
                lua.value(limit),
                stop(&format!(" .. ':' .. {}", lua.value(ends)))
            ),
            Check::Claim { key, owner } => {
                let owner = lua.value(owner);
                format!(
                    "if not redis.call('SET', KEYS[{key}], {owner}, 'NX') \
                     and redis.call('GET', KEYS[{key}]) ~= {owner} then {} end",
                    stop("")
                )
            }
        };
        lua.line(&text);
    }
}

impl Change {
    fn write(&self, lua: &mut Lua, plans: &Plans) -> Result<(), StoreError> {
        let text = match self {
            Change::Set { key, value } => {
                format!("redis.call('SET', KEYS[{key}], {})", lua.value(value))
            }
            Change::SetPx { key, value, ttl } => format!(
                "redis.call('SET', KEYS[{key}], {}, 'PX', {})",
                lua.value(value),
                lua.value(ttl)
            ),
            Change::Del { key } => format!("redis.call('DEL', KEYS[{key}])"),
            Change::DelIf { key, value } => format!(
                "if redis.call('GET', KEYS[{key}]) == {} then redis.call('DEL', KEYS[{key}]) end",
                lua.value(value)
            ),
            Change::Sadd { key, member } => {
                format!("redis.call('SADD', KEYS[{key}], {})", lua.value(member))
            }
            Change::Srem { key, member } => {
                format!("redis.call('SREM', KEYS[{key}], {})", lua.value(member))
            }
            Change::Hdel { key, field } => {
                format!("redis.call('HDEL', KEYS[{key}], {})", lua.value(field))
            }
            Change::HdelIf { key, field, value } => {
                let field = lua.value(field);
                format!(
                    "if redis.call('HGET', KEYS[{key}], {field}) == {} then \
                     redis.call('HDEL', KEYS[{key}], {field}) end",
                    lua.value(value)
                )
            }
            Change::Remember {
                key,
                hash,
                outcome,
                expires,
                ttl,
            } => format!(
                "redis.call('HSET', KEYS[{key}], 'hash', {}, 'outcome', {}, 'expires', {})
redis.call('PEXPIRE', KEYS[{key}], {})",
                lua.value(hash),
                lua.value(outcome),
                lua.value(expires),
                lua.value(ttl)
            ),
            Change::Zadd { key, score, member } => format!(
                "redis.call('ZADD', KEYS[{key}], {}, {})",
                lua.value(score),
                lua.value(member)
            ),
            Change::Zrem { key, member } => {
                format!("redis.call('ZREM', KEYS[{key}], {})", lua.value(member))
            }
            Change::Hset { key, fields } if fields.is_empty() => {
                return Err(StoreError::Backend(format!(
                    "a plan sets no field of KEYS[{key}]"
                )))
            }
            Change::Hset { key, fields } => {
                let pairs: Vec<String> = fields
                    .iter()
                    .map(|(f, v)| format!("{}, {}", lua.value(f), lua.value(v)))
                    .collect();
                format!("redis.call('HSET', KEYS[{key}], {})", pairs.join(", "))
            }
            Change::Hincrby { key, field, by } => format!(
                "redis.call('HINCRBY', KEYS[{key}], {}, {})",
                lua.value(field),
                lua.value(by)
            ),
            Change::WindowAdd {
                key,
                score,
                member,
                oldest,
                ttl,
            } => format!(
                "redis.call('ZADD', KEYS[{key}], {}, {})
redis.call('ZREMRANGEBYSCORE', KEYS[{key}], '-inf', {})
redis.call('PEXPIRE', KEYS[{key}], {})",
                lua.value(score),
                lua.value(member),
                lua.value(oldest),
                lua.value(ttl)
            ),
            Change::DelIfCountBelow {
                counted,
                after,
                limit,
                key,
            } => format!(
                "if redis.call('ZCOUNT', KEYS[{counted}], '(' .. {}, '+inf') < tonumber({}) then \
                 redis.call('DEL', KEYS[{key}]) end",
                lua.value(after),
                lua.value(limit)
            ),
            Change::RaiseIfCard {
                counted,
                limit,
                key,
                value,
                ttl,
            } => {
                let value = lua.value(value);
                format!(
                    "if redis.call('ZCARD', KEYS[{counted}]) >= tonumber({}) \
                     and tonumber({value}) > tonumber(redis.call('GET', KEYS[{key}]) or '0') then \
                     redis.call('SET', KEYS[{key}], {value}, 'PX', {}) end",
                    lua.value(limit),
                    lua.value(ttl)
                )
            }
            Change::Extension { name, keys, values } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("KEYS[{k}]")).collect();
                return (plans.extension(name)?.write)(lua, &keys, values);
            }
        };
        lua.line(&text);
        Ok(())
    }
}

/// Plans kept by the generic executor before plans were compiled (a status change's person
/// step in its hall's `owed`): each operation's name, its keys as `KEYS` indexes and its
/// values, in one list. Such a step holds effects only.
mod legacy {
    use serde::Deserialize;

    use super::{Change, RedisPlan, StoreError};

    #[derive(Deserialize)]
    pub struct Plan {
        keys: Vec<String>,
        record_key: usize,
        caller_guard_count: usize,
        guard_count: usize,
        last_guard: Vec<String>,
        effects: Vec<String>,
    }

    pub fn plan(kept: Plan) -> Result<RedisPlan, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("kept plan of the executor: {what}"));
        if kept.record_key != 0
            || kept.caller_guard_count != 0
            || kept.guard_count != 0
            || !kept.last_guard.is_empty()
        {
            return Err(bad("guards or a record"));
        }
        let count = kept.keys.len();
        let mut words = kept.effects.into_iter();
        let mut effects = Vec::new();
        while let Some(name) = words.next() {
            let mut value = || words.next().ok_or_else(|| bad("an operation cut short"));
            let key = |value: String| match value.parse::<usize>() {
                Ok(k) if (1..=count).contains(&k) => Ok(k),
                _ => Err(bad("a key out of the plan's")),
            };
            let change = match name.as_str() {
                "set" => Change::Set {
                    key: key(value()?)?,
                    value: value()?,
                },
                "del" => Change::Del {
                    key: key(value()?)?,
                },
                "del_if" => Change::DelIf {
                    key: key(value()?)?,
                    value: value()?,
                },
                "sadd" => Change::Sadd {
                    key: key(value()?)?,
                    member: value()?,
                },
                "srem" => Change::Srem {
                    key: key(value()?)?,
                    member: value()?,
                },
                "hdel" => Change::Hdel {
                    key: key(value()?)?,
                    field: value()?,
                },
                "zrem" => Change::Zrem {
                    key: key(value()?)?,
                    member: value()?,
                },
                "zadd" => Change::Zadd {
                    key: key(value()?)?,
                    score: value()?,
                    member: value()?,
                },
                "hincrby" => Change::Hincrby {
                    key: key(value()?)?,
                    field: value()?,
                    by: value()?,
                },
                "window_add" => Change::WindowAdd {
                    key: key(value()?)?,
                    score: value()?,
                    member: value()?,
                    oldest: value()?,
                    ttl: value()?,
                },
                "del_if_count_below" => Change::DelIfCountBelow {
                    counted: key(value()?)?,
                    after: value()?,
                    limit: value()?,
                    key: key(value()?)?,
                },
                "raise_if_card" => Change::RaiseIfCard {
                    counted: key(value()?)?,
                    limit: value()?,
                    key: key(value()?)?,
                    value: value()?,
                    ttl: value()?,
                },
                other => return Err(bad(&format!("operation `{other}` in a kept step"))),
            };
            effects.push(change);
        }
        Ok(RedisPlan {
            keys: kept.keys,
            effects,
            ..RedisPlan::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSE: Refuse = Refuse {
        refusal: "TAKEN",
        remembered: true,
    };

    /// A plan of one shape: a record, a guard, a claim and effects, over these values.
    fn plan(user: &str, member: &str, now_ms: i64) -> RedisPlan {
        let mut p = RedisPlan::new();
        p.record(format!("idem:{user}"), "hash", 60_000, now_ms, "done");
        p.absent(format!("hold:{user}"), REFUSE);
        p.claim(format!("code:{member}"), member, REFUSE);
        p.hset(format!("doc:{member}"), &[("name", member), ("by", user)]);
        p.zadd(format!("all:{user}"), now_ms, member);
        p
    }

    #[test]
    fn a_shape_compiles_to_one_script_whatever_its_values() {
        let plans = Plans::new(&[]);
        let injection = "'] end redis.call('FLUSHALL') --";
        let first = plan("u1", "m1", 1).compile(&plans).unwrap();
        let other = plan(injection, "\"]]\n", 2).compile(&plans).unwrap();
        assert_eq!(first.text, other.text);
        assert_eq!(
            plans.script(first.text.clone()).get_hash(),
            plans.script(other.text.clone()).get_hash()
        );
        assert_eq!(plans.scripts.lock().unwrap().len(), 1, "made once");
        assert!(!other.text.contains("FLUSHALL"));
        assert!(other.args.iter().any(|a| a == injection), "passed as it is");
    }

    #[test]
    fn another_shape_is_another_script() {
        let plans = Plans::new(&[]);
        let mut more = plan("u1", "m1", 1);
        more.sadd("active:u1".into(), "m1");
        assert_ne!(
            plan("u1", "m1", 1).compile(&plans).unwrap().text,
            more.compile(&plans).unwrap().text
        );
    }

    #[test]
    fn code_constants_are_escaped_in_the_text() {
        assert_eq!(lua_string("CODE_TAKEN"), "'CODE_TAKEN'");
        assert_eq!(lua_string("a'b\\"), "'a\\039b\\092'");
    }

    #[test]
    fn a_step_kept_by_the_executor_runs_as_the_same_changes() {
        let json = r#"{"keys":["k1","k2"],"record":["","1","0",""],"record_key":0,
            "caller_guards":[],"caller_guard_count":0,"guards":[],"guard_count":0,
            "last_guard":[],"effects":["del_if","1","a1","srem","2","a1"],"effect_count":2}"#;
        let kept = RedisPlan::from_json(json).unwrap();
        let mut made = RedisPlan::new();
        made.del_if("k1".into(), "a1");
        made.srem("k2".into(), "a1");
        assert_eq!(kept.to_json().unwrap(), made.to_json().unwrap());
        let cut = json.replace(r#""srem","2","a1""#, r#""srem","2""#);
        assert!(RedisPlan::from_json(&cut).is_err());
    }

    #[test]
    fn a_kept_plan_runs_as_it_was_made() {
        let made = plan("u1", "m1", 1);
        let kept = RedisPlan::from_json(&made.to_json().unwrap()).unwrap();
        let plans = Plans::new(&[]);
        let (made, kept) = (made.compile(&plans).unwrap(), kept.compile(&plans).unwrap());
        assert_eq!((made.text, made.args), (kept.text, kept.args));
    }
}
