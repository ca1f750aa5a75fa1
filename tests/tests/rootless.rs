//! bulwark-runtime run by a real user without root (made by the tests: see
//! `bulwark_tests::rootless`). It creates the user namespace itself, maps ids beyond its
//! own with `newuidmap`/`newgidmap` from `/etc/subuid` and `/etc/subgid`, keeps its state
//! under `$XDG_RUNTIME_DIR`, uses cgroups only where a subtree is delegated to the user
//! (and says how to delegate one when a limit needs it), and keeps its own binary out of
//! the container's reach. Runs on v1/hybrid here and on pure cgroup v2 in the guest.
use std::path::Path;

use bulwark_tests::rootless::{cgroup_v2, owner, Delegated, User, SUBORDINATE};
use bulwark_tests::{field, spec_bundle, wait_until, Bundle, Runtime, CHECKER};
use serde_json::{json, Value};

fn sh(script: &str) -> Value {
    json!(["/bin/sh", "-c", script])
}

/// Container root is the user; with `subordinate`, ids from 1 take the user's ranges.
fn mappings(user: &User, subordinate: bool) -> (Value, Value) {
    let map = |own: u32| {
        let mut entries = vec![json!({"containerID": 0, "hostID": own, "size": 1})];
        if subordinate {
            let (start, size) = SUBORDINATE;
            entries.push(json!({"containerID": 1, "hostID": start, "size": size}));
        }
        Value::Array(entries)
    };
    (map(user.uid), map(user.gid))
}

/// The tests' default bundle in a user namespace of the user's own, given to the user;
/// `edit` changes it further.
fn bundle(user: &User, subordinate: bool, edit: impl FnOnce(&mut Value)) -> Bundle {
    let bundle = Bundle::with(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let (uids, gids) = mappings(user, subordinate);
        c["linux"]["uidMappings"] = uids;
        c["linux"]["gidMappings"] = gids;
        // gid 5 (tty) is not mapped when only the user's own gid is.
        c["mounts"][2]["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620"
        ]);
        edit(c);
    });
    bundle.give_to(user.uid, user.gid);
    bundle
}

#[test]
fn a_user_without_root_runs_the_rootless_hardened_spec() {
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    let script = r#"
        echo "uid: $(id -u)"
        echo "maps: $(tr -s ' ' < /proc/self/uid_map | tr '\n' ';')"
        grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
        echo made > /tmp/by-root && echo "write: ok"
        touch /tmp/by-1000 && chown 1000:1000 /tmp/by-1000 && echo "chown: ok"
        echo "nproc: $(ulimit -u)"
        echo "mount: $(mount -t tmpfs none /mnt >/dev/null 2>&1 && echo allowed || echo denied)"
        mkdir -p /www && echo 'hello from httpd' > /www/index.html
        httpd -p 8080 -h /www && sleep 0.3
        echo "served: $(wget -q -O - http://127.0.0.1:8080/)"
    "#;
    let bundle = spec_bundle(&rt, None, &["/bin/sh", "-c", script]);
    let config = bundle.config();
    assert!(
        config["annotations"].get("bulwark.rootfs.idmap").is_none(),
        "a rootless config needs no idmapped rootfs: {config}"
    );
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let text = out.stdout.as_str();
    assert_eq!(field(text, "uid"), "0");
    let (start, size) = SUBORDINATE;
    assert_eq!(
        field(text, "maps"),
        format!(" 0 {} 1; 1 {start} {size};", user.uid).trim_start(),
        "root is the user, ids from 1 the user's subordinate range"
    );
    let eff = u64::from_str_radix(field(text, "CapEff"), 16).unwrap();
    assert_eq!(eff & (1 << 21), 0, "no CAP_SYS_ADMIN: {text}");
    assert_eq!(eff & (1 << 13), 0, "no CAP_NET_RAW: {text}");
    assert_eq!(field(text, "NoNewPrivs"), "1");
    assert_eq!(field(text, "Seccomp"), "2");
    assert_eq!(field(text, "write"), "ok");
    assert_eq!(field(text, "chown"), "ok");
    assert_eq!(
        field(text, "nproc"),
        "4096",
        "the pids bound as RLIMIT_NPROC"
    );
    assert_eq!(field(text, "mount"), "denied");
    assert_eq!(field(text, "served"), "hello from httpd");
    // On the host: container root wrote as the user, container uid 1000 as its range.
    let tmp = bundle.rootfs().join("tmp");
    assert_eq!(owner(&tmp.join("by-root")), user.uid);
    assert_eq!(owner(&tmp.join("by-1000")), start + 999);
    rt.assert_clean(&bundle);
}

#[test]
fn a_fork_bomb_over_many_container_uids_stays_within_the_process_limit() {
    // The kernel counts RLIMIT_NPROC per uid in the namespace: container root could fork
    // the limit under each uid it maps, unless the namespace was made under that limit.
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    // The four start together, once this shell has forked all of them (its own forks
    // fall under the same limit): they wait, with shell builtins only, for /tmp/go.
    let script = format!(
        "for u in 1000 1001 1002 1003; do \
         {CHECKER} as $u /bin/sh -c 'while [ ! -e /tmp/go ]; do :; done; exec {CHECKER} forks 30 3' \
         > /tmp/forks-$u & done; : > /tmp/go; wait; cat /tmp/forks-*"
    );
    let b = bundle(user, true, |c| {
        c["process"]["args"] = sh(&script);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NPROC", "soft": 40, "hard": 40}]);
        let caps = json!(["CAP_SETUID", "CAP_SETGID", "CAP_KILL"]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    let out = rt.run(&b, &rt.unique_id());
    out.assert_success();
    // Each uid reports `forked N stopped by E`, or just EAGAIN when the kernel already
    // refused its exec (PF_NPROC_EXCEEDED: the limit was reached when it switched uid).
    let forked: Vec<u32> = out
        .stdout
        .lines()
        .map(|l| match l.strip_prefix("forked ") {
            Some(rest) => rest.split(' ').next().and_then(|n| n.parse().ok()),
            None => (l.trim() == "EAGAIN").then_some(0),
        })
        .collect::<Option<_>>()
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    assert_eq!(forked.len(), 4, "every uid reported: {out}");
    let total: u32 = forked.iter().sum();
    assert!(
        total < 40,
        "{total} forks under 4 uids with RLIMIT_NPROC 40: {out}"
    );
    assert!(out.stdout.contains("stopped by EAGAIN"), "{out}");
    rt.assert_clean(&b);
}

#[test]
fn only_the_users_own_ids_need_no_helper() {
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    let script = "echo \"setgroups: $(cat /proc/self/setgroups)\"; echo \"map: $(tr -s ' ' < /proc/self/gid_map)\"";
    let plain = bundle(user, false, |c| c["process"]["args"] = sh(script));
    let out = rt.run(&plain, &rt.unique_id());
    out.assert_success();
    // The kernel's condition for an unprivileged gid map.
    assert_eq!(field(&out.stdout, "setgroups"), "deny");
    assert_eq!(field(&out.stdout, "map"), format!("0 {} 1", user.gid));
    rt.assert_clean(&plain);
    // ...so no supplementary groups can be given.
    let groups = bundle(user, false, |c| {
        c["process"]["user"]["additionalGids"] = json!([0]);
    });
    let out = rt.run(&groups, &rt.unique_id());
    out.assert_failure();
    assert!(
        out.stderr.contains("process.user.additionalGids") && out.stderr.contains("setgroups"),
        "{out}"
    );
    rt.assert_clean(&groups);
}

#[test]
fn what_a_user_cannot_do_is_refused_and_nothing_is_left() {
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "ids outside the user's ranges",
            Box::new(|c| c["linux"]["uidMappings"][1]["hostID"] = json!(900_000)),
            &["linux.uidMappings", "newuidmap", "/etc/subuid"],
        ),
        (
            "no user namespace",
            Box::new(|c| {
                c["linux"]["namespaces"].as_array_mut().unwrap().pop();
                c["linux"].as_object_mut().unwrap().remove("uidMappings");
                c["linux"].as_object_mut().unwrap().remove("gidMappings");
            }),
            &["linux.namespaces", "user namespace", "spec --rootless"],
        ),
        (
            "an idmapped rootfs",
            Box::new(|c| c["annotations"] = json!({"bulwark.rootfs.idmap": "true"})),
            &["bulwark.rootfs.idmap", "without root"],
        ),
    ];
    for (what, edit, words) in cases {
        let b = bundle(user, true, |c| edit(c));
        let out = rt.run(&b, &rt.unique_id());
        out.assert_failure();
        for word in words {
            assert!(out.stderr.contains(word), "{what}: no {word:?} in {out}");
        }
        rt.assert_clean(&b);
    }
}

#[test]
fn the_lifecycle_works_as_a_user_with_state_under_xdg_runtime_dir() {
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    let b = bundle(user, true, |c| {
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
    });
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", b.path().to_str().unwrap(), &id])
        .assert_success();
    let state_dir = rt.root().join(&id);
    assert!(state_dir.is_dir(), "{} missing", state_dir.display());
    assert_eq!(owner(&state_dir), user.uid);
    assert_eq!(rt.state(&id)["status"], "created");
    assert_eq!(rt.list(), std::slice::from_ref(&id));
    rt.cmd(["start", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "running");
    let exec = rt.cmd([
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; tr -s ' ' < /proc/self/uid_map",
    ]);
    exec.assert_success();
    let (start, size) = SUBORDINATE;
    assert_eq!(
        exec.stdout.split_whitespace().collect::<Vec<_>>(),
        [
            "0",
            "0",
            &user.uid.to_string(),
            "1",
            "1",
            &start.to_string(),
            &size.to_string()
        ],
        "exec joins the container's user namespace: {exec}"
    );
    let as_1000 = rt.cmd(["exec", "--user", "1000:1000", &id, "id", "-u"]);
    assert_eq!(as_1000.assert_success().stdout.trim(), "1000");
    let ps = rt.cmd(["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(&ps.assert_success().stdout).unwrap();
    assert!(!pids.is_empty(), "{ps}");
    rt.cmd(["kill", &id, "KILL"]).assert_success();
    wait_until("the container to stop", || {
        rt.state(&id)["status"] == "stopped"
    });
    rt.cmd(["delete", &id]).assert_success();
    rt.assert_clean(&b);
    // Without XDG_RUNTIME_DIR (and no --root) there is nowhere to keep state.
    let out = bulwark_tests::run_captured(
        rt.command(["list"]).env_remove("XDG_RUNTIME_DIR"),
        bulwark_tests::default_timeout(),
    );
    out.assert_failure();
    assert!(out.stderr.contains("XDG_RUNTIME_DIR"), "{out}");
}

/// `run --detach` of `b` as container `id`, which must succeed.
#[track_caller]
fn run_detached(rt: &Runtime, b: &Bundle, id: &str) {
    rt.cmd([
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        id,
    ])
    .assert_success();
}

/// The directory of container `id` in the hierarchy of `controller` below `parent`.
fn cgroup_file(parent: &Path, id: &str, file: &str) -> String {
    let path = parent.join(id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn a_limit_without_a_delegated_cgroup_is_refused_and_says_how_to_delegate() {
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    let limited = bundle(user, true, |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 20}});
    });
    let id = rt.unique_id();
    let out = rt.run(&limited, &id);
    out.assert_failure();
    for word in [
        "linux.resources.pids.limit",
        "delegated",
        "linux.cgroupsPath",
    ] {
        assert!(out.stderr.contains(word), "no {word:?} in {out}");
    }
    rt.assert_clean(&limited);
    // Without limits it runs, with no cgroup of its own.
    let plain = bundle(user, true, |c| c["process"]["args"] = sh("echo ran"));
    let out = rt.run(&plain, &rt.unique_id());
    assert_eq!(out.assert_success().stdout.trim(), "ran");
    rt.assert_clean(&plain);
}

#[test]
fn a_delegated_cgroup_bounds_a_fork_bomb_and_can_be_paused_and_updated() {
    let user = User::get();
    let mut rt = Runtime::as_user(user.uid, user.gid);
    let mut delegated = Delegated::to(user);
    if cgroup_v2() {
        // cgroup v2 moves a process only within a subtree whose top the mover may write.
        let runner = delegated.child("runtime", user);
        rt.start_in_cgroup(&runner);
    }
    let id = rt.unique_id();
    let bomb = format!(
        "sh -c 'for i in $(seq 100); do sleep 60 & done' 2>/tmp/err; \
         echo $? > /tmp/status; exec {CHECKER} sleep 600"
    );
    let path = format!("/{}/{id}", delegated.name);
    let b = bundle(user, true, |c| {
        c["process"]["args"] = sh(&bomb);
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"] = json!({"pids": {"limit": 20}});
    });
    run_detached(&rt, &b, &id);
    let status = b.rootfs().join("tmp/status");
    wait_until("the fork bomb to end", || {
        std::fs::read_to_string(&status).is_ok_and(|s| !s.trim().is_empty())
    });
    assert_ne!(
        std::fs::read_to_string(&status).unwrap().trim(),
        "0",
        "every fork succeeded"
    );
    let err = std::fs::read_to_string(b.rootfs().join("tmp/err")).unwrap();
    assert!(err.contains("can't fork"), "{err}");
    let pids_dir = delegated.dir_for("pids");
    assert_eq!(cgroup_file(&pids_dir, &id, "pids.max"), "20");
    rt.cmd(["pause", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "paused");
    rt.cmd(["resume", &id]).assert_success();
    assert_eq!(rt.state(&id)["status"], "running");
    rt.cmd(["update", "--pids-limit", "30", &id])
        .assert_success();
    assert_eq!(cgroup_file(&pids_dir, &id, "pids.max"), "30");
    let events = rt.cmd(["events", "--stats", &id]);
    let stats: Value = serde_json::from_str(events.assert_success().stdout.trim()).unwrap();
    assert_eq!(stats["data"]["pids"]["limit"], 30, "{stats}");
    rt.cmd(["delete", "--force", &id]).assert_success();
    assert!(!pids_dir.join(&id).exists(), "delete leaves the cgroup");
    rt.assert_clean(&b);
}

#[test]
fn on_cgroup_v2_the_default_cgroup_is_in_the_delegated_subtree_the_runtime_runs_in() {
    if !cgroup_v2() {
        eprintln!("skipped: the runtime finds its delegated subtree by itself on cgroup v2 only");
        return;
    }
    let user = User::get();
    let mut rt = Runtime::as_user(user.uid, user.gid);
    let mut delegated = Delegated::to(user);
    // From outside the subtree a process may not be moved into it: refused, and why.
    let id = rt.unique_id();
    let inside = format!("/{}/{id}", delegated.name);
    let b = bundle(user, true, |c| {
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
        c["linux"]["resources"] = json!({"pids": {"limit": 50}});
        c["linux"]["cgroupsPath"] = json!(inside);
    });
    let outside = rt.run(&b, &id);
    outside.assert_failure();
    assert!(outside.stderr.contains("common ancestor"), "{outside}");
    rt.assert_clean(&b);
    // From inside, and with no cgroupsPath: bulwark/<id> at the top of the subtree.
    let mut b = b;
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let runner = delegated.child("runtime", user);
    rt.start_in_cgroup(&runner);
    let id = rt.unique_id();
    run_detached(&rt, &b, &id);
    let parent = delegated.dir_for("pids").join("bulwark");
    assert_eq!(cgroup_file(&parent, &id, "pids.max"), "50");
    rt.cmd(["delete", "--force", &id]).assert_success();
    assert!(!parent.join(&id).exists());
    rt.assert_clean(&b);
}

/// The verdict of a CVE-2019-5736 probe against the runtime `rt` runs: a startContainer
/// hook holds `/proc/1/exe` (the runtime, as pid 1 still is) and, once no runtime runs
/// that file, tries to write to it (the same byte back). Retries while it is busy.
fn overwrite_verdict(rt: &Runtime, user: &User) -> String {
    let probe = format!(
        "exec 3</proc/1/exe; (i=0; while [ $i -lt 100 ]; do r=$({CHECKER} rewrite /proc/self/fd/3); \
         [ \"$r\" != ETXTBSY ] && break; sleep 0.1; i=$((i+1)); done; echo \"$r\" > /tmp/verdict; \
         mv /tmp/verdict /tmp/result) >/dev/null 2>&1 &"
    );
    let b = bundle(user, true, |c| {
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", probe]}]});
    });
    let id = rt.unique_id();
    run_detached(rt, &b, &id);
    let result = b.rootfs().join("tmp/result");
    wait_until("the probe's verdict", || result.exists());
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&b);
    std::fs::read_to_string(&result).unwrap().trim().to_string()
}

#[test]
fn the_runtime_binary_is_out_of_the_containers_reach() {
    let user = User::get();
    // A root-owned binary: container root (the user on the host) may not write it.
    let shared = Runtime::as_user(user.uid, user.gid);
    assert_eq!(overwrite_verdict(&shared, user), "EACCES");
    // The user's own binary: the runtime re-executes from a sealed copy.
    let own = Runtime::as_user_with(user.uid, user.gid, |dir| {
        let copy = dir.join("bulwark-runtime");
        std::fs::copy(bulwark_tests::runtime_binary(), &copy).unwrap();
        std::os::unix::fs::chown(&copy, Some(user.uid), Some(user.gid)).unwrap();
        copy
    });
    assert_eq!(
        overwrite_verdict(&own, user),
        "EPERM",
        "writing the user's own runtime binary through /proc/1/exe"
    );
}
