//! Configuration: `BANZHENG_*` environment variables over an optional TOML file
//! (`BANZHENG_CONFIG=path`), both with the same keys (`BANZHENG_DATA_DIR` ↔ `data_dir`).
//! Nested tables in the file map to `__` in variable names (`BANZHENG_BOOKING__DAYS_AHEAD`).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::admin::AdminLoginSettings;
use crate::auth::address::{ClientAddresses, ForwardedHeader, TrustedProxies};
use crate::auth::consent::PrivacySettings;
use crate::auth::login::LoginSettings;
use crate::backup::BackupSettings;
use crate::booking::BookingSettings;
use crate::erasure::ErasureSettings;
use crate::kf::{KfSettings, PushSettings};
use crate::notify::NotifySettings;
use crate::receipts::ReceiptSettings;
use crate::retention::RetentionSettings;
use crate::telemetry::LogFormat;

/// Variables with the prefix that are not settings themselves.
const NOT_SETTINGS: &[&str] = &["BANZHENG_CONFIG", "BANZHENG_PHOTOS_DIR"];

/// The real WeChat API; development mode replaces it with the simulator.
use crate::store::durability::Durability;
use crate::store::{RedisAt, ReplicaWait};

pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Unset: production when a WeChat app id is configured, else development.
    pub mode: Option<Mode>,
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Unset (and no cluster): the embedded SQLite store under `data_dir`.
    pub redis_url: Option<String>,
    /// Seed nodes of a Redis Cluster, `redis://host:port,redis://host:port,…`.
    pub redis_cluster_nodes: Option<String>,
    /// `redis_cluster_nodes`, one URL each.
    #[serde(skip)]
    redis_cluster_seeds: Vec<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one server.
    #[serde(default = "default_redis_prefix")]
    pub redis_key_prefix: String,
    /// What production asks of Redis so that an acknowledged write survives a crash.
    #[serde(default)]
    pub redis_durability: Durability,
    /// Replicas that must have a write before it is acknowledged (`WAIT`); 0: no `WAIT`.
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// How long a write waits for those replicas before it is answered 503 `NOT_REPLICATED`.
    #[serde(default = "default_redis_wait_timeout_ms")]
    pub redis_wait_timeout_ms: u64,
    pub jwt_secret: Option<SecretString>,
    pub wechat_appid: Option<String>,
    pub wechat_secret: Option<SecretString>,
    pub wechat_api_base: Option<String>,
    /// The 客服 message push (`wechat.push_token`, `wechat.push_aes_key`).
    #[serde(default)]
    pub wechat: PushSettings,
    /// Timeout of one call to WeChat (connect and answer); a login makes at most two.
    #[serde(default = "default_wechat_timeout_ms")]
    pub wechat_timeout_ms: u64,
    #[serde(default)]
    pub login: LoginSettings,
    #[serde(default)]
    pub admin_login: AdminLoginSettings,
    /// Proxies whose forwarding header names the client (rate limits count per client).
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// The header those proxies append the client to.
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
    #[serde(default)]
    pub notify: NotifySettings,
    #[serde(default)]
    pub log_format: LogFormat,
    /// HTTP worker threads; unset: one per core.
    pub workers: Option<usize>,
    #[serde(default)]
    pub booking: BookingSettings,
    /// The photo checker's wasm-bindgen `--target web` output, served to the development
    /// web client under `/pkg/`.
    #[serde(default = "default_web_pkg_dir")]
    pub web_pkg_dir: PathBuf,
    #[serde(default)]
    pub receipts: ReceiptSettings,
    /// 客服 conversations (`kf.retention_days`, …).
    #[serde(default)]
    pub kf: KfSettings,
    /// How long personal data is kept (`retention.original_photo_days`, …).
    #[serde(default)]
    pub retention: RetentionSettings,
    /// The privacy notice users accept before storing ID numbers or photos.
    #[serde(default)]
    pub privacy: PrivacySettings,
    /// Production: the bearer token Prometheus presents at `/metrics`; unset, production
    /// serves no metrics (development serves them to anyone on loopback).
    pub metrics_token: Option<SecretString>,
    /// Erasures on request (`erasure.sweep_interval_secs`).
    #[serde(default)]
    pub erasure: ErasureSettings,
    /// Backups and the erasure journal (`backup.dir`, `backup.key`).
    #[serde(default)]
    pub backup: BackupSettings,
}

/// `BANZHENG_MODE`: development runs against the built-in WeChat simulator on loopback only;
/// production needs real WeChat credentials and strong secrets, and mounts nothing of the
/// simulator or the development pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

/// Our own secrets are at least this many characters in production.
const MIN_SECRET_CHARS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("配置错误 / configuration error: {0}")]
    Invalid(String),
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_web_pkg_dir() -> PathBuf {
    PathBuf::from("target/wasm-pkg/web")
}
fn default_wechat_timeout_ms() -> u64 {
    5000
}
fn default_redis_wait_timeout_ms() -> u64 {
    500
}
fn default_redis_prefix() -> String {
    "bz".into()
}

impl Settings {
    /// Reads the process environment (and the file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables, so tests can configure a server without touching the process.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("BANZHENG_"))
            .collect();
        let mut builder = config::Config::builder();
        if let Some((_, file)) = vars.iter().find(|(k, _)| k == "BANZHENG_CONFIG") {
            builder = builder
                .add_source(config::File::new(file, config::FileFormat::Toml).required(true));
        }
        let settings: config::Map<String, String> = vars
            .into_iter()
            .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("BANZHENG")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(settings)),
        );
        let mut settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Invalid(explain(e)))?;
        settings.redis_cluster_seeds = settings
            .redis_cluster_nodes
            .iter()
            .flat_map(|nodes| nodes.split(','))
            .map(|node| node.trim().to_owned())
            .filter(|node| !node.is_empty())
            .collect();
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bind: std::net::SocketAddr = self.bind.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "BANZHENG_BIND (bind): `{}` is not an address like 127.0.0.1:8080",
                self.bind
            ))
        })?;
        if self.receipts.page_size == 0 || self.receipts.validity_days == 0 {
            return Err(ConfigError::Invalid(
                "BANZHENG_RECEIPTS__PAGE_SIZE and BANZHENG_RECEIPTS__VALIDITY_DAYS must be at least 1"
                    .into(),
            ));
        }
        if self.redis_url.is_some() && self.redis_cluster_nodes.is_some() {
            return Err(ConfigError::Invalid(
                "BANZHENG_REDIS_URL (one Redis) and BANZHENG_REDIS_CLUSTER_NODES (a Redis Cluster) \
                 are both set: keep the one you run"
                    .into(),
            ));
        }
        if self.redis_cluster_nodes.is_some() && self.redis_cluster_seeds.is_empty() {
            return Err(ConfigError::Invalid(
                "BANZHENG_REDIS_CLUSTER_NODES names no node: give redis://host:port,redis://host:port,…"
                    .into(),
            ));
        }
        if self.admin_login.max_concurrent_hashes == 0 {
            return Err(ConfigError::Invalid(
                "BANZHENG_ADMIN_LOGIN__MAX_CONCURRENT_HASHES must be at least 1".into(),
            ));
        }
        self.privacy.validate().map_err(ConfigError::Invalid)?;
        if self.login.trust_forwarded_for.is_some() {
            return Err(ConfigError::Invalid(
                "BANZHENG_LOGIN__TRUST_FORWARDED_FOR is replaced by BANZHENG_TRUSTED_PROXIES: \
                 the addresses (CIDR) of the proxies whose X-Forwarded-For names the client"
                    .into(),
            ));
        }
        match self.mode() {
            Mode::Production => self.validate_production(),
            Mode::Development => self.validate_development(bind.ip()),
        }
    }

    /// Development serves a login for any openid and a clock anyone can move: never beyond
    /// this machine.
    fn validate_development(&self, bind: std::net::IpAddr) -> Result<(), ConfigError> {
        if !bind.is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "BANZHENG_BIND (bind) is {}, but development mode listens on loopback only \
                 (127.0.0.1 or ::1): its WeChat simulator logs anyone in. Set \
                 BANZHENG_MODE=production (with the WeChat app id and secret, \
                 BANZHENG_JWT_SECRET and BANZHENG_BOOKING__ID_HASH_KEY) to serve other machines",
                self.bind
            )));
        }
        Ok(())
    }

    /// What the store must promise about acknowledged writes: production holds Redis to
    /// `redis_durability`; development takes what it finds.
    /// The Redis to keep state in, if any: one node or a cluster's seed nodes.
    pub fn redis_at(&self) -> Option<RedisAt<'_>> {
        match (&self.redis_url, &self.redis_cluster_seeds) {
            (Some(url), _) => Some(RedisAt::Node(url)),
            (None, seeds) if !seeds.is_empty() => Some(RedisAt::Cluster(seeds)),
            _ => None,
        }
    }

    pub fn store_durability(&self) -> Option<Durability> {
        self.is_production().then_some(self.redis_durability)
    }

    /// The replicas Redis writes wait for, if any.
    pub fn replica_wait(&self) -> Option<ReplicaWait> {
        (self.redis_wait_replicas > 0).then(|| ReplicaWait {
            replicas: self.redis_wait_replicas,
            timeout: Duration::from_millis(self.redis_wait_timeout_ms),
        })
    }

    fn validate_production(&self) -> Result<(), ConfigError> {
        let appid = self.wechat_appid.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "BANZHENG_WECHAT_APPID (wechat_appid) is required in production mode".into(),
            )
        })?;
        if !(appid.len() == 18 && appid.starts_with("wx") && is_hex(&appid[2..])) {
            return Err(ConfigError::Invalid(format!(
                "BANZHENG_WECHAT_APPID (wechat_appid): `{appid}` is not a mini-program AppID \
                 (`wx` and 16 hexadecimal digits, as the WeChat admin console shows it)"
            )));
        }
        let secret = self.wechat_secret.as_ref().ok_or_else(|| {
            ConfigError::Invalid(
                "BANZHENG_WECHAT_SECRET (wechat_secret) is required with BANZHENG_WECHAT_APPID"
                    .into(),
            )
        })?;
        let secret = secret.expose_secret();
        if !(secret.len() == 32 && is_hex(secret)) {
            return Err(ConfigError::Invalid(
                "BANZHENG_WECHAT_SECRET (wechat_secret) is not a WeChat AppSecret \
                 (32 hexadecimal digits)"
                    .into(),
            ));
        }
        strong_secret(
            "BANZHENG_JWT_SECRET (jwt_secret)",
            "it signs every user and staff token",
            self.jwt_secret.as_ref(),
        )?;
        strong_secret(
            "BANZHENG_BOOKING__ID_HASH_KEY (booking.id_hash_key)",
            "it keys the hash under which ID numbers are stored",
            self.booking.id_hash_key.as_ref(),
        )?;
        if self.backup.key.is_some() {
            strong_secret(
                "BANZHENG_BACKUP__KEY (backup.key)",
                "it encrypts the backups",
                self.backup.key.as_ref(),
            )?;
        }
        if self.metrics_token.is_some() {
            strong_secret(
                "BANZHENG_METRICS_TOKEN (metrics_token)",
                "it lets a scraper read the server's metrics",
                self.metrics_token.as_ref(),
            )?;
        }
        Ok(())
    }

    /// `BANZHENG_MODE`, or when unset: production when a WeChat app id is configured.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(match self.wechat_appid {
            Some(_) => Mode::Production,
            None => Mode::Development,
        })
    }

    /// How requests' clients are found, for rate limits.
    pub fn client_addresses(&self) -> ClientAddresses {
        ClientAddresses::new(self.trusted_proxies.clone(), self.forwarded_header)
    }

    pub fn is_production(&self) -> bool {
        self.mode() == Mode::Production
    }
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A secret of ours in production: set, at least [`MIN_SECRET_CHARS`] long, and not one
/// character repeated. `name` names the setting, `why` says what it protects.
fn strong_secret(name: &str, why: &str, secret: Option<&SecretString>) -> Result<(), ConfigError> {
    let Some(secret) = secret else {
        return Err(ConfigError::Invalid(format!(
            "{name} is required in production mode: {why}"
        )));
    };
    let secret = secret.expose_secret();
    let mut chars = secret.chars();
    let first = chars.next();
    if secret.chars().count() < MIN_SECRET_CHARS || chars.all(|c| Some(c) == first) {
        return Err(ConfigError::Invalid(format!(
            "{name} must be at least {MIN_SECRET_CHARS} characters and not one character \
             repeated in production mode: {why} (e.g. `openssl rand -hex 32`)"
        )));
    }
    Ok(())
}

/// Names the offending key both ways, as a person would type it.
fn explain(e: config::ConfigError) -> String {
    let text = e.to_string();
    let key = text
        .split('`')
        .nth(1)
        .filter(|k| !k.is_empty() && !k.contains(' '));
    match key {
        Some(key) => format!(
            "{text} (environment variable BANZHENG_{})",
            key.replace('.', "__").to_uppercase()
        ),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_development_mode_on_sqlite() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(!s.is_production());
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn redis_is_one_node_or_a_cluster_of_named_seeds() {
        let s = Settings::from_vars(vars(&[(
            "BANZHENG_REDIS_CLUSTER_NODES",
            "redis://10.0.0.1:7000, redis://10.0.0.2:7000,",
        )]))
        .unwrap();
        let Some(RedisAt::Cluster(seeds)) = s.redis_at() else {
            panic!("a cluster: {:?}", s.redis_at())
        };
        assert_eq!(seeds, ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
        let s = Settings::from_vars(vars(&[("BANZHENG_REDIS_URL", "redis://h:1/")])).unwrap();
        assert!(matches!(s.redis_at(), Some(RedisAt::Node("redis://h:1/"))));
        let both = Settings::from_vars(vars(&[
            ("BANZHENG_REDIS_URL", "redis://h:1/"),
            ("BANZHENG_REDIS_CLUSTER_NODES", "redis://h:2"),
        ]))
        .unwrap_err();
        assert!(both.to_string().contains("are both set"), "{both}");
        let none =
            Settings::from_vars(vars(&[("BANZHENG_REDIS_CLUSTER_NODES", " , ")])).unwrap_err();
        assert!(none.to_string().contains("names no node"), "{none}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Settings::from_vars(vars(&[("BANZHENG_DATADIR", "x")])).unwrap_err();
        assert!(err.to_string().contains("datadir"), "{err}");
    }

    #[test]
    fn privacy_notice_version_is_a_short_printable_word() {
        let default = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(default.privacy.notice_version, "2026-12-01");
        let set = vars(&[("BANZHENG_PRIVACY__NOTICE_VERSION", "2027-03")]);
        assert_eq!(
            Settings::from_vars(set).unwrap().privacy.notice_version,
            "2027-03"
        );
        for bad in ["", "two words", &"v".repeat(33)] {
            let err = Settings::from_vars(vars(&[("BANZHENG_PRIVACY__NOTICE_VERSION", bad)]))
                .unwrap_err();
            assert!(
                err.to_string().contains("BANZHENG_PRIVACY__NOTICE_VERSION"),
                "{err}"
            );
        }
        let retention = vars(&[("BANZHENG_RETENTION__APPLICANT_DAYS", "30")]);
        assert_eq!(
            Settings::from_vars(retention)
                .unwrap()
                .retention
                .applicant_days,
            30
        );
    }

    #[test]
    fn bad_value_is_named() {
        let err = Settings::from_vars(vars(&[("BANZHENG_WORKERS", "many")])).unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
        let err = Settings::from_vars(vars(&[("BANZHENG_BIND", "localhost")])).unwrap_err();
        assert!(err.to_string().contains("BANZHENG_BIND"), "{err}");
    }

    #[test]
    fn nested_booking_settings_come_from_double_underscore_variables() {
        let s = Settings::from_vars(vars(&[
            ("BANZHENG_BOOKING__SLOT_CAPACITY", "20"),
            ("BANZHENG_BOOKING__DAYS_AHEAD", "14"),
        ]))
        .unwrap();
        assert_eq!(s.booking.slot_capacity, 20);
        assert_eq!(s.booking.days_ahead, 14);
        assert_eq!(s.booking.max_active_per_user, 3);
        let err = Settings::from_vars(vars(&[("BANZHENG_BOOKING__SEATS", "2")])).unwrap_err();
        assert!(err.to_string().contains("seats"), "{err}");
    }

    /// Everything production needs, and nothing more.
    const PRODUCTION: &[(&str, &str)] = &[
        ("BANZHENG_MODE", "production"),
        ("BANZHENG_WECHAT_APPID", "wx0123456789abcdef"),
        ("BANZHENG_WECHAT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("BANZHENG_JWT_SECRET", "a-jwt-secret-of-thirty-two-chars"),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "an-id-hash-key-of-thirty-two-chs",
        ),
    ];

    /// The production settings with `key` replaced by `value` (`None`: removed).
    fn production_with(key: &str, value: Option<&str>) -> Result<Settings, ConfigError> {
        let mut pairs: Vec<(&str, &str)> = PRODUCTION
            .iter()
            .filter(|(k, _)| *k != key)
            .copied()
            .collect();
        pairs.extend(value.map(|v| (key, v)));
        Settings::from_vars(vars(&pairs))
    }

    #[test]
    fn production_starts_with_only_what_it_needs() {
        let s = Settings::from_vars(vars(PRODUCTION)).unwrap();
        assert_eq!(s.mode(), Mode::Production);
        let s = production_with("BANZHENG_MODE", None).unwrap();
        assert_eq!(s.mode(), Mode::Production, "an app id means production");
        let s = production_with("BANZHENG_BIND", Some("0.0.0.0:8080")).unwrap();
        assert_eq!(s.bind, "0.0.0.0:8080");
    }

    #[test]
    fn the_metrics_token_is_optional_but_strong() {
        assert!(production_with("BANZHENG_METRICS_TOKEN", None).is_ok());
        let strong = "a-metrics-token-for-prometheus-only";
        let s = production_with("BANZHENG_METRICS_TOKEN", Some(strong)).unwrap();
        assert!(s.metrics_token.is_some());
    }

    #[test]
    fn production_needs_each_setting_and_names_it() {
        for (key, _) in &PRODUCTION[1..] {
            let err = production_with(key, None).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn production_refuses_weak_secrets_naming_them() {
        for key in [
            "BANZHENG_JWT_SECRET",
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "BANZHENG_METRICS_TOKEN",
        ] {
            let repeated = "x".repeat(64);
            for weak in [
                "",
                "short-secret",
                "0123456789012345678901234567890",
                &repeated,
            ] {
                let err = production_with(key, Some(weak)).unwrap_err().to_string();
                assert!(err.contains(key), "{key}={weak:?}: {err}");
                assert!(
                    weak.is_empty() || !err.contains(weak),
                    "never echoed: {err}"
                );
            }
        }
    }

    #[test]
    fn production_checks_wechat_formats() {
        for appid in [
            "wx123",
            "wxdevelopmentsim",
            "ab0123456789abcdef",
            "wx0123456789abcdeg",
        ] {
            let err = production_with("BANZHENG_WECHAT_APPID", Some(appid)).unwrap_err();
            assert!(err.to_string().contains("BANZHENG_WECHAT_APPID"), "{err}");
        }
        for secret in [
            "s3cr3t!",
            "development-simulator-secret",
            "0123456789abcdef0123456789abcdeX",
        ] {
            let err = production_with("BANZHENG_WECHAT_SECRET", Some(secret)).unwrap_err();
            assert!(err.to_string().contains("BANZHENG_WECHAT_SECRET"), "{err}");
            assert!(!err.to_string().contains(secret), "never echoed: {err}");
        }
    }

    #[test]
    fn development_listens_on_loopback_only() {
        for bind in ["0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080"] {
            let err = Settings::from_vars(vars(&[("BANZHENG_BIND", bind)])).unwrap_err();
            let err = err.to_string();
            assert!(
                err.contains("BANZHENG_BIND") && err.contains("BANZHENG_MODE"),
                "{err}"
            );
        }
        for bind in ["127.0.0.1:0", "[::1]:8080"] {
            let s = Settings::from_vars(vars(&[("BANZHENG_BIND", bind)])).unwrap();
            assert_eq!(s.mode(), Mode::Development);
        }
    }

    #[test]
    fn an_explicit_mode_wins_over_the_app_id() {
        let s = Settings::from_vars(vars(&[
            ("BANZHENG_MODE", "development"),
            ("BANZHENG_WECHAT_APPID", "wx0123456789abcdef"),
        ]))
        .unwrap();
        assert!(!s.is_production());
        let err = production_with("BANZHENG_WECHAT_APPID", None).unwrap_err();
        assert!(err.to_string().contains("BANZHENG_WECHAT_APPID"), "{err}");
        let err = Settings::from_vars(vars(&[("BANZHENG_MODE", "staging")])).unwrap_err();
        assert!(err.to_string().contains("BANZHENG_MODE"), "{err}");
    }

    #[test]
    fn file_and_env_combine_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("banzheng.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9000\"\nworkers = 2\n").unwrap();
        let s = Settings::from_vars(vars(&[
            ("BANZHENG_CONFIG", file.to_str().unwrap()),
            ("BANZHENG_WORKERS", "3"),
        ]))
        .unwrap();
        assert_eq!(s.bind, "127.0.0.1:9000");
        assert_eq!(s.workers, Some(3));
    }

    #[test]
    fn numeric_looking_strings_stay_strings() {
        let s = Settings::from_vars(vars(&[
            ("BANZHENG_MODE", "development"),
            ("BANZHENG_WECHAT_APPID", "12345"),
            ("BANZHENG_WECHAT_SECRET", "67890"),
            ("BANZHENG_JWT_SECRET", "abc"),
            ("BANZHENG_BOOKING__ID_HASH_KEY", "0123"),
        ]))
        .unwrap();
        assert_eq!(s.wechat_appid.as_deref(), Some("12345"));
        assert_eq!(s.booking.slot_capacity, 6, "nested defaults");
    }
}
