//! The real `server` binary as a child process: started on a free port, stopped by signal.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct ServerProcess {
    pub address: String,
    child: Child,
    /// What the process wrote (its log on stdout, and stderr) so far, when captured.
    output: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `target/<profile>/server` with `vars` and waits until `/healthz` answers.
    pub async fn start(vars: &[(String, String)]) -> ServerProcess {
        Self::launch(vars, false)
            .await
            .unwrap_or_else(|(code, _)| panic!("the server binary exited with {code:?}"))
    }

    /// Starts the binary with `vars` (logging at `warn`, its output kept for [`Self::output`]):
    /// the running server once `/healthz` answers, or its exit code and output if it stopped.
    pub async fn start_capturing(
        vars: &[(String, String)],
    ) -> Result<ServerProcess, (Option<i32>, String)> {
        Self::launch(vars, true).await
    }

    /// Everything the process wrote so far (started with `start_capturing`).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    async fn launch(
        vars: &[(String, String)],
        capture: bool,
    ) -> Result<ServerProcess, (Option<i32>, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(crate::server_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().filter(|(k, _)| k != "BANZHENG_BIND").cloned())
            .env("BANZHENG_BIND", format!("127.0.0.1:{port}"))
            .env(
                "RUST_LOG",
                // `warn`, unless the test asks for more.
                vars.iter()
                    .find(|(k, _)| k == "RUST_LOG")
                    .map_or("warn", |(_, v)| v.as_str()),
            )
            .stdout(if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("server binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let keep = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
            let output = output.clone();
            pipe.map(|pipe| {
                tokio::spawn(async move {
                    let mut lines = BufReader::new(pipe).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut text = output.lock().unwrap();
                        text.push_str(&line);
                        text.push('\n');
                    }
                })
            })
        };
        let readers = [
            keep(child.stdout.take().map(|p| Box::new(p) as _)),
            keep(child.stderr.take().map(|p| Box::new(p) as _)),
        ];
        let address = format!("http://127.0.0.1:{port}");
        let client = crate::client();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                for reader in readers.into_iter().flatten() {
                    let _ = reader.await;
                }
                let text = output.lock().unwrap().clone();
                return Err((status.code(), text));
            }
            if client
                .get(format!("{address}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(ServerProcess {
                    address,
                    child,
                    output,
                });
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
