//! The container's init: builds the root filesystem, applies the process settings, waits
//! for `start`, and execs the user's program. Each step is named; the first failure is
//! reported to the parent with the step that failed.
use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use bulwark_spec::runtime::Linux;
use bulwark_sys::fs::fd_path;
use nix::fcntl::OFlag;

use crate::idmapped::{Target, Trees};
use crate::message::{Channel, ToChild, ToParent};
use crate::plan::ContainerPlan;
use crate::seccomp::{self, Before};
use crate::{console, devices, hooks, idmap, mounts, paths, pivot, process, sysctl, StepError};

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
        Err(StepError::Hook(reason)) => {
            let _ = channel.send(&ToParent::HookFailed(reason));
            return 1;
        }
        Err(e) => {
            let _ = channel.send(&ToParent::Failed(e.to_string()));
            return 1;
        }
    };
    // From here on `create` has returned: failures can only be told on the container's stderr.
    let Err(e) = start_program(plan, ready);
    eprintln!("bulwark-runtime: container {}: {e}", plan.id);
    127
}

/// What the init holds between `create` and `start`.
struct Ready {
    fifo: OwnedFd,
    program: std::path::PathBuf,
    state: String,
}

fn build_container(
    plan: &ContainerPlan,
    channel: &Channel,
    from_intermediate: Option<Handoff>,
) -> Result<Ready, StepError> {
    let linux = plan.bundle.spec.linux().as_ref();
    let Handoff { rootfs, mut trees } = enter(plan, channel, from_intermediate)?;
    let fifo = plan
        .exec_fifo
        .try_clone()
        .map_err(|e| StepError::msg(format!("duplicating the exec fifo's fd: {e}")))?;
    let root = build_root(plan, rootfs, &mut trees)?;
    let state = runtime_and_create_hooks(plan, channel)?;
    pivot::enter_root(&root, plan.no_pivot)?;
    drop(root);
    finish_root(linux)?;
    set_identity(plan)?;
    bulwark_sys::phase::mark("init: root finished");
    let program = prepare_process(plan)?;
    seccomp::install_at(
        Before::Ready,
        plan.seccomp.as_ref(),
        &plan.process.process,
        Some(channel),
    )?;
    bulwark_sys::phase::mark("init: ready");
    channel.send(&ToParent::Ready)?;
    Ok(Ready {
        fifo,
        program,
        state,
    })
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
        if plan.namespaces.creates(bulwark_spec::NamespaceKind::Cgroup) {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(StepError::sys("creating the cgroup namespace"))?;
        }
    }
    let rootfs = pivot::open_rootfs(&plan.bundle.rootfs)?;
    let mut trees = Trees::default();
    if plan.creates_user_namespace() {
        channel.send(&ToParent::NeedIdMaps)?;
        match channel.expect::<ToChild>("waiting for the id maps")? {
            ToChild::IdMapsWritten { idmapped } => {
                trees = Trees::receive(channel, &idmapped)?;
                idmap::become_namespace_root();
            }
            other => return Err(StepError::msg(format!("unexpected message {other:?}"))),
        }
    }
    Ok(Handoff { rootfs, trees })
}

/// Loopback, the root mount, the config's mounts and the devices, all still under the
/// host's view of paths.
fn build_root(
    plan: &ContainerPlan,
    rootfs: OwnedFd,
    trees: &mut Trees,
) -> Result<OwnedFd, StepError> {
    let spec = &plan.bundle.spec;
    let linux = spec.linux().as_ref();
    if plan
        .namespaces
        .creates(bulwark_spec::NamespaceKind::Network)
    {
        bulwark_sys::net::bring_up_loopback().map_err(StepError::sys(
            "bringing up lo in the new network namespace",
        ))?;
    }
    let root = pivot::prepare_root(
        rootfs,
        linux.and_then(|l| l.rootfs_propagation().as_deref()),
        trees.take(Target::Root),
    )?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    mounts::mount_all(
        root.as_fd(),
        &plan.bundle.dir,
        &mounts,
        trees,
        mounts::MountContext {
            in_userns: plan.in_user_namespace(),
            own_cgroup_namespace: plan
                .namespaces
                .contains(bulwark_spec::NamespaceKind::Cgroup),
        },
    )?;
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    bulwark_sys::phase::mark("init: mounts done");
    devices::create_all(root.as_fd(), &devices, plan.in_user_namespace())?;
    devices::create_links(root.as_fd())?;
    Ok(root)
}

/// prestart and createRuntime (run by the parent), then createContainer; returns the state
/// JSON for the later container-side hooks.
fn runtime_and_create_hooks(plan: &ContainerPlan, channel: &Channel) -> Result<String, StepError> {
    channel.send(&ToParent::RunRuntimeHooks)?;
    let state = match channel.expect::<ToChild>("waiting for the createRuntime hooks")? {
        ToChild::RuntimeHooksDone { state } => state,
        other => return Err(StepError::msg(format!("unexpected message {other:?}"))),
    };
    let create_container = plan
        .bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
        .unwrap_or_default();
    hooks::run_all("createContainer", &create_container, state.as_bytes())
        .map_err(StepError::Hook)?;
    Ok(state)
}

/// Terminal or a session of its own, read-only root, the process's privileged settings,
/// its cwd and program; every fd past stdio and the preserved ones close-on-exec.
fn prepare_process(plan: &ContainerPlan) -> Result<std::path::PathBuf, StepError> {
    let spec = &plan.bundle.spec;
    let process = &plan.process.process;
    match plan
        .process
        .console
        .as_ref()
        .filter(|_| process.terminal().unwrap_or(false))
    {
        Some(console) => console::attach_terminal(console, process.console_size().as_ref(), true)?,
        None => console::leave_callers_session()?,
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        pivot::make_root_readonly()?;
    }
    process::apply_privileged_settings(process, spec.linux().as_ref())?;
    process::check_capabilities_grantable(process)?;
    process::enter_cwd(process.cwd())?;
    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let program = process::resolve_executable(&args[0], &env)?;
    bulwark_sys::process::cloexec_from(3 + plan.process.preserve_fds)
        .map_err(StepError::sys("closing inherited fds"))?;
    Ok(program)
}

/// Masked and read-only paths, propagation, sysctls: what needs the final root.
fn finish_root(linux: Option<&Linux>) -> Result<(), StepError> {
    let Some(linux) = linux else {
        return Ok(());
    };
    // Sysctls first: readonlyPaths usually makes /proc/sys read-only.
    if let Some(sysctls) = linux.sysctl() {
        sysctl::apply(sysctls)?;
    }
    paths::mask(linux.masked_paths().as_deref().unwrap_or_default())?;
    paths::make_readonly(linux.readonly_paths().as_deref().unwrap_or_default())?;
    if let Some(propagation) = linux.rootfs_propagation() {
        pivot::set_root_propagation(propagation)?;
    }
    Ok(())
}

/// Hostname, domain name and session keyring.
fn set_identity(plan: &ContainerPlan) -> Result<(), StepError> {
    let spec = &plan.bundle.spec;
    if let Some(name) = spec.hostname().as_deref().filter(|n| !n.is_empty()) {
        nix::unistd::sethostname(name)
            .map_err(StepError::sys(format!("setting hostname {name:?}")))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|n| !n.is_empty()) {
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
    let _until_exec = wait_for_start(&ready.fifo)?;
    drop(ready.fifo);
    bulwark_sys::phase::mark("init: started");
    let process = &plan.process.process;
    let start_hooks = plan
        .bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
        .unwrap_or_default();
    hooks::run_all(
        "startContainer",
        &start_hooks,
        &state_with_status(&ready.state, "created"),
    )
    .map_err(StepError::Message)?;
    // Last of all host-path work (the fifo above): from here on only the container's own
    // tree can be opened.
    if crate::landlock::wanted(&plan.bundle.spec) {
        crate::landlock::restrict_to_root(3 + plan.process.preserve_fds)?;
    }
    // The program starts with no signal ignored or blocked, whatever the runtime or the
    // engine that started it had; done before the seccomp filter may forbid it.
    bulwark_sys::process::reset_signals();
    process::switch_user(process, plan.setgroups_denied, || {
        seccomp::install_at(Before::CapabilityDrop, plan.seccomp.as_ref(), process, None)
    })?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(StepError::sys("setting noNewPrivileges"))?;
    }
    if let Some(cpus) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
    {
        process::set_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    Err(process::exec(
        &ready.program,
        process,
        plan.seccomp.as_ref(),
    ))
}

/// Blocks until `start` opens the fifo's read end.
fn wait_for_start(fifo: &OwnedFd) -> Result<OwnedFd, StepError> {
    let path = fd_path(fifo.as_fd());
    let writer = nix::fcntl::open(
        Path::new(&path),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
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
