//! Logs and traces. Logs: `tracing` events to stderr as text or JSON, filtered by
//! `RUST_LOG` (default `info`); tokens are never logged anywhere in the crate, decision
//! events carry reason codes, route and issuer names and a hash of the subject. Traces:
//! when an OTLP endpoint is configured, a span per Check — continuing the trace Envoy
//! propagates (W3C `traceparent` in the gRPC metadata, else in the request headers) —
//! with child spans for JWKS fetches it causes, exported over OTLP/gRPC.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use clap::ValueEnum;
use opentelemetry::{
    propagation::Extractor,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, util::SubscriberInitExt,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Set when spans are exported, so that Checks skip building spans nobody reads.
static TRACING: AtomicBool = AtomicBool::new(false);
/// One allowed Check in this many is logged at `info` (0: none; all at `debug`).
static ALLOW_LOG_SAMPLE: AtomicU64 = AtomicU64::new(0);

/// Logs one allowed Check in `every` at `info` (0 turns it off; `debug` logs them all).
pub fn set_allow_log_sample(every: u64) {
    ALLOW_LOG_SAMPLE.store(every, Ordering::Relaxed);
}

pub fn allow_log_sample() -> u64 {
    ALLOW_LOG_SAMPLE.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; dropping it flushes pending spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("--log-level: {0}")]
    Filter(tracing_subscriber::filter::ParseError),
}

/// Installs the global subscriber (a second call is a no-op). The level is `level` (a
/// `RUST_LOG`-style filter) when given, else `RUST_LOG`, else `info`; colours only when
/// stderr is a terminal. With `otlp_endpoint`, spans are exported there; this must run
/// inside the Tokio runtime.
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, TelemetryError> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).map_err(TelemetryError::Filter)?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let (provider, traces) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name("portcullis").build())
                .build();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("portcullis"));
            TRACING.store(true, Ordering::Release);
            (Some(provider), Some(layer))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .with(filter)
        .try_init();
    Ok(Telemetry { provider })
}

/// Whether spans are exported (an OTLP endpoint is configured).
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Acquire)
}

/// The span of one Check, or a disabled one when traces are not exported (then it costs
/// nothing). Its fields are recorded from the verdict.
pub fn check_span() -> tracing::Span {
    if !tracing_enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "check",
        otel.kind = "server",
        route = tracing::field::Empty,
        decision = tracing::field::Empty,
        reason = tracing::field::Empty,
    )
}

/// The trace context a caller sent in the gRPC metadata (Envoy adds `traceparent` there
/// when it traces), when traces are exported and it holds a valid one.
pub fn transport_parent(metadata: &tonic::metadata::MetadataMap) -> Option<opentelemetry::Context> {
    if !tracing_enabled() {
        return None;
    }
    let carrier = MetadataCarrier(metadata);
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` continue `parent` (from the transport), else the trace whose W3C context
/// the request's own headers carry. Call it before the span has children.
pub fn continue_trace(
    span: &tracing::Span,
    parent: Option<opentelemetry::Context>,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    if span.is_none() {
        return;
    }
    let context = parent.or_else(|| {
        let carrier = HeaderCarrier {
            traceparent: traceparent?,
            tracestate,
        };
        let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        context.span().span_context().is_valid().then_some(context)
    });
    if let Some(context) = context {
        let _ = span.set_parent(context);
    }
}

/// gRPC request metadata as a trace-context carrier.
struct MetadataCarrier<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// The trace context headers of the checked request, as a carrier.
struct HeaderCarrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// A short stable pseudonym for a subject: correlates log lines without logging who.
pub fn subject_hash(subject: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::subject_hash;

    #[test]
    fn subject_hash_is_short_stable_and_not_the_subject() {
        let hash = subject_hash("alice@example.com");
        assert_eq!(hash.len(), 16);
        assert_eq!(hash, subject_hash("alice@example.com"));
        assert_ne!(hash, subject_hash("bob@example.com"));
        assert!(!hash.contains("alice"));
    }
}
