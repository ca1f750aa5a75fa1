//! Passing a file descriptor over a unix socket (SCM_RIGHTS).
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::{Errno, SysResult};

/// Receives one fd sent with SCM_RIGHTS; `ENODATA` if the message carried none.
pub fn recv_fd(socket: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    recv_with_fd(socket).map(|(_, fd)| fd)
}

/// Receives one message (up to 64 KiB) and the first fd sent with it; `ENODATA` if it
/// carried none. Further fds in the message are closed.
pub fn recv_with_fd(socket: BorrowedFd<'_>) -> SysResult<(Vec<u8>, OwnedFd)> {
    let (bytes, fd) = recv_message(socket)?;
    Ok((bytes, fd.ok_or(Errno::ENODATA)?))
}

/// Receives one message (up to 64 KiB; no bytes when the peer closed the socket) and
/// the first fd sent with it, if any. Further fds in the message are closed. Retries
/// on EINTR.
pub fn recv_message(socket: BorrowedFd<'_>) -> SysResult<(Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let len = msg.bytes;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed this fd in our table for this message; nothing
                // else knows of it, so taking ownership is sound.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    buf.truncate(len);
    Ok((buf, received.into_iter().next()))
}

/// Sends `fd` with SCM_RIGHTS in one message whose bytes are `payload` (not empty: a
/// stream socket drops a message without bytes).
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> SysResult<()> {
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent < payload.len() {
        return Err(Errno::EMSGSIZE);
    }
    Ok(())
}
