//! Idmapped mounts: binds with `idmap`/`ridmap` (or `uidMappings`/`gidMappings`) in
//! `mounts[]`, and the root filesystem when the `bulwark.rootfs.idmap` annotation is
//! "true". They let a container in a user namespace use root-owned host files as its own
//! without a chown.
//!
//! Only a process with CAP_SYS_ADMIN over a host filesystem (the host's root) may idmap
//! its mounts, and only while the mount is detached, so the parent makes each one with
//! `open_tree` + `mount_setattr(MOUNT_ATTR_IDMAP)` once the container's user namespace has
//! its mappings, and sends the fds to the child, which attaches them where the plain bind
//! would have gone. A mount with mappings of its own gets them from a short-lived user
//! namespace made just for it.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bulwark_spec::mount_options::{Bind, MountOptions};
use bulwark_spec::runtime::LinuxIdMapping;
use bulwark_sys::mount::{clone_tree, set_idmap};
use bulwark_sys::process::{clone_process, Forked};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::message::Channel;
use crate::plan::ContainerPlan;
use crate::{idmap, StepError};

/// Where an idmapped tree goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Root,
    /// `mounts[i]`.
    Mount(usize),
}

/// The idmapped trees the child received, taken as it attaches them.
#[derive(Debug, Default)]
pub struct Trees(Vec<(Target, OwnedFd)>);

impl Trees {
    /// Receives one fd per target, in order, after `IdMapsWritten`.
    pub fn receive(channel: &Channel, targets: &[Target]) -> Result<Trees, StepError> {
        targets
            .iter()
            .map(|t| Ok((*t, channel.recv_fd()?)))
            .collect::<Result<_, StepError>>()
            .map(Trees)
    }

    pub fn take(&mut self, target: Target) -> Option<OwnedFd> {
        let at = self.0.iter().position(|(t, _)| *t == target)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// One idmapped tree to make.
struct Request {
    target: Target,
    source: PathBuf,
    recursive_clone: bool,
    recursive_idmap: bool,
    uids: Option<Vec<LinuxIdMapping>>,
    gids: Option<Vec<LinuxIdMapping>>,
}

fn requests(plan: &ContainerPlan) -> Result<Vec<Request>, StepError> {
    let spec = &plan.bundle.spec;
    let mut out = Vec::new();
    if bulwark_spec::rootfs_idmapped(spec) {
        out.push(Request {
            target: Target::Root,
            source: plan.bundle.rootfs.clone(),
            recursive_clone: true,
            recursive_idmap: true,
            uids: None,
            gids: None,
        });
    }
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{index}].options");
        let options = MountOptions::parse(mount.options().as_deref().unwrap_or_default(), &field)
            .map_err(|e| StepError::msg(e.to_string()))?;
        let uids = mount.uid_mappings().clone().filter(|m| !m.is_empty());
        let gids = mount.gid_mappings().clone().filter(|m| !m.is_empty());
        let has_maps = mount.uid_mappings().is_some() || mount.gid_mappings().is_some();
        if options.idmap.is_none() && !has_maps {
            continue;
        }
        let source = mount.source().as_deref().unwrap_or(Path::new(""));
        out.push(Request {
            target: Target::Mount(index),
            source: if source.is_absolute() {
                source.to_path_buf()
            } else {
                plan.bundle.dir.join(source)
            },
            recursive_clone: options.bind == Some(Bind::Recursive),
            recursive_idmap: options.idmap == Some(Bind::Recursive),
            uids,
            gids,
        });
    }
    Ok(out)
}

/// Parent: makes every idmapped tree `plan` asks for, with the mappings of `child`'s
/// user namespace unless a mount has its own.
pub fn make(plan: &ContainerPlan, child: Pid) -> Result<Vec<(Target, OwnedFd)>, StepError> {
    let requests = requests(plan)?;
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    if requests.iter().any(|r| r.target == Target::Root) {
        closed_to_others(&plan.bundle.rootfs)?;
    }
    let own = open_userns(child)?;
    let linux = plan.bundle.spec.linux().as_ref();
    let container_uids = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let container_gids = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    requests
        .into_iter()
        .map(|r| {
            let what = match r.target {
                Target::Root => format!("root.path {}", r.source.display()),
                Target::Mount(i) => format!("mounts[{i}] (source {})", r.source.display()),
            };
            let tree = clone_tree(&r.source, r.recursive_clone)
                .map_err(StepError::sys(format!("cloning {what} for an idmapped mount")))?;
            let uids = r.uids.unwrap_or_else(|| container_uids.clone());
            let gids = r.gids.unwrap_or_else(|| container_gids.clone());
            let custom = if uids == container_uids && gids == container_gids {
                None
            } else {
                Some(userns_with(&uids, &gids)?)
            };
            let userns = custom.as_ref().unwrap_or(&own);
            set_idmap(tree.as_fd(), userns.as_fd(), r.recursive_idmap).map_err(|e| {
                StepError::msg(format!(
                    "idmapping {what}: {e} (idmapped mounts need Linux 5.12 or later and a filesystem that supports them)"
                ))
            })?;
            Ok((r.target, tree))
        })
        .collect()
}

/// With an idmapped rootfs, what the container's root writes is the host root's on disk
/// (setuid files included), so no other host user may reach the rootfs: some directory
/// above it (the container cannot change those) must be root's and closed to others.
fn closed_to_others(rootfs: &Path) -> Result<(), StepError> {
    let closed = rootfs.ancestors().skip(1).any(|dir| {
        std::fs::metadata(dir).is_ok_and(|m| {
            let group_closed = m.mode() & 0o010 == 0 || m.gid() == 0;
            m.uid() == 0 && m.mode() & 0o001 == 0 && group_closed
        })
    });
    if closed {
        return Ok(());
    }
    Err(StepError::msg(format!(
        "annotations[\"{}\"] \"true\": root.path {} can be reached by other host users \
         (expected a directory above it owned by root and closed to others, such as the \
         bundle directory with mode 0700): with an idmapped rootfs, files the container's \
         root writes belong to the host's root",
        bulwark_spec::ROOTFS_IDMAP,
        rootfs.display()
    )))
}

fn open_userns(pid: Pid) -> Result<OwnedFd, StepError> {
    let path = format!("/proc/{pid}/ns/user");
    nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(StepError::sys(format!("opening {path}")))
}

/// A user namespace with these mappings, held by a process that lives only until its
/// namespace is open.
fn userns_with(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd, StepError> {
    let parent = nix::unistd::getpid();
    let forked = clone_process(libc::CLONE_NEWUSER as u64).map_err(StepError::sys(
        "creating a user namespace for an idmapped mount",
    ))?;
    let pid = match forked {
        Forked::Child => {
            // Killed by the parent once it holds the namespace, or with it; if the parent
            // died before the death signal was set, leave at once. It holds none of the
            // runtime's fds (the container's lock among them) while it waits.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            if nix::unistd::getppid() != parent
                || bulwark_sys::process::close_fds_except(&[]).is_err()
            {
                bulwark_sys::process::exit_now(1);
            }
            loop {
                nix::unistd::pause();
            }
        }
        Forked::Parent { pid, .. } => pid,
    };
    let result = idmap::write(pid, uids, gids).and_then(|()| open_userns(pid));
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    result
}
