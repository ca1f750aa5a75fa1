//! The monitor's one loop while the container runs: its output into the log and to an
//! attached client, a client's input to its terminal, and its children reaped.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use bulwark_container::logs::{LogWriter, Stream};
use bulwark_container::{LogMode, LogOptions};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::MonitorError;
use crate::sink::Sink;

/// The container's output: its stdout and stderr pipes, or its terminal.
pub struct Outputs {
    pub out: OwnedFd,
    pub err: OwnedFd,
    pub master: Option<OwnedFd>,
}

/// A client's stdio, for a foreground `run`.
pub struct Attached {
    pub input: OwnedFd,
    pub out: OwnedFd,
    pub err: OwnedFd,
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// Pumps until the init (`pid`) has exited and its output has ended; returns its exit
/// code (128 + the signal that killed it).
/// What the loop looks after besides the output: the health checks, and the state they
/// write to.
pub struct Checks<'a> {
    pub health: Option<crate::health::Health>,
    /// The attached client's sync pipe, told of a detach.
    pub sync: &'a mut Option<std::fs::File>,
    pub clients: &'a mut crate::attach::Clients,
    pub state: &'a mut bulwark_container::RunState,
    pub devnull: &'a std::fs::File,
}

pub fn pump(
    outputs: Outputs,
    signals: &SignalFd,
    pid: i32,
    log: &mut LogWriter,
    attached: &mut Option<crate::pump::Attached>,
    options: &LogOptions,
    mut checks: Checks<'_>,
) -> Result<i32, MonitorError> {
    let mut sources: Vec<(Option<OwnedFd>, Stream)> = match outputs.master {
        Some(master) => vec![(Some(master), Stream::Stdout)],
        None => vec![
            (Some(outputs.out), Stream::Stdout),
            (Some(outputs.err), Stream::Stderr),
        ],
    };
    let tty = sources.len() == 1;
    if let Some(a) = attached.as_ref() {
        set_nonblocking(a.out.as_fd());
        set_nonblocking(a.err.as_fd());
    }
    let mut sinks = [Sink::default(), Sink::default()];
    let mut input_open = tty && attached.is_some();
    let mut after_ctrl_p = false;
    let mut code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // mode=blocking: the container's output waits while a client is too far behind.
        let blocked = options.mode == LogMode::Block
            && (sinks.iter().any(|s| s.full(options)) || checks.clients.full(options));
        let open_sources = sources.iter().filter(|(fd, _)| fd.is_some()).count();
        if code.is_some()
            && (open_sources == 0
                || exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)))
        {
            break;
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let mut roles = vec![Role::Signals];
        for (i, (fd, _)) in sources.iter().enumerate() {
            if let (Some(fd), false) = (fd, blocked) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                roles.push(Role::Source(i));
            }
        }
        if let Some(listener) = checks.clients.listener() {
            fds.push(PollFd::new(listener, PollFlags::POLLIN));
            roles.push(Role::Listener);
        }
        for (i, (fd, waiting)) in checks.clients.fds().into_iter().enumerate() {
            let mut flags = PollFlags::POLLIN;
            if waiting {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(fd, flags));
            roles.push(Role::Client(i));
        }
        if let Some(a) = attached.as_ref() {
            for (i, fd) in [a.out.as_fd(), a.err.as_fd()].into_iter().enumerate() {
                if !sinks[i].is_empty() && !sinks[i].gone {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                    roles.push(Role::Sink);
                }
            }
            if input_open {
                fds.push(PollFd::new(a.input.as_fd(), PollFlags::POLLIN));
                roles.push(Role::Input);
            }
        }
        let mut timeout = if code.is_some() { 100u16 } else { 1000 };
        if let (Some(health), None) = (checks.health.as_mut(), code) {
            health.tick(checks.devnull);
            timeout = timeout.min(health.wait().as_millis().clamp(1, 1000) as u16);
        }
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<(Role, PollFlags)> = fds
            .iter()
            .zip(&roles)
            .filter_map(|(fd, role)| Some((*role, fd.revents()?)))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        for (role, _) in ready {
            match role {
                Role::Signals => {
                    while let Ok(Some(info)) = signals.read_signal() {
                        let signal = Signal::try_from(info.ssi_signo as i32).ok();
                        if matches!(
                            signal,
                            Some(Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP)
                        ) {
                            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
                        }
                    }
                    reap(pid, &mut code, &mut exited_at, &mut checks);
                }
                Role::Source(i) => {
                    let (fd, stream) = &mut sources[i];
                    let n = match fd.as_ref().map(|fd| nix::unistd::read(fd, &mut buffer)) {
                        Some(Ok(n)) => n,
                        Some(Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN)) => continue,
                        _ => 0,
                    };
                    if n == 0 {
                        *fd = None;
                        continue;
                    }
                    log.write(*stream, &buffer[..n])?;
                    checks.clients.output(*stream, &buffer[..n], tty, options);
                    if attached.is_some() {
                        let sink = &mut sinks[*stream as usize];
                        sink.push(&buffer[..n], options);
                    }
                }
                Role::Listener => checks.clients.accept(),
                Role::Client(i) => checks.clients.readable(
                    i,
                    sources
                        .first()
                        .and_then(|(fd, _)| fd.as_ref())
                        .filter(|_| tty),
                ),
                Role::Sink | Role::Input => {}
            }
            if let (Role::Input, Some(a)) = (role, attached.as_ref()) {
                let master = sources.first().and_then(|(fd, _)| fd.as_ref());
                match relay_input(a, master, &mut buffer, &mut after_ctrl_p) {
                    Input::Open => {}
                    Input::Ended => input_open = false,
                    Input::Detach => {
                        // The client goes; the container runs on.
                        if let Some(mut sync) = checks.sync.take() {
                            let _ = std::io::Write::write_all(&mut sync, b"detached\n");
                        }
                        *attached = None;
                        input_open = false;
                        sinks = [Sink::default(), Sink::default()];
                    }
                }
            }
        }
        if let Some(a) = attached.as_ref() {
            sinks[0].flush(a.out.as_fd());
            sinks[1].flush(a.err.as_fd());
        }
        checks.clients.flush();
        for sink in &mut sinks {
            if sink.dropped > 0 {
                log.note(&format!(
                    "dropped {} bytes of output a slow reader could not take",
                    sink.dropped
                ))?;
                sink.dropped = 0;
            }
        }
        if code.is_none() {
            reap(pid, &mut code, &mut exited_at, &mut checks);
        }
    }
    log.flush()?;
    checks.clients.close_all();
    if let (Some(a), LogMode::Block) = (attached.as_ref(), options.mode) {
        // What is left goes out blocking: the client is waiting for the end anyway.
        for (sink, fd) in sinks.iter_mut().zip([a.out.as_fd(), a.err.as_fd()]) {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !sink.gone && !sink.is_empty() && Instant::now() < deadline {
                sink.flush(fd);
                let mut poll_fd = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut poll_fd, PollTimeout::from(100u16));
            }
        }
    }
    Ok(code.unwrap_or(255))
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Signals,
    Listener,
    Client(usize),
    Source(usize),
    Sink,
    Input,
}

/// What became of the client's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Open,
    Ended,
    /// The client typed the detach keys (ctrl-p ctrl-q).
    Detach,
}

/// Copies what the client typed to the container's terminal, watching for the detach
/// keys; `after_ctrl_p` carries a ctrl-p from one read to the next.
fn relay_input(
    a: &Attached,
    master: Option<&OwnedFd>,
    buffer: &mut [u8],
    after_ctrl_p: &mut bool,
) -> Input {
    let Some(master) = master else {
        return Input::Ended;
    };
    let n = match nix::unistd::read(&a.input, buffer) {
        Ok(0) | Err(_) => return Input::Ended,
        Ok(n) => n,
    };
    for &key in &buffer[..n] {
        if *after_ctrl_p && key == 0x11 {
            return Input::Detach;
        }
        *after_ctrl_p = key == 0x10;
    }
    let _ = nix::unistd::write(master, &buffer[..n]);
    Input::Open
}

/// Reaps every child that ended (the monitor is a subreaper): the init's status is the
/// container's, a health check's its verdict.
fn reap(
    pid: i32,
    code: &mut Option<i32>,
    exited_at: &mut Option<Instant>,
    checks: &mut Checks<'_>,
) {
    loop {
        let (child, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, status)) => (p.as_raw(), status),
            Ok(WaitStatus::Signaled(p, signal, _)) => (p.as_raw(), 128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        if child == pid {
            *code = Some(status);
            *exited_at = Some(Instant::now());
        } else if let Some(health) = checks.health.as_mut() {
            health.ended(child, status, checks.state);
        }
    }
}
