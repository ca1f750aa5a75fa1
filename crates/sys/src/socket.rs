//! Receiving a file descriptor over a unix socket (SCM_RIGHTS).
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::{Errno, SysResult};

/// Receives one fd sent with SCM_RIGHTS; `ENODATA` if the message carried none.
pub fn recv_fd(socket: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
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
    received.into_iter().next().ok_or(Errno::ENODATA)
}
