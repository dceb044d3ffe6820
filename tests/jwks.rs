//! Key rotation and JWKS refresh rules against a scripted identity provider on loopback
//! that rotates keys, fails, hangs, answers garbage, and counts every fetch.

mod common;

use std::time::Duration;

use common::{World, allowed, denied, with_header};
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{Behaviour, Grant, SigningKey},
    pb::auth::check_response::HttpResponse,
};
use serde_json::{Value, json};

const READ: Grant<'static> = Grant::Scopes("Orders.Read");

/// The demo config with some `jwks:` settings replaced.
fn jwks_settings(settings: &'static str) -> impl FnOnce(String) -> String {
    move |yaml| {
        common::edited(
            &yaml,
            "jwks:\n  unknown_kid_cooldown: 2s\n",
            &format!("jwks:\n{settings}"),
        )
    }
}

#[tokio::test]
async fn rotation_mid_traffic_denies_nothing_that_should_pass() {
    let world = World::start().await.ready().await;
    let new_key = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    let old_token = world.token(READ);
    let new_token = new_key.sign(&world.claims(READ)).unwrap();
    let fetches = world.issuer.jwks_fetches();

    // The issuer starts signing with key-2 (publishing both) while traffic flows.
    world.issuer.publish(&[&world.key, &new_key]);
    let tokens = (0..400)
        .map(|i| {
            if i % 2 == 0 {
                old_token.clone()
            } else {
                new_token.clone()
            }
        })
        .collect();
    for response in world.concurrent_checks(tokens).await {
        allowed(&response);
    }
    assert_eq!(
        world.issuer.jwks_fetches(),
        fetches + 1,
        "concurrent misses share one fetch"
    );

    allowed(&world.bearer("GET", "/api/orders", &new_token).await);
}

#[tokio::test]
async fn ten_thousand_invented_kids_cost_the_issuer_one_fetch() {
    let world = World::start_with(jwks_settings("  unknown_kid_cooldown: 1h\n"))
        .await
        .ready()
        .await;
    let before = world.issuer.jwks_fetches();
    // Invented kids never reach signature checking, so one signed token re-headed will do.
    let signed = world.token(READ);
    let mut outcomes = Vec::new();
    for batch in 0..100 {
        let tokens = (0..100)
            .map(|i| {
                let kid = format!("invented-{batch}-{i}");
                with_header(&signed, &json!({"alg": "RS256", "typ": "JWT", "kid": kid}))
            })
            .collect();
        for response in world.concurrent_checks(tokens).await {
            outcomes.push(denied(&response).reason);
        }
    }
    assert_eq!(outcomes.len(), 10_000);
    assert!(outcomes.iter().all(|r| r == "unknown_kid"));
    let fetched = world.issuer.jwks_fetches() - before;
    assert!(
        fetched <= 3,
        "{fetched} fetches for 10,000 invented kids (burst: 3)"
    );
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}

/// A flood of invented `kid`s triggers a fetch as soon as each cooldown ends, yet a key
/// rotated in meanwhile comes with the next one: its tokens are accepted while the flood
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_during_a_kid_flood_is_picked_up_at_the_next_fetch() {
    let world = std::sync::Arc::new(
        World::start_with(jwks_settings(
            "  unknown_kid_cooldown: 1s
",
        ))
        .await
        .ready()
        .await,
    );
    let signed = world.token(READ);
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood = {
        let (world, flooding, signed) = (world.clone(), flooding.clone(), signed.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                let tokens = (0..20)
                    .map(|i| {
                        let kid = format!("junk-{n}-{i}");
                        with_header(&signed, &json!({"alg": "RS256", "typ": "JWT", "kid": kid}))
                    })
                    .collect();
                world.concurrent_checks(tokens).await;
                n += 1;
            }
        })
    };
    // The flood has spent the first fetch by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rotated = SigningKey::rsa("key-rotated", Algorithm::RS256).unwrap();
    world.issuer.publish(&[&world.key, &rotated]);
    let token = rotated.sign(&world.claims(READ)).unwrap();
    let mut accepted = false;
    for _ in 0..100 {
        let response = world.bearer("GET", "/api/orders", &token).await;
        if matches!(response.http_response, Some(HttpResponse::OkResponse(_))) {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    flood.await.unwrap();
    assert!(
        accepted,
        "the rotated key was never fetched during the flood"
    );
}

#[tokio::test]
async fn cached_keys_keep_serving_whatever_the_issuer_does() {
    let world = World::start_with(jwks_settings(
        "  unknown_kid_cooldown: 0s\n  fetch_timeout: 300ms\n",
    ))
    .await
    .ready()
    .await;
    let stranger = SigningKey::rsa("key-9", Algorithm::RS256).unwrap();
    let unknown = stranger.sign(&world.claims(READ)).unwrap();
    for behaviour in [
        Behaviour::Unavailable,
        Behaviour::ServerError,
        Behaviour::Hang,
        Behaviour::Garbage,
        Behaviour::Huge,
    ] {
        world.issuer.set_behaviour(behaviour);
        let before = world.issuer.jwks_fetches();
        // The unknown kid forces a fetch, which fails; the deny is typed, not a hang.
        let d = denied(&world.bearer("GET", "/api/orders", &unknown).await);
        assert_eq!(d.reason, "unknown_kid", "{behaviour:?}");
        assert_eq!(world.issuer.jwks_fetches(), before + 1, "{behaviour:?}");
        allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
        let status = &world.state.engine().verifier.key_status()[0];
        assert_eq!(status.state, "stale", "{behaviour:?}");
        assert!(status.last_error.is_some(), "{behaviour:?}");
    }
    world.issuer.set_behaviour(Behaviour::Serve);
    world.issuer.publish(&[&world.key, &stranger]);
    allowed(&world.bearer("GET", "/api/orders", &unknown).await);
    assert_eq!(world.state.engine().verifier.key_status()[0].state, "fresh");
}

#[tokio::test]
async fn keys_older_than_max_staleness_stop_being_trusted() {
    let world = World::start_with(jwks_settings(
        "  min_refresh_interval: 1s\n  refresh_interval: 1s\n  max_staleness: 2s\n",
    ))
    .await
    .ready()
    .await;
    world.issuer.set_behaviour(Behaviour::Unavailable);
    let token = world.token(READ);
    allowed(&world.bearer("GET", "/api/orders", &token).await);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let d = denied(&world.bearer("GET", "/api/orders", &token).await);
    assert_eq!((d.status, d.reason.as_str()), (503, "keys_unavailable"));
    let (status, body) = world.admin("/readyz").await;
    assert_eq!(status, 200, "already-started replicas stay ready: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["issuers"][0]["state"], "expired");
    world.issuer.set_behaviour(Behaviour::Serve);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if world.state.engine().verifier.key_status()[0].state == "fresh" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "keys never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    allowed(&world.bearer("GET", "/api/orders", &token).await);
}

#[tokio::test]
async fn cache_control_max_age_paces_refreshes_within_bounds() {
    let world = World::start_with(jwks_settings(
        "  min_refresh_interval: 1s\n  refresh_interval: 1h\n",
    ))
    .await;
    world.issuer.set_cache_control(Some("public, max-age=0"));
    let world = world.ready().await;
    // max-age=0 is raised to the 1s minimum: about one fetch a second, not a busy loop.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let paced = world.issuer.jwks_fetches();
    assert!(
        (2..=4).contains(&paced),
        "{paced} fetches in 2.5s with max-age=0, min 1s"
    );
    // A long max-age: no fetch for a while.
    world.issuer.set_cache_control(Some("max-age=86400"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = world.issuer.jwks_fetches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        world.issuer.jwks_fetches(),
        after,
        "max-age=86400 means no refresh soon"
    );
}

#[tokio::test]
async fn failing_issuer_is_retried_with_backoff_not_hammered() {
    let world = World::start().await;
    world.issuer.set_behaviour(Behaviour::ServerError);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    // 0.5 s, 1 s, 2 s backoff (+ up to 10% jitter): about 3 attempts in 3 s.
    let attempts = world.issuer.jwks_fetches();
    assert!((2..=5).contains(&attempts), "{attempts} attempts in 3s");
    let (status, body) = world.admin("/readyz").await;
    assert_eq!(status, 503, "{body}");
    world.issuer.set_behaviour(Behaviour::Serve);
    let world = world.ready().await;
    let (status, _) = world.admin("/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped_without_losing_the_rest() {
    let world = World::start().await;
    let mut wrong_use = world.key.jwk().clone();
    wrong_use["use"] = json!("enc");
    wrong_use["kid"] = json!("enc-key");
    let mut short_rsa = world.key.jwk().clone();
    short_rsa["n"] = json!("AQAB".repeat(32)); // 96 bytes: a 768-bit modulus
    short_rsa["kid"] = json!("short");
    world.issuer.publish_raw(vec![
        json!({"kty": "RSA", "kid": "broken", "n": 7}),
        json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
        json!("not even an object"),
        wrong_use,
        short_rsa,
        world.key.jwk().clone(),
    ]);
    let world = world.ready().await;
    assert_eq!(world.state.engine().verifier.key_status()[0].keys, 1);
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some("enc-key".into());
    let token = world
        .key
        .sign_with_header(&header, &world.claims(READ))
        .unwrap();
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "unknown_kid"
    );
}

#[tokio::test]
async fn keys_come_from_oidc_discovery_when_no_jwks_uri_is_given() {
    let world = World::start_with(|yaml| {
        let start = yaml.find("    jwks_uri:").unwrap();
        let end = start + yaml[start..].find('\n').unwrap() + 1;
        format!("{}{}", &yaml[..start], &yaml[end..])
    })
    .await
    .ready()
    .await;
    assert_eq!(world.issuer.discovery_fetches(), 1);
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}

#[tokio::test]
async fn no_keys_ever_is_503_with_retry_after_and_not_ready() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let world = World::start_with(|y| {
        let start = y.find("jwks_uri: \"").unwrap() + "jwks_uri: \"".len();
        let end = start + y[start..].find('"').unwrap();
        format!("{}http://127.0.0.1:9/jwks.json{}", &y[..start], &y[end..])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!world.state.engine().verifier.all_keys_loaded());
    let d = denied(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    assert_eq!((d.status, d.reason.as_str()), (503, "keys_unavailable"));
    assert_eq!(d.headers.get("retry-after").map(String::as_str), Some("5"));
    assert_eq!(d.challenge, None);
    let (status, body) = world.admin("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"missing\""), "{body}");
    assert!(
        body.contains("Connection refused"),
        "the root cause reaches /readyz: {body}"
    );
}

#[tokio::test]
async fn metrics_report_fetches_keys_and_decisions() {
    let world = World::start_with(|y| format!("{y}metrics: {{ preseed_routes: true }}\n"))
        .await
        .ready()
        .await;
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    denied(&world.check("GET", "/api/orders", None).await);
    let (status, text) = world.admin("/metrics").await;
    assert_eq!(status, 200);
    let issuer = world.issuer.issuer();
    for needle in [
        format!("portcullis_jwks_fetches_total{{issuer=\"{issuer}\",outcome=\"ok\"}} 1"),
        format!("portcullis_jwks_keys{{issuer=\"{issuer}\"}} 1"),
        format!("portcullis_jwks_age_seconds{{issuer=\"{issuer}\"}} 0"),
        "portcullis_check_duration_seconds_count{decision=\"allow\",reason=\"none\",route=\"orders-read\"} 1".to_owned(),
        "portcullis_check_duration_seconds_count{decision=\"deny\",reason=\"missing_token\",route=\"orders-read\"} 1"
            .to_owned(),
        // Pre-seeded: series of routes nobody has called yet exist at 0, so rate() and
        // alerts see them.
        "portcullis_check_duration_seconds_count{decision=\"allow\",reason=\"none\",route=\"orders-write\"} 0"
            .to_owned(),
        "portcullis_check_duration_seconds_count{decision=\"deny\",reason=\"no_route\",route=\"\"} 0"
            .to_owned(),
        format!(
            "portcullis_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            env!("PORTCULLIS_COMMIT")
        ),
        "process_resident_memory_bytes ".to_owned(),
        "process_open_fds ".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing in\n{text}");
    }
}

#[tokio::test]
async fn cached_tokens_are_dropped_when_their_key_leaves_the_key_set() {
    let world = World::start_with(|y| {
        common::edited(&y, "unknown_kid_cooldown: 2s", "unknown_kid_cooldown: 0s")
    })
    .await
    .ready()
    .await;
    let token = world.token(READ);
    for _ in 0..3 {
        allowed(&world.bearer("GET", "/api/orders", &token).await);
    }
    let (_, metrics) = world.admin("/metrics").await;
    assert!(
        metrics.contains("portcullis_token_cache_lookups_total{outcome=\"hit\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_token_cache_entries 1"),
        "{metrics}"
    );

    // The issuer withdraws key-1; a token for the new key triggers the refresh.
    let new_key = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    world.issuer.publish(&[&new_key]);
    allowed(
        &world
            .bearer(
                "GET",
                "/api/orders",
                &new_key.sign(&world.claims(READ)).unwrap(),
            )
            .await,
    );
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "unknown_kid"
    );
}

#[tokio::test]
async fn cached_tokens_never_outlive_their_expiry() {
    let world =
        World::start_with(|y| y.replace("    algorithms:", "    leeway: 0s\n    algorithms:"))
            .await
            .ready()
            .await;
    let mut claims = world.claims(READ);
    claims["exp"] = json!(jsonwebtoken::get_current_timestamp() + 2);
    let token = world.sign(&claims);
    allowed(&world.bearer("GET", "/api/orders", &token).await);
    allowed(&world.bearer("GET", "/api/orders", &token).await);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "expired"
    );
}

/// RFC 7517 lets keys of different types share a `kid`: an EC and an RSA key published
/// under one `kid` each verify their own tokens.
#[tokio::test]
async fn keys_of_two_types_under_one_kid_both_verify() {
    let world = World::start().await.ready().await;
    let rsa = SigningKey::rsa("twin", Algorithm::RS256).unwrap();
    let ec = SigningKey::es256("twin").unwrap();
    world.issuer.publish(&[&world.key, &rsa, &ec]);
    for signer in [&rsa, &ec] {
        let token = signer.sign(&world.claims(READ)).unwrap();
        allowed(&world.bearer("GET", "/api/orders", &token).await);
    }
    // A third key under the same kid and type, which the set does not have: refused.
    let stranger = SigningKey::es256("twin").unwrap();
    let token = stranger.sign(&world.claims(READ)).unwrap();
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "bad_signature"
    );
}
