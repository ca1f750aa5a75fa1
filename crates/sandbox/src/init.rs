//! The container's init: builds the root filesystem, applies the process settings, waits
//! for `start`, and execs the user's program. Each step is named; the first failure is
//! reported to the parent with the step that failed.
use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bulwark_spec::hooks::HookPoint;
use bulwark_spec::{Config, NamespaceKind, RootEntry};
use bulwark_sys::fs::fd_path;
use nix::fcntl::OFlag;

use crate::idmapped::{Target, Trees};
use crate::message::{Channel, ToChild, ToParent};
use crate::pivot::Entry;
use crate::plan::ContainerPlan;
use crate::process::Shared;
use crate::seccomp::{self, Before};
use crate::{console, devices, hooks, idmapped, mounts, paths, pivot, process, sysctl, StepError};

/// What the intermediate prepared for the init it forks: the rootfs opened while it was
/// still the host's root, and the idmapped trees the parent sent.
#[derive(Debug)]
pub struct Handoff {
    pub rootfs: OwnedFd,
    pub trees: Trees,
}

/// Runs the init stage; returns an exit code only if the exec did not happen.
/// `from_intermediate`: what the intermediate prepared when it made the namespaces;
/// `None` when the init was cloned into them itself.
pub fn run(plan: &ContainerPlan, channel: &Channel, from_intermediate: Option<Handoff>) -> i32 {
    let ready = match build_container(plan, channel, from_intermediate) {
        Ok(ready) => ready,
        Err(StepError::Hook(e)) => {
            let _ = channel.send(&ToParent::HookFailed(e.to_string()));
            return 1;
        }
        Err(e) => {
            let _ = channel.send(&ToParent::Failed(e.to_string()));
            return 1;
        }
    };
    // From here on `create` has returned: failures can only be told on the container's
    // stderr, and in the exit status (1 for the runtime's own steps, 126 or 127 when the
    // program cannot be executed, as a shell would say).
    let Err(e) = start_program(plan, ready);
    eprintln!("bulwark-runtime: container {}: {e}", plan.id);
    e.exit_code()
}

/// What the init holds between `create` and `start`.
struct Ready {
    fifo: OwnedFd,
    /// Without a mount namespace the rootfs has no /proc of its own: the host's, opened
    /// before the chroot, reopens the fifo.
    proc: Option<OwnedFd>,
    program: std::path::PathBuf,
    state: String,
}

fn build_container(
    plan: &ContainerPlan,
    channel: &Channel,
    from_intermediate: Option<Handoff>,
) -> Result<Ready, StepError> {
    let config = &plan.config;
    let Handoff { rootfs, mut trees } = enter(plan, channel, from_intermediate)?;
    let fifo = plan
        .exec_fifo
        .try_clone()
        .map_err(|e| StepError::msg(format!("duplicating the exec fifo's fd: {e}")))?;
    let root = build_root(plan, rootfs, &mut trees)?;
    let state = runtime_and_create_hooks(config, channel)?;
    let proc = match config.root().entry {
        RootEntry::Chroot => Some(
            nix::fcntl::open(
                "/proc",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(StepError::sys("opening the host's /proc"))?,
        ),
        RootEntry::Pivot => None,
    };
    pivot::enter_root(&root, root_entry(plan), config.rootfs())?;
    drop(root);
    finish_root(config)?;
    set_identity(plan)?;
    bulwark_sys::phase::mark("init: root finished");
    let program = prepare_process(plan)?;
    seccomp::install_at(
        Before::Ready,
        plan.seccomp.as_ref(),
        config.process(),
        Some(channel),
    )?;
    bulwark_sys::phase::mark("init: ready");
    channel.send(&ToParent::Ready)?;
    Ok(Ready {
        fifo,
        proc,
        program,
        state,
    })
}

fn root_entry(plan: &ContainerPlan) -> Entry {
    match (plan.config.root().entry, plan.no_pivot) {
        (RootEntry::Chroot, _) => Entry::Chroot,
        (RootEntry::Pivot, true) => Entry::MoveAndChroot,
        (RootEntry::Pivot, false) => Entry::Pivot,
    }
}

/// Into the container's cgroups and user namespace (unless the intermediate did it): the
/// rootfs is opened first, while the process is still the host's root as an owner.
fn enter(
    plan: &ContainerPlan,
    channel: &Channel,
    from_intermediate: Option<Handoff>,
) -> Result<Handoff, StepError> {
    if let Some(handoff) = from_intermediate {
        return Ok(handoff);
    }
    if plan.placement.joins_after_clone() {
        join_cgroups(plan)?;
        bulwark_sys::phase::mark("init: joined the cgroups");
        if plan.config.namespaces().creates(NamespaceKind::Cgroup) {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(StepError::sys("creating the cgroup namespace"))?;
        }
    }
    let rootfs = pivot::open_rootfs(plan.config.rootfs())?;
    let trees = match plan.creates_user_namespace() {
        true => idmapped::await_id_maps(channel)?,
        false => Trees::default(),
    };
    Ok(Handoff { rootfs, trees })
}

/// Loopback, the root mount, the config's mounts and the devices, all still under the
/// host's view of paths. Without a mount namespace only loopback: nothing is mounted.
fn build_root(
    plan: &ContainerPlan,
    rootfs: OwnedFd,
    trees: &mut Trees,
) -> Result<OwnedFd, StepError> {
    let config = &plan.config;
    if config.namespaces().creates(NamespaceKind::Network) {
        bulwark_sys::net::bring_up_loopback().map_err(StepError::sys(
            "bringing up lo in the new network namespace",
        ))?;
    }
    if config.root().entry == RootEntry::Chroot {
        return Ok(rootfs);
    }
    let root = pivot::prepare_root(rootfs, config.root().propagation, trees.take(Target::Root))?;
    mounts::mount_all(
        root.as_fd(),
        config.mounts(),
        trees,
        mounts::MountContext {
            in_userns: config.in_user_namespace(),
            own_cgroup_namespace: config.namespaces().contains(NamespaceKind::Cgroup),
        },
    )?;
    bulwark_sys::phase::mark("init: mounts done");
    devices::create_all(root.as_fd(), &config.devices(), config.in_user_namespace())?;
    devices::create_links(root.as_fd())?;
    Ok(root)
}

/// prestart and createRuntime (run by the parent), then createContainer; returns the state
/// JSON for the later container-side hooks.
fn runtime_and_create_hooks(config: &Config, channel: &Channel) -> Result<String, StepError> {
    channel.send(&ToParent::RunRuntimeHooks)?;
    let state = match channel.expect::<ToChild>("waiting for the createRuntime hooks")? {
        ToChild::RuntimeHooksDone { state } => state,
        other => {
            return Err(StepError::msg(format!(
                "the parent sent {other:?} where the protocol expects RuntimeHooksDone"
            )))
        }
    };
    let point = HookPoint::CreateContainer;
    hooks::run_all(point, config.hooks().at(point), state.as_bytes())?;
    Ok(state)
}

/// Terminal or a session of its own, read-only root, the process's privileged settings,
/// its cwd and program; every fd past stdio and the preserved ones close-on-exec.
fn prepare_process(plan: &ContainerPlan) -> Result<std::path::PathBuf, StepError> {
    let config = &plan.config;
    let process = config.process();
    match plan.stdio.console.as_ref().filter(|_| process.terminal()) {
        Some(console) => console::attach_terminal(
            console,
            process.console_size(),
            config.root().entry == RootEntry::Pivot,
        )?,
        None => console::leave_callers_session()?,
    }
    if config.root().readonly {
        pivot::make_root_readonly()?;
    }
    process::apply_privileged_settings(
        process,
        Shared {
            personality: config.personality(),
            memory_policy: config.memory_policy(),
        },
    )?;
    process::enter_cwd(process.cwd())?;
    let program = process::resolve_executable(process)?;
    bulwark_sys::process::cloexec_from(3 + plan.stdio.preserve_fds)
        .map_err(StepError::sys("closing inherited fds"))?;
    Ok(program)
}

/// Sysctls, masked and read-only paths, propagation: what needs the final root.
fn finish_root(config: &Config) -> Result<(), StepError> {
    // Sysctls first: readonlyPaths usually makes /proc/sys read-only.
    sysctl::apply(config.sysctls())?;
    paths::mask(config.masked_paths())?;
    paths::make_readonly(config.readonly_paths())?;
    if let Some(propagation) = config.root().propagation {
        pivot::set_root_propagation(propagation)?;
    }
    Ok(())
}

/// Hostname, domain name and session keyring.
fn set_identity(plan: &ContainerPlan) -> Result<(), StepError> {
    if let Some(name) = plan.config.hostname() {
        nix::unistd::sethostname(name)
            .map_err(StepError::sys(format!("setting hostname {name:?}")))?;
    }
    if let Some(name) = plan.config.domainname() {
        bulwark_sys::process::set_domainname(name)
            .map_err(StepError::sys(format!("setting domainname {name:?}")))?;
    }
    if !plan.no_new_keyring {
        // Kernels or seccomp profiles without keyctl leave the inherited keyring; not fatal.
        let _ = bulwark_sys::tune::join_new_session_keyring();
    }
    Ok(())
}

/// After `start`: startContainer hooks, the user switch, no_new_privs, seccomp, the exec.
fn start_program(plan: &ContainerPlan, ready: Ready) -> Result<Infallible, StepError> {
    // The fifo's write end stays open (close-on-exec) until the exec: `start` waits for
    // it to close so poststart hooks run only once the program runs.
    let _until_exec = wait_for_start(&ready.fifo, ready.proc.as_ref())?;
    drop(ready.fifo);
    drop(ready.proc);
    bulwark_sys::phase::mark("init: started");
    let config = &plan.config;
    let process = config.process();
    let point = HookPoint::StartContainer;
    hooks::run_all(
        point,
        config.hooks().at(point),
        &state_with_status(&ready.state, "created"),
    )?;
    // Last of all host-path work (the fifo above): from here on only the container's own
    // tree can be opened.
    if config.landlock().applied {
        crate::landlock::restrict_to_root(3 + plan.stdio.preserve_fds)?;
    }
    // The program starts with no signal ignored or blocked, whatever the runtime or the
    // engine that started it had; done before the seccomp filter may forbid it.
    bulwark_sys::process::reset_signals();
    process::switch_user(process, config.setgroups_denied(), || {
        seccomp::install_at(Before::CapabilityDrop, plan.seccomp.as_ref(), process, None)
    })?;
    if process.no_new_privileges() {
        nix::sys::prctl::set_no_new_privs().map_err(StepError::sys("setting noNewPrivileges"))?;
    }
    if let Some(cpus) = process.affinity_final() {
        process::set_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    Err(process::exec(
        &ready.program,
        process,
        plan.seccomp.as_ref(),
    ))
}

/// Blocks until `start` opens the fifo's read end. The fifo is reopened for writing
/// through `/proc/self/fd` (its fd is `O_PATH`): the container's /proc, or `proc`.
fn wait_for_start(fifo: &OwnedFd, proc: Option<&OwnedFd>) -> Result<OwnedFd, StepError> {
    let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let mode = nix::sys::stat::Mode::empty();
    let writer = match proc {
        Some(proc) => {
            let fd = std::os::fd::AsRawFd::as_raw_fd(fifo);
            nix::fcntl::openat(proc, format!("self/fd/{fd}").as_str(), flags, mode)
        }
        None => nix::fcntl::open(Path::new(&fd_path(fifo.as_fd())), flags, mode),
    }
    .map_err(StepError::sys(
        "opening the exec fifo (is /proc mounted in the container?)",
    ))?;
    nix::unistd::write(&writer, b"0").map_err(StepError::sys("writing the exec fifo"))?;
    Ok(writer)
}

/// The state JSON the parent sent, with `status` changed for a later hook.
fn state_with_status(state: &str, status: &str) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    value["status"] = serde_json::Value::String(status.to_string());
    serde_json::to_vec(&value).unwrap_or_else(|_| state.as_bytes().to_vec())
}

/// Joins the container's v1 cgroups (the process moves itself: see `bulwark_cgroups::Entry`).
pub(crate) fn join_cgroups(plan: &ContainerPlan) -> Result<(), StepError> {
    plan.placement
        .join_self()
        .map_err(|e| StepError::msg(e.to_string()))
}
