//! The typed messages the stages exchange over their socket, and the order they come in.
//!
//! A message is JSON sent as one or more SOCK_SEQPACKET datagrams: the first starts
//! with the message's length (8 bytes, little-endian), and further datagrams carry the
//! rest, so a message of any size (a state with megabytes of annotations) gets through.
//! An fd sent with a message travels in its first datagram.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::StepError;

/// From the intermediate or init process to the parent.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToParent {
    /// The process has a new user namespace and waits for its uid/gid maps.
    NeedIdMaps,
    /// The intermediate forked the init process, whose pid (in the parent's pid
    /// namespace) this is.
    InitPid(i32),
    /// Mounts are done, the root is not pivoted yet: run `prestart` and `createRuntime`.
    RunRuntimeHooks,
    /// The seccomp filter is installed; this message carries its notification fd for
    /// the agent at `linux.seccomp.listenerPath`.
    SeccompListener,
    /// Setup is complete; the init waits on the exec fifo (create) or execs now (exec).
    Ready,
    /// Setup failed; the process exits after sending this.
    Failed(String),
    /// A createContainer hook failed; the process exits after sending this.
    HookFailed(String),
}

impl ToParent {
    /// The message's name, for protocol errors.
    pub fn name(&self) -> &'static str {
        match self {
            ToParent::NeedIdMaps => "NeedIdMaps",
            ToParent::InitPid(_) => "InitPid",
            ToParent::RunRuntimeHooks => "RunRuntimeHooks",
            ToParent::SeccompListener => "SeccompListener",
            ToParent::Ready => "Ready",
            ToParent::Failed(_) => "Failed",
            ToParent::HookFailed(_) => "HookFailed",
        }
    }
}

/// From the parent to the intermediate or init process.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToChild {
    /// The id maps are written; one idmapped mount tree follows (as an fd) per target.
    IdMapsWritten {
        idmapped: Vec<crate::idmapped::Target>,
    },
    /// The runtime hooks ran; carries the state JSON for the container-side hooks.
    RuntimeHooksDone { state: String },
}

/// The notification fd a [`ToParent::SeccompListener`] message must carry.
pub fn listener_fd(fd: Option<OwnedFd>) -> Result<OwnedFd, StepError> {
    fd.ok_or_else(|| StepError::msg("the seccomp listener message came without its fd"))
}

/// One end of the stage socket.
#[derive(Debug)]
pub struct Channel(OwnedFd);

/// A connected pair of channels, close-on-exec.
pub fn channel_pair() -> Result<(Channel, Channel), StepError> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(StepError::sys("creating the stage socket"))?;
    Ok((Channel(a), Channel(b)))
}

/// The most a datagram carries: well under the socket's send buffer.
const DATAGRAM: usize = 32 << 10;
/// The length prefix of a message's first datagram.
const HEADER: usize = 8;

impl Channel {
    /// The socket's fd number, for keeping it open across fd cleanup.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    pub fn send<T: Serialize>(&self, message: &T) -> Result<(), StepError> {
        self.send_framed(message, None)
    }

    /// Sends `message` with `fd` in its first datagram, so that no other sender on this
    /// socket (an exec's stage and its process both write to it) can come between them.
    pub fn send_with_fd<T: Serialize>(
        &self,
        message: &T,
        fd: BorrowedFd<'_>,
    ) -> Result<(), StepError> {
        self.send_framed(message, Some(fd))
    }

    /// Sends an fd alone (after a message that says what it is).
    pub fn send_fd(&self, fd: BorrowedFd<'_>) -> Result<(), StepError> {
        bulwark_sys::socket::send_fd(self.0.as_fd(), fd, b"fd")
            .map_err(StepError::sys("sending an fd over the stage socket"))
    }

    /// Receives the fd the other side sent with [`Channel::send_fd`].
    pub fn recv_fd(&self) -> Result<OwnedFd, StepError> {
        bulwark_sys::socket::recv_fd(self.0.as_fd())
            .map_err(StepError::sys("receiving an fd over the stage socket"))
    }

    fn send_framed<T: Serialize>(
        &self,
        message: &T,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), StepError> {
        let body = serde_json::to_vec(message).map_err(|e| StepError::msg(e.to_string()))?;
        let mut first = (body.len() as u64).to_le_bytes().to_vec();
        let split = body.len().min(DATAGRAM - HEADER);
        first.extend_from_slice(&body[..split]);
        match fd {
            Some(fd) => bulwark_sys::socket::send_fd(self.0.as_fd(), fd, &first)
                .map_err(StepError::sys("sending a stage message with an fd"))?,
            None => self.send_datagram(&first)?,
        }
        for chunk in body[split..].chunks(DATAGRAM) {
            self.send_datagram(chunk)?;
        }
        Ok(())
    }

    fn send_datagram(&self, bytes: &[u8]) -> Result<(), StepError> {
        let sent = nix::unistd::write(self.0.as_fd(), bytes)
            .map_err(StepError::sys("sending a stage message"))?;
        if sent != bytes.len() {
            return Err(StepError::msg("a stage message was cut short"));
        }
        Ok(())
    }

    /// Receives one message; `Ok(None)` when the other side closed the socket. An fd sent
    /// with it is closed; use [`Channel::recv_with_fd`] where one is expected.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StepError> {
        Ok(self.recv_with_fd()?.map(|(message, _)| message))
    }

    /// Receives one message and the fd sent with it, if any; `Ok(None)` when the other
    /// side closed the socket before a message began.
    pub fn recv_with_fd<T: for<'de> Deserialize<'de>>(
        &self,
    ) -> Result<Option<(T, Option<OwnedFd>)>, StepError> {
        let (first, fd) = self.recv_datagram()?;
        if first.is_empty() {
            return Ok(None);
        }
        if first.len() < HEADER {
            return Err(StepError::msg("malformed stage message: no length"));
        }
        let (len, rest) = first.split_at(HEADER);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let mut body = rest.to_vec();
        while body.len() < len {
            let (more, _) = self.recv_datagram()?;
            if more.is_empty() {
                return Err(StepError::msg(format!(
                    "a stage message ended after {} of its {len} bytes (the sender died)",
                    body.len()
                )));
            }
            body.extend_from_slice(&more);
        }
        serde_json::from_slice(&body)
            .map(|message| Some((message, fd)))
            .map_err(|e| StepError::msg(format!("malformed stage message: {e}")))
    }

    fn recv_datagram(&self) -> Result<(Vec<u8>, Option<OwnedFd>), StepError> {
        bulwark_sys::socket::recv_message(self.0.as_fd())
            .map_err(StepError::sys("reading a stage message"))
    }

    /// Receives the one message the protocol allows next (`what`, for errors).
    pub fn expect<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T, StepError> {
        self.recv()?.ok_or_else(|| {
            StepError::msg(format!("the parent closed the stage socket while {what}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = channel_pair().unwrap();
        a.send(&ToParent::NeedIdMaps).unwrap();
        a.send(&ToParent::Failed("mounting /proc: EPERM".into()))
            .unwrap();
        assert_eq!(b.recv::<ToParent>().unwrap(), Some(ToParent::NeedIdMaps));
        assert_eq!(
            b.recv::<ToParent>().unwrap(),
            Some(ToParent::Failed("mounting /proc: EPERM".into()))
        );
        drop(a);
        assert_eq!(b.recv::<ToParent>().unwrap(), None);
    }

    #[test]
    fn a_message_of_any_size_gets_through() {
        let (a, b) = channel_pair().unwrap();
        let state = "x".repeat(4 << 20);
        let sender = std::thread::spawn(move || {
            a.send(&ToChild::RuntimeHooksDone { state }).unwrap();
            a.send(&ToParent::Ready).unwrap();
        });
        match b.recv::<ToChild>().unwrap() {
            Some(ToChild::RuntimeHooksDone { state }) => assert_eq!(state.len(), 4 << 20),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.recv::<ToParent>().unwrap(), Some(ToParent::Ready));
        sender.join().unwrap();
    }

    #[test]
    fn a_sender_dying_mid_message_is_an_error() {
        let (a, b) = channel_pair().unwrap();
        let mut first = 1000u64.to_le_bytes().to_vec();
        first.extend_from_slice(b"{\"Failed\":\"");
        a.send_datagram(&first).unwrap();
        drop(a);
        let e = b.recv::<ToParent>().unwrap_err().to_string();
        assert!(e.contains("ended after"), "{e}");
    }

    #[test]
    fn a_message_and_its_fd_arrive_together_whoever_else_sends() {
        let (a, b) = channel_pair().unwrap();
        let other_sender = Channel(a.0.try_clone().unwrap());
        let (pipe_read, _pipe_write) = nix::unistd::pipe().unwrap();
        a.send_with_fd(&ToParent::SeccompListener, pipe_read.as_fd())
            .unwrap();
        other_sender.send(&ToParent::InitPid(42)).unwrap();
        let (message, fd) = b.recv_with_fd::<ToParent>().unwrap().unwrap();
        assert_eq!(message, ToParent::SeccompListener);
        let fd = listener_fd(fd).unwrap();
        let same = |x: &OwnedFd, y: &OwnedFd| {
            let (x, y) = (
                nix::sys::stat::fstat(x).unwrap(),
                nix::sys::stat::fstat(y).unwrap(),
            );
            (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)
        };
        assert!(same(&fd, &pipe_read));
        let (message, fd) = b.recv_with_fd::<ToParent>().unwrap().unwrap();
        assert_eq!(message, ToParent::InitPid(42));
        assert!(fd.is_none());
        assert!(listener_fd(None).is_err());
    }
}
