//! The real `server` binary as a child process: started on a free port, stopped by signal.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct ServerProcess {
    pub address: String,
    child: Child,
}

impl ServerProcess {
    /// Starts `target/<profile>/server` with `vars` and waits until `/healthz` answers.
    pub async fn start(vars: &[(String, String)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(crate::server_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().filter(|(k, _)| k != "BANZHENG_BIND").cloned())
            .env("BANZHENG_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("server binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let client = crate::client();
        for _ in 0..300 {
            if client
                .get(format!("{address}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return ServerProcess { address, child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server binary did not come up on {address}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal (`TERM`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to end and returns its exit code (`None`: killed by a signal).
    pub async fn wait(mut self) -> Option<i32> {
        self.child.wait().await.expect("wait").code()
    }
}
