//! The runtime's own safety, tested by trying the attack: overwriting the runtime binary
//! (CVE-2019-5736), leaked fds and a cwd outside the root (CVE-2024-21626), symlinks that
//! lead mounts out of the rootfs, and planted /dev/null and /proc (CVE-2025-31133 family).
use std::os::unix::fs::symlink;
use std::path::Path;

use bulwark_tests::{mounts_under, Bundle, Runtime, Spawned, TempDir, CHECKER};
use serde_json::json;

#[test]
fn the_runtime_binary_cannot_be_overwritten_from_inside() {
    // CVE-2019-5736: a process in the container grabs the runtime's exe through
    // /proc/1/exe while pid 1 is still the runtime (here: a startContainer hook), keeps
    // the fd, and reopens it for writing once no runtime is running any more. The
    // binary sits on a read-only mount, so the reopen must fail with EROFS (ETXTBSY only
    // means another runtime happens to be running it; the probe then retries).
    // The hook's shell grabs /proc/1/exe before it returns, while pid 1 is surely still
    // the runtime (a background grab could come after pid 1 exec'd the container's
    // program, as happened in the slow v2 guest). The verdict is renamed into place, so
    // the test never reads a file the shell has created but not yet written.
    // A private copy of the runtime: other tests running the shared binary would keep it
    // busy (ETXTBSY) for the whole probe.
    let private = TempDir::new();
    let binary = private.path().join("bulwark-runtime");
    std::fs::copy(bulwark_tests::runtime_binary(), &binary).unwrap();
    let rt = Runtime::with_binary(&binary);
    let out_dir = TempDir::new();
    let probe = format!(
        "exec 3</proc/1/exe; (i=0; while [ $i -lt 100 ]; do r=$({CHECKER} open /proc/self/fd/3 w); \
         [ \"$r\" != ETXTBSY ] && break; sleep 0.1; i=$((i+1)); done; echo \"$r\" > /out/verdict; mv /out/verdict /out/result) >/dev/null 2>&1 &"
    );
    let bundle = Bundle::with(|c| {
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/out", "type": "bind", "source": out_dir.path(), "options": ["bind", "rw"]}));
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", probe]}]});
    });
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id])
        .assert_success();
    rt.cmd(["start", &id]).assert_success();
    let result = out_dir.path().join("result");
    bulwark_tests::wait_until("the probe's verdict", || result.exists());
    let verdict = std::fs::read_to_string(&result).unwrap();
    assert_eq!(
        verdict.trim(),
        "EROFS",
        "reopening the runtime binary for writing gave {verdict:?}"
    );
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.cmd(["--version"]).assert_success();
}

#[test]
fn launching_commands_run_from_a_read_only_mount() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["process"]["args"] = json!([CHECKER, "sleep", "600"]));
    let id = rt.unique_id();
    let child =
        Spawned::new(&mut rt.command(["run", "--bundle", bundle.path().to_str().unwrap(), &id]))
            .unwrap();
    bulwark_tests::wait_until("the container to run", || {
        rt.cmd(["state", &id]).stdout.contains("\"running\"")
    });
    let exe = std::fs::File::open(format!("/proc/{}/exe", child.id())).unwrap();
    let flags = nix::sys::statvfs::fstatvfs(&exe).unwrap().flags();
    assert!(
        flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "the foreground runtime runs from a writable mount"
    );
    rt.cmd(["kill", &id, "KILL"]).assert_success();
    child.finish(bulwark_tests::default_timeout());
    rt.assert_clean(&bundle);
}

#[test]
fn no_runtime_fd_reaches_the_container() {
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let report = rt.report(&bundle);
    let fds: Vec<&String> = report["fds"].as_object().unwrap().keys().collect();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2"].contains(&fd.as_str())),
        "leaked: {}",
        report["fds"]
    );
}

#[test]
fn a_cwd_through_a_leaked_fd_is_refused() {
    let rt = Runtime::new();
    for fd in 3..8 {
        let bundle = Bundle::with(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
        let out = rt.run(&bundle, &rt.unique_id());
        out.assert_failure();
        assert!(out.stderr.contains("process.cwd"), "{out}");
        rt.assert_clean(&bundle);
    }
}

#[test]
fn mount_destinations_cannot_escape_through_symlinks() {
    let rt = Runtime::new();
    let host = TempDir::new();
    let bundle = Bundle::with(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"}));
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/up/file", "type": "bind", "source": "/etc/hostname", "options": ["bind", "ro"]}));
    });
    // An absolute symlink and a ../ chain, both naming the host directory. Inside the
    // root they resolve to the same path under the rootfs, which exists there.
    symlink(host.path(), bundle.rootfs().join("escape")).unwrap();
    symlink(
        format!("../../../../../../../..{}", host.path().display()),
        bundle.rootfs().join("up"),
    )
    .unwrap();
    let inside = bundle.rootfs().join(host.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    let report = rt.report(&bundle);
    assert!(
        std::fs::read_dir(host.path()).unwrap().next().is_none(),
        "something was created in the host directory"
    );
    assert!(
        mounts_under(host.path()).is_empty(),
        "a mount landed on the host"
    );
    let mounts = report["mounts"].as_array().unwrap();
    let target = host.path().join("sub");
    assert!(
        mounts
            .iter()
            .any(|m| m["mount_point"].as_str() == target.to_str()),
        "tmpfs not mounted inside: {mounts:?}"
    );
    assert!(inside.join("sub").is_dir() && inside.join("file").is_file());
}

#[test]
fn dangling_symlinks_to_the_host_are_refused() {
    let rt = Runtime::new();
    let host = TempDir::new();
    let bundle = Bundle::with(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    symlink(host.path(), bundle.rootfs().join("escape")).unwrap();
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_failure();
    assert!(out.stderr.contains("/escape/sub"), "{out}");
    assert!(
        std::fs::read_dir(host.path()).unwrap().next().is_none(),
        "something was created in the host directory"
    );
    rt.assert_clean(&bundle);
}

#[test]
fn a_planted_dev_null_cannot_redirect_masking() {
    // Without a /dev tmpfs the image's own /dev is used; its /dev/null is a symlink to a
    // file the attacker wants bind-mounted over a masked path (CVE-2025-31133 style).
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        c["process"]["args"] = json!([CHECKER, "cat", "/proc/keys"]);
    });
    std::fs::create_dir_all(bundle.rootfs().join("dev")).unwrap();
    let _ = std::fs::remove_file(bundle.rootfs().join("dev/null"));
    symlink("/etc/passwd", bundle.rootfs().join("dev/null")).unwrap();
    let out = rt.run(&bundle, &rt.unique_id());
    assert!(
        !out.stdout.contains("root:"),
        "the planted target was mounted over /proc/keys: {out}"
    );
    // Masked means the null device: it reads empty, or, when the rootfs lives on a nodev
    // filesystem (the v2 test guest's /tmp), cannot be opened at all.
    let masked = (out.success() && out.stdout.trim().is_empty()) || out.stderr.trim() == "EACCES";
    assert!(
        masked,
        "masked /proc/keys must read as the null device: {out}"
    );
    let passwd = std::fs::read_to_string(bundle.rootfs().join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("root:"),
        "the image's /etc/passwd was changed"
    );
}

#[test]
fn proc_must_be_mounted_on_a_real_directory() {
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let proc_dir = bundle.rootfs().join("proc");
    std::fs::remove_dir_all(&proc_dir).unwrap();
    symlink("/etc/hostname", &proc_dir).unwrap();
    std::fs::write(bundle.rootfs().join("etc/hostname"), "image\n").unwrap();
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_failure();
    assert!(
        out.stderr.contains("mounts[0]") && out.stderr.to_lowercase().contains("not a directory"),
        "{out}"
    );
    rt.assert_clean(&bundle);
}

#[test]
fn sysctls_cannot_reach_host_wide_files() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| c["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/evil"}));
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_failure();
    assert!(out.stderr.contains("kernel.core_pattern"), "{out}");
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(!pattern.contains("evil"));
    assert!(Path::new("/proc/sys/kernel/core_pattern").exists());
}

#[test]
fn absent_capabilities_mean_none() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
    });
    let report = rt.report(&bundle);
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        assert_eq!(
            report["capabilities"][set]["value"], 0,
            "{set}: {}",
            report["capabilities"][set]
        );
    }
}

#[test]
fn a_container_cannot_type_into_the_terminal_it_was_started_from() {
    // TIOCSTI (CVE-2017-5226 and kin): a container whose stdin is the terminal of the
    // shell that started it pushes input into it, and the shell runs it after the container
    // exits. The runtime runs here as a session leader with a pty as its controlling
    // terminal and as the container's stdin (no `process.terminal`); the container process
    // must be in a session of its own, where the kernel refuses TIOCSTI.
    let rt = Runtime::new();
    let pty = nix::pty::openpty(None, None).unwrap();
    for program in [
        vec![CHECKER, "tiocsti"],
        vec!["/bin/sh", "-c", "exec bulwark-check tiocsti"],
    ] {
        let bundle = Bundle::with(|c| c["process"]["args"] = json!(program));
        let id = rt.unique_id();
        let slave = std::fs::File::from(pty.slave.try_clone().unwrap());
        let mut command = std::process::Command::new("setsid");
        command
            .args(["--ctty", "--wait"])
            .arg(rt.binary())
            .arg("--root")
            .arg(rt.root())
            .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
            .stdin(slave);
        let out = Spawned::new(&mut command)
            .unwrap()
            .finish(bulwark_tests::default_timeout());
        out.assert_success();
        assert_eq!(out.stdout.trim(), "EPERM", "{program:?}: {out}");
        rt.assert_clean(&bundle);
    }
}

#[test]
fn landlock_keeps_a_leaked_host_directory_fd_from_reaching_host_files() {
    // The CVE-2024-21626 class: a host directory fd reaches the container (here passed on
    // purpose with --preserve-fds). Namespaces do not stop opening files through it, and
    // the container's root is the host's root here; Landlock does. With the annotation
    // "bulwark.landlock" set to "false" the same read succeeds, so the test sees the attack
    // work without Landlock.
    let rt = Runtime::new();
    let host_dir = TempDir::new();
    std::fs::write(host_dir.path().join("secret"), "host secret\n").unwrap();
    for (landlock, expected) in [("true", "EACCES"), ("false", "host secret")] {
        let bundle = Bundle::with(|c| {
            c["process"]["args"] = json!([CHECKER, "cat", "/proc/self/fd/3/secret"]);
            c["annotations"] = json!({"bulwark.landlock": landlock});
        });
        let id = rt.unique_id();
        let script = format!(
            "exec 3<'{}' && exec \"$0\" --root \"$1\" run --preserve-fds 1 --bundle \"$2\" \"$3\"",
            host_dir.path().display()
        );
        let mut command = std::process::Command::new("sh");
        command
            .args(["-c", &script])
            .arg(rt.binary())
            .arg(rt.root())
            .arg(bundle.path())
            .arg(&id);
        let out = Spawned::new(&mut command)
            .unwrap()
            .finish(bulwark_tests::default_timeout());
        let seen = format!("{}{}", out.stdout.trim(), out.stderr.trim());
        assert!(
            seen.contains(expected),
            "landlock {landlock}: expected {expected:?}: {out}"
        );
        rt.assert_clean(&bundle);
    }
}
