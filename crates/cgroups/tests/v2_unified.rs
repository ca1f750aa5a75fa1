//! The v2 manager against a real cgroup2 hierarchy: on a hybrid host, the process-only
//! unified mount stands in for a v2 host (it has no controllers, so resource writes must
//! fail clearly); on a pure v2 host, the real one. Skips, saying why, without root or a
//! cgroup2 mount.
mod common;

use std::os::unix::fs::MetadataExt;

use bulwark_cgroups::{manager_for, Layout, Mode};
use common::*;

/// The layout to test, and whether it is a hybrid host's unified mount standing in
/// for v2 (whose root must not get controllers enabled: that would change the host).
fn v2_layout() -> Result<(Layout, bool), String> {
    if !is_root() {
        return Err("needs root".into());
    }
    let host = Layout::detect().map_err(|e| format!("no cgroup layout: {e}"))?;
    match host.mode() {
        Mode::V2 => Ok((host, false)),
        Mode::Hybrid => {
            let unified = host.unified().cloned();
            let layout = Layout::from_parts(Mode::V2, Vec::new(), unified);
            layout.map(|l| (l, true)).map_err(|e| e.to_string())
        }
        Mode::V1 => Err("the host has no cgroup2 mount".into()),
    }
}

#[test]
fn v2_create_place_freeze_destroy() {
    let (layout, stand_in) = match v2_layout() {
        Ok(l) => l,
        Err(why) => return skip("v2_create_place_freeze_destroy", &why),
    };
    let root = layout.unified().unwrap().mount_point().to_path_buf();
    let cleanup = Cleanup {
        manager: manager_for(&layout, &format!("/{}", unique_name())).unwrap(),
        extra: Vec::new(),
    };
    let m = cleanup.manager.as_ref();
    m.create().unwrap();
    let leaf = m.paths().remove(0);
    assert!(leaf.is_dir());

    let entry = m.entry(&bulwark_cgroups::SubCgroups::None).unwrap();
    assert!(
        !entry.joins_after_clone(),
        "v2 has no v1 tasks files to join"
    );
    let fd = entry.clone_into.expect("v2 gives a CLONE_INTO_CGROUP fd");
    let stat = nix::sys::stat::fstat(&fd).unwrap();
    assert_eq!(stat.st_ino, std::fs::metadata(&leaf).unwrap().ino());

    let available = read(&root.join("cgroup.controllers"));
    if available.split_whitespace().all(|c| c != "pids") {
        let err = m
            .apply(&resources(r#"{"pids":{"limit":5}}"#))
            .unwrap_err()
            .to_string();
        eprintln!("{err}");
        assert!(err.contains("linux.resources.pids.limit \"5\""), "{err}");
        assert!(err.contains("pids controller is not available"), "{err}");
    } else if stand_in {
        eprintln!("pids is available in the hybrid unified root; not enabling it there");
    } else {
        m.apply(&resources(r#"{"pids":{"limit":5}}"#)).unwrap();
        assert_eq!(read(&leaf.join("pids.max")), "5");
    }
    // Device rules become an eBPF program on the leaf (tests/v2_devices.rs has more).
    m.apply(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"}]}"#,
    ))
    .unwrap();
    let dir = std::fs::File::open(&leaf).unwrap();
    let programs = bulwark_sys::bpf::query_cgroup_device(std::os::fd::AsFd::as_fd(&dir));
    assert_eq!(programs.unwrap().len(), 1);

    let mut child = Sleeper::spawn();
    m.add_process(child.pid()).unwrap();
    assert_eq!(m.pids().unwrap(), [child.pid()]);

    m.freeze(true).unwrap();
    assert!(m.is_frozen().unwrap());
    eprintln!(
        "frozen child /proc/{}/status State: {}",
        child.pid(),
        child.state()
    );
    m.freeze(false).unwrap();
    assert!(!m.is_frozen().unwrap());

    let stats = m.stats().unwrap();
    assert!(
        stats.cpu.usage_total_ns.is_some(),
        "cpu.stat is a core file"
    );

    child.stop();
    m.destroy().unwrap();
    assert!(!leaf.exists());
}
