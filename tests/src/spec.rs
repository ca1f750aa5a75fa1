//! Bundles from `bulwark-runtime spec` (its policy profiles), and whether this machine can
//! make the idmapped mounts the hardened profile uses.
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::{json, Value};

use crate::{Bundle, Runtime};

/// A bundle whose config is what `spec` writes (with `--profile profile` if given), with
/// no terminal and `args` as the program. A runtime run by a user without root gets a
/// bundle of the user's, and writes its rootless config.
pub fn spec_bundle(rt: &Runtime, profile: Option<&str>, args: &[&str]) -> Bundle {
    let mut bundle = Bundle::new();
    std::fs::remove_file(bundle.config_path()).unwrap();
    if let Some((uid, gid)) = rt.user() {
        bundle.give_to(uid, gid);
    }
    let dir = bundle.path().to_str().unwrap().to_string();
    let mut spec = vec!["spec", "--bundle", &dir];
    spec.extend(profile.iter().flat_map(|p| ["--profile", p]));
    rt.cmd(spec).assert_success();
    let written: Value =
        serde_json::from_slice(&std::fs::read(bundle.config_path()).unwrap()).unwrap();
    bundle.edit(|config| {
        *config = written;
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
    });
    bundle
}

/// Why idmapped mounts of `path` cannot be made on this machine, if they cannot (the v2
/// guest's Debian 6.1 kernel, for one, cannot idmap tmpfs). Probed directly with the
/// kernel, not through the runtime under test.
pub fn idmap_unsupported(path: &Path) -> Option<String> {
    let mut holder = std::process::Command::new("unshare")
        .args(["--user", "sleep", "60"])
        .spawn()
        .expect("running unshare (util-linux)");
    let pid = holder.id();
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    crate::wait_until("unshare to make its user namespace", || {
        std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|ns| ns != ours)
    });
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), "0 100000 1\n").unwrap();
    }
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let tree = bulwark_sys::mount::clone_tree(path, false).unwrap();
    let result = bulwark_sys::mount::set_idmap(tree.as_fd(), userns.as_fd(), false);
    let _ = holder.kill();
    let _ = holder.wait();
    match result {
        Ok(()) => None,
        Err(e @ (bulwark_sys::Errno::EINVAL | bulwark_sys::Errno::EOPNOTSUPP)) => {
            let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            Some(format!(
                "idmapped mounts of {} are not available with kernel {}: {e}",
                path.display(),
                kernel.trim()
            ))
        }
        Err(e) => panic!("probing idmapped mounts of {}: {e}", path.display()),
    }
}

/// Returns from the test with a message when `path` cannot be idmapped here.
#[macro_export]
macro_rules! require_idmap {
    ($name:expr, $path:expr) => {
        if let Some(why) = $crate::idmap_unsupported($path) {
            eprintln!("skipped {}: {why}", $name);
            return;
        }
    };
}
