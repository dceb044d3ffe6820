//! The Kubernetes manifests: every kustomization (overlays and examples) renders with
//! `kubectl kustomize` and its output validates offline and strictly
//! (scripts/validate_k8s.py: Kubernetes schemas of the oldest and newest supported
//! versions, the CRD schemas of Istio, Gateway API, Envoy Gateway, cert-manager and the
//! Prometheus Operator from npm, selectors, who the NetworkPolicy admits, alerts that
//! query real metrics, pod hardening, and every main and policy file through `portcullis
//! validate`, the examples' team files together).

mod common;

use std::process::Command;

use common::{external_tool, venv_python};

#[test]
fn every_kustomization_renders_and_validates_strictly() {
    let Some(_kubectl) = external_tool("kubectl") else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let Some(python) = venv_python("kubernetes-validate") else {
        return;
    };
    let output = Command::new(python)
        .arg("scripts/validate_k8s.py")
        .arg(env!("CARGO_BIN_EXE_portcullis"))
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for overlay in [
        "k8s/base",
        "k8s/overlays/example",
        "k8s/overlays/istio",
        "k8s/overlays/istio-ambient",
        "k8s/overlays/mtls",
        "k8s/examples/istio-sidecar",
        "k8s/examples/istio-ingress-gateway",
        "k8s/examples/istio-ambient-waypoint",
        "k8s/examples/envoy-gateway",
        "k8s/examples/standalone-envoy",
    ] {
        assert!(
            stdout.contains(&format!("{overlay}: ")),
            "{overlay} not checked:\n{stdout}"
        );
    }
}
