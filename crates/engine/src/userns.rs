//! The engine without root: every command runs in a user namespace (with a mount
//! namespace of its own) where the user's own id is root and its subordinate ids
//! (`/etc/subuid`, `/etc/subgid`, mapped by the setuid `newuidmap`/`newgidmap`) are the
//! rest, so layers keep their owners and overlayfs mounts as the kernel allows there.
//!
//! [`enter`] is called first thing by a front end, while the process has one thread. The
//! process starts itself again; the copy unshares and waits on a pipe while this one
//! writes its id maps, then carries on as the command; this one waits and passes on its
//! exit status.
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::EngineError;

/// Set in the copy, with the two pipe ends it uses.
const FDS_VAR: &str = "_BULWARK_USERNS_FDS";
/// Set for everything run inside (nested `bulwark` commands, `bulwark unshare`).
pub const INSIDE_VAR: &str = "BULWARK_USERNS";
/// Set for commands run by `bulwark unshare`, whose namespace outlives one command.
pub const UNSHARED_VAR: &str = "BULWARK_UNSHARED";

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// The host's root: nothing to do.
    Root,
    /// Inside the user's namespace (this process, or a parent, entered it).
    Inside,
    /// The copy inside finished with this exit status; the caller exits with it.
    Exited(i32),
}

fn fail(what: impl std::fmt::Display) -> EngineError {
    EngineError::Rootless(what.to_string())
}

/// Runs the rest of the command inside the user's namespace (see the module's note).
pub fn enter() -> Result<Entered, EngineError> {
    if let Ok(fds) = std::env::var(FDS_VAR) {
        // Single-threaded still (the caller's promise), so changing the environment is sound;
        // commands run inside must not see the descriptors.
        std::env::remove_var(FDS_VAR);
        become_inside(&fds)?;
        return Ok(Entered::Inside);
    }
    if std::env::var_os(INSIDE_VAR).is_some() && nix::unistd::geteuid().is_root() {
        return Ok(Entered::Inside);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(Entered::Root);
    }
    start_inside().map(Entered::Exited)
}

/// Joins the user and mount namespaces of the process `pid` (a container's monitor,
/// which holds the container's root filesystem mounted) instead of making new ones: a
/// command that enters the container (`exec`, `cp`) must be where its namespaces are
/// owned. The user owns that user namespace, so it may join it; inside, it is root and
/// may join the mount namespace. Called first thing, while the process has one thread.
pub fn join(pid: i32) -> Result<Entered, EngineError> {
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| fail(format!("the monitor's {ns} namespace (pid {pid}): {e}")))
    };
    let (user, mount) = (open("user")?, open("mnt")?);
    nix::sched::setns(&user, CloneFlags::CLONE_NEWUSER)
        .map_err(|e| fail(format!("joining the monitor's user namespace: {e}")))?;
    nix::sched::setns(&mount, CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail(format!("joining the monitor's mount namespace: {e}")))?;
    // Single-threaded still (the caller's promise), so changing the environment is sound.
    std::env::set_var(INSIDE_VAR, "1");
    Ok(Entered::Inside)
}

/// Whether the engine is running for a user without root.
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || std::env::var_os(INSIDE_VAR).is_some()
}

/// The parent's side: start the copy, map its ids, wait for it.
fn start_inside() -> Result<i32, EngineError> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let subuid = subordinate("/etc/subuid", &user, uid)?;
    let subgid = subordinate("/etc/subgid", &user, uid)?;
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    for fd in [&ready_w, &go_r] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| fail(format!("fcntl: {e}")))?;
    }
    let exe =
        std::fs::read_link("/proc/self/exe").map_err(|e| fail(format!("/proc/self/exe: {e}")))?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(
            FDS_VAR,
            format!("{},{}", ready_w.as_raw_fd(), go_r.as_raw_fd()),
        )
        .env(INSIDE_VAR, "1")
        .spawn()
        .map_err(|e| fail(format!("starting bulwark again in a user namespace: {e}")))?;
    drop((ready_w, go_r));
    let mut ready = std::fs::File::from(ready_r);
    let mut byte = [0u8; 1];
    if ready.read_exact(&mut byte).is_ok() {
        let pid = child.id().to_string();
        let mapped = map_ids("newuidmap", &pid, uid, subuid)
            .and_then(|()| map_ids("newgidmap", &pid, gid, subgid));
        let mut go = std::fs::File::from(go_w);
        match mapped {
            Ok(()) => {
                let _ = go.write_all(b"1");
            }
            Err(e) => {
                drop(go);
                let _ = child.wait();
                return Err(e);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for bulwark: {e}")))?;
    Ok(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    }))
}

/// The copy's side: unshare, say so, wait for the maps.
fn become_inside(fds: &str) -> Result<(), EngineError> {
    let (ready, go) = fds
        .split_once(',')
        .and_then(|(a, b)| Some((a.parse::<i32>().ok()?, b.parse::<i32>().ok()?)))
        .ok_or_else(|| fail(format!("{FDS_VAR}={fds:?} is not two descriptors")))?;
    let owned = |fd: i32| -> Result<OwnedFd, EngineError> {
        let owned = bulwark_sys::process::take_inherited_fd(fd)
            .map_err(|e| fail(format!("descriptor {fd}: {e}")))?;
        fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| fail(format!("descriptor {fd}: {e}")))?;
        Ok(owned)
    };
    let mut ready = std::fs::File::from(owned(ready)?);
    let mut go = std::fs::File::from(owned(go)?);
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|e| {
        fail(format!(
            "unshare(user and mount namespaces): {e} (are unprivileged user namespaces enabled?)"
        ))
    })?;
    ready
        .write_all(b"1")
        .map_err(|e| fail(format!("telling bulwark: {e}")))?;
    drop(ready);
    let mut byte = [0u8; 1];
    go.read_exact(&mut byte)
        .map_err(|_| fail("the id maps were not written (see the error above)"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| fail(format!("making / private in the new mount namespace: {e}")))?;
    Ok(())
}

/// A range of subordinate ids of `user` (by name or uid): (start, count).
fn subordinate(file: &str, user: &str, uid: u32) -> Result<(u32, u32), EngineError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().split(':');
            let (who, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            ((who == user || who == uid.to_string()) && !who.is_empty())
                .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
                .flatten()
        })
        .find(|(_, count): &(u32, u32)| *count > 0)
        .ok_or_else(|| {
            fail(format!(
                "{file} gives {user} (uid {uid}) no subordinate ids; add a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user})"
            ))
        })
}

/// `newuidmap PID 0 OWN 1 1 START COUNT`.
fn map_ids(
    helper: &str,
    pid: &str,
    own: u32,
    (start, count): (u32, u32),
) -> Result<(), EngineError> {
    let out = Command::new(helper)
        .args([
            pid,
            "0",
            &own.to_string(),
            "1",
            "1",
            &start.to_string(),
            &count.to_string(),
        ])
        .output()
        .map_err(|e| fail(format!("running {helper} (Debian's uidmap package): {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{helper} {pid} 0 {own} 1 1 {start} {count}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
