use std::time::Duration;

use serde_json::{Value, json};

use super::{
    dpop::{Expected, Rules, normalize_htu, request_uri},
    jwk::{ProofKey, sha256_base64url},
    nonce::Nonces,
    replay::{ReplayStore, key_id, proof_id},
    *,
};
use crate::{
    config::{DpopSettings, NonceSettings, ProofAlgorithm, ReplaySettings, Secret},
    demo::DpopKey,
};

// RFC 9449 §4.1 (Figure 3) example proof key and its thumbprint (§6.1).
const RFC9449_X: &str = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs";
const RFC9449_Y: &str = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA";
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
// RFC 9449 §7.1 (Figures 12–14): a protected-resource request's token and proof.
const RFC9449_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const RFC9449_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
const RFC9449_RESOURCE_PROOF: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0",
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10",
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoi",
    "R0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6",
    "MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9R",
    "P35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
);
const RFC9449_RESOURCE_URI: &str = "https://resource.example.org/protectedresource";
const RFC9449_RESOURCE_IAT: u64 = 1_562_262_618;
// RFC 9449 §5 (Figure 6): the token-request proof of the same key (no `ath`).
const RFC9449_TOKEN_REQUEST_PROOF: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0",
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10",
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoi",
    "UE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-G",
    "xA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
);

#[test]
fn thumbprints_match_rfc_7638_and_rfc_9449() {
    // RFC 7638 §3.1: the RSA key, with members a thumbprint leaves out.
    let rsa = json!({
        "kty": "RSA",
        "n": concat!(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo",
            "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG",
            "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt",
            "-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(&rsa).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
    // RFC 9449: the EC proof key, members in any order.
    let ec = json!({"y": RFC9449_Y, "crv": "P-256", "x": RFC9449_X, "kty": "EC"});
    assert_eq!(thumbprint(&ec).as_deref(), Some(RFC9449_JKT));
    assert_eq!(sha256_base64url(RFC9449_TOKEN.as_bytes()), RFC9449_ATH);
}

#[test]
fn keys_with_private_members_or_weak_sizes_are_refused() {
    let ec = json!({"kty": "EC", "crv": "P-256", "x": RFC9449_X, "y": RFC9449_Y});
    assert!(ProofKey::parse(&ec).is_ok());
    for (member, value) in [("d", "AAAA"), ("k", "AAAA")] {
        let mut leaked = ec.clone();
        leaked[member] = Value::String(value.to_owned());
        assert!(ProofKey::parse(&leaked).is_err(), "{member}");
    }
    for bad in [
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "EC", "crv": "P-521", "x": RFC9449_X, "y": RFC9449_Y}),
        json!({"kty": "EC", "crv": "P-256", "x": RFC9449_X}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": RFC9449_Y}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "OKP", "crv": "X25519", "x": RFC9449_X}),
        json!("a string"),
    ] {
        assert!(ProofKey::parse(&bad).is_err(), "{bad}");
    }
}

fn rules() -> Rules {
    Rules::new(&DpopSettings::default())
}

fn rfc_expected(now: u64) -> Expected<'static> {
    Expected {
        jkt: RFC9449_JKT,
        method: "GET",
        uri: RFC9449_RESOURCE_URI,
        token: RFC9449_TOKEN,
        now,
        nonces: None,
    }
}

#[test]
fn the_rfc_9449_resource_proof_verifies_and_each_mismatch_has_its_reason() {
    let rules = rules();
    let proof = rules
        .verify(
            RFC9449_RESOURCE_PROOF,
            &rfc_expected(RFC9449_RESOURCE_IAT + 5),
        )
        .unwrap();
    assert_eq!(proof.jti, "e1j3V_bKic8-LAEB");
    assert_eq!(proof.iat, RFC9449_RESOURCE_IAT);

    let check = |expected: Expected<'_>| rules.verify(RFC9449_RESOURCE_PROOF, &expected);
    let at = RFC9449_RESOURCE_IAT + 5;
    assert_eq!(
        check(Expected {
            method: "POST",
            ..rfc_expected(at)
        }),
        Err(DenyReason::DpopMethodMismatch)
    );
    assert_eq!(
        check(Expected {
            uri: "https://resource.example.org/other",
            ..rfc_expected(at)
        }),
        Err(DenyReason::DpopUriMismatch)
    );
    assert_eq!(
        check(Expected {
            token: "another-token",
            ..rfc_expected(at)
        }),
        Err(DenyReason::DpopAthMismatch)
    );
    assert_eq!(
        check(Expected {
            jkt: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
            ..rfc_expected(at)
        }),
        Err(DenyReason::DpopKeyMismatch)
    );
    // 60 s old is the limit; a second more is stale, and so is a proof from the future.
    assert!(check(rfc_expected(RFC9449_RESOURCE_IAT + 60)).is_ok());
    assert_eq!(
        check(rfc_expected(RFC9449_RESOURCE_IAT + 61)),
        Err(DenyReason::DpopProofStale)
    );
    assert_eq!(
        check(rfc_expected(RFC9449_RESOURCE_IAT - 6)),
        Err(DenyReason::DpopProofStale)
    );
    // One flipped signature byte.
    let mut tampered = RFC9449_RESOURCE_PROOF.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        rules.verify(&tampered, &rfc_expected(at)),
        Err(DenyReason::InvalidDpopProof)
    );
}

#[test]
fn a_token_request_proof_without_ath_is_not_a_resource_proof() {
    let expected = Expected {
        method: "POST",
        uri: "https://server.example.com/token",
        ..rfc_expected(1_562_262_616)
    };
    assert_eq!(
        rules().verify(RFC9449_TOKEN_REQUEST_PROOF, &expected),
        Err(DenyReason::InvalidDpopProof)
    );
}

/// What a proof made now by `key` for `GET uri` with token `t` must match.
fn now_expected<'a>(key: &'a DpopKey, uri: &'a str, nonces: Option<&'a Nonces>) -> Expected<'a> {
    Expected {
        jkt: key.thumbprint(),
        method: "GET",
        uri,
        token: "t",
        now: jsonwebtoken::get_current_timestamp(),
        nonces,
    }
}

#[test]
fn proofs_outside_the_allow_list_or_of_another_type_are_invalid() {
    let key = DpopKey::es256().unwrap();
    let uri = "https://api.example.com/orders";
    let expected = now_expected(&key, uri, None);
    let good = key.proof("GET", uri, Some("t"), None).unwrap();
    assert!(rules().verify(&good, &expected).is_ok());

    let only_rsa = Rules::new(&DpopSettings {
        algorithms: vec![ProofAlgorithm::PS256],
        ..DpopSettings::default()
    });
    assert_eq!(
        only_rsa.verify(&good, &expected),
        Err(DenyReason::InvalidDpopProof)
    );
    // An access token (no dpop+jwt typ) offered as a proof.
    let segments: Vec<&str> = good.split('.').collect();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            segments[1],
        )
        .unwrap(),
    )
    .unwrap();
    let plain = crate::demo::SigningKey::es256("k")
        .unwrap()
        .sign(&claims)
        .unwrap();
    assert_eq!(
        rules().verify(&plain, &expected),
        Err(DenyReason::InvalidDpopProof)
    );
    for broken in ["", "a.b", "a.b.c.d", &good[..good.len() - 3]] {
        assert_eq!(
            rules().verify(broken, &expected),
            Err(DenyReason::InvalidDpopProof),
            "{broken}"
        );
    }
    let huge = format!("{good}{}", "A".repeat(9000));
    assert_eq!(
        rules().verify(&huge, &expected),
        Err(DenyReason::InvalidDpopProof)
    );
}

#[test]
fn every_proof_algorithm_verifies_with_its_own_key_type() {
    use jsonwebtoken::Algorithm;
    let uri = "https://api.example.com/x";
    for key in [
        DpopKey::es256().unwrap(),
        DpopKey::ed25519().unwrap(),
        DpopKey::rsa(Algorithm::RS256).unwrap(),
        DpopKey::rsa(Algorithm::PS256).unwrap(),
    ] {
        let proof = key.proof("GET", uri, Some("t"), None).unwrap();
        let expected = now_expected(&key, uri, None);
        assert!(rules().verify(&proof, &expected).is_ok(), "{}", key.jwk());
    }
}

#[test]
fn htu_compares_after_rfc_3986_normalisation() {
    let canonical = Some("https://api.example.com/orders/7".to_owned());
    for htu in [
        "https://api.example.com/orders/7",
        "HTTPS://API.Example.COM:443/orders/7",
        "https://api.example.com/orders/./7?page=2#top",
        "https://api.example.com/%6Frders/7",
    ] {
        assert_eq!(normalize_htu(htu), canonical, "{htu}");
    }
    assert_eq!(
        request_uri("https", "API.example.com", "/orders/7?x=1"),
        canonical
    );
    assert_eq!(
        normalize_htu("http://api.example.com:80"),
        Some("http://api.example.com/".to_owned())
    );
    for other in [
        "https://api.example.com:8443/orders/7",
        "http://api.example.com/orders/7",
        "https://user@api.example.com/orders/7",
        "api.example.com/orders/7",
        "ftp://api.example.com/orders/7",
    ] {
        assert_ne!(normalize_htu(other), canonical, "{other}");
    }
    assert_eq!(request_uri("", "api.example.com", "/"), None);
    assert_eq!(
        normalize_htu("https://[::1]:0443/x"),
        request_uri("https", "[::1]", "/x")
    );
    assert_eq!(
        normalize_htu("http://127.0.0.1:8080/x"),
        Some("http://127.0.0.1:8080/x".to_owned())
    );
    assert_eq!(normalize_htu("https://a.example.com:443:443/"), None);
}

#[tokio::test]
async fn the_memory_store_accepts_a_proof_once_until_it_expires() {
    let store = ReplayStore::new(&ReplaySettings::Memory {
        max_entries: 2,
        per_key: 2,
    });
    let t = jsonwebtoken::get_current_timestamp();
    let key = key_id("key");
    let a = proof_id("key", "a");
    assert_ne!(a, proof_id("other-key", "a"));
    assert_eq!(store.first_use(key, a, t, t, t + 60).await, Ok(true));
    assert_eq!(store.first_use(key, a, t, t + 50, t + 110).await, Ok(false));
    // Remembered until it could no longer be accepted anyway.
    assert_eq!(store.first_use(key, a, t, t + 60, t + 120).await, Ok(true));
    let b = proof_id("key", "b");
    assert_eq!(store.first_use(key, b, t, t + 61, t + 121).await, Ok(true));
    // Full of live proofs: refused, not let through.
    let c = proof_id("key", "c");
    assert_eq!(
        store.first_use(key, c, t, t + 62, t + 122).await,
        Err(DenyReason::ReplayStoreUnavailable)
    );
    // Once those expire, there is room again.
    assert_eq!(store.first_use(key, c, t, t + 130, t + 190).await, Ok(true));
    let ReplayStore::Memory(memory) = &store else {
        unreachable!()
    };
    assert_eq!(memory.len(), 1);
}

#[tokio::test]
async fn one_client_key_fills_only_its_own_share() {
    let store = ReplayStore::new(&ReplaySettings::Memory {
        max_entries: 1000,
        per_key: 3,
    });
    let t = jsonwebtoken::get_current_timestamp();
    let busy = key_id("busy-client");
    for jti in ["1", "2", "3"] {
        let id = proof_id("busy-client", jti);
        assert_eq!(store.first_use(busy, id, t, t, t + 60).await, Ok(true));
    }
    let fourth = proof_id("busy-client", "4");
    assert_eq!(
        store.first_use(busy, fourth, t, t, t + 60).await,
        Err(DenyReason::ReplayStoreUnavailable)
    );
    // Every other client goes on.
    for client in ["a", "b", "c"] {
        let id = proof_id(client, "1");
        assert_eq!(
            store.first_use(key_id(client), id, t, t, t + 60).await,
            Ok(true),
            "{client}"
        );
    }
    // And the busy one again once its proofs expire.
    assert_eq!(
        store.first_use(busy, fourth, t + 61, t + 61, t + 121).await,
        Ok(true)
    );
}

#[tokio::test]
async fn a_proof_issued_before_the_store_was_made_is_refused() {
    let store = ReplayStore::new(&ReplaySettings::Memory {
        max_entries: 1000,
        per_key: 100,
    });
    let t = jsonwebtoken::get_current_timestamp();
    let (key, id) = (key_id("k"), proof_id("k", "j"));
    // Used, maybe, with the store of the process before a restart.
    assert_eq!(
        store.first_use(key, id, t - 5, t, t + 55).await,
        Err(DenyReason::DpopProofStale)
    );
    assert_eq!(store.first_use(key, id, t, t, t + 60).await, Ok(true));
}

#[test]
fn nonces_are_accepted_by_every_holder_of_the_secret_for_their_lifetime() {
    let settings = |byte: u8| NonceSettings {
        secret: Secret(vec![byte; 32]),
        lifetime: Duration::from_secs(300),
    };
    let nonces = Nonces::new(&settings(1));
    let nonce = nonces.issue(1000);
    assert!(Nonces::new(&settings(1)).accepts(&nonce, 1200, 5));
    assert!(!nonces.accepts(&nonce, 1301, 5), "expired");
    assert!(!nonces.accepts(&nonce, 990, 5), "issued in the future");
    assert!(
        !Nonces::new(&settings(2)).accepts(&nonce, 1200, 5),
        "foreign"
    );
    let mut tampered = nonce.clone().into_bytes();
    tampered[3] ^= 1;
    assert!(!nonces.accepts(&String::from_utf8(tampered).unwrap(), 1200, 5));
    assert!(!nonces.accepts("", 1200, 5));
}

fn presented<'a>(token: &'a str, proof: Option<&'a str>, dpop: bool) -> Presented<'a> {
    Presented {
        dpop_scheme: dpop,
        token,
        proof: proof.map(Ok),
        method: "GET",
        scheme: "https",
        authority: "api.example.com",
        path: "/orders",
        certificate: "",
    }
}

#[tokio::test]
async fn a_bound_token_is_checked_against_its_binding_whatever_the_scheme() {
    let binding = SenderBinding::new(&DpopSettings::default(), None);
    let key = DpopKey::es256().unwrap();
    let unbound = Confirmation::default();
    let bound = Confirmation {
        jkt: Some(key.thumbprint().to_owned()),
        x5t_s256: None,
    };
    let proof = key
        .proof("GET", "https://api.example.com/orders", Some("tok"), None)
        .unwrap();

    assert_eq!(
        binding
            .check(&unbound, &presented("tok", None, false))
            .await,
        Ok(())
    );
    assert_eq!(
        binding
            .check(&bound, &presented("tok", Some(&proof), false))
            .await,
        Err(DenyReason::BoundTokenAsBearer)
    );
    assert_eq!(
        binding.check(&bound, &presented("tok", None, true)).await,
        Err(DenyReason::DpopProofMissing)
    );
    assert_eq!(
        binding
            .check(&unbound, &presented("tok", Some(&proof), true))
            .await,
        Err(DenyReason::DpopKeyMismatch)
    );
    let several = Presented {
        proof: Some(Err(DenyReason::InvalidDpopProof)),
        ..presented("tok", None, true)
    };
    assert_eq!(
        binding.check(&bound, &several).await,
        Err(DenyReason::InvalidDpopProof)
    );
    assert_eq!(
        binding
            .check(&bound, &presented("tok", Some(&proof), true))
            .await,
        Ok(())
    );
    assert_eq!(
        binding
            .check(&bound, &presented("tok", Some(&proof), true))
            .await,
        Err(DenyReason::DpopProofReplayed)
    );
    // A reload with the same replay settings keeps the used proofs.
    let reloaded = SenderBinding::new(&DpopSettings::default(), Some(&binding));
    assert_eq!(
        reloaded
            .check(&bound, &presented("tok", Some(&proof), true))
            .await,
        Err(DenyReason::DpopProofReplayed)
    );
}

#[tokio::test]
async fn a_certificate_bound_token_needs_that_certificate() {
    let binding = SenderBinding::new(&DpopSettings::default(), None);
    let cert = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
    let envoy_form = |pem: String| {
        pem.replace('\n', "%0A")
            .replace(' ', "%20")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    };
    let bound = Confirmation {
        jkt: None,
        x5t_s256: Some(sha256_base64url(cert.cert.der())),
    };
    let with = |certificate: &'static str| Presented {
        certificate,
        ..presented("tok", None, false)
    };
    let mine: &'static str = Box::leak(envoy_form(cert.cert.pem()).into_boxed_str());
    let theirs: &'static str = Box::leak(envoy_form(other.cert.pem()).into_boxed_str());
    assert_eq!(binding.check(&bound, &with(mine)).await, Ok(()));
    assert_eq!(
        binding.check(&bound, &with(theirs)).await,
        Err(DenyReason::CertificateMismatch)
    );
    assert_eq!(
        binding.check(&bound, &with("")).await,
        Err(DenyReason::CertificateMissing)
    );
    assert_eq!(
        binding.check(&bound, &with("%ZZnot-pem")).await,
        Err(DenyReason::CertificateMismatch)
    );
}

#[test]
fn nonce_required_proofs_carry_a_current_nonce() {
    let nonces = Nonces::new(&NonceSettings {
        secret: Secret(vec![7; 32]),
        lifetime: Duration::from_secs(300),
    });
    let now = jsonwebtoken::get_current_timestamp();
    let key = DpopKey::es256().unwrap();
    let uri = "https://api.example.com/orders";
    let expected = now_expected(&key, uri, Some(&nonces));
    let without = key.proof("GET", uri, Some("t"), None).unwrap();
    assert_eq!(
        rules().verify(&without, &expected),
        Err(DenyReason::DpopNonceRequired)
    );
    let stale = key
        .proof("GET", uri, Some("t"), Some(&nonces.issue(now - 301)))
        .unwrap();
    assert_eq!(
        rules().verify(&stale, &expected),
        Err(DenyReason::DpopNonceRequired)
    );
    let fresh = key
        .proof("GET", uri, Some("t"), Some(&nonces.issue(now)))
        .unwrap();
    assert!(rules().verify(&fresh, &expected).is_ok());
}
