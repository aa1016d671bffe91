//! What scenario replay and load generation drive: an embedded engine ([`InProcessTarget`]),
//! a running sandbox server ([`TcpTarget`]), and the ISO 8583 messages both send ([`iso`]).

pub mod in_process;
pub mod iso;
pub mod keys;
pub mod tcp;

pub use in_process::InProcessTarget;
pub use keys::SimKeys;
pub use tcp::TcpTarget;
