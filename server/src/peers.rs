//! Open connections per peer IP address, for the listeners' per-address bounds
//! (`iso.max_connections_per_peer`, `http.max_connections_per_peer`): one address that
//! floods connections is refused past its bound while other addresses are still admitted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per peer IP address. An address is present only while it has a
/// connection open, so the map never holds more entries than there are connection slots.
#[derive(Debug)]
pub(crate) struct PeerCounts {
    max_per_peer: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PeerCounts {
    pub(crate) fn new(max_per_peer: usize) -> PeerCounts {
        PeerCounts {
            max_per_peer,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn max_per_peer(&self) -> usize {
        self.max_per_peer
    }

    /// One more connection for `ip`, unless it already holds its bound. IPv4 addresses
    /// mapped into IPv6 count as the IPv4 address.
    pub(crate) fn try_take(self: &Arc<PeerCounts>, ip: IpAddr) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

/// One connection counted against its peer; released when dropped.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_counts_bound_each_address_and_forget_closed_ones() {
        let counts = Arc::new(PeerCounts::new(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let a_mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = counts.try_take(a).expect("first of a");
        let second = counts.try_take(a_mapped).expect("second of a, mapped");
        assert!(counts.try_take(a).is_none(), "a is at its bound");
        let other = counts.try_take(b).expect("b has its own bound");
        drop(first);
        let third = counts.try_take(a).expect("a slot of a was freed");
        drop((second, third, other));
        assert!(counts.open.lock().unwrap().is_empty());
    }
}
