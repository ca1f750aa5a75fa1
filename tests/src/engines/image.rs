//! The test image: the busybox fixture rootfs (with `bulwark-check`) as one layer, in a
//! tar that is both an OCI image layout (`index.json`, for containerd and skopeo) and a
//! `docker save` archive (`manifest.json`, for `docker load` and `podman load`).
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::fixture::Fixture;
use crate::process::{default_timeout, run_captured};

/// The name every engine knows the image by after loading it.
pub const IMAGE_NAME: &str = "bulwark-test/busybox:latest";

/// The image archive, built in `dir`.
#[derive(Debug)]
pub struct TestImage {
    pub archive: PathBuf,
}

impl TestImage {
    pub fn build(dir: &Path) -> TestImage {
        let layout = dir.join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let layer_tar = dir.join("layer.tar");
        let rootfs = Fixture::get().rootfs();
        run_captured(
            Command::new("tar")
                .args(["--numeric-owner", "-cf"])
                .arg(&layer_tar)
                .arg("-C")
                .arg(rootfs)
                .arg("."),
            default_timeout(),
        )
        .assert_success();
        let layer = add_blob(&blobs, &std::fs::read(&layer_tar).unwrap());
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"]
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        });
        let config = add_json_blob(&blobs, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor("application/vnd.oci.image.config.v1+json"),
            "layers": [layer.descriptor("application/vnd.oci.image.layer.v1.tar")],
        });
        let manifest = add_json_blob(&blobs, &manifest);
        let mut entry = manifest.descriptor("application/vnd.oci.image.manifest.v1+json");
        entry["annotations"] = json!({
            "io.containerd.image.name": format!("docker.io/{IMAGE_NAME}"),
            "org.opencontainers.image.ref.name": "latest",
        });
        write_json(
            &layout.join("index.json"),
            &json!({"schemaVersion": 2, "manifests": [entry]}),
        );
        write_json(
            &layout.join("oci-layout"),
            &json!({"imageLayoutVersion": "1.0.0"}),
        );
        write_json(
            &layout.join("manifest.json"),
            &json!([{
                "Config": config.path(),
                "RepoTags": [IMAGE_NAME],
                "Layers": [layer.path()],
            }]),
        );
        let archive = dir.join("image.tar");
        run_captured(
            Command::new("tar")
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&layout)
                .arg("."),
            default_timeout(),
        )
        .assert_success();
        TestImage { archive }
    }
}

struct Blob {
    digest: String,
    size: usize,
}

impl Blob {
    fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.size})
    }

    fn path(&self) -> String {
        format!("blobs/sha256/{}", self.digest.trim_start_matches("sha256:"))
    }
}

fn add_json_blob(blobs: &Path, value: &Value) -> Blob {
    add_blob(blobs, &serde_json::to_vec(value).unwrap())
}

fn add_blob(blobs: &Path, bytes: &[u8]) -> Blob {
    let staged = blobs.join("staged");
    std::fs::write(&staged, bytes).unwrap();
    let out = run_captured(Command::new("sha256sum").arg(&staged), default_timeout());
    out.assert_success();
    let hex = out.stdout.split_whitespace().next().unwrap().to_owned();
    std::fs::rename(&staged, blobs.join(&hex)).unwrap();
    Blob {
        digest: format!("sha256:{hex}"),
        size: bytes.len(),
    }
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}
