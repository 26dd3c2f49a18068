//! Requests that came through a proxy. Development mode refuses them outright.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{FORWARDED, X_FORWARDED_FOR};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::{ApiError, ErrorCode};

/// Development mode: a request that came through a proxy is refused, since the development
/// server must not be reachable from beyond the machine it runs on.
pub async fn refuse_forwarded(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let headers = req.headers();
    if headers.contains_key(FORWARDED) || headers.contains_key(X_FORWARDED_FOR) {
        let refusal = ApiError::from(ErrorCode::ProxiedInDevelopment).error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
