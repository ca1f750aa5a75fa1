//! Bad input: each case gets an error naming the field, the value and what was expected,
//! a non-zero exit, no panic, and leaves nothing behind (state, mounts, processes).
use bulwark_tests::{Bundle, Output, Runtime, CHECKER};
use serde_json::{json, Value};

/// Creates a container from `bundle`, expects failure mentioning every `needles`, and
/// checks nothing is left behind.
#[track_caller]
fn refused(rt: &Runtime, bundle: &Bundle, needles: &[&str]) -> Output {
    let id = rt.unique_id();
    let pid_file = bundle.path().join("pid");
    let out = rt.cmd([
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    out.assert_failure();
    assert!(!out.stderr.contains("panicked"), "panic: {out}");
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr lacks {needle:?}: {out}"
        );
    }
    assert!(!pid_file.exists(), "a pid file was written");
    rt.cmd(["state", &id]).assert_failure();
    rt.assert_clean(bundle);
    out
}

fn with(edit: impl FnOnce(&mut Value)) -> Bundle {
    Bundle::with(edit)
}

#[test]
fn malformed_json() {
    let rt = Runtime::new();
    let bundle = Bundle::new();
    std::fs::write(
        bundle.config_path(),
        b"{\"ociVersion\": \"1.2.0\", \"process\": ",
    )
    .unwrap();
    refused(&rt, &bundle, &["config.json"]);
    std::fs::remove_file(bundle.config_path()).unwrap();
    refused(&rt, &bundle, &["config.json", "No such file"]);
}

#[test]
fn wrong_types_name_the_field() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["process"]["args"] = json!(7)),
        &["process.args"],
    );
    refused(
        &rt,
        &with(|c| c["process"]["user"]["uid"] = json!("root")),
        &["process.user.uid"],
    );
    refused(
        &rt,
        &with(|c| c["mounts"][0]["options"] = json!("ro")),
        &["mounts[0].options"],
    );
}

#[test]
fn unknown_namespace_type() {
    let rt = Runtime::new();
    let out = refused(
        &rt,
        &with(|c| c["linux"]["namespaces"][1]["type"] = json!("netns")),
        &["linux.namespaces[1].type", "netns"],
    );
    assert!(
        out.stderr.contains("network"),
        "expected values listed: {out}"
    );
}

#[test]
fn missing_rootfs() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["root"]["path"] = json!("no-such-rootfs")),
        &["root.path", "no-such-rootfs", "existing directory"],
    );
}

#[test]
fn duplicate_and_invalid_ids() {
    let rt = Runtime::new();
    let bundle = with(|c| c["process"]["args"] = json!([CHECKER, "sleep", "600"]));
    let id = rt.unique_id();
    rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id])
        .assert_success();
    let again = rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    again.assert_failure();
    assert!(again.stderr.contains("already exists"), "{again}");
    // The first container is untouched.
    assert_eq!(rt.state(&id)["status"], "created");
    rt.cmd(["delete", &id]).assert_success();
    for bad in ["../escape", "a/b", ".", "with space"] {
        let out = rt.cmd(["create", "--bundle", bundle.path().to_str().unwrap(), bad]);
        out.assert_failure();
        assert!(
            out.stderr.contains("container id") && out.stderr.contains(bad),
            "{out}"
        );
    }
    rt.assert_clean(&bundle);
}

#[test]
fn unmapped_user() {
    let rt = Runtime::new();
    let bundle = with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
        c["process"]["user"]["uid"] = json!(1000);
    });
    refused(
        &rt,
        &bundle,
        &["process.user.uid", "1000", "linux.uidMappings"],
    );
}

#[test]
fn unsupported_fields_are_refused_not_ignored() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["linux"]["netDevices"] = json!({"eth9": {"name": "eth0"}})),
        &["linux.netDevices", "not supported"],
    );
    // A limit this host's cgroups cannot take names its field.
    refused(
        &rt,
        &with(|c| c["linux"]["resources"] = json!({"cpu": {"period": 10}})),
        &["linux.resources.cpu.period", "10"],
    );
    refused(
        &rt,
        &with(|c| c["linux"]["intelRdt"] = json!({"closID": "x"})),
        &["linux.intelRdt"],
    );
}

#[test]
fn bad_seccomp_profiles_name_the_field() {
    let rt = Runtime::new();
    let profile = |seccomp: serde_json::Value| with(|c| c["linux"]["seccomp"] = seccomp);
    let allow_read = |extra: serde_json::Value| {
        let mut rule = json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"});
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule]})
    };
    refused(
        &rt,
        &profile(json!({"defaultAction": "SCMP_ACT_SOMETIMES"})),
        &["linux.seccomp.defaultAction", "SCMP_ACT_SOMETIMES"],
    );
    refused(
        &rt,
        &profile(allow_read(
            json!({"args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}),
        )),
        &["linux.seccomp.syscalls[0].args[0].index", "7", "0 to 5"],
    );
    refused(
        &rt,
        &profile(allow_read(
            json!({"args": [{"index": 0, "value": 0, "op": "SCMP_CMP_SIMILAR"}]}),
        )),
        &["linux.seccomp.syscalls[0].args[0].op", "SCMP_CMP_SIMILAR"],
    );
    refused(
        &rt,
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})),
        &["linux.seccomp.listenerPath"],
    );
    refused(
        &rt,
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})),
        &["linux.seccomp.architectures[0]", "SCMP_ARCH_VAX"],
    );
    refused(
        &rt,
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]})),
        &["linux.seccomp.flags[0]", "SECCOMP_FILTER_FLAG_FAST"],
    );
}

#[test]
fn bad_mounts() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["mounts"][1]["options"] = json!(["nosuid", "no suid"])),
        &["mounts[1].options[1]", "no suid"],
    );
    refused(
        &rt,
        &with(|c| c["mounts"][0]["destination"] = json!("proc")),
        &["mounts[0].destination", "absolute"],
    );
    let missing_source = with(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]}))
    });
    refused(&rt, &missing_source, &["/data", "/no/such/dir"]);
    // A failure after several mounts were made: they all vanish with the mount namespace.
    let late = with(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/late", "type": "nosuchfs", "source": "x"}))
    });
    refused(&rt, &late, &["/late", "nosuchfs"]);
}

#[test]
fn bad_sysctls_and_hostnames() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"})),
        &["vm.swappiness", "host"],
    );
    refused(
        &rt,
        &with(|c| c["linux"]["sysctl"] = json!({"net.ipv4/../../x": "1"})),
        &["linux.sysctl"],
    );
    let no_uts = with(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "uts");
    });
    refused(&rt, &no_uts, &["hostname", "uts namespace"]);
}

#[test]
fn failing_hook() {
    let rt = Runtime::new();
    let bundle = with(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    refused(&rt, &bundle, &["hooks.createRuntime[0]", "/bin/false"]);
}

#[test]
fn terminal_without_console_socket() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["process"]["terminal"] = json!(true)),
        &["process.terminal", "--console-socket"],
    );
}

#[test]
fn missing_program() {
    let rt = Runtime::new();
    refused(
        &rt,
        &with(|c| c["process"]["args"] = json!(["no-such-program"])),
        &["executable file not found in $PATH"],
    );
    refused(
        &rt,
        &with(|c| c["process"]["cwd"] = json!("/no/such/dir")),
        &["process.cwd", "/no/such/dir"],
    );
}

#[test]
fn commands_on_unknown_containers() {
    let rt = Runtime::new();
    for args in [
        vec!["start", "ghost"],
        vec!["state", "ghost"],
        vec!["kill", "ghost"],
        vec!["delete", "ghost"],
        vec!["exec", "ghost", "sh"],
        vec!["ps", "ghost"],
    ] {
        let out = rt.cmd(&args);
        out.assert_failure();
        assert!(
            out.stderr.contains("ghost") && out.stderr.contains("does not exist"),
            "{args:?}: {out}"
        );
    }
    let out = rt.cmd([
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/nonexistent",
        "x",
    ]);
    out.assert_failure();
    assert!(out.stderr.contains("--systemd-cgroup"), "{out}");
}

/// A capability the runtime itself lacks fails create, rather than the program after
/// start. Where root's bounding set is full (the v2 guest), the runtime is started by
/// `setpriv` with CAP_SYS_RESOURCE dropped from it, so there is always one to ask for.
#[test]
fn capabilities_the_host_cannot_grant() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    let bounding = u64::from_str_radix(bounding, 16).unwrap();
    let wrapper_dir = bulwark_tests::TempDir::new();
    let (missing, rt) = match (0..41u64).find(|bit| bounding & (1 << bit) == 0) {
        Some(missing) => (missing, Runtime::new()),
        None => {
            let wrapper = wrapper_dir.path().join("runtime-without-sys-resource");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec setpriv --bounding-set -sys_resource -- {} \"$@\"\n",
                    bulwark_tests::runtime_binary().display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(
                &wrapper,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            (
                u64::from(caps::Capability::CAP_SYS_RESOURCE.index()),
                Runtime::with_binary(wrapper),
            )
        }
    };

    let name = caps::all()
        .into_iter()
        .find(|cap| u64::from(cap.index()) == missing)
        .map(|cap| cap.to_string())
        .expect("a capability the caps crate knows");
    let bundle = with(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!(name));
        }
    });
    refused(
        &rt,
        &bundle,
        &["process.capabilities.bounding", &name, "bounding set"],
    );
}

#[test]
fn bad_idmapped_mounts() {
    let rt = Runtime::new();
    let userns = bulwark_tests::add_user_namespace;
    let add_mount = |c: &mut Value, mount: Value| {
        c["mounts"].as_array_mut().unwrap().push(mount);
    };
    let source = std::env::temp_dir();
    let source = source.to_str().unwrap();
    // idmap on a filesystem that is not a bind.
    let bundle = with(|c| {
        userns(c);
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
        );
    });
    refused(
        &rt,
        &bundle,
        &["mounts[6].type", "tmpfs", "only binds can be idmapped"],
    );
    // idmap without a user namespace of the container's own.
    let bundle = with(|c| {
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "bind", "source": source, "options": ["rbind", "idmap"]}),
        );
    });
    refused(
        &rt,
        &bundle,
        &["mounts[6]", "idmapped", "create a user namespace"],
    );
    // A mapping of no ids.
    let bundle = with(|c| {
        userns(c);
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "bind", "source": source, "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}]}),
        );
    });
    refused(
        &rt,
        &bundle,
        &["mounts[6].uidMappings[0].size", "at least one id"],
    );
    // The rootfs annotation: a value other than true/false, or no user namespace.
    let bundle = with(|c| c["annotations"] = json!({"bulwark.rootfs.idmap": "yes"}));
    refused(
        &rt,
        &bundle,
        &["bulwark.rootfs.idmap", "\"yes\"", "\"true\" or \"false\""],
    );
    let bundle = with(|c| c["annotations"] = json!({"bulwark.rootfs.idmap": "true"}));
    refused(
        &rt,
        &bundle,
        &["bulwark.rootfs.idmap", "create a user namespace"],
    );
    // An idmapped rootfs other host users could reach: what container root writes there
    // (setuid files too) is the host root's.
    let bundle = with(|c| {
        userns(c);
        c["annotations"] = json!({"bulwark.rootfs.idmap": "true"});
    });
    std::fs::set_permissions(
        bundle.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    refused(
        &rt,
        &bundle,
        &["bulwark.rootfs.idmap", "can be reached by other host users"],
    );
    // A source that does not exist: the parent fails to clone it, nothing is left.
    let bundle = with(|c| {
        userns(c);
        add_mount(
            c,
            json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent/idmap-source", "options": ["bind", "idmap"]}),
        );
    });
    refused(&rt, &bundle, &["/nonexistent/idmap-source", "idmapped"]);
}

#[test]
fn a_state_root_others_could_write_or_a_symlink_is_refused() {
    // Another user could plant state there that kill or delete would act on.
    let rt = Runtime::new();
    let dir = bulwark_tests::TempDir::new();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(rt.root(), &link).unwrap();
    let bundle = Bundle::new();
    for (root, what) in [(&open, "mode 777"), (&link, "a symlink")] {
        for args in [
            vec!["list"],
            vec!["run", "--bundle", bundle.path().to_str().unwrap(), "c1"],
        ] {
            let mut full = vec!["--root", root.to_str().unwrap()];
            full.extend(args);
            let out = bulwark_tests::run_captured(
                std::process::Command::new(rt.binary()).args(&full),
                bulwark_tests::default_timeout(),
            );
            out.assert_failure();
            assert!(
                out.stderr.contains("state root") && out.stderr.contains(what),
                "{full:?}: {out}"
            );
        }
    }
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0, "nothing made");
    rt.assert_clean(&bundle);
}
