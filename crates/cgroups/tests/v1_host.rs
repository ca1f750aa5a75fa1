//! The v1 manager on this host's real cgroup v1 (or hybrid) hierarchies, as root:
//! create, apply, place a process, freeze, stats, destroy. Tests skip, saying why, when
//! the host is not v1/hybrid, not root, or lacks a controller they need.
mod common;

use std::path::{Path, PathBuf};

use bulwark_cgroups::{manager_for, CgroupManager, Layout, Limit, Mode};
use common::*;

/// The host layout when it is v1 or hybrid and we are root, else why not.
fn v1_layout(needs: &[&str]) -> Result<Layout, String> {
    if !is_root() {
        return Err("needs root".into());
    }
    let layout = Layout::detect().map_err(|e| format!("no cgroup layout: {e}"))?;
    if layout.mode() == Mode::V2 {
        return Err("the host is pure cgroup v2".into());
    }
    if let Some(missing) = needs.iter().find(|c| layout.v1_hierarchy_for(c).is_none()) {
        return Err(format!("no v1 {missing} hierarchy is mounted"));
    }
    Ok(layout)
}

fn dir_of(layout: &Layout, manager: &dyn CgroupManager, controller: &str) -> PathBuf {
    let mount = layout.v1_hierarchy_for(controller).unwrap().mount_point();
    manager
        .paths()
        .into_iter()
        .find(|p| p.starts_with(mount))
        .unwrap()
}

#[test]
fn create_apply_place_freeze_destroy() {
    let layout = match v1_layout(&["memory", "pids", "cpu", "freezer"]) {
        Ok(l) => l,
        Err(why) => return skip("create_apply_place_freeze_destroy", &why),
    };
    // Relative: below this process's own cgroups, so the test child stays inside the
    // memory cgroup the test runner was given.
    let name = unique_name();
    let cleanup = Cleanup {
        manager: manager_for(&layout, &name).unwrap(),
        extra: Vec::new(),
    };
    let m = cleanup.manager.as_ref();
    m.create().unwrap();
    let paths = m.paths();
    assert_eq!(
        paths.len(),
        layout.v1_hierarchies().len() + usize::from(layout.mode() == Mode::Hybrid)
    );
    for p in &paths {
        assert!(p.is_dir(), "{} was not created", p.display());
        assert!(p.ends_with(&name), "{}", p.display());
    }
    // A new process joins each v1 hierarchy itself and, on a hybrid host, is created in
    // the cgroup2 directory.
    let entry = m.entry(&bulwark_cgroups::SubCgroups::None).unwrap();
    assert_eq!(entry.tasks.len(), layout.v1_hierarchies().len());
    assert_eq!(entry.clone_into.is_some(), layout.mode() == Mode::Hybrid);

    m.apply(&resources(
        r#"{"memory":{"limit":67108864},"pids":{"limit":32},
            "cpu":{"shares":512,"quota":50000,"period":100000}}"#,
    ))
    .unwrap();
    let memory = dir_of(&layout, m, "memory");
    let pids = dir_of(&layout, m, "pids");
    let cpu = dir_of(&layout, m, "cpu");
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&pids.join("pids.max")), "32");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");

    let mut child = Sleeper::spawn();
    m.add_process(child.pid()).unwrap();
    assert_eq!(m.pids().unwrap(), [child.pid()]);
    let proc_cgroup = read(Path::new(&format!("/proc/{}/cgroup", child.pid())));
    let memory_line = proc_cgroup
        .lines()
        .find(|l| l.contains(":memory:"))
        .unwrap();
    assert!(memory_line.ends_with(&name), "{memory_line}");

    let stats = m.stats().unwrap();
    assert_eq!(stats.pids.current, Some(1));
    assert_eq!(stats.pids.limit, Some(Limit::Value(32)));
    assert_eq!(stats.memory.limit, Some(Limit::Value(67_108_864)));
    assert!(stats.memory.usage.is_some());
    if layout.v1_hierarchy_for("cpuacct").is_some() {
        assert!(stats.cpu.usage_total_ns.is_some());
    }

    m.freeze(true).unwrap();
    assert!(m.is_frozen().unwrap());
    let freezer = dir_of(&layout, m, "freezer");
    assert_eq!(read(&freezer.join("freezer.state")), "FROZEN");
    eprintln!(
        "frozen child /proc/{}/status State: {}",
        child.pid(),
        child.state()
    );
    m.freeze(false).unwrap();
    assert!(!m.is_frozen().unwrap());
    assert_eq!(read(&freezer.join("freezer.state")), "THAWED");

    child.stop();
    m.destroy().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} survived destroy", p.display());
    }
    m.destroy().expect("destroy is idempotent");
}

#[test]
fn nested_absolute_path_inherits_cpuset() {
    let layout = match v1_layout(&["cpuset"]) {
        Ok(l) => l,
        Err(why) => return skip("nested_absolute_path_inherits_cpuset", &why),
    };
    let top = unique_name();
    let cleanup = Cleanup {
        manager: manager_for(&layout, &format!("/{top}/inner")).unwrap(),
        extra: layout
            .v1_hierarchies()
            .iter()
            .chain(layout.unified())
            .map(|h| h.mount_point().join(&top))
            .collect(),
    };
    let m = cleanup.manager.as_ref();
    m.create().unwrap();
    let cpuset_root = layout.v1_hierarchy_for("cpuset").unwrap().mount_point();
    let inner = dir_of(&layout, m, "cpuset");
    assert_eq!(inner, cpuset_root.join(&top).join("inner"));
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = read(&inner.join(file));
        assert!(!value.is_empty(), "{file} was not inherited");
        assert_eq!(value, read(&cpuset_root.join(&top).join(file)));
    }
    // A cpuset can now be narrowed and a process placed.
    let first_cpu = read(&cpuset_root.join("cpuset.effective_cpus"))
        .split([',', '-'])
        .next()
        .unwrap()
        .to_string();
    m.apply(&resources(&format!(
        r#"{{"cpu":{{"cpus":"{first_cpu}"}}}}"#
    )))
    .unwrap();
    assert_eq!(read(&inner.join("cpuset.cpus")), first_cpu);
    m.destroy().unwrap();
    assert!(!inner.exists());
    assert!(
        cpuset_root.join(&top).exists(),
        "destroy removes only the leaf"
    );
}

#[test]
fn values_the_host_cannot_apply_are_errors() {
    let layout = match v1_layout(&["cpu"]) {
        Ok(l) => l,
        Err(why) => return skip("values_the_host_cannot_apply_are_errors", &why),
    };
    let cleanup = Cleanup {
        manager: manager_for(&layout, &format!("/{}", unique_name())).unwrap(),
        extra: Vec::new(),
    };
    let m = cleanup.manager.as_ref();
    let err = m
        .apply(&resources(r#"{"pids":{"limit":1}}"#))
        .expect_err("apply before create");
    assert!(err.to_string().contains("was create called?"), "{err}");
    m.create().unwrap();

    // The kernel refuses a CFS period below 1ms.
    let err = m
        .apply(&resources(r#"{"cpu":{"period":10}}"#))
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("linux.resources.cpu.period \"10\""), "{err}");
    assert!(err.contains("cpu.cfs_period_us"), "{err}");

    let err = m
        .apply(&resources(r#"{"unified":{"memory.high":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux.resources.unified[\"memory.high\"]"),
        "{err}"
    );

    for (controller, json, field) in [
        (
            "hugetlb",
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
            "hugepageLimits[0].limit",
        ),
        ("net_cls", r#"{"network":{"classID":1}}"#, "network.classID"),
        (
            "rdma",
            r#"{"rdma":{"mlx5_0":{"hcaHandles":1}}}"#,
            "rdma[\"mlx5_0\"]",
        ),
    ] {
        if layout.v1_hierarchy_for(controller).is_some() {
            eprintln!("{controller} is mounted here; not checking its absence");
            continue;
        }
        let err = m.apply(&resources(json)).unwrap_err().to_string();
        eprintln!("{err}");
        assert!(err.contains(&format!("linux.resources.{field}")), "{err}");
        assert!(
            err.contains(&format!("the {controller} controller")),
            "{err}"
        );
        if layout.mode() == Mode::Hybrid {
            let unified = layout
                .unified()
                .unwrap()
                .mount_point()
                .join("cgroup.controllers");
            if read(&unified).split_whitespace().any(|c| c == controller) {
                assert!(err.contains("only in the cgroup2 hierarchy"), "{err}");
            }
        }
    }
    m.destroy().unwrap();
}
