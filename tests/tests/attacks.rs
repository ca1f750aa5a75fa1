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

/// Every probe reported, and every one blocked but those in `known_open`.
#[track_caller]
fn assert_blocked_but(label: &str, verdicts: &BTreeMap<String, String>, known_open: &[&str]) {
    eprintln!("{label}:\n{}", table(verdicts));
    assert!(
        verdicts.len() >= 27,
        "every probe reported:\n{}",
        table(verdicts)
    );
    let open: Vec<_> = verdicts
        .iter()
        .filter(|(k, v)| v.starts_with("OPEN") && !known_open.contains(&k.as_str()))
        .collect();
    assert!(
        open.is_empty(),
        "probes that got through: {open:?}\nall:\n{}",
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
