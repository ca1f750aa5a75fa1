//! What the container tests share: the image, an engine with it pulled, and the check
//! that nothing of any container is left.
#![allow(dead_code)]
use std::sync::OnceLock;

use bulwark_tests::images::{fixture_layer, Compression, Format, Image};
use bulwark_tests::registry::registries;
use bulwark_tests::{mounts_under, Bulwark};
use serde_json::Value;

/// The fixture (busybox and bulwark-check) as an image in the plain registry.
pub fn image() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let image = Image::build(
            &[(fixture_layer(), Compression::Gzip)],
            "amd64",
            Format::Oci,
        );
        let registry = &registries().plain;
        registry.push_image("containers/busybox", "1", &image);
        format!("{}/containers/busybox:1", registry.addr)
    })
}

/// An engine with the image pulled.
pub fn engine() -> Bulwark {
    let engine = Bulwark::new();
    engine.ok(["pull", "-q", image()]);
    engine
}

pub fn inspect(engine: &Bulwark, what: &str) -> Value {
    let text = engine.ok(["inspect", what]);
    let all: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    all[0].clone()
}

pub fn status(engine: &Bulwark, what: &str) -> String {
    engine
        .ok(["inspect", "-f", "{{.State.Status}}", what])
        .trim()
        .to_owned()
}

/// Nothing of any container is left: no container directories or names, no root
/// filesystem mounts, no runtime state, no process of the store's.
#[track_caller]
pub fn assert_nothing_left(engine: &Bulwark) {
    let containers = engine.containers_dir();
    let left: Vec<String> = std::fs::read_dir(&containers)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "names" && n != "events.log")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    let names: Vec<_> = std::fs::read_dir(containers.join("names"))
        .map(|e| e.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "names left: {names:?}");
    assert_eq!(
        mounts_under(&engine.store()),
        Vec::<std::path::PathBuf>::new(),
        "mounts left"
    );
    let mounts = std::fs::read_dir(engine.store().join("mounts"))
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(mounts, 0, "root filesystems left in the store");
    let monitors = bulwark_tests::processes_mentioning(&engine.store().display().to_string());
    assert!(monitors.is_empty(), "processes left: {monitors:?}");
}
