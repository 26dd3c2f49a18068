//! Our client for the WeChat server API. Errors never carry the URL (its query holds the
//! app secret or the access token) and the session key never reaches a log line.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `jscode2session` told us about the user who just logged in. Its `session_key`
/// (which decrypts the user's data) is not kept: nothing here uses it.
#[derive(Debug)]
pub struct WeChatSession {
    pub openid: String,
    pub unionid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    /// WeChat answered with an `errcode`; `errmsg` is WeChat's text (it names no secret).
    #[error("WeChat errcode {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// No usable answer: timeout, connection failure, 5xx without errcode, malformed JSON.
    #[error("WeChat unreachable: {0}")]
    Transport(String),
}

impl WeChatError {
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WeChatError::Api { errcode, .. } => Some(*errcode),
            WeChatError::Transport(_) => None,
        }
    }

    /// Worth trying again shortly: WeChat was busy (-1, and the undocumented -1000) or did not
    /// answer usefully.
    pub fn is_transient(&self) -> bool {
        matches!(self.errcode(), None | Some(-1) | Some(-1000))
    }

    /// The access token used was not (or no longer) valid: 40001, 40014, 42001.
    pub fn is_bad_token(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 40014 | 42001))
    }
}

/// An access token as `stable_token` gave it; `expires_in` is its remaining life.
#[derive(Clone, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The body of `cgi-bin/message/subscribe/send`; absent options are left out, not `null`.
#[derive(Debug, Clone, Serialize)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub data: serde_json::Map<String, Value>,
    pub miniprogram_state: String,
    pub lang: String,
}

/// The body of `cgi-bin/message/custom/send` for a text message (客服消息).
#[derive(Debug, Clone, Serialize)]
pub struct CustomMessage {
    pub touser: String,
    pub msgtype: &'static str,
    pub text: CustomText,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomText {
    pub content: String,
}

impl CustomMessage {
    pub fn text(touser: &str, content: &str) -> CustomMessage {
        CustomMessage {
            touser: touser.to_owned(),
            msgtype: "text",
            text: CustomText {
                content: content.to_owned(),
            },
        }
    }
}

#[derive(Clone)]
pub struct WeChatClient {
    /// One connection pool per thread. A pooled connection is driven by a task on the
    /// runtime that opened it, and each actix worker thread has a runtime of its own that
    /// ends at shutdown: shared across threads, a request in flight could lose its
    /// connection to another thread's shutdown.
    pools: Arc<Mutex<HashMap<ThreadId, reqwest::Client>>>,
    timeout: Duration,
    base: String,
    appid: String,
    secret: SecretString,
}

/// reqwest is built without a bundled crypto provider (ring builds faster and smaller than
/// aws-lc); install it once per process before any HTTP client exists.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl WeChatClient {
    pub fn new(
        base: &str,
        appid: &str,
        secret: SecretString,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        install_tls_provider();
        let client = WeChatClient {
            pools: Arc::default(),
            timeout,
            base: base.trim_end_matches('/').to_owned(),
            appid: appid.to_owned(),
            secret,
        };
        client.build_pool()?;
        Ok(client)
    }

    fn build_pool(&self) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
    }

    /// This thread's client.
    fn http(&self) -> Result<reqwest::Client, WeChatError> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        match pools.entry(std::thread::current().id()) {
            Entry::Occupied(client) => Ok(client.get().clone()),
            Entry::Vacant(slot) => Ok(slot.insert(self.build_pool().map_err(transport)?).clone()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// `sns/jscode2session`: needs no access token, so a token outage cannot break login.
    /// Transient failures are tried once more; a code is single-use, so WeChat's refusals
    /// (40029, 40163, …) never are.
    pub async fn code_to_session(&self, code: &str) -> Result<WeChatSession, WeChatError> {
        let attempt = || async {
            let request = self.http()?.get(self.url("sns/jscode2session")).query(&[
                ("appid", self.appid.as_str()),
                ("secret", self.secret.expose_secret()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ]);
            let body = call(request).await?;
            let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
            match (field("openid"), field("session_key")) {
                (Some(openid), Some(_)) if !openid.is_empty() => Ok(WeChatSession {
                    openid,
                    unionid: field("unionid").filter(|u| !u.is_empty()),
                }),
                _ => Err(WeChatError::Transport(
                    "jscode2session answer lacks openid or session_key".into(),
                )),
            }
        };
        match attempt().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "jscode2session failed, trying once more");
                attempt().await
            }
            other => other,
        }
    }

    /// `cgi-bin/stable_token`. `force_refresh` invalidates the current token for every
    /// caller and is limited by WeChat (20 a day, 30 s apart): the caller decides.
    pub async fn stable_token(&self, force_refresh: bool) -> Result<AccessToken, WeChatError> {
        let request =
            self.http()?
                .post(self.url("cgi-bin/stable_token"))
                .json(&serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret.expose_secret(),
                    "force_refresh": force_refresh,
                }));
        let body = call(request).await?;
        serde_json::from_value::<AccessToken>(body)
            .ok()
            .filter(|t| !t.access_token.is_empty())
            .ok_or_else(|| WeChatError::Transport("stable_token answer lacks the token".into()))
    }

    /// `cgi-bin/message/subscribe/send`, once; the outbox decides about retries.
    pub async fn send_subscribe_message(
        &self,
        access_token: &str,
        message: &SubscribeMessage,
    ) -> Result<(), WeChatError> {
        let request = self
            .http()?
            .post(self.url("cgi-bin/message/subscribe/send"))
            .query(&[("access_token", access_token)])
            .json(message);
        call(request).await.map(drop)
    }

    /// `cgi-bin/message/custom/send`, once; the outbox decides about retries.
    pub async fn send_custom_message(
        &self,
        access_token: &str,
        message: &CustomMessage,
    ) -> Result<(), WeChatError> {
        let request = self
            .http()?
            .post(self.url("cgi-bin/message/custom/send"))
            .query(&[("access_token", access_token)])
            .json(message);
        call(request).await.map(drop)
    }

    /// `wxa/business/getuserphonenumber`: the number behind a `getPhoneNumber` code, which
    /// WeChat checks belongs to `openid`.
    pub async fn phone_number(
        &self,
        access_token: &str,
        code: &str,
        openid: &str,
    ) -> Result<PhoneInfo, WeChatError> {
        let request = self
            .http()?
            .post(self.url("wxa/business/getuserphonenumber"))
            .query(&[("access_token", access_token)])
            .json(&serde_json::json!({ "code": code, "openid": openid }));
        let body = call(request).await?;
        body.get("phone_info")
            .cloned()
            .and_then(|info| serde_json::from_value::<PhoneInfo>(info).ok())
            .ok_or_else(|| {
                WeChatError::Transport("getuserphonenumber answer lacks phone_info".into())
            })
    }

    /// `wxaapi/newtmpl/gettemplate`: the subscribe-message templates the account has.
    pub async fn account_templates(
        &self,
        access_token: &str,
    ) -> Result<Vec<AccountTemplate>, WeChatError> {
        let request = self
            .http()?
            .get(self.url("wxaapi/newtmpl/gettemplate"))
            .query(&[("access_token", access_token)]);
        let body = call(request).await?;
        let list = body
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| WeChatError::Transport("gettemplate answer lacks data".into()))?;
        Ok(list
            .iter()
            .filter_map(|t| {
                Some(AccountTemplate {
                    template_id: t.get("priTmplId")?.as_str()?.to_owned(),
                    keywords: content_keywords(t.get("content")?.as_str()?),
                })
            })
            .collect())
    }
}

/// The user's number as `wxa/business/getuserphonenumber` gives it (`phone_info`).
#[derive(Clone, Deserialize)]
pub struct PhoneInfo {
    /// Without the country code.
    #[serde(rename = "purePhoneNumber")]
    pub pure_phone_number: String,
    #[serde(rename = "countryCode")]
    pub country_code: String,
}

impl std::fmt::Debug for PhoneInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneInfo")
            .field("country_code", &self.country_code)
            .field("pure_phone_number", &"<redacted>")
            .finish()
    }
}

/// One template of the account (`wxaapi/newtmpl/gettemplate`): its id and the keywords its
/// `content` names (`办理网点:{{thing1.DATA}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTemplate {
    pub template_id: String,
    pub keywords: Vec<String>,
}

/// The keyword names of a template's content: what stands between `{{` and `.DATA}}`.
fn content_keywords(content: &str) -> Vec<String> {
    content
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once(".DATA}}").map(|(k, _)| k.trim().to_owned()))
        .collect()
}

/// Sends a request and reads WeChat's JSON: an `errcode` other than 0 is an error whatever
/// the HTTP status (WeChat often says 40001 with 200); no JSON is a transport error.
async fn call(request: reqwest::RequestBuilder) -> Result<Value, WeChatError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let errcode = body
        .as_ref()
        .and_then(|b| b.get("errcode"))
        .and_then(lenient_int);
    match (errcode, body) {
        (Some(errcode), Some(body)) if errcode != 0 => Err(WeChatError::Api {
            errcode,
            errmsg: body
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
        }),
        (_, Some(body)) if status.is_success() && body.is_object() => Ok(body),
        _ if !status.is_success() => Err(WeChatError::Transport(format!("HTTP {status}"))),
        _ => Err(WeChatError::Transport("malformed JSON answer".into())),
    }
}

/// The error and its causes, without the URL (its query holds the secret or the token).
fn transport(error: reqwest::Error) -> WeChatError {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    WeChatError::Transport(text)
}

/// WeChat's `errcode` has arrived as a number, a float and a string.
fn lenient_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcode_is_read_in_every_shape() {
        assert_eq!(lenient_int(&serde_json::json!(40001)), Some(40001));
        assert_eq!(lenient_int(&serde_json::json!(40001.0)), Some(40001));
        assert_eq!(lenient_int(&serde_json::json!("-1")), Some(-1));
        assert_eq!(lenient_int(&serde_json::json!(null)), None);
    }

    #[test]
    fn template_content_names_its_keywords() {
        assert_eq!(
            content_keywords("办理网点:{{thing1.DATA}}\n预约时间:{{ time3.DATA}}\n备注:{{x"),
            ["thing1", "time3"]
        );
    }

    #[test]
    fn classification() {
        let api = |errcode| WeChatError::Api {
            errcode,
            errmsg: String::new(),
        };
        assert!(api(-1).is_transient());
        assert!(WeChatError::Transport("x".into()).is_transient());
        assert!(!api(40029).is_transient());
        assert!(!api(45011).is_transient());
        assert!(api(42001).is_bad_token() && api(40014).is_bad_token());
        assert!(!api(43101).is_bad_token());
    }
}
