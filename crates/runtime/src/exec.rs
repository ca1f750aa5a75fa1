//! `exec`: a new process in a created or running container (or a paused one, with
//! `ignore_paused`, where it starts once the container is resumed).
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use bulwark_cgroups::SubCgroups;
use bulwark_sandbox::exec::namespace_kinds;
use bulwark_sandbox::{ExecPlan, LaunchError, Spawned, Stdio};
use bulwark_spec::runtime::Process;
use bulwark_spec::{Landlock, ProcessConfig, RootEntry};

use crate::container::write_pid_file;
use crate::create::console_for;
use crate::{OciState, RuntimeError, StateRoot, Status};

/// Options of `exec`.
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Allow a paused container: the process starts when it is resumed.
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's to run in.
    pub sub_cgroups: SubCgroups,
    /// The runtime lacks the host's root privileges.
    pub rootless: bool,
}

/// A started exec'd process.
#[derive(Debug)]
pub struct Execed {
    pub spawned: Spawned,
    /// What the process asks for that runs otherwise than written (log as warnings).
    pub warnings: Vec<String>,
}

/// `exec`: plans the process like the container's own, then joins the container.
pub fn exec(root: &StateRoot, id: &str, mut options: ExecOptions) -> Result<Execed, RuntimeError> {
    let container = root.open(id)?;
    let saved = container.require()?;
    let status = container.status(&saved);
    let allowed = match status {
        Status::Created | Status::Running => true,
        Status::Paused => options.ignore_paused,
        _ => false,
    };
    if !allowed {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.to_string(),
            action: "exec",
            expected: if status == Status::Paused {
                "created or running (or paused, with --ignore-paused)"
            } else {
                "created or running"
            },
        });
    }
    let host = crate::host::detect(options.rootless);
    let container_config = bulwark_spec::plan_json(
        saved.config.get().as_bytes(),
        saved.bundle.clone(),
        saved.rootfs.clone(),
        &host,
    )?
    .config;
    let mut warnings = Vec::new();
    let process = ProcessConfig::plan(&options.process, &host, &mut warnings)?;
    let stdio = Stdio {
        console: console_for(
            &process,
            options.console_socket.as_ref(),
            options.console.take(),
        )?,
        preserve_fds: options.preserve_fds,
    };
    let (seccomp, _) = crate::seccomp::compile(root, container_config.spec())?;
    let cgroups = crate::cgroups::existing(&container.dir, Some(&saved.cgroup_paths));
    let placement = match &cgroups {
        Some(cgroups) => cgroups.entry(&options.sub_cgroups)?,
        None => Default::default(),
    };
    let plan = ExecPlan {
        placement,
        container_pid: nix::unistd::Pid::from_raw(saved.pid),
        namespaces: namespace_kinds(container_config.namespaces()),
        chroot: container_config.root().entry == RootEntry::Chroot,
        landlock: Landlock::decide(
            container_config.landlock_annotation(),
            process.capabilities().bounding,
        )
        .applied,
        process,
        stdio,
        no_new_keyring: false,
        personality: container_config.personality(),
        seccomp,
        setgroups_denied: container_config.setgroups_denied(),
    };
    let mut hooks = ExecHooks {
        listener: plan.seccomp.as_ref().and_then(|f| f.listener.as_ref()),
        state: saved.oci(status),
    };
    // A paused container's processes run only once it is resumed: do not hold its lock
    // meanwhile, or `resume` would wait for this exec.
    let _lock = (status != Status::Paused).then_some(container);
    let spawned = bulwark_sandbox::exec::spawn_exec(&plan, &mut hooks)?;
    if let Some(path) = &options.pid_file {
        write_pid_file(path, spawned.pid.as_raw())?;
    }
    Ok(Execed { spawned, warnings })
}

/// The runtime's part in an exec.
struct ExecHooks<'a> {
    listener: Option<&'a bulwark_seccomp::Listener>,
    state: OciState,
}

impl bulwark_sandbox::exec::ExecHooks for ExecHooks<'_> {
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), LaunchError> {
        let listener = self
            .listener
            .ok_or_else(|| LaunchError::Seccomp("no linux.seccomp.listenerPath".into()))?;
        crate::seccomp::send_to_agent(listener, &self.state, pid.as_raw(), fd)
            .map_err(LaunchError::Seccomp)
    }
}
