//! Docker (Debian's docker.io) driving runc and bulwark-runtime over the same scenarios:
//! a dockerd of the test's own (data-root, exec-root, pidfile and socket in a temp dir)
//! with bulwark-runtime registered as a runtime in its daemon.json.
use std::process::Command;

use bulwark_tests::engines::cli::{succeed, Cli, Flavor};
use bulwark_tests::engines::daemon::{socket_ready, Daemon, Links};
use bulwark_tests::engines::docker_like::{scenarios, Setup};
use bulwark_tests::engines::image::IMAGE_NAME;
use bulwark_tests::engines::{matrix::run_matrix, Stage};
use bulwark_tests::runtime_binary;
use serde_json::json;

#[test]
fn docker_runs_bulwark_runtime_as_it_runs_runc() {
    let Some(stage) = Stage::prepare(&["dockerd", "runc", "skopeo", "docker-registry"]) else {
        return;
    };
    let dir = stage.dir();
    let socket = dir.join("docker.sock");
    let config = dir.join("daemon.json");
    let daemon_json = json!({
        "data-root": dir.join("data"),
        "exec-root": dir.join("exec"),
        "pidfile": dir.join("docker.pid"),
        "hosts": [format!("unix://{}", socket.display())],
        "runtimes": {"bulwark": {"path": runtime_binary()}},
        "shutdown-timeout": 5,
    });
    std::fs::write(&config, daemon_json.to_string()).unwrap();
    let _links = Links::created_from_now(&["docker0"]);
    let mut daemon = Daemon::start(
        "dockerd",
        Command::new("dockerd").arg("--config-file").arg(&config),
        &dir.join("dockerd.log"),
        || socket_ready(&socket),
    );
    daemon.kill_leftovers_naming(dir);
    let runc = Cli {
        runtime: "runc".into(),
        program: "/usr/bin/docker".into(),
        global: vec!["--host".into(), format!("unix://{}", socket.display())],
        env: vec![(
            "DOCKER_CONFIG".into(),
            dir.join("client").display().to_string(),
        )],
        runtime_flags: vec!["--runtime".into(), "runc".into()],
        image: IMAGE_NAME.into(),
        flavor: Flavor::DockerLike,
    };
    let archive = stage.archive();
    succeed(&runc.cmd(&["load", "-i", &archive])).expect("docker load");
    let bulwark = Cli {
        runtime: "bulwark-runtime".into(),
        runtime_flags: vec!["--runtime".into(), "bulwark".into()],
        ..runc.clone()
    };
    let setup = Setup {
        dir: dir.to_owned(),
        registry_image: stage.registry_image(),
        pull_flags: Vec::new(),
        no_userns_mapping: Some(
            "dockerd maps user namespaces only daemon-wide (userns-remap), not per container",
        ),
    };
    run_matrix("docker", &[runc, bulwark], &scenarios(setup));
    drop(daemon);
}
