use std::sync::Arc;

use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use serde_json::{Value, json};

use super::*;
use crate::config::{Config, HeaderMapping};

fn key_file(dir: &std::path::Path, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> String {
    let pem = rcgen::KeyPair::generate_for(alg).unwrap().serialize_pem();
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_owned()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A configuration signing with `first` and publishing `second` too.
fn config(first: &str, second: &str, extra: &str) -> Config {
    let yaml = format!(
        r#"
issuers:
  - issuer: https://idp.example.com/
    jwks_uri: https://idp.example.com/jwks.json
    audiences: [api://orders]
signed_identity:
  keys: [{{ file: "{first}" }}, {{ file: "{second}", kid: old }}]
  audience: orders-service
{extra}
routes:
  - name: orders
    path: {{ prefix: /api/orders }}
    require: {{ scopes: [Orders.Read] }}
  - name: quiet
    path: {{ prefix: /quiet }}
    require: {{ token: any }}
    signed_identity: false
  - name: loud
    path: {{ prefix: /loud }}
    require: {{ token: any }}
    signed_identity: true
  - name: open
    path: {{ prefix: /open }}
    anonymous: true
"#
    );
    Config::from_yaml(&yaml, "test").unwrap()
}

fn routes(config: &Config) -> Vec<Route> {
    let headers: Arc<[HeaderMapping]> = Arc::from(Vec::new());
    config
        .routes
        .iter()
        .map(|r| Route::new(r, &headers, crate::upstream::Frameworks::ALL))
        .collect()
}

fn claims(value: Value) -> VerifiedClaims {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::new("https://idp.example.com/".into(), map).unwrap()
}

fn verify(jwks: &str, token: &str) -> Value {
    let set: JwkSet = serde_json::from_str(jwks).unwrap();
    let kid = decode_header(token).unwrap().kid.unwrap();
    let jwk = set.find(&kid).unwrap();
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let alg = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        _ => Algorithm::ES256,
    };
    let mut validation = Validation::new(alg);
    validation.set_audience(&["orders-service"]);
    validation.set_issuer(&["portcullis"]);
    decode::<Value>(token, &key, &validation).unwrap().claims
}

#[test]
fn an_identity_carries_the_caller_and_verifies_with_the_published_keys() {
    let dir = tempfile_dir("identity-claims");
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
        let config = config(
            &key_file(&dir, "new.pem", alg),
            &key_file(&dir, "old.pem", &rcgen::PKCS_ECDSA_P256_SHA256),
            "",
        );
        let minter = Minter::new(config.signed_identity.as_ref().unwrap()).unwrap();
        let routes = routes(&config);
        let caller = claims(json!({
            "sub": "u1", "oid": "o1", "tid": "t1", "azp": "app-1", "scp": "Orders.Read Orders.Write",
            "roles": ["Admin"], "jti": "abc", "exp": now() + 3600, "email": "not@forwarded",
        }));
        let token = minter.mint(&routes[0], &caller, now()).unwrap();
        let verified = verify(minter.jwks(), &token);
        assert_eq!(verified["sub"], "u1");
        assert_eq!(verified["oid"], "o1");
        assert_eq!(verified["tid"], "t1");
        assert_eq!(verified["azp"], "app-1");
        assert_eq!(verified["scope"], "Orders.Read Orders.Write");
        assert_eq!(verified["roles"], json!(["Admin"]));
        assert_eq!(verified["route"], "orders");
        assert_eq!(verified["idp"], "https://idp.example.com/");
        assert_eq!(verified["token_id"], "abc");
        assert_eq!(verified.get("email"), None, "only the configured claims");
        let lifetime = verified["exp"].as_u64().unwrap() - verified["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 300, "the default longest lifetime");
        // Both keys are published, the signing one first.
        let set: JwkSet = serde_json::from_str(minter.jwks()).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[1].common.key_id.as_deref(), Some("old"));
        assert!(
            serde_json::to_string(&set).unwrap().find("\"d\"").is_none(),
            "no private part is published"
        );
    }
}

#[test]
fn an_identity_never_outlives_the_token_and_is_renewed_at_half_life() {
    let dir = tempfile_dir("identity-lifetime");
    let key = key_file(&dir, "k.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    let config = config(
        &key,
        &key_file(&dir, "o.pem", &rcgen::PKCS_ED25519),
        "  max_lifetime: 2m",
    );
    let minter = Minter::new(config.signed_identity.as_ref().unwrap()).unwrap();
    let route = &routes(&config)[0];
    let now = now();
    let long = claims(json!({"sub": "u", "scp": "Orders.Read", "exp": now + 3600}));
    let verified = verify(minter.jwks(), &minter.mint(route, &long, now).unwrap());
    assert_eq!(verified["exp"].as_u64(), Some(now + 120));
    assert_eq!(minter.fresh_until(now, &long), now + 60);
    let fractional =
        claims(json!({"sub": "u", "scp": "Orders.Read", "exp": (now + 40) as f64 + 0.5}));
    let verified = verify(
        minter.jwks(),
        &minter.mint(route, &fractional, now).unwrap(),
    );
    assert_eq!(
        verified["exp"].as_u64(),
        Some(now + 40),
        "a fractional exp bounds it too"
    );
    let short = claims(json!({"sub": "u", "scp": "Orders.Read", "exp": now + 30}));
    let verified = verify(minter.jwks(), &minter.mint(route, &short, now).unwrap());
    assert_eq!(
        verified["exp"].as_u64(),
        Some(now + 30),
        "never past the token's exp"
    );
    assert_eq!(minter.fresh_until(now, &short), now + 15);
}

#[test]
fn routes_send_it_as_they_say_or_as_every_route_says() {
    let dir = tempfile_dir("identity-routes");
    let key = key_file(&dir, "k.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    let other = key_file(&dir, "o.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    for (every_route, expected) in [
        ("", [false, false, true, false]),
        ("  every_route: true", [true, false, true, false]),
    ] {
        let config = config(&key, &other, every_route);
        let minter = Minter::new(config.signed_identity.as_ref().unwrap()).unwrap();
        let signs: Vec<bool> = routes(&config).iter().map(|r| minter.signs(r)).collect();
        assert_eq!(signs, expected, "{every_route:?}");
    }
}

#[test]
fn key_and_section_mistakes_are_named() {
    let dir = tempfile_dir("identity-mistakes");
    let rsa_like = dir.join("not-a-key.pem");
    std::fs::write(
        &rsa_like,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let p384 = key_file(&dir, "p384.pem", &rcgen::PKCS_ECDSA_P384_SHA384);
    let yaml = format!(
        r#"
issuers: [{{ issuer: https://idp.example.com/, audiences: [api] }}]
signed_identity:
  keys: [{{ file: "{}" }}, {{ file: "{p384}" }}, {{ file: /nonexistent/key.pem }}]
  header: "bad header"
  max_lifetime: 2h
  claims: [sub, email]
routes:
  - {{ name: open, path: {{ prefix: / }}, anonymous: true, signed_identity: true }}
"#,
        rsa_like.display()
    );
    let text = Config::from_yaml(&yaml, "test").unwrap_err().to_string();
    for expected in [
        "signed_identity.keys[0].file",
        "is not a PKCS#8 PEM private key of curve P-256 (ES256) or Ed25519",
        "signed_identity.keys[1].file",
        "signed_identity.keys[2].file",
        "cannot read",
        "signed_identity.header",
        "signed_identity.audience",
        "signed_identity.max_lifetime",
        "signed_identity.claims[1]",
        "routes[0].signed_identity",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }
    let clash = format!(
        "issuers: [{{ issuer: https://idp.example.com/, audiences: [api] }}]\nsigned_identity: {{ keys: [{{ file: \"{p384}\" }}], audience: a, header: x-auth-subject }}\nroutes: [{{ name: r, path: {{ prefix: / }}, require: {{ token: any }} }}]\n"
    );
    let text = Config::from_yaml(&clash, "test").unwrap_err().to_string();
    assert!(
        text.contains("signed_identity.header: \"x-auth-subject\" is also an identity header"),
        "{text}"
    );
    let without = "issuers: [{ issuer: https://idp.example.com/, audiences: [api] }]\nroutes: [{ name: r, path: { prefix: / }, require: { token: any }, signed_identity: true }]\n";
    let text = Config::from_yaml(without, "test").unwrap_err().to_string();
    assert!(text.contains("needs a `signed_identity` section"), "{text}");
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
