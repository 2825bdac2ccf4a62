//! Errors. Every error that concerns a resource carries its address and the operation, so a user can
//! always tell *what* failed *where* without reading logs.

use std::fmt;

/// One problem found before any API call: which resource, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub address: String,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{}`: {}", self.address, field, self.message),
            None => write!(f, "{}: {}", self.address, self.message),
        }
    }
}

/// A field-level problem reported by a resource's own `validate`; the engine adds the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An error from a cloud API, as a provider reports it. The engine wraps it with address and operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProviderError {
    /// The service's error code (`ResourceConflictException`), when it gave one.
    pub code: Option<String>,
    pub message: String,
    /// A hint we know for this error (what the user can do about it).
    pub hint: Option<String>,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { code: None, message: message.into(), hint: None }
    }
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: Some(code.into()), message: message.into(), hint: None }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the stack is invalid; nothing was called:\n{}", list(.0))]
    Validation(Vec<Diagnostic>),

    #[error("{address}: {operation} failed: {source}")]
    Provider { address: String, operation: &'static str, source: ProviderError },

    /// The credentials are for another account, region or partition than the state (or the stack) allows.
    #[error("refusing to run: {0}; nothing was read or changed")]
    WrongAccount(String),

    #[error("{address}: {message}")]
    Refused { address: String, message: String },

    #[error("state {location}: {message}")]
    State { location: String, message: String },

    #[error("state {location} is locked by {holder}; if that run is gone, run `force-unlock {lock_id}`")]
    Locked { location: String, holder: String, lock_id: String },

    #[error("the saved plan can't be applied: {0}; run `plan` again")]
    StalePlan(String),

    #[error("{} step(s) failed:\n{}", .0.len(), list(.0))]
    Failed(Vec<Error>),

    #[error("interrupted: running steps finished, state saved")]
    Interrupted,

    #[error("{0}")]
    Usage(String),

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
    pub fn state(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::State { location: location.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
