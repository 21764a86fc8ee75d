//! latency patch: the connections each client holds. Each connection holds a thread, and the
//! threads are few (systemd's `TasksMax=`, `RLIMIT_NPROC`): one client opening hundreds of
//! silent connections took them all, and every other client waited up to 30 s for a thread.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many connections each client holds, against a limit per client.
pub struct ClientSlots {
    limit: usize,
    held: Arc<Mutex<HashMap<IpAddr, Held>>>,
}

#[derive(Default)]
struct Held {
    connections: usize,
    /// Whether a refusal was logged since the client last held no connection: a flood is
    /// logged once, not once per connection.
    refusal_logged: bool,
}

/// One connection's place, given back when dropped (when the connection ends).
pub struct Slot {
    held: Arc<Mutex<HashMap<IpAddr, Held>>>,
    client: IpAddr,
}

/// What a refused connection is told.
pub struct Refusal {
    /// Whether this is the client's first refusal since it last held no connection.
    pub first: bool,
    pub client: IpAddr,
}

impl ClientSlots {
    pub fn new(limit: usize) -> ClientSlots {
        ClientSlots { limit, held: Arc::default() }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A place for a connection from `address`, unless its client holds `limit` already.
    pub fn take(&self, address: IpAddr) -> Result<Slot, Refusal> {
        let client = client(address);
        let mut held = lock(&self.held);
        let entry = held.entry(client).or_default();
        if entry.connections >= self.limit {
            let first = !entry.refusal_logged;
            entry.refusal_logged = true;
            return Err(Refusal { first, client });
        }
        entry.connections += 1;
        Ok(Slot { held: self.held.clone(), client })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(entry) = held.get_mut(&self.client) {
            entry.connections -= 1;
            // Clients that left take no memory.
            if entry.connections == 0 {
                held.remove(&self.client);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay meaningful if a thread panicked holding the lock.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Who holds a connection from `address`. An IPv4 client reaching a dual-stack socket shows
/// as an IPv4-mapped IPv6 address: it is its IPv4 address. An IPv6 host is given a /64 of
/// its own to pick addresses from, so its client is the /64.
fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_holds_at_most_the_limit_and_an_ended_connection_frees_its_place() {
        let slots = ClientSlots::new(3);
        let held: Vec<Slot> = (0..3).map(|_| slots.take(ip("198.51.100.7")).ok().unwrap()).collect();
        let refused = slots.take(ip("198.51.100.7")).err().unwrap();
        assert!(refused.first);
        assert_eq!(refused.client, ip("198.51.100.7"));
        assert!(!slots.take(ip("198.51.100.7")).err().unwrap().first, "a flood is logged once");
        // Other clients are not held to this one's count.
        let other = slots.take(ip("198.51.100.8")).ok().unwrap();
        drop(held);
        let again: Vec<Slot> = (0..3).map(|_| slots.take(ip("198.51.100.7")).ok().unwrap()).collect();
        assert!(slots.take(ip("198.51.100.7")).err().unwrap().first, "a new flood is logged again");
        drop((again, other));
        assert!(lock(&slots.held).is_empty(), "clients that left take no memory");
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let slots = ClientSlots::new(1);
        let _v4 = slots.take(ip("203.0.113.5")).ok().unwrap();
        assert!(slots.take(ip("::ffff:203.0.113.5")).is_err(), "mapped IPv4 is the same client");
        let _v6 = slots.take(ip("2001:db8:51:1::1")).ok().unwrap();
        assert!(slots.take(ip("2001:db8:51:1:ffff::9")).is_err(), "the same /64");
        assert!(slots.take(ip("2001:db8:51:2::1")).is_ok(), "another /64");
    }
}
