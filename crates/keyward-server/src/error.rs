//! The binary's error type: every failure becomes one `error: …` line and a non-zero exit code.
//! Messages never contain secrets (database passwords are redacted, keys are never echoed).

use keyward_core::ServiceError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// A bad flag, environment variable or config file value.
    #[error("{0}")]
    Config(String),
    /// The database (or Redis) could not be opened or used.
    #[error("{0}")]
    Store(String),
    /// A management call was refused.
    #[error("{}", service_message(.0))]
    Service(#[from] ServiceError),
    /// Anything about files, sockets and the like.
    #[error("{0}")]
    Io(String),
}

fn service_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Validation(errors) => {
            let parts: Vec<String> = errors
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            format!("invalid request: {}", parts.join("; "))
        }
        ServiceError::NotFound => "no such key".to_owned(),
        other => other.to_string(),
    }
}

impl AppError {
    /// A configuration error.
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }
}
