//! `exec`: a new process inside a running container. A forked stage joins all of the
//! container's namespaces at once through a pidfd, then forks the process itself so it
//! lands in the container's pid and time namespaces.
use std::os::fd::{AsFd, OwnedFd};

use bulwark_spec::namespaces::clone_flag;
use bulwark_spec::NamespaceKind;
use bulwark_sys::process::{clone_process, exit_now, pidfd_open, Forked};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;

use crate::message::{channel_pair, Channel, ToParent};
use crate::parent::{fork_stage, Spawned};
use crate::plan::ExecPlan;
use crate::seccomp::{self, Before};
use crate::{console, process, LaunchError, StepError};

/// Starts the exec'd process and returns once its program is running (the stage socket,
/// close-on-exec, closes on a successful exec).
pub fn spawn_exec(plan: &ExecPlan, hooks: &mut dyn ExecHooks) -> Result<Spawned, LaunchError> {
    let (ours, theirs) = channel_pair()?;
    nix::sys::prctl::set_child_subreaper(true).map_err(StepError::sys("PR_SET_CHILD_SUBREAPER"))?;
    let (stage_pid, _stage_fd) = fork_stage(|| {
        let mut keep = plan.process.inherited_fds();
        keep.push(theirs.raw_fd());
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
    let result = wait_for_exec(&ours, plan.placed_by_parent, hooks);
    let _ = waitpid(stage_pid, None);
    let pid = result?;
    let pidfd =
        pidfd_open(pid).map_err(StepError::sys("opening a pidfd for the exec'd process"))?;
    Ok(Spawned { pid, pidfd })
}

/// What the runtime does for an exec at its fixed points.
pub trait ExecHooks {
    /// Adds the process to the container's cgroups.
    fn place(&mut self, pid: nix::unistd::Pid) -> Result<(), String>;
    /// Hands the seccomp notification fd to the agent.
    fn seccomp_listener(&mut self, pid: nix::unistd::Pid, fd: OwnedFd) -> Result<(), String>;
}

fn wait_for_exec(
    channel: &Channel,
    placed_by_parent: bool,
    hooks: &mut dyn ExecHooks,
) -> Result<nix::unistd::Pid, LaunchError> {
    let mut pid = None;
    let mut ready = false;
    loop {
        match channel.recv::<ToParent>()? {
            Some(ToParent::InitPid(raw)) => {
                let child = nix::unistd::Pid::from_raw(raw);
                pid = Some(child);
                if placed_by_parent {
                    if let Err(e) = hooks.place(child) {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        return Err(LaunchError::Cgroup(e));
                    }
                    channel.send(&crate::message::ToChild::Placed)?;
                }
            }
            Some(ToParent::SeccompListener) => {
                let fd = channel.recv_fd()?;
                let child = pid.ok_or_else(|| LaunchError::Child("no pid reported".into()))?;
                hooks
                    .seccomp_listener(child, fd)
                    .map_err(LaunchError::Seccomp)?;
            }
            Some(ToParent::Ready) => ready = true,
            Some(ToParent::Failed(reason)) => {
                if let Some(pid) = pid {
                    let _ = waitpid(pid, None);
                }
                return Err(LaunchError::Child(reason));
            }
            Some(other) => return Err(LaunchError::Child(format!("unexpected message {other:?}"))),
            None if ready => {
                return pid.ok_or_else(|| LaunchError::Child("no pid reported".into()))
            }
            None => {
                return Err(LaunchError::ChildDied(
                    "the exec stage closed its socket early".into(),
                ))
            }
        }
    }
}

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
    nix::sched::setns(target.as_fd(), CloneFlags::from_bits_retain(flags as i32))
        .map_err(StepError::sys("joining the container's namespaces"))?;
    drop(target);
    match clone_process(0).map_err(StepError::sys("forking the exec process"))? {
        Forked::Child => {
            let Err(e) = run_process(plan, channel);
            let _ = channel.send(&ToParent::Failed(e.to_string()));
            exit_now(127)
        }
        Forked::Parent { pid, .. } => channel.send(&ToParent::InitPid(pid.as_raw())),
    }
}

fn run_process(plan: &ExecPlan, channel: &Channel) -> Result<std::convert::Infallible, StepError> {
    if plan.placed_by_parent {
        channel.await_placement()?;
    }
    let process = &plan.process.process;
    if !plan.no_new_keyring {
        let _ = bulwark_sys::tune::join_new_session_keyring();
    }
    if let Some(console) = plan
        .process
        .console
        .as_ref()
        .filter(|_| process.terminal().unwrap_or(false))
    {
        console::attach_terminal(console, process.console_size().as_ref(), false)?;
    }
    process::apply_privileged_settings(process, None)?;
    process::enter_cwd(process.cwd())?;
    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let program = process::resolve_executable(&args[0], &env)?;
    bulwark_sys::process::cloexec_from(3 + plan.process.preserve_fds)
        .map_err(StepError::sys("closing inherited fds"))?;
    // As in the init: signals reset, then only what must follow the filter.
    bulwark_sys::process::reset_signals();
    let seccomp = plan.seccomp.as_ref();
    process::switch_user(process, || {
        seccomp::install_at(Before::CapabilityDrop, seccomp, process, None)
    })?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(StepError::sys("setting noNewPrivileges"))?;
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
