//! `bulwark attach`: clients on the unix socket `attach.sock` in the container's
//! directory. Each gets the container's output as it comes (for a container without a
//! terminal, in Docker's multiplexed frames: a byte for the stream, three zero bytes, the
//! length as 32 bits big-endian, the bytes); for a container with a terminal, what a
//! client sends is framed as a byte for the kind (0: input, 1: window size as two 16-bit
//! big-endian numbers, rows then columns), the length as 32 bits big-endian, the bytes.
//! A client that falls behind is treated as the log options say (block or drop).
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use bulwark_container::logs::Stream;
use bulwark_container::LogOptions;

use crate::sink::Sink;

/// The socket's file name in the container's directory.
pub const SOCKET: &str = "attach.sock";

struct Client {
    stream: UnixStream,
    sink: Sink,
    received: Vec<u8>,
}

/// The listening socket and the attached clients.
pub struct Clients {
    listener: Option<UnixListener>,
    clients: Vec<Client>,
}

/// Binds `attach.sock` in `dir` through a handle to the directory, so that the path the
/// kernel sees stays short however deep the store is.
fn bind(dir: &Path) -> Option<UnixListener> {
    let handle = std::fs::File::open(dir).ok()?;
    let _ = std::fs::remove_file(dir.join(SOCKET));
    let path = format!(
        "/proc/self/fd/{}/{SOCKET}",
        std::os::fd::AsRawFd::as_raw_fd(&handle)
    );
    let listener = UnixListener::bind(path).ok()?;
    listener.set_nonblocking(true).ok()?;
    Some(listener)
}

impl Clients {
    pub fn new(dir: &Path) -> Clients {
        Clients {
            listener: bind(dir),
            clients: Vec::new(),
        }
    }

    pub fn listener(&self) -> Option<BorrowedFd<'_>> {
        self.listener.as_ref().map(|l| l.as_fd())
    }

    pub fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    sink: Sink::default(),
                    received: Vec::new(),
                });
            }
        }
    }

    /// Output for every client (framed unless the container has a terminal).
    pub fn output(&mut self, stream: Stream, bytes: &[u8], tty: bool, options: &LogOptions) {
        for client in &mut self.clients {
            if tty {
                client.sink.push(bytes, options);
            } else {
                let mut frame = vec![stream as u8 + 1, 0, 0, 0];
                frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                frame.extend_from_slice(bytes);
                client.sink.push(&frame, options);
            }
        }
    }

    /// Whether a client is too far behind (for `mode=blocking`).
    pub fn full(&self, options: &LogOptions) -> bool {
        self.clients.iter().any(|c| c.sink.full(options))
    }

    /// Each client's socket, and whether output waits for it.
    pub fn fds(&self) -> Vec<(BorrowedFd<'_>, bool)> {
        self.clients
            .iter()
            .map(|c| (c.stream.as_fd(), !c.sink.is_empty()))
            .collect()
    }

    /// Reads what client `i` sent: input for the terminal, window sizes.
    pub fn readable(&mut self, i: usize, master: Option<&OwnedFd>) {
        let Some(client) = self.clients.get_mut(i) else {
            return;
        };
        let mut buffer = [0u8; 16 * 1024];
        match client.stream.read(&mut buffer) {
            Ok(0) => client.sink.gone = true,
            Ok(n) => client.received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => client.sink.gone = true,
        }
        while client.received.len() >= 5 {
            let len = u32::from_be_bytes([
                client.received[1],
                client.received[2],
                client.received[3],
                client.received[4],
            ]) as usize;
            if client.received.len() < 5 + len {
                break;
            }
            let frame: Vec<u8> = client.received.drain(..5 + len).collect();
            let (kind, body) = (frame[0], &frame[5..]);
            let Some(master) = master else {
                continue;
            };
            match (kind, body) {
                (0, data) => {
                    let _ = nix::unistd::write(master, data);
                }
                (1, [r1, r2, c1, c2]) => {
                    let rows = u16::from_be_bytes([*r1, *r2]);
                    let cols = u16::from_be_bytes([*c1, *c2]);
                    let _ = bulwark_sys::tty::set_window_size(master.as_fd(), rows, cols);
                }
                _ => {}
            }
        }
    }

    /// Writes what waits, and forgets clients that went away.
    pub fn flush(&mut self) {
        for client in &mut self.clients {
            client.sink.flush(client.stream.as_fd());
        }
        self.clients.retain(|c| !c.sink.gone);
    }

    /// The container ended: its clients are let go (they see the end of the stream).
    pub fn close_all(&mut self) {
        for client in &mut self.clients {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !client.sink.gone
                && !client.sink.is_empty()
                && std::time::Instant::now() < deadline
            {
                client.sink.flush(client.stream.as_fd());
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        self.clients.clear();
    }
}
