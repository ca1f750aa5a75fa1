//! What can be wrong with a seccomp profile.

/// A profile that cannot be compiled; each names the field, the value and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("config.json: {field} {value} is not valid (expected {expected})")]
    Invalid {
        field: String,
        value: String,
        expected: String,
    },
    #[error("config.json: {field}: libseccomp refused it: {message}")]
    Library { field: String, message: String },
    #[error("exporting the seccomp program: {0}")]
    Export(String),
}

impl SeccompError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> Self {
        SeccompError::Invalid {
            field: field.into(),
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }

    pub(crate) fn library(field: impl Into<String>, e: impl std::fmt::Display) -> Self {
        SeccompError::Library {
            field: field.into(),
            message: e.to_string(),
        }
    }
}
