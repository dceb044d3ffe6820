//! Traces: the real binary exports a span per Check over OTLP/gRPC to a real OTLP trace
//! receiver on loopback (the `opentelemetry-proto` tonic service), continuing the trace
//! id the caller propagated, with a child span for the JWKS fetch the Check caused.

mod common;

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
};

use common::{ChildGuard, check_request, free_port};
use jsonwebtoken::Algorithm;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{authorization_client::AuthorizationClient, check_response::HttpResponse},
};
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Every span received: (name, hex trace id).
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let trace_id: String =
                        span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    spans.push((span.name, trace_id));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_is_a_span_in_the_callers_trace_with_its_jwks_fetch() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(receiver.clone());
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let config = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("otel-{}.yaml", free_port()));
    std::fs::write(
        &config,
        demo::demo_config_yaml(&issuer, grpc.parse().unwrap()),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args([
            "serve",
            "--admin-listen",
            &admin,
            "--otlp-endpoint",
            &format!("http://{otlp}"),
            "--config",
        ])
        .arg(&config)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = ChildGuard(child);
    common::wait_until_ok(&format!("http://{admin}/readyz")).await;

    // A rotated key: verifying its token fetches the JWKS inside the Check.
    let rotated = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    issuer.publish(&[&key, &rotated]);
    let token = rotated
        .sign(&demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        ))
        .unwrap();
    let mut request = Request::new(check_request(
        "GET",
        "/api/orders",
        &[("authorization", &format!("Bearer {token}"))],
    ));
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let mut client = AuthorizationClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let response = client.check(request).await.unwrap().into_inner();
    assert!(matches!(
        response.http_response,
        Some(HttpResponse::OkResponse(_))
    ));

    let in_trace = |name: &str| {
        receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .any(|(n, trace)| n == name && trace == TRACE_ID)
    };
    common::wait_for(|| in_trace("check") && in_trace("jwks_fetch")).await;
    collector.abort();
}
