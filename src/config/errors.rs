//! Why a configuration is refused: an unreadable file, YAML that does not parse (in our
//! words), or every invalid field with its place, one a line as editors and CI read them.

use std::fmt;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path} is not valid:\n{}", format_problems(path, .problems))]
    Invalid {
        path: String,
        problems: Vec<FieldProblem>,
    },
}

/// One invalid value, named by its field path (`issuers[0].audiences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    /// The line and column of the field in the file (1-based), when it could be found.
    pub at: Option<(usize, usize)>,
    /// The name of the route the field is in, if any.
    pub route: Option<String>,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One problem a line, as `file:line: field: message` (the form editors and CI
/// annotations read).
fn format_problems(path: &str, problems: &[FieldProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            let at = p.at.map_or(String::new(), |(line, column)| {
                format!("{path}:{line}:{column}: ")
            });
            let route = p
                .route
                .as_ref()
                .map_or(String::new(), |name| format!(" (route {name:?})"));
            format!("  - {at}{}{route}: {}", p.field, p.message)
        })
        .collect();
    lines.join("\n")
}

/// A YAML error in our words: where, and what (a key given twice is named as such).
pub(super) fn syntax(error: &serde_saphyr::Error, origin: &str) -> ConfigError {
    let message = error.to_string().replace("<input>", origin).replace(
        ", set DuplicateKeyPolicy in Options if acceptable",
        " (a key may be given once)",
    );
    ConfigError::Syntax {
        path: origin.to_owned(),
        message,
    }
}
