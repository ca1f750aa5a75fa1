//! The attack suite (`tests/attacks/probes.sh`): known container escapes and host
//! interference tried from inside a container. Under the hardened default of
//! `bulwark-runtime spec` every probe must be blocked (one exception, named below); under
//! `--profile docker` the suite shows what Docker's defaults still let through.
//! `tests/attacks/score.py` runs the same probes under runc and crun for the comparison.
use std::collections::BTreeMap;

use bulwark_tests::rootless::User;
use bulwark_tests::{require_idmap, spec_bundle, workspace_root, Bundle, Runtime};
use serde_json::json;

/// Runs the probes in a container made from `spec --profile profile`; returns each
/// probe's verdict line (`blocked (...)` or `OPEN (...)`).
fn probe(rt: &Runtime, profile: Option<&str>) -> (Bundle, BTreeMap<String, String>) {
    let mut bundle = spec_bundle(rt, profile, &["/bin/sh", "/attacks.sh"]);
    for (script, name) in [
        ("probes.sh", "attacks.sh"),
        ("exe-hook.sh", "attacks-exe-hook.sh"),
    ] {
        std::fs::copy(
            workspace_root().join("tests/attacks").join(script),
            bundle.rootfs().join(name),
        )
        .unwrap();
    }
    let bundle_dir = bundle.path().to_str().unwrap().to_string();
    bundle.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(format!("BUNDLE={bundle_dir}").into());
        c["hooks"]["startContainer"] =
            json!([{"path": "/bin/sh", "args": ["sh", "/attacks-exe-hook.sh"]}]);
    });
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let verdicts = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (bundle, verdicts)
}

fn table(verdicts: &BTreeMap<String, String>) -> String {
    verdicts
        .iter()
        .map(|(k, v)| format!("  {k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every probe of `tests/attacks/probes.sh`: the run must report exactly these.
const PROBES: [&str; 30] = [
    "add_key",
    "bpf",
    "core_pattern",
    "fork_bomb",
    "host_paths_in_mountinfo",
    "host_processes",
    "io_uring_setup",
    "kcmp",
    "keyctl",
    "leaked_fds",
    "masked_kcore",
    "masked_keys",
    "masked_timer_list",
    "memory_hog",
    "mount",
    "open_by_handle_at",
    "packet_socket",
    "perf_event_open",
    "proc_sys",
    "ptrace",
    "raw_socket",
    "release_agent",
    "root_is_host_root",
    "runtime_exe_overwrite",
    "setuid_escalation",
    "sysrq_trigger",
    "tiocsti",
    "unshare_userns",
    "userfaultfd",
    "writable_sys",
];

/// Probes that may give no verdict here, each only while the host fact that makes them
/// inapplicable holds (checked on the host, not taken from the probe's word).
fn inapplicable(probe: &str) -> Option<&'static str> {
    match probe {
        "sysrq_trigger" if !std::path::Path::new("/proc/sysrq-trigger").exists() => {
            Some("this kernel has no /proc/sysrq-trigger (built without magic SysRq)")
        }
        "masked_kcore" | "masked_keys" | "masked_timer_list"
            if !std::path::Path::new("/proc").join(&probe[7..]).exists() =>
        {
            Some("this kernel has no such file in /proc to mask")
        }
        // This run's stdin is /dev/null; tests/tests/safety.rs tries TIOCSTI from a
        // terminal.
        "tiocsti" => Some("stdin is not a terminal in this run"),
        _ => None,
    }
}

/// Every probe reported exactly once, with a verdict: blocked, or OPEN only for those in
/// `known_open`; `n/a` only where [`inapplicable`] allows it; never an ERROR (a probe
/// that crashed or could not run).
#[track_caller]
fn assert_blocked_but(label: &str, verdicts: &BTreeMap<String, String>, known_open: &[&str]) {
    eprintln!("{label}:\n{}", table(verdicts));
    let expected: std::collections::BTreeSet<&str> = PROBES.iter().copied().collect();
    let reported: std::collections::BTreeSet<&str> = verdicts.keys().map(String::as_str).collect();
    assert_eq!(
        reported, expected,
        "the probes reported are not the suite's"
    );
    let wrong: Vec<String> = verdicts
        .iter()
        .filter_map(|(probe, verdict)| {
            let word = verdict.split(' ').next().unwrap_or_default();
            let fine = match word {
                "blocked" => true,
                "OPEN" => known_open.contains(&probe.as_str()),
                "n/a" => inapplicable(probe).is_some(),
                _ => false,
            };
            (!fine).then(|| format!("{probe}: {verdict}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "probes that got through or gave no verdict: {wrong:?}\nall:\n{}",
        table(verdicts)
    );
}

#[test]
fn every_attack_is_blocked_by_the_hardened_default() {
    let rt = Runtime::new();
    require_idmap!(
        "every_attack_is_blocked_by_the_hardened_default",
        &Bundle::new().rootfs()
    );
    let (bundle, verdicts) = probe(&rt, None);
    // A directory rootfs is a bind mount, and mountinfo shows a bind's source path; only
    // an engine-made rootfs (an overlay mount) avoids that.
    assert_blocked_but("hardened", &verdicts, &["host_paths_in_mountinfo"]);
    rt.assert_clean(&bundle);
}

#[test]
fn a_user_without_root_gets_the_same_protection_but_for_memory() {
    // `spec --rootless` as a real user: the same isolation, with RLIMIT_NPROC bounding the
    // fork bomb. No cgroup is delegated here, so nothing can bound the memory hog.
    let user = User::get();
    let rt = Runtime::as_user(user.uid, user.gid);
    let (bundle, verdicts) = probe(&rt, None);
    let known_open = ["host_paths_in_mountinfo", "memory_hog"];
    assert_blocked_but("rootless hardened", &verdicts, &known_open);
    assert!(
        verdicts["fork_bomb"].starts_with("blocked"),
        "{}",
        verdicts["fork_bomb"]
    );
    rt.assert_clean(&bundle);
}

#[test]
fn the_docker_profile_lets_through_what_docker_does() {
    let rt = Runtime::new();
    let (bundle, verdicts) = probe(&rt, Some("docker"));
    eprintln!("docker profile:\n{}", table(&verdicts));
    // Docker's defaults: root is host root, raw sockets, no pids limit, ptrace allowed.
    // (Not setuid_escalation: without no_new_privs it still depends on the rootfs's
    // filesystem allowing setuid, which the v2 guest's nosuid /tmp does not.)
    for open in ["root_is_host_root", "raw_socket", "fork_bomb", "ptrace"] {
        assert!(
            verdicts[open].starts_with("OPEN"),
            "{open}: {}",
            verdicts[open]
        );
    }
    // ...and what they do block.
    for blocked in [
        "runtime_exe_overwrite",
        "mount",
        "release_agent",
        "keyctl",
        "open_by_handle_at",
        "unshare_userns",
    ] {
        assert!(
            verdicts[blocked].starts_with("blocked"),
            "{blocked}: {}",
            verdicts[blocked]
        );
    }
    rt.assert_clean(&bundle);
}
