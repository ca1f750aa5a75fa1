//! `create`: everything up to the user's program, which then waits for `start`. Each
//! step checks what it can before touching the system, and what it made is undone when
//! a later step fails.
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use bulwark_sandbox::{ContainerPlan, LaunchError, Spawned, Stdio};
use bulwark_spec::hooks::HookPoint;
use bulwark_spec::{load_bundle, Config, ProcessConfig};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::value::RawValue;

use crate::container::write_pid_file;
use crate::state::{process_start, LandlockReport, SavedState};
use crate::{hooks, Container, RuntimeError, StateRoot, Status};

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

/// A created container.
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    pub spawned: Spawned,
    /// What the config asks for that runs otherwise than written (log as warnings).
    pub warnings: Vec<String>,
    /// Lines for `--debug`.
    pub notes: Vec<String>,
}

/// Connects to `--console-socket` when the process wants a terminal.
pub(crate) fn console_for(
    process: &ProcessConfig,
    socket: Option<&PathBuf>,
    given: Option<OwnedFd>,
) -> Result<Option<OwnedFd>, RuntimeError> {
    if !process.terminal() {
        return Ok(None);
    }
    if let Some(fd) = given {
        return Ok(Some(fd));
    }
    let path = socket.ok_or(RuntimeError::NoConsoleSocket)?;
    let stream = UnixStream::connect(path)
        .map_err(RuntimeError::io("cannot connect to --console-socket", path))?;
    Ok(Some(OwnedFd::from(stream)))
}

/// `create`: plan the bundle for this host, make the state directory and the cgroups,
/// and launch the init, which waits on the exec fifo.
pub fn create(root: &StateRoot, mut options: CreateOptions) -> Result<Created, RuntimeError> {
    crate::validate_id(&options.id)?;
    crate::host::check_kernel()?;
    let host = crate::host::detect(options.rootless);
    let planned = load_bundle(&options.bundle, &host)?;
    bulwark_sys::phase::mark("create: bundle planned");
    let config = planned.config;
    let (seccomp, mut notes) = crate::seccomp::compile(root, config.spec())?;
    bulwark_sys::phase::mark("create: seccomp ready");
    let stdio = Stdio {
        console: console_for(
            config.process(),
            options.console_socket.as_ref(),
            options.console.take(),
        )?,
        preserve_fds: options.preserve_fds,
    };
    let container = root.create(&options.id)?;
    let request = Request {
        config,
        stdio,
        seccomp,
    };
    match launch(&container, request, &options, &mut notes) {
        Ok(spawned) => Ok(Created {
            container,
            spawned,
            warnings: planned.warnings,
            notes,
        }),
        Err(e) => {
            let _ = container.remove();
            Err(e)
        }
    }
}

/// What `create` planned, on its way to the sandbox.
struct Request {
    config: Config,
    stdio: Stdio,
    seccomp: Option<bulwark_seccomp::Filter>,
}

/// The exec fifo and the cgroups, then the sandbox; the cgroups go again on failure.
fn launch(
    container: &Container,
    request: Request,
    options: &CreateOptions,
    notes: &mut Vec<String>,
) -> Result<Spawned, RuntimeError> {
    let fifo = container.fifo();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(RuntimeError::sys("creating the exec fifo"))?;
    // mkfifo applies the umask; the init may run as any user, so set the mode exactly.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(RuntimeError::io("cannot set the mode of", &fifo))?;
    let config = &request.config;
    let saved = SavedState {
        id: container.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: config.dir().to_path_buf(),
        rootfs: config.rootfs().to_path_buf(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        owner: {
            let euid = nix::unistd::geteuid().as_raw();
            crate::host::user_name(euid).unwrap_or_else(|| euid.to_string())
        },
        config: RawValue::from_string(config.json().to_owned())
            .expect("config.json was parsed, so it is JSON"),
        oci_version: config.spec().version().clone(),
        annotations: config.spec().annotations().clone().unwrap_or_default(),
        cgroup_paths: Vec::new(),
        landlock: LandlockReport::of(config.landlock()),
    };
    let cgroups = crate::cgroups::create(&container.dir, &container.id, config, notes)?;
    bulwark_sys::phase::mark("create: cgroups created");
    let saved = SavedState {
        cgroup_paths: cgroups.as_ref().map(|c| c.paths()).unwrap_or_default(),
        ..saved
    };
    let result = spawn(container, request, options, cgroups.as_deref(), saved);
    if let (Err(_), Some(cgroups)) = (&result, &cgroups) {
        let _ = cgroups.destroy();
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
    let placement = cgroups
        .map(|c| c.entry(&bulwark_cgroups::SubCgroups::None))
        .transpose()?
        .unwrap_or_default();
    let plan = ContainerPlan {
        id: container.id.clone(),
        config: request.config,
        exec_fifo: nix::fcntl::open(
            &container.fifo(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RuntimeError::sys("opening the exec fifo"))?,
        no_pivot: options.no_pivot,
        no_new_keyring: options.no_new_keyring,
        stdio: request.stdio,
        placement,
        seccomp: request.seccomp,
    };
    let mut parent_hooks = LaunchHooks {
        config: &plan.config,
        template: &saved,
        listener: plan.seccomp.as_ref().and_then(|f| f.listener.as_ref()),
    };
    let spawned = match bulwark_sandbox::spawn_container(&plan, &mut parent_hooks) {
        Ok(spawned) => spawned,
        Err(e) => {
            if e.is_hook() {
                // The spec has a failed create hook continue at delete, which runs poststop.
                let _ = hooks::run_warning(
                    plan.config.hooks(),
                    HookPoint::Poststop,
                    &saved.oci(Status::Stopped),
                );
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
    config: &'a Config,
    template: &'a SavedState,
    listener: Option<&'a bulwark_seccomp::Listener>,
}

impl bulwark_sandbox::ParentHooks for LaunchHooks<'_> {
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), LaunchError> {
        let listener = self
            .listener
            .ok_or_else(|| LaunchError::Seccomp("no linux.seccomp.listenerPath".into()))?;
        let mut state = self.template.oci(Status::Creating);
        state.pid = pid.as_raw();
        crate::seccomp::send_to_agent(listener, &state, pid.as_raw(), fd)
            .map_err(LaunchError::Seccomp)
    }

    fn runtime_hooks(&mut self, pid: nix::unistd::Pid) -> Result<String, LaunchError> {
        let mut state = self.template.oci(Status::Creating);
        state.pid = pid.as_raw();
        let json = serde_json::to_string(&state).expect("the OCI state always serializes");
        for point in [HookPoint::Prestart, HookPoint::CreateRuntime] {
            bulwark_sandbox::hooks::run_all(point, self.config.hooks().at(point), json.as_bytes())
                .map_err(LaunchError::Hook)?;
        }
        Ok(json)
    }
}
