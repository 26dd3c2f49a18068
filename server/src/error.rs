//! The one error type of the API and its mapping to the JSON error shape
//! `{"code", "message", "request_id"}`. Every code the server can answer is an [`ErrorCode`]
//! with its HTTP status and Chinese message, written once here; `openapi.yaml` declares the
//! same list (a test below compares them).

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::telemetry::current_request_id;

/// Defines [`ErrorCode`] from one table, so `ALL` cannot miss a code.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $status:ident, $message:literal;)*) => {
        /// A stable machine-readable error code: what a client switches on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// The Chinese message when the refusal has nothing more specific to say.
            pub fn message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $message,)*
                }
            }
        }
    };
}

error_codes! {
    /// The request does not match the contract's schema; `field` names the input.
    InvalidInput = "INVALID_INPUT", BAD_REQUEST, "请求内容不正确";
    /// The request matches the schema, but a value is wrong in a way only the server can
    /// tell (an ID number's check character, a cursor it never handed out, a rule between
    /// fields); `field` names the input.
    InvalidValue = "INVALID_VALUE", UNPROCESSABLE_ENTITY, "填写的内容有误，请核对";
    Unauthorized = "UNAUTHORIZED", UNAUTHORIZED, "未登录或登录已过期，请重新登录";
    BadCredentials = "BAD_CREDENTIALS", UNAUTHORIZED, "用户名或密码错误";
    WechatCodeInvalid = "WECHAT_CODE_INVALID", UNAUTHORIZED, "登录凭证已失效或已使用，请重新登录";
    Forbidden = "FORBIDDEN", FORBIDDEN, "无权进行此操作";
    /// Development mode answers only requests made on its own machine, never through a proxy.
    ProxiedInDevelopment = "PROXIED_IN_DEVELOPMENT", FORBIDDEN, "开发模式的服务只接受本机直接发来的请求，不接受经代理转发的请求";
    /// A staff account an administrator disabled (said only after the right password).
    AccountDisabled = "ACCOUNT_DISABLED", FORBIDDEN, "该账号已被停用，请联系管理员";
    WechatUserBlocked = "WECHAT_USER_BLOCKED", FORBIDDEN, "微信判定该账号存在风险，暂时无法登录";
    /// A push that does not carry our push token's signature (or, in 安全模式, our key and app id).
    PushSignatureInvalid = "PUSH_SIGNATURE_INVALID", FORBIDDEN, "推送签名不正确";
    /// The account missed too many appointments recently, for this applicant or in all.
    Banned = "BANNED", FORBIDDEN, "本账号近期多次预约未到场，暂时不能预约";
    /// Storing an ID number or a face photo before the user accepted the current privacy notice.
    ConsentRequired = "CONSENT_REQUIRED", FORBIDDEN, "请先阅读并同意隐私保护指引，再提交身份证号码或照片";
    NotFound = "NOT_FOUND", NOT_FOUND, "请求的内容不存在";
    MethodNotAllowed = "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED, "不支持该请求方法";
    SlotFull = "SLOT_FULL", CONFLICT, "该时段已约满，请选择其他时段";
    /// The account already holds an active appointment for this ID number.
    AlreadyBooked = "ALREADY_BOOKED", CONFLICT, "您已为该申请人预约，尚未办理，如需改约请先取消原预约";
    TooManyActive = "TOO_MANY_ACTIVE", CONFLICT, "本账号的有效预约已达上限，请办理或取消后再预约";
    TooLateToCancel = "TOO_LATE_TO_CANCEL", CONFLICT, "已过取消截止时间，不能取消";
    NotToday = "NOT_TODAY", CONFLICT, "只能在预约当天签到";
    IllegalTransition = "ILLEGAL_TRANSITION", CONFLICT, "预约当前状态不能进行此操作";
    ConcurrentChange = "CONCURRENT_CHANGE", CONFLICT, "预约状态刚刚发生变化，请刷新后重试";
    OrderAlreadyDecided = "ORDER_ALREADY_DECIDED", CONFLICT, "该订单已审核，不能再次审核";
    OrderNotRejected = "ORDER_NOT_REJECTED", CONFLICT, "只有未通过的订单可以重新提交照片";
    OrderChanged = "ORDER_CHANGED", CONFLICT, "订单状态已变化，请刷新后重试";
    ReceiptNotIssued = "RECEIPT_NOT_ISSUED", CONFLICT, "审核通过后才能下载相片回执";
    ReceiptUsed = "RECEIPT_USED", CONFLICT, "该相片回执已使用，每个回执只能使用一次";
    ReceiptBusy = "RECEIPT_BUSY", CONFLICT, "该相片回执正在被其他操作使用，请稍后再试";
    /// A 客服 reply to a user who last wrote more than 48 hours ago: WeChat would refuse it (45015).
    KfWindowClosed = "KF_WINDOW_CLOSED", CONFLICT, "用户最后一次留言已超过48小时，微信不再允许客服回复，请等待用户再次留言";
    /// Accepting a version of the privacy notice that is not the current one.
    PrivacyVersionOutdated = "PRIVACY_VERSION_OUTDATED", CONFLICT, "隐私保护指引已更新，请阅读最新版本后再同意";
    /// A photo (or the receipt drawn from it) the retention sweep deleted: its time was up.
    PhotoDeleted = "PHOTO_DELETED", GONE, "照片已按保存期限删除";
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE, "上传的文件过大";
    /// The photo's bytes are neither a JPEG nor a PNG.
    PhotoUnreadable = "PHOTO_UNREADABLE", UNPROCESSABLE_ENTITY, "无法识别照片，请上传 JPEG 或 PNG 图片";
    PhotoRejected = "PHOTO_REJECTED", UNPROCESSABLE_ENTITY, "照片不符合要求，请按提示重新拍摄";
    PhotoNotNormalisable = "PHOTO_NOT_NORMALISABLE", UNPROCESSABLE_ENTITY, "照片无法按规格裁剪";
    RegionNotSupported = "REGION_NOT_SUPPORTED", UNPROCESSABLE_ENTITY, "该地区暂不受理此证件的网上相片回执";
    SlotUnavailable = "SLOT_UNAVAILABLE", UNPROCESSABLE_ENTITY, "预约时段不存在";
    NotEligible = "NOT_ELIGIBLE", UNPROCESSABLE_ENTITY, "申请人不符合该业务的办理条件";
    IdempotencyMismatch = "IDEMPOTENCY_MISMATCH", UNPROCESSABLE_ENTITY, "同一个 Idempotency-Key 已用于另一个预约请求";
    /// WeChat does not know the getPhoneNumber code: unknown, expired, used, or another user's.
    PhoneCodeInvalid = "PHONE_CODE_INVALID", UNPROCESSABLE_ENTITY, "手机号授权已失效或已使用，请重新获取手机号";
    PhoneNotMainland = "PHONE_NOT_MAINLAND", UNPROCESSABLE_ENTITY, "预约仅支持中国大陆手机号，请手动填写";
    ReceiptNoMalformed = "RECEIPT_NO_MALFORMED", BAD_REQUEST, "回执号应为12位数字或字母";
    ReceiptNoCheckFailed = "RECEIPT_NO_CHECK_FAILED", UNPROCESSABLE_ENTITY, "回执号校验位不符，请核对是否输错";
    ReceiptNotFound = "RECEIPT_NOT_FOUND", UNPROCESSABLE_ENTITY, "未找到该相片回执号";
    ReceiptNotApproved = "RECEIPT_NOT_APPROVED", UNPROCESSABLE_ENTITY, "该相片回执尚未审核通过";
    ReceiptExpired = "RECEIPT_EXPIRED", UNPROCESSABLE_ENTITY, "该相片回执已过期，请重新办理";
    ReceiptOtherPerson = "RECEIPT_OTHER_PERSON", UNPROCESSABLE_ENTITY, "该相片回执不属于此申请人（身份证号不符）";
    RateLimited = "RATE_LIMITED", TOO_MANY_REQUESTS, "请求过于频繁，请稍后再试";
    WechatRateLimited = "WECHAT_RATE_LIMITED", TOO_MANY_REQUESTS, "微信登录过于频繁，请一分钟后再试";
    /// One user's photo uploads (checks, orders, resubmissions) per minute.
    PhotoQuotaExceeded = "PHOTO_QUOTA_EXCEEDED", TOO_MANY_REQUESTS, "上传照片过于频繁，请稍后再试";
    /// One user's orders waiting for review.
    TooManyOpenOrders = "TOO_MANY_OPEN_ORDERS", TOO_MANY_REQUESTS, "待审核的订单已达上限，请等待审核结果后再提交";
    /// Booking attempts of one account, or of one account for one ID number, in a window.
    TooManyBookingAttempts = "TOO_MANY_BOOKING_ATTEMPTS", TOO_MANY_REQUESTS, "预约操作过于频繁，请稍后再试";
    /// Resubmissions of one order per day.
    ResubmitQuotaExceeded = "RESUBMIT_QUOTA_EXCEEDED", TOO_MANY_REQUESTS, "该订单今天重新提交的次数已达上限，请明天再试";
    Internal = "INTERNAL", INTERNAL_SERVER_ERROR, "服务器内部错误";
    WechatUnavailable = "WECHAT_UNAVAILABLE", BAD_GATEWAY, "微信服务暂时不可用，请稍后再试";
    StoreUnavailable = "STORE_UNAVAILABLE", SERVICE_UNAVAILABLE, "服务暂时不可用，请稍后再试";
    /// The change is stored, but the replicas asked for did not confirm it in time: a
    /// failover may lose it or not (retry with the same Idempotency-Key, or look it up).
    NotReplicated = "NOT_REPLICATED", SERVICE_UNAVAILABLE, "已提交，但备份尚未确认，请稍后查看结果";
    /// Too much work of one kind at once (password checks); `Retry-After` says when to retry.
    ServerBusy = "SERVER_BUSY", SERVICE_UNAVAILABLE, "服务繁忙，请稍后再试";
    /// The server's photo work is at its memory budget.
    PhotoBusy = "PHOTO_BUSY", SERVICE_UNAVAILABLE, "照片处理繁忙，请稍后再试";
}

impl ErrorCode {
    /// This code's refusal with a message that says more than the code's own.
    pub fn with(self, message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            code: self,
            message: Some(message.into()),
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::Refused {
            code,
            message: None,
        }
    }
}

/// A parse error of one input: `INVALID_INPUT` unless the value had the shape the contract
/// describes and only the server can tell it is wrong (then it says `INVALID_VALUE`).
pub trait FieldError: fmt::Display {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidInput
    }
}

impl FieldError for &str {}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names what was wrong, the message says it in Chinese.
    #[error("invalid {field}: {message}")]
    Invalid {
        code: ErrorCode,
        field: String,
        message: String,
    },
    /// A rule says no; `message`, when there is one, replaces the code's own.
    #[error("refused: {}", code.as_str())]
    Refused {
        code: ErrorCode,
        message: Option<String>,
    },
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A quota or budget says not now: `code`'s answer with `Retry-After`.
    #[error("retry later: {}", code.as_str())]
    RetryLater {
        code: ErrorCode,
        retry_after_secs: u64,
    },
    #[error("payload too large")]
    PayloadTooLarge,
    /// The photo check failed: 422 with the checker's report, so the phone can say why.
    #[error("photo rejected")]
    PhotoRejected { report: serde_json::Value },
    #[error("wechat unavailable: {0}")]
    WeChatUnavailable(String),
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a serde_json::Value>,
}

impl ApiError {
    /// `INVALID_INPUT`: `field` does not match the contract's schema.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: ErrorCode::InvalidInput,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `INVALID_VALUE`: `field` matches the schema but breaks a rule only the server knows.
    pub fn invalid_value(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: ErrorCode::InvalidValue,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `field` failed to parse: the error's code, its message after `label`.
    pub fn field(field: &str, label: &str, error: &dyn FieldError) -> Self {
        ApiError::Invalid {
            code: error.code(),
            field: field.into(),
            message: format!("{label}{error}"),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Invalid { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::RetryLater { code, .. } => *code,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::PhotoRejected { .. } => ErrorCode::PhotoRejected,
            ApiError::WeChatUnavailable(_) => ErrorCode::WechatUnavailable,
            ApiError::StoreUnavailable(_) => ErrorCode::StoreUnavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Invalid { message, .. }
            | ApiError::Refused {
                message: Some(message),
                ..
            } => message.clone(),
            ApiError::Forbidden(why) => format!("{}（{why}）", ErrorCode::Forbidden.message()),
            other => other.code().message().into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let status = code.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = code.as_str(), "request failed");
        }
        let message = self.message();
        let field = match self {
            ApiError::Invalid { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        match (self, code) {
            (ApiError::RateLimited { retry_after_secs }, _)
            | (
                ApiError::RetryLater {
                    retry_after_secs, ..
                },
                _,
            ) => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            (ApiError::Unauthorized, _) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            // WeChat's minute quota: the next minute may pass.
            (_, ErrorCode::WechatRateLimited) => {
                response.insert_header((header::RETRY_AFTER, "60"));
            }
            (_, ErrorCode::ServerBusy) => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            _ => {}
        }
        response.json(ErrorBody {
            code: code.as_str(),
            message: &message,
            request_id: current_request_id(),
            field,
            report: match self {
                ApiError::PhotoRejected { report } => Some(report),
                _ => None,
            },
        })
    }
}

/// Extractor failures (bad JSON, bad path or query) take the same shape as every other error.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge.into(),
        E::ContentType => ApiError::invalid(
            "body",
            "请求体必须是 JSON（Content-Type: application/json）",
        )
        .into(),
        E::Deserialize(e) => {
            let position = format!("（第 {} 行第 {} 列）", e.line(), e.column());
            let text = e.to_string();
            let message = match e.classify() {
                serde_json::error::Category::Data => text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(message, _)| message),
                // A syntax error's text says where, never what.
                _ => "",
            };
            unreadable("body", "请求内容格式不正确", message, &position).into()
        }
        other => ApiError::invalid("body", format!("无法读取请求内容：{other}")).into(),
    }
}

pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::QueryPayloadError as E;
    let text = match &err {
        E::Deserialize(e) => e.to_string(),
        _ => String::new(),
    };
    unreadable("query", "查询参数不正确", &text, "").into()
}

/// The refusal of input serde could not read, from serde's message (`invalid type: string
/// "…", expected u32`) without the input's values, which it quotes: personal data must not
/// come back in the answer nor go into the log. Names the field when serde does (`missing
/// field `code``); otherwise `default_field`. Messages of other shapes say nothing more than
/// `prefix` and `position`.
fn unreadable(default_field: &str, prefix: &str, serde_message: &str, position: &str) -> ApiError {
    let expected = || {
        serde_message
            .rsplit_once(", expected ")
            .map(|(_, expected)| expected.to_owned())
    };
    // A field of ours, or an unknown one named like ours (the input's own names are not
    // repeated otherwise).
    fn named(rest: &str) -> Option<&str> {
        rest.strip_prefix('`')
            .and_then(|r| r.split_once('`'))
            .map(|(name, _)| name)
            .filter(|name| {
                (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
    }
    let (field, what) = if let Some(rest) = serde_message.strip_prefix("missing field ") {
        (named(rest), "缺少必填字段".to_owned())
    } else if let Some(rest) = serde_message.strip_prefix("unknown field ") {
        (named(rest), "含有未定义的字段".to_owned())
    } else if let Some(rest) = serde_message.strip_prefix("duplicate field ") {
        (named(rest), "字段重复".to_owned())
    } else if serde_message.starts_with("invalid type: ") {
        (
            None,
            expected().map_or("类型不符".into(), |e| format!("类型不符，应为 {e}")),
        )
    } else if serde_message.starts_with("invalid value: ")
        || serde_message.starts_with("invalid length ")
        || serde_message.starts_with("unknown variant ")
    {
        (
            None,
            expected().map_or("取值不符".into(), |e| format!("取值不符，应为 {e}")),
        )
    } else {
        (None, String::new())
    };
    let field = field.unwrap_or(default_field);
    let message = match what.as_str() {
        "" => format!("{prefix}{position}"),
        what => format!("{prefix}：{what}{position}"),
    };
    ApiError::invalid(field, message)
}

pub fn path_error_handler(
    _err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound.into()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_norway::Value;

    use super::*;

    fn spec() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../miniprogram-api-spec/openapi.yaml"
        );
        serde_norway::from_str(&std::fs::read_to_string(path).expect("openapi.yaml"))
            .expect("openapi.yaml parses")
    }

    fn strings(value: &Value) -> BTreeSet<String> {
        value
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The codes a response's JSON schema allows: `code.enum` in it or in one of its `allOf`.
    fn response_codes(response: &Value) -> BTreeSet<String> {
        let schema = &response["content"]["application/json"]["schema"];
        std::iter::once(schema)
            .chain(schema["allOf"].as_sequence().into_iter().flatten())
            .flat_map(|s| strings(&s["properties"]["code"]["enum"]))
            .collect()
    }

    /// serde's messages quote the input; the refusal names the field and keeps what was
    /// expected, never the value.
    #[test]
    fn unreadable_input_is_described_without_its_values() {
        let id = "44190019900307123X";
        for (message, field, says) in [
            (
                format!("invalid type: string \"{id}, expected x\", expected u32"),
                "body",
                "类型不符，应为 u32",
            ),
            (
                format!("unknown variant `{id}`, expected one of `ems`, `pickup`"),
                "body",
                "应为 one of `ems`, `pickup`",
            ),
            (
                format!("invalid value: integer `{id}`, expected a phone"),
                "body",
                "取值不符",
            ),
            ("missing field `code`".into(), "code", "缺少必填字段"),
            (
                "unknown field `extra`, expected `code`".into(),
                "extra",
                "未定义",
            ),
            (
                format!("unknown field `{id}`, expected `code`"),
                "body",
                "未定义",
            ),
            (
                format!("`{id}` is not a slot id"),
                "body",
                "请求内容格式不正确",
            ),
        ] {
            let error = unreadable("body", "请求内容格式不正确", &message, "（第 1 行第 9 列）");
            let ApiError::Invalid {
                field: named,
                message: said,
                ..
            } = &error
            else {
                panic!("{error:?}")
            };
            assert_eq!(named, field, "{message}");
            assert!(said.contains(says) && said.ends_with("第 9 列）"), "{said}");
            assert!(
                !said.contains(id) && !error.to_string().contains(id),
                "{said}"
            );
        }
    }

    #[test]
    fn every_code_is_named_once_and_says_its_name() {
        let names: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            // `SlotFull` is `SLOT_FULL`: the variant and its wire name cannot drift apart.
            let mut snake = String::new();
            for (i, c) in format!("{code:?}").chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_uppercase());
            }
            assert_eq!(snake, code.as_str());
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    /// The contract declares exactly the codes the server can answer, each under its status:
    /// the `ErrorCode` schema's enum is `ErrorCode::ALL`, and every error response of every
    /// operation lists the codes it may carry in its schema's `code` enum.
    #[test]
    fn openapi_declares_every_code_the_server_answers_and_no_other() {
        let spec = spec();
        let ours: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().into()).collect();
        let declared = strings(&spec["components"]["schemas"]["ErrorCode"]["enum"]);
        assert_eq!(
            ours.difference(&declared).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "answered by the server but missing from the ErrorCode schema"
        );
        assert_eq!(
            declared.difference(&ours).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "in the ErrorCode schema but never answered"
        );

        let by_name: BTreeMap<&str, ErrorCode> =
            ErrorCode::ALL.iter().map(|c| (c.as_str(), *c)).collect();
        let resolve = |response: &Value| -> Value {
            match response["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.trim_start_matches("#/components/responses/");
                    spec["components"]["responses"][name].clone()
                }
                None => response.clone(),
            }
        };
        let mut seen = BTreeSet::new();
        let mut check = |place: &str, status: &str, response: &Value| {
            let codes = response_codes(response);
            let status: u16 = status.parse().expect("a numeric status");
            if status < 400 {
                return;
            }
            assert!(!codes.is_empty(), "{place} {status}: no `code` enum");
            for name in codes {
                let code = by_name
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("{place} {status}: unknown code {name}"));
                assert_eq!(
                    code.status().as_u16(),
                    status,
                    "{place}: {name} is answered with {}",
                    code.status()
                );
                seen.insert(name);
            }
        };
        for (path, item) in spec["paths"].as_mapping().expect("paths") {
            for (method, operation) in item.as_mapping().expect("a path item") {
                let place = format!(
                    "{} {}",
                    method.as_str().unwrap_or("?"),
                    path.as_str().unwrap_or("?")
                );
                for (status, response) in operation["responses"].as_mapping().into_iter().flatten()
                {
                    check(
                        &place,
                        status.as_str().expect("a status"),
                        &resolve(response),
                    );
                }
            }
        }
        // Answers any operation can give without the operation naming them (a method the
        // path does not take, a crash) are declared once among the shared responses.
        for (name, response) in spec["components"]["responses"]
            .as_mapping()
            .expect("responses")
        {
            let status = response["x-status"].as_str();
            if let Some(status) = status {
                check(name.as_str().unwrap_or("?"), status, response);
            }
        }
        assert_eq!(
            ours.difference(&seen).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "no response of openapi.yaml says when these codes are answered"
        );
    }
}
