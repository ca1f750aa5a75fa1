//! `linux.seccomp` end to end: every action, every argument operator, the default errno,
//! ENOSYS for syscalls newer than the profile, the filter on exec'd processes, the
//! runtime's own setup left unfiltered, a notify agent receiving the listener fd, and the
//! cache of compiled programs.
//! Probes make real system calls (`bulwark-check syscall NR ARGS`) under the filter.
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use bulwark_tests::{wait_until, Bundle, Runtime, TempDir, CHECKER};
use serde_json::{json, Value};

/// Syscalls that ignore their arguments, so a filter can match any argument values.
const GETPPID: i64 = libc::SYS_getppid;
const GETPGRP: i64 = libc::SYS_getpgrp;
const GETUID: i64 = libc::SYS_getuid;
const GETGID: i64 = libc::SYS_getgid;
const GETEUID: i64 = libc::SYS_geteuid;
const GETEGID: i64 = libc::SYS_getegid;
const GETTID: i64 = libc::SYS_gettid;

fn with_seccomp(seccomp: Value) -> Bundle {
    Bundle::with(|c| {
        c["linux"]["seccomp"] = seccomp;
        c["process"]["args"] = json!([CHECKER, "sleep", "600"]);
    })
}

/// `bulwark-check syscall NR ARGS...` exec'd in container `id`: its one-line answer.
fn call(rt: &Runtime, id: &str, nr: i64, args: &[u64]) -> String {
    let mut argv = vec![
        "exec".to_string(),
        id.to_string(),
        CHECKER.to_string(),
        "syscall".into(),
        nr.to_string(),
    ];
    argv.extend(args.iter().map(u64::to_string));
    let out = rt.cmd(&argv);
    match out.code() {
        Some(0) => out.stdout.trim().to_string(),
        Some(code) => format!("exit {code}: {}", out.stderr.trim()),
        None => format!("{}", out.status),
    }
}

fn rule(names: &[&str], action: &str, extra: Value) -> Value {
    let mut rule = json!({"names": names, "action": action});
    rule.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    rule
}

#[test]
fn every_action_does_what_it_says() {
    let rt = Runtime::new();
    let bundle = with_seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            rule(&["getppid"], "SCMP_ACT_ERRNO", json!({"errnoRet": libc::EXDEV})),
            rule(&["getpgrp"], "SCMP_ACT_ERRNO", json!({})),
            rule(&["getuid"], "SCMP_ACT_KILL_PROCESS", json!({})),
            rule(&["getgid"], "SCMP_ACT_KILL", json!({})),
            rule(&["geteuid"], "SCMP_ACT_TRAP", json!({})),
            rule(&["getegid"], "SCMP_ACT_LOG", json!({})),
            // No tracer is attached: the kernel answers ENOSYS.
            rule(&["gettid"], "SCMP_ACT_TRACE", json!({"errnoRet": 7})),
        ]
    }));
    let id = rt.run_detached(&bundle);
    assert_eq!(call(&rt, &id, GETPPID, &[]), "EXDEV");
    assert_eq!(
        call(&rt, &id, GETPGRP, &[]),
        "EPERM",
        "errnoRet defaults to EPERM"
    );
    // Killed by SIGSYS: the foreground exec exits 128 + 31.
    let sigsys = format!("exit {}:", 128 + libc::SIGSYS);
    for (nr, what) in [
        (GETUID, "KILL_PROCESS"),
        (GETGID, "KILL"),
        (GETEUID, "TRAP"),
    ] {
        let answer = call(&rt, &id, nr, &[]);
        assert!(answer.starts_with(&sigsys), "{what}: {answer}");
    }
    assert_eq!(call(&rt, &id, GETEGID, &[]), "ok 0");
    assert_eq!(call(&rt, &id, GETTID, &[]), "ENOSYS");
    let report: Value = serde_json::from_str(
        &rt.cmd(["exec", &id, CHECKER, "report"])
            .assert_success()
            .stdout,
    )
    .unwrap();
    assert_eq!(report["seccomp"], 2, "the exec'd process is in filter mode");
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn the_seven_argument_operators_and_repeated_indices() {
    let rt = Runtime::new();
    let errno = |e: i32, args: Value| json!({"errnoRet": e, "args": args});
    let arg = |index: u32, op: &str, value: u64| json!({"index": index, "value": value, "op": op});
    let bundle = with_seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            rule(&["getppid"], "SCMP_ACT_ERRNO", errno(libc::E2BIG, json!([arg(0, "SCMP_CMP_EQ", 42)]))),
            rule(&["getpgrp"], "SCMP_ACT_ERRNO", errno(libc::EBADF, json!([arg(1, "SCMP_CMP_NE", 0)]))),
            rule(&["getuid"], "SCMP_ACT_ERRNO", errno(libc::ECHILD, json!([arg(2, "SCMP_CMP_LT", 10)]))),
            rule(&["getgid"], "SCMP_ACT_ERRNO", errno(libc::EAGAIN, json!([arg(3, "SCMP_CMP_LE", 10)]))),
            rule(&["geteuid"], "SCMP_ACT_ERRNO", errno(libc::ENOMEM, json!([arg(4, "SCMP_CMP_GE", 10)]))),
            rule(&["getegid"], "SCMP_ACT_ERRNO", errno(libc::EACCES, json!([arg(5, "SCMP_CMP_GT", 10)]))),
            rule(&["gettid"], "SCMP_ACT_ERRNO", errno(libc::EFAULT, json!([
                {"index": 0, "value": 0xff00u64, "valueTwo": 0x1200u64, "op": "SCMP_CMP_MASKED_EQ"}
            ]))),
            // Two conditions on one argument: either matching applies the action.
            rule(&["getsid"], "SCMP_ACT_ERRNO", errno(libc::EBUSY, json!([
                arg(0, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_EQ", 2)
            ]))),
        ]
    }));
    let id = rt.run_detached(&bundle);
    let cases: &[(i64, &[u64], &str)] = &[
        (GETPPID, &[42], "E2BIG"),
        (GETPPID, &[43], "ok 0"),
        (GETPGRP, &[0, 1], "EBADF"),
        (GETPGRP, &[0, 0], "ok"),
        (GETUID, &[0, 0, 9], "ECHILD"),
        (GETUID, &[0, 0, 10], "ok 0"),
        (GETGID, &[0, 0, 0, 10], "EAGAIN"),
        (GETGID, &[0, 0, 0, 11], "ok 0"),
        (GETEUID, &[0, 0, 0, 0, 10], "ENOMEM"),
        (GETEUID, &[0, 0, 0, 0, 9], "ok 0"),
        (GETEGID, &[0, 0, 0, 0, 0, 11], "EACCES"),
        (GETEGID, &[0, 0, 0, 0, 0, 10], "ok 0"),
        (GETTID, &[0x12ab], "EFAULT"),
        (GETTID, &[0x13ab], "ok"),
        (libc::SYS_getsid, &[1], "EBUSY"),
        (libc::SYS_getsid, &[2], "EBUSY"),
        (libc::SYS_getsid, &[0], "ok"),
    ];
    for (nr, args, expected) in cases {
        let answer = call(&rt, &id, *nr, args);
        assert!(
            answer.starts_with(expected),
            "syscall {nr} {args:?}: {answer}, expected {expected}"
        );
    }
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}

/// The names libseccomp knows on this machine, numbered from 0 to `below` - 1.
fn known_names(below: i32) -> Vec<String> {
    (0..below)
        .filter_map(|nr| libseccomp::ScmpSyscall::from(nr).get_name().ok())
        .collect()
}

/// Compiled programs are cached under the state root, and an entry is used only when the
/// profile recorded in it is exactly the one asked for and only root could have written it.
#[test]
fn compiled_programs_are_cached_and_used_only_when_they_match() {
    let rt = Runtime::new();
    let bundle = with_seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [rule(&["getppid"], "SCMP_ACT_ERRNO", json!({"errnoRet": libc::EXDEV}))]
    }));
    let create = |origin: &str| -> String {
        let id = rt.unique_id();
        let bundle_dir = bundle.path().to_str().unwrap();
        let created = rt.cmd(["--debug", "create", "--bundle", bundle_dir, &id]);
        created.assert_success();
        assert!(
            created.stderr.contains(origin),
            "expected {origin:?}: {created}"
        );
        rt.cmd(["start", &id]).assert_success();
        assert_eq!(call(&rt, &id, GETPPID, &[]), "EXDEV", "the filter holds");
        id
    };
    let mut ids = vec![create("compiled and cached in")];
    let cache = rt.root().join("@seccomp");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one entry: {entries:?}");
    let entry = entries[0].clone();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&cache), mode(&entry)), (0o700, 0o600));
    ids.push(create("loaded from the cache"));

    // A program that allows everything (BPF_RET|BPF_K SECCOMP_RET_ALLOW).
    let forge = |edit: &dyn Fn(&mut Value)| {
        let mut forged: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
        forged["program"] = json!([[6, 0, 0, 0x7fff_0000u32]]);
        edit(&mut forged);
        std::fs::write(&entry, serde_json::to_vec(&forged).unwrap()).unwrap();
    };
    // Recorded for another profile: not used, whatever the file is named.
    forge(&|f| f["profile"] = json!(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#));
    ids.push(create("compiled and cached in"));
    // Writable by others: not trusted.
    forge(&|_| {});
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    ids.push(create("compiled and cached in"));
    assert_eq!(mode(&entry), 0o600, "the entry was replaced");

    for id in &ids {
        rt.cmd(["delete", "--force", id]).assert_success();
    }
    rt.assert_clean(&bundle);
}

/// An allow-list profile: the default answers EOPNOTSUPP, syscalls above the highest one
/// named get ENOSYS (so libc falls back), and the runtime's own setup (mounts, pivot,
/// hostname, user switch) is not filtered even without noNewPrivileges.
#[test]
fn default_errno_and_enosys_for_syscalls_newer_than_the_profile() {
    for no_new_privileges in [true, false] {
        let rt = Runtime::new();
        let mut names = known_names(400);
        let denied = [
            "mount",
            "pivot_root",
            "sethostname",
            "setgroups",
            "setresuid",
            "umount2",
        ];
        names.retain(|n| n != "getppid" && n != "getpgrp" && !denied.contains(&n.as_str()));
        let mut bundle = with_seccomp(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EOPNOTSUPP,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["not_a_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
                // Denied inside the container, needed by the runtime's setup. (capset and
                // prctl follow the filter when noNewPrivileges is false: Docker allows them.)
                {"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EBADFD},
            ]
        }));
        bundle.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(no_new_privileges);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
        });
        let id = rt.unique_id();
        let created = rt.cmd([
            "--debug",
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ]);
        created.assert_success();
        assert!(
            created.stderr.contains("not_a_syscall_anywhere"),
            "--debug names the unknown syscall: {created}"
        );
        rt.cmd(["start", &id]).assert_success();
        assert_eq!(call(&rt, &id, GETPPID, &[]), "EOPNOTSUPP");
        assert_eq!(call(&rt, &id, libc::SYS_pivot_root, &[0, 0]), "EBADFD");
        // clone3 (435) is newer than every syscall named: ENOSYS, not the default.
        assert_eq!(call(&rt, &id, libc::SYS_clone3, &[0, 0]), "ENOSYS");
        assert_eq!(call(&rt, &id, GETUID, &[]), "ok 1000");
        rt.cmd(["delete", "--force", &id]).assert_success();
        rt.assert_clean(&bundle);
    }
}

/// SCMP_ACT_NOTIFY: the agent at listenerPath gets the container process state and the
/// listener fd during create, and answers the container's syscalls.
#[test]
fn a_notify_agent_gets_the_listener_and_answers() {
    let rt = Runtime::new();
    let dir = TempDir::new();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let bundle = with_seccomp(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "bulwark-test-agent",
        "syscalls": [rule(&["getppid"], "SCMP_ACT_NOTIFY", json!({}))]
    }));
    // One connection from create (the init's filter), one from the exec (its own).
    let agent = std::thread::spawn(move || {
        (0..2)
            .map(|_| {
                let (stream, _) = listener.accept().unwrap();
                let (state, fd) = receive_state_and_fd(&stream);
                std::thread::spawn(move || answer_with_exdev(fd));
                state
            })
            .collect::<Vec<Value>>()
    });
    let id = rt.run_detached(&bundle);
    assert_eq!(call(&rt, &id, GETPPID, &[]), "EXDEV");
    rt.cmd(["delete", "--force", &id]).assert_success();
    wait_until("the agent to finish", || agent.is_finished());
    let states = agent.join().unwrap();
    for (state, status) in states.iter().zip(["creating", "running"]) {
        assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
        assert_eq!(state["metadata"], "bulwark-test-agent");
        assert_eq!(state["state"]["id"], id.as_str());
        assert_eq!(state["state"]["status"], status);
        assert!(state["pid"].as_i64().unwrap() > 0);
    }
    rt.assert_clean(&bundle);
}

/// Answers every notification with EXDEV until the filter's processes are gone.
fn answer_with_exdev(fd: std::os::fd::OwnedFd) {
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // A receive can fail transiently (ENOENT when a notifying task went away between
    // the wake-up and the read); only a run of failures means no task is left.
    let mut failures = 0;
    while failures < 100 {
        match libseccomp::ScmpNotifReq::receive(raw) {
            Ok(request) => {
                failures = 0;
                let response = libseccomp::ScmpNotifResp::new_error(
                    request.id,
                    -libc::EXDEV,
                    libseccomp::ScmpNotifRespFlags::empty(),
                );
                let _ = response.respond(raw);
            }
            Err(_) => {
                failures += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

fn receive_state_and_fd(stream: &std::os::unix::net::UnixStream) -> (Value, std::os::fd::OwnedFd) {
    let (bytes, fd) = bulwark_sys::socket::recv_with_fd(std::os::fd::AsFd::as_fd(stream)).unwrap();
    (serde_json::from_slice(&bytes).unwrap(), fd)
}
