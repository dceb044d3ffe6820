use super::*;
use std::collections::HashSet;

#[test]
fn every_reason_maps_consistently() {
    // (reason, status, bearer error code or None for no challenge / Some(None) for a bare one)
    let table: &[(DenyReason, u16, Option<Option<&str>>)] = &[
        (DenyReason::InvalidRequest, 400, None),
        (DenyReason::MissingToken, 401, Some(None)),
        (DenyReason::UnsupportedScheme, 401, Some(None)),
        (
            DenyReason::MalformedAuthorization,
            401,
            Some(Some("invalid_request")),
        ),
        (DenyReason::MalformedToken, 401, Some(Some("invalid_token"))),
        (DenyReason::TokenTooLarge, 401, Some(Some("invalid_token"))),
        (DenyReason::UnknownIssuer, 401, Some(Some("invalid_token"))),
        (
            DenyReason::DisallowedAlgorithm,
            401,
            Some(Some("invalid_token")),
        ),
        (DenyReason::UnknownKid, 401, Some(Some("invalid_token"))),
        (DenyReason::KeyMismatch, 401, Some(Some("invalid_token"))),
        (DenyReason::BadSignature, 401, Some(Some("invalid_token"))),
        (DenyReason::Expired, 401, Some(Some("invalid_token"))),
        (DenyReason::NotYetValid, 401, Some(Some("invalid_token"))),
        (DenyReason::WrongAudience, 401, Some(Some("invalid_token"))),
        (DenyReason::MissingClaim, 401, Some(Some("invalid_token"))),
        (DenyReason::WrongTokenType, 401, Some(Some("invalid_token"))),
        (
            DenyReason::TenantNotAllowed,
            403,
            Some(Some("insufficient_scope")),
        ),
        (
            DenyReason::ClientNotAllowed,
            403,
            Some(Some("insufficient_scope")),
        ),
        (DenyReason::NotAccessToken, 401, Some(Some("invalid_token"))),
        (DenyReason::NoRoute, 403, Some(Some("insufficient_scope"))),
        (
            DenyReason::InsufficientPermission,
            403,
            Some(Some("insufficient_scope")),
        ),
        (
            DenyReason::ConditionFailed,
            403,
            Some(Some("insufficient_scope")),
        ),
        (
            DenyReason::BoundTokenAsBearer,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::DpopProofMissing,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::InvalidDpopProof,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopKeyMismatch,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::DpopMethodMismatch,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopUriMismatch,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopProofStale,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopAthMismatch,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopProofReplayed,
            401,
            Some(Some("invalid_dpop_proof")),
        ),
        (
            DenyReason::DpopNonceRequired,
            401,
            Some(Some("use_dpop_nonce")),
        ),
        (
            DenyReason::CertificateMissing,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::CertificateMismatch,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::UnsupportedBinding,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::SenderConstraintRequired,
            401,
            Some(Some("invalid_token")),
        ),
        (
            DenyReason::InsufficientUserAuthentication,
            401,
            Some(Some("insufficient_user_authentication")),
        ),
        (
            DenyReason::InsufficientClaims,
            401,
            Some(Some("insufficient_claims")),
        ),
        (DenyReason::ReplayStoreUnavailable, 503, None),
        (DenyReason::KeysUnavailable, 503, None),
        (DenyReason::Overloaded, 503, None),
        (DenyReason::Internal, 500, None),
    ];
    assert_eq!(table.len(), DenyReason::ALL.len());
    for (reason, status, challenge) in table {
        assert_eq!(reason.http_status(), *status, "{reason:?}");
        assert_eq!(
            challenge.is_some(),
            matches!(status, 401 | 403),
            "{reason:?}: every 401 and 403 carries a challenge, nothing else does"
        );
        let fault = match reason {
            DenyReason::KeysUnavailable | DenyReason::ReplayStoreUnavailable => Fault::Upstream,
            _ if *status >= 500 => Fault::Service,
            _ => Fault::Client,
        };
        assert_eq!(reason.fault(), fault, "{reason:?}");
        assert_eq!(
            reason.bearer_error().map(BearerError::code),
            *challenge,
            "{reason:?}"
        );
    }
}

#[test]
fn codes_are_unique_snake_case_labels() {
    let codes: HashSet<_> = DenyReason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), DenyReason::ALL.len());
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
}

#[test]
fn grpc_codes_follow_http_status() {
    assert_eq!(
        DenyReason::Expired.grpc_code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        DenyReason::NoRoute.grpc_code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        DenyReason::KeysUnavailable.grpc_code(),
        tonic::Code::Unavailable
    );
    assert_eq!(
        DenyReason::InvalidRequest.grpc_code(),
        tonic::Code::InvalidArgument
    );
}

#[test]
fn descriptions_are_quotable_in_a_header() {
    for reason in DenyReason::ALL {
        let d = reason.description();
        assert!(
            d.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        );
    }
}
