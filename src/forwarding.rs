//! What an allow forwards besides a route's identity headers, fixed per configuration:
//! the headers portcullis manages (each set or removed on every allow), the payload
//! header, `strip_authorization`, the dynamic metadata fields and the signed identity's
//! minter. Built with the engine ([`crate::state`]) and read by [`crate::respond`].

use std::sync::Arc;

use crate::{
    config::{Config, MetadataFields},
    identity::Minter,
};

/// What allows on one configuration forward besides a route's identity headers.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// Every header any route may set (all routes' identity headers and the payload
    /// header): on each allow, each is either set or removed, so a client-sent copy never
    /// reaches the upstream.
    pub managed: Vec<String>,
    /// Header carrying the verified payload as base64url JSON.
    pub payload_header: Option<String>,
    /// Remove `authorization` before the upstream.
    pub strip_authorization: bool,
    /// Put the whole verified payload in the dynamic metadata.
    pub metadata_claims: bool,
    /// The identity fields the dynamic metadata carries.
    pub metadata: MetadataFields,
    /// Signs the identity the routes that want one send ([`crate::identity`]).
    pub identity: Option<Arc<Minter>>,
}

impl Forwarding {
    pub fn new(config: &Config) -> Forwarding {
        let mut managed: Vec<String> = Vec::new();
        let route_headers = config
            .all_routes()
            .filter_map(|r| r.identity_headers.as_ref());
        for mapping in std::iter::once(&config.identity_headers)
            .chain(route_headers)
            .flatten()
        {
            if !managed.contains(&mapping.header) {
                managed.push(mapping.header.clone());
            }
        }
        let identity = config
            .signed_identity
            .as_ref()
            .and_then(Minter::new)
            .map(Arc::new);
        for name in config
            .payload_header
            .iter()
            .chain(identity.as_ref().map(|m| m.header_name().to_owned()).iter())
        {
            if !managed.contains(name) {
                managed.push(name.clone());
            }
        }
        Forwarding {
            identity,
            managed,
            payload_header: config.payload_header.clone(),
            strip_authorization: config.strip_authorization,
            metadata_claims: config.metadata_claims,
            metadata: config.dynamic_metadata,
        }
    }
}
