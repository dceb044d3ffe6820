//! The generated protobuf and gRPC code, and the one hand-written wire type the generated
//! server answers with ([`Answer`]): this is the only module that includes output of
//! `build.rs`, so lint exceptions for generated code live here alone.

use prost::{
    DecodeError, Message,
    bytes::{Buf, BufMut, Bytes},
    encoding::{DecodeContext, WireType},
};

/// `envoy.service.auth.v3`: the ext_authz `Authorization` service and its messages.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
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
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// The `envoy.service.auth.v3.Authorization` server as portcullis runs it: the same
/// route and messages on the wire, but Check answers with [`Answer`], so that an answer
/// encoded once can be sent again as it is. (The server in [`auth`] is the plain
/// generated one, for examples and tests.)
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub(crate) mod answering {
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

// === The answer on the wire ===

/// A `CheckResponse` built for this request, or its bytes: an allow written straight to
/// them (`crate::respond`), or an answer kept from an earlier request (`crate::jwt::memo`,
/// `crate::state::KeptDenies`): the same message on the wire.
// Boxing the built response would cost an allocation per answer to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Built(auth::CheckResponse),
    Encoded(Bytes),
}

impl Answer {
    /// The response as a message (decoding it when it was sent encoded before).
    pub fn into_response(self) -> Result<auth::CheckResponse, DecodeError> {
        match self {
            Answer::Built(response) => Ok(response),
            Answer::Encoded(bytes) => auth::CheckResponse::decode(bytes),
        }
    }
}

impl From<auth::CheckResponse> for Answer {
    fn from(response: auth::CheckResponse) -> Self {
        Answer::Built(response)
    }
}

impl Default for Answer {
    fn default() -> Self {
        Answer::Built(auth::CheckResponse::default())
    }
}

/// Encodes as the `CheckResponse` it is; decodes into a built one.
impl Message for Answer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            Answer::Built(response) => response.encode_raw(buf),
            Answer::Encoded(bytes) => buf.put_slice(bytes),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut response = std::mem::take(self).into_response()?;
        let merged = response.merge_field(tag, wire_type, buf, ctx);
        *self = Answer::Built(response);
        merged
    }

    fn encoded_len(&self) -> usize {
        match self {
            Answer::Built(response) => response.encoded_len(),
            Answer::Encoded(bytes) => bytes.len(),
        }
    }

    fn clear(&mut self) {
        *self = Answer::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{
        auth::{CheckResponse, OkHttpResponse, check_response::HttpResponse},
        google::rpc::Status,
    };

    fn response() -> CheckResponse {
        CheckResponse {
            status: Some(Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers_to_remove: vec!["x-sub".into()],
                ..Default::default()
            })),
            dynamic_metadata: None,
        }
    }

    #[test]
    fn built_and_encoded_answers_are_the_same_bytes_and_decode_back() {
        let built = Answer::Built(response());
        let encoded = Answer::Encoded(Bytes::from(response().encode_to_vec()));
        assert_eq!(built.encode_to_vec(), encoded.encode_to_vec());
        assert_eq!(built.encoded_len(), encoded.encoded_len());
        let decoded = Answer::decode(encoded.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.into_response().unwrap(), response());
        assert_eq!(encoded.into_response().unwrap(), response());
    }
}
