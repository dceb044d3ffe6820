//! The floors of the Envoy → authorizer gRPC hop in the benchmarks (`examples/bench.rs`):
//! - `zero_authz ADDR`: a zero-work ext_authz server, answering OK to every Check and
//!   doing nothing else;
//! - `zero_authz ADDR --verify JWK ISSUER AUDIENCE`: the naive verifying server, which
//!   does only the bare `jsonwebtoken` verification of each bearer token (RS256 with the
//!   one key `JWK`, issuer, audience and lifetime; no cache) and answers OK or 403.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use portcullis::pb::{
    auth::{
        CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
        authorization_server::{Authorization, AuthorizationServer},
        check_response::HttpResponse,
    },
    google::rpc::Status,
};
use tonic::{Request, Response};

struct Zero {
    verify: Option<(DecodingKey, Validation)>,
}

impl Zero {
    fn allows(&self, request: &CheckRequest) -> bool {
        let Some((key, validation)) = &self.verify else {
            return true;
        };
        // The header where Envoy puts it (`headers`, or `header_map` with raw values
        // under `encode_raw_headers`); the rest is as naive as it gets.
        let http = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let header = http.and_then(|http| match &http.header_map {
            Some(map) if http.headers.is_empty() => map
                .headers
                .iter()
                .find(|h| h.key.eq_ignore_ascii_case("authorization"))
                .and_then(|h| std::str::from_utf8(&h.raw_value).ok()),
            _ => http.headers.get("authorization").map(String::as_str),
        });
        let token = header.and_then(|v| v.strip_prefix("Bearer "));
        token.is_some_and(|token| {
            jsonwebtoken::decode::<serde_json::Value>(token, key, validation).is_ok()
        })
    }
}

#[tonic::async_trait]
impl Authorization for Zero {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, tonic::Status> {
        let response = if self.allows(request.get_ref()) {
            CheckResponse {
                status: Some(Status::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
                dynamic_metadata: None,
            }
        } else {
            CheckResponse {
                status: Some(Status {
                    code: tonic::Code::PermissionDenied as i32,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse::default())),
                dynamic_metadata: None,
            }
        };
        Ok(Response::new(response))
    }
}

type Error = Box<dyn std::error::Error>;

fn verification(args: &[String]) -> Result<Option<(DecodingKey, Validation)>, Error> {
    match args {
        [] => Ok(None),
        [flag, jwk, issuer, audience] if flag == "--verify" => {
            let jwk: Jwk = serde_json::from_str(jwk)?;
            let mut validation = Validation::new(Algorithm::RS256);
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            Ok(Some((DecodingKey::from_jwk(&jwk)?, validation)))
        }
        _ => Err("usage: zero_authz ADDR [--verify JWK ISSUER AUDIENCE]".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, rest) = args
        .split_first()
        .ok_or("usage: zero_authz ADDR [--verify JWK ISSUER AUDIENCE]")?;
    let zero = Zero {
        verify: verification(rest)?,
    };
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(zero))
        .serve(addr.parse()?)
        .await?;
    Ok(())
}
