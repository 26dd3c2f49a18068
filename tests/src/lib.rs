//! Helpers for the end-to-end suite: start the app on a free port over a fresh store, start or
//! find a real redis-server, and talk to the app over HTTP the way the mini-program does.

pub mod admin;
pub mod attack;
pub mod booking;
pub mod notify;
pub mod process;
pub mod production;
pub mod receipts;
pub mod redis_cluster;
pub mod redis_server;
pub mod wechat;

use std::sync::Arc;

use serde_json::Value;
use server::config::Settings;
use server::id_hash::IdHasher;
use server::store::Backend as Opened;
use server::store::{RedisConn, RedisStore};

pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

/// Every store trait at once: the tests arrange and inspect stored state directly.
pub use server::startup::AllStores;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Redis,
    /// The shared 3-master Redis Cluster ([`RedisCluster`]).
    RedisCluster,
}

/// Generates one `#[tokio::test]` per backend from an `async fn(Backend)`, so every
/// end-to-end story runs unchanged on SQLite and on Redis.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_backend!(sqlite, Sqlite, $($name),*);
        $crate::on_backend!(redis, Redis, $($name),*);
    };
}

/// [`on_both_backends`] and the Redis Cluster too: the store conformance suites.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!($($name),*);
        $crate::on_backend!(redis_cluster, RedisCluster, $($name),*);
    };
}

/// A module `module` of one `#[tokio::test]` per `async fn(Backend)`, on `backend`.
#[macro_export]
macro_rules! on_backend {
    ($module:ident, $backend:ident, $($name:ident),*) => {
        mod $module { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::$backend).await }
        )* }
    };
}

/// A running app and what a test needs to reach it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    /// The Redis key prefix or SQLite directory of this app, so a second instance can share it.
    pub shared: SharedStore,
    _data_dir: Arc<tempfile::TempDir>,
}

/// Where an app keeps its state: give the same to two apps and they share it.
#[derive(Clone)]
pub enum SharedStore {
    Sqlite(Arc<tempfile::TempDir>),
    Redis {
        url: String,
        prefix: String,
    },
    /// `nodes`: the cluster's seed nodes, as `BANZHENG_REDIS_CLUSTER_NODES` gives them.
    RedisCluster {
        nodes: String,
        prefix: String,
    },
}

impl SharedStore {
    pub async fn fresh(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => SharedStore::Sqlite(Arc::new(tempfile::tempdir().unwrap())),
            Backend::Redis => SharedStore::Redis {
                url: RedisServer::shared().await.url(),
                prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
            },
            Backend::RedisCluster => SharedStore::RedisCluster {
                nodes: RedisCluster::shared().await.seeds(),
                prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
            },
        }
    }

    /// Configuration variables for an app over this store.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![("BANZHENG_BIND".to_string(), "127.0.0.1:0".to_string())];
        let (setting, at, prefix) = match self {
            SharedStore::Sqlite(dir) => {
                vars.push(("BANZHENG_DATA_DIR".into(), dir.path().display().to_string()));
                return vars;
            }
            SharedStore::Redis { url, prefix } => ("BANZHENG_REDIS_URL", url, prefix),
            SharedStore::RedisCluster { nodes, prefix } => {
                ("BANZHENG_REDIS_CLUSTER_NODES", nodes, prefix)
            }
        };
        vars.push((setting.into(), at.clone()));
        // The shared test Redis keeps nothing on disk, which production would refuse;
        // `durability::` tests what production asks of Redis on servers of its own.
        vars.push(("BANZHENG_REDIS_DURABILITY".into(), "unchecked".into()));
        vars.push(("BANZHENG_REDIS_KEY_PREFIX".into(), prefix.clone()));
        // Instances sharing a Redis share the token key too (SQLite ones share the file).
        vars.push((
            "BANZHENG_JWT_SECRET".into(),
            format!("test-secret-{prefix}"),
        ));
        // …and the key of the ID-number hash, so they recognise the same person.
        vars.push((
            "BANZHENG_BOOKING__ID_HASH_KEY".into(),
            format!("test-id-key-{prefix}"),
        ));
        vars
    }

    /// The ID-number hash of apps over this store (what the server keys records by).
    pub fn id_hasher(&self) -> IdHasher {
        let settings = Settings::from_vars(self.vars()).unwrap();
        IdHasher::configured(settings.booking.id_hash_key.as_ref(), &settings.data_dir).unwrap()
    }

    /// A connection to this store's Redis, one node or a cluster (rewriting stored state).
    pub async fn redis_conn(&self) -> RedisConn {
        let settings = Settings::from_vars(self.vars()).unwrap();
        let at = settings.redis_at().expect("a Redis store");
        RedisStore::connect(at, &settings.redis_key_prefix)
            .await
            .unwrap()
            .conn()
    }

    /// Opens the store directly (the conformance suite and state assertions).
    pub async fn open(&self) -> Arc<dyn AllStores> {
        let settings = Settings::from_vars(self.vars()).unwrap();
        let opened = server::store::open(
            settings.redis_at(),
            &settings.redis_key_prefix,
            &settings.data_dir,
            None,
            None,
        )
        .await
        .unwrap();
        match opened {
            Opened::Sqlite(store) => store,
            Opened::Redis(store) => store,
        }
    }
}

/// Moves `from` to `to` by value, expiry kept (on a cluster they may be on other slots), and
/// deletes `from`: rewriting stored state into an older layout.
pub async fn move_key(conn: &mut RedisConn, from: &str, to: &str) {
    let dumped: Vec<u8> = redis::cmd("DUMP")
        .arg(from)
        .query_async(conn)
        .await
        .unwrap();
    let ttl: i64 = redis::AsyncCommands::pttl(conn, from).await.unwrap();
    let () = redis::cmd("RESTORE")
        .arg(to)
        .arg(ttl.max(0))
        .arg(dumped)
        .arg("REPLACE")
        .query_async(conn)
        .await
        .unwrap();
    let () = redis::AsyncCommands::del(conn, from).await.unwrap();
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_on(SharedStore::fresh(backend).await, &[]).await
    }

    /// Starts an app over `store`, with extra configuration variables.
    pub async fn spawn_on(store: SharedStore, extra: &[(&str, &str)]) -> TestApp {
        let mut vars = store.vars();
        let files = files_dir(&store);
        if !matches!(store, SharedStore::Sqlite(_)) {
            // The erasure journal and backups go under the data directory: without one of
            // its own, an app over Redis would write them into the working directory.
            vars.push((
                "BANZHENG_DATA_DIR".into(),
                files.path().display().to_string(),
            ));
        }
        // Tests run the notification sender through `/__sim/notify/run`: a background pass would
        // race them for the entries they are about to send and read.
        vars.push(("BANZHENG_NOTIFY__WORKER".into(), "false".into()));
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Settings::from_vars(vars).expect("test configuration");
        let app = server::Application::build(settings)
            .await
            .expect("app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self::with_files(address, store, files)
    }

    /// The app served at `address` over `store`, by this process or another
    /// (`process::ServerProcess`): the same helpers drive either.
    pub fn served_at(address: String, store: SharedStore) -> TestApp {
        let files = files_dir(&store);
        Self::with_files(address, store, files)
    }

    fn with_files(address: String, store: SharedStore, files: Arc<tempfile::TempDir>) -> TestApp {
        let backend = match store {
            SharedStore::Sqlite(_) => Backend::Sqlite,
            SharedStore::Redis { .. } => Backend::Redis,
            SharedStore::RedisCluster { .. } => Backend::RedisCluster,
        };
        TestApp {
            address,
            client: client(),
            backend,
            shared: store,
            _data_dir: files,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// An app's files: SQLite's directory, or for Redis a directory of the app's own.
fn files_dir(store: &SharedStore) -> Arc<tempfile::TempDir> {
    match store {
        SharedStore::Sqlite(dir) => dir.clone(),
        _ => Arc::new(tempfile::tempdir().unwrap()),
    }
}

/// The `server` binary next to the test executable (`scripts/test.sh` builds it first).
pub fn server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/server
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("server"))
        .expect("target directory");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p server --bin server` first",
        binary.display()
    );
    binary
}

/// An HTTP client for talking to the app. Its idle connections are dropped well before the
/// server's keep-alive (actix's 5 s) closes them: a request sent on a connection just as the server
/// closes it fails with `IncompleteMessage`, which a test stalled a few seconds by a loaded machine
/// met (reqwest keeps idle connections for 90 s by default).
pub fn client() -> reqwest::Client {
    server::wechat::install_tls_provider();
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("an HTTP client with default TLS")
}

/// The answer to what `request` builds, asked again while it is 503 (for five seconds), as a
/// client would. After redis-server restarts, each of the server's Redis connections (one per
/// worker thread) learns it was cut on its first command, which fails; and a Redis that waits
/// for its disk (`appendfsync always`) on a loaded machine can pass the server's timeout.
pub async fn answered(request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    let mut answer = request().send().await.unwrap();
    for _ in 0..50 {
        if answer.status() != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = request().send().await.unwrap();
    }
    answer
}

/// Reads a response as JSON, failing the test with the body when it is not.
pub async fn json(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (HTTP {status}): {text}"))
}

/// Asserts the status and the stable error code of an error response, and the error shape.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body = json(response).await;
    assert_eq!(body["code"], code, "error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "request_id in {body}"
    );
    body
}
