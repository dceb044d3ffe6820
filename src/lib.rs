//! portcullis: an Envoy external-authorization (ext_authz v3, gRPC) service that validates
//! bearer JWT access tokens and enforces per-route scope and app-role policy.
//!
//! # Layout
//! A Check flows through one module per step:
//! - [`server`]: tonic `Authorization` service, health, reflection; calls the pipeline.
//! - [`check`]: the pipeline, once: extract → route → verify → evaluate → respond.
//! - [`extract`]: `CheckRequest` → method, canonical host, path, credential, overrides.
//! - [`policy`]: the routes a request reaches under every reading ([`path`]) and their
//!   requirements.
//! - [`jwt`]: token verification; [`jwt::jwks`] keeps each issuer's keys.
//! - [`respond`]: decision → `CheckResponse` (identity headers, or 401/403 + challenge).
//! - [`deny`]: the typed deny reason and its status / challenge / label mappings.
//!
//! Around them: [`config`] (YAML → validated types), [`state`] (what Checks share),
//! [`http_check`] (Envoy's HTTP ext_authz mode on the same pipeline),
//! [`reload`] (watch the config file, swap engines), [`explain`] (`portcullis check`),
//! [`admin`] (HTTP `/readyz`, `/livez`, `/metrics`), [`metrics`] (Prometheus),
//! [`telemetry`] (logs, traces), [`tls`] (TLS/mTLS listener), [`demo`] (a self-contained identity provider and policy for
//! `portcullis demo` and the tests), [`pb`] (generated protobuf code).

pub mod admin;
pub mod answer;
pub mod check;
pub mod coalesce;
pub mod config;
pub mod demo;
pub mod deny;
pub mod explain;
pub mod extract;
pub mod http_check;
pub mod jwt;
pub mod memo;
pub mod metrics;
pub mod path;
pub mod pb;
pub mod policy;
pub mod reload;
pub mod respond;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
