//! `linux.seccomp` for the lifecycle: compiled once per create or exec, before anything
//! is made, and the notification fd handed to the agent at `listenerPath` with the
//! container process state, as the runtime spec describes.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use bulwark_seccomp::{Filter, Listener};
use serde::Serialize;

use crate::seccomp_cache::Slot;
use crate::{OciState, RuntimeError, StateRoot};

/// The profile compiled (or taken from the cache of compiled profiles under the state
/// root), plus lines for `--debug`: unknown syscall names, and where the program came from.
pub fn compile(
    root: &StateRoot,
    spec: &bulwark_spec::runtime::Spec,
) -> Result<(Option<Filter>, Vec<String>), RuntimeError> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok((None, Vec::new()));
    };
    let serialized = serde_json::to_string(profile).expect("a parsed profile always serializes");
    let slot = Slot::new(root, serialized);
    let (filter, origin) = match slot.load() {
        Some(filter) => (
            filter,
            format!("loaded from the cache {}", slot.path().display()),
        ),
        None => {
            let filter = bulwark_seccomp::compile(profile)?;
            let origin = match slot.store(root, &filter) {
                Ok(()) => format!("compiled and cached in {}", slot.path().display()),
                Err(e) => format!("compiled; not cached ({}: {e})", slot.path().display()),
            };
            (filter, origin)
        }
    };
    let notes = filter
        .unknown_names
        .iter()
        .map(|name| {
            format!("linux.seccomp: syscall {name:?} is unknown to libseccomp here; left out of the filter (newer syscalls get ENOSYS)")
        })
        .chain(std::iter::once(format!(
            "linux.seccomp: {} instructions, {origin}",
            filter.program.len()
        )))
        .collect();
    Ok((Some(filter), notes))
}

/// What the agent receives with the fd (the spec's "container process state").
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a> {
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    metadata: &'a str,
    state: &'a OciState,
}

/// Connects to the agent and sends it the state, with the listener fd attached.
pub fn send_to_agent(
    listener: &Listener,
    state: &OciState,
    pid: i32,
    fd: OwnedFd,
) -> Result<(), String> {
    let stream = UnixStream::connect(&listener.path)
        .map_err(|e| format!("connecting to {}: {e}", listener.path.display()))?;
    let message = ProcessState {
        oci_version: &state.oci_version,
        fds: ["seccompFd"],
        pid,
        metadata: &listener.metadata,
        state,
    };
    let payload = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
    bulwark_sys::socket::send_fd(stream.as_fd(), fd.as_fd(), &payload).map_err(|e| {
        format!(
            "sending the listener fd to {}: {e}",
            listener.path.display()
        )
    })
}
