//! Builds the application: each capability once, the app factory that registers each one on
//! its own (tests mount it on a random port), and the HTTP server with graceful shutdown.
//! The one module that knows every capability: the others know only what they use.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use secrecy::SecretString;
use tracing_actix_web::TracingLogger;

use crate::admin::{self, AdminStore, Admins};
use crate::audit::{audit_middleware, AuditLog, AuditStore};
use crate::auth::address::refuse_forwarded;
use crate::auth::consent::Privacy;
use crate::auth::login::Users;
use crate::auth::token::Tokens;
use crate::auth::{self, Authenticator, UserStore};
use crate::booking::{self, Booking, BookingStore};
use crate::clock::Clock;
use crate::config::{Settings, WECHAT_API_BASE};
use crate::erasure::{self, Erasure, ErasureStore};
use crate::error::{json_error_handler, path_error_handler, query_error_handler, ApiError};
use crate::kf::{self, ConversationStore, Conversations, Kf};
use crate::metrics::{metrics_middleware, Metrics, MetricsAccess};
use crate::notify::{self, Notifier, NotifyStore};
use crate::receipts::{self, ReceiptStore, Receipts};
use crate::retention::{self, Retention};
use crate::routing::endpoint;
use crate::store::durability::{refuse_writes_unless_durable, DurabilityState};
use crate::store::{self, Backend, BlobStore, KvStore};
use crate::web as web_client;
use crate::wechat::simulator::{self, Simulator};
use crate::wechat::token::AccessTokens;
use crate::wechat::{install_tls_provider, WeChatClient};
use crate::{health, telemetry};

/// Every store trait at once: what each backend serves. Start-up hands each capability only
/// the traits it asks for; the tests arrange and inspect stored state through all of them.
pub trait AllStores:
    KvStore
    + BlobStore
    + UserStore
    + AdminStore
    + AuditStore
    + BookingStore
    + ReceiptStore
    + NotifyStore
    + ConversationStore
    + ErasureStore
{
}
impl<T> AllStores for T where
    T: KvStore
        + BlobStore
        + UserStore
        + AdminStore
        + AuditStore
        + BookingStore
        + ReceiptStore
        + NotifyStore
        + ConversationStore
        + ErasureStore
{
}

/// Each capability, built once per process. `build_app` registers each as app data of its
/// own, and a handler asks only for those it uses.
#[derive(Clone)]
pub struct Capabilities {
    production: bool,
    web_pkg_dir: PathBuf,
    metrics: web::Data<Metrics>,
    /// Readiness asks the store to answer.
    store: web::Data<dyn KvStore>,
    /// Whether the store keeps what it acknowledges (always, on SQLite).
    durability: web::Data<DurabilityState>,
    authenticator: web::Data<Authenticator>,
    users: web::Data<Users>,
    /// The privacy notice and who accepted it.
    privacy: web::Data<Privacy>,
    admins: web::Data<Admins>,
    /// Every admin request, recorded by the audit middleware.
    audit: web::Data<AuditLog>,
    booking: web::Data<Booking>,
    receipts: web::Data<Receipts>,
    notifier: web::Data<Notifier>,
    /// 客服 conversations and the staff inbox.
    conversations: web::Data<Conversations>,
    /// Erasure on request, and its sweep.
    erasure: web::Data<Erasure>,
    /// The retention sweep.
    retention: web::Data<Retention>,
    /// The 客服 message push, when a push token is configured.
    kf: Option<web::Data<Kf>>,
    /// Development mode only: the WeChat simulator the server mounts and talks to.
    simulator: Option<web::Data<Simulator>>,
}

impl Capabilities {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let backend = store::open(
            settings.redis_at(),
            &settings.redis_key_prefix,
            &settings.data_dir,
            settings.store_durability(),
            settings.replica_wait(),
        )
        .await?;
        match backend {
            Backend::Sqlite(store) => Self::over(settings, store, DurabilityState::durable()).await,
            Backend::Redis(store) => {
                let durability = store.durability();
                Self::over(settings, store, durability).await
            }
        }
    }

    /// Hands each capability the store traits it asks for, all served by `store`.
    async fn over<S>(
        settings: &Settings,
        store: Arc<S>,
        durability: DurabilityState,
    ) -> anyhow::Result<Self>
    where
        S: AllStores + 'static,
    {
        let tokens = Tokens::configured(settings.jwt_secret.as_ref(), &settings.data_dir)?;
        let clock = Arc::new(Clock::default());
        let booking = Booking::from_settings(
            &settings.booking,
            &settings.data_dir,
            store.clone(),
            store.clone(),
            clock.clone(),
        )?;
        let hasher = booking.hasher.clone();
        // No readable ID number at rest: what was stored before is hashed or dropped, then the
        // bytes it left in the files are scrubbed.
        // Booking kept under one Redis tag before issue 16: moved first, so what follows (and
        // every request) finds it in the per-hall layout.
        let migrated = store.migrate_single_tag_layout().await?;
        if migrated.moved_any() {
            tracing::info!(
                appointments = migrated.appointments,
                seat_days = migrated.seat_days,
                person_keys = migrated.person_keys,
                reminders = migrated.reminders,
                "booking moved from the single-tag Redis layout to the per-hall one"
            );
        }
        if migrated.unknown > 0 {
            tracing::warn!(
                unknown = migrated.unknown,
                "keys of an unknown kind left under {{booking}}"
            );
        }
        let hidden = store.hide_id_numbers(&hasher).await?;
        let forgotten = store.forget_unkeyed_digests().await?;
        // Holds, no-shows and bans kept per ID number alone go to the accounts they came from.
        let policy = settings.booking.no_show_policy();
        let carried = store.carry_person_rules_to_accounts(policy).await?;
        if carried > 0 {
            tracing::info!(carried, "per-number booking rules moved to their accounts");
        }
        if hidden + forgotten > 0 {
            tracing::info!(
                hidden,
                forgotten,
                "plain ID numbers and unkeyed digests removed"
            );
        }
        store.scrub(hidden + forgotten > 0).await?;
        let wechat = wechat_client(settings)?;
        // The simulator shares the server's clock, so advancing it expires codes and tokens too.
        let simulator = (!settings.is_production()).then(|| Simulator::new(clock.clone()));
        let metrics = Metrics::new(MetricsAccess::new(
            settings.is_production(),
            settings.metrics_token.as_ref(),
        ));
        booking.day_lists.register(metrics.registry())?;
        // One access-token cache for every caller of WeChat (notifications, phone numbers).
        let access_tokens = Arc::new(AccessTokens::new(
            wechat.clone(),
            store.clone(),
            clock.clone(),
            settings.notify.token_refresh_margin_secs,
            Duration::from_millis(settings.wechat_timeout_ms),
        ));
        let notifier = Notifier::new(
            &settings.notify,
            settings.is_production(),
            wechat.clone(),
            access_tokens.clone(),
            store.clone(),
            clock.clone(),
            metrics.registry(),
        )?;
        if let Some(simulator) = &simulator {
            // Our templates exist in the simulated WeChat, as they would in the real one.
            for (_, template) in notifier.templates.iter() {
                simulator.register_template(
                    &template.template_id,
                    template.keywords.keys().cloned().collect(),
                );
            }
        }
        let appid = settings.wechat_appid.as_deref().unwrap_or(simulator::APPID);
        let conversations = Arc::new(Conversations::new(
            settings.kf.clone(),
            store.clone(),
            clock.clone(),
        ));
        let kf = Kf::from_settings(
            &settings.wechat,
            appid,
            store.clone(),
            conversations.clone(),
            clock.clone(),
        )?;
        let erasure = Erasure::over(
            store.clone(),
            settings.backup.journal(&settings.data_dir),
            settings.erasure.clone(),
            clock.clone(),
        );
        let admins = Admins::new(
            store.clone(),
            store.clone(),
            settings.admin_login.clone(),
            settings.client_addresses(),
            metrics.registry(),
        );
        Ok(Capabilities {
            production: settings.is_production(),
            web_pkg_dir: settings.web_pkg_dir.clone(),
            metrics: web::Data::new(metrics),
            store: web::Data::from(store.clone() as Arc<dyn KvStore>),
            durability: web::Data::new(durability),
            authenticator: web::Data::new(Authenticator::new(tokens, store.clone(), clock.clone())),
            users: web::Data::new(Users::new(
                wechat,
                access_tokens,
                store.clone(),
                store.clone(),
                settings.login.clone(),
                settings.client_addresses(),
                clock.clone(),
            )),
            privacy: web::Data::new(Privacy::new(
                settings.privacy.clone(),
                store.clone(),
                clock.clone(),
            )),
            admins: web::Data::new(admins),
            audit: web::Data::new(AuditLog::new(store.clone(), clock.clone())),
            booking: web::Data::new(booking),
            retention: web::Data::new(Retention::new(
                settings.retention.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                clock.clone(),
            )),
            receipts: web::Data::new(Receipts::new(
                settings.receipts.clone(),
                store.clone(),
                store.clone(),
                store,
                hasher,
                clock,
            )),
            notifier: web::Data::new(notifier),
            conversations: web::Data::from(conversations),
            erasure: web::Data::new(erasure),
            kf: kf.map(web::Data::new),
            simulator: simulator.map(web::Data::from),
        })
    }
}

/// The client the settings ask for: the configured app against the configured base URL, or
/// in development mode the simulator's app against the simulator (whose address
/// `Application::build` fills in once it has bound its port).
fn wechat_client(settings: &Settings) -> anyhow::Result<WeChatClient> {
    let timeout = Duration::from_millis(settings.wechat_timeout_ms);
    match (&settings.wechat_appid, &settings.wechat_secret) {
        (Some(appid), Some(secret)) => WeChatClient::new(
            settings
                .wechat_api_base
                .as_deref()
                .unwrap_or(WECHAT_API_BASE),
            appid,
            secret.clone(),
            timeout,
        ),
        _ => {
            let base = settings.wechat_api_base.as_deref().ok_or_else(|| {
                anyhow::anyhow!("development mode: the simulator's address is not known yet")
            })?;
            WeChatClient::new(
                base,
                simulator::APPID,
                SecretString::from(simulator::SECRET),
                timeout,
            )
        }
    }
}

/// The app factory: every route and middleware, each capability registered on its own.
pub fn build_app(
    capabilities: Capabilities,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let Capabilities {
        production,
        web_pkg_dir,
        metrics,
        store,
        durability,
        authenticator,
        users,
        privacy,
        admins,
        audit,
        booking,
        receipts,
        notifier,
        conversations,
        erasure,
        retention,
        kf,
        simulator,
    } = capabilities;
    App::new()
        .app_data(metrics)
        .app_data(store)
        .app_data(durability)
        .app_data(authenticator)
        .app_data(users)
        .app_data(privacy)
        .app_data(admins)
        .app_data(audit)
        .app_data(booking)
        .app_data(receipts)
        .app_data(notifier)
        .app_data(erasure)
        .app_data(retention)
        .app_data(web::JsonConfig::default().error_handler(json_error_handler))
        .app_data(web::QueryConfig::default().error_handler(query_error_handler))
        .app_data(web::PathConfig::default().error_handler(path_error_handler))
        .configure(health::routes)
        // actix tries routes in order, a regex for each one with a path parameter: the busiest
        // ones go first.
        .configure(booking::routes)
        .configure(receipts::routes)
        .configure(auth::routes)
        // One path, two capabilities: who the user is (auth), and erasing them (erasure).
        .service(
            endpoint("/api/v1/me")
                .get(auth::me)
                .delete(erasure::erase_me),
        )
        .configure(admin::routes)
        .configure(|cfg| {
            if !production {
                web_client::routes(cfg, web_pkg_dir)
            }
        })
        .configure(notify::routes)
        .configure(|cfg| kf::routes(cfg, conversations, kf))
        .configure(|cfg| {
            if let Some(simulator) = simulator {
                notify::dev_routes(cfg);
                kf::dev_routes(cfg);
                retention::dev_routes(cfg);
                simulator::routes(cfg, simulator)
            }
        })
        .default_service(web::to(|| async { Err::<&str, _>(ApiError::NotFound) }))
        // Innermost: it sees the account the admin extractor found and the handler's answer.
        .wrap(from_fn(audit_middleware))
        .wrap(from_fn(refuse_writes_unless_durable))
        // Development mode is for this machine only: nothing that came through a proxy.
        .wrap(Condition::new(!production, from_fn(refuse_forwarded)))
        .wrap(from_fn(metrics_middleware))
        .wrap(from_fn(telemetry::request_id_middleware))
        .wrap(TracingLogger::<telemetry::RequestSpan>::new())
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
        let capabilities = Capabilities::build(&settings).await?;
        if let (Some(simulator), Some(kf)) = (&capabilities.simulator, &capabilities.kf) {
            // The simulated WeChat pushes 客服 messages to us, as the admin console configures.
            let mut own = listener.local_addr()?;
            if own.ip().is_unspecified() {
                own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let (token, key) = kf.push_secrets();
            simulator.set_push_target(format!("http://{own}/api/v1/wechat/push"), token, key);
        }
        let store = capabilities.store.backend_name();
        if settings.is_production() {
            let recheck = Duration::from_secs(settings.notify.template_recheck_secs.max(1));
            notify::template_check::at_startup(
                &capabilities.notifier.clone().into_inner(),
                recheck,
            )
            .await?;
            tracing::info!(store, port, "Banzheng started (production mode)");
        } else {
            tracing::warn!(
                store,
                port,
                "Banzheng started in DEVELOPMENT mode: no WeChat app id is configured, the WeChat simulator answers instead of WeChat"
            );
        }
        booking::spawn_no_show_sweeper(capabilities.booking.clone());
        kf::spawn_retention_sweeper(capabilities.conversations.clone());
        erasure::spawn_sweeper(capabilities.erasure.clone());
        retention::spawn_sweeper(capabilities.retention.clone());
        let sender = settings.notify.worker.then(|| {
            let notifier = capabilities.notifier.clone().into_inner();
            (notifier.clone(), tokio::spawn(notifier.run()))
        });
        let mut server = HttpServer::new(move || build_app(capabilities.clone()))
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
