//! A WeChat server that behaves like the real one for what we use: the same paths, JSON and
//! errcodes for `sns/jscode2session`, `cgi-bin/token`, `cgi-bin/stable_token` and
//! `cgi-bin/message/subscribe/send`, under `/__wechat/`; and a control API for tests and
//! local development under `/__sim/`. The server mounts it in development mode (and then
//! shares its clock with it); tests can also run it alone on a free port with [`spawn`].
//!
//! Control API (JSON in and out): `POST /__sim/codes {openid, unionid?}` → `{code}` ·
//! `POST /__sim/templates {template_id, keywords}` · `POST /__sim/subscriptions {openid,
//! template_id}` · `GET /__sim/messages` → `{messages}` · `GET /__sim/calls` → `{calls}`
//! (requests per endpoint, counted on arrival) · `POST /__sim/faults {endpoint, errcode?,
//! http_status?, delay_ms?, count?, body?}` · `POST /__sim/tokens/invalidate` ·
//! `POST /__sim/clock {advance_seconds}`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{DateTime, Duration as Span, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::error::ApiError;
use crate::routing::endpoint;

/// The app id and secret of the simulated mini-program (development mode uses them).
pub const APPID: &str = "wxdevelopmentsim";
pub const SECRET: &str = "development-simulator-secret";

const CODE_TTL: i64 = 300;
const TOKEN_TTL: i64 = 7200;
/// A stable token is swapped this long before it expires; old and new overlap meanwhile.
const TOKEN_OVERLAP: i64 = 300;
const FORCE_REFRESH_PER_DAY: u32 = 20;
const FORCE_REFRESH_GAP: i64 = 30;

/// The WeChat paths the simulator answers, as fault targets name them.
pub const ENDPOINTS: &[&str] = &[
    "sns/jscode2session",
    "cgi-bin/token",
    "cgi-bin/stable_token",
    "cgi-bin/message/subscribe/send",
];

pub struct Simulator {
    clock: Arc<Clock>,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    /// openid → unionid, for every user a code was minted for (others are 40003 on send).
    users: HashMap<String, Option<String>>,
    codes: HashMap<String, LoginCode>,
    /// Every access token ever issued and until when it is valid; invalidated ones are gone.
    tokens: HashMap<String, DateTime<Utc>>,
    stable: Option<(String, DateTime<Utc>)>,
    forced: Vec<DateTime<Utc>>,
    templates: HashMap<String, Vec<String>>,
    /// (openid, template id) → sends the user has granted.
    subscriptions: HashMap<(String, String), u32>,
    messages: Vec<Value>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: HashMap<String, u64>,
}

struct LoginCode {
    openid: String,
    issued_at: DateTime<Utc>,
    used: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub endpoint: String,
    pub errcode: Option<i64>,
    pub http_status: Option<u16>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default = "one")]
    pub count: u32,
    /// A raw answer body instead of JSON (a malformed answer).
    pub body: Option<String>,
}

fn one() -> u32 {
    1
}

impl Simulator {
    pub fn new(clock: Arc<Clock>) -> Arc<Self> {
        Arc::new(Simulator {
            clock,
            state: Mutex::new(SimState::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mints a login code for `openid`, as `wx.login()` on that user's phone would.
    pub fn mint_code(&self, openid: &str, unionid: Option<String>) -> String {
        let code = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let mut state = self.state();
        state.users.insert(openid.to_owned(), unionid);
        state.codes.insert(
            code.clone(),
            LoginCode {
                openid: openid.to_owned(),
                issued_at: self.clock.now(),
                used: false,
            },
        );
        code
    }

    pub fn register_template(&self, template_id: &str, keywords: Vec<String>) {
        self.state()
            .templates
            .insert(template_id.to_owned(), keywords);
    }

    /// Records that the user tapped "accept" once for a template: one more send.
    pub fn accept(&self, openid: &str, template_id: &str) {
        *self
            .state()
            .subscriptions
            .entry((openid.to_owned(), template_id.to_owned()))
            .or_default() += 1;
    }

    pub fn messages(&self) -> Vec<Value> {
        self.state().messages.clone()
    }

    /// Takes the next fault queued for `path` and counts the call.
    fn arrive(&self, path: &str) -> Option<Fault> {
        let mut state = self.state();
        *state.calls.entry(path.to_owned()).or_default() += 1;
        let queue = state.faults.get_mut(path)?;
        let fault = queue.front_mut()?;
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            queue.pop_front();
        }
        Some(taken)
    }

    fn check_app(&self, appid: Option<&str>, secret: Option<&str>) -> Result<(), i64> {
        match (appid, secret) {
            (Some(APPID), Some(SECRET)) => Ok(()),
            (Some(APPID), _) => Err(40125),
            (None, _) => Err(41002),
            _ => Err(40013),
        }
    }

    fn jscode2session(&self, q: &HashMap<String, String>) -> Result<Value, i64> {
        self.check_app(
            q.get("appid").map(String::as_str),
            q.get("secret").map(String::as_str),
        )?;
        if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return Err(40002);
        }
        let now = self.clock.now();
        let mut state = self.state();
        let code = q
            .get("js_code")
            .and_then(|c| state.codes.get_mut(c))
            .ok_or(40029)?;
        if code.used {
            return Err(40163);
        }
        if now - code.issued_at > Span::seconds(CODE_TTL) {
            return Err(40029);
        }
        code.used = true;
        let openid = code.openid.clone();
        let mut answer = json!({
            "openid": openid,
            "session_key": Alphanumeric.sample_string(&mut rand::rng(), 24),
        });
        if let Some(Some(unionid)) = state.users.get(&openid) {
            answer["unionid"] = json!(unionid);
        }
        Ok(answer)
    }

    fn new_token(state: &mut SimState, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 128);
        let expires = now + Span::seconds(TOKEN_TTL);
        state.tokens.insert(token.clone(), expires);
        (token, expires)
    }

    fn token_answer(token: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Value {
        json!({"access_token": token, "expires_in": (expires - now).num_seconds()})
    }

    /// `cgi-bin/token`: every call issues a new token; the previous one lives 5 more minutes.
    fn classic_token(&self, q: &HashMap<String, String>) -> Result<Value, i64> {
        self.check_app(
            q.get("appid").map(String::as_str),
            q.get("secret").map(String::as_str),
        )?;
        if q.get("grant_type").map(String::as_str) != Some("client_credential") {
            return Err(40002);
        }
        let now = self.clock.now();
        let mut state = self.state();
        let (token, expires) = Self::new_token(&mut state, now);
        Ok(Self::token_answer(&token, expires, now))
    }

    /// `cgi-bin/stable_token`: the same token to every caller until 5 minutes before it
    /// expires; `force_refresh` (20 a day, 30 s apart, else ignored) invalidates it.
    fn stable_token(&self, body: &Value) -> Result<Value, i64> {
        self.check_app(
            body.get("appid").and_then(Value::as_str),
            body.get("secret").and_then(Value::as_str),
        )?;
        if body.get("grant_type").and_then(Value::as_str) != Some("client_credential") {
            return Err(40002);
        }
        let force = body
            .get("force_refresh")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let now = self.clock.now();
        let mut state = self.state();
        state.forced.retain(|t| now - *t < Span::days(1));
        let may_force = state.forced.len() < FORCE_REFRESH_PER_DAY as usize
            && state
                .forced
                .last()
                .is_none_or(|t| now - *t >= Span::seconds(FORCE_REFRESH_GAP));
        if force && may_force {
            state.forced.push(now);
            if let Some((old, _)) = state.stable.take() {
                state.tokens.remove(&old);
            }
        }
        let current = state.stable.clone().filter(|(token, expires)| {
            state.tokens.contains_key(token) && *expires - now > Span::seconds(TOKEN_OVERLAP)
        });
        let (token, expires) = match current {
            Some(current) => current,
            None => {
                let fresh = Self::new_token(&mut state, now);
                state.stable = Some(fresh.clone());
                fresh
            }
        };
        Ok(Self::token_answer(&token, expires, now))
    }

    fn send(&self, q: &HashMap<String, String>, body: &Value) -> Result<Value, (i64, String)> {
        let now = self.clock.now();
        let mut state = self.state();
        let token = q.get("access_token").ok_or((41001, String::new()))?;
        match state.tokens.get(token) {
            None => return Err((40001, String::new())),
            Some(expires) if *expires <= now => return Err((42001, String::new())),
            Some(_) => {}
        }
        let text = |name: &str| body.get(name).and_then(Value::as_str);
        let touser = text("touser").unwrap_or_default();
        if !state.users.contains_key(touser) {
            return Err((40003, String::new()));
        }
        let template_id = text("template_id").unwrap_or_default();
        let keywords = state
            .templates
            .get(template_id)
            .ok_or((40037, String::new()))?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or((47003, "data".into()))?;
        for (key, value) in data {
            let value = value
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !keywords.contains(key) || !acceptable(key, value) {
                return Err((47003, format!("data.{key}.value invalid")));
            }
        }
        if let Some(page) = text("page") {
            if page.starts_with('/') || page.contains("://") {
                return Err((41030, String::new()));
            }
        }
        if !matches!(
            text("miniprogram_state").unwrap_or("formal"),
            "developer" | "trial" | "formal"
        ) {
            return Err((47003, "miniprogram_state invalid".into()));
        }
        if !matches!(
            text("lang").unwrap_or("zh_CN"),
            "zh_CN" | "en_US" | "zh_HK" | "zh_TW"
        ) {
            return Err((47003, "lang invalid".into()));
        }
        let grant = state
            .subscriptions
            .get_mut(&(touser.to_owned(), template_id.to_owned()))
            .filter(|n| **n > 0)
            .ok_or((43101, String::new()))?;
        *grant -= 1;
        state.messages.push(body.clone());
        Ok(json!({"errcode": 0, "errmsg": "ok", "msgid": state.messages.len()}))
    }
}

/// WeChat's own length and character rules per keyword type, checked the way WeChat does:
/// independently of our sender, so a sender bug shows up as 47003 here.
fn acceptable(key: &str, value: &str) -> bool {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let chars = value.chars().count();
    let chinese = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    chars > 0
        && match kind {
            "thing" => chars <= 20,
            "number" => chars <= 32 && value.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "letter" => chars <= 32 && value.chars().all(|c| c.is_ascii_alphabetic()),
            "symbol" => chars <= 5,
            "character_string" => chars <= 32 && value.is_ascii(),
            "phone_number" => chars <= 17 && value.is_ascii(),
            "car_number" => chars <= 8,
            "name" => {
                let limit = if value.chars().any(chinese) { 10 } else { 20 };
                chars <= limit && !value.chars().any(|c| c.is_ascii_digit())
            }
            "phrase" => chars <= 5 && value.chars().all(chinese),
            "time" | "date" => value.chars().any(|c| c.is_ascii_digit()),
            "amount" => value.chars().any(|c| c.is_ascii_digit()),
            _ => true,
        }
}

fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40037 => "invalid template_id",
        40125 => "invalid appsecret",
        40163 => "code been used",
        40226 => "code blocked",
        41001 => "access_token missing",
        41002 => "appid missing",
        41030 => "invalid page",
        42001 => "access_token expired",
        43101 => "user refuse to accept the msg",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit mustslower retry next minute",
        47003 => "argument invalid!",
        _ => "error",
    }
}

/// WeChat's error shape: HTTP 200 with `errcode` and an `errmsg` ending in a request id.
fn wechat_error(errcode: i64, detail: &str) -> HttpResponse {
    wechat_error_with(StatusCode::OK, errcode, detail)
}

fn wechat_error_with(status: StatusCode, errcode: i64, detail: &str) -> HttpResponse {
    let rid = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let text = if detail.is_empty() {
        errmsg(errcode).to_owned()
    } else {
        format!("{} {detail}", errmsg(errcode))
    };
    HttpResponse::build(status)
        .json(json!({"errcode": errcode, "errmsg": format!("{text} rid: {rid}")}))
}

/// Applies the fault queued for this call, if any: `Some` is the answer to give instead.
async fn faulted(sim: &Simulator, path: &str) -> Option<HttpResponse> {
    let fault = sim.arrive(path)?;
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    let status = fault
        .http_status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    match (fault.body, fault.errcode) {
        (Some(body), _) => Some(HttpResponse::build(status).body(body)),
        (None, Some(errcode)) => Some(wechat_error_with(status, errcode, "")),
        (None, None) if status != StatusCode::OK => {
            Some(HttpResponse::build(status).body(format!("<html>{status}</html>")))
        }
        (None, None) => None,
    }
}

type Sim = web::Data<Simulator>;
type Query = web::Query<HashMap<String, String>>;

async fn jscode2session(sim: Sim, q: Query) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "sns/jscode2session").await {
        return answer;
    }
    match sim.jscode2session(&q) {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(errcode) => wechat_error(errcode, ""),
    }
}

async fn classic_token(sim: Sim, q: Query) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "cgi-bin/token").await {
        return answer;
    }
    match sim.classic_token(&q) {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(errcode) => wechat_error(errcode, ""),
    }
}

async fn stable_token(sim: Sim, body: web::Bytes) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "cgi-bin/stable_token").await {
        return answer;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return wechat_error(47001, "data format error");
    };
    match sim.stable_token(&body) {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(errcode) => wechat_error(errcode, ""),
    }
}

async fn subscribe_send(sim: Sim, q: Query, body: web::Bytes) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "cgi-bin/message/subscribe/send").await {
        return answer;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return wechat_error(47001, "data format error");
    };
    match sim.send(&q, &body) {
        Ok(answer) => HttpResponse::Ok().json(answer),
        Err((errcode, detail)) => wechat_error(errcode, &detail),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintCode {
    openid: String,
    unionid: Option<String>,
}

async fn mint_code(sim: Sim, body: web::Json<MintCode>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.openid.is_empty() {
        return Err(ApiError::invalid("openid", "openid 不能为空"));
    }
    let code = sim.mint_code(&body.openid, body.unionid);
    Ok(HttpResponse::Ok().json(json!({ "code": code })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    template_id: String,
    keywords: Vec<String>,
}

async fn register_template(sim: Sim, body: web::Json<Template>) -> HttpResponse {
    let body = body.into_inner();
    sim.register_template(&body.template_id, body.keywords);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    openid: String,
    template_id: String,
}

async fn subscribe(sim: Sim, body: web::Json<Subscription>) -> Result<HttpResponse, ApiError> {
    if !sim.state().templates.contains_key(&body.template_id) {
        return Err(ApiError::invalid("template_id", "模板未注册"));
    }
    sim.accept(&body.openid, &body.template_id);
    Ok(HttpResponse::NoContent().finish())
}

async fn messages(sim: Sim) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "messages": sim.messages() }))
}

async fn calls(sim: Sim) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "calls": sim.state().calls }))
}

async fn add_fault(sim: Sim, body: web::Json<Fault>) -> Result<HttpResponse, ApiError> {
    let fault = body.into_inner();
    if !ENDPOINTS.contains(&fault.endpoint.as_str()) {
        return Err(ApiError::invalid(
            "endpoint",
            format!("未知接口，应为 {}", ENDPOINTS.join(" / ")),
        ));
    }
    if fault.count == 0 {
        return Err(ApiError::invalid("count", "count 至少为 1"));
    }
    sim.state()
        .faults
        .entry(fault.endpoint.clone())
        .or_default()
        .push_back(fault);
    Ok(HttpResponse::NoContent().finish())
}

async fn invalidate_tokens(sim: Sim) -> HttpResponse {
    let mut state = sim.state();
    state.tokens.clear();
    state.stable = None;
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_seconds: i64,
}

/// Moves the simulator's clock forward; in development mode that is the server's clock too.
async fn advance_clock(sim: Sim, body: web::Json<Advance>) -> Result<HttpResponse, ApiError> {
    if !(0..=366 * 24 * 3600).contains(&body.advance_seconds) {
        return Err(ApiError::invalid(
            "advance_seconds",
            "只能向前拨动，且不超过一年",
        ));
    }
    sim.clock.advance(Span::seconds(body.advance_seconds));
    Ok(HttpResponse::Ok().json(json!({ "now": sim.clock.now() })))
}

/// Mounts the simulated WeChat API under `/__wechat/` and its control API under `/__sim/`.
pub fn routes(cfg: &mut web::ServiceConfig, sim: web::Data<Simulator>) {
    cfg.app_data(sim)
        .service(endpoint("/__wechat/sns/jscode2session").get(jscode2session))
        .service(endpoint("/__wechat/cgi-bin/token").get(classic_token))
        .service(endpoint("/__wechat/cgi-bin/stable_token").post(stable_token))
        .service(endpoint("/__wechat/cgi-bin/message/subscribe/send").post(subscribe_send))
        .service(endpoint("/__sim/codes").post(mint_code))
        .service(endpoint("/__sim/templates").post(register_template))
        .service(endpoint("/__sim/subscriptions").post(subscribe))
        .service(endpoint("/__sim/messages").get(messages))
        .service(endpoint("/__sim/calls").get(calls))
        .service(endpoint("/__sim/faults").post(add_fault))
        .service(endpoint("/__sim/tokens/invalidate").post(invalidate_tokens))
        .service(endpoint("/__sim/clock").post(advance_clock));
}

/// A simulator serving on its own port.
pub struct RunningSimulator {
    pub simulator: Arc<Simulator>,
    /// `http://127.0.0.1:port`; the WeChat API is under `/__wechat`, control under `/__sim`.
    pub address: String,
    handle: ServerHandle,
}

impl RunningSimulator {
    /// The base URL to configure as `BANZHENG_WECHAT_API_BASE`.
    pub fn api_base(&self) -> String {
        format!("{}/__wechat", self.address)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// Starts a simulator with its own clock on a free port of 127.0.0.1.
pub fn spawn() -> std::io::Result<RunningSimulator> {
    let simulator = Simulator::new(Arc::new(Clock::default()));
    let data = web::Data::from(simulator.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::JsonConfig::default().error_handler(crate::error::json_error_handler))
            .configure(|cfg| routes(cfg, data.clone()))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(RunningSimulator {
        simulator,
        address: format!("http://127.0.0.1:{port}"),
        handle,
    })
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn wechat_rules() {
        assert!(acceptable("thing1", "东莞市公安局南城分局"));
        assert!(!acceptable("thing1", &"一".repeat(21)));
        assert!(!acceptable("thing1", ""));
        assert!(!acceptable("name1", "用户410774"));
        assert!(acceptable("phrase2", "配送中"));
        assert!(!acceptable("phrase2", "ok"));
        assert!(acceptable("character_string3", "BZ-2024-0001"));
    }
}
