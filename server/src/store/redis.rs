//! The scale-out backend. Every key carries a hash tag (`{…}`), and every operation that must
//! see or change several keys at once is one Lua script over keys of the same tag, so it is
//! atomic here and valid on Redis Cluster.

use std::cell::{Cell, OnceCell};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use thread_local::ThreadLocal;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::durability::{self, Durability, DurabilityState, NotDurable};
use super::{KvStore, StoreError};

#[derive(Clone)]
pub struct RedisStore {
    connections: Arc<Connections>,
    prefix: String,
    durability: DurabilityState,
}

/// One multiplexed connection per thread that runs a single-threaded runtime (each actix
/// worker, the main thread), so a request and its Redis I/O stay on one thread. With one
/// shared connection every command crossed to the thread that drives it and its reply crossed
/// back, two wake-ups per round trip: a sixth of the server's CPU under booking load (perf).
struct Connections {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Connected at start (so a bad URL fails the start); serves every thread until its own
    /// connection is up, and multi-threaded runtimes always.
    shared: ConnectionManager,
    own: ThreadLocal<OwnConnection>,
}

#[derive(Default)]
struct OwnConnection {
    conn: OnceCell<ConnectionManager>,
    connecting: Cell<bool>,
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Backend(e.to_string()))?;
        // Short timeouts: a dead Redis must turn into a quick 503, not a hung request; the
        // manager reconnects in the background when it comes back.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let shared = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        Ok(RedisStore {
            connections: Arc::new(Connections {
                client,
                config,
                shared,
                own: ThreadLocal::new(),
            }),
            prefix: prefix.to_owned(),
            durability: DurabilityState::durable(),
        })
    }

    /// Refuses a Redis that does not keep acknowledged writes as `durability` asks, and keeps
    /// checking while the server runs. Without a requirement (development) it only warns.
    pub async fn require(&self, durability: Option<Durability>) -> Result<(), NotDurable> {
        let mut conn = self.connections.shared.clone();
        let Some(requirement) = durability else {
            let verdict = durability::read(&mut conn)
                .await
                .and_then(|found| Durability::Everysec.judge(&found));
            if let Err(reason) = verdict {
                tracing::warn!(%reason, "development mode runs on a Redis that production would refuse");
            }
            return Ok(());
        };
        if requirement != Durability::Unchecked {
            requirement.judge(&durability::read(&mut conn).await?)?;
        }
        durability::keep_checking(conn, requirement, self.durability.clone());
        Ok(())
    }

    /// Whether the last check found Redis durable (the web layer refuses writes otherwise).
    pub fn durability(&self) -> DurabilityState {
        self.durability.clone()
    }

    /// This thread's connection handle (cheap to clone); the shared one until it is up.
    pub fn conn(&self) -> ConnectionManager {
        let connections = &self.connections;
        let own = connections.own.get_or(OwnConnection::default);
        if let Some(conn) = own.conn.get() {
            return conn.clone();
        }
        let runtime = Handle::try_current().ok();
        if let Some(runtime) =
            runtime.filter(|r| r.runtime_flavor() == RuntimeFlavor::CurrentThread)
        {
            if !own.connecting.replace(true) {
                // On a current-thread runtime the task runs on this very thread.
                let connections = Arc::clone(connections);
                runtime.spawn(async move {
                    let connected = ConnectionManager::new_with_config(
                        connections.client.clone(),
                        connections.config.clone(),
                    )
                    .await;
                    let own = connections.own.get_or(OwnConnection::default);
                    match connected {
                        Ok(conn) => {
                            let _ = own.conn.set(conn);
                        }
                        Err(_) => own.connecting.set(false),
                    }
                });
            }
        }
        connections.shared.clone()
    }

    /// `prefix:{tag}:rest` — keys that a script touches together must share `tag`.
    pub fn key(&self, tag: &str, rest: &str) -> String {
        format!("{}:{{{tag}}}:{rest}", self.prefix)
    }

    /// Every key under `tag` whose rest matches the glob `pattern` (by SCAN: a key written
    /// meanwhile may be missed, so callers make what they look for unwritable first).
    pub async fn scan(&self, tag: &str, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.scan_matching(&format!(
            "{}:{{{}}}:{pattern}",
            glob(&self.prefix),
            glob(tag)
        ))
        .await
    }

    /// Every key of this store whose tag starts with `tag_start` and whose rest is `rest`:
    /// keys tagged by their own name (blobs) share no tag to scan under.
    pub async fn scan_tags_starting(
        &self,
        tag_start: &str,
        rest: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pattern = format!(
            "{}:{{{}*}}:{}",
            glob(&self.prefix),
            glob(tag_start),
            glob(rest)
        );
        self.scan_matching(&pattern).await
    }

    async fn scan_matching(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The field `field` of each hash in `keys`, in their order (a pipeline per 500 keys).
    pub async fn hget_each(
        &self,
        keys: &[String],
        field: &str,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for batch in keys.chunks(500) {
            let mut pipe = redis::pipe();
            for key in batch {
                pipe.hget(key, field);
            }
            let found: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
            values.extend(found);
        }
        Ok(values)
    }

    /// Sets the hash field `field` of `key` to `new` if it still holds `old`: of several
    /// instances racing, one changes it and the others find it changed.
    pub async fn hset_if_eq(
        &self,
        key: &str,
        field: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then \
                   redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end return 0",
            )
        });
        let changed: i64 = SCRIPT
            .key(key)
            .arg(field)
            .arg(old)
            .arg(new)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(changed == 1)
    }

    /// Deletes `key` unless its hash field `field` starts with `kept`.
    pub async fn del_unless_prefixed(
        &self,
        key: &str,
        field: &str,
        kept: &str,
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                "local v = redis.call('HGET', KEYS[1], ARGV[1]) \
                 if v and string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then \
                   return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        let deleted: i64 = SCRIPT
            .key(key)
            .arg(field)
            .arg(kept)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(deleted == 1)
    }

    fn kv_key(&self, key: &str) -> String {
        self.key(&format!("kv:{key}"), "v")
    }
}

static DELETE_IF_EQ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

static INCR_WITH_EXPIRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n",
    )
});

fn ttl_ms(ttl: Duration) -> u64 {
    ttl.as_millis().max(1) as u64
}

#[async_trait]
impl KvStore for RedisStore {
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(self.kv_key(key)).await?)
    }

    async fn kv_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .pset_ex(self.kv_key(key), value, ttl_ms(ttl))
            .await?;
        Ok(())
    }

    async fn kv_set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.kv_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut self.conn())
            .await?;
        Ok(set.is_some())
    }

    async fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        let removed: i64 = self.conn().del(self.kv_key(key)).await?;
        Ok(removed == 1)
    }

    async fn kv_delete_if_eq(&self, key: &str, expected: &str) -> Result<bool, StoreError> {
        let removed: i64 = DELETE_IF_EQ
            .key(self.kv_key(key))
            .arg(expected)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }

    async fn kv_incr(&self, key: &str, ttl: Duration) -> Result<i64, StoreError> {
        Ok(INCR_WITH_EXPIRY
            .key(self.kv_key(key))
            .arg(ttl_ms(ttl))
            .invoke_async(&mut self.conn())
            .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        if !self.durability.is_durable() {
            return Err(StoreError::Unavailable(
                "Redis does not keep acknowledged writes".into(),
            ));
        }
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }

    async fn scrub(&self, _changed: bool) -> Result<(), StoreError> {
        Ok(())
    }
}

/// `text` as a SCAN pattern that matches only itself.
fn glob(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
