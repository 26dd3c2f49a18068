//! Prometheus metrics: request counts and latency histograms by method, route pattern and
//! status, every label from a bounded set so no client can grow the series; and who may read
//! them: anyone on the main port in development, in production only a scraper presenting
//! `BANZHENG_METRICS_TOKEN` (without one the endpoint does not exist).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use secrecy::{ExposeSecret, SecretString};

use crate::routing::RoutePattern;

/// Who may read `/metrics`.
#[derive(Clone)]
pub enum MetricsAccess {
    /// Development: open on the main port.
    Open,
    /// Production with `BANZHENG_METRICS_TOKEN`: `Authorization: Bearer <token>` only.
    Token(SecretString),
    /// Production without a token: the endpoint answers 404, as if it did not exist.
    Hidden,
}

impl MetricsAccess {
    pub fn new(production: bool, token: Option<&SecretString>) -> Self {
        match (production, token) {
            (false, _) => MetricsAccess::Open,
            (true, Some(token)) => MetricsAccess::Token(token.clone()),
            (true, None) => MetricsAccess::Hidden,
        }
    }
}

pub struct Metrics {
    pub access: MetricsAccess,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    pub fn new(access: MetricsAccess) -> Self {
        let registry = Registry::new();
        let labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served"),
            labels,
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
            labels,
        )
        .expect("static metric definition");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(latency.clone()))
            .expect("registered once");
        Metrics {
            access,
            registry,
            requests,
            latency,
        }
    }

    /// The registry, so capabilities can add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Whether `presented` (a bearer token) is the configured one, compared in constant time.
pub fn token_matches(expected: &SecretString, presented: &str) -> bool {
    use sha2::{Digest, Sha256};
    // Equal-length digests, so the comparison's time does not depend on where they differ.
    let (a, b) = (
        Sha256::digest(expected.expose_secret().as_bytes()),
        Sha256::digest(presented.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The method as a label: the standard ones by name, any extension method a client invents
/// as `other`, so methods cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

pub async fn metrics_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        // The route pattern, not the path, so ids do not explode the label set; a path no
        // route matches is `unmatched`, whatever it was.
        let route = response.request().app_data::<RoutePattern>();
        let route = route.map_or("unmatched", |r| r.0.as_str());
        let status = response.status().as_u16().to_string();
        let labels = [method, route, status.as_str()];
        metrics.requests.with_label_values(&labels).inc();
        metrics
            .latency
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        for invented in ["XGET", "get", "PROPFIND", "A-VERY-LONG-INVENTED-METHOD"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{invented}");
        }
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = SecretString::from("a-metrics-token-for-prometheus-only");
        assert!(token_matches(&token, "a-metrics-token-for-prometheus-only"));
        for wrong in [
            "",
            "a-metrics-token",
            "a-metrics-token-for-prometheus-only ",
            "A-metrics-token-for-prometheus-only",
        ] {
            assert!(!token_matches(&token, wrong), "{wrong:?}");
        }
    }
}
