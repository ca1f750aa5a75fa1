//! Support library for bulwark's integration tests (`tests/tests/*.rs`).
//!
//! - [`Fixture`]: a busybox rootfs with the static `bulwark-check` in it, built once.
//! - [`Bundle`]: a fresh bundle per test, from runc's default spec, to edit and save.
//! - [`Runtime`]: the runtime under test with a private `--root`; cleans up on drop.
//! - [`assert_clean`]: nothing left behind (state entries, mounts, processes).
//! - [`spec_bundle`]: a bundle from `bulwark-runtime spec`; [`require_idmap!`] skips a
//!   test where idmapped mounts cannot be made.
//!
//! - [`rootless`]: a real user without root and cgroups delegated to it.
//! - [`engines`]: Docker, Podman and containerd driving runc and bulwark-runtime.
//! - [`Bulwark`]: the engine's command line with a store of its own; [`images`] builds
//!   test images (malicious ones too) and [`registry`] serves them from Debian's
//!   docker-registry on 127.0.0.1, plain, behind basic auth and behind bearer tokens.
//!
//! Containers need root; tests using these helpers run as root on the host kernel.
#![forbid(unsafe_code)]

mod bundle;
mod clean;
mod engine_cli;
pub mod engines;
mod fixture;
pub mod images;
mod paths;
mod process;
pub mod registry;
pub mod rootless;
mod runtime;
mod spec;

pub use bundle::{add_user_namespace, default_config, Bundle};
pub use clean::{assert_clean, catches_signal, mounts_under, processes_mentioning, wait_until};
pub use engine_cli::{
    default_bridge, engine_binary, firewall_table, monitor_binary, resolver_binary, Bulwark,
};
pub use fixture::{runtime_binary, Fixture, CHECKER};
pub use paths::{target_dir, workspace_root, TempDir};
pub use process::{default_timeout, field, run_captured, Output, Spawned};
pub use runtime::Runtime;
pub use spec::{idmap_unsupported, spec_bundle};

/// CI runs with `BULWARK_TESTS_STRICT=1`: a test that cannot check what it claims because
/// a tool, a package or a host capability it needs is missing fails instead of skipping.
pub fn strict() -> bool {
    std::env::var("BULWARK_TESTS_STRICT").is_ok_and(|v| v == "1")
}

/// Returns from the test saying why it cannot check anything here; under
/// [`strict`] (CI) it fails instead.
#[macro_export]
macro_rules! skip_or_fail {
    ($($why:tt)*) => {{
        let why = format!($($why)*);
        if $crate::strict() {
            panic!("this test cannot check what it claims here: {why} (BULWARK_TESTS_STRICT=1 makes that a failure)");
        }
        eprintln!("skipped: {why}");
        return;
    }};
}
