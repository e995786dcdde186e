//! HTTP metrics (requests by route, method and status, latency by route,
//! refused keys by reason) and the `/metrics` endpoint in Prometheus text
//! format. Every label value comes from a fixed set, whatever clients send:
//! route patterns (or `unmatched`), known methods (or `other`), status codes.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::error::ApiError;
use super::AppState;

/// HTTP metric handles.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    refusals: IntCounterVec,
    build: IntGaugeVec,
}

impl HttpMetrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// When they are already registered.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "stt_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "stt_http_request_duration_seconds",
                "Time to the response head, by route",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                300.0,
            ]),
            &["route"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "stt_auth_refusals_total",
                "Requests refused by the API-key check, by error code",
            ),
            &["code"],
        )?;
        let build = IntGaugeVec::new(
            Opts::new(
                "stt_build_info",
                "1, labelled with the server's version and the loaded libraries' \
                 versions and patch series (`stock` without one); absent before they load",
            ),
            &["version", "whisper_cpp", "ggml", "patches"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(build.clone()))?;
        Ok(Self {
            requests,
            latency,
            refusals,
            build,
        })
    }

    /// Sets `stt_build_info` once the libraries are loaded.
    fn note_build(&self) {
        if let Some(info) = whisper_safe::loaded() {
            self.build
                .with_label_values(&[
                    env!("CARGO_PKG_VERSION"),
                    info.whisper_version.as_str(),
                    info.ggml_version.as_str(),
                    info.patch_series.as_deref().unwrap_or("stock"),
                ])
                .set(1);
        }
    }

    /// Counts a request the key check refused with error `code`.
    pub fn refused(&self, code: &'static str) {
        self.refusals.with_label_values(&[code]).inc();
    }
}

/// The method's label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// Middleware: counts and times every request by its route pattern.
///
/// # Errors
/// Only the inner service's errors.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(request.method());
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.http_metrics.clone());
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[route.as_str(), method, status.as_str()])
            .inc();
        metrics
            .latency
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// `GET /metrics`.
///
/// # Errors
/// 500 if encoding fails.
pub async fn export(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.http_metrics.note_build();
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    encoder
        .encode(&state.registry.gather(), &mut body)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(encoder.format_type())
        .body(body))
}
