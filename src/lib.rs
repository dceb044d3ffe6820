//! portcullis: an Envoy external-authorization (ext_authz v3) service that validates
//! bearer JWT access tokens and enforces per-route scope and app-role policy.
//!
//! # Layout
//! A Check's way through the code, top to bottom:
//! - [`server`]: the fronts and the process — gRPC (TCP, TLS, Unix socket), HTTP checks
//!   in Envoy's, nginx's and Caddy/Traefik's dialects, the admin port; binding, config
//!   and certificate reloads, shutdown; one decision event per Check.
//! - [`check`]: the pipeline, once: `decide(engine, &CheckRequest) -> Verdict`.
//!   1. `extract`: the request in one visit — method, canonical host, path, access
//!      token and its scheme, DPoP proof, client certificate, method override, request
//!      id, trace context.
//!   2. `policy`: the routes the request reaches under every reading an upstream may
//!      give it (`path`: canonical form and readings; [`upstream`]: the catalogue of
//!      readings, by framework).
//!   3. `jwt`: token verification; key caches per JWKS URL; the verified-token cache
//!      and the answers memoised with it. Then `binding`: a bound token's DPoP proof or
//!      client certificate, on every request.
//!   4. `policy` again: whether the claims satisfy every route reached.
//!   5. `respond`: the one way from a verdict to the answer Envoy applies; `deny` is the
//!      typed reason and its status / challenge / label mappings.
//! - [`explain`]: formats a verdict for `portcullis check` (no pipeline of its own).
//!
//! Around them: [`config`] (YAML → validated types), [`state`] (what Checks share:
//! [`state::AppState`], the current [`state::Engine`]), `metrics` (Prometheus),
//! [`telemetry`] (logs, traces), [`demo`] (a self-contained identity provider and
//! policy for `portcullis demo` and the tests), [`pb`] (generated protobuf code and the
//! answer's wire type).

mod binding;
pub mod check;
pub mod config;
pub mod demo;
mod deny;
pub mod explain;
mod extract;
mod forwarding;
mod identity;
mod jwt;
mod metrics;
mod path;
pub mod pb;
mod policy;
mod respond;
pub mod server;
pub mod state;
pub mod suite;
pub mod telemetry;
pub mod upstream;

pub use deny::DenyReason;

/// What the fuzz targets (`fuzz/`, built with `--cfg fuzzing`) drive directly: the
/// parsers that see untrusted input.
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use crate::{
        binding::{fuzz_proof as dpop_proof, normalize_htu},
        check::model::lenient_paths,
        extract::credential,
        jwt::KeySet,
        jwt::token::parse as parse_token,
        path::normalize_path,
        policy::Policy,
    };
}
