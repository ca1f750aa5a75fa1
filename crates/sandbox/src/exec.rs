//! `exec`: a new process inside a running container. A forked stage joins all of the
//! container's namespaces at once through a pidfd, then forks the process itself so it
//! lands in the container's pid and time namespaces.
use std::os::fd::{AsFd, OwnedFd};

use bulwark_spec::namespaces::clone_flag;
use bulwark_spec::NamespaceKind;
use bulwark_sys::process::{clone_into, exit_now, pidfd_open, Forked};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;

use crate::message::{channel_pair, Channel, ToParent};
use crate::parent::{fork_stage, Spawned};
use crate::plan::ExecPlan;
use crate::process::Shared;
use crate::seccomp::{self, Before};
use crate::{console, process, LaunchError, StepError};

/// Starts the exec'd process and returns once its program is running (the stage socket,
/// close-on-exec, closes on a successful exec).
pub fn spawn_exec(plan: &ExecPlan, hooks: &mut dyn ExecHooks) -> Result<Spawned, LaunchError> {
    let (ours, theirs) = channel_pair()?;
    nix::sys::prctl::set_child_subreaper(true).map_err(StepError::sys("PR_SET_CHILD_SUBREAPER"))?;
    let (stage_pid, _stage_fd) = fork_stage(|| {
        let mut keep = plan.stdio.inherited_fds();
        keep.push(theirs.raw_fd());
        keep.extend(plan.placement.raw_fds());
        let joined = bulwark_sys::process::close_fds_except(&keep)
            .map_err(StepError::sys("closing the runtime's fds"))
            .and_then(|()| join_and_fork(plan, &theirs));
        match joined {
            Ok(()) => 0,
            Err(e) => {
                let _ = theirs.send(&ToParent::Failed(e.to_string()));
                1
            }
        }
    })?;
    drop(theirs);
    let result = wait_for_exec(&ours, hooks);
    let _ = waitpid(stage_pid, None);
    let pid = result?;
    let pidfd =
        pidfd_open(pid).map_err(StepError::sys("opening a pidfd for the exec'd process"))?;
    Ok(Spawned { pid, pidfd })
}

/// What the runtime does for an exec at its fixed points.
pub trait ExecHooks {
    /// Hands the seccomp notification fd to the agent.
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), LaunchError>;
}

fn wait_for_exec(
    channel: &Channel,
    hooks: &mut dyn ExecHooks,
) -> Result<nix::unistd::Pid, LaunchError> {
    let mut pid = None;
    let mut ready = false;
    // The stage reports the pid and the process itself sends its listener, so either may
    // come first; the listener waits for the pid.
    let mut listener = None;
    loop {
        let received = channel.recv_with_fd::<ToParent>()?;
        match received {
            Some((ToParent::InitPid(raw), _)) => pid = Some(nix::unistd::Pid::from_raw(raw)),
            Some((ToParent::SeccompListener, fd)) => {
                listener = Some(crate::message::listener_fd(fd)?);
            }
            Some((ToParent::Ready, _)) => ready = true,
            Some((ToParent::Failed(reason), _)) => {
                if let Some(pid) = pid {
                    let _ = waitpid(pid, None);
                }
                return Err(LaunchError::Exec(reason));
            }
            Some((other, _)) => {
                return Err(LaunchError::Protocol(format!(
                    "the exec stage sent {} where the protocol expects InitPid, SeccompListener or Ready",
                    other.name()
                )))
            }
            None if ready => {
                return pid.ok_or_else(|| {
                    LaunchError::Protocol("the exec stage reported Ready but no pid".into())
                })
            }
            None => {
                return Err(LaunchError::ChildDied {
                    waiting_for: "Ready",
                    status: "closed its stage socket early".into(),
                })
            }
        }
        if let (Some(child), Some(fd)) = (pid, listener.take()) {
            hooks.seccomp_listener(child, fd)?;
        }
    }
}

/// Joins every namespace but the cgroup one, then forks the process straight into the
/// container's cgroup2 directory; the process joins the cgroup namespace and the v1
/// hierarchies itself, so nothing is moved by pid (see `bulwark_cgroups::Entry`).
fn join_and_fork(plan: &ExecPlan, channel: &Channel) -> Result<(), StepError> {
    let target = pidfd_open(plan.container_pid).map_err(StepError::sys(format!(
        "finding the container's init (pid {})",
        plan.container_pid
    )))?;
    let flags = plan
        .namespaces
        .iter()
        .map(|kind| clone_flag(*kind))
        .fold(0u64, |a, b| a | b);
    let cgroup_ns = flags & libc::CLONE_NEWCGROUP as u64;
    // Without a mount namespace of its own the container's root is a chroot: the process
    // takes the init's root, opened before anything is joined.
    let root = plan
        .chroot
        .then(|| {
            let path = format!("/proc/{}/root", plan.container_pid);
            nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(StepError::sys(format!(
                "opening the container's root {path}"
            )))
        })
        .transpose()?;
    nix::sched::setns(
        target.as_fd(),
        CloneFlags::from_bits_retain((flags & !cgroup_ns) as i32),
    )
    .map_err(StepError::sys("joining the container's namespaces"))?;
    let cgroup = plan.placement.clone_into.as_ref().map(AsFd::as_fd);
    match clone_into(0, cgroup).map_err(StepError::sys("forking the exec process"))? {
        Forked::Child => {
            let entered = plan
                .placement
                .join_self()
                .map_err(|e| StepError::msg(e.to_string()))
                .and_then(|()| match cgroup_ns {
                    0 => Ok(()),
                    ns => {
                        nix::sched::setns(target.as_fd(), CloneFlags::from_bits_retain(ns as i32))
                            .map_err(StepError::sys("joining the container's cgroup namespace"))
                    }
                });
            let Err(e) = entered
                .and_then(|()| root.as_ref().map_or(Ok(()), enter_chroot))
                .and_then(|()| run_process(plan, channel));
            let _ = channel.send(&ToParent::Failed(e.to_string()));
            exit_now(e.exit_code())
        }
        Forked::Parent { pid, .. } => channel.send(&ToParent::InitPid(pid.as_raw())),
    }
}

fn enter_chroot(root: &OwnedFd) -> Result<(), StepError> {
    nix::unistd::fchdir(root).map_err(StepError::sys("entering the container's root"))?;
    nix::unistd::chroot(".").map_err(StepError::sys("chroot into the container's root"))
}

fn run_process(plan: &ExecPlan, channel: &Channel) -> Result<std::convert::Infallible, StepError> {
    let process = &plan.process;
    if !plan.no_new_keyring {
        let _ = bulwark_sys::tune::join_new_session_keyring();
    }
    match plan.stdio.console.as_ref().filter(|_| process.terminal()) {
        Some(console) => console::attach_terminal(console, process.console_size(), false)?,
        None => console::leave_callers_session()?,
    }
    process::apply_privileged_settings(
        process,
        Shared {
            personality: plan.personality,
            memory_policy: None,
        },
    )?;
    process::enter_cwd(process.cwd())?;
    let program = process::resolve_executable(process)?;
    bulwark_sys::process::cloexec_from(3 + plan.stdio.preserve_fds)
        .map_err(StepError::sys("closing inherited fds"))?;
    if plan.landlock {
        crate::landlock::restrict_to_root(3 + plan.stdio.preserve_fds)?;
    }
    // As in the init: signals reset, then only what must follow the filter.
    bulwark_sys::process::reset_signals();
    let seccomp = plan.seccomp.as_ref();
    process::switch_user(process, plan.setgroups_denied, || {
        seccomp::install_at(Before::CapabilityDrop, seccomp, process, None)
    })?;
    if process.no_new_privileges() {
        nix::sys::prctl::set_no_new_privs().map_err(StepError::sys("setting noNewPrivileges"))?;
    }
    // After the process joined the container's cgroups (a v1 cpuset resets affinity).
    if let Some(cpus) = process.affinity_final() {
        process::set_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    seccomp::install_at(Before::Ready, seccomp, process, Some(channel))?;
    channel.send(&ToParent::Ready)?;
    Err(process::exec(&program, process, seccomp))
}

/// The namespace kinds a container's config lists, for [`ExecPlan::namespaces`].
pub fn namespace_kinds(plan: &bulwark_spec::NamespacePlan) -> Vec<NamespaceKind> {
    plan.new
        .iter()
        .copied()
        .chain(plan.join.iter().map(|(k, _)| *k))
        .collect()
}
