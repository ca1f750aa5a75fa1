//! `process.terminal`: a pty made inside the container, its master handed to whoever
//! listens on the console socket (SCM_RIGHTS, as runc does), its slave the process's stdio.
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bulwark_sys::fs::{open_path_in_root, touch_in_root};
use bulwark_sys::mount::{attach, clone_tree};
use nix::fcntl::OFlag;

use crate::StepError;

/// Creates the pty, sends its master over `socket` and makes the slave the controlling
/// terminal and stdin/stdout/stderr. Runs after pivot_root, so `/dev/ptmx` is the
/// container's own devpts instance.
pub fn attach_terminal(
    socket: &OwnedFd,
    size: Option<(u16, u16)>,
    bind_dev_console: bool,
) -> Result<(), StepError> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(StepError::sys("opening /dev/ptmx"))?;
    // /dev/ptmx is a path in the container: make sure it led to a devpts pty master.
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    let magic = bulwark_sys::fs::fs_magic(master.as_fd())
        .map_err(StepError::sys("inspecting /dev/ptmx"))?;
    if magic != DEVPTS_SUPER_MAGIC {
        return Err(StepError::msg(
            "/dev/ptmx in the container is not a devpts pty (mount devpts at /dev/pts)",
        ));
    }
    nix::pty::grantpt(&master).map_err(StepError::sys("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(StepError::sys("unlockpt"))?;
    let slave_name = nix::pty::ptsname_r(&master).map_err(StepError::sys("ptsname"))?;
    let slave = nix::fcntl::open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys(format!("opening {slave_name}")))?;
    if let Some((rows, columns)) = size {
        bulwark_sys::tty::set_window_size(slave.as_fd(), rows, columns)
            .map_err(StepError::sys("setting the window size"))?;
    }
    bulwark_sys::socket::send_fd(socket.as_fd(), master.as_fd(), b"/dev/ptmx").map_err(
        StepError::sys("sending the pty master over the console socket"),
    )?;
    drop(master);
    if bind_dev_console {
        bind_console(&slave_name)?;
    }
    nix::unistd::setsid().map_err(StepError::sys("setsid"))?;
    bulwark_sys::tty::set_controlling_terminal(slave.as_fd())
        .map_err(StepError::sys("making the pty the controlling terminal"))?;
    nix::unistd::dup2_stdin(&slave).map_err(StepError::sys("dup2 onto stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(StepError::sys("dup2 onto stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(StepError::sys("dup2 onto stderr"))?;
    Ok(())
}

/// Without a terminal of its own, the container process starts a session of its own: it
/// then has no controlling terminal, so it cannot push keystrokes (TIOCSTI) into the
/// terminal of whoever started it, even when its stdio is that terminal, and job-control
/// signals from that terminal do not reach it (the runtime forwards signals instead).
pub fn leave_callers_session() -> Result<(), StepError> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(StepError::sys("setsid (a session of the container's own)"))
}

/// `/dev/console` shows the container's terminal, as on a real system.
fn bind_console(slave_name: &str) -> Result<(), StepError> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys("opening /"))?;
    if open_path_in_root(root.as_fd(), Path::new("/dev")).is_err() {
        return Ok(());
    }
    let target = touch_in_root(root.as_fd(), Path::new("/dev/console"), 0o600)
        .map_err(StepError::sys("creating /dev/console"))?;
    let tree =
        clone_tree(Path::new(slave_name), false).map_err(StepError::sys("cloning the pty"))?;
    attach(tree.as_fd(), target.as_fd()).map_err(StepError::sys("bind-mounting /dev/console"))
}
