//! The structural checks a bearer token passes before any key is looked up: a size limit,
//! exactly three base64url segments (so no JWE, no unsigned `x.y.`), a header and payload
//! that are JSON objects without duplicate keys (a parser differential would let two
//! readers see different claims), no JOSE extension this service does not implement
//! (`crit`, `b64`, `zip`, `enc`, `cty`), and `exp`/`nbf` of the right type. What passes is
//! only well-formed — signature and claims are checked by `jwt::verify` afterwards, which
//! uses the claims read here: each segment is decoded and read once.

use std::{borrow::Cow, fmt};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::Header;
use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Number, Value};

use super::claims::{Claim, Claims, Member};
use crate::deny::DenyReason;

/// JOSE header parameters whose meaning this service does not implement: a token (or a
/// DPoP proof) using them is refused rather than read the wrong way. `cty` says the payload
/// is something else — `JWT`: a nested token (RFC 7519 §5.2, §7.2) — never an access
/// token's claims.
pub(crate) const REFUSED_HEADER_PARAMETERS: &[&str] = &["crit", "b64", "zip", "enc", "cty"];

/// A structurally valid token: its header, its `iss` and every claim of its payload, read
/// once (not yet verified: the signature is checked by the issuer's key afterwards).
#[derive(Debug)]
pub struct ParsedToken {
    pub header: Header,
    pub iss: String,
    pub claims: Claims,
}

/// Checks `token`'s structure and reads its header and claims.
pub fn parse(token: &str, max_bytes: usize) -> Result<ParsedToken, DenyReason> {
    if token.len() > max_bytes {
        return Err(DenyReason::TokenTooLarge);
    }
    let [header, payload, _signature] = segments(token).ok_or(DenyReason::MalformedToken)?;
    let raw_header = decode_object(header)?;
    let claims = decode_claims(payload)?;
    if REFUSED_HEADER_PARAMETERS
        .iter()
        .any(|p| raw_header.contains_key(*p))
    {
        return Err(DenyReason::MalformedToken);
    }
    let header: Header = serde_json::from_value(Value::Object(raw_header))
        .map_err(|_| DenyReason::MalformedToken)?;
    // jsonwebtoken treats an unparsable time claim as absent: report it as malformed.
    if ["exp", "nbf"].iter().any(|t| {
        claims
            .get(t)
            .is_some_and(|v| !matches!(v, Claim::Json(Value::Number(_))))
    }) {
        return Err(DenyReason::MalformedToken);
    }
    let iss = match claims.get("iss") {
        Some(Claim::Text(iss)) => iss.to_owned(),
        Some(_) => return Err(DenyReason::MalformedToken),
        None => return Err(DenyReason::MissingClaim),
    };
    Ok(ParsedToken {
        header,
        iss,
        claims,
    })
}

/// The three non-empty segments of a compact JWS (`header.payload.signature`), or `None`
/// for anything else (a JWE's five, an unsigned `x.y.`).
pub(crate) fn segments(jws: &str) -> Option<[&str; 3]> {
    let mut parts = jws.split('.');
    let segments = [parts.next()?, parts.next()?, parts.next()?];
    (parts.next().is_none() && segments.iter().all(|s| !s.is_empty())).then_some(segments)
}

/// The JSON object a base64url (no padding) segment holds, read in one pass that fails
/// on an object repeating a key at any depth.
pub(crate) fn decode_object(segment: &str) -> Result<Map<String, Value>, DenyReason> {
    let bytes = object_bytes(segment)?;
    match serde_json::from_slice::<Unique>(&bytes) {
        Ok(Unique(Value::Object(object))) => Ok(object),
        _ => Err(DenyReason::MalformedToken),
    }
}

/// The bytes a base64url (no padding) segment holds, which must start a JSON object.
fn object_bytes(segment: &str) -> Result<Vec<u8>, DenyReason> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DenyReason::MalformedToken)?;
    if bytes.first() != Some(&b'{') {
        return Err(DenyReason::MalformedToken);
    }
    Ok(bytes)
}

/// The claim set a base64url (no padding) payload holds, read in the same one pass:
/// members go straight into the [`Claims`] kept for the token (string values borrowed from
/// the decoded bytes where they have no escapes), and a repeated name at any depth fails.
fn decode_claims(segment: &str) -> Result<Claims, DenyReason> {
    let bytes = object_bytes(segment)?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let members = json
        .deserialize_map(MembersVisitor)
        .and_then(|members| json.end().map(|()| members))
        .map_err(|_| DenyReason::MalformedToken)?;
    Claims::from_members(members).ok_or(DenyReason::MalformedToken)
}

/// The members of the payload object, in the order written (duplicates are found when
/// they are sorted into a [`Claims`]).
struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, Member<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(name) = map.next_key_seed(Text)? {
            members.push((name, map.next_value_seed(MemberSeed)?));
        }
        Ok(members)
    }
}

/// A string, borrowed from the input unless it had to be unescaped.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// A member's value: a string as [`Text`] reads it, anything else as [`Unique`] does.
struct MemberSeed;

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        UniqueVisitor.expecting(f)
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        TextVisitor.visit_borrowed_str(s).map(Member::Text)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        TextVisitor.visit_str(s).map(Member::Text)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        TextVisitor.visit_string(s).map(Member::Text)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        UniqueVisitor.visit_bool(b).map(Member::from)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        UniqueVisitor.visit_i64(n).map(Member::from)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        UniqueVisitor.visit_u64(n).map(Member::from)
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        UniqueVisitor.visit_f64(n).map(Member::from)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        UniqueVisitor.visit_unit().map(Member::from)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        UniqueVisitor.visit_seq(seq).map(Member::from)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        UniqueVisitor.visit_map(map).map(Member::from)
    }
}

/// A JSON value read as `serde_json::Value` reads it, except that an object repeating a
/// key is an error rather than its last member winning.
struct Unique(Value);

impl From<Unique> for Member<'_> {
    fn from(Unique(value): Unique) -> Self {
        Member::Json(value)
    }
}

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object keys")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Unique, E> {
        Ok(Unique(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Unique, E> {
        Ok(Unique(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Unique, E> {
        Ok(Unique(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Unique, E> {
        Ok(Unique(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, s: &str) -> Result<Unique, E> {
        Ok(Unique(Value::String(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Unique, E> {
        Ok(Unique(Value::String(s)))
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Unique(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Unique(Value::Object(object)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    const HEADER: &str = r#"{"alg":"RS256","kid":"k"}"#;
    const PAYLOAD: &str = r#"{"iss":"https://idp/","exp":1}"#;

    #[test]
    fn well_formed_tokens_yield_header_and_issuer() {
        let parsed = parse(&token(HEADER, PAYLOAD), 1024).unwrap();
        assert_eq!(parsed.iss, "https://idp/");
        assert_eq!(
            serde_json::to_value(&parsed.claims).unwrap(),
            serde_json::json!({"iss": "https://idp/", "exp": 1})
        );
        assert_eq!(parsed.header.kid.as_deref(), Some("k"));
    }

    #[test]
    fn structure_and_encoding_faults_are_malformed() {
        let good = token(HEADER, PAYLOAD);
        let cases = [
            format!("{good}.extra.segments"),
            "a.b".to_owned(),
            format!("{}.{}.", b64(HEADER), b64(PAYLOAD)),
            format!("{}=.{}.c2ln", b64(HEADER), b64(PAYLOAD)),
            format!("{}.{}.c2ln", b64(HEADER), "!!!"),
            token(r#"{"alg":"none"}"#, PAYLOAD),
            token(r#"{"alg":"RS256","alg":"HS256"}"#, PAYLOAD),
            token(HEADER, r#"{"iss":"https://idp/","iss":"https://evil/"}"#),
            token(HEADER, r#"{"iss":"https://idp/","x":{"a":1,"a":2}}"#),
            token(HEADER, r#"{"iss":"https://idp/","x":[{"a":1,"a":2}]}"#),
            // The same name once escaped: a repeat all the same.
            token(
                HEADER,
                r#"{"iss":"https://idp/","i\u0073s":"https://evil/"}"#,
            ),
            token(HEADER, r#"{"iss":"https://idp/"} {}"#),
            token(HEADER, r#"{"iss":"https://idp/"}x"#),
            token(r#"{"alg":"RS256","crit":["exp"]}"#, PAYLOAD),
            token(r#"{"alg":"RS256","b64":false}"#, PAYLOAD),
            token(r#"{"alg":"RS256","zip":"DEF"}"#, PAYLOAD),
            // A nested token (RFC 7519 §7.2): its payload is another token, not claims.
            token(r#"{"alg":"RS256","cty":"JWT"}"#, PAYLOAD),
            token(HEADER, r#"{"iss":"https://idp/","exp":"soon"}"#),
            token(HEADER, r#"["not","an","object"]"#),
            token(HEADER, r#"{"iss":7}"#),
            format!(
                "{}.{}.c2ln",
                b64(HEADER),
                URL_SAFE_NO_PAD.encode([0xff, 0xfe, b'{'])
            ),
        ];
        for bad in cases {
            assert_eq!(
                parse(&bad, 4096).unwrap_err(),
                DenyReason::MalformedToken,
                "{bad}"
            );
        }
        assert_eq!(
            parse(&token(HEADER, r#"{"sub":"x"}"#), 4096).unwrap_err(),
            DenyReason::MissingClaim
        );
    }

    #[test]
    fn escaped_names_and_values_read_as_the_text_they_stand_for() {
        let parsed = parse(
            &token(
                HEADER,
                r#"{"i\u0073s":"https://idp/","sub":"a\"b\\c\u00e9","long_name_\u00e9":"\n","n":1.5}"#,
            ),
            4096,
        )
        .unwrap();
        assert_eq!(parsed.iss, "https://idp/");
        assert_eq!(
            serde_json::to_value(&parsed.claims).unwrap(),
            serde_json::json!({"iss": "https://idp/", "sub": "a\"b\\c\u{e9}", "long_name_\u{e9}": "\n", "n": 1.5})
        );
    }

    /// `text` as a JSON string, each character escaped (`\\uXXXX`, surrogate pairs beyond
    /// the BMP) when `escape` says so, else as `serde_json` writes it.
    fn json_string(text: &str, escape: bool) -> String {
        if !escape {
            return serde_json::to_string(text).unwrap();
        }
        let mut units = [0u16; 2];
        let escaped: String = text
            .chars()
            .flat_map(|c| c.encode_utf16(&mut units).to_vec())
            .map(|unit| format!("\\u{unit:04x}"))
            .collect();
        format!("\"{escaped}\"")
    }

    proptest::proptest! {
        /// The claim set read from a payload is its JSON object member for member, however
        /// names and values are escaped; a name written twice (escaped or not) is refused.
        #[test]
        fn payloads_read_as_their_object_and_repeated_names_are_refused(
            members in proptest::collection::vec(
                ("\\PC{0,10}", proptest::option::of("\\PC{0,8}"), proptest::bool::ANY, proptest::bool::ANY),
                0..16,
            ),
        ) {
            let written: Vec<String> = members
                .iter()
                .map(|(name, text, escape_name, escape_value)| {
                    let value = text
                        .as_ref()
                        .map_or(format!("[{}]", name.len()), |t| json_string(t, *escape_value));
                    format!("{}:{value}", json_string(name, *escape_name))
                })
                .collect();
            let payload = format!("{{{}}}", written.join(","));
            let read = decode_claims(&b64(&payload));
            let mut names: Vec<&String> = members.iter().map(|(name, ..)| name).collect();
            names.sort();
            names.dedup();
            if names.len() < members.len() {
                proptest::prop_assert_eq!(read, Err(DenyReason::MalformedToken));
            } else {
                let expected: Value = serde_json::from_str(&payload).unwrap();
                proptest::prop_assert_eq!(serde_json::to_value(read.unwrap()).unwrap(), expected);
            }
        }
    }

    #[test]
    fn oversized_tokens_are_refused_before_decoding() {
        let big = token(
            HEADER,
            &format!(r#"{{"iss":"i","pad":"{}"}}"#, "x".repeat(2000)),
        );
        assert_eq!(parse(&big, 1024).unwrap_err(), DenyReason::TokenTooLarge);
    }
}
