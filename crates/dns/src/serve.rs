//! The sockets: UDP and TCP listeners on the network's gateway address, one loop each,
//! forwarded questions and TCP connections on short-lived threads.
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};

use crate::answer::{self, Answer};
use crate::error::Error;
use crate::forward::{self, Slot, Slots};
use crate::live::LiveRecords;

/// Most forwarded questions in flight at once; beyond that clients get SERVFAIL.
const MAX_FORWARDS: usize = 64;
/// Most TCP connections served at once; beyond that new ones are closed.
const MAX_CONNECTIONS: usize = 64;
/// How long a TCP client may take to send a message or leave an idle connection open.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound listeners, created while still privileged.
#[derive(Debug)]
pub struct Listeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr`. TCP gets SO_REUSEADDR (std sets it before binding on
    /// Unix; a test holds it to that), so a restart does not wait for old connections in
    /// TIME_WAIT.
    pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
        let udp = UdpSocket::bind(addr).map_err(|source| Error::Bind {
            proto: "udp",
            addr,
            source,
        })?;
        let tcp = TcpListener::bind(addr).map_err(|source| Error::Bind {
            proto: "tcp",
            addr,
            source,
        })?;
        Ok(Self { udp, tcp })
    }
}

/// What the serving threads share.
#[derive(Debug)]
struct Shared {
    records: LiveRecords,
    forwards: Arc<Slots>,
    connections: Arc<Slots>,
}

/// Starts the UDP and TCP loops; they run until the process exits.
pub fn start(listeners: Listeners, records: LiveRecords) -> Result<(), Error> {
    let shared = Arc::new(Shared {
        records,
        forwards: Slots::new(MAX_FORWARDS),
        connections: Slots::new(MAX_CONNECTIONS),
    });
    let Listeners { udp, tcp } = listeners;
    let udp_shared = Arc::clone(&shared);
    spawn("udp", move || serve_udp(&udp, &udp_shared))?;
    spawn("tcp", move || serve_tcp(&tcp, &shared))?;
    Ok(())
}

fn spawn(what: &'static str, body: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    thread::Builder::new()
        .name(format!("dns-{what}"))
        .spawn(body)
        .map(drop)
        .map_err(|source| Error::Spawn { what, source })
}

/// A transient accept/recv failure (e.g. EMFILE) must not turn into a busy loop.
fn pause_after(err: &io::Error) {
    if err.kind() != ErrorKind::Interrupted {
        thread::sleep(Duration::from_millis(10));
    }
}

fn serve_udp(socket: &UdpSocket, shared: &Arc<Shared>) {
    let mut buf = [0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(err) => {
                pause_after(&err);
                continue;
            }
        };
        let raw = &buf[..len];
        let Ok(query) = Message::from_vec(raw) else {
            continue;
        };
        let limit = answer::udp_limit(&query);
        let reply = match answer::answer(&query, &shared.records.current()) {
            Answer::Ignore => None,
            Answer::Local(reply) => answer::encode(&reply, limit),
            Answer::Forward => match shared.forwards.take() {
                Some(slot) => {
                    forward_udp(socket, shared, slot, query, raw.to_vec(), peer);
                    None
                }
                None => answer::encode(&answer::reply(&query, ResponseCode::ServFail), limit),
            },
        };
        if let Some(reply) = reply {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

/// Forwards on its own thread so a slow upstream never delays local answers.
fn forward_udp(
    socket: &UdpSocket,
    shared: &Arc<Shared>,
    slot: Slot,
    query: Message,
    raw: Vec<u8>,
    peer: SocketAddr,
) {
    let Ok(socket) = socket.try_clone() else {
        return;
    };
    let shared = Arc::clone(shared);
    let _ = thread::Builder::new()
        .name("dns-forward".into())
        .spawn(move || {
            let _slot = slot;
            let limit = answer::udp_limit(&query);
            if let Some(reply) = forward_or_fail(&shared, &query, &raw, limit) {
                let _ = socket.send_to(&reply, peer);
            }
        });
}

/// The upstreams' reply to `raw`, or SERVFAIL when none answered.
fn forward_or_fail(shared: &Shared, query: &Message, raw: &[u8], limit: usize) -> Option<Vec<u8>> {
    let upstreams = shared.records.current().upstreams().to_vec();
    forward::forward(raw, &upstreams, forward::UPSTREAM_TIMEOUT)
        .or_else(|| answer::encode(&answer::reply(query, ResponseCode::ServFail), limit))
}

fn serve_tcp(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                pause_after(&err);
                continue;
            }
        };
        let Some(slot) = shared.connections.take() else {
            continue;
        };
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new()
            .name("dns-tcp-conn".into())
            .spawn(move || {
                let _slot = slot;
                let _ = serve_connection(stream, &shared);
            });
    }
}

/// Length-prefixed messages until the client closes, sends garbage or stalls.
fn serve_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_write_timeout(Some(TCP_TIMEOUT))?;
    loop {
        let deadline = Instant::now() + TCP_TIMEOUT;
        let mut prefix = [0u8; 2];
        read_full(&mut stream, &mut prefix, deadline)?;
        let len = usize::from(u16::from_be_bytes(prefix));
        if len == 0 {
            return Ok(());
        }
        let mut raw = vec![0u8; len];
        read_full(&mut stream, &mut raw, deadline)?;
        let Ok(query) = Message::from_vec(&raw) else {
            return Ok(());
        };
        let limit = usize::from(u16::MAX);
        let reply = match answer::answer(&query, &shared.records.current()) {
            Answer::Ignore => None,
            Answer::Local(reply) => answer::encode(&reply, limit),
            Answer::Forward => match shared.forwards.take() {
                Some(_slot) => forward_or_fail(shared, &query, &raw, limit),
                None => answer::encode(&answer::reply(&query, ResponseCode::ServFail), limit),
            },
        };
        let Some(reply) = reply else {
            return Ok(());
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed)?;
    }
}

/// Fills `buf` before `deadline`, so a client trickling bytes cannot hold the thread.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use nix::sys::socket::{getsockopt, sockopt};

    use super::*;

    #[test]
    fn tcp_listener_reuses_addresses_and_bind_errors_name_the_address() {
        let listeners = Listeners::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(getsockopt(&listeners.tcp, sockopt::ReuseAddr).unwrap());
        let taken = listeners.udp.local_addr().unwrap();
        let err = Listeners::bind(taken).unwrap_err().to_string();
        assert!(err.contains(&format!("udp {taken}")), "{err}");
    }

    #[test]
    fn trickling_clients_hit_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&[0]).unwrap();
        let mut buf = [0u8; 2];
        let deadline = Instant::now() + Duration::from_millis(200);
        let err = read_full(&mut server, &mut buf, deadline).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock),
            "{err}"
        );
        client.write_all(&[1, 2]).unwrap();
        read_full(
            &mut server,
            &mut buf,
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(buf, [1, 2]);
    }
}
