use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::*;

fn claims(value: Value, form: StepUpChallenge) -> VerifiedClaims {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    let mut claims = VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap();
    claims.step_up_challenge = form;
    claims
}

fn step_up(acr: &[&str], max_age: Option<u64>, contexts: &[&str]) -> StepUp {
    StepUp {
        acr: acr.iter().map(|s| (*s).to_owned()).collect(),
        max_age: max_age.map(Duration::from_secs),
        auth_contexts: contexts.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The reason and challenge parameters of a deny, or `None` for an allow.
fn outcome(rule: &StepUp, token: Value, form: StepUpChallenge) -> Option<(DenyReason, String)> {
    check(rule, &claims(token, form))
        .err()
        .map(|deny| (deny.reason, deny.step_up.unwrap_or_default()))
}

fn decoded_claims_request(parameters: &str) -> Value {
    let encoded = parameters
        .split("claims=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    serde_json::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap()
}

#[test]
fn an_acr_outside_the_list_is_challenged_with_the_acceptable_values_in_order() {
    let rule = step_up(&["urn:mfa", "urn:phr"], None, &[]);
    let rfc = StepUpChallenge::Rfc9470;
    for acr in ["urn:mfa", "urn:phr"] {
        assert_eq!(outcome(&rule, json!({"scp": "a", "acr": acr}), rfc), None);
    }
    for token in [
        json!({"scp": "a", "acr": "urn:pwd"}),
        json!({"scp": "a"}),
        json!({"scp": "a", "acr": ["urn:mfa"]}),
        json!({"scp": "a", "acr": "URN:MFA"}),
    ] {
        assert_eq!(
            outcome(&rule, token, rfc),
            Some((
                DenyReason::InsufficientUserAuthentication,
                "acr_values=\"urn:mfa urn:phr\"".to_owned()
            ))
        );
    }
}

#[test]
fn a_sign_in_older_than_max_age_or_of_unknown_age_is_challenged_with_max_age() {
    let rule = step_up(&[], Some(600), &[]);
    let rfc = StepUpChallenge::Rfc9470;
    let now = get_current_timestamp();
    assert_eq!(
        outcome(&rule, json!({"scp": "a", "auth_time": now - 60}), rfc),
        None
    );
    for token in [
        json!({"scp": "a", "auth_time": now - 601}),
        json!({"scp": "a", "auth_time": "1700000000"}),
        json!({"scp": "a"}),
    ] {
        assert_eq!(
            outcome(&rule, token, rfc),
            Some((
                DenyReason::InsufficientUserAuthentication,
                "max_age=600".to_owned()
            ))
        );
    }
    // Both named, whichever failed: the client asks once for what the route needs.
    let both = step_up(&["urn:mfa"], Some(600), &[]);
    let old_mfa = json!({"scp": "a", "acr": "urn:mfa", "auth_time": now - 3600});
    assert_eq!(
        outcome(&both, old_mfa, rfc).map(|(_, p)| p),
        Some("acr_values=\"urn:mfa\", max_age=600".to_owned())
    );
}

#[test]
fn missing_authentication_contexts_get_the_claims_challenge_msal_understands() {
    let rule = step_up(&[], None, &["c1", "c7"]);
    for form in [StepUpChallenge::Rfc9470, StepUpChallenge::Claims] {
        assert_eq!(
            outcome(&rule, json!({"scp": "a", "acrs": ["c7", "c1", "c2"]}), form),
            None
        );
        let (reason, parameters) =
            outcome(&rule, json!({"scp": "a", "acrs": ["c7"]}), form).unwrap();
        assert_eq!(reason, DenyReason::InsufficientClaims);
        assert_eq!(
            decoded_claims_request(&parameters),
            json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}})
        );
    }
    // The exact encoding Microsoft documents for c1.
    let (_, parameters) = outcome(&rule, json!({"scp": "a"}), StepUpChallenge::Claims).unwrap();
    assert_eq!(
        parameters,
        "claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
    );
}

#[test]
fn an_issuer_challenged_with_claims_asks_for_the_acr_as_a_claim() {
    let rule = step_up(&["urn:mfa"], Some(600), &[]);
    let stale = json!({"scp": "a", "acr": "urn:pwd", "auth_time": get_current_timestamp() - 3600});
    let (reason, parameters) = outcome(&rule, stale, StepUpChallenge::Claims).unwrap();
    assert_eq!(reason, DenyReason::InsufficientClaims);
    assert_eq!(
        decoded_claims_request(&parameters),
        json!({"access_token": {"acr": {"essential": true, "values": ["urn:mfa"]}}})
    );
    assert!(parameters.ends_with(", max_age=600"), "{parameters}");
    // Only the age failing: RFC 9470's parameters say it.
    let fresh_enough_acr =
        json!({"scp": "a", "acr": "urn:mfa", "auth_time": get_current_timestamp() - 3600});
    assert_eq!(
        outcome(&rule, fresh_enough_acr, StepUpChallenge::Claims),
        Some((
            DenyReason::InsufficientUserAuthentication,
            "acr_values=\"urn:mfa\", max_age=600".to_owned()
        ))
    );
}

#[test]
fn explain_lists_each_requirement_with_its_outcome() {
    let rule = step_up(&["urn:mfa"], Some(600), &["c1"]);
    let token = claims(
        json!({"scp": "a", "acr": "urn:mfa", "acrs": ["c2"]}),
        StepUpChallenge::Rfc9470,
    );
    let outcomes: Vec<(String, bool)> = explain(&rule, &token)
        .into_iter()
        .map(|o| (o.description, o.holds))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("acr one of [urn:mfa]".to_owned(), true),
            ("signed in (auth_time) at most 600s ago".to_owned(), false),
            ("authentication context c1 in acrs".to_owned(), false),
        ]
    );
}
