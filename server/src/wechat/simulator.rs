//! A WeChat server that behaves like the real one for what we use: the same paths, JSON and
//! errcodes for `sns/jscode2session`, `cgi-bin/token`, `cgi-bin/stable_token`,
//! `cgi-bin/message/subscribe/send`, `cgi-bin/message/custom/send`,
//! `wxa/business/getuserphonenumber` and
//! `wxaapi/newtmpl/gettemplate`, under `/__wechat/` (any other path or method is answered
//! as WeChat does: HTTP 200 with an `errcode`); and a control API for tests and local
//! development under `/__sim/`. The server mounts it in development mode (and then shares
//! its clock with it); tests can also run it alone on a free port with [`spawn`].
//!
//! Control API (JSON in and out): `POST /__sim/codes {openid, unionid?}` → `{code}` ·
//! `POST /__sim/templates {template_id, keywords, title?}` · `POST /__sim/subscriptions {openid,
//! template_id}` · `GET /__sim/messages` → `{messages}` · `GET /__sim/calls` → `{calls}`
//! (requests per endpoint, counted on arrival) · `POST /__sim/faults {endpoint, openid?,
//! errcode?, http_status?, delay_ms?, count?, body?}` (with `openid`, only calls about that
//! user take it) · `POST /__sim/tokens/invalidate` · `POST /__sim/clock {advance_seconds}` ·
//! `POST /__sim/pages {pages}` (the pages of the released mini-program) ·
//! `POST /__sim/phone-codes {openid, phone, country_code?}` → `{code}` (what
//! `getPhoneNumber` hands the phone) · `POST /__sim/encrypted-data {openid, data?}` →
//! `{encryptedData, iv}` (user data encrypted with the user's current session key, as
//! `wx.getUserInfo` returns it) · `POST /__sim/kf/messages {openid, text, deliveries?}` (the
//! user writes to 客服: WeChat pushes it to our push endpoint, signed and in 安全模式
//! encrypted, `deliveries` times as when it got no answer) → `{deliveries: [{status, body}]}`.
//! `cgi-bin/message/custom/send` takes text and image messages to a user who wrote within
//! 48 hours (45015 after).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use base64::Engine;
use chrono::{DateTime, Duration as Span, Utc};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::keywords::{check, KeywordKind};
use super::push::{self, PushKey};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::routing::endpoint;

/// The app id and secret of the simulated mini-program (development mode uses them), in
/// WeChat's formats (`wx` and 16 hex digits; 32 hex digits), which production start-up checks.
pub const APPID: &str = "wx0123456789abcdef";
pub const SECRET: &str = "5e0c0de5e0c0de5e0c0de5e0c0de5e0c";

const CODE_TTL: i64 = 300;
const TOKEN_TTL: i64 = 7200;
/// A replaced token (a stable one near its end, or a `cgi-bin/token` one after the next
/// fetch) stays valid this long beside the new one.
const TOKEN_OVERLAP: i64 = 300;
const FORCE_REFRESH_PER_DAY: u32 = 20;
const FORCE_REFRESH_GAP: i64 = 30;

/// The WeChat paths the simulator answers, as fault targets name them.
pub const ENDPOINTS: &[&str] = &[
    "sns/jscode2session",
    "cgi-bin/token",
    "cgi-bin/stable_token",
    "cgi-bin/message/subscribe/send",
    "wxa/business/getuserphonenumber",
    "wxaapi/newtmpl/gettemplate",
    "cgi-bin/message/custom/send",
];

/// WeChat takes 客服 messages to a user this long after the user last wrote.
const CUSTOMER_SERVICE_WINDOW: i64 = 48 * 3600;
/// WeChat pushes a message it got no answer to this many times in all.
const PUSH_DELIVERIES: u32 = 3;
/// The simulated mini-program's original id, as pushes name it in `ToUserName`.
const ORIGINAL_ID: &str = "gh_0123456789ab";

/// The pages of the released mini-program until `POST /__sim/pages` says otherwise: those
/// our notifications open, and the home page.
pub const RELEASED_PAGES: &[&str] = &[
    "pages/index/index",
    "pages/appointment/detail",
    "pages/orders/detail",
];

type Base64 = base64::engine::GeneralPurpose;
const BASE64: Base64 = base64::engine::general_purpose::STANDARD;

pub struct Simulator {
    clock: Arc<Clock>,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    /// openid → unionid, for every user a code was minted for (others are 40003 on send).
    users: HashMap<String, Option<String>>,
    /// openid → the session key of the user's latest login (AES-128, 16 bytes).
    session_keys: HashMap<String, [u8; 16]>,
    codes: HashMap<String, LoginCode>,
    phone_codes: HashMap<String, PhoneCode>,
    /// Every access token ever issued and until when it is valid; invalidated ones are gone.
    tokens: HashMap<String, DateTime<Utc>>,
    /// The latest `cgi-bin/token` token: the next fetch leaves it 5 more minutes.
    classic: Option<String>,
    stable: Option<(String, DateTime<Utc>)>,
    forced: Vec<DateTime<Utc>>,
    templates: HashMap<String, SimTemplate>,
    /// Pages of the released version; `None`: [`RELEASED_PAGES`].
    released_pages: Option<Vec<String>>,
    /// (openid, template id) → sends the user has granted.
    subscriptions: HashMap<(String, String), u32>,
    messages: Vec<Value>,
    /// Where the 客服 message push goes, once the server configured one.
    push: Option<PushTarget>,
    /// openid → when the user last wrote to 客服 (the 48-hour window).
    last_wrote: HashMap<String, DateTime<Utc>>,
    pushed: i64,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: HashMap<String, u64>,
}

/// A push as WeChat sends it: where, the query, the body.
type PushRequest = (PushTarget, Vec<(&'static str, String)>, Value);

/// Our server's push endpoint and the secrets WeChat signs and encrypts with.
#[derive(Clone)]
struct PushTarget {
    url: String,
    token: String,
    key: Option<PushKey>,
}

struct LoginCode {
    openid: String,
    issued_at: DateTime<Utc>,
    used: bool,
}

struct PhoneCode {
    openid: String,
    phone: String,
    country_code: String,
    issued_at: DateTime<Utc>,
}

struct SimTemplate {
    title: String,
    keywords: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub endpoint: String,
    /// Only calls about this user take the fault (40226, 45011 are per user at WeChat).
    pub openid: Option<String>,
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

/// A refusal: WeChat's errcode and the detail its `errmsg` adds.
type Refusal = (i64, String);

fn refuse<T>(errcode: i64) -> Result<T, Refusal> {
    Err((errcode, String::new()))
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

    /// Mints a `getPhoneNumber` code: the user tapped the button and WeChat knows the number.
    pub fn mint_phone_code(&self, openid: &str, phone: &str, country_code: &str) -> String {
        let code = Alphanumeric.sample_string(&mut rand::rng(), 64);
        self.state().phone_codes.insert(
            code.clone(),
            PhoneCode {
                openid: openid.to_owned(),
                phone: phone.to_owned(),
                country_code: country_code.to_owned(),
                issued_at: self.clock.now(),
            },
        );
        code
    }

    pub fn register_template(&self, template_id: &str, keywords: Vec<String>) {
        self.register_titled_template(template_id, template_id, keywords);
    }

    fn register_titled_template(&self, template_id: &str, title: &str, keywords: Vec<String>) {
        self.state().templates.insert(
            template_id.to_owned(),
            SimTemplate {
                title: title.to_owned(),
                keywords,
            },
        );
    }

    /// Records that the user tapped "accept" once for a template: one more send.
    pub fn accept(&self, openid: &str, template_id: &str) {
        *self
            .state()
            .subscriptions
            .entry((openid.to_owned(), template_id.to_owned()))
            .or_default() += 1;
    }

    /// Where to push 客服 messages, as the mini-program's admin console configures it.
    pub fn set_push_target(&self, url: String, token: String, key: Option<PushKey>) {
        self.state().push = Some(PushTarget { url, token, key });
    }

    /// The push of one user message, as WeChat sends it: the query and the body.
    fn push_request(&self, openid: &str, text: &str) -> Option<PushRequest> {
        let now = self.clock.now();
        let mut state = self.state();
        let target = state.push.clone()?;
        state.users.entry(openid.to_owned()).or_default();
        state.last_wrote.insert(openid.to_owned(), now);
        state.pushed += 1;
        let msg_id = now.timestamp_millis() * 1000 + state.pushed;
        drop(state);
        let message = json!({
            "ToUserName": ORIGINAL_ID,
            "FromUserName": openid,
            "CreateTime": now.timestamp(),
            "MsgType": "text",
            "Content": text,
            "MsgId": msg_id,
        });
        let timestamp = now.timestamp().to_string();
        let nonce = rand::rng().next_u32().to_string();
        let mut query = vec![
            (
                "signature",
                push::signature(&[&target.token, &timestamp, &nonce]),
            ),
            ("timestamp", timestamp.clone()),
            ("nonce", nonce.clone()),
            ("openid", openid.to_owned()),
        ];
        let body = match &target.key {
            None => message,
            Some(key) => {
                let encrypted = key.encrypt(&message.to_string(), APPID);
                let signed = push::signature(&[&target.token, &timestamp, &nonce, &encrypted]);
                query.push(("encrypt_type", "aes".into()));
                query.push(("msg_signature", signed));
                json!({"ToUserName": ORIGINAL_ID, "Encrypt": encrypted})
            }
        };
        Some((target, query, body))
    }

    /// `cgi-bin/message/custom/send`: text and image messages, to a user who wrote to 客服
    /// within 48 hours (45015 after).
    fn custom_send(&self, q: &HashMap<String, String>, body: &Value) -> Result<Value, Refusal> {
        let now = self.clock.now();
        let mut state = self.state();
        Self::check_token(&state, q, now)?;
        let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        let touser = text(body, "touser").unwrap_or_default();
        if !state.users.contains_key(&touser) {
            return refuse(40003);
        }
        let filled = |part: &str, field: &str| {
            body.get(part)
                .and_then(|p| text(p, field))
                .is_some_and(|v| !v.is_empty())
        };
        match text(body, "msgtype").as_deref() {
            Some("text") if filled("text", "content") => {}
            Some("image") if filled("image", "media_id") => {}
            Some("text" | "image") => return refuse(44002),
            _ => return refuse(40008),
        }
        let window = Span::seconds(CUSTOMER_SERVICE_WINDOW);
        if state
            .last_wrote
            .get(&touser)
            .is_none_or(|at| now - *at > window)
        {
            return refuse(45015);
        }
        state.messages.push(body.clone());
        Ok(json!({"errcode": 0, "errmsg": "ok"}))
    }

    pub fn messages(&self) -> Vec<Value> {
        self.state().messages.clone()
    }

    /// Counts the call and takes the next fault queued for `path` that applies to it: one
    /// for any caller, or one for `openid`, the user the call is about.
    fn arrive(&self, path: &str, openid: Option<&str>) -> Option<Fault> {
        let mut state = self.state();
        *state.calls.entry(path.to_owned()).or_default() += 1;
        let queue = state.faults.get_mut(path)?;
        let at = queue
            .iter()
            .position(|f| f.openid.is_none() || f.openid.as_deref() == openid)?;
        let fault = &mut queue[at];
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            queue.remove(at);
        }
        Some(taken)
    }

    fn check_app(&self, appid: Option<&str>, secret: Option<&str>) -> Result<(), Refusal> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.filter(|v| !v.is_empty())
        }
        match (given(appid), given(secret)) {
            (None, _) => refuse(41002),
            (Some(APPID), None) => refuse(41004),
            (Some(APPID), Some(SECRET)) => Ok(()),
            (Some(APPID), Some(_)) => refuse(40125),
            _ => refuse(40013),
        }
    }

    /// The user a login code belongs to, for per-user faults (the code is not spent).
    fn code_owner(&self, code: Option<&String>) -> Option<String> {
        let state = self.state();
        code.and_then(|c| state.codes.get(c))
            .map(|c| c.openid.clone())
    }

    fn jscode2session(&self, q: &HashMap<String, String>) -> Result<Value, Refusal> {
        self.check_app(
            q.get("appid").map(String::as_str),
            q.get("secret").map(String::as_str),
        )?;
        let js_code = q
            .get("js_code")
            .filter(|c| !c.is_empty())
            .ok_or((41008, String::new()))?;
        if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return refuse(40002);
        }
        let now = self.clock.now();
        let mut state = self.state();
        let code = state.codes.get_mut(js_code).ok_or((40029, String::new()))?;
        if code.used {
            return refuse(40163);
        }
        if now - code.issued_at > Span::seconds(CODE_TTL) {
            return refuse(40029);
        }
        code.used = true;
        let openid = code.openid.clone();
        // Each login gives the user a new session key; the previous one stops working.
        let mut key = [0u8; 16];
        rand::rng().fill_bytes(&mut key);
        state.session_keys.insert(openid.clone(), key);
        let mut answer = json!({
            "openid": openid,
            "session_key": BASE64.encode(key),
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
    fn classic_token(&self, q: &HashMap<String, String>) -> Result<Value, Refusal> {
        self.check_app(
            q.get("appid").map(String::as_str),
            q.get("secret").map(String::as_str),
        )?;
        if q.get("grant_type").map(String::as_str) != Some("client_credential") {
            return refuse(40002);
        }
        let now = self.clock.now();
        let mut state = self.state();
        let (token, expires) = Self::new_token(&mut state, now);
        if let Some(previous) = state.classic.replace(token.clone()) {
            if let Some(until) = state.tokens.get_mut(&previous) {
                *until = (*until).min(now + Span::seconds(TOKEN_OVERLAP));
            }
        }
        Ok(Self::token_answer(&token, expires, now))
    }

    /// `cgi-bin/stable_token`: the same token to every caller until 5 minutes before it
    /// expires; `force_refresh` (20 a day, 30 s apart, else ignored) invalidates it.
    fn stable_token(&self, body: &Value) -> Result<Value, Refusal> {
        self.check_app(
            body.get("appid").and_then(Value::as_str),
            body.get("secret").and_then(Value::as_str),
        )?;
        if body.get("grant_type").and_then(Value::as_str) != Some("client_credential") {
            return refuse(40002);
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

    /// The `access_token` of the query, if WeChat would take it.
    fn check_token(
        state: &SimState,
        q: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let token = q
            .get("access_token")
            .filter(|t| !t.is_empty())
            .ok_or((41001, String::new()))?;
        match state.tokens.get(token) {
            None => refuse(40001),
            Some(expires) if *expires <= now => refuse(42001),
            Some(_) => Ok(()),
        }
    }

    fn send(&self, q: &HashMap<String, String>, body: &Value) -> Result<Value, Refusal> {
        let now = self.clock.now();
        let mut state = self.state();
        Self::check_token(&state, q, now)?;
        let text = |name: &str| body.get(name).and_then(Value::as_str);
        let touser = text("touser").unwrap_or_default();
        if !state.users.contains_key(touser) {
            return refuse(40003);
        }
        let template_id = text("template_id").unwrap_or_default();
        let template = state
            .templates
            .get(template_id)
            .ok_or((40037, String::new()))?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or((47003, "data is empty".into()))?;
        if let Some(unknown) = data.keys().find(|k| !template.keywords.contains(k)) {
            return Err((47003, format!("data.{unknown}.value invalid")));
        }
        // Every keyword of the template needs a value, of the form its type demands.
        for key in &template.keywords {
            let value = data
                .get(key)
                .and_then(|v| v.get("value"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if value.is_empty() {
                return Err((47003, format!("data.{key}.value is empty")));
            }
            if KeywordKind::of(key).is_some_and(|kind| check(kind, value).is_err()) {
                return Err((47003, format!("data.{key}.value invalid")));
            }
        }
        if let Some(page) = text("page").filter(|p| !p.is_empty()) {
            let path = page.split('?').next().unwrap_or_default();
            let path = path.strip_prefix('/').unwrap_or(path);
            let released = match &state.released_pages {
                Some(pages) => pages.iter().any(|p| p == path),
                None => RELEASED_PAGES.contains(&path),
            };
            if !released {
                return refuse(41030);
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

    /// The user a phone code belongs to, for per-user faults.
    fn phone_code_owner(&self, body: &Value) -> Option<String> {
        let state = self.state();
        let code = body.get("code").and_then(Value::as_str)?;
        state.phone_codes.get(code).map(|c| c.openid.clone())
    }

    /// `wxa/business/getuserphonenumber`: a phone code works once, for 5 minutes, and only
    /// for its own user when the caller names one.
    fn phone_number(&self, q: &HashMap<String, String>, body: &Value) -> Result<Value, Refusal> {
        let now = self.clock.now();
        let mut state = self.state();
        Self::check_token(&state, q, now)?;
        let code = body
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or((47001, "code is missing".into()))?;
        let owner = state.phone_codes.get(code).map(|c| c.openid.clone());
        let claimed = body.get("openid").and_then(Value::as_str);
        if owner.is_none() || claimed.is_some_and(|o| Some(o) != owner.as_deref()) {
            return refuse(40029);
        }
        let phone = state.phone_codes.remove(code).expect("looked up above");
        if now - phone.issued_at > Span::seconds(CODE_TTL) {
            return refuse(40029);
        }
        let full = if phone.country_code == "86" {
            phone.phone.clone()
        } else {
            format!("+{}{}", phone.country_code, phone.phone)
        };
        Ok(json!({
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": full,
                "purePhoneNumber": phone.phone,
                "countryCode": phone.country_code,
                "watermark": {"timestamp": now.timestamp(), "appid": APPID},
            },
        }))
    }

    /// `wxaapi/newtmpl/gettemplate`: the account's templates, keywords in `content`.
    fn templates(&self, q: &HashMap<String, String>) -> Result<Value, Refusal> {
        let state = self.state();
        Self::check_token(&state, q, self.clock.now())?;
        let mut data: Vec<Value> = state
            .templates
            .iter()
            .map(|(id, t)| {
                let content: String = t
                    .keywords
                    .iter()
                    .map(|k| format!("{k}:{{{{{k}.DATA}}}}\n"))
                    .collect();
                json!({"priTmplId": id, "title": t.title, "content": content, "example": "", "type": 2})
            })
            .collect();
        data.sort_by(|a, b| a["priTmplId"].as_str().cmp(&b["priTmplId"].as_str()));
        Ok(json!({"errcode": 0, "errmsg": "ok", "data": data}))
    }

    /// `data` and a watermark, AES-128-CBC under the user's current session key with a
    /// random IV, both base64: what `wx.getUserInfo` hands the phone as `encryptedData`.
    fn encrypted_data(&self, openid: &str, data: Value) -> Option<Value> {
        let key = *self.state().session_keys.get(openid)?;
        let mut plain = match data {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        plain.entry("openId").or_insert(json!(openid));
        plain.insert(
            "watermark".into(),
            json!({"appid": APPID, "timestamp": self.clock.now().timestamp()}),
        );
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        let encrypted = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(
            Value::Object(plain).to_string().as_bytes(),
        );
        Some(json!({"encryptedData": BASE64.encode(encrypted), "iv": BASE64.encode(iv)}))
    }
}

fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40008 => "invalid message type",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40037 => "invalid template_id",
        40066 => "invalid url",
        40125 => "invalid appsecret",
        40163 => "code been used",
        40164 => "invalid ip, not in whitelist",
        40226 => "code blocked",
        41001 => "access_token missing",
        41002 => "appid missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        41030 => "invalid page",
        42001 => "access_token expired",
        43001 => "require GET method",
        43002 => "require POST method",
        43101 => "user refuse to accept the msg",
        44002 => "empty post data",
        45015 => "response out of time limit or subscription is canceled",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit mustslower retry next minute",
        47001 => "data format error",
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

fn answer(result: Result<Value, Refusal>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::Ok().json(body),
        Err((errcode, detail)) => wechat_error(errcode, &detail),
    }
}

/// Applies the fault queued for this call, if any: `Some` is the answer to give instead.
async fn faulted(sim: &Simulator, path: &str, openid: Option<&str>) -> Option<HttpResponse> {
    let fault = sim.arrive(path, openid)?;
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

/// A POST body as WeChat reads it: JSON, else 47001.
fn json_body(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice::<Value>(body).map_err(|_| (47001, String::new()))
}

async fn jscode2session(sim: Sim, q: Query) -> HttpResponse {
    let openid = sim.code_owner(q.get("js_code"));
    if let Some(answer) = faulted(&sim, "sns/jscode2session", openid.as_deref()).await {
        return answer;
    }
    answer(sim.jscode2session(&q))
}

async fn classic_token(sim: Sim, q: Query) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "cgi-bin/token", None).await {
        return answer;
    }
    answer(sim.classic_token(&q))
}

async fn stable_token(sim: Sim, body: web::Bytes) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "cgi-bin/stable_token", None).await {
        return answer;
    }
    answer(json_body(&body).and_then(|body| sim.stable_token(&body)))
}

/// The message's addressee, so a fault for one user hits only messages to them.
fn addressee(body: &Result<Value, Refusal>) -> Option<&str> {
    body.as_ref()
        .ok()
        .and_then(|b| b.get("touser"))
        .and_then(Value::as_str)
}

async fn subscribe_send(sim: Sim, q: Query, body: web::Bytes) -> HttpResponse {
    let body = json_body(&body);
    if let Some(answer) = faulted(&sim, "cgi-bin/message/subscribe/send", addressee(&body)).await {
        return answer;
    }
    answer(body.and_then(|body| sim.send(&q, &body)))
}

async fn custom_send(sim: Sim, q: Query, body: web::Bytes) -> HttpResponse {
    let body = json_body(&body);
    if let Some(answer) = faulted(&sim, "cgi-bin/message/custom/send", addressee(&body)).await {
        return answer;
    }
    answer(body.and_then(|body| sim.custom_send(&q, &body)))
}

async fn phone_number(sim: Sim, q: Query, body: web::Bytes) -> HttpResponse {
    let body = json_body(&body);
    let openid = body.as_ref().ok().and_then(|b| sim.phone_code_owner(b));
    let path = "wxa/business/getuserphonenumber";
    if let Some(answer) = faulted(&sim, path, openid.as_deref()).await {
        return answer;
    }
    answer(body.and_then(|body| sim.phone_number(&q, &body)))
}

async fn get_templates(sim: Sim, q: Query) -> HttpResponse {
    if let Some(answer) = faulted(&sim, "wxaapi/newtmpl/gettemplate", None).await {
        return answer;
    }
    answer(sim.templates(&q))
}

async fn require_get() -> HttpResponse {
    wechat_error(43001, "")
}

async fn require_post() -> HttpResponse {
    wechat_error(43002, "")
}

/// A path WeChat does not have: WeChat answers 200 with 40066, not 404.
async fn unknown_api() -> HttpResponse {
    wechat_error(40066, "")
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
struct MintPhoneCode {
    openid: String,
    phone: String,
    #[serde(default = "china")]
    country_code: String,
}

fn china() -> String {
    "86".into()
}

async fn mint_phone_code(
    sim: Sim,
    body: web::Json<MintPhoneCode>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.openid.is_empty() {
        return Err(ApiError::invalid("openid", "openid 不能为空"));
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&body.phone) {
        return Err(ApiError::invalid("phone", "phone 须为不带区号的数字"));
    }
    if !digits(&body.country_code) {
        return Err(ApiError::invalid("country_code", "country_code 须为数字"));
    }
    let code = sim.mint_phone_code(&body.openid, &body.phone, &body.country_code);
    Ok(HttpResponse::Ok().json(json!({ "code": code })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptFor {
    openid: String,
    #[serde(default)]
    data: Value,
}

async fn encrypted_data(sim: Sim, body: web::Json<EncryptFor>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let encrypted = sim
        .encrypted_data(&body.openid, body.data)
        .ok_or_else(|| ApiError::invalid("openid", "该用户尚未登录，没有 session_key"))?;
    Ok(HttpResponse::Ok().json(encrypted))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    template_id: String,
    keywords: Vec<String>,
    title: Option<String>,
}

async fn register_template(sim: Sim, body: web::Json<Template>) -> HttpResponse {
    let body = body.into_inner();
    let title = body.title.as_deref().unwrap_or(&body.template_id);
    sim.register_titled_template(&body.template_id, title, body.keywords);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pages {
    pages: Vec<String>,
}

async fn release_pages(sim: Sim, body: web::Json<Pages>) -> HttpResponse {
    sim.state().released_pages = Some(body.into_inner().pages);
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserMessage {
    openid: String,
    text: String,
    /// How many times WeChat pushes it (it pushes again when it got no answer in 5 s): 1–3.
    #[serde(default = "one")]
    deliveries: u32,
}

/// A user writes to 客服: WeChat pushes the message to our endpoint (signed, and encrypted in
/// 安全模式); answers what our endpoint said to each delivery.
async fn user_message(sim: Sim, body: web::Json<UserMessage>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.openid.is_empty() {
        return Err(ApiError::invalid("openid", "openid 不能为空"));
    }
    if !(1..=PUSH_DELIVERIES).contains(&body.deliveries) {
        return Err(ApiError::invalid("deliveries", "deliveries 为 1 到 3"));
    }
    let (target, query, pushed) = sim.push_request(&body.openid, &body.text).ok_or_else(|| {
        ApiError::invalid(
            "openid",
            "服务端未配置消息推送（BANZHENG_WECHAT__PUSH_TOKEN）",
        )
    })?;
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for _ in 0..body.deliveries {
        let answer = client
            .post(&target.url)
            .query(&query)
            .json(&pushed)
            .send()
            .await;
        answers.push(match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                json!({"status": status, "body": r.text().await.unwrap_or_default()})
            }
            Err(e) => json!({"status": 0, "body": e.to_string()}),
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "deliveries": answers })))
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
    state.classic = None;
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
        .service(
            web::scope("/__wechat")
                .service(
                    endpoint("/sns/jscode2session")
                        .get(jscode2session)
                        .otherwise(require_get),
                )
                .service(
                    endpoint("/cgi-bin/token")
                        .get(classic_token)
                        .otherwise(require_get),
                )
                .service(
                    endpoint("/cgi-bin/stable_token")
                        .post(stable_token)
                        .otherwise(require_post),
                )
                .service(
                    endpoint("/cgi-bin/message/subscribe/send")
                        .post(subscribe_send)
                        .otherwise(require_post),
                )
                .service(
                    endpoint("/cgi-bin/message/custom/send")
                        .post(custom_send)
                        .otherwise(require_post),
                )
                .service(
                    endpoint("/wxa/business/getuserphonenumber")
                        .post(phone_number)
                        .otherwise(require_post),
                )
                .service(
                    endpoint("/wxaapi/newtmpl/gettemplate")
                        .get(get_templates)
                        .otherwise(require_get),
                )
                .default_service(web::to(unknown_api)),
        )
        .service(endpoint("/__sim/codes").post(mint_code))
        .service(endpoint("/__sim/phone-codes").post(mint_phone_code))
        .service(endpoint("/__sim/encrypted-data").post(encrypted_data))
        .service(endpoint("/__sim/templates").post(register_template))
        .service(endpoint("/__sim/pages").post(release_pages))
        .service(endpoint("/__sim/subscriptions").post(subscribe))
        .service(endpoint("/__sim/messages").get(messages))
        .service(endpoint("/__sim/kf/messages").post(user_message))
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
