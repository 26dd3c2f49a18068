//! Logging setup and the per-request id that ties a log line to the error a user reports.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use serde::Deserialize;
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::{fmt, EnvFilter};

tokio::task_local! {
    static REQUEST_ID: String;
}

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// `BANZHENG_LOG_FORMAT`: text lines, or one JSON object per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber once; later calls (tests starting many apps) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The id of the request being served, or empty outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// The span of one request. tracing-actix-web's default span also names the route pattern, which
/// actix finds by matching every route's pattern again (a regex each), on every request, whether
/// the span is logged or not; the path says as much in a log line.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %request.path(),
            http.status_code = Empty,
            otel.status_code = Empty,
            request_id = request_id.map(tracing::field::display),
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    /// The error's details (its `Debug`) only for server errors. The default formats them for
    /// every refusal too, and escaping the Chinese messages took 4 % of the CPU when most
    /// bookings were refused (perf).
    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (
                response.status(),
                response.response().error().map(Error::as_response_error),
            ),
            Err(error) => (
                error.as_response_error().status_code(),
                Some(error.as_response_error()),
            ),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(error) = error {
            span.record("exception.message", error.to_string());
        }
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            if let Some(error) = error {
                span.record("exception.details", format!("{error:?}"));
            }
        } else {
            span.record("otel.status_code", "OK");
        }
    }
}

/// Makes the tracing span's request id available to error bodies and echoes it in a header.
pub async fn request_id_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// Personal data in logs: keep enough to recognise, never enough to use.
pub mod mask {
    /// `441900199001011234` → `4419**********1234`; anything else keeps its first and last 4.
    pub fn id_number(id: &str) -> String {
        keep_ends(id, 4, 4)
    }

    /// `13812345678` → `138****5678`.
    pub fn phone(phone: &str) -> String {
        keep_ends(phone, 3, 4)
    }

    /// `张三丰` → `张**`.
    pub fn name(name: &str) -> String {
        keep_ends(name, 1, 0)
    }

    fn keep_ends(value: &str, head: usize, tail: usize) -> String {
        let chars: Vec<char> = value.chars().collect();
        if chars.len() <= head + tail {
            return "*".repeat(chars.len());
        }
        let middle = chars.len() - head - tail;
        chars[..head]
            .iter()
            .chain(std::iter::repeat_n(&'*', middle))
            .chain(&chars[chars.len() - tail..])
            .collect()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn masks() {
            assert_eq!(super::id_number("44190019900101123X"), "4419**********123X");
            assert_eq!(super::phone("13812345678"), "138****5678");
            assert_eq!(super::name("张三丰"), "张**");
            assert_eq!(super::name("张"), "*");
        }
    }
}
