//! Collecting configuration problems: every invalid value is recorded with its field path
//! (`issuers[0].audiences`), so that one run lists them all.

use std::time::Duration;

use super::{FieldProblem, parse_duration};

/// Every problem found so far, each with its field path.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldProblem>);

impl Problems {
    /// Every problem recorded, or nothing when there was none.
    pub(super) fn into_result(self) -> Result<(), Vec<FieldProblem>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            message: message.into(),
            line: None,
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
