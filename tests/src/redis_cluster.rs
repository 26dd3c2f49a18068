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
    _nodes: Vec<Child>,
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
        let dir = tempfile::tempdir().unwrap();
        // A port and its cluster bus port (+10000) must both be free.
        let ports: Vec<u16> = std::iter::repeat_with(free_port)
            .filter(|p| *p < 55_535 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok())
            .take(masters)
            .collect();
        let nodes = ports
            .iter()
            .map(|port| {
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("redis-server must be installed (the test command installs it)")
            })
            .collect::<Vec<_>>();
        let watchdog = stop_with_this_process(&nodes);
        let cluster = RedisCluster {
            ports,
            _nodes: nodes,
            watchdog,
            _dir: dir,
        };
        for port in &cluster.ports {
            cluster.wait_for(*port, |_| true).await;
        }
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            cluster
                .wait_for(*port, |info| info.contains("cluster_state:ok"))
                .await;
        }
        cluster
    }

    /// Waits until `CLUSTER INFO` on `port` answers and satisfies `ready`.
    async fn wait_for(&self, port: u16, ready: impl Fn(&str) -> bool) {
        for _ in 0..200 {
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

async fn cluster_info(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let connect = client.get_multiplexed_async_connection();
    let mut conn = tokio::time::timeout(Duration::from_millis(500), connect)
        .await
        .ok()?
        .ok()?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .ok()
}
