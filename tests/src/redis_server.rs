//! A real redis-server for the tests: the one on 127.0.0.1:6379 when it answers, else one
//! started on a free port in a temporary directory. Outage tests always start their own.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Started with the append-only file (`appendfsync everysec`), as production asks.
    durable: bool,
}

static SHARED: OnceCell<RedisServer> = OnceCell::const_new();

impl RedisServer {
    /// The Redis every test shares (keys are prefixed per test).
    pub async fn shared() -> &'static RedisServer {
        SHARED
            .get_or_init(|| async {
                if answers(6379).await {
                    RedisServer {
                        port: 6379,
                        child: None,
                        dir: tempfile::tempdir().unwrap(),
                        durable: false,
                    }
                } else {
                    RedisServer::start().await
                }
            })
            .await
    }

    /// A private redis-server on a free port that keeps nothing on disk (as Debian's and the
    /// official image's defaults keep too little); it stops when dropped.
    pub async fn start() -> RedisServer {
        Self::start_with(false).await
    }

    /// A private redis-server with the append-only file, as production asks.
    pub async fn start_durable() -> RedisServer {
        Self::start_with(true).await
    }

    async fn start_with(durable: bool) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            durable,
        };
        server.restart().await;
        server
    }

    /// The process id of a server this started (not of a shared one found running).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("a redis-server this started")
    }

    /// Where it keeps its files (`dump.rdb`, the append-only file).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would) and waits until the port is closed.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        for _ in 0..100 {
            if !answers(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis on port {} did not stop", self.port);
    }

    /// Starts (again) on the same port.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendfsync", "everysec"])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (the test command installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if answers(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl RedisServer {
    /// `CONFIG SET name value`, as an operator changing a running Redis would.
    pub async fn config_set(&self, name: &str, value: &str) {
        config_set(&self.url(), name, value).await;
    }
}

/// `CONFIG SET name value` on the Redis at `url`.
pub async fn config_set(url: &str, name: &str, value: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn answers(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let connect = client.get_multiplexed_async_connection();
    match tokio::time::timeout(Duration::from_millis(500), connect).await {
        Ok(Ok(mut conn)) => redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok(),
        _ => false,
    }
}

/// Every key under `prefix` on the Redis `conn` talks to, sorted (by SCAN, not KEYS: one KEYS
/// over the whole shared Redis can outlast the client's response timeout on a loaded machine).
pub async fn keys_under(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let (mut cursor, mut keys) = (0u64, Vec::new());
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    keys
}
