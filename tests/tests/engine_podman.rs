//! Podman (Debian's podman and conmon) driving runc and bulwark-runtime over the same
//! scenarios, with its storage, run root and containers.conf in a temp dir.
use bulwark_tests::engines::cli::{succeed, Cli, Flavor};
use bulwark_tests::engines::daemon::Links;
use bulwark_tests::engines::docker_like::{scenarios, Setup};
use bulwark_tests::engines::image::IMAGE_NAME;
use bulwark_tests::engines::{matrix::run_matrix, Stage};
use bulwark_tests::runtime_binary;

#[test]
fn podman_runs_bulwark_runtime_as_it_runs_runc() {
    let Some(stage) = Stage::prepare(&["podman", "conmon", "runc", "skopeo", "docker-registry"])
    else {
        return;
    };
    let dir = stage.dir();
    // Root here lacks CAP_SYS_RESOURCE in its bounding set: without explicit ulimits
    // podman asks for limits it cannot set, and conmon needs the same config, or each
    // run waits 20 s for it.
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nconmon_env_vars = [\"CONTAINERS_CONF={}\"]\n",
            conf.display()
        ),
    )
    .unwrap();
    let _links = Links::created_from_now(&["podman0"]);
    let path = |name: &str| dir.join(name).display().to_string();
    let global = [
        ("--root", path("storage")),
        ("--runroot", path("run")),
        ("--tmpdir", path("tmp")),
        ("--storage-driver", "overlay".into()),
        ("--cgroup-manager", "cgroupfs".into()),
        ("--events-backend", "file".into()),
    ];
    let runc = Cli {
        runtime: "runc".into(),
        program: "podman".into(),
        global: global
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.clone()])
            .collect(),
        env: vec![("CONTAINERS_CONF".into(), conf.display().to_string())],
        runtime_flags: vec!["--runtime".into(), "/usr/sbin/runc".into()],
        image: IMAGE_NAME.into(),
        flavor: Flavor::DockerLike,
    };
    let archive = stage.archive();
    succeed(&runc.cmd(&["load", "-i", &archive])).expect("podman load");
    let bulwark = Cli {
        runtime: "bulwark-runtime".into(),
        runtime_flags: vec!["--runtime".into(), runtime_binary().display().to_string()],
        ..runc.clone()
    };
    let setup = Setup {
        dir: dir.to_owned(),
        registry_image: stage.registry_image(),
        pull_flags: vec!["--tls-verify=false".into()],
        no_userns_mapping: None,
    };
    run_matrix("podman", &[runc.clone(), bulwark], &scenarios(setup));
    let _ = runc.cmd(&["rm", "-af"]);
}
