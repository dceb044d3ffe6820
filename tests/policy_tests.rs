//! `portcullis test`, as a team runs it in CI: the suites shipped with
//! `config/example.yaml` and the Kubernetes examples pass; a failing suite exits 1 and
//! names each failure; the JUnit report is read by a real JUnit consumer (PyPI
//! `junitparser`) and the JSON one by serde.

mod common;

use std::{path::Path, process::Command};

use common::envoy::test_dir;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `portcullis test` with `args`: exit code, stdout.
fn test(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN)
        .arg("test")
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

/// Tests, failures and errors of a JUnit report, as junitparser reads it; `None` when
/// the venv lacks it (a skip, unless PORTCULLIS_REQUIRE_E2E).
fn junit_counts(report: &Path) -> Option<(u64, u64, u64, Vec<String>)> {
    let python = Path::new(ROOT).join(".venv/bin/python");
    let script = "import sys, json, junitparser\n\
        xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
        failed = [case.name for suite in xml for case in suite if not case.is_passed]\n\
        print(json.dumps([xml.tests, xml.failures, xml.errors, failed]))\n";
    let output = Command::new(&python)
        .args(["-c", script])
        .arg(report)
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let (tests, failures, errors, failed): (u64, u64, u64, Vec<String>) =
                serde_json::from_slice(&output.stdout).unwrap();
            Some((tests, failures, errors, failed))
        }
        other => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
                "junitparser missing in .venv: run scripts/test.sh ({other:?})"
            );
            eprintln!("SKIPPED: junitparser not installed");
            None
        }
    }
}

#[test]
fn the_shipped_suites_pass() {
    let dir = test_dir("suites");
    let junit = dir.join("example.xml");
    let (code, out) = test(&[
        "--config",
        "config/example.yaml",
        "config/example.test.yaml",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("15 passed, 0 failed"), "{out}");
    assert!(
        !out.contains("untested routes"),
        "every route of the example is tested:\n{out}"
    );
    if let Some((tests, failures, errors, _)) = junit_counts(&junit) {
        assert_eq!((tests, failures, errors), (15, 0, 0));
    }
    // The Kubernetes examples' team files, with the platform's main file and baseline,
    // as one policy directory.
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let root = Path::new(ROOT);
    let mut files = vec![root.join("k8s/components/policy-directory/platform.yaml")];
    for example in [
        "istio-sidecar/orders",
        "standalone-envoy/shipping",
        "standalone-envoy/returns",
    ] {
        files.push(root.join(format!("k8s/examples/{example}.yaml")));
    }
    for file in files {
        std::fs::copy(&file, policies.join(file.file_name().unwrap())).unwrap();
    }
    let (code, out) = test(&[
        "--config",
        "k8s/components/policy-directory/portcullis.yaml",
        "--policy-dir",
        policies.to_str().unwrap(),
        "k8s/examples/istio-sidecar/orders.test.yaml",
        "k8s/examples/standalone-envoy/edge.test.yaml",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("11 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_suite_names_each_failure_and_exits_1() {
    let dir = test_dir("suites-failing");
    let suite = dir.join("orders.test.yaml");
    std::fs::write(
        &suite,
        "tests:
  - name: passes
    request: { path: /api/orders/7 }
    claims: { scp: Orders.Read }
    expect: allow
  - name: wrong decision
    request: { method: DELETE, path: /api/orders/7 }
    claims: { scp: Orders.Read }
    expect: allow
  - name: wrong header
    request: { path: /api/orders/7 }
    claims: { scp: Orders.Read, oid: o-1 }
    expect: { decision: allow, headers: { x-auth-object-id: o-2, x-auth-roles: null } }
  - name: wrong reason
    request: { path: /api/orders/7 }
    expect: { decision: deny, reason: expired }
",
    )
    .unwrap();
    let broken = dir.join("broken.test.yaml");
    std::fs::write(&broken, "tests:\n  - name: x\n    requets: {}\n").unwrap();
    let junit = dir.join("report.xml");
    let (code, out) = test(&[
        "--config",
        "config/example.yaml",
        suite.to_str().unwrap(),
        broken.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "pass  passes",
        "FAIL  wrong decision: decision: expected allow, got deny",
        "FAIL  wrong header: header x-auth-object-id: expected \"o-2\", got \"o-1\"",
        "FAIL  wrong reason: reason: expected expired, got missing_token",
        "ERROR",
        "requets",
        "1 passed, 4 failed",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in\n{out}");
    }
    if let Some((tests, failures, errors, failed)) = junit_counts(&junit) {
        assert_eq!((tests, failures, errors), (5, 3, 1));
        assert_eq!(
            failed,
            ["wrong decision", "wrong header", "wrong reason", "(suite)"]
        );
    }
    let (code, out) = test(&[
        "--config",
        "config/example.yaml",
        suite.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    assert_eq!(cases[1]["decision"], "deny");
    assert_eq!(cases[1]["reason"], "insufficient_permission");
    assert_eq!(cases[1]["status"], 403);
    assert!(cases[0]["failure"].is_null());
    assert!(
        report["untested_routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "export")
    );
}
