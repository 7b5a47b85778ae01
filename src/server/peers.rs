//! Who holds the connections, so that a flood from one address cannot
//! starve another: without it, 6,000 half-sent request heads from
//! 127.0.0.1, each reopened as soon as it was closed, keep every slot taken
//! and `/health` unanswered for 30 s.
//!
//! - One address (an IPv4 address, or an IPv6 /64, what one host is given)
//!   holds at most its share of the connections ([`Limits::per_peer`]).
//!   When it holds that many, a new one from it closes its oldest connection
//!   that has not yet sent a whole request head; if every one of them has,
//!   the new one is closed at once. A slowloris from one address therefore
//!   costs only its share, and a request it sends itself still gets in.
//! - When every slot is taken, a new connection closes the oldest one (from
//!   anywhere) that has not sent a whole request head, so that floods from
//!   several addresses cannot starve a client that sends its request at
//!   once; when none is left to close, it waits for a slot.
//!
//! A connection is "waiting" from its accept until its first request head
//! is whole; a kept-alive connection between two requests is not, and is
//! closed by hyper's header timeout instead.
//!
//! [`Limits::per_peer`]: super::connections::Limits::per_peer

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

use crate::locked;

/// Where connections come from, as far as sharing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address: a host gets a whole /64.
    V6(u64),
}

impl Peer {
    pub fn of(ip: IpAddr) -> Peer {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Peer::V4(v4),
            IpAddr::V6(v6) => Peer::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::V4(v4) => write!(f, "{v4}"),
            Peer::V6(prefix) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64)),
        }
    }
}

/// The open connections, by address and by age.
pub struct Peers {
    per_peer: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Open connections per address; an address that holds none is absent.
    by_peer: HashMap<Peer, Share>,
    /// Every open connection, oldest first (ids grow).
    open: BTreeMap<u64, Open>,
}

struct Share {
    open: usize,
    /// Whether "holds its share" was said since this address last held none.
    said: bool,
}

struct Open {
    peer: Peer,
    /// Taken (and sent) to close it; `None` once its first head is whole.
    close: Option<oneshot::Sender<()>>,
}

/// One admitted connection; it leaves the count when dropped.
pub struct Admitted {
    peers: Arc<Peers>,
    id: u64,
    head_seen: AtomicBool,
}

/// Resolves when the connection was chosen to make room.
pub type Closing = oneshot::Receiver<()>;

impl Peers {
    pub fn new(per_peer: usize) -> Arc<Peers> {
        Arc::new(Peers {
            per_peer: per_peer.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Counts a new connection from `ip`, closing its address's oldest
    /// waiting one when the address holds its share; `None` when it holds
    /// its share and none of it is waiting (the new one is to be closed).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<(Admitted, Closing)> {
        let peer = Peer::of(ip);
        let mut inner = locked(&self.inner);
        let share = inner.by_peer.entry(peer).or_insert(Share { open: 0, said: false });
        let (full, first_time) = (share.open >= self.per_peer, !share.said);
        if full {
            if first_time {
                share.said = true;
                tracing::warn!(
                    "{peer} holds {} connections, its share: each new one closes its oldest that has not sent a whole request head (or is closed itself when there is none); said again once {peer} has held none",
                    share.open
                );
            }
            inner.close_oldest_waiting(Some(peer))?;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let (close, closing) = oneshot::channel();
        inner.open.insert(
            id,
            Open {
                peer,
                close: Some(close),
            },
        );
        inner.count(peer, 1);
        let admitted = Admitted {
            peers: Arc::clone(self),
            id,
            head_seen: AtomicBool::new(false),
        };
        Some((admitted, closing))
    }

    /// Closes the oldest connection (of any address) still waiting for its
    /// first head; false when there is none.
    pub fn close_oldest(&self) -> bool {
        locked(&self.inner).close_oldest_waiting(None).is_some()
    }
}

impl Inner {
    /// Closes the oldest waiting connection of `peer` (any, when `None`):
    /// it leaves the count now, its task ends on its own.
    fn close_oldest_waiting(&mut self, peer: Option<Peer>) -> Option<()> {
        let id = self
            .open
            .iter()
            .find(|(_, open)| open.close.is_some() && peer.is_none_or(|p| p == open.peer))
            .map(|(id, _)| *id)?;
        let open = self.open.remove(&id)?;
        if let Some(close) = open.close {
            let _ = close.send(());
        }
        self.count(open.peer, -1);
        Some(())
    }

    fn count(&mut self, peer: Peer, change: isize) {
        let Some(share) = self.by_peer.get_mut(&peer) else {
            return;
        };
        share.open = share.open.saturating_add_signed(change);
        if share.open == 0 {
            self.by_peer.remove(&peer);
        }
    }
}

impl Admitted {
    /// Its first request head is whole: it is no longer the one to close
    /// to make room (called for every request; only the first takes the lock).
    pub fn head_arrived(&self) {
        if self.head_seen.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(open) = locked(&self.peers.inner).open.get_mut(&self.id) {
            open.close = None;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = locked(&self.peers.inner);
        // Absent when it was closed to make room: counted out then.
        if let Some(open) = inner.open.remove(&self.id) {
            inner.count(open.peer, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn held(peers: &Peers, text: &str) -> usize {
        locked(&peers.inner)
            .by_peer
            .get(&Peer::of(ip(text)))
            .map_or(0, |s| s.open)
    }

    #[test]
    fn an_address_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(Peer::of(ip("127.0.0.2")).to_string(), "127.0.0.2");
        assert_eq!(Peer::of(ip("::ffff:10.1.2.3")), Peer::of(ip("10.1.2.3")));
        let a = Peer::of(ip("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, Peer::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(a, Peer::of(ip("2001:db8:1:3::1")));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn an_address_at_its_share_closes_its_oldest_waiting_connection() {
        let peers = Peers::new(2);
        let (first, mut first_closing) = peers.admit(ip("127.0.0.1")).unwrap();
        let (second, mut second_closing) = peers.admit(ip("127.0.0.1")).unwrap();
        // Another address is not touched, and has a share of its own.
        let (_other, mut other_closing) = peers.admit(ip("127.0.0.2")).unwrap();
        let (_third, _) = peers.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(first_closing.try_recv(), Ok(()));
        assert!(second_closing.try_recv().is_err());
        assert!(other_closing.try_recv().is_err());
        assert_eq!(held(&peers, "127.0.0.1"), 2);
        // Closed already: its end does not count it out twice.
        drop(first);
        assert_eq!(held(&peers, "127.0.0.1"), 2);
        drop(second);
        assert_eq!(held(&peers, "127.0.0.1"), 1);
    }

    #[test]
    fn a_connection_that_sent_its_head_is_never_closed_to_make_room() {
        let peers = Peers::new(1);
        let (busy, mut busy_closing) = peers.admit(ip("127.0.0.1")).unwrap();
        busy.head_arrived();
        // Its share is taken by a busy one: the new one is refused.
        assert!(peers.admit(ip("127.0.0.1")).is_none());
        assert!(busy_closing.try_recv().is_err());
        assert!(!peers.close_oldest());
        drop(busy);
        assert_eq!(held(&peers, "127.0.0.1"), 0);
        assert!(peers.admit(ip("127.0.0.1")).is_some());
    }

    #[test]
    fn when_all_slots_are_taken_the_oldest_waiting_one_of_any_address_goes() {
        let peers = Peers::new(10);
        let (a, _) = peers.admit(ip("127.0.0.1")).unwrap();
        a.head_arrived();
        let (_b, mut b_closing) = peers.admit(ip("127.0.0.2")).unwrap();
        let (_c, mut c_closing) = peers.admit(ip("127.0.0.3")).unwrap();
        assert!(peers.close_oldest());
        assert_eq!(b_closing.try_recv(), Ok(()));
        assert!(c_closing.try_recv().is_err());
        assert_eq!(held(&peers, "127.0.0.2"), 0);
    }
}
