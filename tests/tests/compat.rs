//! Configs that runc and crun run must run under bulwark-runtime too: the config `runc
//! spec` writes, exit codes engines read, containers given CAP_SYS_ADMIN that mount,
//! configs without a mount namespace, startContainer hooks without env, configs of any
//! size, and `spec` followed by `run` in an ordinary directory. Where bulwark-runtime
//! stays stricter, the refusal comes at `create`, names the field, and leaves nothing.

use std::path::Path;
use std::process::Command;

use bulwark_tests::{run_captured, Bundle, Runtime, TempDir, CHECKER};
use serde_json::{json, Value};

/// A change to a config, for tables of cases.
type Edit = Box<dyn Fn(&mut Value)>;

/// A program on the host the test cannot do without (in CI every one is installed).
#[track_caller]
fn host_tool(path: &str) -> &str {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: scripts/test.sh installs it from Debian"
    );
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The `Cap*` lines of a process's status, as `grep '^Cap'` prints them.
const CAPS: &str = "grep '^Cap' /proc/self/status";

/// The config `runc spec` writes, for the bundle's rootfs, with no terminal and `args`.
fn runc_spec_config(args: &[&str]) -> Value {
    let dir = TempDir::new();
    let runc = host_tool("/usr/sbin/runc");
    let out = run_captured(
        Command::new(runc).args(["spec", "--bundle", path_str(dir.path())]),
        bulwark_tests::default_timeout(),
    );
    out.assert_success();
    let text = std::fs::read(dir.path().join("config.json")).unwrap();
    let mut config: Value = serde_json::from_slice(&text).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(args);
    config
}

#[test]
fn the_config_runc_spec_writes_runs_as_under_runc() {
    // runc 1.1's `spec` lists three capabilities in `ambient` with no `inheritable` set:
    // the kernel cannot raise them, so runc warns and runs the process with CapAmb 0.
    let config = runc_spec_config(&["sh", "-c", CAPS]);
    assert!(config["process"]["capabilities"]["ambient"].is_array());
    assert!(config["process"]["capabilities"]["inheritable"].is_null());
    let bundle = Bundle::with(|c| *c = config);
    let rt = Runtime::new();
    let log = TempDir::new();
    let log_file = log.path().join("log.json");
    let id = rt.unique_id();
    let ours = rt.cmd([
        "--log",
        path_str(&log_file),
        "--log-format",
        "json",
        "run",
        "--bundle",
        path_str(bundle.path()),
        &id,
    ]);
    ours.assert_success();
    assert!(ours.stdout.contains("CapAmb:\t0000000000000000"), "{ours}");
    let warnings = std::fs::read_to_string(&log_file).unwrap_or_default();
    let warned = warnings.lines().any(|line| {
        let line: Value = serde_json::from_str(line).unwrap_or_default();
        line["level"] == "warning"
            && line["msg"]
                .as_str()
                .is_some_and(|m| m.contains("process.capabilities.ambient"))
    });
    assert!(
        warned,
        "no warning about the ambient set in the log:\n{warnings}"
    );
    rt.assert_clean(&bundle);

    // runc itself, on the same bundle: the same capability sets.
    let runc_root = TempDir::new();
    let theirs = run_captured(
        Command::new(host_tool("/usr/sbin/runc"))
            .args(["--root", path_str(runc_root.path()), "run", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdin(std::process::Stdio::null()),
        bulwark_tests::default_timeout(),
    );
    theirs.assert_success();
    assert_eq!(ours.stdout, theirs.stdout, "bulwark-runtime, then runc");
}

/// `run`'s exit status when a startContainer hook runs `script` in the container before
/// `/bin/sleep 0` is executed.
fn exit_after_start_hook(rt: &Runtime, script: &str) -> Option<i32> {
    let bundle = Bundle::with(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["args"] = json!(["/bin/sleep", "0"]);
        c["hooks"]["startContainer"] = json!([{"path": "/bin/sh", "args": ["sh", "-c", script]}]);
    });
    // The hook changes the rootfs's own copy of sleep, not busybox.
    let sleep = bundle.rootfs().join("bin/sleep");
    std::fs::remove_file(&sleep).unwrap();
    std::fs::copy(bundle.rootfs().join("bin/busybox"), &sleep).unwrap();
    let out = rt.run(&bundle, &rt.unique_id());
    rt.assert_clean(&bundle);
    out.code()
}

#[test]
fn setup_failures_exit_1_and_only_exec_failures_exit_126_or_127() {
    let rt = Runtime::new();
    assert_eq!(exit_after_start_hook(&rt, "true"), Some(0));
    // The runtime's own step failing (here a hook) is status 1, as with runc.
    assert_eq!(exit_after_start_hook(&rt, "exit 3"), Some(1));
    // The program gone, or no longer executable, by the time it is executed.
    assert_eq!(exit_after_start_hook(&rt, "rm /bin/sleep"), Some(127));
    assert_eq!(
        exit_after_start_hook(&rt, "chmod 644 /bin/sleep"),
        Some(126)
    );
}

/// Adds `cap` to the bounding, effective and permitted sets.
fn grant(config: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        let list = config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap();
        list.push(json!(cap));
    }
}

#[test]
fn a_container_holding_cap_sys_admin_may_mount_and_runs_without_landlock() {
    let rt = Runtime::new();
    let script = "mount -t tmpfs probe /mnt && echo mounted && umount /mnt";
    for sys_admin in [true, false] {
        let bundle = Bundle::with(|c| {
            c["process"]["args"] = json!(["sh", "-c", script]);
            if sys_admin {
                grant(c, "CAP_SYS_ADMIN");
            }
        });
        let id = rt.unique_id();
        rt.cmd(["create", "--bundle", path_str(bundle.path()), &id])
            .assert_success();
        let state = rt.state(&id);
        let landlock = &state["landlock"];
        assert_eq!(landlock["applied"], json!(!sys_admin), "{state:#}");
        if sys_admin {
            let reason = landlock["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("CAP_SYS_ADMIN"), "{state:#}");
        }
        rt.cmd(["start", &id]).assert_success();
        rt.cmd(["delete", "--force", &id]).assert_success();
        let out = rt.run(&bundle, &rt.unique_id());
        if sys_admin {
            out.assert_success();
            assert_eq!(out.stdout.trim(), "mounted", "{out}");
        } else {
            out.assert_failure();
            assert!(!out.stdout.contains("mounted"), "{out}");
        }
        rt.assert_clean(&bundle);
    }
    // `features` says so too.
    let features: Value = serde_json::from_str(&rt.cmd(["features"]).stdout).unwrap();
    let rule = &features["annotations"]["bulwark.landlock"];
    assert!(
        rule.as_str().is_some_and(|r| r.contains("CAP_SYS_ADMIN")),
        "{features:#}"
    );
}

/// The host's mount table as this process sees it.
fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The default config without a mount namespace and with nothing that would mount.
fn without_mount_namespace(c: &mut Value) {
    let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| ns["type"] != "mount");
    c["mounts"] = json!([]);
    c["root"]["readonly"] = json!(false);
    let linux = c["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
}

#[test]
fn a_config_without_a_mount_namespace_runs_in_the_hosts() {
    let rt = Runtime::new();
    let mut bundle = Bundle::with(without_mount_namespace);
    bundle.set_args(&[CHECKER, "cat", "/etc/passwd"]);
    let before = host_mounts();
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", path_str(bundle.path()), &id])
        .assert_success();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // The same mount namespace, rooted at the rootfs, and the host's table untouched.
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(ns(&pid.to_string()), ns("self"));
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, bundle.rootfs().canonicalize().unwrap());
    assert_eq!(host_mounts(), before);
    // An exec'd process is chrooted into the same root.
    let exec = rt.cmd(["exec", &id, CHECKER, "cat", "/etc/passwd"]);
    exec.assert_success();
    assert!(exec.stdout.contains("bulwark:x:1000"), "{exec}");
    rt.cmd(["start", &id]).assert_success();
    rt.cmd(["delete", "--force", &id]).assert_success();
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    assert!(out.stdout.contains("bulwark:x:1000"), "{out}");
    assert_eq!(host_mounts(), before);
    rt.assert_clean(&bundle);
}

#[test]
fn without_a_mount_namespace_what_would_mount_on_the_host_is_refused() {
    let rt = Runtime::new();
    let proc_mount = json!({"destination": "/proc", "type": "proc", "source": "proc"});
    let cases: [(&str, Edit); 4] = [
        (
            "mounts[0]",
            Box::new(move |c| c["mounts"] = json!([proc_mount])),
        ),
        (
            "linux.maskedPaths",
            Box::new(|c| c["linux"]["maskedPaths"] = json!(["/proc/kcore"])),
        ),
        (
            "linux.readonlyPaths",
            Box::new(|c| c["linux"]["readonlyPaths"] = json!(["/proc/sys"])),
        ),
        (
            "root.readonly",
            Box::new(|c| c["root"]["readonly"] = json!(true)),
        ),
    ];
    for (field, edit) in cases {
        let bundle = Bundle::with(|c| {
            without_mount_namespace(c);
            edit(c);
        });
        let before = host_mounts();
        let out = rt.run(&bundle, &rt.unique_id());
        out.assert_code(1);
        assert!(
            out.stderr.contains(field) && out.stderr.contains("mount namespace"),
            "{field}: {out}"
        );
        assert_eq!(host_mounts(), before, "{field}");
        rt.assert_clean(&bundle);
    }
}

#[test]
fn start_container_hooks_without_env_get_the_process_env() {
    let rt = Runtime::new();
    let hook = |env: Option<&[&str]>| {
        let mut hook = json!({"path": "/bin/sh", "args": ["sh", "-c", "echo \"[$GREETING]\" > /dev/hook-env"]});
        if let Some(env) = env {
            hook["env"] = json!(env);
        }
        hook
    };
    for (env, expected) in [(None, "[hello]"), (Some(&["GREETING=own"][..]), "[own]")] {
        let bundle = Bundle::with(|c| {
            c["process"]["args"] = json!([CHECKER, "cat", "/dev/hook-env"]);
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("GREETING=hello"));
            c["hooks"]["startContainer"] = json!([hook(env)]);
        });
        let out = rt.run(&bundle, &rt.unique_id());
        out.assert_success();
        assert_eq!(out.stdout.trim(), expected, "{out}");
        rt.assert_clean(&bundle);
    }
}

#[test]
fn a_config_of_any_size_creates() {
    let rt = Runtime::new();
    for size in [70 << 10, 4 << 20] {
        let bundle = Bundle::with(|c| {
            c["process"]["args"] = json!(["true"]);
            c["annotations"] = json!({"big": "x".repeat(size)});
        });
        // The hooks get the whole state, annotations included.
        let out = rt.run(&bundle, &rt.unique_id());
        out.assert_success();
        rt.assert_clean(&bundle);
    }
}

#[test]
fn what_can_be_known_at_create_is_refused_at_create() {
    let rt = Runtime::new();
    let cases: [(&str, Edit); 4] = [
        (
            "process.capabilities.effective",
            Box::new(|c| {
                c["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_CHOWN"]);
                c["process"]["capabilities"]["permitted"] = json!(["CAP_KILL"]);
            }),
        ),
        (
            "process.env[1]",
            Box::new(|c| {
                c["process"]["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("A=b\u{0}c"));
            }),
        ),
        (
            "process.apparmorProfile",
            Box::new(|c| c["process"]["apparmorProfile"] = json!("bulwark-test")),
        ),
        (
            "process.selinuxLabel",
            Box::new(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")),
        ),
    ];
    // Neither AppArmor nor SELinux is enabled on the test hosts: asked for, they cannot
    // be applied, and the user asked for confinement.
    for lsm in ["/sys/kernel/security/apparmor", "/sys/fs/selinux/enforce"] {
        assert!(
            !Path::new(lsm).exists(),
            "{lsm}: this test expects a host without it"
        );
    }
    for (field, edit) in cases {
        let bundle = Bundle::with(|c| edit(c));
        let id = rt.unique_id();
        let out = rt.cmd(["create", "--bundle", path_str(bundle.path()), &id]);
        out.assert_code(1);
        assert!(out.stderr.contains(field), "{field}: {out}");
        rt.assert_clean(&bundle);
    }
}

#[test]
fn spec_then_run_works_in_a_directory_other_users_can_reach() {
    let rt = Runtime::new();
    let fixture = Bundle::new();
    // Where people keep bundles: a 0755 directory under /tmp.
    let open = TempDir::with_mode(0o755);
    let status = Command::new("cp")
        .arg("-a")
        .arg(fixture.rootfs())
        .arg(open.path().join("rootfs"))
        .status()
        .unwrap();
    assert!(status.success());
    let spec = rt.cmd(["spec", "--bundle", path_str(open.path())]);
    spec.assert_success();
    assert!(
        spec.stderr.contains("0700") || spec.stderr.contains("chmod"),
        "spec should say how to keep the idmapped rootfs: {spec}"
    );
    let config_path = open.path().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", "id -u && touch /tmp/written && echo ok"]);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = rt.cmd(["run", "--bundle", path_str(open.path()), &rt.unique_id()]);
    out.assert_success();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["0", "ok"], "{out}");
    // What container root wrote is not the host's root's.
    let meta = std::fs::metadata(open.path().join("rootfs/tmp/written")).unwrap();
    assert_ne!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    bulwark_tests::assert_clean(&rt.root(), open.path());

    // In a directory closed to others, spec keeps the idmapped rootfs, where the
    // rootfs's filesystem can be idmapped (the v2 guest's 6.1 kernel cannot idmap tmpfs).
    let closed = Bundle::new();
    std::fs::remove_file(closed.config_path()).unwrap();
    rt.cmd(["spec", "--bundle", path_str(closed.path())])
        .assert_success();
    let config: Value =
        serde_json::from_slice(&std::fs::read(closed.config_path()).unwrap()).unwrap();
    let idmappable = bulwark_tests::idmap_unsupported(&closed.rootfs()).is_none();
    let expected = if idmappable { "true" } else { "false" };
    assert_eq!(config["annotations"]["bulwark.rootfs.idmap"], expected);
}

/// A created and started container running `bulwark-check sleep 600`, changed by `edit`.
fn sleeper(rt: &Runtime, edit: impl FnOnce(&mut Value)) -> (Bundle, String) {
    let bundle = Bundle::with(|c| {
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
        edit(c);
    });
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", path_str(bundle.path()), &id])
        .assert_success();
    rt.cmd(["start", &id]).assert_success();
    (bundle, id)
}

#[test]
fn exec_applies_the_personality_and_the_final_cpu_affinity() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        cpus >= 2,
        "this test needs two CPUs to tell the affinities apart"
    );
    let rt = Runtime::new();
    let (bundle, id) = sleeper(&rt, |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let uname = rt.cmd(["exec", &id, "uname", "-m"]);
    uname.assert_success();
    assert_eq!(uname.stdout.trim(), "i686", "{uname}");

    // execCPUAffinity: `initial` while the runtime sets the process up, `final` from the
    // exec on (after the process has joined the container's cgroups).
    let dir = TempDir::new();
    let process_file = dir.path().join("process.json");
    let process = json!({
        "args": ["grep", "Cpus_allowed_list", "/proc/self/status"],
        "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin:/usr/bin"],
        "execCPUAffinity": {"initial": "0", "final": "1"}
    });
    std::fs::write(&process_file, process.to_string()).unwrap();
    let out = rt.cmd(["exec", "--process", path_str(&process_file), &id]);
    out.assert_success();
    assert_eq!(out.stdout.split_whitespace().nth(1), Some("1"), "{out}");
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}
