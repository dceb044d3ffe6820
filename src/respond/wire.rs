//! An allow written straight to the bytes Envoy reads: a `CheckResponse` with status OK,
//! an `OkHttpResponse` of header operations and `headers_to_remove`, and dynamic metadata.
//!
//! Building the `prost` message first would copy every header name and value into a
//! `String` of its own, and every metadata field into a map, only to encode and drop them;
//! written here from borrowed text with `prost`'s own field encoders, an allow is one
//! allocation of its exact size, cheap enough to write again for every Check rather than
//! keep with every cached token. Fields are numbered as in Envoy's
//! `envoy/service/auth/v3/external_auth.proto`, `envoy/config/core/v3/base.proto` and
//! `google/protobuf/struct.proto`; the tests decode what is written with the generated
//! types.

use std::borrow::Cow;

use prost::{
    bytes::Bytes,
    encoding::{WireType, encode_varint, encoded_len_varint, int32, key_len, message},
};
use prost_types::Value as PbValue;

use crate::pb::core::header_value_option::HeaderAppendAction;

/// `CheckResponse`: `status`, `ok_response`, `dynamic_metadata`.
const RESPONSE_STATUS: u32 = 1;
const RESPONSE_OK: u32 = 3;
const RESPONSE_METADATA: u32 = 4;
/// `OkHttpResponse`: `headers`, `headers_to_remove`.
const OK_HEADERS: u32 = 2;
const OK_HEADERS_TO_REMOVE: u32 = 5;
/// `HeaderValueOption`: `header`, `append_action`; `HeaderValue`: `key`, `value`.
const OPTION_HEADER: u32 = 1;
const OPTION_APPEND_ACTION: u32 = 3;
const HEADER_KEY: u32 = 1;
const HEADER_VALUE: u32 = 2;
/// `Struct`: `fields` (map entries: `key`, `value`); `Value`: `string_value`.
const STRUCT_FIELDS: u32 = 1;
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;
const VALUE_STRING: u32 = 3;

/// Every header is set replacing a client-sent copy, never appended to.
const OVERWRITE: i32 = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;

/// A header the upstream gets; name and value are never empty.
pub struct Header<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// A dynamic metadata field's value: text, or a message built by `prost` (lists, the
/// claims as a `Struct`).
pub enum Meta<'a> {
    Text(&'a str),
    Value(PbValue),
}

/// The encoded allow.
pub fn allow(headers: &[Header<'_>], removals: &[&str], metadata: &[(&str, Meta<'_>)]) -> Bytes {
    let ok = headers
        .iter()
        .map(|h| field_len(OK_HEADERS, h.option_len()))
        .chain(
            removals
                .iter()
                .map(|name| field_len(OK_HEADERS_TO_REMOVE, name.len())),
        )
        .sum();
    let fields: usize = metadata
        .iter()
        .map(|(key, value)| field_len(STRUCT_FIELDS, entry_len(key, value)))
        .sum();
    let mut buf = Vec::with_capacity(
        field_len(RESPONSE_STATUS, 0)
            + field_len(RESPONSE_OK, ok)
            + if metadata.is_empty() {
                0
            } else {
                field_len(RESPONSE_METADATA, fields)
            },
    );
    // `Status` with code OK and nothing else: an empty message.
    open(RESPONSE_STATUS, 0, &mut buf);
    open(RESPONSE_OK, ok, &mut buf);
    for header in headers {
        open(OK_HEADERS, header.option_len(), &mut buf);
        open(OPTION_HEADER, header.value_len(), &mut buf);
        text(HEADER_KEY, header.name, &mut buf);
        text(HEADER_VALUE, &header.value, &mut buf);
        varint(key(OPTION_APPEND_ACTION, WireType::Varint), &mut buf);
        varint(OVERWRITE as u64, &mut buf);
    }
    for name in removals {
        text(OK_HEADERS_TO_REMOVE, name, &mut buf);
    }
    if !metadata.is_empty() {
        open(RESPONSE_METADATA, fields, &mut buf);
        for (key, value) in metadata {
            open(STRUCT_FIELDS, entry_len(key, value), &mut buf);
            text(ENTRY_KEY, key, &mut buf);
            match value {
                Meta::Text(s) => {
                    open(ENTRY_VALUE, field_len(VALUE_STRING, s.len()), &mut buf);
                    text(VALUE_STRING, s, &mut buf);
                }
                Meta::Value(value) => message::encode(ENTRY_VALUE, value, &mut buf),
            }
        }
    }
    Bytes::from(buf)
}

impl Header<'_> {
    /// The `HeaderValue`'s length.
    fn value_len(&self) -> usize {
        field_len(HEADER_KEY, self.name.len()) + field_len(HEADER_VALUE, self.value.len())
    }

    /// The `HeaderValueOption`'s length.
    fn option_len(&self) -> usize {
        field_len(OPTION_HEADER, self.value_len())
            + int32::encoded_len(OPTION_APPEND_ACTION, &OVERWRITE)
    }
}

/// A metadata map entry's length.
fn entry_len(key: &str, value: &Meta<'_>) -> usize {
    field_len(ENTRY_KEY, key.len())
        + match value {
            Meta::Text(s) => field_len(ENTRY_VALUE, field_len(VALUE_STRING, s.len())),
            Meta::Value(value) => message::encoded_len(ENTRY_VALUE, value),
        }
}

/// The length of a length-delimited field holding `len` bytes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Starts a length-delimited field of `len` bytes.
fn open(tag: u32, len: usize, buf: &mut Vec<u8>) {
    varint(key(tag, WireType::LengthDelimited), buf);
    varint(len as u64, buf);
}

/// A field's key: its number and wire type.
fn key(tag: u32, wire_type: WireType) -> u64 {
    u64::from(tag << 3 | wire_type as u32)
}

/// A base-128 varint: one byte, written in place, for what almost every key and length
/// here is; `prost`'s encoder for the rest.
fn varint(value: u64, buf: &mut Vec<u8>) {
    match u8::try_from(value) {
        Ok(byte) if byte < 0x80 => buf.push(byte),
        _ => encode_varint(value, buf),
    }
}

fn text(tag: u32, text: &str, buf: &mut Vec<u8>) {
    open(tag, text.len(), buf);
    buf.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;
    use prost_types::{ListValue, Struct, value::Kind};

    use super::*;
    use crate::pb::{
        auth::{CheckResponse, OkHttpResponse, check_response::HttpResponse},
        core::{HeaderValue, HeaderValueOption},
        google::rpc::Status,
    };

    /// The message `allow` describes, built with the generated types.
    fn expected(
        headers: &[(String, String)],
        removals: &[String],
        metadata: &[(String, Option<String>)],
    ) -> CheckResponse {
        let value = |text: &Option<String>| PbValue {
            kind: Some(match text {
                Some(text) => Kind::StringValue(text.clone()),
                None => Kind::ListValue(ListValue {
                    values: vec![PbValue {
                        kind: Some(Kind::NumberValue(1.5)),
                    }],
                }),
            }),
        };
        CheckResponse {
            status: Some(Status::default()),
            dynamic_metadata: (!metadata.is_empty()).then(|| Struct {
                fields: metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), value(v)))
                    .collect(),
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: headers
                    .iter()
                    .map(|(key, value)| HeaderValueOption {
                        header: Some(HeaderValue {
                            key: key.clone(),
                            value: value.clone(),
                            raw_value: Vec::new(),
                        }),
                        append_action: OVERWRITE,
                        ..Default::default()
                    })
                    .collect(),
                headers_to_remove: removals.to_vec(),
                ..Default::default()
            })),
        }
    }

    proptest! {
        /// Whatever the lengths (one-, two- and three-byte length prefixes) and text,
        /// the bytes decode to the message the parts describe.
        #[test]
        fn what_is_written_decodes_to_the_answer_it_describes(
            headers in prop::collection::vec(("[a-z-]{1,20}", "\\PC{1,40}|x{100,20000}"), 0..6),
            removals in prop::collection::vec("[a-z-]{1,30}", 0..4),
            metadata in prop::collection::btree_map(
                "[a-z_]{1,12}",
                prop::option::of("\\PC{0,30}|y{100,300}"),
                0..5,
            ),
        ) {
            let metadata: Vec<(String, Option<String>)> = metadata.into_iter().collect();
            let written = allow(
                &headers
                    .iter()
                    .map(|(name, value)| Header { name, value: Cow::Borrowed(value) })
                    .collect::<Vec<_>>(),
                &removals.iter().map(String::as_str).collect::<Vec<_>>(),
                &metadata
                    .iter()
                    .map(|(key, text)| {
                        let value = match text {
                            Some(text) => Meta::Text(text),
                            None => Meta::Value(PbValue {
                                kind: Some(Kind::ListValue(ListValue {
                                    values: vec![PbValue { kind: Some(Kind::NumberValue(1.5)) }],
                                })),
                            }),
                        };
                        (key.as_str(), value)
                    })
                    .collect::<Vec<_>>(),
            );
            let expected = expected(&headers, &removals, &metadata);
            prop_assert_eq!(CheckResponse::decode(written.clone()).unwrap(), expected.clone());
            prop_assert_eq!(written.len(), expected.encoded_len());
        }
    }
}
