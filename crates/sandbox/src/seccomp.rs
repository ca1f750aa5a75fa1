//! When the container's seccomp filter goes on, and handing its notification fd over.
//!
//! The filter is installed as late as the process allows, so that the runtime's own
//! setup is not subject to it:
//! - right before `execve` when `noNewPrivileges` is set (no privilege needed);
//! - otherwise after the user switch, right before the capability sets are narrowed
//!   (loading needs CAP_SYS_ADMIN then): only capset, prctl and execve come after it;
//! - at the end of setup, before `create` returns, when a rule notifies an agent: the
//!   listener fd must reach the agent while the runtime that connects to it still runs.
use std::os::fd::AsFd;

use bulwark_seccomp::Filter;
use bulwark_spec::ProcessConfig;

use crate::message::{Channel, ToParent};
use crate::StepError;

/// The point in setup where a filter is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    Ready,
    CapabilityDrop,
    Exec,
}

pub fn when(filter: &Filter, process: &ProcessConfig) -> Before {
    if filter.listener.is_some() {
        Before::Ready
    } else if process.no_new_privileges() {
        Before::Exec
    } else {
        Before::CapabilityDrop
    }
}

/// Installs `filter` if `now` is its point; a listener fd goes to the parent.
pub fn install_at(
    now: Before,
    filter: Option<&Filter>,
    process: &ProcessConfig,
    channel: Option<&Channel>,
) -> Result<(), StepError> {
    let Some(filter) = filter.filter(|f| when(f, process) == now) else {
        return Ok(());
    };
    let listener = bulwark_sys::seccomp::install(&filter.program, filter.flags).map_err(
        StepError::sys("installing the seccomp filter (linux.seccomp)"),
    )?;
    if let Some(fd) = listener {
        let channel = channel.ok_or_else(|| {
            StepError::msg("a seccomp listener fd was made with nobody to hand it to")
        })?;
        channel.send_with_fd(&ToParent::SeccompListener, fd.as_fd())?;
    }
    Ok(())
}
