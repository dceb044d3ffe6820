//! Reading a configuration: a file, YAML text (every problem in one pass: shape, values
//! and cross-field rules), the policy directory beside it, and the JSON Schemas of both
//! kinds of file.

use std::path::Path;

use super::{
    Config, ConfigError, IssuerConfig, PolicySetConfig, RouteConfig, errors::syntax, locate, raw,
    sets, shape, validate,
};

impl Config {
    /// The main file's issuers, then every policy file's.
    pub fn all_issuers(&self) -> impl Iterator<Item = &IssuerConfig> {
        self.issuers
            .iter()
            .chain(self.sets.iter().flat_map(|set| set.issuers.iter()))
    }

    /// The main file's routes, then every policy file's.
    pub fn all_routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes
            .iter()
            .chain(self.sets.iter().flat_map(|set| set.routes.iter()))
    }

    /// Reads the main file `path` and the policy directory — `policy_dir` when given, else
    /// the one the file names, if any — each broken policy file replaced by its version in
    /// `previous` (the sets loaded last time) and reported in `policy_files`.
    pub fn load_with_sets(
        path: &Path,
        policy_dir: Option<&Path>,
        previous: &[PolicySetConfig],
    ) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        if let Some(dir) = policy_dir {
            config.policy_dir = Some(dir.to_owned());
        }
        if let Some(dir) = &config.policy_dir {
            let (loaded, reports) = sets::load_dir(dir, previous, &config.issuers)?;
            for report in reports.iter().filter_map(|r| r.problem.as_ref()) {
                tracing::error!(problem = %report, "Policy file refused; its last good version (if any) keeps serving");
            }
            config.sets = loaded;
            config.policy_files = reports;
        }
        Ok(config)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Config::from_yaml(&text, &shown)
    }

    /// The JSON Schema of the configuration file's shape (generated from the types the
    /// file is read into), for editors and CI linters: `portcullis config-schema`, and
    /// `config/portcullis.schema.json` in the repository. Values are validated further
    /// when the file is loaded (durations, URLs, listen addresses, cross-field rules).
    /// With `policy_file`, the schema of a policy directory's files
    /// (`config/policy-file.schema.json`).
    pub fn json_schema(policy_file: bool) -> String {
        let schema = match policy_file {
            false => schemars::schema_for!(raw::RawConfig),
            true => schemars::schema_for!(raw::RawPolicyFile),
        };
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses and validates YAML text; `origin` names it in error messages. A file that
    /// is not YAML is a syntax error (with line and column); a file whose shape is wrong
    /// gets every shape problem listed at once, each with its field path.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: origin.to_owned(),
            problems: locate::located(problems, text),
        };
        let raw: raw::RawConfig = match serde_saphyr::from_str(text) {
            Ok(raw) => raw,
            Err(first) => {
                let Ok(document) = serde_saphyr::from_str::<serde_json::Value>(text) else {
                    return Err(syntax(&first, origin));
                };
                let mut problems = shape::problems(&document);
                if problems.is_empty() {
                    return Err(syntax(&first, origin));
                }
                // One pass: the values of what did deserialize are checked too.
                let (salvaged, broken) = shape::salvaged(&document, &problems);
                if let Ok(raw) = serde_json::from_value::<raw::RawConfig>(salvaged)
                    && let Err(more) = validate::validate(raw)
                {
                    problems.extend(
                        more.into_iter()
                            .filter(|p| !shape::under(&p.field, &broken)),
                    );
                }
                return Err(invalid(problems));
            }
        };
        validate::validate(raw).map_err(invalid)
    }
}
