//! A verified token's claim set as it is kept: held by every cached token and never
//! changed after verification, so laid out for size, not for insertion. A
//! `serde_json::Map` (a B-tree with nodes of eleven slots, a `String` per name and per
//! string value) costs about three times as much for a typical access token's twelve
//! claims; here every string value (and every name too long to be kept inline) is kept end
//! to end in one string, and the claims in one boxed slice that points into it, so a
//! token's claims are two allocations. Arrays, objects, numbers and booleans stay
//! `serde_json::Value`s.
//!
//! Names are unique (members repeating one make no claim set: the token is refused) and
//! sorted by length, then by their bytes. A name of up to seven bytes — `iss`, `sub`,
//! `scp`, `tid`, `azp`, most of them — is kept in a word of its own that compares in that
//! order, so looking one up is a binary search over integers, run for several claims on
//! every Check. The token reader builds the set straight from the payload's members.

use std::{borrow::Cow, cmp::Ordering};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The claims of one token, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// Every string value and long name, end to end.
    text: Box<str>,
    sorted: Box<[(Name, Kept)]>,
}

/// Where a string value or long name is in [`Claims::text`]: start and end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span(u32, u32);

/// A claim's name as kept: one of up to [`SHORT`] bytes in the word itself — its length in
/// the top byte, then its bytes, so that two words compare as [`order`] compares the
/// names — and a longer one as its [`Span`], with the top bit set: after every short name,
/// as its length puts it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Name(u64);

const SHORT: usize = 7;
const LONG: u64 = 1 << 63;

impl Name {
    fn short(name: &[u8]) -> Option<Name> {
        let mut word = [0u8; 8];
        word[0] = u8::try_from(name.len())
            .ok()
            .filter(|len| usize::from(*len) <= SHORT)?;
        word.get_mut(1..=name.len())?.copy_from_slice(name);
        Some(Name(u64::from_be_bytes(word)))
    }

    fn long(Span(start, end): Span) -> Name {
        Name(LONG | u64::from(start) << 32 | u64::from(end))
    }

    fn span(self) -> Option<Span> {
        (self.0 & LONG != 0).then_some(Span(((self.0 & !LONG) >> 32) as u32, self.0 as u32))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kept {
    Text(Span),
    Json(Value),
}

/// One claim's value: a string, or any other JSON value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Claim<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl Claims {
    /// The claim called `name`.
    pub fn get(&self, name: &str) -> Option<Claim<'_>> {
        let sought = Name::short(name.as_bytes());
        let i = self
            .sorted
            .binary_search_by(|(kept, _)| match (sought, kept.span()) {
                (Some(short), _) => kept.0.cmp(&short.0),
                (None, None) => Ordering::Less,
                (None, Some(span)) => order(self.bytes(span), name.as_bytes()),
            })
            .ok()?;
        self.sorted.get(i).map(|(_, value)| self.claim(value))
    }

    /// Every claim, in the order kept (by length of name, then name).
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Claim<'_>)> {
        self.sorted
            .iter()
            .map(|(name, value)| (self.name(*name), self.claim(value)))
    }

    fn claim<'a>(&'a self, value: &'a Kept) -> Claim<'a> {
        match value {
            Kept::Text(span) => Claim::Text(self.str(*span)),
            Kept::Json(value) => Claim::Json(value),
        }
    }

    fn name(&self, name: Name) -> Cow<'_, str> {
        match name.span() {
            Some(span) => Cow::Borrowed(self.str(span)),
            None => {
                let [len, bytes @ ..] = name.0.to_be_bytes();
                let bytes = bytes.get(..usize::from(len)).unwrap_or_default();
                Cow::Owned(std::str::from_utf8(bytes).unwrap_or_default().to_owned())
            }
        }
    }

    fn bytes(&self, Span(start, end): Span) -> &[u8] {
        let text = self.text.as_bytes();
        text.get(start as usize..end as usize).unwrap_or_default()
    }

    fn str(&self, Span(start, end): Span) -> &str {
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }
}

impl<'a> Claim<'a> {
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Claim::Text(text) => Some(text),
            Claim::Json(_) => None,
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        self.json()?.as_f64()
    }

    pub fn as_u64(self) -> Option<u64> {
        self.json()?.as_u64()
    }

    /// The value as text: a string as it is, a number or boolean printed; `None` for any
    /// other type.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Claim::Text(s) => Some(Cow::Borrowed(s)),
            Claim::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Claim::Json(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
            Claim::Json(_) => None,
        }
    }

    /// The value as a JSON value of its own.
    pub fn to_value(self) -> Value {
        match self {
            Claim::Text(text) => Value::from(text),
            Claim::Json(value) => value.clone(),
        }
    }

    fn json(self) -> Option<&'a Value> {
        match self {
            Claim::Json(value) => Some(value),
            Claim::Text(_) => None,
        }
    }
}

/// The order names are kept in: by length, then byte by byte — a loop, not a call to
/// `memcmp`, for names that are mostly three bytes long.
fn order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        a.iter()
            .zip(b)
            .find(|(x, y)| x != y)
            .map_or(Ordering::Equal, |(x, y)| x.cmp(y))
    })
}

/// One member of the JSON object a claim set is made of, as the token reader hands it
/// over: a string value borrowed from the token where it has no escapes.
#[derive(Debug)]
pub enum Member<'a> {
    Text(Cow<'a, str>),
    Json(Value),
}

impl Claims {
    /// The claim set of a JSON object's `members`; `None` when a name is repeated.
    pub fn from_members(mut members: Vec<(Cow<'_, str>, Member<'_>)>) -> Option<Claims> {
        members.sort_unstable_by(|(a, _), (b, _)| order(a.as_bytes(), b.as_bytes()));
        if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        let long = |name: &str| if name.len() > SHORT { name.len() } else { 0 };
        let size = members.iter().map(|(name, value)| {
            long(name)
                + match value {
                    Member::Text(text) => text.len(),
                    Member::Json(_) => 0,
                }
        });
        let mut text = String::with_capacity(size.sum());
        // One token's text never comes near 4 GiB: a Check's size is bounded.
        let mut keep = |part: &str| {
            let start = u32::try_from(text.len()).unwrap_or(u32::MAX);
            text.push_str(part);
            Span(start, u32::try_from(text.len()).unwrap_or(u32::MAX))
        };
        // A slice of its own, the exact size: collected from `members` it would reuse (and
        // shrink) their larger allocation, leaving a hole beside every cached token.
        let mut sorted = Vec::with_capacity(members.len());
        for (name, value) in members {
            let name = Name::short(name.as_bytes()).unwrap_or_else(|| Name::long(keep(&name)));
            let value = match value {
                Member::Text(s) => Kept::Text(keep(&s)),
                Member::Json(other) => Kept::Json(other),
            };
            sorted.push((name, value));
        }
        Some(Claims {
            text: text.into_boxed_str(),
            sorted: sorted.into_boxed_slice(),
        })
    }
}

/// A JSON object's members, whose names are unique.
impl From<Map<String, Value>> for Claims {
    fn from(map: Map<String, Value>) -> Claims {
        let members = map.into_iter().map(|(name, value)| {
            let value = match value {
                Value::String(s) => Member::Text(Cow::Owned(s)),
                other => Member::Json(other),
            };
            (Cow::Owned(name), value)
        });
        Claims::from_members(members.collect()).unwrap_or_default()
    }
}

/// As the JSON object it was read from.
impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.sorted.len()))?;
        for (name, value) in self.iter() {
            match value {
                Claim::Text(text) => map.serialize_entry(&name, text)?,
                Claim::Json(value) => map.serialize_entry(&name, value)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        let Value::Object(map) = value else {
            unreachable!("an object")
        };
        Claims::from(map)
    }

    #[test]
    fn every_claim_is_found_by_its_exact_name_and_no_other() {
        let names = [
            "aud",
            "exp",
            "iss",
            "scp",
            "sub",
            "tid",
            "x-5",
            "é",
            "Sub",
            "a",
            "long_name",
            "seven77",
            "eight888",
            "",
        ];
        let set = claims(Value::Object(
            names.iter().map(|n| (n.to_string(), json!(n))).collect(),
        ));
        assert_eq!(set.iter().count(), names.len());
        for name in names {
            assert_eq!(set.get(name), Some(Claim::Text(name)), "{name}");
        }
        for absent in [
            "su",
            "subb",
            "seven7",
            "eight88",
            "eight8888",
            "SUB",
            "b",
            "zzz",
            "e\u{301}",
            "long_namf",
        ] {
            assert_eq!(set.get(absent), None, "{absent}");
        }
    }

    proptest::proptest! {
        /// Whatever the names (short, long, multi-byte, prefixes of one another), each is
        /// found with its own value and a name not among them is not found.
        #[test]
        fn lookups_find_exactly_the_claims_read(
            members in proptest::collection::btree_map("\\PC{0,12}", proptest::option::of("\\PC{0,8}"), 0..24),
            absent in "\\PC{0,12}",
        ) {
            let object: Map<String, Value> = members
                .iter()
                .map(|(name, text)| (name.clone(), text.as_ref().map_or(json!(name.len()), |t| json!(t))))
                .collect();
            let set = Claims::from(object.clone());
            for (name, value) in &object {
                let found = set.get(name).map(Claim::to_value);
                proptest::prop_assert_eq!(found.as_ref(), Some(value));
            }
            if !object.contains_key(&absent) {
                proptest::prop_assert_eq!(set.get(&absent), None);
            }
            proptest::prop_assert_eq!(serde_json::to_value(&set).unwrap(), Value::Object(object));
        }
    }

    #[test]
    fn values_keep_their_json_type() {
        let set = claims(json!({
            "s": "text", "e": "", "n": 1.5, "i": 7, "b": true, "z": null,
            "l": ["x", 1], "o": {"jkt": "t"}, "u": "ünï"
        }));
        assert_eq!(set.get("s").and_then(Claim::as_str), Some("text"));
        assert_eq!(set.get("e").and_then(Claim::as_str), Some(""));
        assert_eq!(set.get("u").and_then(Claim::as_str), Some("ünï"));
        assert_eq!(set.get("n").and_then(Claim::as_f64), Some(1.5));
        assert_eq!(set.get("i").and_then(Claim::as_u64), Some(7));
        assert_eq!(set.get("i").and_then(Claim::as_str), None);
        assert_eq!(set.get("s").and_then(Claim::as_f64), None);
        assert_eq!(set.get("b"), Some(Claim::Json(&json!(true))));
        assert_eq!(set.get("z"), Some(Claim::Json(&Value::Null)));
        assert_eq!(set.get("l"), Some(Claim::Json(&json!(["x", 1]))));
        assert_eq!(set.get("o").map(Claim::to_value), Some(json!({"jkt": "t"})));
        assert_eq!(set.get("u").map(Claim::to_value), Some(json!("ünï")));
    }

    #[test]
    fn serialises_as_the_object_it_was_read_from() {
        let object = json!({"sub": "s", "scp": "a b", "cnf": {"jkt": "t"}, "n": 1.5, "l": [1, "x"], "preferred_username": "u"});
        let set = claims(object.clone());
        assert_eq!(serde_json::to_value(&set).unwrap(), object);
        assert_eq!(
            set.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["l", "n", "cnf", "scp", "sub", "preferred_username"]
        );
        assert_eq!(claims(json!({})).iter().count(), 0);
    }
}
