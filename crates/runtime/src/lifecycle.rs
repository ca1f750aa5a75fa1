//! The lifecycle operations. Each validates everything it can before touching the
//! system, and undoes what it made when a later step fails.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use bulwark_sandbox::{exec::namespace_kinds, ContainerPlan, ExecPlan, ProcessPlan, Spawned};
use bulwark_spec::runtime::Process;
use bulwark_spec::{load_bundle, NamespacePlan};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::container::write_pid_file;
use crate::state::{process_start, SavedState};
use crate::{hooks, Container, OciState, RuntimeError, StateRoot, Status};

/// Options of `create` (and `run`).
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// An already connected console socket (foreground `run` with a terminal).
    pub console: Option<OwnedFd>,
    /// The runtime lacks the host's root privileges (see [`crate::rootless`]).
    pub rootless: bool,
}

/// Connects to `--console-socket` when the process wants a terminal.
fn console_for(
    process: &Process,
    socket: Option<&PathBuf>,
    given: Option<OwnedFd>,
) -> Result<Option<OwnedFd>, RuntimeError> {
    if !process.terminal().unwrap_or(false) {
        return Ok(None);
    }
    if let Some(fd) = given {
        return Ok(Some(fd));
    }
    let path = socket.ok_or_else(|| {
        RuntimeError::Invalid("process.terminal is true but no --console-socket was given to receive the pty (or use run without --detach)".into())
    })?;
    let stream = UnixStream::connect(path)
        .map_err(RuntimeError::io("cannot connect to --console-socket", path))?;
    Ok(Some(OwnedFd::from(stream)))
}

/// A created container.
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    pub spawned: Spawned,
    /// Lines for `--debug`.
    pub notes: Vec<String>,
}

/// `create`: everything up to the user's program, which waits for `start`.
pub fn create(root: &StateRoot, mut options: CreateOptions) -> Result<Created, RuntimeError> {
    crate::validate_id(&options.id)?;
    let bundle = load_bundle(&options.bundle)?;
    bulwark_sys::phase::mark("create: bundle loaded");
    check_host_support(&bundle.spec)?;
    let namespaces = NamespacePlan::from_spec(&bundle.spec)?;
    if options.rootless {
        crate::rootless::check(&bundle.spec, &namespaces)?;
    }
    let (seccomp, mut notes) = crate::seccomp::compile(root, &bundle.spec)?;
    bulwark_sys::phase::mark("create: seccomp ready");
    let process = bundle.spec.process().clone().ok_or_else(|| {
        RuntimeError::Invalid(
            "config.json: process is missing (expected the process to run)".into(),
        )
    })?;
    let console = console_for(
        &process,
        options.console_socket.as_ref(),
        options.console.take(),
    )?;
    let container = root.create(&options.id)?;
    let request = Request {
        bundle,
        namespaces,
        process,
        console,
        seccomp,
    };
    match launch(&container, request, &options, &mut notes) {
        Ok(spawned) => Ok(Created {
            container,
            spawned,
            notes,
        }),
        Err(e) => {
            let _ = container.remove();
            Err(e)
        }
    }
}

/// What `create` checked, on its way to the sandbox.
struct Request {
    bundle: bulwark_spec::Bundle,
    namespaces: NamespacePlan,
    process: Process,
    console: Option<OwnedFd>,
    seccomp: Option<bulwark_seccomp::Filter>,
}

fn launch(
    container: &Container,
    request: Request,
    options: &CreateOptions,
    notes: &mut Vec<String>,
) -> Result<Spawned, RuntimeError> {
    let bundle = &request.bundle;
    let fifo = container.fifo();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(RuntimeError::sys("creating the exec fifo"))?;
    // mkfifo applies the umask; the init may run as any user, so set the mode exactly.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(RuntimeError::io("cannot set the mode of", &fifo))?;
    let mut saved = SavedState {
        id: container.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        owner: nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        config: bundle.spec.clone(),
        cgroup_paths: Vec::new(),
    };
    let cgroups = crate::cgroups::create(
        &container.dir,
        &container.id,
        &bundle.spec,
        options.rootless,
        notes,
    )?;
    bulwark_sys::phase::mark("create: cgroups created");
    saved.cgroup_paths = cgroups.as_ref().map(|c| c.paths()).unwrap_or_default();
    let result = spawn(container, request, options, cgroups.as_deref(), saved);
    if let (Err(_), Some(cgroups)) = (&result, &cgroups) {
        let _ = crate::cgroups::destroy(cgroups.as_ref());
    }
    result
}

fn spawn(
    container: &Container,
    request: Request,
    options: &CreateOptions,
    cgroups: Option<&dyn bulwark_cgroups::CgroupManager>,
    mut saved: SavedState,
) -> Result<Spawned, RuntimeError> {
    let Request {
        bundle,
        namespaces,
        process,
        console,
        seccomp,
    } = request;
    let placement = cgroups
        .map(|c| c.entry())
        .transpose()
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?
        .unwrap_or_default();
    let setgroups_denied = bulwark_sandbox::spec_denies_setgroups(&bundle.spec, &namespaces);
    let plan = ContainerPlan {
        id: container.id.clone(),
        bundle,
        namespaces,
        exec_fifo: nix::fcntl::open(
            &container.fifo(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RuntimeError::sys("opening the exec fifo"))?,
        no_pivot: options.no_pivot,
        no_new_keyring: options.no_new_keyring,
        process: ProcessPlan {
            process,
            console,
            preserve_fds: options.preserve_fds,
        },
        placement,
        seccomp,
        rootless: options.rootless,
        setgroups_denied,
    };
    let spec = plan.bundle.spec.clone();
    let template = saved.clone();
    let mut parent_hooks = LaunchHooks {
        spec: &spec,
        template: &template,
        listener: plan.seccomp.as_ref().and_then(|f| f.listener.as_ref()),
    };
    let spawned = bulwark_sandbox::spawn_container(&plan, &mut parent_hooks);
    let spawned = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            if matches!(e, bulwark_sandbox::LaunchError::Hook(_)) {
                // The spec has a failed create hook continue at delete, which runs poststop.
                let _ = hooks::run_warning(&spec, "poststop", &template.oci(Status::Stopped));
            }
            return Err(e.into());
        }
    };
    saved.pid = spawned.pid.as_raw();
    bulwark_sys::phase::mark("create: init ready");
    saved.pid_start = process_start(saved.pid)
        .map(|(start, _)| start)
        .unwrap_or(0);
    let finish = container
        .save(&saved)
        .and_then(|()| match &options.pid_file {
            Some(path) => write_pid_file(path, saved.pid),
            None => Ok(()),
        });
    if let Err(e) = finish {
        let _ = bulwark_sys::process::pidfd_send_signal(&spawned.pidfd, libc::SIGKILL);
        return Err(e);
    }
    Ok(spawned)
}

/// The runtime's part in the parent stage.
struct LaunchHooks<'a> {
    spec: &'a bulwark_spec::runtime::Spec,
    template: &'a SavedState,
    listener: Option<&'a bulwark_seccomp::Listener>,
}

impl bulwark_sandbox::ParentHooks for LaunchHooks<'_> {
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), String> {
        let listener = self.listener.ok_or("no linux.seccomp.listenerPath")?;
        let mut state = self.template.oci(Status::Creating);
        state.pid = pid.as_raw();
        crate::seccomp::send_to_agent(listener, &state, pid.as_raw(), fd)
    }

    fn runtime_hooks(&mut self, pid: nix::unistd::Pid) -> Result<String, String> {
        let mut state = self.template.oci(Status::Creating);
        state.pid = pid.as_raw();
        hooks::run(self.spec, "prestart", &state)?;
        hooks::run(self.spec, "createRuntime", &state)?;
        serde_json::to_string(&state).map_err(|e| e.to_string())
    }
}

/// Fields this host cannot honour: refuse rather than run with less isolation than asked.
fn check_host_support(spec: &bulwark_spec::runtime::Spec) -> Result<(), RuntimeError> {
    let process = spec.process().as_ref();
    let apparmor_on = std::path::Path::new("/sys/kernel/security/apparmor").exists();
    if process
        .and_then(|p| p.apparmor_profile().as_deref())
        .is_some_and(|p| !p.is_empty())
        && apparmor_on
    {
        return Err(RuntimeError::Invalid(
            "config.json: process.apparmorProfile is not supported by bulwark-runtime yet (AppArmor is enabled on this host, so it cannot be ignored)".into(),
        ));
    }
    let selinux_on = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if process
        .and_then(|p| p.selinux_label().as_deref())
        .is_some_and(|l| !l.is_empty())
        && selinux_on
    {
        return Err(RuntimeError::Invalid(
            "config.json: process.selinuxLabel is not supported by bulwark-runtime yet (SELinux is enabled on this host)".into(),
        ));
    }
    Ok(())
}

/// `start`: lets the waiting init exec the user's program, then runs poststart hooks.
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
    wait_for_fifo(&reader, &pidfd)?;
    std::fs::remove_file(&fifo).map_err(RuntimeError::io("cannot remove", &fifo))?;
    Ok(hooks::run_warning(
        &saved.config,
        "poststart",
        &saved.oci(Status::Running),
    ))
}

/// Waits until the init writes to the exec fifo (it got past `start`), then until the
/// fifo's last writer closes, which happens when the init execs the program (its write end
/// is close-on-exec) or dies.
fn wait_for_fifo(reader: &OwnedFd, pidfd: &OwnedFd) -> Result<(), RuntimeError> {
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
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_events.contains(PollFlags::POLLIN) {
            let mut buf = [0u8; 16];
            match nix::unistd::read(reader, &mut buf) {
                Ok(0) if got_byte => return Ok(()),
                Ok(n) if n > 0 => got_byte = true,
                _ => {}
            }
        } else if fifo_events.contains(PollFlags::POLLHUP) && got_byte {
            return Ok(());
        }
        if init_gone {
            return if got_byte {
                Ok(())
            } else {
                Err(RuntimeError::Invalid(
                    "the container's init exited before it could start".into(),
                ))
            };
        }
        if !got_byte && fifo_events.contains(PollFlags::POLLHUP) {
            // No writer yet: the init has not opened its end; wait a little.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Parses a signal given by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(text: &str) -> Result<i32, RuntimeError> {
    if let Ok(number) = text.parse::<i32>() {
        if (1..=64).contains(&number) {
            return Ok(number);
        }
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| RuntimeError::Invalid(format!("signal {text:?} is not valid (expected a name such as TERM or KILL, or a number from 1 to 64)")))
}

/// `kill`: sends a signal to the init, or with `all` to every process of the container.
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    if status == Status::Stopped {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action: "kill",
            expected: "created or running",
        });
    }
    let targets = if all {
        container_processes(&container, &saved)
    } else {
        vec![saved.pid]
    };
    let paused = status == Status::Paused;
    for pid in targets {
        signal_pid(
            pid,
            if pid == saved.pid {
                Some(saved.pid_start)
            } else {
                None
            },
            signal,
        )?;
    }
    // A frozen process cannot act on SIGKILL: thaw it so it dies, as runc does.
    if paused && signal == libc::SIGKILL {
        if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
            cgroups
                .freeze(false)
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        }
    }
    Ok(())
}

fn signal_pid(pid: i32, expected_start: Option<u64>, signal: i32) -> Result<(), RuntimeError> {
    let Ok(pidfd) = bulwark_sys::process::pidfd_open(nix::unistd::Pid::from_raw(pid)) else {
        return Ok(());
    };
    // Check the pid after holding a pidfd, so it cannot be recycled in between.
    if let Some(start) = expected_start {
        if process_start(pid).map(|(s, _)| s) != Some(start) {
            return Ok(());
        }
    }
    match bulwark_sys::process::pidfd_send_signal(&pidfd, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(RuntimeError::sys(format!(
            "sending signal {signal} to pid {pid}"
        ))(e)),
    }
}

/// `delete`: removes a stopped (or, with `force`, any) container and runs poststop hooks.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<Vec<String>, RuntimeError> {
    let container = match root.open(id) {
        // Engines delete --force again after a delete; as with runc, that is not an error.
        Err(RuntimeError::NotFound(_)) if force => return Ok(Vec::new()),
        other => other?,
    };
    let Some(saved) = container.load()? else {
        // Creation was cut short (e.g. the runtime was killed): kill what it left in
        // the container's cgroups and clean up.
        if let Some(cgroups) = crate::cgroups::existing(&container.dir, None) {
            let _ = cgroups.freeze(false);
            for pid in cgroups.pids().unwrap_or_default() {
                signal_pid(pid, None, libc::SIGKILL)?;
            }
            crate::cgroups::destroy(cgroups.as_ref())?;
        }
        container.remove()?;
        return Ok(Vec::new());
    };
    let status = container.status(&saved);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&container, &saved)?,
        _ if force => kill_and_wait(&container, &saved)?,
        _ => {
            return Err(RuntimeError::WrongStatus {
                id: id.into(),
                status: status.to_string(),
                action: "delete",
                expected: "stopped (use --force to kill it first)",
            })
        }
    }
    if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
        crate::cgroups::destroy(cgroups.as_ref())?;
    }
    let warnings = hooks::run_warning(&saved.config, "poststop", &saved.oci(Status::Stopped));
    container.remove()?;
    Ok(warnings)
}

/// The pids of every process of a container, as `ps` lists them.
pub fn processes(root: &StateRoot, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    if container.status(&saved) == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut pids = container_processes(&container, &saved);
    pids.sort_unstable();
    Ok(pids)
}

/// Every process of the container: from its cgroups, or else from its pid namespace.
pub fn container_processes(container: &Container, saved: &SavedState) -> Vec<i32> {
    crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths))
        .and_then(|m| m.pids().ok())
        .filter(|pids| !pids.is_empty())
        .unwrap_or_else(|| crate::procs::container_pids(saved.pid))
}

fn kill_and_wait(container: &Container, saved: &SavedState) -> Result<(), RuntimeError> {
    // A frozen cgroup would keep its processes from handling SIGKILL.
    if let Some(cgroups) = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths)) {
        let _ = cgroups.freeze(false);
    }
    for pid in container_processes(container, saved) {
        signal_pid(
            pid,
            (pid == saved.pid).then_some(saved.pid_start),
            libc::SIGKILL,
        )?;
    }
    let Ok(pidfd) = bulwark_sys::process::pidfd_open(nix::unistd::Pid::from_raw(saved.pid)) else {
        return Ok(());
    };
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    // Reap it if it is ours (foreground run); otherwise its parent does.
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(saved.pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    Ok(())
}

/// Options of `exec`.
#[derive(Debug)]
pub struct ExecOptions {
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
}

/// `exec`: starts a new process in a created or running container.
pub fn exec(root: &StateRoot, id: &str, mut options: ExecOptions) -> Result<Spawned, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    if !matches!(status, Status::Created | Status::Running) {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action: "exec",
            expected: "created or running",
        });
    }
    let process = options.process.clone();
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::Invalid(
            "exec: process.args is empty (expected the program to run)".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(RuntimeError::Invalid(format!(
            "exec: process.cwd {:?} is not valid (expected an absolute path)",
            process.cwd()
        )));
    }
    let console = console_for(
        &process,
        options.console_socket.as_ref(),
        options.console.take(),
    )?;
    let namespaces = NamespacePlan::from_spec(&saved.config)?;
    let (seccomp, _) = crate::seccomp::compile(root, &saved.config)?;
    let cgroups = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths));
    let placement = cgroups
        .as_deref()
        .map(|c| c.entry())
        .transpose()
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?
        .unwrap_or_default();
    let plan = ExecPlan {
        placement,
        container_pid: nix::unistd::Pid::from_raw(saved.pid),
        namespaces: namespace_kinds(&namespaces),
        process: ProcessPlan {
            process,
            console,
            preserve_fds: options.preserve_fds,
        },
        no_new_keyring: false,
        landlock: bulwark_sandbox::landlock::wanted(&saved.config),
        seccomp,
        setgroups_denied: bulwark_sandbox::spec_denies_setgroups(&saved.config, &namespaces),
    };
    let mut hooks = ExecHooks {
        listener: plan.seccomp.as_ref().and_then(|f| f.listener.as_ref()),
        state: saved.oci(status),
    };
    let spawned = bulwark_sandbox::exec::spawn_exec(&plan, &mut hooks)?;
    if let Some(path) = &options.pid_file {
        write_pid_file(path, spawned.pid.as_raw())?;
    }
    Ok(spawned)
}

/// The runtime's part in an exec.
struct ExecHooks<'a> {
    listener: Option<&'a bulwark_seccomp::Listener>,
    state: OciState,
}

impl bulwark_sandbox::exec::ExecHooks for ExecHooks<'_> {
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), String> {
        let listener = self.listener.ok_or("no linux.seccomp.listenerPath")?;
        crate::seccomp::send_to_agent(listener, &self.state, pid.as_raw(), fd)
    }
}

/// The OCI state of a container, as `state` prints it (`creating` while `create` runs).
pub fn state_of(root: &StateRoot, id: &str) -> Result<OciState, RuntimeError> {
    match root.peek(id)? {
        Some((saved, status)) => Ok(saved.oci(status)),
        None => Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: Status::Creating.to_string(),
            action: "state",
            expected: "created (it is still being created, or its creation was cut short: `delete --force` removes it)",
        }),
    }
}
