//! Hostile tokens and requests against the real server over gRPC: every case must be
//! denied with its expected reason, none allowed, none crashing the service (a valid
//! token is checked after each batch to prove the server still answers).

mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{World, allowed, check_request, denied, with_header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::demo::{Grant, SigningKey};
use serde_json::{Value, json};

const READ: Grant<'static> = Grant::Scopes("Orders.Read");

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` from raw JSON texts and a signature.
fn raw_token(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

/// A signed token's three parts.
fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.').map(str::to_owned);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

async fn expect(world: &World, cases: Vec<(&str, String)>) {
    for (reason, token) in cases {
        let response = world.bearer("GET", "/api/orders", &token).await;
        let d = denied(&response);
        assert_eq!(
            d.reason,
            reason,
            "token: {}",
            &token[..token.len().min(200)]
        );
        assert_eq!(d.status, 401, "{reason}");
    }
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}

#[tokio::test]
async fn unsigned_and_algorithm_confusion_tokens_are_refused() {
    let world = World::start_with(|y| y.replace("[RS256, PS256, ES256, EdDSA]", "[RS256, ES256]"))
        .await
        .ready()
        .await;
    let claims = world.claims(READ).to_string();
    let mut cases = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        cases.push((
            "malformed_token",
            format!("{}.{}.", b64(&header), b64(&claims)),
        ));
        cases.push(("malformed_token", raw_token(&header, &claims, b"x")));
    }
    // HMAC signed with the issuer's public RSA key (as PEM-ish text and as JWK JSON).
    for secret in [
        world.key.jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
        world.key.jwk().to_string().into_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".into());
        let token = jsonwebtoken::encode(
            &header,
            &world.claims(READ),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        cases.push(("disallowed_algorithm", token));
    }
    // An RS256 key used for ES256: the key cannot verify that algorithm.
    let ec = SigningKey::es256("key-1").unwrap();
    cases.push(("key_mismatch", ec.sign(&world.claims(READ)).unwrap()));
    // PS256 is not in this issuer's allow-list.
    let ps = SigningKey::rsa("key-1", Algorithm::PS256).unwrap();
    cases.push((
        "disallowed_algorithm",
        ps.sign(&world.claims(READ)).unwrap(),
    ));
    expect(&world, cases).await;
}

#[tokio::test]
async fn keys_embedded_in_the_token_are_never_used() {
    let world = World::start().await.ready().await;
    let attacker = SigningKey::rsa("attacker", Algorithm::RS256).unwrap();
    let mut cases = Vec::new();
    for (param, value) in [
        ("jwk", attacker.jwk().clone()),
        ("jku", json!(format!("{}jwks.json", world.issuer.issuer()))),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ"])),
    ] {
        // Naming the legitimate kid, with the attacker's key and a key reference.
        let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"});
        header[param] = value.clone();
        let (_, payload, signature) = parts(&attacker.sign(&world.claims(READ)).unwrap());
        cases.push((
            "bad_signature",
            format!("{}.{payload}.{signature}", b64(header.to_string())),
        ));
        // Or naming the attacker's own kid.
        let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": "attacker"});
        header[param] = value;
        cases.push((
            "unknown_kid",
            with_header(&attacker.sign(&world.claims(READ)).unwrap(), &header),
        ));
    }
    expect(&world, cases).await;
}

#[tokio::test]
async fn kid_injection_strings_are_just_unknown_kids() {
    let world = World::start_with(|y| {
        common::edited(&y, "unknown_kid_cooldown: 2s", "unknown_kid_cooldown: 1h")
    })
    .await
    .ready()
    .await;
    let before = world.issuer.jwks_fetches();
    let signed = world.token(READ);
    let mut cases = Vec::new();
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "key-1\u{0000}",
        "key-1 ",
        "KEY-1",
        "${jndi:ldap://x}",
        "%00",
        &"k".repeat(4000),
    ] {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        cases.push(("unknown_kid", with_header(&signed, &header)));
    }
    let header = json!({"alg": "RS256", "kid": 7});
    cases.push(("malformed_token", with_header(&signed, &header)));
    expect(&world, cases).await;
    assert!(
        world.issuer.jwks_fetches() - before <= 1,
        "one fetch per cooldown at most"
    );
}

#[tokio::test]
async fn ecdsa_signature_forgeries_are_refused() {
    let world = World::start().await;
    let ec = SigningKey::es256("ec").unwrap();
    world.issuer.publish(&[&world.key, &ec]);
    let world = world.ready().await;
    let (header, payload, _) = parts(&ec.sign(&world.claims(READ)).unwrap());
    // P-256 group order n.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let one = {
        let mut v = vec![0u8; 32];
        v[31] = 1;
        v
    };
    let signatures: Vec<Vec<u8>> = vec![
        vec![0u8; 64],                     // psychic signature: r = s = 0
        [n.clone(), one.clone()].concat(), // r = n (out of range)
        [one.clone(), n.clone()].concat(), // s = n
        vec![0xffu8; 64],                  // r, s > n
        vec![0u8; 63],                     // wrong length
    ];
    let mut cases: Vec<(&str, String)> = signatures
        .iter()
        .map(|sig| ("bad_signature", format!("{header}.{payload}.{}", b64(sig))))
        .collect();
    // A DER-encoded signature instead of the JOSE r||s form.
    let der = [
        vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
        vec![0u8; 56],
    ]
    .concat();
    cases.push(("bad_signature", format!("{header}.{payload}.{}", b64(der))));
    expect(&world, cases).await;
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn tampered_truncated_and_swapped_signatures_are_refused() {
    let world = World::start().await.ready().await;
    let token = world.token(READ);
    let other = world.token(Grant::Scopes("Orders.ReadWrite"));
    let (header, payload, signature) = parts(&token);
    let (_, other_payload, other_signature) = parts(&other);
    let signature_bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    // 256 signature bytes are 342 base64url characters; 341 can never be valid base64.
    assert_eq!(signature.len() % 4, 2);
    let mut altered_header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&header).unwrap()).unwrap();
    altered_header["typ"] = json!("at+jwt");
    let cases = vec![
        (
            "bad_signature",
            format!("{header}.{payload}.{}", b64(&signature_bytes[..200])),
        ),
        (
            "malformed_token",
            format!("{header}.{payload}.{}", &signature[..signature.len() - 1]),
        ),
        ("malformed_token", format!("{header}.{payload}.")),
        (
            "bad_signature",
            format!("{header}.{payload}.{other_signature}"),
        ),
        (
            "bad_signature",
            format!("{header}.{other_payload}.{signature}"),
        ),
        (
            "bad_signature",
            format!("{}.{payload}.{signature}", b64(altered_header.to_string())),
        ),
        (
            "bad_signature",
            format!("{header}.{payload}.{}", b64([0u8; 256])),
        ),
        (
            "malformed_token",
            format!("{header}.{payload}.{signature}="),
        ),
        (
            "malformed_authorization",
            format!("{header}==.{payload}.{signature}"),
        ),
        (
            "malformed_token",
            format!("{header}.{payload}.{signature}.{signature}.x"),
        ),
        ("malformed_token", format!("{header}.{payload}")),
        (
            "malformed_token",
            format!("{header}.{payload}.{signature}."),
        ),
        ("malformed_token", format!(".{payload}.{signature}")),
        ("malformed_token", format!("{header}.+++.{signature}")),
    ];
    expect(&world, cases).await;
}

#[tokio::test]
async fn unusual_headers_and_payloads_are_refused() {
    let world = World::start().await.ready().await;
    let claims = world.claims(READ);
    let header = |extra: Value| {
        let mut h = json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h.to_string()
    };
    let sig = b"signature-bytes";
    let claims_text = claims.to_string();
    let iss = claims["iss"].as_str().unwrap().to_owned();
    let cases = vec![
        (
            "malformed_token",
            raw_token(&header(json!({"crit": ["exp"]})), &claims_text, sig),
        ),
        (
            "malformed_token",
            raw_token(
                &header(json!({"crit": ["urn:example:ext"], "urn:example:ext": 1})),
                &claims_text,
                sig,
            ),
        ),
        (
            "malformed_token",
            raw_token(
                &header(json!({"b64": false, "crit": ["b64"]})),
                &claims_text,
                sig,
            ),
        ),
        (
            "malformed_token",
            raw_token(&header(json!({"b64": false})), &claims_text, sig),
        ),
        // JWE: five segments.
        (
            "malformed_token",
            format!(
                "{}.{}.{}.{}.{}",
                b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
                b64("k"),
                b64("iv"),
                b64("ct"),
                b64("tag")
            ),
        ),
        (
            "malformed_token",
            raw_token(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#, &claims_text, sig),
        ),
        // Duplicate keys: parsers disagree on which one wins.
        (
            "malformed_token",
            raw_token(
                r#"{"alg":"RS256","kid":"key-1","alg":"none"}"#,
                &claims_text,
                sig,
            ),
        ),
        (
            "malformed_token",
            raw_token(
                &header(json!({})),
                &format!(r#"{{"iss":"{iss}","scp":"x","scp":"Orders.Read"}}"#),
                sig,
            ),
        ),
        // Not UTF-8, not JSON, not an object, wrong claim types.
        (
            "malformed_token",
            format!("{}.{}.{}", b64([0xc3u8, 0x28]), b64(&claims_text), b64(sig)),
        ),
        (
            "malformed_token",
            raw_token(&header(json!({})), "not json", sig),
        ),
        (
            "malformed_token",
            raw_token(&header(json!({})), "[1,2,3]", sig),
        ),
        (
            "malformed_token",
            raw_token(
                &header(json!({})),
                &format!(r#"{{"iss":"{iss}","exp":"tomorrow"}}"#),
                sig,
            ),
        ),
        (
            "malformed_token",
            raw_token(
                &header(json!({})),
                &format!(r#"{{"iss":"{iss}","nbf":[1]}}"#),
                sig,
            ),
        ),
        (
            "malformed_token",
            raw_token(&header(json!({})), r#"{"iss":["a","b"]}"#, sig),
        ),
        (
            "missing_claim",
            raw_token(&header(json!({})), r#"{"sub":"no issuer"}"#, sig),
        ),
        (
            "malformed_token",
            raw_token(
                r#"{"alg":"RS256","kid":"key-1"} trailing"#,
                &claims_text,
                sig,
            ),
        ),
    ];
    expect(&world, cases).await;
}

#[tokio::test]
async fn enormous_tokens_and_malformed_authorization_headers_are_refused() {
    let world = World::start().await.ready().await;
    let mut claims = world.claims(READ);
    claims["padding"] = json!("x".repeat(20_000));
    let huge = world.sign(&claims);
    let d = denied(&world.bearer("GET", "/api/orders", &huge).await);
    assert_eq!((d.status, d.reason.as_str()), (401, "token_too_large"));
    let absurd = "a".repeat(1_000_000);
    let d = denied(
        &world
            .bearer("GET", "/api/orders", &format!("{absurd}.{absurd}.{absurd}"))
            .await,
    );
    assert_eq!(d.reason, "token_too_large");

    let token = world.token(READ);
    for (value, reason) in [
        (
            format!("Bearer {token},Bearer {token}"),
            "malformed_authorization",
        ),
        (format!("Bearer {token} {token}"), "malformed_authorization"),
        (format!("Bearer  {token}\u{0}"), "malformed_authorization"),
        (
            format!("Bearer {token}\r\nx-injected: 1"),
            "malformed_authorization",
        ),
        (format!("Bearer\u{a0}{token}"), "unsupported_scheme"),
        (format!("Token {token}"), "unsupported_scheme"),
        ("Bearer ".repeat(100), "malformed_authorization"),
    ] {
        let d = denied(&world.check("GET", "/api/orders", Some(&value)).await);
        assert_eq!(
            (d.status, d.reason.as_str()),
            (401, reason),
            "{:?}",
            &value[..value.len().min(60)]
        );
    }
    // Too many headers considered: refused before looking for the token.
    let mut headers: Vec<(String, String)> = (0..300)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    headers.push(("authorization".into(), format!("Bearer {token}")));
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let d = denied(
        &world
            .check_request(check_request("GET", "/api/orders", &refs))
            .await,
    );
    assert_eq!((d.status, d.reason.as_str()), (400, "invalid_request"));
    allowed(&world.bearer("GET", "/api/orders", &token).await);
}

#[tokio::test]
async fn a_flood_past_the_concurrency_cap_is_answered_overloaded_not_queued() {
    use portcullis::demo::Behaviour;
    // One Check slot, 50 ms of waiting; a hanging JWKS fetch occupies the slot.
    let world = World::start_with(|y| {
        common::edited(
            &format!("{y}limits:\n  max_concurrent_checks: 1\n  overload_wait: 50ms\n"),
            "unknown_kid_cooldown: 2s",
            "unknown_kid_cooldown: 0s\n  fetch_timeout: 2s",
        )
    })
    .await
    .ready()
    .await;
    world.issuer.set_behaviour(Behaviour::Hang);
    let fetches = world.issuer.jwks_fetches();
    let stranger = SigningKey::rsa("stranger", Algorithm::RS256).unwrap();
    let slow = stranger.sign(&world.claims(READ)).unwrap();
    let busy = {
        let request = check_request(
            "GET",
            "/api/orders",
            &[("authorization", &format!("Bearer {slow}"))],
        );
        let mut client = portcullis::pb::auth::authorization_client::AuthorizationClient::connect(
            format!("http://{}", world.addr),
        )
        .await
        .unwrap();
        tokio::spawn(async move { client.check(request).await.unwrap().into_inner() })
    };
    // The slot is taken once the hanging JWKS fetch has started.
    common::wait_for(|| world.issuer.jwks_fetches() > fetches).await;
    let started = std::time::Instant::now();
    let d = denied(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    assert_eq!((d.status, d.reason.as_str()), (503, "overloaded"));
    assert!(d.headers.contains_key("retry-after"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered after the bounded wait"
    );
    assert_eq!(denied(&busy.await.unwrap()).reason, "unknown_kid");
    world.issuer.set_behaviour(Behaviour::Serve);
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}
