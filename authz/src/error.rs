//! The engine's errors: what a management call or query can be refused for. A decline is
//! not an error: it is an answer (see [`crate::state::Answer`]).

/// Why a management operation was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The thing named does not exist (or belongs to another profile).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A field of the request is wrong; `field` names it as the API spells it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request is well-formed but the state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The journal failed: the change may not be durable, so the engine stops taking writes.
    #[error("journal: {0}")]
    Journal(String),
    /// The engine is shutting down or a partition has stopped.
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn not_found(what: &'static str, id: impl ToString) -> EngineError {
        EngineError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            field,
            message: message.into(),
        }
    }
}
