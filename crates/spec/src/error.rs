//! Errors a user can cause with a bundle; each names the field, the value and what was expected.
use std::path::PathBuf;

/// A problem with the bundle or its `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config.json: {field}: {message}")]
    Json { field: String, message: String },
    #[error("config.json: {field} {value} is not valid (expected {expected})")]
    Invalid {
        field: String,
        value: String,
        expected: String,
    },
    #[error("config.json: {field} is not supported by bulwark-runtime: {reason}")]
    Unsupported { field: String, reason: String },
}

impl SpecError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> Self {
        SpecError::Invalid {
            field: field.into(),
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
