//! A real Redis Cluster for the tests: three masters (`redis-server --cluster-enabled yes` on
//! free ports in a temporary directory) joined by `redis-cli --cluster create`, started once
//! per test binary and shared (keys are prefixed per test, as on the single Redis).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

pub struct RedisCluster {
    ports: Vec<u16>,
    /// The servers; they stop when the cluster is dropped.
    nodes: Vec<Child>,
    watchdog: std::process::Child,
    _dir: tempfile::TempDir,
}

static SHARED: OnceCell<RedisCluster> = OnceCell::const_new();

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisCluster {
    /// The cluster every test of this binary shares.
    pub async fn shared() -> &'static RedisCluster {
        SHARED.get_or_init(|| RedisCluster::start(3)).await
    }

    /// `masters` masters, no replicas, every slot assigned; it stops when dropped.
    pub async fn start(masters: usize) -> RedisCluster {
        Self::start_with_replicas(masters, 0).await
    }

    /// `masters` masters with `replicas` replicas each. A node unreachable for a second is
    /// failed over (`cluster-node-timeout 1000`).
    pub async fn start_with_replicas(masters: usize, replicas: usize) -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        // A port and its cluster bus port (+10000) must both be free.
        let ports: Vec<u16> = std::iter::repeat_with(free_port)
            .filter(|p| *p < 55_535 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok())
            .take(masters * (1 + replicas))
            .collect();
        let nodes = ports
            .iter()
            .map(|port| node(dir.path(), *port))
            .collect::<Vec<_>>();
        let watchdog = stop_with_this_process(&nodes);
        let cluster = RedisCluster {
            ports,
            nodes,
            watchdog,
            _dir: dir,
        };
        for port in &cluster.ports {
            cluster.wait_for(*port, |_| true).await;
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            cluster
                .wait_for(*port, |info| {
                    info.contains("cluster_state:ok")
                        && (info.contains("role:master") || info.contains("master_link_status:up"))
                })
                .await;
        }
        cluster
    }

    /// Waits (30 s at most) until `CLUSTER INFO` and `INFO replication` on `port` answer and
    /// satisfy `ready`. Gossip and a replica's first sync need a few seconds on a loaded machine;
    /// 10 s was once not enough while the rest of the suite ran.
    async fn wait_for(&self, port: u16, ready: impl Fn(&str) -> bool) {
        for _ in 0..600 {
            if let Some(info) = cluster_info(port).await {
                if ready(&info) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cluster node on port {port} not ready");
    }

    /// Each master's URL.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    /// Kills (as a crash would) the master that holds `key`'s slot; its port.
    pub async fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_of(key).await;
        let at = self.ports.iter().position(|p| *p == port).unwrap();
        self.nodes[at].kill().await.unwrap();
        port
    }

    /// The port of the master that holds `key`'s slot, as a live node sees it.
    async fn master_of(&self, key: &str) -> u16 {
        for port in &self.ports {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                continue;
            };
            let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_millis(500),
                client.get_multiplexed_async_connection(),
            )
            .await
            else {
                continue;
            };
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await
                .unwrap();
            return master_in(&nodes, slot).expect("every slot has a master");
        }
        panic!("no cluster node answers");
    }

    /// `CONFIG SET name value` on the master at `index` alone.
    pub async fn config_set(&self, index: usize, name: &str, value: &str) {
        crate::redis_server::config_set(&self.node_urls()[index], name, value).await;
    }

    /// `BANZHENG_REDIS_CLUSTER_NODES` for this cluster.
    pub fn seeds(&self) -> String {
        self.node_urls().join(",")
    }
}

impl Drop for RedisCluster {
    /// The servers stop (`kill_on_drop`); so does their watchdog, before their ids are reused.
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// A shared cluster lives in a static, which is never dropped: a watchdog stops its servers
/// when this test process ends.
fn stop_with_this_process(nodes: &[Child]) -> std::process::Child {
    let pids: Vec<String> = nodes
        .iter()
        .filter_map(Child::id)
        .map(|p| p.to_string())
        .collect();
    let watch = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {}",
        std::process::id(),
        pids.join(" ")
    );
    std::process::Command::new("sh")
        .args(["-c", &watch])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh")
}

/// A cluster node on `port`, its files in `dir`.
fn node(dir: &std::path::Path, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--cluster-node-timeout", "1000"])
        // A replica that never finished its first sync is not promoted: start it at once.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server must be installed (the test command installs it)")
}

/// The port of the live master that `CLUSTER NODES` says holds `slot`.
fn master_in(nodes: &str, slot: u16) -> Option<u16> {
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let flags = fields.get(2)?;
        if !flags.contains("master") || flags.contains("fail") {
            return None;
        }
        let holds = fields.iter().skip(8).any(|range| {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(f), Ok(t)) if (f..=t).contains(&slot))
        });
        let address = fields.get(1)?.split('@').next()?;
        holds.then(|| address.rsplit_once(':')?.1.parse().ok())?
    })
}

async fn cluster_info(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let connect = client.get_multiplexed_async_connection();
    let mut conn = tokio::time::timeout(Duration::from_millis(500), connect)
        .await
        .ok()?
        .ok()?;
    let cluster: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .ok()?;
    let replication: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .ok()?;
    Some(cluster + &replication)
}
