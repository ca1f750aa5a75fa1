//! config.json honoured: each test sets some fields, runs a container, and checks what the
//! process really got (from the checker's report or a probe), not just that it ran.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use bulwark_tests::{default_timeout, run_captured, Bundle, Output, Runtime, TempDir, CHECKER};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

/// Sets `process.args`, runs the container in the foreground and returns its stdout
/// lines, panicking unless it exits 0.
#[track_caller]
fn probe(rt: &Runtime, bundle: &mut Bundle, args: &[&str]) -> Vec<String> {
    bundle.set_args(args);
    let output = rt.run(bundle, &rt.unique_id());
    output.assert_success();
    output.stdout.lines().map(str::to_owned).collect()
}

/// Runs a busybox shell script in the container; its stdout lines.
#[track_caller]
fn sh(rt: &Runtime, bundle: &mut Bundle, script: &str) -> Vec<String> {
    probe(rt, bundle, &["/bin/sh", "-c", script])
}

/// `bulwark-check stat` of each path, in one container.
#[track_caller]
fn stats(rt: &Runtime, bundle: &mut Bundle, paths: &[&str]) -> Vec<Value> {
    let script = format!("for p in {}; do {CHECKER} stat $p; done", paths.join(" "));
    let lines = sh(rt, bundle, &script);
    assert_eq!(lines.len(), paths.len(), "{lines:?}");
    let parse = |l: &String| serde_json::from_str(l).unwrap_or_else(|_| json!(l));
    lines.iter().map(parse).collect()
}

/// `bulwark-check open PATH w` for each path, in one container: `ok` or an errno name.
#[track_caller]
fn open_for_writing(rt: &Runtime, bundle: &mut Bundle, paths: &[&str]) -> Vec<String> {
    let script = format!("for p in {}; do {CHECKER} open $p w; done", paths.join(" "));
    sh(rt, bundle, &script)
}

/// A field of the last mount at `point` in the report (the one the process sees), as a set.
#[track_caller]
fn mount_field(report: &Value, point: &str, field: &str) -> BTreeSet<String> {
    let mounts = report["mounts"].as_array().expect("mounts is a list");
    let found = mounts.iter().rev().find(|m| m["mount_point"] == point);
    let mount = found.unwrap_or_else(|| panic!("no mount at {point} in {mounts:#?}"));
    strings(&mount[field])
}

fn strings(list: &Value) -> BTreeSet<String> {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|v| v.as_str())
        .map(str::to_owned)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A namespace link of a process (`self` for this test), e.g. `net:[4026531833]`.
fn ns_of(pid: &str, kind: &str) -> String {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    link.to_string_lossy().into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Appends bind mounts `(destination, host source, options)` to the config.
fn add_binds(config: &mut Value, binds: &[(&str, &str, &[&str])]) {
    let mounts = config["mounts"].as_array_mut().expect("mounts is a list");
    for (destination, source, options) in binds {
        let mount = json!({ "destination": destination, "type": "bind",
                            "source": source, "options": options });
        mounts.push(mount);
    }
}

fn mount_tmpfs(at: &Path) {
    let flags = MsFlags::empty();
    mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some("size=64k")).unwrap();
}

/// Creates and starts a container running `bulwark-check sleep 60`; (id, init pid).
#[track_caller]
fn start_sleeper(rt: &Runtime, bundle: &mut Bundle) -> (String, i32) {
    bundle.set_args(&[CHECKER, "sleep", "60"]);
    let id = rt.unique_id();
    let create = rt.cmd(["create", "--bundle", path_str(bundle.path()), &id]);
    create.assert_success();
    rt.cmd(["start", &id]).assert_success();
    let pid = rt.state(&id)["pid"].as_i64().expect("state has a pid");
    (id, i32::try_from(pid).unwrap())
}

/// Runs `<runtime> --root <root> <args>` from a shell that first applies `redirects`
/// (e.g. `3<file`), so the runtime inherits those extra fds.
#[track_caller]
fn run_with_fds(rt: &Runtime, redirects: &str, args: &[&str]) -> Output {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!("exec \"$0\" \"$@\" {redirects}"));
    command
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(args);
    run_captured(command.stdin(Stdio::null()), default_timeout())
}

fn fd_numbers(report: &Value) -> Vec<&String> {
    let fds = report["fds"].as_object().expect("fds is an object");
    fds.keys().collect()
}

/// A line with its whitespace runs collapsed to single spaces.
fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn all_namespaces(config: &mut Value) {
    let linux = &mut config["linux"];
    linux["namespaces"] = json!([
        { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" },
        { "type": "mount" }, { "type": "cgroup" }, { "type": "user" }, { "type": "time" }
    ]);
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    linux["uidMappings"] = map.clone();
    linux["gidMappings"] = map;
    linux["timeOffsets"] = json!({
        "boottime": { "secs": 86400, "nanosecs": 0 },
        "monotonic": { "secs": 172800, "nanosecs": 0 }
    });
}

#[test]
fn every_namespace_type_is_new() {
    let rt = Runtime::new();
    let mut bundle = Bundle::with(all_namespaces);
    let report = rt.report(&bundle);
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"] {
        let inside = report["namespaces"][kind].as_str().unwrap_or_default();
        assert!(inside.starts_with(&format!("{kind}:[")), "{kind}: {inside}");
        assert_ne!(inside, ns_of("self", kind), "{kind}: the host's");
    }
    assert_eq!((&report["uid"], &report["gid"]), (&json!(0), &json!(0)));

    let maps = sh(&rt, &mut bundle, "cat /proc/self/*id_map");
    let maps: Vec<String> = maps.iter().map(|l| words(l)).collect();
    assert_eq!(maps, ["0 100000 65536", "0 100000 65536"], "gid, uid");
}

#[test]
fn time_namespace_offsets_shift_the_clocks() {
    let rt = Runtime::new();
    let mut bundle = Bundle::with(all_namespaces);
    let first_number = |line: &str| -> f64 {
        let number = line.split_whitespace().next().unwrap_or_default();
        number.parse().expect("an uptime")
    };
    let host_uptime = || first_number(&std::fs::read_to_string("/proc/uptime").unwrap());
    let before = host_uptime();
    let lines = sh(&rt, &mut bundle, "cat /proc/uptime /proc/self/timens*");
    let after = host_uptime();
    let inside = first_number(&lines[0]);
    let shifted = before + 86399.0..=after + 86401.0;
    assert!(
        shifted.contains(&inside),
        "{inside} inside, {before}..{after} outside"
    );
    let offsets: BTreeSet<String> = lines[1..].iter().map(|l| words(l)).collect();
    assert_eq!(offsets, set(&["monotonic 172800 0", "boottime 86400 0"]));
}

#[test]
fn namespaces_joined_by_path_are_the_first_containers() {
    let rt = Runtime::new();
    let mut first_bundle = Bundle::new();
    let (_id, pid) = start_sleeper(&rt, &mut first_bundle);
    let second = Bundle::with(|config| {
        config["linux"]["namespaces"] = json!([
            { "type": "pid", "path": format!("/proc/{pid}/ns/pid") },
            { "type": "network", "path": format!("/proc/{pid}/ns/net") },
            { "type": "ipc", "path": format!("/proc/{pid}/ns/ipc") },
            { "type": "uts", "path": format!("/proc/{pid}/ns/uts") },
            { "type": "mount" }
        ]);
        config["hostname"] = json!(null);
    });
    let report = rt.report(&second);
    let first = pid.to_string();
    for kind in ["pid", "net", "ipc", "uts"] {
        assert_ne!(ns_of(&first, kind), ns_of("self", kind), "{kind}");
        assert_eq!(report["namespaces"][kind], ns_of(&first, kind), "{kind}");
    }
    assert_ne!(report["namespaces"]["mnt"], ns_of(&first, "mnt"));
    assert_ne!(report["pid"], 1, "pid 1 is the first container's init");
    assert_eq!(report["hostname"], "bulwark", "the first container's");
}

#[test]
fn hostname_and_domainname() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|config| {
        config["hostname"] = json!("box-a");
        config["domainname"] = json!("example.test");
    });
    let report = rt.report(&bundle);
    assert_eq!(report["hostname"], "box-a");
    assert_eq!(report["domainname"], "example.test");
    assert_ne!(nix::unistd::gethostname().unwrap(), "box-a");
}

#[test]
fn tmpfs_and_bind_mounts_with_their_options() {
    let rt = Runtime::new();
    let host = TempDir::new();
    let (dir, file) = (host.path().join("dir"), host.path().join("file"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hello"), "dir\n").unwrap();
    std::fs::write(dir.join("script"), "#!/bin/sh\necho ran\n").unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(dir.join("script"), executable).unwrap();
    std::fs::write(&file, "file\n").unwrap();
    let mut bundle = Bundle::with(|config| {
        config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["size=1m", "mode=1770", "nosuid", "nodev", "noexec"]
        }));
        let (dir, file) = (path_str(&dir), path_str(&file));
        let noexec: &[&str] = &["bind", "noexec", "nosuid"];
        let binds = [
            ("/mnt/dir", dir, &["bind", "ro"][..]),
            ("/mnt/noexec", dir, noexec),
        ];
        add_binds(config, &binds);
        add_binds(config, &[("/etc/bound", file, &["bind", "ro"])]);
    });
    let report = rt.report(&bundle);
    let scratch = mount_field(&report, "/scratch", "super_options");
    let size_and_mode = set(&["size=1024k", "mode=1770"]);
    assert!(scratch.is_superset(&size_and_mode), "{scratch:?}");
    let no_all = set(&["nosuid", "nodev", "noexec"]);
    for point in ["/scratch", "/dev/shm"] {
        let options = mount_field(&report, point, "options");
        assert!(options.is_superset(&no_all), "{point}: {options:?}");
    }
    assert!(mount_field(&report, "/mnt/dir", "options").contains("ro"));
    assert!(mount_field(&report, "/etc/bound", "options").contains("ro"));
    let noexec = mount_field(&report, "/mnt/noexec", "options");
    let rw_noexec = set(&["rw", "noexec", "nosuid"]);
    assert!(noexec.is_superset(&rw_noexec), "{noexec:?}");

    assert_eq!(stats(&rt, &mut bundle, &["/scratch"])[0]["mode"], 0o1770);
    let script = format!(
        "cat /mnt/dir/hello /etc/bound; for p in /mnt/dir/hello /etc/bound /mnt/noexec/hello; \
         do {CHECKER} open $p w; done; /mnt/dir/script; /mnt/noexec/script || echo refused"
    );
    let lines = sh(&rt, &mut bundle, &script);
    assert_eq!(lines.join(" "), "dir file EROFS EROFS ok ran refused");
}

/// `tmpcopyup` (Podman's tmpfs mounts): the tmpfs starts with what the image had there,
/// owners, modes and symlinks kept (a link to a host path stays a link), and `ro` is
/// applied after the copy.
#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_image_files() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    let data = bundle.rootfs().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/file"), "from the image\n").unwrap();
    std::fs::set_permissions(data.join("sub/file"), PermissionsExt::from_mode(0o604)).unwrap();
    chown(data.join("sub/file"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&data, PermissionsExt::from_mode(0o750)).unwrap();
    symlink("/etc/shadow-on-the-host", data.join("link")).unwrap();
    bundle.edit(|config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        for (at, ro) in [("/data", "ro"), ("/etc", "rw")] {
            mounts.push(json!({
                "destination": at, "type": "tmpfs", "source": "tmpfs",
                "options": ["tmpcopyup", ro, "nosuid", "nodev"]
            }));
        }
    });
    let script = "grep -E ' /(data|etc) ' /proc/mounts | cut -d' ' -f2,3,4 | cut -d, -f1; \
         cat /data/sub/file; readlink /data/link; stat -c '%a %u %g' /data /data/sub/file; \
         for d in /data /etc; do touch $d/new 2>/dev/null && echo written || echo refused; done; \
         grep -c root /etc/passwd";
    let lines = sh(&rt, &mut bundle, script);
    assert_eq!(
        lines,
        [
            "/data tmpfs ro",
            "/etc tmpfs rw",
            "from the image",
            "/etc/shadow-on-the-host",
            "750 0 0",
            "604 1000 1000",
            "refused",
            "written",
            "1"
        ]
    );
    // The image's own files are untouched.
    assert!(!bundle.rootfs().join("etc/new").exists());
}

#[test]
fn tmpcopyup_is_only_for_tmpfs() {
    let rt = Runtime::new();
    let host = TempDir::new();
    let bundle = Bundle::with(|config| {
        let source = path_str(host.path());
        add_binds(config, &[("/mnt", source, &["bind", "tmpcopyup"])]);
    });
    let output = rt.run(&bundle, &rt.unique_id());
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("mounts[6]") && output.stderr.contains("tmpcopyup"),
        "{output}"
    );
    rt.assert_clean(&bundle);
}

/// A host dir with a file `top` and a tmpfs on `sub` holding `inner`; unmounts on drop.
struct DirWithSubmount(TempDir);

impl DirWithSubmount {
    fn new(shared: bool) -> DirWithSubmount {
        let dir = TempDir::new();
        std::fs::write(dir.path().join("top"), "top").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        mount_tmpfs(&sub);
        if shared {
            let none = None::<&str>;
            mount(none, &sub, none, MsFlags::MS_SHARED, none).unwrap();
        }
        std::fs::write(sub.join("inner"), "inner").unwrap();
        DirWithSubmount(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for DirWithSubmount {
    fn drop(&mut self) {
        let _ = umount2(&self.path().join("sub/later"), MntFlags::MNT_DETACH);
        let _ = umount2(&self.path().join("sub"), MntFlags::MNT_DETACH);
    }
}

#[test]
fn rro_makes_submounts_read_only_and_ro_does_not() {
    let rt = Runtime::new();
    let host = DirWithSubmount::new(false);
    let mut bundle = Bundle::with(|config| {
        let source = path_str(host.path());
        add_binds(config, &[("/rro", source, &["rbind", "rro"])]);
        add_binds(config, &[("/ro", source, &["rbind", "ro"])]);
    });
    let paths = ["/rro/top", "/rro/sub/inner", "/ro/top", "/ro/sub/inner"];
    let results = open_for_writing(&rt, &mut bundle, &paths);
    assert_eq!(results, ["EROFS", "EROFS", "EROFS", "ok"]);
}

#[test]
fn bind_propagation_rslave_receives_host_mounts_and_private_does_not() {
    let rt = Runtime::new();
    let host = DirWithSubmount::new(true);
    let mut bundle = Bundle::with(|config| {
        let source = host.path().join("sub");
        let source = path_str(&source);
        add_binds(config, &[("/slave", source, &["rbind", "rslave"])]);
        add_binds(config, &[("/private", source, &["rbind", "private"])]);
    });
    let report = rt.report(&bundle);
    let slave = mount_field(&report, "/slave", "optional");
    assert!(slave.iter().any(|t| t.starts_with("master:")), "{slave:?}");
    assert!(!slave.iter().any(|t| t.starts_with("shared:")), "{slave:?}");
    let private = mount_field(&report, "/private", "optional");
    assert!(private.is_empty(), "{private:?}");

    // What the host mounts later reaches the slave and only the slave.
    let (id, _pid) = start_sleeper(&rt, &mut bundle);
    let later = host.path().join("sub/later");
    std::fs::create_dir(&later).unwrap();
    mount_tmpfs(&later);
    std::fs::write(later.join("marker"), "m").unwrap();
    let stat_in = |path: &str| {
        let output = rt.cmd(["exec", &id, CHECKER, "stat", path]);
        output.assert_success().stdout.clone()
    };
    assert!(stat_in("/slave/later/marker").contains("\"file\""));
    assert_eq!(stat_in("/private/later/marker"), "ENOENT\n");
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn rootfs_propagation() {
    let rt = Runtime::new();
    let shared = Bundle::with(|config| config["linux"]["rootfsPropagation"] = json!("rshared"));
    let tags = mount_field(&rt.report(&shared), "/", "optional");
    assert!(tags.iter().any(|t| t.starts_with("shared:")), "{tags:?}");
    let private = Bundle::with(|config| config["linux"]["rootfsPropagation"] = json!("private"));
    let tags = mount_field(&rt.report(&private), "/", "optional");
    assert!(tags.is_empty(), "{tags:?}");
}

#[test]
fn configured_and_default_devices() {
    let rt = Runtime::new();
    let mut bundle = Bundle::with(|config| {
        config["linux"]["devices"] = json!([
            { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
              "fileMode": 0o600, "uid": 0, "gid": 0 },
            { "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
              "fileMode": 0o640, "uid": 1000, "gid": 5 }
        ]);
    });
    let expected = [
        ("/dev/fuse", 10, 229, 0o600, 0, 0),
        ("/dev/kmsg", 1, 11, 0o640, 1000, 5),
        ("/dev/null", 1, 3, 0o666, 0, 0),
        ("/dev/zero", 1, 5, 0o666, 0, 0),
        ("/dev/full", 1, 7, 0o666, 0, 0),
        ("/dev/random", 1, 8, 0o666, 0, 0),
        ("/dev/urandom", 1, 9, 0o666, 0, 0),
        ("/dev/tty", 5, 0, 0o666, 0, 0),
    ];
    let paths: Vec<&str> = expected.iter().map(|e| e.0).collect();
    let found = stats(&rt, &mut bundle, &paths);
    for (stat, (path, major, minor, mode, uid, gid)) in found.iter().zip(expected) {
        let keys = ["type", "major", "minor", "mode", "uid", "gid"];
        let got: Vec<&Value> = keys.iter().map(|k| &stat[k]).collect();
        let want = json!(["char", major, minor, mode, uid, gid]);
        assert_eq!(json!(got), want, "{path}: {stat}");
    }
    let io = "echo x > /dev/null && head -c 4 /dev/zero | wc -c";
    assert_eq!(sh(&rt, &mut bundle, io), ["4"]);
}

#[test]
fn dev_symlinks() {
    let rt = Runtime::new();
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let paths: Vec<&str> = links.iter().map(|l| l.0).collect();
    for (stat, (path, target)) in stats(&rt, &mut Bundle::new(), &paths).iter().zip(links) {
        assert_eq!(stat["type"], "symlink", "{path}");
        assert_eq!(stat["target"], target, "{path}");
    }
}

#[test]
fn masked_and_readonly_paths() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    let secret = bundle.rootfs().join("etc/secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("key"), "hidden").unwrap();
    std::fs::write(bundle.rootfs().join("etc/token"), "hidden").unwrap();
    bundle.edit(|config| {
        let masked = config["linux"]["maskedPaths"].as_array_mut().unwrap();
        masked.extend([json!("/etc/secret"), json!("/etc/token")]);
    });
    let script = format!(
        "echo keys=$(wc -c < /proc/keys); echo token=$(wc -c < /etc/token); \
         echo secret=$(ls -A /etc/secret | wc -l); \
         for p in /proc/sys/kernel/hostname /proc/self/oom_score_adj; do {CHECKER} open $p w; done"
    );
    let lines = sh(&rt, &mut bundle, &script);
    assert_eq!(lines, ["keys=0", "token=0", "secret=0", "EROFS", "ok"]);
}

#[test]
fn root_readonly_true_and_false() {
    let rt = Runtime::new();
    let mut readonly = Bundle::new();
    assert!(mount_field(&rt.report(&readonly), "/", "options").contains("ro"));
    let passwd = ["/etc/passwd"];
    assert_eq!(open_for_writing(&rt, &mut readonly, &passwd), ["EROFS"]);

    let mut writable = Bundle::with(|config| config["root"]["readonly"] = json!(false));
    assert!(mount_field(&rt.report(&writable), "/", "options").contains("rw"));
    assert_eq!(open_for_writing(&rt, &mut writable, &passwd), ["ok"]);
}

#[test]
fn no_pivot_still_confines_to_the_rootfs() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    let bundle_dir = path_str(bundle.path()).to_owned();
    let mut run_no_pivot = |args: &[&str]| {
        bundle.set_args(args);
        let id = rt.unique_id();
        let output = rt.cmd(["run", "--no-pivot", "--bundle", &bundle_dir, &id]);
        output.assert_success().stdout.clone()
    };
    let report: Value = serde_json::from_str(&run_no_pivot(&[CHECKER, "report"])).unwrap();
    let mounts = report["mounts"].as_array().unwrap();
    let points = strings(&json!(mounts
        .iter()
        .map(|m| &m["mount_point"])
        .collect::<Vec<_>>()));
    let expected = set(&["/", "/proc", "/dev/pts"]);
    assert!(points.is_superset(&expected), "{points:?}");
    let host_only = |p: &&String| p.starts_with("/sys/fs/cgroup") || p.starts_with(&bundle_dir);
    assert!(!points.iter().any(|p| host_only(&p)), "{points:?}");
    let found = run_no_pivot(&[CHECKER, "stat", &bundle_dir]);
    assert_eq!(found, "ENOENT\n", "the host is reachable");
    rt.assert_clean(&bundle);
}

/// The default config makes /proc/sys read-only, as runc's does; sysctls must still apply.
#[test]

fn sysctls_are_set_in_the_containers_namespaces() {
    let rt = Runtime::new();
    let files = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax"];
    let host = || files.map(|f| std::fs::read_to_string(f).unwrap());
    let before = host();
    let mut bundle = Bundle::with(|config| {
        config["linux"]["sysctl"] =
            json!({ "net.ipv4.ip_forward": "1", "kernel.shmmax": "12345678" });
    });
    let inside = sh(&rt, &mut bundle, &format!("cat {}", files.join(" ")));
    assert_eq!(inside, ["1", "12345678"]);
    assert_eq!(host(), before, "a container's sysctl reached the host");
}

#[test]
fn process_limits_and_priorities() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|config| {
        let process = &mut config["process"];
        process["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 1234, "hard": 2345 },
            { "type": "RLIMIT_CORE", "soft": 1_048_576, "hard": u64::MAX }
        ]);
        process["oomScoreAdj"] = json!(345);
        process["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 3 });
        process["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 5 });
        process["execCPUAffinity"] = json!({ "initial": "0", "final": "0" });
        config["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_LOCAL" });
    });
    let report = rt.report(&bundle);
    let rlimits = &report["rlimits"];
    assert_eq!(
        rlimits["RLIMIT_NOFILE"],
        json!({ "soft": 1234, "hard": 2345 })
    );
    let unlimited = Value::Null;
    assert_eq!(rlimits["RLIMIT_CORE"]["soft"], 1_048_576);
    assert_eq!(rlimits["RLIMIT_CORE"]["hard"], unlimited);
    assert_eq!(report["oom_score_adj"], 345);
    let (io, scheduler) = (&report["io_priority"], &report["scheduler"]);
    assert_eq!(io["class"], "IOPRIO_CLASS_BE");
    assert_eq!(io["level"], 3);
    assert_eq!(scheduler["policy"]["name"], "SCHED_BATCH");
    assert_eq!(scheduler["nice"], 5);
    assert_eq!(report["cpu_affinity"], json!([0]));
    assert_eq!(report["memory_policy"]["mode"], "MPOL_LOCAL");
}

#[test]
fn exec_cpu_affinity_final_replaces_initial() {
    let rt = Runtime::new();
    let affinity = |value: Value| {
        let bundle = Bundle::with(|config| config["process"]["execCPUAffinity"] = value);
        rt.report(&bundle)["cpu_affinity"].clone()
    };
    assert_eq!(affinity(json!({ "initial": "1" })), json!([1]));
    let both = json!({ "initial": "1", "final": "0" });
    assert_eq!(affinity(both), json!([0]));
}

/// Read from /proc: the report's `personality` drops the domain (nix's `Persona` has no
/// bit for PER_LINUX32).
#[test]
fn personality_linux32() {
    let rt = Runtime::new();
    let mut bundle =
        Bundle::with(|config| config["linux"]["personality"] = json!({ "domain": "LINUX32" }));
    let lines = sh(&rt, &mut bundle, "cat /proc/self/personality; uname -m");
    assert_eq!(lines[0], "00000008", "PER_LINUX32");
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(lines[1], "i686");
    }
}

#[test]
fn user_env_and_cwd() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|config| {
        let process = &mut config["process"];
        process["user"] =
            json!({ "uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 0o027 });
        process["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="]);
        process["cwd"] = json!("/home/bulwark");
    });
    let report = rt.report(&bundle);
    let ids = [
        "uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid",
    ];
    for key in ids {
        assert_eq!(report[key], 1000, "{key}");
    }
    assert_eq!(report["groups"], json!([2000, 3000]));
    assert_eq!(report["umask"], 0o027);
    assert_eq!(report["cwd"], "/home/bulwark");
    let env = report["env"].as_object().unwrap();
    let given = json!({ "PATH": "/bin:/usr/bin", "FOO": "bar baz", "EMPTY": "" });
    for (key, value) in given.as_object().unwrap() {
        assert_eq!(&env[key], value, "{key}");
    }
    let unasked = |k: &&String| given.get(k.as_str()).is_none() && *k != "HOME";
    let extra: Vec<&String> = env.keys().filter(unasked).collect();
    assert!(extra.is_empty(), "the runtime's env leaked in: {extra:?}");
}

#[test]
fn five_capability_sets_with_ambient_for_a_non_root_user() {
    let rt = Runtime::new();
    let bundle = Bundle::with(|config| {
        let process = &mut config["process"];
        process["user"] = json!({ "uid": 1000, "gid": 1000 });
        process["capabilities"] = json!({
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    });
    let caps = rt.report(&bundle)["capabilities"].clone();
    let names = |set: &str| strings(&caps[set]["names"]);
    let inheritable = set(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut bounding = inheritable.clone();
    bounding.extend(set(&["CAP_AUDIT_WRITE", "CAP_CHOWN"]));
    assert_eq!(names("bounding"), bounding);
    assert_eq!(names("inheritable"), inheritable);
    // Across exec a non-root process keeps exactly its ambient set, effective included.
    for kept in ["ambient", "permitted", "effective"] {
        assert_eq!(names(kept), set(&["CAP_NET_BIND_SERVICE"]), "{kept}");
    }
}

#[test]
fn root_capabilities_are_bounded() {
    let rt = Runtime::new();
    let report = rt.report(&Bundle::new());
    let names = |set: &str| strings(&report["capabilities"][set]["names"]);
    let default = set(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    for kept in ["bounding", "permitted", "effective"] {
        assert_eq!(names(kept), default, "{kept}");
    }
    assert!(names("ambient").is_empty() && names("inheritable").is_empty());
}

#[test]
fn no_new_privileges_true_and_false() {
    let rt = Runtime::new();
    assert_eq!(rt.report(&Bundle::new())["no_new_privs"], true);
    let off = Bundle::with(|config| config["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(rt.report(&off)["no_new_privs"], false);
}

#[test]
fn preserve_fds_passes_exactly_the_listed_fds() {
    let rt = Runtime::new();
    let host = TempDir::new();
    let file = host.path().join("preserved");
    std::fs::write(&file, "kept\n").unwrap();
    let mut bundle = Bundle::new();
    let bundle_dir = path_str(bundle.path()).to_owned();
    // The runtime gets fds 3, 4 and 9; only --preserve-fds may pass any on.
    let redirects = format!("3<{0} 4<{0} 9<{0}", file.display());
    let run = |preserve: &str| {
        let id = rt.unique_id();
        let args = [
            "run",
            "--preserve-fds",
            preserve,
            "--bundle",
            &bundle_dir,
            &id,
        ];
        let output = run_with_fds(&rt, &redirects, &args);
        output.assert_success().stdout.clone()
    };
    let report: Value = serde_json::from_str(&run("1")).unwrap();
    assert_eq!(fd_numbers(&report), ["0", "1", "2", "3"]);
    let report: Value = serde_json::from_str(&run("0")).unwrap();
    let fds = &report["fds"];
    assert_eq!(fd_numbers(&report), ["0", "1", "2"], "leaked: {fds}");
    bundle.set_args(&[CHECKER, "cat", "/proc/self/fd/3"]);
    assert_eq!(run("1"), "kept\n");
}
