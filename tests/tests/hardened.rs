//! `bulwark-runtime spec`: the hardened default and `--profile docker`, checked from
//! inside a container, and ordinary programs running unchanged under the hardened one: the
//! fixture's busybox userland, and this host's own Debian userland (bash, dpkg, apt,
//! python3) bound read-only and idmapped into a container whose root is an unprivileged
//! host id.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bulwark_tests::{field, require_idmap, spec_bundle, Bundle, Runtime, CHECKER};
use serde_json::json;

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

#[test]
fn hardened_spec_isolates_and_still_runs_a_busybox_userland() {
    let rt = Runtime::new();
    let script = r#"
        echo "uid: $(id -u)"
        echo "map: $(head -n1 /proc/self/uid_map | tr -s ' ')"
        grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
        echo written > /etc/written-by-the-container && echo "rootfs write: ok"
        echo "mount: $(mount -t tmpfs none /mnt >/dev/null 2>&1 && echo allowed || echo denied)"
        echo "ping: $(ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 && echo allowed || echo denied)"
        echo "kallsyms bytes: $(wc -c < /proc/kallsyms)"
        pids=$(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null)
        echo "pids.max: $pids"
        mkdir -p /www && echo 'hello from httpd' > /www/index.html
        httpd -p 8080 -h /www && sleep 0.3
        echo "served: $(wget -q -O - http://127.0.0.1:8080/)"
    "#;
    let bundle = spec_bundle(&rt, None, &sh(script));
    require_idmap!(
        "hardened_spec_isolates_and_still_runs_a_busybox_userland",
        &bundle.rootfs()
    );
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let text = out.stdout.as_str();
    assert_eq!(field(text, "uid"), "0", "root in the container");
    let map: Vec<&str> = field(text, "map").split(' ').collect();
    assert_eq!(map[0], "0");
    assert_ne!(map[1], "0", "container root is not host root: {text}");
    // Docker's 14 capabilities less NET_RAW (13), MKNOD (27) and AUDIT_WRITE (29).
    let eff = u64::from_str_radix(field(text, "CapEff"), 16).unwrap();
    for (bit, name) in [
        (13, "NET_RAW"),
        (27, "MKNOD"),
        (29, "AUDIT_WRITE"),
        (21, "SYS_ADMIN"),
    ] {
        assert_eq!(eff & (1 << bit), 0, "{name} must be dropped: {text}");
    }
    for (bit, name) in [(0, "CHOWN"), (1, "DAC_OVERRIDE"), (10, "NET_BIND_SERVICE")] {
        assert_ne!(eff & (1 << bit), 0, "{name} kept: {text}");
    }
    assert_eq!(field(text, "NoNewPrivs"), "1");
    assert_eq!(field(text, "Seccomp"), "2");
    assert_eq!(field(text, "rootfs write"), "ok");
    assert_eq!(field(text, "mount"), "denied");
    assert_eq!(field(text, "ping"), "denied", "no raw sockets");
    assert_eq!(field(text, "kallsyms bytes"), "0", "masked");
    assert_eq!(field(text, "pids.max"), "4096");
    assert_eq!(
        field(text, "served"),
        "hello from httpd",
        "a server above 1024"
    );
    // The idmapped rootfs stores what container root writes as the image's owner.
    let written = bundle.rootfs().join("etc/written-by-the-container");
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), 0);
    rt.assert_clean(&bundle);
}

#[test]
fn hardened_seccomp_denies_what_docker_allows() {
    let rt = Runtime::new();
    require_idmap!(
        "hardened_seccomp_denies_what_docker_allows",
        &Bundle::new().rootfs()
    );
    let probe = |profile: Option<&str>, nr: i64, args: &[&str]| {
        let mut argv = vec![CHECKER, "syscall"];
        let nr = nr.to_string();
        argv.push(&nr);
        argv.extend(args);
        let bundle = spec_bundle(&rt, profile, &argv);
        let out = rt.run(&bundle, &rt.unique_id());
        rt.assert_clean(&bundle);
        format!("{}{}", out.stdout.trim(), out.stderr.trim())
    };
    // ptrace(PTRACE_TRACEME) and modify_ldt(read): Docker allows both.
    for (nr, args) in [
        (libc::SYS_ptrace, ["0", "0"]),
        (libc::SYS_modify_ldt, ["0", "0"]),
    ] {
        assert_eq!(probe(None, nr, &args), "EPERM", "hardened, syscall {nr}");
        let docker = probe(Some("docker"), nr, &args);
        assert!(
            docker.starts_with("ok"),
            "docker profile, syscall {nr}: {docker}"
        );
    }
}

#[test]
fn docker_profile_gives_dockers_defaults() {
    let rt = Runtime::new();
    let script = r#"
        grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
        echo "map: $(head -n1 /proc/self/uid_map | tr -s ' ')"
    "#;
    let bundle = spec_bundle(&rt, Some("docker"), &sh(script));
    assert_eq!(bundle.config()["annotations"]["bulwark.profile"], "docker");
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let text = out.stdout.as_str();
    let eff = u64::from_str_radix(field(text, "CapEff"), 16).unwrap();
    assert_eq!(eff.count_ones(), 14, "Docker's 14 capabilities: {text}");
    assert_ne!(eff & (1 << 13), 0, "NET_RAW");
    assert_eq!(field(text, "NoNewPrivs"), "0");
    assert_eq!(field(text, "Seccomp"), "2");
    assert!(
        field(text, "map").starts_with("0 0 "),
        "no user namespace: {text}"
    );
    rt.assert_clean(&bundle);
}

#[test]
fn an_unknown_profile_is_refused_and_writes_nothing() {
    let rt = Runtime::new();
    let dir = bulwark_tests::TempDir::new();
    let out = rt.cmd([
        "spec",
        "--bundle",
        dir.path().to_str().unwrap(),
        "--profile",
        "lax",
    ]);
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("--profile \"lax\"") && out.stderr.contains("hardened ("),
        "{out}"
    );
    assert!(!dir.path().join("config.json").exists());
}

/// The host's Debian userland in a hardened container: an empty rootfs with the host's
/// /usr, /etc and package databases bound read-only and idmapped (so host root's files
/// stay root's inside), and a writable /tmp.
#[test]
fn hardened_spec_runs_the_hosts_debian_userland() {
    let rt = Runtime::new();
    let script = r#"
        set -e
        echo "shell: bash ${BASH_VERSINFO[0]}"
        echo "dpkg: $(dpkg-query -W -f='${Status}' coreutils)"
        echo "apt: $(apt-cache policy coreutils | sed -n 2p | tr -s ' ')"
        echo "owner of /usr/bin/env: $(stat -c %u /usr/bin/env)"
        python3 - <<'EOF'
import http.server, threading, urllib.request
server = http.server.HTTPServer(("0.0.0.0", 8080), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with urllib.request.urlopen("http://127.0.0.1:8080/") as reply:
    print("python server:", reply.status)
server.shutdown()
EOF
    "#;
    let mut bundle = spec_bundle(&rt, None, &["/usr/bin/bash", "-c", script]);
    require_idmap!(
        "hardened_spec_runs_the_hosts_debian_userland",
        Path::new("/usr")
    );
    require_idmap!(
        "hardened_spec_runs_the_hosts_debian_userland",
        &bundle.rootfs()
    );
    let rootfs = bundle.rootfs();
    std::fs::remove_dir_all(&rootfs).unwrap();
    std::fs::create_dir(&rootfs).unwrap();
    for dir in [
        "usr",
        "etc",
        "var/lib/dpkg",
        "var/lib/apt",
        "tmp",
        "proc",
        "dev",
        "sys",
    ] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        if let Ok(target) = std::fs::read_link(Path::new("/").join(link)) {
            std::os::unix::fs::symlink(target, rootfs.join(link)).unwrap();
        }
    }
    bundle.edit(|config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        for dir in ["/usr", "/etc", "/var/lib/dpkg", "/var/lib/apt"] {
            mounts.push(json!({"destination": dir, "type": "bind", "source": dir,
                "options": ["rbind", "ro", "nosuid", "nodev", "idmap"]}));
        }
        mounts.push(
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"]}),
        );
        config["process"]["env"] = json!(["PATH=/usr/sbin:/usr/bin", "HOME=/tmp"]);
    });
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    let text = out.stdout.as_str();
    assert!(field(text, "shell").starts_with("bash "), "{text}");
    assert_eq!(field(text, "dpkg"), "install ok installed");
    assert!(field(text, "apt").starts_with("Installed: "), "{text}");
    assert_eq!(
        field(text, "owner of /usr/bin/env"),
        "0",
        "idmapped: {text}"
    );
    assert_eq!(field(text, "python server"), "200");
    rt.assert_clean(&bundle);
}

/// Idmapped binds: with the container's own mappings a root-owned host file is root's
/// inside and container root's writes stay the host owner's; with mappings of the mount's
/// own, the same file shows the ids those give.
#[test]
fn idmapped_binds_use_the_containers_or_their_own_mappings() {
    let rt = Runtime::new();
    let shared = bulwark_tests::TempDir::new();
    std::fs::write(shared.path().join("file"), "from the host\n").unwrap();
    std::os::unix::fs::chown(shared.path().join("file"), Some(0), Some(0)).unwrap();
    require_idmap!(
        "idmapped_binds_use_the_containers_or_their_own_mappings",
        shared.path()
    );
    let source = shared.path().to_str().unwrap().to_string();
    let script = "stat -c 'own: %u %g' /data/file; stat -c 'custom: %u %g' /data2/file; \
                  echo 'from the container' >> /data/file && echo 'append: ok'";
    let bundle = Bundle::with(|c| {
        c["process"]["args"] = json!(["/bin/sh", "-c", script]);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_DAC_OVERRIDE"], "effective": ["CAP_DAC_OVERRIDE"], "permitted": ["CAP_DAC_OVERRIDE"]});
        bulwark_tests::add_user_namespace(c);
        c["annotations"] = json!({"bulwark.rootfs.idmap": "true"});
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": source, "options": ["rbind", "idmap"]}));
        mounts.push(json!({"destination": "/data2", "type": "bind", "source": source, "options": ["bind", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 101000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 102000, "size": 1}]}));
    });
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    assert_eq!(field(&out.stdout, "own"), "0 0");
    assert_eq!(field(&out.stdout, "custom"), "1000 2000");
    assert_eq!(field(&out.stdout, "append"), "ok");
    let file = shared.path().join("file");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 0);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "from the host\nfrom the container\n"
    );
    rt.assert_clean(&bundle);
}
