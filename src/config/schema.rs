//! What the JSON Schema of the configuration says beyond the types the file is read into:
//! the words a field accepts (methods, algorithms, `sent`/`not_sent`…), the shape of a
//! duration and of a host, taken from the lists the validation itself uses, so that an
//! editor (yaml-language-server) refuses what `portcullis validate` refuses. Each is a
//! `#[schemars(transform = …)]` of a field of [`super::raw`].

use schemars::Schema;
use serde_json::{Value, json};

use super::{
    MetadataFields, RequestBody,
    words::{IdentityClaim, KNOWN_METHODS, ProofAlgorithm, SenderConstraint, StepUpChallenge},
};

/// `parse_duration`'s form: digits, optional decimals, a unit.
const DURATION: &str = r"^\s*[0-9]+(\.[0-9]+)?(ms|s|m|h)\s*$";
/// `host_match`'s form: a host name, or `*.` and one, no port.
const HOST: &str = r"^\s*(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\s*$";
/// The JWT algorithms an issuer may allow (never `none`).
const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// An optional string field (`{"type": ["string", "null"]}`) or the items of an optional
/// list (`{"type": ["array", "null"], "items": …}`): the place a constraint goes.
fn target(schema: &mut Schema) -> Option<&mut serde_json::Map<String, Value>> {
    let object = schema.as_object_mut()?;
    if object.contains_key("items") {
        return object.get_mut("items").and_then(Value::as_object_mut);
    }
    Some(object)
}

fn one_of(schema: &mut Schema, words: impl IntoIterator<Item = String>) {
    let mut words: Vec<Value> = words.into_iter().map(Value::String).collect();
    if let Some(target) = target(schema) {
        if target
            .get("type")
            .is_some_and(|t| t.to_string().contains("null"))
        {
            words.push(Value::Null);
        }
        target.insert("enum".into(), Value::Array(words));
    }
}

fn pattern(schema: &mut Schema, regex: &str) {
    if let Some(target) = target(schema) {
        target.insert("pattern".into(), json!(regex));
    }
}

fn words(list: &[&str]) -> impl Iterator<Item = String> {
    list.iter().map(|w| (*w).to_owned())
}

pub fn duration(schema: &mut Schema) {
    pattern(schema, DURATION);
}

pub fn hosts(schema: &mut Schema) {
    pattern(schema, HOST);
}

/// Methods, in either case (they are compared upper-cased).
pub fn methods(schema: &mut Schema) {
    one_of(
        schema,
        KNOWN_METHODS
            .iter()
            .flat_map(|m| [(*m).to_owned(), m.to_ascii_lowercase()]),
    );
}

pub fn jwt_algorithms(schema: &mut Schema) {
    one_of(schema, words(JWT_ALGORITHMS));
}

pub fn proof_algorithms(schema: &mut Schema) {
    one_of(
        schema,
        ProofAlgorithm::ALL.iter().map(|a| a.name().to_owned()),
    );
}

pub fn sender_constraint(schema: &mut Schema) {
    one_of(
        schema,
        SenderConstraint::ALL.iter().map(|c| c.as_str().to_owned()),
    );
}

pub fn token_kind(schema: &mut Schema) {
    one_of(schema, words(&["any", "delegated", "app"]));
}

pub fn request_body(schema: &mut Schema) {
    one_of(schema, words(RequestBody::NAMES));
}

pub fn replay_store(schema: &mut Schema) {
    one_of(schema, words(&["memory", "redis"]));
}

pub fn http_dialect(schema: &mut Schema) {
    one_of(schema, words(&["envoy", "nginx", "forwarded"]));
}

pub fn scope_claim(schema: &mut Schema) {
    one_of(schema, words(&["scp", "scope"]));
}

pub fn identity_claims(schema: &mut Schema) {
    one_of(schema, words(&IdentityClaim::NAMES));
}

pub fn step_up_challenge(schema: &mut Schema) {
    one_of(schema, words(&StepUpChallenge::NAMES));
}

/// Entra authentication context IDs, `c1` to `c99`.
pub fn auth_contexts(schema: &mut Schema) {
    pattern(schema, r"^c([1-9]|[1-9][0-9])$");
}

pub fn metadata_fields(schema: &mut Schema) {
    one_of(schema, words(&MetadataFields::NAMES));
}
