//! The reports of a test run: text for people, JSON for tools, JUnit XML for CI systems
//! (GitLab, Jenkins, GitHub test reporters), written with `quick-junit`.

use std::fmt::Write;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Outcome, suite_name};

/// One line per case, the failures' reasons, the untested routes and a summary.
pub fn text(outcome: &Outcome) -> String {
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for suite in &outcome.suites {
        let _ = writeln!(out, "{}", suite.path.display());
        if let Some(error) = &suite.error {
            failed += 1;
            let _ = writeln!(out, "  ERROR {error}");
        }
        for case in &suite.cases {
            match &case.failure {
                None => {
                    passed += 1;
                    let _ = writeln!(out, "  pass  {}", case.name);
                }
                Some(failure) => {
                    failed += 1;
                    let _ = writeln!(out, "  FAIL  {}: {failure}", case.name);
                }
            }
        }
    }
    if !outcome.untested_routes.is_empty() {
        let _ = writeln!(
            out,
            "untested routes: {}",
            outcome.untested_routes.join(", ")
        );
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    out
}

/// The run as JSON: every case with what was decided, and the untested routes.
pub fn json(outcome: &Outcome) -> String {
    serde_json::to_string_pretty(outcome).unwrap_or_default()
}

/// The run as JUnit XML: a test suite per file, a test case per case.
pub fn junit(outcome: &Outcome) -> String {
    let mut report = Report::new("portcullis policy tests");
    for suite in &outcome.suites {
        let name = suite_name(&suite.path);
        let mut junit = TestSuite::new(name.clone());
        if let Some(error) = &suite.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.clone());
            junit.add_test_case(TestCase::new("(suite)", status));
        }
        for case in &suite.cases {
            let status = match &case.failure {
                None => TestCaseStatus::success(),
                Some(failure) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(failure.clone());
                    status
                }
            };
            let mut test = TestCase::new(case.name.clone(), status);
            test.set_classname(name.clone());
            junit.add_test_case(test);
        }
        report.add_test_suite(junit);
    }
    report.to_string().unwrap_or_default()
}
