//! cardcore ledger: multi-currency balances, holds, postings and limit usage kept in memory
//! (`book`), and the journal that makes every change durable in sled (`journal`).
#![deny(clippy::float_arithmetic)]

pub mod book;
pub mod journal;
