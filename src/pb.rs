//! The generated protobuf and gRPC code, and nothing else: this is the only module that
//! includes output of `build.rs`, so lint exceptions for generated code live here alone.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `envoy.service.auth.v3`: the ext_authz `Authorization` service and its messages.
pub mod envoy {
    pub mod service {
        pub mod auth {
            pub mod v3 {
                tonic::include_proto!("envoy.service.auth.v3");
            }
        }
    }
    pub mod config {
        pub mod core {
            pub mod v3 {
                tonic::include_proto!("envoy.config.core.v3");
            }
        }
    }
    pub mod r#type {
        pub mod v3 {
            tonic::include_proto!("envoy.r#type.v3");
        }
    }
}

/// `google.rpc`: the `Status` carried in a `CheckResponse`.
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// The `envoy.service.auth.v3.Authorization` server as portcullis runs it: the same
/// route and messages on the wire, but Check answers with [`crate::answer::Answer`], so
/// that an answer encoded once can be sent again as it is. (The server in [`auth`] is the
/// plain generated one, for examples and tests.)
pub mod answering {
    include!(concat!(
        env!("OUT_DIR"),
        "/answering/envoy.service.auth.v3.Authorization.rs"
    ));
}

/// Encoded `FileDescriptorSet` of every proto above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portcullis_descriptor.bin"));

pub use envoy::config::core::v3 as core;
pub use envoy::service::auth::v3 as auth;
