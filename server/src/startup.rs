//! Builds the application: state once, the app factory that tests mount on a random port, and
//! the HTTP server with graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::token::Tokens;
use crate::booking::{self, Booking};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{json_error_handler, path_error_handler, query_error_handler, ApiError};
use crate::metrics::{metrics_middleware, Metrics};
use crate::notify::{self, Notifier};
use crate::store::{self, Store};
use crate::web as web_client;
use crate::wechat::simulator::{self, Simulator};
use crate::wechat::{self, WeChatClient};
use crate::{admin, auth, health, receipts, telemetry};

/// Everything a request handler may need, built once per process.
pub struct AppState {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<Clock>,
    pub metrics: Metrics,
    pub tokens: Tokens,
    pub booking: Booking,
    pub wechat: WeChatClient,
    /// Development mode only: the WeChat simulator the server mounts and talks to.
    pub simulator: Option<Arc<Simulator>>,
    pub notifier: Arc<Notifier>,
}

impl AppState {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = store::open(&settings).await?;
        let tokens = Tokens::from_settings(&settings)?;
        let booking = Booking::from_settings(&settings)?;
        let wechat = wechat::client_from_settings(&settings)?;
        let clock = Arc::new(Clock::default());
        // The simulator shares the server's clock, so advancing it expires codes and tokens too.
        let simulator = (!settings.is_production()).then(|| Simulator::new(clock.clone()));
        let metrics = Metrics::new();
        let notifier = Arc::new(Notifier::new(
            &settings.notify,
            settings.is_production(),
            wechat.clone(),
            store.clone(),
            clock.clone(),
            Duration::from_millis(settings.wechat_timeout_ms),
            metrics.registry(),
        )?);
        if let Some(simulator) = &simulator {
            // Our templates exist in the simulated WeChat, as they would in the real one.
            for (_, template) in notifier.templates.iter() {
                simulator.register_template(
                    &template.template_id,
                    template.keywords.keys().cloned().collect(),
                );
            }
        }
        Ok(AppState {
            tokens,
            booking,
            wechat,
            simulator,
            notifier,
            settings,
            store,
            clock,
            metrics,
        })
    }
}

/// The app factory: every route and middleware, over shared state.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let development = !state.settings.is_production();
    let pkg_dir = state.settings.web_pkg_dir.clone();
    let simulator = state.simulator.clone().map(web::Data::from);
    App::new()
        .app_data(state)
        .app_data(web::JsonConfig::default().error_handler(json_error_handler))
        .app_data(web::QueryConfig::default().error_handler(query_error_handler))
        .app_data(web::PathConfig::default().error_handler(path_error_handler))
        .configure(health::routes)
        // actix tries routes in order, a regex for each one with a path parameter: the busiest
        // ones go first.
        .configure(booking::routes)
        .configure(receipts::routes)
        .configure(auth::routes)
        .configure(admin::routes)
        .configure(|cfg| {
            if development {
                web_client::routes(cfg, pkg_dir)
            }
        })
        .configure(notify::routes)
        .configure(|cfg| {
            if let Some(simulator) = simulator {
                notify::dev_routes(cfg);
                simulator::routes(cfg, simulator)
            }
        })
        .default_service(web::to(|| async { Err::<&str, _>(ApiError::NotFound) }))
        .wrap(from_fn(metrics_middleware))
        .wrap(from_fn(telemetry::request_id_middleware))
        .wrap(TracingLogger::<telemetry::RequestSpan>::new())
}

/// reqwest is built without a bundled crypto provider (ring builds faster and smaller than
/// aws-lc); install it once per process before any HTTP client exists.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct Application {
    port: u16,
    server: Server,
    /// The notification sender, stopped after the HTTP server so a send in flight finishes.
    sender: Option<(Arc<Notifier>, tokio::task::JoinHandle<()>)>,
}

impl Application {
    /// Binds the configured address (port 0 picks a free one) and prepares the server.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        install_tls_provider();
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        if !settings.is_production() && settings.wechat_api_base.is_none() {
            // Development mode talks to its own simulator, whose port is known only now.
            let mut own = listener.local_addr()?;
            if own.ip().is_unspecified() {
                own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            settings.wechat_api_base = Some(format!("http://{own}/__wechat"));
        }
        let workers = settings.workers;
        let state = web::Data::new(AppState::build(settings).await?);
        if state.settings.is_production() {
            tracing::info!(
                store = state.store.backend_name(),
                port,
                "Banzheng started (production mode)"
            );
        } else {
            tracing::warn!(
                store = state.store.backend_name(),
                port,
                "Banzheng started in DEVELOPMENT mode: no WeChat app id is configured, the WeChat simulator answers instead of WeChat"
            );
        }
        booking::spawn_no_show_sweeper(state.clone());
        let sender = state.settings.notify.worker.then(|| {
            let notifier = state.notifier.clone();
            (notifier.clone(), tokio::spawn(notifier.run()))
        });
        let mut server = HttpServer::new(move || build_app(state.clone()))
            .listen(listener)?
            // SIGTERM stops accepting and lets in-flight requests finish for up to this long.
            .shutdown_timeout(30);
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            sender,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((notifier, sender)) = self.sender {
            notifier.stop();
            if tokio::time::timeout(Duration::from_secs(30), sender)
                .await
                .is_err()
            {
                tracing::warn!("the notification sender did not stop in time");
            }
        }
        result
    }
}
