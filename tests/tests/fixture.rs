//! The fixture itself: the busybox rootfs is laid out as promised and the static
//! checker works inside it (chroot only, no runtime involved).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use bulwark_tests::{
    catches_signal, default_config, default_timeout, run_captured, wait_until, Bundle, Fixture,
    Output, Spawned, CHECKER,
};
use serde_json::{json, Value};

fn chroot(args: &[&str]) -> Output {
    chroot_with(&[], args)
}

/// `chroot [options] <fixture rootfs> args...`
fn chroot_with(options: &[&str], args: &[&str]) -> Output {
    let mut command = Command::new("chroot");
    command
        .args(options)
        .arg(Fixture::get().rootfs())
        .args(args)
        .stdin(Stdio::null());
    run_captured(&mut command, default_timeout())
}

fn checker(args: &[&str]) -> Output {
    let mut full = vec![CHECKER];
    full.extend_from_slice(args);
    chroot(&full)
}

#[test]
fn static_checker_reports_inside_the_busybox_rootfs() {
    let rootfs = Fixture::get().rootfs();
    assert!(
        !rootfs.join("lib").exists() && !rootfs.join("lib64").exists(),
        "the rootfs must have no libc"
    );
    let output = checker(&["report"]);
    output.assert_success();
    let report: Value =
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {output}"));
    assert_eq!(report["uid"], 0);
    assert_eq!(report["euid"], 0);
    assert_eq!(report["cwd"], "/");
    // No /proc in a bare chroot: such items are errors, not a crash.
    assert!(
        report["mounts"]
            .as_str()
            .is_some_and(|s| s.starts_with("error: ")),
        "{}",
        report["mounts"]
    );
}

#[test]
fn checker_reports_the_ids_it_runs_with() {
    let output = chroot_with(
        &["--userspec=1000:1000", "--groups=2000"],
        &[CHECKER, "report"],
    );
    output.assert_success();
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(
        (&report["uid"], &report["gid"], &report["suid"]),
        (&json!(1000), &json!(1000), &json!(1000))
    );
    assert_eq!(report["groups"], json!([2000]));
}

#[test]
fn rootfs_layout() {
    let rootfs = Fixture::get().rootfs();
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    let mode = |path: &str| {
        std::fs::symlink_metadata(rootfs.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/not-exec"), 0o644);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("root"), 0o700);
    assert_eq!(mode("usr/bin/bulwark-check"), 0o755);
    let home = std::fs::metadata(rootfs.join("home/bulwark")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    for dir in ["proc", "sys", "dev", "etc"] {
        assert!(rootfs.join(dir).is_dir(), "{dir}");
    }
    let passwd = checker(&["cat", "/etc/passwd"]);
    assert!(passwd
        .assert_success()
        .stdout
        .contains("bulwark:x:1000:1000:"));
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("extra:x:2000:bulwark\n") && group.contains("nobody:x:65534:"));
    chroot(&["/bin/sh", "-c", "echo hi"]).assert_success();
}

#[test]
fn checker_probes() {
    checker(&["exit", "7"]).assert_code(7);
    assert_eq!(checker(&["open", "/nope", "r"]).stdout, "ENOENT\n");
    assert_eq!(checker(&["open", "/bin/not-exec", "r"]).stdout, "ok\n");
    assert_eq!(checker(&["open", "/tmp", "w"]).stdout, "EISDIR\n");
    let not_exec: Value =
        serde_json::from_str(&checker(&["stat", "/bin/not-exec"]).stdout).unwrap();
    assert_eq!(
        (&not_exec["type"], &not_exec["mode"]),
        (&json!("file"), &json!(0o644))
    );
    let sh: Value = serde_json::from_str(&checker(&["stat", "/bin/sh"]).stdout).unwrap();
    assert_eq!(
        (&sh["type"], &sh["target"]),
        (&json!("symlink"), &json!("busybox"))
    );
    assert_eq!(checker(&["stat", "/nope"]).stdout, "ENOENT\n");
    checker(&["cat", "/nope"]).assert_code(1);
    checker(&["bogus"]).assert_code(2);
    let not_exec = chroot(&["/bin/not-exec"]);
    assert_eq!(not_exec.code(), Some(126), "{not_exec}");
}

#[test]
fn wait_signal_names_the_signal_and_exits_128_plus_signo() {
    let child = Spawned::new(
        Command::new("chroot")
            .arg(Fixture::get().rootfs())
            .args([CHECKER, "wait-signal"])
            .stdin(Stdio::null()),
    )
    .unwrap();
    // chroot execs the checker in place, so the pid is the checker's.
    let pid = child.id() as i32;
    wait_until("the checker catches SIGUSR1", || {
        catches_signal(pid, libc::SIGUSR1)
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGUSR1).unwrap();
    let output = child.finish(default_timeout());
    assert_eq!(output.stdout, "SIGUSR1\n");
    output.assert_code(128 + libc::SIGUSR1);
}

#[test]
fn bundles_are_private_editable_copies() {
    let mut bundle = Bundle::with(|config| config["hostname"] = json!("edited"));
    let saved = |bundle: &Bundle| -> Value {
        serde_json::from_str(&std::fs::read_to_string(bundle.config_path()).unwrap()).unwrap()
    };
    assert_eq!(saved(&bundle)["hostname"], "edited");
    let mut expected = default_config();
    expected["hostname"] = json!("edited");
    assert_eq!(saved(&bundle), expected);

    bundle.config_mut()["process"]["cwd"] = json!("/tmp");
    assert_eq!(saved(&bundle)["process"]["cwd"], "/");
    bundle.save();
    bundle.set_args(&[CHECKER, "exit", "3"]);
    assert_eq!(
        saved(&bundle)["process"]["args"],
        json!([CHECKER, "exit", "3"])
    );
    assert_eq!(saved(&bundle)["process"]["cwd"], "/tmp");

    let copy = bundle.rootfs().join("etc/passwd");
    std::fs::write(&copy, "changed").unwrap();
    let shared = std::fs::read_to_string(Fixture::get().rootfs().join("etc/passwd")).unwrap();
    assert!(
        shared.starts_with("root:"),
        "a bundle write reached the shared fixture"
    );
    assert!(bundle.rootfs().join("usr/bin/bulwark-check").is_file());

    let dir = bundle.path().to_path_buf();
    drop(bundle);
    assert!(!dir.exists());
}
