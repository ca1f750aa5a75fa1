//! Rootless Podman: a real user without root (the rootless tests' user) runs Debian's
//! podman, which starts the runtime inside its own user namespace, over the same
//! scenarios as root's Podman, once with runc and once with bulwark-runtime. Storage
//! (vfs), run root and containers.conf live in a directory of the user's. Containers get
//! no network by default: slirp4netns needs /dev/net/tun, which this host keeps root's.
use bulwark_tests::engines::cli::{skip, succeed, Cli, Flavor};
use bulwark_tests::engines::docker_like::{scenarios, Setup};
use bulwark_tests::engines::image::IMAGE_NAME;
use bulwark_tests::engines::matrix::{run_matrix, scenario, Scenario};
use bulwark_tests::engines::Stage;
use bulwark_tests::rootless::{cgroup_v2, User};
use bulwark_tests::{runtime_binary, TempDir};

#[test]
fn rootless_podman_runs_bulwark_runtime_as_it_runs_runc() {
    let programs = [
        "podman",
        "conmon",
        "runc",
        "skopeo",
        "docker-registry",
        "slirp4netns",
    ];
    let Some(stage) = Stage::prepare(&programs) else {
        return;
    };
    let user = User::get();
    // The user's own tree: reachable through a root-owned 0755 directory.
    let base = TempDir::with_mode(0o755);
    let home = base.path().join("home");
    let xdg = home.join("run");
    for dir in [&home, &xdg, &home.join("tmp"), &home.join("bin")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let conf = home.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\nnetns = \"none\"\n[engine]\nconmon_env_vars = [\"CONTAINERS_CONF={}\"]\n",
            conf.display()
        ),
    )
    .unwrap();
    let archive = home.join("image.tar");
    std::fs::copy(stage.archive(), &archive).unwrap();
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{}:{}", user.uid, user.gid)])
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success(), "chown -R {}: {status}", home.display());
    std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // A root-owned copy of the runtime the user can reach.
    let binary = base.path().join("bulwark-runtime");
    std::fs::copy(runtime_binary(), &binary).unwrap();
    let path = |name: &str| home.join(name).display().to_string();
    let mut global: Vec<String> = vec![
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--init-groups".into(),
        "--".into(),
        "podman".into(),
    ];
    for (flag, value) in [
        ("--root", path("storage")),
        ("--runroot", path("run/containers")),
        ("--tmpdir", path("tmp")),
        ("--storage-driver", "vfs".into()),
        ("--cgroup-manager", "cgroupfs".into()),
        ("--events-backend", "file".into()),
    ] {
        global.extend([flag.to_string(), value]);
    }
    let runc = Cli {
        runtime: "runc".into(),
        program: "setpriv".into(),
        global,
        env: vec![
            ("HOME".into(), home.display().to_string()),
            ("XDG_RUNTIME_DIR".into(), xdg.display().to_string()),
            ("CONTAINERS_CONF".into(), conf.display().to_string()),
        ],
        runtime_flags: vec!["--runtime".into(), "/usr/sbin/runc".into()],
        image: IMAGE_NAME.into(),
        flavor: Flavor::DockerLike,
    };
    succeed(&runc.cmd(&["load", "-i", archive.to_str().unwrap()])).expect("podman load");
    let bulwark = Cli {
        runtime: "bulwark-runtime".into(),
        runtime_flags: vec!["--runtime".into(), binary.display().to_string()],
        ..runc.clone()
    };
    let setup = Setup {
        dir: home.join("scratch"),
        registry_image: stage.registry_image(),
        pull_flags: vec!["--tls-verify=false".into()],
        no_userns_mapping: None,
    };
    std::fs::create_dir(&setup.dir).unwrap();
    std::os::unix::fs::chown(&setup.dir, Some(user.uid), Some(user.gid)).unwrap();
    // A rootless container on cgroup v1 has no memory limit, and these allocate until
    // one stops them: the host's memory would.
    let unbounded = ["memory limit enforced (OOM kill: 137)", "OOM kill reported"];
    let list: Vec<Scenario> = scenarios(setup)
        .into_iter()
        .map(|s| match unbounded.contains(&s.name) && !cgroup_v2() {
            true => scenario(s.name, |_| {
                skip("rootless podman sets no memory limit on cgroup v1, so this would allocate without bound")
            }),
            false => s,
        })
        .collect();
    run_matrix("podman-rootless", &[runc.clone(), bulwark], &list);
    let _ = runc.cmd(&["rm", "-af"]);
    // Rootless podman keeps a pause process holding its user namespace; nothing else of
    // this user outlives the test.
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-U", &user.uid.to_string()])
        .status();
}
