//! The scale-out backend. Every key carries a hash tag (`{…}`), and every operation that must
//! see or change several keys at once is one Lua script over keys of the same tag, so it is
//! atomic here and valid on Redis Cluster.

use std::cell::{Cell, OnceCell};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{AsyncCommands, Cmd, FromRedisValue, Pipeline, RedisFuture, Script, Value};
use thread_local::ThreadLocal;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::durability::{self, Durability, DurabilityState, NotDurable};
use super::replicas::{ReplicaWait, Waiter};
use super::{KvStore, StoreError};

#[derive(Clone)]
pub struct RedisStore {
    connections: Arc<Connections>,
    prefix: String,
    durability: DurabilityState,
    /// `WAIT` for replicas after each plan's write (`BANZHENG_REDIS_WAIT_REPLICAS`).
    replicas: Option<Arc<Waiter>>,
}

/// Where the store's Redis is.
#[derive(Debug, Clone, Copy)]
pub enum RedisAt<'a> {
    /// One Redis (`BANZHENG_REDIS_URL`).
    Node(&'a str),
    /// A Redis Cluster, found from these seed nodes (`BANZHENG_REDIS_CLUSTER_NODES`).
    Cluster(&'a [String]),
}

enum Connections {
    Node(Box<NodeConnections>),
    /// One cluster connection: it keeps a multiplexed connection per node, routes each
    /// command by its key's slot, and follows the slots when they move (a failover).
    Cluster(ClusterConnection),
}

/// One multiplexed connection per thread that runs a single-threaded runtime (each actix
/// worker, the main thread), so a request and its Redis I/O stay on one thread. With one
/// shared connection every command crossed to the thread that drives it and its reply crossed
/// back, two wake-ups per round trip: a sixth of the server's CPU under booking load (perf).
struct NodeConnections {
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

/// A connection handle to the store's Redis, one node or a cluster (cheap to clone).
#[derive(Clone)]
pub enum RedisConn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Node(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Node(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisConn {
    /// Sends `cmd` to the master that holds `key`'s slot (the node itself on one Redis): for
    /// commands without a key of their own that must reach that node, such as SCAN.
    pub async fn on_master_of<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        Ok(match self {
            RedisConn::Node(conn) => cmd.query_async(conn).await?,
            RedisConn::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                redis::from_redis_value(conn.route_command(cmd.clone(), routing).await?)
                    .map_err(redis::RedisError::from)?
            }
        })
    }

    /// `cmd`'s answer from the master at `address` (as [`Self::on_every_master`] names them;
    /// the one node on one Redis).
    pub async fn on_master_at<T: FromRedisValue>(
        &mut self,
        address: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        Ok(match self {
            RedisConn::Node(conn) => cmd.query_async(conn).await?,
            RedisConn::Cluster(conn) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)))
                    .ok_or_else(|| StoreError::Backend(format!("not a node address: {address}")))?;
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                redis::from_redis_value(conn.route_command(cmd.clone(), routing).await?)
                    .map_err(redis::RedisError::from)?
            }
        })
    }

    /// `cmd`'s answer from every master, by its address (the one node on one Redis).
    pub async fn on_every_master(&mut self, cmd: &Cmd) -> redis::RedisResult<Vec<(String, Value)>> {
        match self {
            RedisConn::Node(conn) => Ok(vec![("redis".into(), cmd.query_async(conn).await?)]),
            RedisConn::Cluster(conn) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                match conn.route_command(cmd.clone(), routing).await? {
                    Value::Map(answers) => answers
                        .into_iter()
                        .map(|(node, answer)| {
                            let answer = match answer {
                                Value::ServerError(e) => return Err(e.into()),
                                answer => answer,
                            };
                            Ok((redis::from_redis_value(node)?, answer))
                        })
                        .collect(),
                    other => Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "unexpected answer from every master",
                        format!("{other:?}"),
                    ))),
                }
            }
        }
    }
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

/// Short timeouts: a dead Redis must turn into a quick 503, not a hung request; the
/// connections reconnect in the background when it comes back.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisStore {
    pub async fn connect(at: RedisAt<'_>, prefix: &str) -> Result<Self, StoreError> {
        let connections = match at {
            RedisAt::Node(url) => {
                let client =
                    redis::Client::open(url).map_err(|e| StoreError::Backend(e.to_string()))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                let shared =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                Connections::Node(Box::new(NodeConnections {
                    client,
                    config,
                    shared,
                    own: ThreadLocal::new(),
                }))
            }
            RedisAt::Cluster(seeds) => {
                // Retries cover a failover: a command to a master that died is retried, with
                // the slots read again, until a replica has taken over.
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(4)
                    .max_retry_wait(500)
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                Connections::Cluster(client.get_async_connection().await?)
            }
        };
        Ok(RedisStore {
            connections: Arc::new(connections),
            prefix: prefix.to_owned(),
            durability: DurabilityState::durable(),
            replicas: None,
        })
    }

    /// This store, acknowledging a plan's write only once `wait.replicas` replicas have it.
    pub fn waiting_for(self, at: RedisAt<'_>, wait: ReplicaWait) -> Result<Self, StoreError> {
        Ok(RedisStore {
            replicas: Some(Arc::new(Waiter::new(at, wait)?)),
            ..self
        })
    }

    /// Returns once the configured number of replicas have what the node holding `key`
    /// acknowledged so far (at once when no `WAIT` is configured).
    pub async fn replicated(&self, key: &str) -> Result<(), StoreError> {
        let Some(waiter) = &self.replicas else {
            return Ok(());
        };
        // A marker under the key's hash tag (the whole key when it has none): the same slot.
        let tag = hash_tag(key).unwrap_or(key);
        waiter.replicated(&self.key(tag, "replicated")).await
    }

    /// Refuses a Redis that does not keep acknowledged writes as `durability` asks (on a
    /// cluster, every master), and keeps checking while the server runs. Without a
    /// requirement (development) it only warns.
    pub async fn require(&self, durability: Option<Durability>) -> Result<(), NotDurable> {
        let mut conn = self.shared_conn();
        let Some(requirement) = durability else {
            let verdict = durability::check(&mut conn, Durability::Everysec).await;
            if let Err(reason) = verdict {
                tracing::warn!(%reason, "development mode runs on a Redis that production would refuse");
            }
            return Ok(());
        };
        durability::check(&mut conn, requirement).await?;
        durability::keep_checking(conn, requirement, self.durability.clone());
        Ok(())
    }

    /// Whether the last check found Redis durable (the web layer refuses writes otherwise).
    pub fn durability(&self) -> DurabilityState {
        self.durability.clone()
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(*self.connections, Connections::Cluster(_))
    }

    fn shared_conn(&self) -> RedisConn {
        match &*self.connections {
            Connections::Node(node) => RedisConn::Node(node.shared.clone()),
            Connections::Cluster(cluster) => RedisConn::Cluster(cluster.clone()),
        }
    }

    /// This thread's connection handle (cheap to clone); on one Redis the shared one until
    /// this thread's is up.
    pub fn conn(&self) -> RedisConn {
        let node = match &*self.connections {
            Connections::Node(node) => node,
            Connections::Cluster(cluster) => return RedisConn::Cluster(cluster.clone()),
        };
        let own = node.own.get_or(OwnConnection::default);
        if let Some(conn) = own.conn.get() {
            return RedisConn::Node(conn.clone());
        }
        let runtime = Handle::try_current().ok();
        if let Some(runtime) =
            runtime.filter(|r| r.runtime_flavor() == RuntimeFlavor::CurrentThread)
        {
            if !own.connecting.replace(true) {
                // On a current-thread runtime the task runs on this very thread.
                let connections = Arc::clone(&self.connections);
                runtime.spawn(async move {
                    let Connections::Node(node) = &*connections else {
                        unreachable!("a node's connections")
                    };
                    let connected = ConnectionManager::new_with_config(
                        node.client.clone(),
                        node.config.clone(),
                    )
                    .await;
                    let own = node.own.get_or(OwnConnection::default);
                    match connected {
                        Ok(conn) => {
                            let _ = own.conn.set(conn);
                        }
                        Err(_) => own.connecting.set(false),
                    }
                });
            }
        }
        RedisConn::Node(node.shared.clone())
    }

    /// The prefix of every key of this store (what tells stores sharing a Redis apart).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix:{tag}:rest` — keys that a script touches together must share `tag`.
    pub fn key(&self, tag: &str, rest: &str) -> String {
        format!("{}:{{{tag}}}:{rest}", self.prefix)
    }

    /// Every key under `tag` whose rest matches the glob `pattern` (by SCAN: a key written
    /// meanwhile may be missed, so callers make what they look for unwritable first).
    pub async fn scan(&self, tag: &str, pattern: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}:{{{}}}:{pattern}", glob(&self.prefix), glob(tag));
        // Every key of one tag is in one slot: on a cluster, one master has them all.
        self.scan_matching(ScanOn::MasterOf(&self.key(tag, "")), &pattern)
            .await
    }

    /// Every key of this store whose tag starts with `tag_start` and whose rest matches the
    /// glob `pattern`:
    /// keys tagged by their own name (blobs) share no tag to scan under, and on a cluster they
    /// are spread over every master.
    pub async fn scan_tags_starting(
        &self,
        tag_start: &str,
        pattern: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}:{{{}*}}:{pattern}", glob(&self.prefix), glob(tag_start));
        let masters = self.conn().on_every_master(&redis::cmd("PING")).await?;
        let mut keys = Vec::new();
        for (address, _) in masters {
            keys.extend(
                self.scan_matching(ScanOn::MasterAt(&address), &pattern)
                    .await?,
            );
        }
        Ok(keys)
    }

    async fn scan_matching(
        &self,
        on: ScanOn<'_>,
        pattern: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, batch): (u64, Vec<String>) = match on {
                ScanOn::MasterOf(key) => conn.on_master_of(key, &scan).await?,
                ScanOn::MasterAt(address) => conn.on_master_at(address, &scan).await?,
            };
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

    /// The field `field` of each hash in `keys`, in their order (500 keys at a time).
    pub async fn hget_each(
        &self,
        keys: &[String],
        field: &str,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        // One command a key, sent together: the keys may be on several slots (a pipeline
        // must stay on one on a cluster); the multiplexed connection pipelines them anyway.
        for batch in keys.chunks(500) {
            let found = futures_util::future::try_join_all(batch.iter().map(|key| async move {
                let value: Option<String> = self.conn().hget(key, field).await?;
                Ok::<_, StoreError>(value)
            }))
            .await?;
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

    /// Where the key-value entry `key` is kept.
    pub(crate) fn kv_key(&self, key: &str) -> String {
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
/// The node a SCAN walks: each master keeps its own keys and cursor.
#[derive(Clone, Copy)]
enum ScanOn<'a> {
    /// The master of this key's slot.
    MasterOf(&'a str),
    /// The master at this address.
    MasterAt(&'a str),
}

/// The part of `key` Redis Cluster hashes when it has one: between the first `{` and the
/// next `}`, if not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let (_, rest) = key.split_once('{')?;
    let (tag, _) = rest.split_once('}')?;
    (!tag.is_empty()).then_some(tag)
}

fn glob(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
