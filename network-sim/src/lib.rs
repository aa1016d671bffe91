//! cardcore network simulator: scenario replay (the public scenario format), synthetic
//! traffic generation, and reports.

pub mod scenario;
pub mod targets;
pub mod load;
