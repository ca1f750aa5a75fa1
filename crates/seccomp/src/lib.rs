//! `linux.seccomp` -> a BPF program the container process installs with one system call.
//!
//! The pipeline: [`compile`] checks every field (naming it on error), lets libseccomp
//! resolve syscall names, architectures and argument comparisons, exports the program,
//! and puts a short [`stub`] in front so syscalls newer than the profile get `ENOSYS`
//! instead of the default action (so libc falls back, as runc does). This runs in the
//! runtime, before any process is forked; the container only installs the result
//! (`bulwark_sys::seccomp::install`), as late as its setup allows.
#![forbid(unsafe_code)]

mod compile;
mod error;
mod export;
mod stub;

pub use compile::{compile, Filter, Listener};

/// The version of libseccomp in use, such as "2.5.4" (empty if it cannot tell).
pub fn library_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default()
}
pub use error::SeccompError;
