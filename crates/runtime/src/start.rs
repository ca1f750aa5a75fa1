//! `start`: lets the waiting init exec the user's program, then runs poststart hooks.
use std::os::fd::{AsFd, OwnedFd};

use bulwark_spec::hooks::HookPoint;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::{hooks, RuntimeError, StateRoot, Status};

/// `start`; returns the poststart hooks' failures, which are warnings.
pub fn start(root: &StateRoot, id: &str) -> Result<Vec<String>, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    if status != Status::Created {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action: "start",
            expected: "created",
        });
    }
    let pidfd = bulwark_sys::process::pidfd_open(nix::unistd::Pid::from_raw(saved.pid))
        .map_err(RuntimeError::sys("opening the init's pidfd"))?;
    let fifo = container.fifo();
    let reader = nix::fcntl::open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(RuntimeError::sys("opening the exec fifo"))?;
    wait_for_fifo(id, &reader, &pidfd, saved.pid)?;
    std::fs::remove_file(&fifo).map_err(RuntimeError::io("cannot remove", &fifo))?;
    Ok(hooks::run_warning(
        &hooks::of(&saved.spec()?),
        HookPoint::Poststart,
        &saved.oci(Status::Running),
    ))
}

/// Waits until the init writes to the exec fifo (it got past `start`), then until the
/// fifo's last writer closes, which happens when the init execs the program (its write end
/// is close-on-exec) or dies. The fifo was opened before any writer: the kernel reports
/// no hang-up until one has come, so polling waits without a timeout.
fn wait_for_fifo(
    id: &str,
    reader: &OwnedFd,
    pidfd: &OwnedFd,
    pid: i32,
) -> Result<(), RuntimeError> {
    let mut got_byte = false;
    loop {
        let mut fds = [
            PollFd::new(reader.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("waiting for the container init")(e)),
            Ok(_) => {}
        }
        let fifo_events = fds[0].revents().unwrap_or(PollFlags::empty());
        let mut init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_events.contains(PollFlags::POLLIN) {
            let mut buf = [0u8; 16];
            match nix::unistd::read(reader, &mut buf) {
                Ok(0) if got_byte => return Ok(()),
                Ok(n) if n > 0 => got_byte = true,
                _ => {}
            }
        } else if fifo_events.contains(PollFlags::POLLHUP) {
            if got_byte {
                return Ok(());
            }
            // The writer left without a word: the init is on its way out.
            let mut init = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut init, PollTimeout::NONE);
            init_gone = true;
        }
        if init_gone {
            if got_byte {
                return Ok(());
            }
            return Err(RuntimeError::InitGone {
                id: id.to_owned(),
                status: init_status(pid),
            });
        }
    }
}

/// How the init ended, where that can still be told: a zombie's wait status is field 52
/// of `/proc/<pid>/stat` until its parent reaps it.
fn init_status(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let status = stat
        .rfind(')')
        .and_then(|end| stat[end + 2..].split(' ').nth(49))
        .and_then(|field| field.trim().parse::<i32>().ok());
    match status {
        Some(status) if status & 0x7f == 0 => format!("exit status {}", (status >> 8) & 0xff),
        Some(status) => format!("killed by signal {}", status & 0x7f),
        None => format!("pid {pid} is gone; its exit status went to its parent"),
    }
}
