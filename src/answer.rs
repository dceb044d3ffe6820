//! The Check answer as the gRPC server sends it: a `CheckResponse` built for this request,
//! or the bytes of one encoded for an earlier request with the same token on the same
//! route (see [`crate::memo`]). Both are the same message on the wire.

use prost::{
    DecodeError, Message,
    bytes::{Buf, BufMut, Bytes},
    encoding::{DecodeContext, WireType},
};

use crate::{
    jwt::VerifiedClaims,
    pb::auth::CheckResponse,
    policy::Route,
    respond::{self, Forwarding},
};

/// A `CheckResponse`, possibly already encoded.
// Boxing the built response would cost an allocation per answer to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Built(CheckResponse),
    Encoded(Bytes),
}

impl Answer {
    /// The response as a message (decoding it when it was sent encoded before).
    pub fn into_response(self) -> Result<CheckResponse, DecodeError> {
        match self {
            Answer::Built(response) => Ok(response),
            Answer::Encoded(bytes) => CheckResponse::decode(bytes),
        }
    }
}

impl From<CheckResponse> for Answer {
    fn from(response: CheckResponse) -> Self {
        Answer::Built(response)
    }
}

impl Default for Answer {
    fn default() -> Self {
        Answer::Built(CheckResponse::default())
    }
}

/// The allow for `claims` on `route`: remembered with the claims after the first time.
/// Only plain allows are remembered (an audited one carries its would-be reason).
pub fn allow(route: &Route, claims: &VerifiedClaims, forwarding: &Forwarding) -> Answer {
    if let Some(encoded) = claims.answers.get(route.id) {
        return Answer::Encoded(encoded);
    }
    let encoded =
        Bytes::from(respond::allow(route, Some(claims), forwarding, None).encode_to_vec());
    claims.answers.remember(route.id, encoded.clone());
    Answer::Encoded(encoded)
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
        auth::OkHttpResponse, auth::check_response::HttpResponse, google::rpc::Status,
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
