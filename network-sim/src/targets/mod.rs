//! What scenario replay and load generation drive: an embedded engine ([`InProcessTarget`])
//! and the ISO 8583 messages both targets send ([`iso`]).

pub mod in_process;
pub mod iso;
pub mod keys;

pub use in_process::InProcessTarget;
pub use keys::SimKeys;
