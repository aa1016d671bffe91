//! cardcore network simulator: scenario replay (the public scenario format), synthetic
//! traffic generation, and reports.

pub mod load;
pub mod scenario;
pub mod targets;
