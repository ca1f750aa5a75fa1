//! Asking the upstream servers about names the records file does not hold, and the
//! counters that bound how many threads such work may occupy.
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long each upstream gets to answer before the next is asked.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);

/// A fixed number of slots for concurrent work (forwards, TCP connections).
#[derive(Debug)]
pub struct Slots {
    used: AtomicUsize,
    max: usize,
}

/// One taken slot, given back on drop.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

impl Slots {
    /// Room for `max` holders at once.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot, or `None` when all are taken.
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sends the raw `query` to each upstream in turn over UDP and returns the first reply
/// that matches it, or `None` when none answered in time.
pub fn forward(query: &[u8], upstreams: &[SocketAddr], timeout: Duration) -> Option<Vec<u8>> {
    upstreams
        .iter()
        .find_map(|upstream| ask(query, *upstream, timeout).ok().flatten())
}

fn ask(query: &[u8], upstream: SocketAddr, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A fresh socket per question: a random source port, and `connect` makes the
    // kernel drop datagrams from anyone but the upstream.
    let socket = UdpSocket::bind(local)?;
    socket.connect(upstream)?;
    socket.send(query)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(&mut buf) {
            Ok(len) if is_reply_to(query, &buf[..len]) => return Ok(Some(buf[..len].to_vec())),
            Ok(_) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Whether `reply` is a response (QR set) carrying the id of `query`.
fn is_reply_to(query: &[u8], reply: &[u8]) -> bool {
    query.len() >= 12 && reply.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let slots = Slots::new(2);
        let a = slots.take().unwrap();
        let _b = slots.take().unwrap();
        assert!(slots.take().is_none());
        drop(a);
        assert!(slots.take().is_some());
    }

    #[test]
    fn replies_must_match_id_and_be_responses() {
        let query = [0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut reply = query;
        reply[2] |= 0x80;
        assert!(is_reply_to(&query, &reply));
        assert!(!is_reply_to(&query, &query), "a query is not a reply");
        let mut other_id = reply;
        other_id[1] = 0;
        assert!(!is_reply_to(&query, &other_id));
        assert!(!is_reply_to(&query, &reply[..11]));
    }

    #[test]
    fn asks_upstreams_in_order_until_one_answers() {
        // The first upstream never replies; the second echoes the query as a response.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let echo_addr = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (len, peer) = echo.recv_from(&mut buf).unwrap();
            // A stray datagram with the wrong id comes first and must be skipped.
            let mut wrong = buf[..len].to_vec();
            wrong[0] ^= 0xff;
            wrong[2] |= 0x80;
            echo.send_to(&wrong, peer).unwrap();
            buf[2] |= 0x80;
            echo.send_to(&buf[..len], peer).unwrap();
        });
        let query = [0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let upstreams = [silent.local_addr().unwrap(), echo_addr];
        let reply = forward(&query, &upstreams, Duration::from_millis(300)).unwrap();
        assert_eq!(reply[..2], [0x12, 0x34]);
        assert_eq!(reply[2], 0x81);
        server.join().unwrap();
        assert!(forward(&query, &upstreams[..1], Duration::from_millis(100)).is_none());
        assert!(forward(&query, &[], Duration::from_millis(100)).is_none());
    }
}
