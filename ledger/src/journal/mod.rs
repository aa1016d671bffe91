//! The durable journal: group-committed events in sled, snapshots and recovery.
