//! Collecting configuration problems: every invalid value is recorded with its field path
//! (`issuers[0].audiences`), so that one run lists them all.

use std::time::Duration;

use super::{FieldProblem, parse_duration};

/// Every problem found so far, each with its field path; problems under the places in
/// `skipped` (broken in a way already reported) are not recorded.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldProblem>, Vec<String>);

impl Problems {
    /// Every problem recorded, or nothing when there was none.
    pub(super) fn into_result(self) -> Result<(), Vec<FieldProblem>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// Problems already found (each kept).
    pub(super) fn extend(&mut self, found: Vec<FieldProblem>) {
        self.0.extend(found);
    }

    /// From now on, problems under these places are not recorded.
    pub(super) fn skip_under(&mut self, places: Vec<String>) {
        self.1.extend(places);
    }

    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if super::shape::under(&field, &self.1) {
            return;
        }
        self.0.push(FieldProblem {
            field,
            message: message.into(),
            at: None,
            route: None,
        });
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(message)) => {
                self.add(field, message);
                default
            }
        }
    }
}
