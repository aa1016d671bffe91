//! The in-memory ledger of one partition.
