//! cgroups enforced, not just written: a memory limit OOM-kills an allocating process
//! (and `events` reports it), a pids limit stops a fork bomb, a cpu quota bounds the cpu
//! time used, device rules block a denied device, `update` changes a running container's
//! limits, `pause` really freezes and `resume` continues; `linux.cgroupsPath` placement,
//! cleanup after a crash, `ps`/`kill --all` from the cgroup and the `events --stats` shape.
//!
//! Runs on both layouts: v1 or hybrid (a hierarchy per controller at
//! `/sys/fs/cgroup/<controller>`) and pure cgroup v2 (one hierarchy at `/sys/fs/cgroup`);
//! [`Limit`] reads what the kernel holds from the right file for the host's layout.
//! Container ids and the names in test cgroup paths are unique on the host, so the
//! directories with such a name in any hierarchy are the container's; each test checks
//! they are gone at the end.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bulwark_tests::{
    assert_clean, processes_mentioning, run_captured, wait_until, Bundle, Output, Runtime, TempDir,
    CHECKER,
};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use serde_json::{json, Value};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MIB: u64 = 1 << 20;
/// Doubles a shell string 27 times (128 MiB at most, so a limit that is not enforced
/// still leaves the host safe), growing the shell's RSS until a memory limit stops it.
const ALLOCATE: &str = "x=a; i=0; while [ $i -lt 27 ]; do x=$x$x; i=$((i+1)); done";
const SLEEP: [&str; 3] = [CHECKER, "sleep", "600"];

fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

/// Appends `item` to the array at the JSON `pointer` in the config.
fn push(config: &mut Value, pointer: &str, item: Value) {
    let array = config.pointer_mut(pointer).and_then(Value::as_array_mut);
    array
        .unwrap_or_else(|| panic!("no array at {pointer}"))
        .push(item);
}

/// A bundle running `args` in a writable rootfs (the host reads results from
/// `rootfs/tmp`), further changed by `edit`.
fn bundle(args: Value, edit: impl FnOnce(&mut Value)) -> Bundle {
    Bundle::with(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["args"] = args;
        edit(c);
    })
}

fn with_resources(args: Value, resources: Value) -> Bundle {
    bundle(args, |c| c["linux"]["resources"] = resources)
}

fn at_path(args: Value, cgroups_path: &str) -> Bundle {
    bundle(args, |c| c["linux"]["cgroupsPath"] = json!(cgroups_path))
}

fn bundle_arg(bundle: &Bundle) -> &str {
    bundle.path().to_str().expect("UTF-8 path")
}

/// `run --detach` under a fresh id, returned once the container is running.
fn start_detached(rt: &Runtime, bundle: &Bundle) -> String {
    let id = rt.unique_id();
    rt.cmd(["run", "--detach", "--bundle", bundle_arg(bundle), &id])
        .assert_success();
    assert_eq!(rt.state(&id)["status"], "running");
    id
}

/// `run` in the foreground under a fresh id; afterwards nothing of it may be left.
fn run_once(rt: &Runtime, bundle: &Bundle) -> Output {
    let id = rt.unique_id();
    let out = rt.run(bundle, &id);
    assert_cgroups_gone(&id);
    // Only this container's state entry: others of the test may still be running.
    assert_clean(&rt.root().join(&id), bundle.path());
    out
}

/// [`run_once`], which must succeed, and the lines it printed.
fn stdout_lines(rt: &Runtime, bundle: &Bundle) -> Vec<String> {
    let out = run_once(rt, bundle);
    out.assert_success();
    out.stdout.lines().map(str::to_owned).collect()
}

/// `delete --force`, then nothing of the container may be left.
#[track_caller]
fn force_delete(rt: &Runtime, bundle: &Bundle, id: &str) {
    rt.cmd(["delete", "--force", id]).assert_success();
    assert_cgroups_gone(id);
    rt.assert_clean(bundle);
}

fn init_pid(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().expect("a pid") as i32
}

/// `events --stats`, checked to be exactly one JSON line.
#[track_caller]
fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.cmd(["events", "--stats", id]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "events --stats is one line: {out}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The container's cpu use over about `window`, as a fraction of one cpu.
fn cpu_fraction(rt: &Runtime, id: &str, window: Duration) -> f64 {
    let total = || {
        stats(rt, id)["data"]["cpu"]["usage"]["total"]
            .as_u64()
            .unwrap()
    };
    let before = total();
    let start = Instant::now();
    std::thread::sleep(window);
    let used = total() - before;
    used as f64 / start.elapsed().as_nanos() as f64
}

/// `ps --format json`.
fn ps(rt: &Runtime, id: &str) -> Vec<i32> {
    let out = rt.cmd(["ps", "--format", "json", id]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps: not JSON ({e}): {out}"))
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A hierarchy per controller at `/sys/fs/cgroup/<controller>`, maybe with cgroup2
    /// beside them at `/sys/fs/cgroup/unified` (hybrid).
    V1,
    /// Pure cgroup v2: the one hierarchy is `/sys/fs/cgroup` itself.
    V2,
}

fn layout() -> Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    *LAYOUT.get_or_init(|| {
        let fs = nix::sys::statfs::statfs(CGROUP_ROOT).expect("statfs /sys/fs/cgroup");
        if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            Layout::V2
        } else {
            Layout::V1
        }
    })
}

/// `file` of `controller` for the cgroup at `cgroups_path` ("" for the root), below
/// `root`: the host's /sys/fs/cgroup or a container's view of it.
fn controller_file(root: &str, controller: &str, cgroups_path: &str, file: &str) -> PathBuf {
    match layout() {
        Layout::V1 => PathBuf::from(format!("{root}/{controller}{cgroups_path}/{file}")),
        Layout::V2 => PathBuf::from(format!("{root}{cgroups_path}/{file}")),
    }
}

/// A limit as the kernel holds it for a cgroup, read from the layout's own file.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// v1 and v2 `pids.max`.
    Pids,
    /// v1 `memory.limit_in_bytes`, v2 `memory.max`.
    Memory,
    /// v1 `memory.memsw.limit_in_bytes`; v2 `memory.max` plus `memory.swap.max` (which
    /// counts swap alone).
    MemoryPlusSwap,
    /// v1 `cpu.cfs_quota_us` (-1 unlimited), v2 the first field of `cpu.max`.
    CpuQuota,
    /// v1 `cpu.cfs_period_us`, v2 the second field of `cpu.max`.
    CpuPeriod,
}

/// A limit's value; `Unlimited` is v2's and v1 pids' "max", v1 cpu's -1 and v1
/// memory's page-rounded `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Value(u64),
    Unlimited,
}

impl Setting {
    fn parse(text: &str) -> Option<Setting> {
        match text.trim() {
            "max" | "-1" => Some(Setting::Unlimited),
            n => {
                let n: u64 = n.parse().ok()?;
                // v1 memory has no "max": it shows i64::MAX rounded down to a page.
                let unlimited = n > i64::MAX as u64 - (1 << 16);
                Some(if unlimited {
                    Setting::Unlimited
                } else {
                    Setting::Value(n)
                })
            }
        }
    }
}

impl Limit {
    /// The limit of the cgroup at the absolute `cgroups_path`; `None` if it cannot be read.
    fn of(self, cgroups_path: &str) -> Option<Setting> {
        let read = |controller: &str, file: &str| {
            let path = controller_file(CGROUP_ROOT, controller, cgroups_path, file);
            std::fs::read_to_string(path).ok()
        };
        let field =
            |text: String, index: usize| Setting::parse(text.split_whitespace().nth(index)?);
        match (self, layout()) {
            (Limit::Pids, _) => Setting::parse(&read("pids", "pids.max")?),
            (Limit::Memory, Layout::V1) => {
                Setting::parse(&read("memory", "memory.limit_in_bytes")?)
            }
            (Limit::Memory, Layout::V2) => Setting::parse(&read("memory", "memory.max")?),
            (Limit::MemoryPlusSwap, Layout::V1) => {
                Setting::parse(&read("memory", "memory.memsw.limit_in_bytes")?)
            }
            (Limit::MemoryPlusSwap, Layout::V2) => {
                let memory = Limit::Memory.of(cgroups_path)?;
                match (memory, Setting::parse(&read("memory", "memory.swap.max")?)?) {
                    (Setting::Value(m), Setting::Value(s)) => Some(Setting::Value(m + s)),
                    _ => Some(Setting::Unlimited),
                }
            }
            (Limit::CpuQuota, Layout::V1) => Setting::parse(&read("cpu", "cpu.cfs_quota_us")?),
            (Limit::CpuQuota, Layout::V2) => field(read("cpu", "cpu.max")?, 0),
            (Limit::CpuPeriod, Layout::V1) => Setting::parse(&read("cpu", "cpu.cfs_period_us")?),
            (Limit::CpuPeriod, Layout::V2) => field(read("cpu", "cpu.max")?, 1),
        }
    }
}

/// The mounted hierarchies. v1: the directories (not symlinks such as
/// `cpu -> cpu,cpuacct`) directly in /sys/fs/cgroup; v2: /sys/fs/cgroup alone.
fn hierarchy_count() -> usize {
    if layout() == Layout::V2 {
        return 1;
    }
    let entries = std::fs::read_dir(CGROUP_ROOT).expect("/sys/fs/cgroup");
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count()
}

/// Every cgroup directory named `name`, in any hierarchy and at any depth.
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::from(CGROUP_ROOT)];
    while let Some(dir) = todo.pop() {
        // Other tests remove their cgroups while we walk.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name() == name {
                    found.push(entry.path());
                }
                todo.push(entry.path());
            }
        }
    }
    found
}

/// A directory for `name` in every hierarchy.
#[track_caller]
fn assert_cgroups_exist(name: &str) {
    let dirs = cgroup_dirs_named(name);
    assert_eq!(dirs.len(), hierarchy_count(), "cgroups of {name}: {dirs:?}");
}

#[track_caller]
fn assert_cgroups_gone(name: &str) {
    let dirs = cgroup_dirs_named(name);
    assert!(dirs.is_empty(), "cgroup directories left behind: {dirs:?}");
}

/// (hierarchy id, path) for each line of a `/proc/PID/cgroup` text.
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    let line = |l: &str| {
        let mut parts = l.splitn(3, ':');
        let id = parts.next()?.to_owned();
        Some((id, parts.nth(1)?.to_owned()))
    };
    text.lines().filter_map(line).collect()
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// `events --interval 100ms ID` in the background, its stdout in a file.
struct EventStream {
    child: Child,
    out: PathBuf,
    _dir: TempDir,
}

impl EventStream {
    /// Returns once the stream has printed stats, so its oom baseline is taken.
    fn spawn(rt: &Runtime, id: &str) -> EventStream {
        let dir = TempDir::new();
        let out = dir.path().join("events");
        let file = std::fs::File::create(&out).expect("events output file");
        let mut command = rt.command(["events", "--interval", "100ms", id]);
        let child = command.stdout(file).spawn();
        let stream = EventStream {
            child: child.expect("spawning events"),
            out,
            _dir: dir,
        };
        wait_until("events prints stats", || {
            stream.events().iter().any(|e| e["type"] == "stats")
        });
        stream
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let parsed = text.lines().map(serde_json::from_str::<Value>);
        parsed.filter_map(Result::ok).collect()
    }

    fn saw_oom(&self, id: &str) -> bool {
        let oom = |e: &Value| e["type"] == "oom" && e["id"] == id;
        self.events().iter().any(oom)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 32 MiB of memory and no swap beyond it.
fn memory_32m() -> Value {
    json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}})
}

/// `create`, an event stream, then `start`.
fn start_watched(rt: &Runtime, bundle: &Bundle) -> (String, EventStream) {
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", bundle_arg(bundle), &id])
        .assert_success();
    let events = EventStream::spawn(rt, &id);
    rt.cmd(["start", &id]).assert_success();
    (id, events)
}

#[test]
fn memory_limit_oom_kills_an_allocating_process() {
    let rt = Runtime::new();
    let bundle = with_resources(sh(ALLOCATE), memory_32m());
    run_once(&rt, &bundle).assert_code(128 + libc::SIGKILL);
}

#[test]
fn events_report_an_oom_kill_in_the_container() {
    let rt = Runtime::new();
    let script = format!("sh -c '{ALLOCATE}'; echo $? > /tmp/status; exec {CHECKER} sleep 600");
    let bundle = with_resources(sh(&script), memory_32m());
    let (id, events) = start_watched(&rt, &bundle);
    let status = bundle.rootfs().join("tmp/status");
    wait_until("the allocation ends", || read_number(&status).is_some());
    assert_eq!(read_number(&status), Some(137), "the allocation's status");
    wait_until("events reports an oom", || events.saw_oom(&id));
    // Only the allocating child was killed; the container goes on.
    assert_eq!(rt.state(&id)["status"], "running");
    let memory = &stats(&rt, &id)["data"]["memory"]["usage"];
    assert_eq!(memory["limit"], 32 * MIB, "{memory}");
    let peak = memory["max"].as_u64().unwrap();
    assert!((16 * MIB..=32 * MIB).contains(&peak), "{memory}");
    let memsw = Limit::MemoryPlusSwap.of(&format!("/bulwark/{id}"));
    assert_eq!(memsw, Some(Setting::Value(32 * MIB)), "memory plus swap");
    force_delete(&rt, &bundle, &id);
}

#[test]

fn events_report_an_oom_kill_of_the_init() {
    let rt = Runtime::new();
    let bundle = with_resources(sh(ALLOCATE), memory_32m());
    let (id, mut events) = start_watched(&rt, &bundle);
    wait_until("the init is OOM-killed", || {
        rt.state(&id)["status"] == "stopped"
    });
    wait_until("the stream ends", || {
        events.child.try_wait().is_ok_and(|s| s.is_some())
    });
    assert!(events.saw_oom(&id), "no oom event: {:?}", events.events());
    force_delete(&rt, &bundle, &id);
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let rt = Runtime::new();
    let bomb = format!(
        "sh -c 'for i in $(seq 100); do sleep 60 & done' 2>/tmp/err; \
         echo $? > /tmp/status; exec {CHECKER} sleep 600"
    );
    let bundle = with_resources(sh(&bomb), json!({"pids": {"limit": 20}}));
    let id = start_detached(&rt, &bundle);
    let status = bundle.rootfs().join("tmp/status");
    wait_until("the fork bomb ends", || read_number(&status).is_some());
    assert_ne!(read_number(&status), Some(0), "every fork succeeded");
    let err = std::fs::read_to_string(bundle.rootfs().join("tmp/err")).unwrap();
    assert!(err.contains("can't fork"), "{err}");
    let pids = ps(&rt, &id);
    assert!((10..=20).contains(&pids.len()), "{pids:?}");
    let counted = &stats(&rt, &id)["data"]["pids"];
    assert_eq!(counted["limit"], 20, "{counted}");
    assert!(counted["current"].as_u64().unwrap() <= 20, "{counted}");
    force_delete(&rt, &bundle, &id);
}

#[test]
fn cpu_quota_bounds_the_cpu_time_used() {
    let rt = Runtime::new();
    let cpu = json!({"cpu": {"quota": 20000, "period": 100000}});
    let bundle = with_resources(sh("while :; do :; done"), cpu);
    let id = start_detached(&rt, &bundle);
    let path = format!("/bulwark/{id}");
    assert_eq!(Limit::CpuQuota.of(&path), Some(Setting::Value(20000)));
    assert_eq!(Limit::CpuPeriod.of(&path), Some(Setting::Value(100000)));
    let window = Duration::from_secs(2);
    let limited = cpu_fraction(&rt, &id, window);
    // 0.2 cpu allowed; the same loop left alone takes up to a whole one.
    assert!(limited > 0.0 && limited < 0.35, "{limited:.2} cpu");
    rt.cmd(["update", "--cpu-quota=-1", &id]).assert_success();
    assert_eq!(Limit::CpuQuota.of(&path), Some(Setting::Unlimited));
    let unlimited = cpu_fraction(&rt, &id, window);
    let quotas = format!("without the quota {unlimited:.2} cpu, with it {limited:.2}");
    assert!(unlimited > limited * 1.5, "{quotas}");
    force_delete(&rt, &bundle, &id);
}

const FUSE: (u64, u64) = (10, 229);

/// An allow rule; `minor: None` is every minor.
fn allow(kind: &str, major: u64, minor: Option<u64>, access: &str) -> Value {
    json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access})
}

/// runc's default device rules (deny all but the standard devices), then `extra`.
fn device_rules(extra: Value) -> Value {
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    rules.extend([3, 5, 7, 8, 9].map(|minor| allow("c", 1, Some(minor), "rwm")));
    rules.extend([0, 1, 2].map(|minor| allow("c", 5, Some(minor), "rwm")));
    rules.extend([allow("c", 136, None, "rwm"), extra]);
    json!(rules)
}

/// Device nodes the test makes on the host, in a tmpfs of their own: the temp dir may be
/// on a `nodev` mount (the v2 guest's /tmp is), where every node opens with EACCES before
/// the cgroup's rules are asked. Nor does the host's /dev always have the node (the v2
/// guest has no /dev/fuse until the fuse module is loaded).
struct DeviceNodes {
    dir: TempDir,
}

impl DeviceNodes {
    fn new() -> DeviceNodes {
        let dir = TempDir::new();
        let data = Some("mode=0755");
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            data,
        )
        .expect("mounting a tmpfs for device nodes");
        DeviceNodes { dir }
    }

    /// Makes the node `name` (mode 0600).
    fn make(&self, name: &str, kind: SFlag, (major, minor): (u64, u64)) {
        let node = self.dir.path().join(name);
        let mode = Mode::from_bits_truncate(0o600);
        mknod(&node, kind, mode, makedev(major, minor)).expect("mknod on the host");
    }

    /// A bind mount of the node `name` at `destination` in the container.
    fn mount(&self, name: &str, destination: &str) -> Value {
        let source = self.dir.path().join(name);
        json!({"destination": destination, "type": "bind",
            "source": source.to_str().unwrap(), "options": ["bind"]})
    }
}

impl Drop for DeviceNodes {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), MntFlags::MNT_DETACH);
    }
}

/// What opening a fuse node (made on the host and bind-mounted in, so only the cgroup's
/// device rules stand between the container and it) and /dev/null read-write says, with
/// `rules` (`null`: none) as the container's device rules.
fn open_fuse_and_null(rt: &Runtime, rules: Value) -> Vec<String> {
    let nodes = DeviceNodes::new();
    nodes.make("fuse", SFlag::S_IFCHR, FUSE);
    let script = format!("{CHECKER} open /mnt/fuse rw; {CHECKER} open /dev/null rw");
    let bundle = bundle(sh(&script), |c| {
        push(c, "/mounts", nodes.mount("fuse", "/mnt/fuse"));
        if !rules.is_null() {
            c["linux"]["resources"] = json!({ "devices": rules });
        }
    });
    stdout_lines(rt, &bundle)
}

#[test]
fn device_rules_decide_whether_a_device_opens() {
    let rt = Runtime::new();
    let fuse = |access| device_rules(allow("c", FUSE.0, Some(FUSE.1), access));
    // Granted only mknod: opening is denied.
    assert_eq!(open_fuse_and_null(&rt, fuse("m")), ["EPERM", "ok"]);
    assert_eq!(open_fuse_and_null(&rt, fuse("rwm")), ["ok", "ok"]);
    // Without rules, the defaults deny every device but the standard ones.
    assert_eq!(open_fuse_and_null(&rt, Value::Null), ["EPERM", "ok"]);
}

/// Listing a device in linux.devices also allows it in the cgroup, as runc does (this is
/// how `docker run --device` works).
#[test]
fn listed_devices_are_allowed() {
    let rt = Runtime::new();
    let bundle = bundle(sh(&format!("{CHECKER} open /dev/fuse rw")), |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": FUSE.0,
            "minor": FUSE.1, "fileMode": 0o666, "uid": 0, "gid": 0}]);
        c["linux"]["resources"] = json!({ "devices": [{"allow": false, "access": "rwm"}] });
    });
    assert_eq!(stdout_lines(&rt, &bundle), ["ok"]);
}

#[test]
fn device_rules_denying_listed_devices_still_start() {
    let rt = Runtime::new();
    let deny_all = json!([{"allow": false, "access": "rwm"}]);
    assert_eq!(open_fuse_and_null(&rt, deny_all), ["EPERM", "ok"]);
}

#[test]
fn default_device_rules_deny_a_disk() {
    let rt = Runtime::new();
    // sda (b 8:0): a node made on the host and bind-mounted in, and one the container
    // tries to make itself.
    let nodes = DeviceNodes::new();
    nodes.make("sda", SFlag::S_IFBLK, (8, 0));
    let script =
        format!("mknod /tmp/sda b 8 0 && {CHECKER} open /tmp/sda r; {CHECKER} open /disk/sda r");
    let tmp = json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"});
    let disk = nodes.mount("sda", "/disk/sda");
    let opens = |rules: Value| {
        let bundle = bundle(sh(&script), |c| {
            for set in ["bounding", "effective", "permitted"] {
                push(
                    c,
                    &format!("/process/capabilities/{set}"),
                    json!("CAP_MKNOD"),
                );
            }
            push(c, "/mounts", tmp.clone());
            push(c, "/mounts", disk.clone());
            if !rules.is_null() {
                c["linux"]["resources"] = json!({ "devices": rules });
            }
        });
        stdout_lines(&rt, &bundle)
    };
    // Whether or not the container may mknod, no sda node opens: the rules say EPERM.
    let denied = opens(Value::Null);
    assert!(
        !denied.is_empty() && denied.iter().all(|l| l == "EPERM"),
        "{denied:?}"
    );
    // Allowed, the same opens reach the block layer (ENXIO where there is no such disk):
    // the rules are what refused them, not the mounts (a nodev mount says EACCES).
    let allowed = opens(device_rules(allow("b", 8, Some(0), "rwm")));
    let refused = |l: &String| l == "EPERM" || l == "EACCES";
    assert!(
        allowed.len() == 2 && !allowed.iter().any(refused),
        "{allowed:?}"
    );
}

const FORK_20: &str = "for i in $(seq 20); do sleep 60 & done";

#[test]
fn update_changes_a_running_containers_limits() {
    let rt = Runtime::new();
    let bundle = bundle(json!(SLEEP), |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 10}});
        push(c, "/linux/namespaces", json!({"type": "cgroup"}));
        let options = ["nosuid", "noexec", "nodev", "ro"];
        let mount = json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
            "source": "cgroup", "options": options});
        push(c, "/mounts", mount);
    });
    let id = start_detached(&rt, &bundle);
    let fork_20 = || rt.cmd(["exec", &id, "sh", "-c", FORK_20]);
    let refused = fork_20();
    refused.assert_failure();
    assert!(refused.stderr.contains("can't fork"), "{refused}");

    rt.cmd(["update", "--pids-limit=50", &id]).assert_success();
    let path = format!("/bulwark/{id}");
    let pids_max = || Limit::Pids.of(&path);
    assert_eq!(pids_max(), Some(Setting::Value(50)));
    // In the cgroup namespace the container's cgroup is the root of its view.
    let inside = controller_file("/sys/fs/cgroup", "pids", "", "pids.max");
    let inside = rt.cmd(["exec", &id, CHECKER, "cat", inside.to_str().unwrap()]);
    assert_eq!(inside.stdout.trim(), "50", "{inside}");
    fork_20().assert_success();

    rt.cmd(["update", "--memory", "64m", &id]).assert_success();
    let memory = &stats(&rt, &id)["data"]["memory"]["usage"];
    assert_eq!(memory["limit"], 64 * MIB, "{memory}");
    assert_eq!(Limit::Memory.of(&path), Some(Setting::Value(64 * MIB)));

    let resources = bundle.path().join("resources.json");
    std::fs::write(&resources, r#"{"pids": {"limit": 77}}"#).unwrap();
    let mut update = rt.command(["update", "--resources", "-", &id]);
    update.stdin(std::fs::File::open(&resources).unwrap());
    run_captured(&mut update, Duration::from_secs(60)).assert_success();
    assert_eq!(pids_max(), Some(Setting::Value(77)));

    let bad = rt.cmd(["update", "--cpu-period", "10", &id]);
    bad.assert_failure();
    assert!(bad.stderr.contains("cpu.period"), "{bad}");
    assert_eq!(pids_max(), Some(Setting::Value(77)));
    force_delete(&rt, &bundle, &id);
}

#[test]

fn update_takes_minus_one_as_its_own_argument() {
    let rt = Runtime::new();
    let bundle = with_resources(json!(SLEEP), json!({"memory": {"limit": 64 * MIB}}));
    let id = start_detached(&rt, &bundle);
    rt.cmd(["update", "--memory", "-1", &id]).assert_success();
    force_delete(&rt, &bundle, &id);
}

/// A container counting as fast as it can into rootfs/tmp/n.
fn counter() -> Bundle {
    let count = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done";
    bundle(sh(count), |_| {})
}

fn count(bundle: &Bundle) -> Option<u64> {
    read_number(&bundle.rootfs().join("tmp/n"))
}

#[test]
fn pause_freezes_and_resume_continues() {
    let rt = Runtime::new();
    let bundle = counter();
    let id = start_detached(&rt, &bundle);
    wait_until("the counter runs", || {
        count(&bundle).is_some_and(|n| n > 10)
    });
    rt.cmd(["pause", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "paused");
    rt.cmd(["pause", &id]).assert_failure();
    let frozen = count(&bundle);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(&bundle), frozen, "the counter moved while paused");

    rt.cmd(["resume", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "running");
    rt.cmd(["resume", &id]).assert_failure();
    wait_until("the counter moves again", || count(&bundle) > frozen);
    // delete --force of a paused container.
    rt.cmd(["pause", &id]).assert_success();
    force_delete(&rt, &bundle, &id);
}

#[test]

fn kill_stops_a_paused_container() {
    let rt = Runtime::new();
    let bundle = counter();
    let id = start_detached(&rt, &bundle);
    rt.cmd(["pause", &id]).assert_success();
    rt.cmd(["kill", &id, "KILL"]).assert_success();
    wait_until("the paused container stops", || {
        rt.state(&id)["status"] == "stopped"
    });
    rt.cmd(["delete", &id]).assert_success();
    assert_cgroups_gone(&id);
    rt.assert_clean(&bundle);
}

/// What `cat /proc/self/cgroup` prints in a container at `cgroups_path`.
fn proc_self_cgroup(rt: &Runtime, cgroups_path: &str, cgroupns: bool) -> Vec<(String, String)> {
    let mut bundle = at_path(json!([CHECKER, "cat", "/proc/self/cgroup"]), cgroups_path);
    if cgroupns {
        bundle.edit(|c| push(c, "/linux/namespaces", json!({"type": "cgroup"})));
    }
    cgroup_lines(&run_once(rt, &bundle).assert_success().stdout)
}

#[test]
fn absolute_cgroups_path_with_and_without_a_cgroup_namespace() {
    let rt = Runtime::new();
    let name = rt.unique_id();
    let path = format!("/bulwark-tests/{name}");
    let seen = proc_self_cgroup(&rt, &path, false);
    assert_eq!(seen.len(), hierarchy_count(), "{seen:?}");
    assert!(seen.iter().all(|(_, p)| *p == path), "{seen:?}");
    let seen = proc_self_cgroup(&rt, &path, true);
    assert!(seen.iter().all(|(_, p)| p == "/"), "{seen:?}");
    assert_cgroups_gone(&name);
}

#[test]
fn relative_cgroups_path_starts_at_the_runtimes_cgroup() {
    let rt = Runtime::new();
    let name = rt.unique_id();
    let relative = format!("bulwark-tests-rel/{name}");
    let bundle = at_path(json!(SLEEP), &relative);
    let id = start_detached(&rt, &bundle);
    assert_cgroups_exist(&name);
    let own = cgroup_lines(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", init_pid(&rt, &id))).unwrap();
    for (hierarchy, path) in cgroup_lines(&theirs) {
        let (_, base) = own.iter().find(|(h, _)| *h == hierarchy).unwrap();
        let expected = format!("{}/{relative}", base.trim_end_matches('/'));
        assert_eq!(path, expected, "hierarchy {hierarchy}: {theirs}");
    }
    force_delete(&rt, &bundle, &id);
    assert_cgroups_gone(&name);
}

#[test]
fn nested_cgroups_path_below_another_container() {
    let rt = Runtime::new();
    let outer_name = rt.unique_id();
    let outer_path = format!("/bulwark-tests/{outer_name}");
    let outer = at_path(json!(SLEEP), &outer_path);
    let outer_id = start_detached(&rt, &outer);
    let inner_name = rt.unique_id();
    let inner_path = format!("{outer_path}/pod/{inner_name}");
    let seen = proc_self_cgroup(&rt, &inner_path, false);
    assert!(seen.iter().all(|(_, p)| *p == inner_path), "{seen:?}");
    assert_cgroups_gone(&inner_name);
    assert_cgroups_exist(&outer_name);
    // The outer container's delete takes what the inner one left (pod/) with it.
    force_delete(&rt, &outer, &outer_id);
    assert_cgroups_gone(&outer_name);
}

#[test]
fn cgroups_path_with_dotdot_is_refused() {
    let rt = Runtime::new();
    let escape = rt.unique_id();
    let bundle = at_path(json!(SLEEP), &format!("/bulwark-tests/../{escape}"));
    let out = run_once(&rt, &bundle);
    out.assert_failure();
    assert!(out.stderr.contains("linux.cgroupsPath"), "{out}");
    assert_cgroups_gone(&escape);
}

#[test]
fn a_cgroups_path_in_use_is_refused() {
    let rt = Runtime::new();
    let name = rt.unique_id();
    let path = format!("/bulwark-tests/{name}");
    let with_limit = |limit: i64| {
        bundle(json!(SLEEP), |c| {
            c["linux"]["cgroupsPath"] = json!(path);
            c["linux"]["resources"] = json!({"pids": {"limit": limit}});
        })
    };
    let first = with_limit(20);
    let first_id = start_detached(&rt, &first);
    let second = with_limit(5);
    let second_id = rt.unique_id();
    let refused = rt.cmd(["run", "-d", "--bundle", bundle_arg(&second), &second_id]);
    refused.assert_failure();
    assert!(refused.stderr.contains("linux.cgroupsPath"), "{refused}");
    rt.cmd(["state", &second_id]).assert_failure();
    // The refusal left the first container and its limits alone.
    assert_eq!(rt.state(&first_id)["status"], "running");
    assert_eq!(Limit::Pids.of(&path), Some(Setting::Value(20)));
    assert_cgroups_exist(&name);
    force_delete(&rt, &first, &first_id);
    assert_cgroups_gone(&name);
    rt.assert_clean(&second);
}

#[test]
fn delete_force_cleans_up_after_a_killed_create() {
    let rt = Runtime::new();
    let mut bundle = bundle(json!(SLEEP), |_| {});
    let marker = format!("{}/hook-marker", bundle_arg(&bundle));
    let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("sleep 30; : {marker}")]});
    bundle.edit(|c| c["hooks"] = json!({ "createRuntime": [hook] }));
    let id = rt.unique_id();
    let mut create = rt
        .command(["create", "--bundle", bundle_arg(&bundle), &id])
        .spawn()
        .expect("spawning create");
    let hook_pid = || processes_mentioning(&marker).first().map(|(pid, _)| *pid);
    wait_until("the hook runs", || hook_pid().is_some());
    let _ = create.kill();
    let _ = create.wait();
    // The hook is no container process: end it and its sleep here.
    let hook = hook_pid().expect("the hook");
    let children = std::fs::read_to_string(format!("/proc/{hook}/task/{hook}/children"));
    for child in children.unwrap_or_default().split_whitespace() {
        sigkill(child.parse().unwrap());
    }
    sigkill(hook);

    assert!(rt.root().join(&id).exists(), "no state left to clean up");
    assert_cgroups_exist(&id);
    force_delete(&rt, &bundle, &id);
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn exec_processes_join_the_cgroup_and_kill_all_reaches_them() {
    let rt = Runtime::new();
    let bundle = bundle(json!(SLEEP), |_| {});
    let id = start_detached(&rt, &bundle);
    let init = init_pid(&rt, &id);
    let pid_file = bundle.path().join("exec.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let exec_d = [&["exec", "-d", "--pid-file", pid_arg, &id][..], &SLEEP].concat();
    rt.cmd(exec_d).assert_success();
    let exec: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let pids = ps(&rt, &id);
    assert!(pids.contains(&init) && pids.contains(&exec), "{pids:?}");
    let cgroup_of = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cgroup_of(exec), cgroup_of(init), "in every hierarchy");

    rt.cmd(["kill", "--all", &id, "KILL"]).assert_success();
    wait_until("every process dies", || {
        !Path::new(&format!("/proc/{exec}")).exists() && rt.state(&id)["status"] == "stopped"
    });
    assert_eq!(ps(&rt, &id), Vec::<i32>::new());
    rt.cmd(["delete", &id]).assert_success();
    assert_cgroups_gone(&id);
    rt.assert_clean(&bundle);
}

#[test]
fn events_stats_has_runcs_shape() {
    let rt = Runtime::new();
    let limits = json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 30}});
    let bundle = with_resources(json!(SLEEP), limits);
    let id = start_detached(&rt, &bundle);
    let event = stats(&rt, &id);
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    let data = &event["data"];
    let cpu = &data["cpu"]["usage"];
    assert!(
        ["total", "kernel", "user"].iter().all(|k| cpu[k].is_u64()),
        "{event}"
    );
    let memory = &data["memory"]["usage"];
    let (usage, max) = (memory["usage"].as_u64().unwrap(), memory["max"].as_u64());
    assert!(usage > 0 && max >= Some(usage), "{event}");
    assert_eq!(memory["limit"], 64 * MIB, "{event}");
    assert_eq!(data["pids"]["limit"], 30, "{event}");
    assert_eq!(data["pids"]["current"], 1, "{event}");
    rt.cmd(["events", "--stats", "no-such-id"]).assert_failure();
    force_delete(&rt, &bundle, &id);
}

/// Docker and Podman give containers CAP_MKNOD and rely on the runtime's default device
/// rules allowing `mknod` of any node (runc's `c *:* m` and `b *:* m`); opening one is
/// still decided by the rules.
#[test]
fn any_device_node_may_be_made_but_only_allowed_ones_opened() {
    let rt = Runtime::new();
    let script = format!(
        "for node in 'c 1 1' 'b 7 0' 'c 1 3'; do set -- $node; \
         mknod /dev/n$2$3 $1 $2 $3 && echo made && {CHECKER} open /dev/n$2$3 r; done"
    );
    let bundle = bundle(sh(&script), |c| {
        for set in ["bounding", "effective", "permitted"] {
            push(
                c,
                &format!("/process/capabilities/{set}"),
                json!("CAP_MKNOD"),
            );
        }
    });
    // /dev/mem and loop0 are made but do not open; /dev/null (allowed) does.
    assert_eq!(
        stdout_lines(&rt, &bundle),
        ["made", "EPERM", "made", "EPERM", "made", "ok"]
    );
}

/// The container's cgroup directories, from the state directory's record.
fn container_cgroups(rt: &Runtime, id: &str) -> Vec<PathBuf> {
    let record = std::fs::read(rt.root().join(id).join("cgroups.json")).expect("cgroups.json");
    serde_json::from_slice(&record).expect("a list of directories")
}

/// `exec --detach --pid-file ... ARGS id sleep`; the exec'd process's `/proc/PID/cgroup`.
fn exec_cgroups(rt: &Runtime, id: &str, args: &[&str]) -> Result<Vec<(String, String)>, Output> {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    let mut command = vec!["exec", "--detach", "--pid-file", pid_file.to_str().unwrap()];
    command.extend(args);
    command.extend([id, CHECKER, "sleep", "600"]);
    let out = rt.cmd(command);
    if !out.success() {
        return Err(out);
    }
    let pid = std::fs::read_to_string(&pid_file).expect("the pid file");
    let text = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    sigkill(pid.trim().parse().unwrap());
    Ok(cgroup_lines(&text))
}

#[test]
fn exec_runs_in_a_sub_cgroup_given_with_dash_dash_cgroup() {
    let rt = Runtime::new();
    let name = rt.unique_id();
    let path = format!("/bulwark-tests/{name}");
    let bundle = at_path(json!(SLEEP), &path);
    let id = start_detached(&rt, &bundle);
    for dir in container_cgroups(&rt, &id) {
        std::fs::create_dir(dir.join("sub")).unwrap();
        // A new v1 cpuset cgroup has no CPUs or memory nodes until given its parent's.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(dir.join(file)) {
                std::fs::write(dir.join("sub").join(file), value).unwrap();
            }
        }
    }
    let seen = exec_cgroups(&rt, &id, &["--cgroup", "sub"]).unwrap();
    assert_eq!(seen.len(), hierarchy_count(), "{seen:?}");
    assert!(
        seen.iter().all(|(_, p)| *p == format!("{path}/sub")),
        "{seen:?}"
    );
    let memory_only = exec_cgroups(&rt, &id, &["--cgroup", "memory:sub"]);
    match layout() {
        Layout::V1 => {
            // Only the memory hierarchy's line shows the sub-cgroup.
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
            let memory_id = own
                .lines()
                .find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|c| c == "memory"))
                })
                .and_then(|l| l.split(':').next())
                .unwrap()
                .to_owned();
            for (hierarchy, p) in memory_only.unwrap() {
                let expected = if hierarchy == memory_id {
                    format!("{path}/sub")
                } else {
                    path.clone()
                };
                assert_eq!(p, expected, "hierarchy {hierarchy}");
            }
        }
        Layout::V2 => {
            let out = memory_only.unwrap_err();
            assert!(out.stderr.contains("--cgroup"), "{out}");
        }
    }
    // A sub-cgroup that does not exist, or one outside the container's, is refused.
    for bad in ["missing", "../.."] {
        let out = exec_cgroups(&rt, &id, &["--cgroup", bad]).unwrap_err();
        assert!(
            out.stderr.contains("--cgroup") && out.stderr.contains(bad),
            "{out}"
        );
    }
    for dir in container_cgroups(&rt, &id) {
        wait_until("the exec'd processes leave", || {
            std::fs::remove_dir(dir.join("sub")).is_ok()
        });
    }
    force_delete(&rt, &bundle, &id);
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused_and_runs_once_resumed() {
    let rt = Runtime::new();
    let bundle = counter();
    let id = start_detached(&rt, &bundle);
    rt.cmd(["pause", &id]).assert_success();
    let refused = rt.cmd(["exec", &id, "true"]);
    refused.assert_failure();
    assert!(refused.stderr.contains("--ignore-paused"), "{refused}");
    let marker = bundle.rootfs().join("tmp/exec-ran");
    let exec = bulwark_tests::Spawned::new(&mut rt.command([
        "exec",
        "--ignore-paused",
        &id,
        "sh",
        "-c",
        "echo ran > /tmp/exec-ran",
    ]))
    .unwrap();
    // The exec'd process is born frozen with the rest of the container.
    assert!(!marker.exists());
    rt.cmd(["resume", &id]).assert_success();
    exec.finish(bulwark_tests::default_timeout())
        .assert_success();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    force_delete(&rt, &bundle, &id);
}
