//! A zero-work ext_authz server: answers OK to every Check, doing nothing else. The floor
//! of the Envoy → authorizer gRPC hop in the benchmarks (`examples/bench.rs`).
//! Usage: zero_authz 127.0.0.1:PORT

use portcullis::pb::{
    auth::{
        CheckRequest, CheckResponse, OkHttpResponse,
        authorization_server::{Authorization, AuthorizationServer},
        check_response::HttpResponse,
    },
    google::rpc::Status,
};
use tonic::{Request, Response};

struct Zero;

#[tonic::async_trait]
impl Authorization for Zero {
    async fn check(
        &self,
        _: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, tonic::Status> {
        Ok(Response::new(CheckResponse {
            status: Some(Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            dynamic_metadata: None,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: zero_authz ADDR")?
        .parse()?;
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Zero))
        .serve(addr)
        .await?;
    Ok(())
}
