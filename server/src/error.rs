//! The service's errors. They name what is wrong and never carry a key, a token or a PAN.

use cardcore_authz::EngineError;

/// Why the service could not start, reset or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A configuration field is wrong; `field` names it as the TOML file spells it.
    #[error("config {field}: {problem}")]
    Config { field: String, problem: String },
    /// The keys file is unreadable or holds a bad key.
    #[error("keys file {path}: {problem}")]
    Keys { path: String, problem: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// Reset wipes every piece of state: only a sandbox offers it.
    #[error("reset is only available in sandbox mode")]
    NotSandbox,
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl ServiceError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ServiceError {
        ServiceError::Io {
            context: context.into(),
            source,
        }
    }
}
