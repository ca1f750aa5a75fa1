//! The container's life under its monitor: start, pump, record, restart.
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bulwark_container::{
    logs::LogWriter, next_delay, should_restart, ContainerDir, FileLock, LockKind, RunState, Status,
};
use bulwark_runtime::{CreateOptions, StateRoot};
use nix::fcntl::{FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::error::{runtime_error, MonitorError};
use crate::pump::{pump, Attached, Outputs};
use crate::Args;

/// Says why the container could not start: on the sync fd (the engine is waiting) and in
/// the state, for `inspect`.
pub fn report_failure(args: &Args, sync: &mut Option<File>, e: &MonitorError) {
    if let Some(mut sync) = sync.take() {
        let _ = writeln!(sync, "error {} {}", e.1, e.0);
    }
    let dir = container_dir(args);
    if let Ok(mut state) = dir.saved_state() {
        if state.status == Status::Created || state.is_live() {
            state.status = if state.status == Status::Created {
                Status::Created
            } else {
                Status::Exited
            };
            state.error = e.0.clone();
            state.pid = 0;
            let _ = dir.write_state(&state);
        }
    }
}

pub fn take_sync(args: &Args) -> Option<File> {
    args.sync_fd
        .and_then(|fd| bulwark_sys::process::take_inherited_fd(fd).ok())
        .map(File::from)
}

fn container_dir(args: &Args) -> ContainerDir {
    let id = args
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ContainerDir {
        id,
        dir: args.dir.clone(),
    }
}

fn cloexec_dup(fd: impl AsFd) -> Result<OwnedFd, MonitorError> {
    let copy = nix::unistd::dup(fd)?;
    nix::fcntl::fcntl(&copy, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(copy)
}

/// The monitor, from start to end.
pub fn monitor(args: &Args, sync: &mut Option<File>) -> Result<(), MonitorError> {
    // The container's init begins as a fork of this process: run from a binary no
    // container can write (CVE-2019-5736), before anything else.
    bulwark_runtime::seal::ensure_sealed(args.rootless)?;
    *sync = take_sync(args);
    let _ = nix::unistd::setsid();
    let dir = container_dir(args);
    let Some(_alive) = FileLock::try_take(&dir.monitor_lock_path(), LockKind::Exclusive)? else {
        return Err(MonitorError(
            "the container has a monitor already".into(),
            125,
        ));
    };
    nix::sys::prctl::set_child_subreaper(true)?;
    let record = dir.record()?;
    // Signals come through a signalfd; SIGPIPE stays blocked, so a client gone away is
    // an EPIPE to handle rather than the end of the monitor.
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let devnull = File::options().read(true).write(true).open("/dev/null")?;
    let attached = if args.attach {
        Some(Attached {
            input: cloexec_dup(std::io::stdin())?,
            out: cloexec_dup(std::io::stdout())?,
            err: cloexec_dup(std::io::stderr())?,
        })
    } else {
        None
    };
    for target in [0, 1, 2] {
        redirect(target, devnull.as_fd())?;
    }
    let mut log = LogWriter::open(&dir.log_path(), &record.log)?;
    let root = StateRoot::new(&args.runtime_root);
    let mut attached = attached;
    let mut delay: Option<Duration> = None;
    let mut clients = crate::attach::Clients::new(&dir.dir);
    let mut state = dir.saved_state()?;
    let mut started_once = false;
    loop {
        let began = Instant::now();
        let outcome = run_once(args, &dir, &root, &mut state, attached.as_ref(), &devnull);
        let code = match outcome {
            Ok(started) => {
                started_once = true;
                if let Some(s) = sync.as_mut() {
                    let _ = writeln!(s, "ok {}", started.pid);
                }
                // A detached start is answered; an attached client also waits for the end.
                if !args.attach {
                    *sync = None;
                }
                // Setup is over: what it allocated goes back before the long wait.
                bulwark_sys::process::release_free_memory();
                let health = record
                    .health
                    .clone()
                    .map(|h| crate::health::Health::new(h, &dir, &root, &mut state));
                let checks = crate::pump::Checks {
                    health,
                    sync,
                    clients: &mut clients,
                    state: &mut state,
                    devnull: &devnull,
                };
                let code = pump(
                    started.outputs,
                    &signals,
                    started.pid,
                    &mut log,
                    &mut attached,
                    &record.log,
                    checks,
                )?;
                state.health = None;
                let _ = bulwark_runtime::delete(&root, &dir.id, true);
                code
            }
            Err(e) if state.restart_count == 0 && !started_once => return Err(e),
            Err(e) => {
                let _ = log.note(&format!("the restart failed: {}", e.0));
                state.error = e.0;
                let _ = bulwark_runtime::delete(&root, &dir.id, true);
                125
            }
        };
        bulwark_container::events::record_for(
            &dir,
            &record,
            "die",
            &[("exitCode", &code.to_string())],
        );
        state.status = Status::Exited;
        state.exit_code = code;
        state.pid = 0;
        state.finished_at = bulwark_container::now();
        let stopped = dir.stopped_marker().exists();
        let restart = should_restart(record.restart, code, state.restart_count, stopped);
        if restart {
            state.status = Status::Restarting;
        }
        dir.write_state(&state)?;
        if !restart {
            break;
        }
        let wait = next_delay(delay, began.elapsed());
        delay = Some(wait);
        if !sleep_unless_stopped(&dir, wait) {
            state.status = Status::Exited;
            dir.write_state(&state)?;
            break;
        }
        state.restart_count += 1;
        bulwark_container::events::record_for(&dir, &record, "restart", &[]);
    }
    log.flush()?;
    if let Some(mut s) = sync.take() {
        let _ = writeln!(s, "exit {}", state.exit_code);
    }
    if record.auto_remove {
        remove_self(&dir, &record);
    }
    Ok(())
}

/// Waits out a restart delay; false if a user stopped the container meanwhile.
fn sleep_unless_stopped(dir: &ContainerDir, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if dir.stopped_marker().exists() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !dir.stopped_marker().exists()
}

/// `--rm`: the engine removes the container, as `bulwark rm -f` (this process becomes it,
/// so the monitor's lock goes with the exec).
fn remove_self(dir: &ContainerDir, record: &bulwark_container::ContainerRecord) {
    use std::os::unix::process::CommandExt;
    let store = dir
        .dir
        .parent()
        .and_then(|containers| containers.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let _ = std::process::Command::new(&record.engine_binary)
        .arg("--store")
        .arg(store)
        .args(["rm", "-f", &dir.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .exec();
}

fn redirect(target: i32, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), MonitorError> {
    match target {
        0 => nix::unistd::dup2_stdin(fd)?,
        1 => nix::unistd::dup2_stdout(fd)?,
        _ => nix::unistd::dup2_stderr(fd)?,
    }
    Ok(())
}

/// A started container.
pub struct Started {
    pub pid: i32,
    pub outputs: Outputs,
}

/// Creates and starts the container once, its stdio on pipes (or a pty) of ours.
fn run_once(
    args: &Args,
    dir: &ContainerDir,
    root: &StateRoot,
    state: &mut RunState,
    attached: Option<&Attached>,
    devnull: &File,
) -> Result<Started, MonitorError> {
    let record = dir.record()?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (relay, console) = if record.run.tty {
        let (ours, theirs) = UnixStream::pair()?;
        (Some(ours), Some(OwnedFd::from(theirs)))
    } else {
        (None, None)
    };
    // The init inherits the monitor's stdio: lend it the pipes for the create.
    let stdin = match (attached, record.run.open_stdin && !record.run.tty) {
        (Some(a), true) => a.input.as_fd(),
        _ => devnull.as_fd(),
    };
    redirect(0, stdin)?;
    redirect(1, out_w.as_fd())?;
    redirect(2, err_w.as_fd())?;
    let created = bulwark_runtime::create(
        root,
        CreateOptions {
            id: dir.id.clone(),
            bundle: dir.bundle(),
            console,
            rootless: args.rootless,
            ..CreateOptions::default()
        },
    );
    for target in [0, 1, 2] {
        redirect(target, devnull.as_fd())?;
    }
    drop((out_w, err_w));
    let created = created.map_err(runtime_error)?;
    let pid = created.spawned.pid.as_raw();
    drop(created.container);
    let master = match relay {
        Some(socket) => {
            let master = bulwark_sys::socket::recv_fd(socket.as_fd())
                .map_err(|e| MonitorError(format!("receiving the pty: {e}"), 125))?;
            if let Some((rows, cols)) = args.size {
                let _ = bulwark_sys::tty::set_window_size(master.as_fd(), rows, cols);
            }
            Some(master)
        }
        None => None,
    };
    if let Err(e) = bulwark_runtime::start(root, &dir.id) {
        let _ = bulwark_runtime::delete(root, &dir.id, true);
        return Err(runtime_error(e));
    }
    state.status = Status::Running;
    state.pid = pid;
    state.started_at = bulwark_container::now();
    state.monitor_pid = std::process::id() as i32;
    state.boot_id = bulwark_container::boot_id();
    state.error.clear();
    dir.write_state(state)?;
    Ok(Started {
        pid,
        outputs: Outputs {
            out: out_r,
            err: err_r,
            master,
        },
    })
}
