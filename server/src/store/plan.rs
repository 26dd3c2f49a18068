//! Redis: one generic Lua executor for the plans the capabilities compute in Rust (booking's
//! rules, receipt orders' transitions). A plan is guards, checked in order against what is
//! stored (the first that fails is the answer), then effects; the script only carries it out,
//! atomically, in one round trip. [`RedisPlan`] writes each operation as its name, its keys by
//! reference and its values, and the script reads them back in the same order, so neither
//! side counts positions.

use redis::Script;
use serde::{Deserialize, Serialize};

use super::{RedisStore, StoreError};

/// Operations an extension adds to the executor (`op.name = function() … end`, reading its
/// arguments with `take(n)`, `arg()` and `key()`), e.g. the notification outbox's.
pub type LuaOps = &'static str;

const HEAD: &str = r"
local i, K = 0, KEYS
-- The next `n` arguments: one call for an operation's fixed arguments (a Lua call costs
-- about what a read of Redis does).
local function take(n) local at = i; i = at + n; return unpack(ARGV, at + 1, at + n) end
local function arg() i = i + 1; return ARGV[i] end
local function key() return K[tonumber(arg())] end
local op = {}
";

/// The executor: the guards about who asks, an optional answer record (replayed while
/// unexpired), the other guards, the effects. Keys come as `KEYS` indexes (`K[tonumber(k)]`).
const BODY: &str = r"
-- Guards: nil when the condition holds, else what the refusal adds to its text.
function op.absent() if redis.call('EXISTS', key()) == 1 then return '' end end
function op.card_below()
  local k, n = take(2)
  if redis.call('SCARD', K[tonumber(k)]) >= tonumber(n) then return '' end
end
function op.field_below()
  local k, f, n = take(3)
  if tonumber(redis.call('HGET', K[tonumber(k)], f) or '0') >= tonumber(n) then return '' end
end
function op.at_most()
  local k, n = take(2)
  local v = redis.call('GET', K[tonumber(k)]) or '0'
  if tonumber(v) > tonumber(n) then return ':' .. v end
end
function op.field_is()
  local k, f, v = take(3)
  if redis.call('HGET', K[tonumber(k)], f) ~= v then return '' end
end
-- The number at member `name` of the JSON document in field `f` (0 when absent).
function op.json_number_is()
  local k, f, name, n = take(4)
  local doc = redis.call('HGET', K[tonumber(k)], f)
  if not doc or (cjson.decode(doc)[name] or 0) ~= tonumber(n) then return '' end
end
function op.field_absent()
  local k, f = take(2)
  if redis.call('HEXISTS', K[tonumber(k)], f) == 1 then return '' end
end
-- Counts an attempt in the window ending at `ends` (ms, the server's clock) and holds while
-- the window has at most `n`; it writes whatever the answer. The key expires `ttl` after its
-- window's first count, past the window's end (PEXPIRE only collects garbage), so a count
-- in a window already counted is two calls.
function op.counted_within()
  local k, ends, n, ttl = take(4)
  k = K[tonumber(k)]
  local count = 1
  if redis.call('HGET', k, 'ends') == ends then
    count = redis.call('HINCRBY', k, 'n', 1)
  else
    redis.call('HSET', k, 'ends', ends, 'n', 1)
    redis.call('PEXPIRE', k, ttl)
  end
  if count > tonumber(n) then return '' end
end
function op.claim()
  local k, v = take(2)
  k = K[tonumber(k)]
  if not redis.call('SET', k, v, 'NX') and redis.call('GET', k) ~= v then return '' end
end
-- Effects.
function op.set() local k, v = take(2); redis.call('SET', K[tonumber(k)], v) end
function op.set_px() local k, v, ttl = take(3); redis.call('SET', K[tonumber(k)], v, 'PX', ttl) end
function op.del() redis.call('DEL', key()) end
function op.del_if()
  local k, v = take(2)
  k = K[tonumber(k)]
  if redis.call('GET', k) == v then redis.call('DEL', k) end
end
function op.sadd() local k, m = take(2); redis.call('SADD', K[tonumber(k)], m) end
function op.srem() local k, m = take(2); redis.call('SREM', K[tonumber(k)], m) end
function op.hdel() local k, f = take(2); redis.call('HDEL', K[tonumber(k)], f) end
function op.hdel_if()
  local k, f, v = take(3)
  k = K[tonumber(k)]
  if redis.call('HGET', k, f) == v then redis.call('HDEL', k, f) end
end
function op.remember()
  local k, hash, outcome, expires, ttl = take(5)
  k = K[tonumber(k)]
  redis.call('HSET', k, 'hash', hash, 'outcome', outcome, 'expires', expires)
  redis.call('PEXPIRE', k, ttl)
end
function op.zadd() local k, s, m = take(3); redis.call('ZADD', K[tonumber(k)], s, m) end
function op.zrem() local k, m = take(2); redis.call('ZREM', K[tonumber(k)], m) end
function op.hset()
  local k, n = take(2)
  redis.call('HSET', K[tonumber(k)], take(2 * tonumber(n)))
end
function op.hincrby() local k, f, by = take(3); redis.call('HINCRBY', K[tonumber(k)], f, by) end
function op.window_add()
  local k, score, member, oldest, ttl = take(5)
  k = K[tonumber(k)]
  redis.call('ZADD', k, score, member)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', oldest)
  redis.call('PEXPIRE', k, ttl)
end
function op.del_if_count_below()
  local counted, after, limit, k = take(4)
  counted, k = K[tonumber(counted)], K[tonumber(k)]
  if redis.call('ZCOUNT', counted, '(' .. after, '+inf') < tonumber(limit) then
    redis.call('DEL', k)
  end
end
function op.raise_if_card()
  local counted, limit, k, v, ttl = take(5)
  counted, k, v = K[tonumber(counted)], K[tonumber(k)], tonumber(v)
  if redis.call('ZCARD', counted) >= tonumber(limit) and v > tonumber(redis.call('GET', k) or '0') then
    redis.call('SET', k, v, 'PX', ttl)
  end
end

local record, hash, ttl, now, done = take(5)
now = tonumber(now)
record = record ~= '0' and KEYS[tonumber(record)]
local function answer(kind, outcome)
  if record and outcome ~= '' then
    redis.call('HSET', record, 'hash', hash, 'outcome', outcome, 'expires', now + ttl)
    redis.call('PEXPIRE', record, ttl)
  end
  return {kind, outcome}
end
-- The next list of guards: the first that fails stops the plan (its answer kept in the
-- record when `remembering` and the guard says so).
local function stopped(remembering)
  for _ = 1, tonumber(arg()) do
    local name, refusal, remembered = take(3)
    local found = op[name]()
    if found then
      if remembering and remembered == '1' then return answer('STOP', refusal .. found) end
      return {'STOP', refusal .. found}
    end
  end
end
-- Who asks first: a replay needs them to hold too.
local stop = stopped(false)
if stop then return stop end
if record then
  -- Expired by the server's clock, as on SQLite (PEXPIRE only collects the garbage).
  local earlier = redis.call('HMGET', record, 'hash', 'outcome', 'expires')
  if earlier[1] and tonumber(earlier[3] or '0') > now then
    if earlier[1] ~= hash then return {'MISMATCH'} end
    return {'REPLAY', earlier[2]}
  end
end
stop = stopped(true)
if stop then return stop end
for _ = 1, tonumber(arg()) do op[arg()]() end
return answer('DONE', done)
";

/// The executor with `extensions`' operations.
pub fn executor(extensions: &[LuaOps]) -> Script {
    let mut text = String::from(HEAD);
    for ops in extensions {
        text.push_str(ops);
    }
    text.push_str(BODY);
    Script::new(&text)
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

/// Refuse with `refusal`, and say whether an answer record keeps the refusal (a rule's
/// answer) or not (a collision the caller retries with other values).
#[derive(Debug, Clone, Copy)]
pub struct Refuse<'a> {
    pub refusal: &'a str,
    pub remembered: bool,
}

fn guard_op(refuse: Refuse, name: &str, args: Vec<String>) -> Vec<String> {
    let remembered = if refuse.remembered { "1" } else { "0" };
    let mut op = vec![
        name.to_owned(),
        refuse.refusal.to_owned(),
        remembered.to_owned(),
    ];
    op.extend(args);
    op
}

/// A plan for the executor: keys by reference, operations in order. It can be kept (as JSON)
/// to be run later: a step another step promised.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RedisPlan {
    keys: Vec<String>,
    /// The answer record at `KEYS[record_key]` (0: none): hash, ttl and now (ms), done text.
    record: [String; 4],
    record_key: usize,
    /// Guards about who asks: checked before the record.
    caller_guards: Vec<String>,
    caller_guard_count: usize,
    guards: Vec<String>,
    guard_count: usize,
    /// The claim, if any: it writes, so it runs after every other guard.
    last_guard: Vec<String>,
    effects: Vec<String>,
    effect_count: usize,
}

impl RedisPlan {
    pub fn new() -> Self {
        RedisPlan {
            record: ["".into(), "1".into(), "0".into(), "".into()],
            ..Default::default()
        }
    }

    /// `KEYS` index (from 1) of `key`, added once.
    fn index(&mut self, key: String) -> usize {
        match self.keys.iter().position(|k| *k == key) {
            Some(at) => at + 1,
            None => {
                self.keys.push(key);
                self.keys.len()
            }
        }
    }

    /// `key` as the script reads it: its `KEYS` index.
    fn key(&mut self, key: String) -> String {
        self.index(key).to_string()
    }

    /// Answers kept at `key` for `ttl_ms` of the server's clock: a request with the same
    /// `hash` gets the first answer again, another request `Mismatch`; `done` is the answer
    /// when the plan runs (empty: the plan is a first step of several and keeps nothing when it
    /// runs; a later step keeps the answer with [`Self::remember`]).
    pub fn record(&mut self, key: String, hash: &str, ttl_ms: u64, now_ms: i64, done: &str) {
        self.record_key = self.index(key);
        self.record = [
            hash.to_owned(),
            ttl_ms.to_string(),
            now_ms.to_string(),
            done.to_owned(),
        ];
    }

    fn guard(&mut self, refuse: Refuse, name: &str, args: Vec<String>) {
        self.guards.extend(guard_op(refuse, name, args));
        self.guard_count += 1;
    }

    /// The guards added so far are about who asks (a token, a consent): they are checked
    /// before the answer record, so a replay needs them to hold too.
    pub fn checked_first(&mut self) {
        self.caller_guards.append(&mut self.guards);
        self.caller_guard_count += std::mem::take(&mut self.guard_count);
    }

    /// Holds while `key` does not exist.
    pub fn absent(&mut self, key: String, refuse: Refuse) {
        let k = self.key(key);
        self.guard(refuse, "absent", vec![k]);
    }

    /// Holds while the set at `key` has fewer than `n` members.
    pub fn card_below(&mut self, key: String, n: u32, refuse: Refuse) {
        let k = self.key(key);
        self.guard(refuse, "card_below", vec![k, n.to_string()]);
    }

    /// Holds while the number in `field` of the hash at `key` (0 when absent) is below `n`.
    pub fn field_below(&mut self, key: String, field: &str, n: u32, refuse: Refuse) {
        let k = self.key(key);
        self.guard(
            refuse,
            "field_below",
            vec![k, field.to_owned(), n.to_string()],
        );
    }

    /// Holds while the number at `key` (0 when absent) is at most `n`; the refusal text
    /// gets `:<the number>`.
    pub fn at_most(&mut self, key: String, n: i64, refuse: Refuse) {
        let k = self.key(key);
        self.guard(refuse, "at_most", vec![k, n.to_string()]);
    }

    /// Holds while the JSON document in `field` of the hash at `key` has the number `n` as
    /// its member `name` (a document without the member has 0).
    pub fn json_number_is(&mut self, key: String, field: &str, name: &str, n: u64, refuse: Refuse) {
        let k = self.key(key);
        let args = vec![k, field.to_owned(), name.to_owned(), n.to_string()];
        self.guard(refuse, "json_number_is", args);
    }

    /// Holds while the hash at `key` has no `field`.
    pub fn field_absent(&mut self, key: String, field: &str, refuse: Refuse) {
        let k = self.key(key);
        self.guard(refuse, "field_absent", vec![k, field.to_owned()]);
    }

    /// Counts one more in the window ending at `window_ends` (Unix ms of the server's clock;
    /// a count kept for another window starts again) at `key`, and holds while the window has
    /// at most `limit`. It writes whatever the answer, and runs where it stands among the
    /// guards: the guards before it decide whether it counts.
    /// The key expires two windows after its window's first count, so past the window's end
    /// even on a Redis clock somewhat ahead (it only collects garbage: the count is read by
    /// `window_ends`).
    pub fn counted_within(
        &mut self,
        key: String,
        window_ends: i64,
        window_ms: u64,
        limit: u32,
        refuse: Refuse,
    ) {
        let k = self.key(key);
        let args = vec![
            k,
            window_ends.to_string(),
            limit.to_string(),
            window_ms.max(1).saturating_mul(2).to_string(),
        ];
        self.guard(refuse, "counted_within", args);
    }

    /// Holds while `field` of the hash at `key` is `value`.
    pub fn field_is(&mut self, key: String, field: &str, value: &str, refuse: Refuse) {
        let k = self.key(key);
        self.guard(
            refuse,
            "field_is",
            vec![k, field.to_owned(), value.to_owned()],
        );
    }

    /// Holds when `key` is free or already `owner`'s, and takes it for `owner`: a uniqueness
    /// the store must decide. It writes, so it runs after every other guard.
    pub fn claim(&mut self, key: String, owner: &str, refuse: Refuse) {
        let k = self.key(key);
        self.last_guard = guard_op(refuse, "claim", vec![k, owner.to_owned()]);
    }

    fn effect(&mut self, name: &str, args: Vec<String>) {
        self.effects.push(name.to_owned());
        self.effects.extend(args);
        self.effect_count += 1;
    }

    pub fn set(&mut self, key: String, value: &str) {
        let k = self.key(key);
        self.effect("set", vec![k, value.to_owned()]);
    }

    /// Sets `key` to `value`, to expire `ttl_ms` later.
    pub fn set_expiring(&mut self, key: String, value: &str, ttl_ms: u64) {
        let k = self.key(key);
        self.effect(
            "set_px",
            vec![k, value.to_owned(), ttl_ms.max(1).to_string()],
        );
    }

    pub fn del(&mut self, key: String) {
        let k = self.key(key);
        self.effect("del", vec![k]);
    }

    /// Deletes `key` if it still holds `value`.
    pub fn del_if(&mut self, key: String, value: &str) {
        let k = self.key(key);
        self.effect("del_if", vec![k, value.to_owned()]);
    }

    pub fn sadd(&mut self, key: String, member: &str) {
        let k = self.key(key);
        self.effect("sadd", vec![k, member.to_owned()]);
    }

    pub fn srem(&mut self, key: String, member: &str) {
        let k = self.key(key);
        self.effect("srem", vec![k, member.to_owned()]);
    }

    pub fn hdel(&mut self, key: String, field: &str) {
        let k = self.key(key);
        self.effect("hdel", vec![k, field.to_owned()]);
    }

    /// Deletes `field` of the hash at `key` if it still holds `value`.
    pub fn hdel_if(&mut self, key: String, field: &str, value: &str) {
        let k = self.key(key);
        self.effect("hdel_if", vec![k, field.to_owned(), value.to_owned()]);
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
        let k = self.key(key);
        let args = vec![
            k,
            hash.to_owned(),
            outcome.to_owned(),
            expires_ms.to_string(),
            ttl_ms.max(1).to_string(),
        ];
        self.effect("remember", args);
    }

    pub fn zadd(&mut self, key: String, score: i64, member: &str) {
        let k = self.key(key);
        self.effect("zadd", vec![k, score.to_string(), member.to_owned()]);
    }

    pub fn zrem(&mut self, key: String, member: &str) {
        let k = self.key(key);
        self.effect("zrem", vec![k, member.to_owned()]);
    }

    pub fn hset(&mut self, key: String, fields: &[(&str, &str)]) {
        let mut args = vec![self.key(key), fields.len().to_string()];
        for (field, value) in fields {
            args.extend([(*field).to_owned(), (*value).to_owned()]);
        }
        self.effect("hset", args);
    }

    pub fn hincrby(&mut self, key: String, field: &str, by: i64) {
        let k = self.key(key);
        self.effect("hincrby", vec![k, field.to_owned(), by.to_string()]);
    }

    /// Adds `member` at `score` to the sorted set at `key`, drops members scored at
    /// `oldest` or below, and lets the set expire `ttl_ms` after its last change.
    pub fn window_add(&mut self, key: String, score: i64, member: &str, oldest: i64, ttl_ms: u64) {
        let k = self.key(key);
        let args = vec![
            k,
            score.to_string(),
            member.to_owned(),
            oldest.to_string(),
            ttl_ms.to_string(),
        ];
        self.effect("window_add", args);
    }

    /// When the sorted set at `counted` has fewer than `limit` members scored above `after`,
    /// deletes `key`.
    pub fn del_if_count_below(&mut self, counted: String, after: i64, limit: u32, key: String) {
        let args = vec![
            self.key(counted),
            after.to_string(),
            limit.to_string(),
            self.key(key),
        ];
        self.effect("del_if_count_below", args);
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
        let args = vec![
            self.key(counted),
            limit.to_string(),
            self.key(key),
            value.to_string(),
            ttl_ms.to_string(),
        ];
        self.effect("raise_if_card", args);
    }

    /// An extension's effect: `name`, then keys (as references) and values in the order
    /// its Lua reads them.
    pub fn extension(&mut self, name: &str, keys: Vec<String>, values: Vec<String>) {
        let mut args: Vec<String> = keys.into_iter().map(|k| self.key(k)).collect();
        args.extend(values);
        self.effect(name, args);
    }

    /// Whether the plan checks and changes nothing (a step of a sequence with nothing to do).
    pub fn is_empty(&self) -> bool {
        self.record_key == 0
            && self.caller_guard_count == 0
            && self.guard_count == 0
            && self.last_guard.is_empty()
            && self.effect_count == 0
    }

    /// A key the plan touches first (`None` for an empty plan): its node is where the plan
    /// writes.
    pub fn first_key(&self) -> Option<String> {
        self.keys.first().cloned()
    }

    /// Runs the plan: one round trip, then the replicas asked for are waited for.
    pub async fn run(self, store: &RedisStore, script: &Script) -> Result<Ran, StoreError> {
        let key = self.first_key();
        let ran = self.run_unreplicated(store, script).await?;
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
        script: &Script,
    ) -> Result<Ran, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        let guard_count = self.guard_count + usize::from(!self.last_guard.is_empty());
        invocation
            .arg(self.record_key)
            .arg(&self.record)
            .arg(self.caller_guard_count)
            .arg(&self.caller_guards)
            .arg(guard_count)
            .arg(&self.guards)
            .arg(&self.last_guard)
            .arg(self.effect_count)
            .arg(&self.effects);
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
