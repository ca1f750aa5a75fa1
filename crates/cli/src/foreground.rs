//! Foreground `run` and `exec`: forward signals to the container process, relay a
//! terminal if it has one, and return its exit status (128 + signal if killed).
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use bulwark_runtime::{self as runtime, CreateOptions, StateRoot};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::args::RunArgs;
use crate::error::CliError;
use crate::log::Logger;
use crate::CmdResult;

/// A socket pair standing in for `--console-socket` when the terminal is ours to relay.
pub fn console_pair() -> Result<(UnixStream, OwnedFd), CliError> {
    let (ours, theirs) =
        UnixStream::pair().map_err(CliError::io("creating the console socket pair"))?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// Receives the pty master the container sent over the console socket.
pub fn receive_master(socket: &UnixStream) -> Result<OwnedFd, CliError> {
    bulwark_sys::socket::recv_fd(socket.as_fd()).map_err(CliError::sys("receiving the pty master"))
}

/// `run`: create, start, and unless detached wait for the container and delete it.
pub fn run(
    root: &StateRoot,
    a: &RunArgs,
    mut options: CreateOptions,
    logger: &Logger,
) -> CmdResult {
    let wants_tty = wants_terminal(&a.create.bundle);
    let relay = if wants_tty && !a.detach && a.create.console_socket.is_none() {
        let (ours, theirs) = console_pair()?;
        options.console = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let id = a.create.id.clone();
    let signals = (!a.detach).then(Signals::catch).transpose()?;
    let created = runtime::create(root, options)?;
    bulwark_sys::phase::mark("run: created");
    created.warnings.iter().for_each(|w| logger.warn(w));
    created.notes.iter().for_each(|n| logger.debug(n));
    let spawned = created.spawned;
    drop(created.container);
    let master = match relay.as_ref().map(receive_master).transpose() {
        Ok(master) => master,
        Err(e) => {
            let _ = runtime::delete(root, &id, true);
            return Err(e);
        }
    };
    // The program may read its window size at once: set it before it starts.
    if let Some(master) = &master {
        copy_window_size(master);
    }
    match runtime::start(root, &id) {
        Ok(warnings) => warnings.iter().for_each(|w| logger.warn(w)),
        Err(e) => {
            let _ = runtime::delete(root, &id, true);
            return Err(e.into());
        }
    }
    bulwark_sys::phase::mark("run: started");
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = wait(signals, spawned.pid, master)?;
    bulwark_sys::phase::mark("run: waited");
    if !a.keep {
        for warning in runtime::delete(root, &id, true)? {
            logger.warn(&warning);
        }
    }
    bulwark_sys::phase::mark("run: deleted");
    Ok(code)
}

fn wants_terminal(bundle: &std::path::Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| bulwark_spec::parse_config(&b).ok())
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

/// The signals forwarded to the container process.
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for keep in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(keep);
    }
    set
}

/// The forwarded signals, blocked and readable from a signalfd. Made before the
/// container is created, so that a signal sent to us at any point after that is queued
/// for the container instead of killing us and leaving the container behind.
pub struct Signals {
    set: SigSet,
    fd: SignalFd,
}

impl Signals {
    pub fn catch() -> Result<Signals, CliError> {
        let set = forwarded();
        set.thread_block()
            .map_err(CliError::sys("blocking signals"))?;
        let fd =
            SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(CliError::sys("signalfd"))?;
        Ok(Signals { set, fd })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = self.set.thread_unblock();
    }
}

/// Waits for `pid`, forwarding signals and relaying the terminal; returns its exit code.
pub fn wait(signals: Signals, pid: Pid, master: Option<OwnedFd>) -> Result<i32, CliError> {
    let signal_fd = &signals.fd;
    let _raw = master.as_ref().map(|_| RawTerminal::enter());
    if let Some(master) = &master {
        copy_window_size(master);
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut exit: Option<i32> = reap(pid);
    while exit.is_none() || master_open {
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master.as_ref().filter(|_| master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if exit.is_some() {
            PollTimeout::from(100u8)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(CliError::sys("waiting for the container process")(e)),
            Ok(0) => break,
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            if let Ok(Some(info)) = signal_fd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => exit = exit.or_else(|| reap(pid)),
                    Ok(Signal::SIGWINCH) => {
                        if let Some(m) = &master {
                            copy_window_size(m);
                        }
                    }
                    Ok(sig) => {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if let Some(m) = master.as_ref().filter(|_| master_open) {
            if ready.get(1).copied().unwrap_or(false) {
                master_open = pump(m.as_fd(), std::io::stdout().as_fd());
            }
            let stdin_index = 2;
            if stdin_open && ready.get(stdin_index).copied().unwrap_or(false) {
                stdin_open = pump(stdin.as_fd(), m.as_fd());
            }
        }
    }
    drop(signals);
    Ok(exit.unwrap_or(0))
}

/// Reaps every exited child (orphans are reparented to us); returns `pid`'s exit code.
fn reap(pid: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, status)) if p == pid => code = Some(status),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => code = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// Copies what is readable from `from` to `to`; false once `from` is closed.
fn pump(from: std::os::fd::BorrowedFd<'_>, to: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(nix::errno::Errno::EIO) => false,
        Ok(n) => {
            let mut written = 0;
            while written < n {
                match nix::unistd::write(to, &buf[written..n]) {
                    Ok(w) => written += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
        Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

pub fn copy_window_size(master: &OwnedFd) {
    if let Ok((rows, cols)) = bulwark_sys::tty::window_size(std::io::stdin().as_fd()) {
        let _ = bulwark_sys::tty::set_window_size(master.as_fd(), rows, cols);
    }
}

/// Our own terminal's window size, for a process that gets a pty we relay.
pub fn own_window_size() -> Option<(u16, u16)> {
    bulwark_sys::tty::window_size(std::io::stdin().as_fd()).ok()
}

/// Puts our own terminal in raw mode while relaying, and restores it on drop.
struct RawTerminal(Option<termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, saved);
        }
    }
}
