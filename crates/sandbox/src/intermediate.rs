//! The intermediate stage: joins namespaces by path, creates the new ones, writes time
//! offsets, then forks the init so it starts inside the new pid and time namespaces.
use std::os::fd::OwnedFd;

use bulwark_spec::namespaces::clone_flag;
use bulwark_sys::process::{clone_process, exit_now, Forked};
use nix::sched::CloneFlags;

use crate::idmapped::{self, Trees};
use crate::message::{Channel, ToParent};
use crate::plan::ContainerPlan;
use crate::{init, pivot, StepError};

/// Runs the stage; returns the exit code of the intermediate process.
pub fn run(plan: &ContainerPlan, channel: &Channel) -> i32 {
    match steps(plan, channel) {
        Ok(()) => 0,
        Err(e) => {
            let _ = channel.send(&ToParent::Failed(e.to_string()));
            1
        }
    }
}

fn steps(plan: &ContainerPlan, channel: &Channel) -> Result<(), StepError> {
    init::join_cgroups(plan)?;
    join_namespaces(plan)?;
    let flags = plan.config.namespaces().new_flags();
    nix::sched::unshare(CloneFlags::from_bits_retain(flags as i32)).map_err(StepError::sys(
        "creating the namespaces in linux.namespaces",
    ))?;
    let rootfs = pivot::open_rootfs(plan.config.rootfs())?;
    let trees = match plan.creates_user_namespace() {
        true => idmapped::await_id_maps(channel)?,
        false => Trees::default(),
    };
    write_time_offsets(plan)?;
    // The init shares our channel to the parent, which must hear InitPid (from us) before
    // anything from the init: the init waits on this gate until we have sent it.
    let (gate_r, gate_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(StepError::sys("a pipe to order the init after InitPid"))?;
    match clone_process(0).map_err(StepError::sys("forking the container init"))? {
        Forked::Child => {
            drop(gate_w);
            let mut byte = [0u8; 1];
            // EOF (the intermediate died) also opens the gate; the parent then reports
            // the broken protocol.
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&gate_r, &mut byte) {}
            drop(gate_r);
            exit_now(init::run(
                plan,
                channel,
                Some(init::Handoff { rootfs, trees }),
            ))
        }
        Forked::Parent { pid, .. } => {
            drop(gate_r);
            let sent = channel.send(&ToParent::InitPid(pid.as_raw()));
            let _ = nix::unistd::write(&gate_w, &[1]);
            sent
        }
    }
}

/// Joins each `linux.namespaces[].path`, the user namespace first. All files are opened
/// before any is joined, since joining the mount namespace changes what paths mean.
fn join_namespaces(plan: &ContainerPlan) -> Result<(), StepError> {
    let mut opened: Vec<(u64, OwnedFd, &std::path::Path)> = Vec::new();
    for (kind, path) in &plan.config.namespaces().join {
        let fd = nix::fcntl::open(
            path.as_path(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(StepError::sys(format!(
            "opening namespace path {}",
            path.display()
        )))?;
        opened.push((clone_flag(*kind), fd, path));
    }
    for (flag, fd, path) in opened {
        nix::sched::setns(&fd, CloneFlags::from_bits_retain(flag as i32)).map_err(
            StepError::sys(format!("joining namespace {}", path.display())),
        )?;
    }
    Ok(())
}

/// `linux.timeOffsets`, checked by planning, into the new time namespace.
fn write_time_offsets(plan: &ContainerPlan) -> Result<(), StepError> {
    let offsets = plan.config.time_offsets();
    if offsets.is_empty() {
        return Ok(());
    }
    let text: String = offsets
        .iter()
        .map(|o| format!("{} {} {}\n", o.clock, o.secs, o.nanos))
        .collect();
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| StepError::msg(format!("writing linux.timeOffsets: {e}")))
}
