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
use std::path::Path;

use bulwark_spec::ids::{IdMapping, IdMaps};
use bulwark_spec::mounts::MountKind;
use bulwark_spec::Config;
use bulwark_sys::mount::{clone_tree, set_idmap};
use bulwark_sys::process::{clone_process, Forked};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::message::{Channel, ToChild, ToParent};
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

/// The id-map handshake, the same for whichever stage made the user namespace: ask the
/// parent for the maps, take the idmapped trees it made, then become the namespace's root.
pub fn await_id_maps(channel: &Channel) -> Result<Trees, StepError> {
    channel.send(&ToParent::NeedIdMaps)?;
    match channel.expect::<ToChild>("waiting for the id maps")? {
        ToChild::IdMapsWritten { idmapped } => {
            let trees = Trees::receive(channel, &idmapped)?;
            idmap::become_namespace_root();
            Ok(trees)
        }
        other => Err(StepError::msg(format!(
            "the parent sent {other:?} where the protocol expects IdMapsWritten"
        ))),
    }
}

/// One idmapped tree to make.
struct Request<'a> {
    target: Target,
    source: &'a Path,
    recursive_clone: bool,
    recursive_idmap: bool,
    maps: Option<IdMaps>,
}

fn requests(config: &Config) -> Vec<Request<'_>> {
    let mut out = Vec::new();
    if config.root().idmapped {
        out.push(Request {
            target: Target::Root,
            source: config.rootfs(),
            recursive_clone: true,
            recursive_idmap: true,
            maps: None,
        });
    }
    for mount in config.mounts() {
        let (Some(idmap), MountKind::Bind { source, recursive }) = (&mount.idmap, &mount.kind)
        else {
            continue;
        };
        let own = |own: &Option<Vec<IdMapping>>, container: &[IdMapping]| {
            own.clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| container.to_vec())
        };
        let container = config.id_maps();
        let maps = IdMaps {
            uids: own(&idmap.uids, &container.uids),
            gids: own(&idmap.gids, &container.gids),
        };
        out.push(Request {
            target: Target::Mount(mount.index),
            source,
            recursive_clone: *recursive,
            recursive_idmap: idmap.recursive,
            maps: (maps != *container).then_some(maps),
        });
    }
    out
}

/// Parent: makes every idmapped tree `config` asks for, with the mappings of `child`'s
/// user namespace unless a mount has its own.
pub fn make(config: &Config, child: Pid) -> Result<Vec<(Target, OwnedFd)>, StepError> {
    let requests = requests(config);
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    if requests.iter().any(|r| r.target == Target::Root) {
        check_closed(config.rootfs())?;
    }
    let own = open_userns(child)?;
    requests
        .into_iter()
        .map(|r| {
            let what = match r.target {
                Target::Root => format!("root.path {}", r.source.display()),
                Target::Mount(i) => format!("mounts[{i}] (source {})", r.source.display()),
            };
            let tree = clone_tree(r.source, r.recursive_clone)
                .map_err(StepError::sys(format!("cloning {what} for an idmapped mount")))?;
            let custom = r.maps.as_ref().map(userns_with).transpose()?;
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

/// Whether some directory above `path` is the host root's and closed to other users, so
/// that none of them can reach what is below it.
pub fn closed_to_others(path: &Path) -> bool {
    path.ancestors().skip(1).any(|dir| {
        std::fs::metadata(dir).is_ok_and(|m| {
            let group_closed = m.mode() & 0o010 == 0 || m.gid() == 0;
            m.uid() == 0 && m.mode() & 0o001 == 0 && group_closed
        })
    })
}

/// Whether `path`'s filesystem can be idmapped here: a detached clone of it is idmapped
/// through a short-lived user namespace and dropped. Needs the host's root.
pub fn idmap_supported(path: &Path) -> Result<(), StepError> {
    let maps = IdMaps {
        uids: vec![IdMapping {
            container_id: 0,
            host_id: 65534,
            size: 1,
        }],
        gids: vec![IdMapping {
            container_id: 0,
            host_id: 65534,
            size: 1,
        }],
    };
    let userns = userns_with(&maps)?;
    let tree =
        clone_tree(path, false).map_err(StepError::sys(format!("cloning {}", path.display())))?;
    set_idmap(tree.as_fd(), userns.as_fd(), false)
        .map_err(StepError::sys(format!("idmapping {}", path.display())))
}

/// With an idmapped rootfs, what the container's root writes is the host root's on disk
/// (setuid files included), so no other host user may reach the rootfs.
fn check_closed(rootfs: &Path) -> Result<(), StepError> {
    if closed_to_others(rootfs) {
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
fn userns_with(maps: &IdMaps) -> Result<OwnedFd, StepError> {
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
    let result = idmap::write(pid, maps, false).and_then(|()| open_userns(pid));
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    result
}
