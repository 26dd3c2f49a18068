//! `WAIT` for replicas before a write is acknowledged (`BANZHENG_REDIS_WAIT_REPLICAS`).
//! Replication is asynchronous: a write a master acknowledged and died with before any replica
//! received it is gone after a failover. With `WAIT n` answered by `n` replicas, it is on them.
//!
//! `WAIT` blocks the connection it is sent on, and it waits for the writes *that connection*
//! made. So it runs on connections of the waiter's own (never the shared multiplexed ones,
//! where it would hold every other command behind it), after a small write of its own under
//! the same hash tag (same node): Redis runs commands one at a time, so that write comes after
//! the acknowledged one, and the replicas that have it have the acknowledged one too.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};

use super::redis::{RedisAt, RedisConn};
use super::StoreError;

/// How many replicas must have a write before it is acknowledged, and how long to wait for
/// them; 0 replicas (the default): no `WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: Duration,
}

/// Idle waiting connections kept for the next writes (more are opened under load).
const IDLE_KEPT: usize = 32;

/// How long the marker write is kept (it only has to outlive its `WAIT`).
const MARKER_TTL_MS: u64 = 60_000;

/// The answer to `WAIT` comes once the replicas have the write or the wait is over.
fn answer_within(wait: ReplicaWait) -> Duration {
    wait.timeout + Duration::from_secs(2)
}

/// Opens the waiter's connections: to the same Redis, or the same cluster, as the store.
enum Opener {
    Node(redis::Client),
    Cluster(Box<redis::cluster::ClusterClient>),
}

pub(super) struct Waiter {
    wait: ReplicaWait,
    opener: Opener,
    idle: Mutex<Vec<RedisConn>>,
}

impl Waiter {
    pub(super) fn new(at: RedisAt<'_>, wait: ReplicaWait) -> Result<Self, StoreError> {
        let invalid = |e: redis::RedisError| StoreError::Backend(e.to_string());
        let opener = match at {
            RedisAt::Node(url) => Opener::Node(redis::Client::open(url).map_err(invalid)?),
            RedisAt::Cluster(seeds) => Opener::Cluster(Box::new(
                ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(answer_within(wait))
                    .retries(1)
                    .build()
                    .map_err(invalid)?,
            )),
        };
        Ok(Waiter {
            wait,
            opener,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn open(&self) -> Result<RedisConn, StoreError> {
        Ok(match &self.opener {
            Opener::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(answer_within(self.wait)))
                    .set_number_of_retries(1);
                RedisConn::Node(ConnectionManager::new_with_config(client.clone(), config).await?)
            }
            Opener::Cluster(client) => RedisConn::Cluster(client.get_async_connection().await?),
        })
    }

    /// Returns once `self.wait.replicas` replicas of the node that holds `marker` (a key with
    /// the tag of the write) have every write that node acknowledged before; `NotReplicated`
    /// when fewer had them within the timeout.
    pub(super) async fn replicated(&self, marker: &str) -> Result<(), StoreError> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match taken {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(marker)
            .arg(1)
            .arg("PX")
            .arg(MARKER_TTL_MS)
            .cmd("WAIT")
            .arg(self.wait.replicas)
            .arg(self.wait.timeout.as_millis() as u64);
        // One request on one connection: the marker write and its WAIT reach the same client.
        let acknowledged: u32 = match &mut conn {
            RedisConn::Node(node) => {
                let (_, acknowledged): (redis::Value, u32) = pipe.query_async(node).await?;
                acknowledged
            }
            RedisConn::Cluster(cluster) => {
                let route = Route::with_key(marker, SlotAddr::Master);
                let answers = cluster
                    .route_pipeline(pipe, 0, 2, SingleNodeRoutingInfo::SpecificNode(route))
                    .await?;
                let acknowledged = answers.into_iter().nth(1).unwrap_or(redis::Value::Nil);
                redis::from_redis_value(acknowledged).map_err(redis::RedisError::from)?
            }
        };
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_KEPT {
                idle.push(conn);
            }
        }
        if acknowledged < self.wait.replicas {
            return Err(StoreError::NotReplicated {
                acknowledged,
                wanted: self.wait.replicas,
            });
        }
        Ok(())
    }
}
