//! Configuration: `BANZHENG_*` environment variables over an optional TOML file
//! (`BANZHENG_CONFIG=path`), both with the same keys (`BANZHENG_DATA_DIR` ↔ `data_dir`).
//! Nested tables in the file map to `__` in variable names (`BANZHENG_BOOKING__DAYS_AHEAD`).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::login::LoginSettings;
use crate::booking::BookingSettings;
use crate::notify::NotifySettings;
use crate::receipts::ReceiptSettings;
use crate::telemetry::LogFormat;

/// Variables with the prefix that are not settings themselves.
const NOT_SETTINGS: &[&str] = &["BANZHENG_CONFIG", "BANZHENG_PHOTOS_DIR"];

/// The real WeChat API; development mode replaces it with the simulator.
use crate::store::durability::Durability;

pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Unset: the embedded SQLite store under `data_dir`.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one server.
    #[serde(default = "default_redis_prefix")]
    pub redis_key_prefix: String,
    /// What production asks of Redis so that an acknowledged write survives a crash.
    #[serde(default)]
    pub redis_durability: Durability,
    pub jwt_secret: Option<SecretString>,
    pub wechat_appid: Option<String>,
    pub wechat_secret: Option<SecretString>,
    pub wechat_api_base: Option<String>,
    /// Timeout of one call to WeChat (connect and answer); a login makes at most two.
    #[serde(default = "default_wechat_timeout_ms")]
    pub wechat_timeout_ms: u64,
    #[serde(default)]
    pub login: LoginSettings,
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
}

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
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Invalid(explain(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "BANZHENG_BIND (bind): `{}` is not an address like 127.0.0.1:8080",
                self.bind
            )));
        }
        if self.receipts.page_size == 0 || self.receipts.validity_days == 0 {
            return Err(ConfigError::Invalid(
                "BANZHENG_RECEIPTS__PAGE_SIZE and BANZHENG_RECEIPTS__VALIDITY_DAYS must be at least 1"
                    .into(),
            ));
        }
        if self.is_production() {
            if self.jwt_secret.is_none() {
                return Err(ConfigError::Invalid(
                    "BANZHENG_JWT_SECRET (jwt_secret) is required in production mode (an app id is configured)".into(),
                ));
            }
            if self.booking.id_hash_key.is_none() {
                return Err(ConfigError::Invalid(
                    "BANZHENG_BOOKING__ID_HASH_KEY (booking.id_hash_key) is required in production mode: it keys the hash under which ID numbers are stored".into(),
                ));
            }
            if self.wechat_secret.is_none() {
                return Err(ConfigError::Invalid(
                    "BANZHENG_WECHAT_SECRET (wechat_secret) is required with BANZHENG_WECHAT_APPID"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// What the store must promise about acknowledged writes: production holds Redis to
    /// `redis_durability`; development takes what it finds.
    pub fn store_durability(&self) -> Option<Durability> {
        self.is_production().then_some(self.redis_durability)
    }

    /// Production mode is chosen by configuring a WeChat app id; without one the server
    /// runs against its own simulator.
    pub fn is_production(&self) -> bool {
        self.wechat_appid.is_some()
    }
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
    fn unknown_key_is_named() {
        let err = Settings::from_vars(vars(&[("BANZHENG_DATADIR", "x")])).unwrap_err();
        assert!(err.to_string().contains("datadir"), "{err}");
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

    #[test]
    fn production_needs_the_id_hash_key() {
        let err = Settings::from_vars(vars(&[
            ("BANZHENG_WECHAT_APPID", "wx123"),
            ("BANZHENG_WECHAT_SECRET", "s"),
            ("BANZHENG_JWT_SECRET", "j"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ID_HASH_KEY"), "{err}");
    }

    #[test]
    fn production_needs_secrets() {
        let err = Settings::from_vars(vars(&[
            ("BANZHENG_WECHAT_APPID", "wx123"),
            ("BANZHENG_WECHAT_SECRET", "s"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
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
