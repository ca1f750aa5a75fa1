//! The parent stage: forks the container, writes its id maps, runs the runtime-side
//! hooks when asked, and returns once the init reports it is ready (or why it failed).
use std::os::fd::{AsFd, OwnedFd};

use bulwark_sys::process::{
    clone_into, clone_process, exit_now, pidfd_open, pidfd_send_signal, Forked,
};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::message::{channel_pair, Channel, ToChild, ToParent};
use crate::plan::ContainerPlan;
use crate::protocol;
use crate::{idmap, idmapped, init, intermediate, LaunchError, StepError};

/// A container init that reported ready.
#[derive(Debug)]
pub struct Spawned {
    /// The init's pid in the runtime's pid namespace.
    pub pid: Pid,
    pub pidfd: OwnedFd,
}

/// Kills and reaps processes we forked unless the launch succeeds.
struct Children {
    procs: Vec<(Pid, OwnedFd)>,
}

impl Drop for Children {
    fn drop(&mut self) {
        for (pid, pidfd) in self.procs.drain(..) {
            let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// What the runtime does for the parent stage at its fixed points.
pub trait ParentHooks {
    /// Runs the `prestart` and `createRuntime` hooks for the init `pid`; returns the
    /// state JSON the container-side hooks get.
    fn runtime_hooks(&mut self, pid: Pid) -> Result<String, LaunchError>;
    /// Hands the init's seccomp notification fd to the agent (`linux.seccomp.listenerPath`).
    fn seccomp_listener(&mut self, pid: Pid, fd: OwnedFd) -> Result<(), LaunchError>;
}

/// Starts the container's init, calling `hooks` at their points.
pub fn spawn_container(
    plan: &ContainerPlan,
    hooks: &mut dyn ParentHooks,
) -> Result<Spawned, LaunchError> {
    let (ours, theirs) = channel_pair()?;
    // An init forked by the intermediate is reparented to us, so we can reap it.
    nix::sys::prctl::set_child_subreaper(true).map_err(StepError::sys("PR_SET_CHILD_SUBREAPER"))?;
    let via_intermediate = plan.needs_intermediate();
    let flags = if via_intermediate {
        0
    } else {
        plan.clone_flags()
    };
    let cgroup = plan.placement.clone_into.as_ref().map(AsFd::as_fd);
    let nproc = NprocCap::for_user_namespace(plan)?;
    let cloned = clone_into(flags, cgroup);
    drop(nproc);
    let (pid, pidfd) = match cloned.map_err(StepError::sys("creating the container process"))? {
        Forked::Child => {
            drop(ours);
            let mut keep = plan.stdio.inherited_fds();
            keep.push(theirs.raw_fd());
            keep.extend(plan.placement.raw_fds());
            keep.push(std::os::fd::AsRawFd::as_raw_fd(&plan.exec_fifo));
            if let Err(e) = bulwark_sys::process::close_fds_except(&keep) {
                let _ = theirs.send(&ToParent::Failed(format!("closing the runtime's fds: {e}")));
                exit_now(1);
            }
            let code = if via_intermediate {
                intermediate::run(plan, &theirs)
            } else {
                init::run(plan, &theirs, None)
            };
            exit_now(code)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    bulwark_sys::phase::mark("create: cloned");
    drop(theirs);
    let mut children = Children {
        procs: vec![(pid, pidfd)],
    };
    let init_pid = converse(plan, &ours, pid, &mut children, hooks)?;
    let (pid, pidfd) = children
        .procs
        .pop()
        .filter(|(p, _)| *p == init_pid)
        .ok_or(LaunchError::LostInit)?;
    std::mem::forget(children);
    Ok(Spawned { pid, pidfd })
}

/// A rootless runtime's soft `RLIMIT_NPROC`, lowered to the container's own while its
/// user namespace is made, and raised back on drop.
///
/// The kernel counts RLIMIT_NPROC per user of each user namespace, and above that counts
/// every process of the namespace against its creator's user, up to the creator's limit
/// when the namespace was made. With only the container's limit, container root could
/// fork that many under each of its mapped uids; made under a lowered limit, the
/// namespace's processes, with all else the creator's user runs, stay within it.
struct NprocCap {
    restore: Option<(u64, u64)>,
}

impl NprocCap {
    fn for_user_namespace(plan: &ContainerPlan) -> Result<NprocCap, StepError> {
        let wanted = plan.config.process().nproc_limit();
        let (soft, hard) =
            getrlimit(Resource::RLIMIT_NPROC).map_err(StepError::sys("reading RLIMIT_NPROC"))?;
        let lowered = match wanted {
            Some(limit)
                if plan.config.rootless() && plan.creates_user_namespace() && limit < soft =>
            {
                limit
            }
            _ => return Ok(NprocCap { restore: None }),
        };
        setrlimit(Resource::RLIMIT_NPROC, lowered, hard).map_err(StepError::sys(
            "lowering RLIMIT_NPROC for the user namespace",
        ))?;
        Ok(NprocCap {
            restore: Some((soft, hard)),
        })
    }
}

impl Drop for NprocCap {
    fn drop(&mut self) {
        if let Some((soft, hard)) = self.restore {
            let _ = setrlimit(Resource::RLIMIT_NPROC, soft, hard);
        }
    }
}

/// Answers the stages' messages, each only in its turn (see [`crate::protocol`]), until
/// the init is ready. Returns the init's pid.
fn converse(
    plan: &ContainerPlan,
    channel: &Channel,
    first: Pid,
    children: &mut Children,
    hooks: &mut dyn ParentHooks,
) -> Result<Pid, LaunchError> {
    let mut init = first;
    for step in protocol::container_steps(plan) {
        let Some((message, fd)) = channel.recv_with_fd::<ToParent>()? else {
            return Err(LaunchError::ChildDied {
                waiting_for: step.name(),
                status: exit_status(children),
            });
        };
        protocol::check(step, &message).map_err(LaunchError::Protocol)?;
        match message {
            ToParent::NeedIdMaps => {
                let maps = plan.config.id_maps();
                idmap::write(first, maps, plan.config.setgroups_denied())?;
                let trees = idmapped::make(&plan.config, first)?;
                channel.send(&ToChild::IdMapsWritten {
                    idmapped: trees.iter().map(|(target, _)| *target).collect(),
                })?;
                for (_, tree) in &trees {
                    channel.send_fd(tree.as_fd())?;
                }
            }
            ToParent::InitPid(raw) => {
                init = Pid::from_raw(raw);
                // The intermediate's work is done; it exits on its own.
                if let Some((pid, _)) = children.procs.pop() {
                    let _ = waitpid(pid, None);
                }
                let pidfd =
                    pidfd_open(init).map_err(StepError::sys("opening a pidfd for the init"))?;
                children.procs.push((init, pidfd));
            }
            ToParent::RunRuntimeHooks => {
                let state = hooks.runtime_hooks(init)?;
                channel.send(&ToChild::RuntimeHooksDone { state })?;
            }
            ToParent::SeccompListener => {
                hooks.seccomp_listener(init, crate::message::listener_fd(fd)?)?;
            }
            ToParent::Ready => return Ok(init),
            ToParent::Failed(reason) => return Err(LaunchError::Child(reason)),
            ToParent::HookFailed(reason) => return Err(LaunchError::ContainerHook(reason)),
        }
    }
    unreachable!("the protocol ends with Ready")
}

/// How the last forked process ended, for the user ("exited with status 1").
fn exit_status(children: &Children) -> String {
    let Some((pid, _)) = children.procs.last() else {
        return "unknown".into();
    };
    describe_wait(waitpid(*pid, Some(WaitPidFlag::WNOHANG)))
}

/// A wait status in words.
pub(crate) fn describe_wait(status: nix::Result<WaitStatus>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
        Ok(WaitStatus::StillAlive) => "still running".into(),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("unknown ({e})"),
    }
}

/// Runs `child` in a forked process whose exit code is the closure's result. Used by the
/// exec path, which needs a plain fork before joining namespaces.
pub(crate) fn fork_stage(child: impl FnOnce() -> i32) -> Result<(Pid, OwnedFd), StepError> {
    match clone_process(0).map_err(StepError::sys("forking"))? {
        Forked::Child => exit_now(child()),
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}
