use super::*;
use issuer::{check_lifetime, typ_accepted};
use serde_json::{Value, json};

#[test]
fn access_token_types_follow_rfc_9068() {
    /// (JOSE `typ`, the issuer's `require_typ`, accepted)
    type Case<'a> = (Option<&'a str>, Option<&'a [String]>, bool);
    let at = ["at+jwt".to_owned()];
    let cases: &[Case] = &[
        (None, None, true),
        (Some("JWT"), None, true),
        (Some("jwt"), None, true),
        (Some("at+jwt"), None, true),
        (Some("application/AT+JWT"), None, true),
        (Some("dpop+jwt"), None, false),
        (Some("logout+jwt"), None, false),
        (Some("secevent+jwt"), None, false),
        (Some("application/okta-internal-at+jwt"), None, false),
        (Some("at+jwt"), Some(&at), true),
        (Some("Application/At+Jwt"), Some(&at), true),
        (Some("JWT"), Some(&at), false),
        (None, Some(&at), false),
    ];
    for (typ, required, accepted) in cases {
        assert_eq!(
            typ_accepted(*typ, *required),
            *accepted,
            "{typ:?} with {required:?}"
        );
    }
}

#[test]
fn lifetime_boundaries_are_exclusive() {
    let claims = |v: Value| claims::Claims::from(v.as_object().cloned().unwrap());
    let now = 1_000_000;
    let cases = [
        (json!({"exp": now + 1}), 0, Ok(())),
        (json!({"exp": now}), 0, Err(DenyReason::Expired)),
        (json!({"exp": now - 60}), 60, Err(DenyReason::Expired)),
        (json!({"exp": now - 59}), 60, Ok(())),
        (json!({"exp": now as f64 + 0.5}), 0, Ok(())),
        (json!({"exp": now + 10, "iat": now + 60}), 60, Ok(())),
        (
            json!({"exp": now + 10, "iat": now + 61}),
            60,
            Err(DenyReason::NotYetValid),
        ),
        (
            json!({"exp": now + 10, "iat": "now"}),
            60,
            Err(DenyReason::MalformedToken),
        ),
    ];
    for (payload, leeway, expected) in cases {
        assert_eq!(
            check_lifetime(&claims(payload.clone()), now, leeway),
            expected,
            "{payload} leeway {leeway}"
        );
    }
}
