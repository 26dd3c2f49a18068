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
                    }
                } else {
                    RedisServer::start().await
                }
            })
            .await
    }

    /// A private redis-server on a free port; it stops when dropped.
    pub async fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart().await;
        server
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
            .args(["--save", "", "--appendonly", "no"])
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
