//! The one error type of the API and its mapping to the JSON error shape
//! `{"code", "message", "request_id"}`. Every handler returns `Result<_, ApiError>`;
//! every capability converts its own errors into it, and only here do they get a status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::telemetry::current_request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names what was wrong, the message says it in Chinese.
    #[error("invalid {field}: {message}")]
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    /// A rule of the domain says no; code and message are the rule's own.
    #[error("conflict {code}")]
    Conflict {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The photo check failed: 422 with the checker's report, so the phone can say why.
    #[error("photo rejected")]
    PhotoRejected { report: serde_json::Value },
    /// WeChat answered with an error we pass on (bad login code, risky user, rate limit).
    #[error("wechat refused: {code}")]
    WeChat {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
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
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: "INVALID_INPUT",
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            status: StatusCode::CONFLICT,
            code,
            message: message.into(),
        }
    }

    /// A request that is well-formed but breaks a rule (422).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Invalid { code, .. } => code,
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::Conflict { code, .. } => code,
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::PhotoRejected { .. } => "PHOTO_REJECTED",
            ApiError::WeChat { code, .. } => code,
            ApiError::WeChatUnavailable(_) => "WECHAT_UNAVAILABLE",
            ApiError::StoreUnavailable(_) => "STORE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Invalid { message, .. } => message.clone(),
            ApiError::Unauthorized => "未登录或登录已过期，请重新登录".into(),
            ApiError::Forbidden(why) => format!("无权进行此操作（{why}）"),
            ApiError::NotFound => "请求的内容不存在".into(),
            ApiError::Conflict { message, .. } => message.clone(),
            ApiError::RateLimited { .. } => "请求过于频繁，请稍后再试".into(),
            ApiError::PayloadTooLarge => "上传的文件过大".into(),
            ApiError::UnsupportedMediaType => "不支持的文件类型，请上传 JPEG 或 PNG 图片".into(),
            ApiError::PhotoRejected { .. } => "照片不符合要求，请按提示重新拍摄".into(),
            ApiError::WeChat { message, .. } => (*message).into(),
            ApiError::WeChatUnavailable(_) => "微信服务暂时不可用，请稍后再试".into(),
            ApiError::StoreUnavailable(_) => "服务暂时不可用，请稍后再试".into(),
            ApiError::Internal(_) => "服务器内部错误".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PhotoRejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::WeChat { status, .. } => *status,
            ApiError::WeChatUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        }
        let message = self.message();
        let field = match self {
            ApiError::Invalid { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            // WeChat's minute quota: the next minute may pass.
            ApiError::WeChat { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                response.insert_header((header::RETRY_AFTER, "60"));
            }
            _ => {}
        }
        response.json(ErrorBody {
            code: self.code(),
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
        E::ContentType => ApiError::Invalid {
            code: "INVALID_INPUT",
            field: "body".into(),
            message: "请求体必须是 JSON（Content-Type: application/json）".into(),
        }
        .into(),
        E::Deserialize(e) => ApiError::invalid("body", format!("请求内容格式不正确：{e}")).into(),
        other => ApiError::invalid("body", format!("无法读取请求内容：{other}")).into(),
    }
}

pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::invalid("query", format!("查询参数不正确：{err}")).into()
}

pub fn path_error_handler(
    _err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound.into()
}
