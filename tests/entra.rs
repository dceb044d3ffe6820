//! Microsoft Entra ID shapes, end to end over gRPC: the `entra:` preset (pointed at a
//! loopback identity provider through `instance`/`v1_instance`) and tokens with Entra's
//! v1.0 and v2.0 claim shapes, single- and multi-tenant, with tenant and client
//! allow-lists, ID tokens and RFC 9068 `typ`.

mod common;

use common::{World, allowed, denied};
use jsonwebtoken::{Algorithm, Header, get_current_timestamp};
use portcullis::demo::DemoIssuer;
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "0f1e2d3c-4b5a-4969-8877-665544332211";
const API: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const CALLER: &str = "11112222-3333-4444-5555-666677778888";

const ROUTES: &str = "routes:\n  - name: orders\n    path: { prefix: /api/orders }\n    require_any:\n      - scopes: [Orders.Read]\n      - roles: [Orders.Read.All]\n";

/// An `entra:` issuer entry whose instances point at the loopback identity provider.
fn entra(issuer: &DemoIssuer, tenant: &str, extra: &str) -> String {
    let base = issuer.base_url();
    format!(
        "issuers:\n  - entra:\n      tenant: {tenant}\n      client_id: {API}\n      instance: {base}/\n      v1_instance: {base}/sts/\n{extra}{ROUTES}"
    )
}

/// Claims of an Entra v2.0 access token for `tenant`.
fn v2(world: &World, tenant: &str) -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": format!("{}/{tenant}/v2.0", world.issuer.base_url()),
        "aud": API, "tid": tenant, "azp": CALLER, "scp": "Orders.Read",
        "sub": "u", "oid": "o", "ver": "2.0", "iat": now, "nbf": now, "exp": now + 600,
    })
}

/// Claims of an Entra v1.0 access token for `tenant`.
fn v1(world: &World, tenant: &str) -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": format!("{}/sts/{tenant}/", world.issuer.base_url()),
        "aud": format!("api://{API}"), "tid": tenant, "appid": CALLER, "roles": ["Orders.Read.All"],
        "sub": "app", "oid": "o", "ver": "1.0", "iat": now, "nbf": now, "exp": now + 600,
    })
}

async fn reason(world: &World, claims: &Value) -> String {
    let response = world
        .bearer("GET", "/api/orders", &world.sign(claims))
        .await;
    match &response.http_response {
        Some(portcullis::pb::auth::check_response::HttpResponse::OkResponse(_)) => "allow".into(),
        _ => denied(&response).reason,
    }
}

#[tokio::test]
async fn single_tenant_preset_accepts_v1_and_v2_and_nothing_else() {
    let world = World::start_config(|i| entra(i, TENANT, ""))
        .await
        .ready()
        .await;
    assert_eq!(reason(&world, &v2(&world, TENANT)).await, "allow");
    assert_eq!(reason(&world, &v1(&world, TENANT)).await, "allow");
    let (headers, _) = allowed(
        &world
            .bearer("GET", "/api/orders", &world.sign(&v1(&world, TENANT)))
            .await,
    );
    assert_eq!(
        headers["x-auth-client-id"], CALLER,
        "v1 appid is the calling app"
    );

    let mut other = v2(&world, OTHER_TENANT);
    assert_eq!(reason(&world, &other).await, "unknown_issuer");
    other["iss"] = v2(&world, TENANT)["iss"].clone();
    other["aud"] = json!("api://some-other-api");
    assert_eq!(reason(&world, &other).await, "wrong_audience");

    // An ID token: right issuer and audience (the client id), but no scp/roles.
    let mut id_token = v2(&world, TENANT);
    let object = id_token.as_object_mut().unwrap();
    object.remove("scp");
    object.insert("nonce".into(), json!("n-0S6_WzA2Mj"));
    let response = world
        .bearer("GET", "/api/orders", &world.sign(&id_token))
        .await;
    let d = denied(&response);
    assert_eq!((d.status, d.reason.as_str()), (401, "not_access_token"));
}

#[tokio::test]
async fn multi_tenant_template_needs_tid_to_match_and_to_be_allowed() {
    let extra = format!("    allowed_tenants: [{TENANT}]\n");
    let world = World::start_config(|i| entra(i, "organizations", &extra))
        .await
        .ready()
        .await;
    assert_eq!(reason(&world, &v2(&world, TENANT)).await, "allow");
    assert_eq!(reason(&world, &v1(&world, TENANT)).await, "allow");
    assert_eq!(
        reason(&world, &v2(&world, OTHER_TENANT)).await,
        "tenant_not_allowed"
    );

    // The issuer names one tenant, the tid claim another: a forged combination.
    let mut mixed = v2(&world, TENANT);
    mixed["tid"] = json!(OTHER_TENANT);
    assert_eq!(reason(&world, &mixed).await, "unknown_issuer");
    let mut no_tid = v2(&world, TENANT);
    no_tid.as_object_mut().unwrap().remove("tid");
    assert_eq!(reason(&world, &no_tid).await, "unknown_issuer");
    let mut nested = v2(&world, TENANT);
    nested["iss"] = json!(format!("{}/{TENANT}/x/v2.0", world.issuer.base_url()));
    assert_eq!(reason(&world, &nested).await, "unknown_issuer");
}

#[tokio::test]
async fn multi_tenant_with_every_tenant_allowed_explicitly() {
    let world = World::start_config(|i| entra(i, "organizations", "    allowed_tenants: ['*']\n"))
        .await
        .ready()
        .await;
    assert_eq!(reason(&world, &v2(&world, OTHER_TENANT)).await, "allow");
}

#[tokio::test]
async fn client_allow_list_checks_azp_and_appid() {
    let extra = format!("    allowed_clients: [{CALLER}]\n");
    let world = World::start_config(|i| entra(i, TENANT, &extra))
        .await
        .ready()
        .await;
    assert_eq!(reason(&world, &v2(&world, TENANT)).await, "allow");
    assert_eq!(reason(&world, &v1(&world, TENANT)).await, "allow");
    let mut stranger = v2(&world, TENANT);
    stranger["azp"] = json!("99999999-0000-0000-0000-000000000000");
    let response = world
        .bearer("GET", "/api/orders", &world.sign(&stranger))
        .await;
    let d = denied(&response);
    assert_eq!((d.status, d.reason.as_str()), (403, "client_not_allowed"));
}

#[tokio::test]
async fn rfc_9068_typ_can_be_required() {
    let world = World::start_with(|yaml| {
        yaml.replace(
            "    algorithms:",
            "    require_typ: at+jwt\n    algorithms:",
        )
    })
    .await
    .ready()
    .await;
    let claims = world.claims(portcullis::demo::Grant::Scopes("Orders.Read"));
    let plain = world.sign(&claims);
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &plain).await).reason,
        "wrong_token_type"
    );
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key-1".into());
    header.typ = Some("at+jwt".into());
    let access = world.key.sign_with_header(&header, &claims).unwrap();
    allowed(&world.bearer("GET", "/api/orders", &access).await);
}

/// Token shapes a real issuer signs that must not widen access: a `tid` that disagrees
/// with the tenant of `iss`, a caller in the other token version's claim, and a second
/// scope claim beside `scp`.
#[tokio::test]
async fn each_token_is_read_as_its_version_and_tenant_mean_it() {
    let extra = format!("    allowed_tenants: [{OTHER_TENANT}]\n    allowed_clients: [{CALLER}]\n");
    let world = World::start_config(|i| entra(i, TENANT, &extra))
        .await
        .ready()
        .await;
    // The issuer names tenant TENANT (trusted, but not allowed); the token's tid names the
    // allowed one.
    let mut mismatched = v2(&world, TENANT);
    mismatched["tid"] = json!(OTHER_TENANT);
    assert_eq!(reason(&world, &mismatched).await, "unknown_issuer");
    let world =
        World::start_config(|i| entra(i, TENANT, &format!("    allowed_clients: [{CALLER}]\n")))
            .await
            .ready()
            .await;
    // v2.0 names its caller in azp only, v1.0 in appid only.
    let mut v2_appid = v2(&world, TENANT);
    v2_appid.as_object_mut().unwrap().remove("azp");
    v2_appid["appid"] = json!(CALLER);
    assert_eq!(reason(&world, &v2_appid).await, "client_not_allowed");
    let mut v1_azp = v1(&world, TENANT);
    v1_azp.as_object_mut().unwrap().remove("appid");
    v1_azp["azp"] = json!(CALLER);
    assert_eq!(reason(&world, &v1_azp).await, "client_not_allowed");
    // Scopes come from scp only: a `scope` claim beside it adds nothing.
    let mut widened = v2(&world, TENANT);
    widened["scp"] = json!("User.Read");
    widened["scope"] = json!("Orders.Read");
    assert_eq!(reason(&world, &widened).await, "insufficient_permission");
    let mut missing = v2(&world, TENANT);
    missing.as_object_mut().unwrap().remove("tid");
    assert_eq!(reason(&world, &missing).await, "unknown_issuer");
}

#[tokio::test]
async fn an_authentication_context_is_asked_for_with_the_claims_challenge_msal_reads() {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    let world = World::start_config(|i| {
        entra(i, TENANT, "").replace(
            "      - roles: [Orders.Read.All]\n",
            "      - roles: [Orders.Read.All]\n    step_up: { auth_contexts: [c1] }\n",
        )
    })
    .await;
    let mut with_c1 = v2(&world, TENANT);
    with_c1["acrs"] = json!(["c1"]);
    assert_eq!(reason(&world, &with_c1).await, "allow");
    with_c1["acrs"] = json!(["c2", "c1"]);
    assert_eq!(reason(&world, &with_c1).await, "allow");

    for acrs in [None, Some(json!([])), Some(json!(["c2"]))] {
        let mut claims = v2(&world, TENANT);
        if let Some(acrs) = acrs {
            claims["acrs"] = acrs;
        }
        let response = world
            .bearer("GET", "/api/orders", &world.sign(&claims))
            .await;
        let deny = denied(&response);
        assert_eq!(
            (deny.status, deny.reason.as_str()),
            (401, "insufficient_claims")
        );
        let challenge = deny.challenge.unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"portcullis\", error=\"insufficient_claims\""),
            "{challenge}"
        );
        let encoded = challenge
            .split("claims=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let request: Value = serde_json::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(
            request,
            json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}})
        );
    }
    // A v1.0 application token cannot step up (no user signs in): it is challenged the
    // same way, and never allowed without the context.
    assert_eq!(
        reason(&world, &v1(&world, TENANT)).await,
        "insufficient_claims"
    );
}
