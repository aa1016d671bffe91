//! Structured logs with `tracing`. `RUST_LOG` wins over the configured filter.
//!
//! What is logged is chosen so that no log line carries a full PAN, a PIN, a PIN block, a
//! key or a token: the ISO path logs peers, MTIs, response codes and codec errors (which
//! name fields, never their content); `Pan`'s `Display` is masked.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: human-readable lines on stderr. Returns an error if the
/// filter does not parse or a subscriber is already installed.
pub fn init(default_filter: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(&value),
        _ => EnvFilter::try_new(default_filter),
    }
    .map_err(|e| format!("log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in files and log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| format!("log subscriber: {e}"))
}
