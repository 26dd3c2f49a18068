//! Route registration that answers a known path with the wrong method by 405 and an `Allow`
//! header (as HTTP requires), instead of falling through to 404.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, Handler, Resource, Responder, ResponseError};

use crate::error::{ApiError, ErrorCode};

/// One path and the methods it serves: `endpoint("/x").get(list).post(create)`.
pub struct Endpoint {
    resource: Resource,
    allowed: Vec<Method>,
    /// The answer to other methods chosen by the endpoint itself (the WeChat simulator's).
    otherwise: bool,
}

/// The path pattern of the endpoint that served a request (`/api/v1/appointments/{id}`), for
/// metrics: actix's `match_pattern()` would match every route's pattern again to find it.
pub struct RoutePattern(pub String);

pub fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        resource: web::resource(path).app_data(RoutePattern(path.to_owned())),
        allowed: Vec::new(),
        otherwise: false,
    }
}

impl Endpoint {
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::POST, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::DELETE, handler)
    }

    /// Answers the methods the endpoint does not serve with `handler` instead of 405.
    pub fn otherwise<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.default_service(web::to(handler));
        self.otherwise = true;
        self
    }

    fn method<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self
            .resource
            .route(web::route().method(method.clone()).to(handler));
        self.allowed.push(method);
        self
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        if self.otherwise {
            return self.resource.register(config);
        }
        let allow = self
            .allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let allow = header::HeaderValue::from_str(&allow).expect("method names are header-safe");
        self.resource
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move {
                    let mut response = ApiError::from(ErrorCode::MethodNotAllowed).error_response();
                    response.headers_mut().insert(header::ALLOW, allow);
                    response
                }
            }))
            .register(config)
    }
}
