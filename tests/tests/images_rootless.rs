//! The engine without root: the store under `$HOME/.local/share/bulwark`, layers owned by
//! the user's subordinate ids (mapped by newuidmap and newgidmap), overlayfs xattrs in the
//! `user.` namespace, root filesystems mounted in the user's namespace (inside `bulwark
//! unshare`, where bulwark-runtime runs a container on one), and device nodes refused.
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bulwark_tests::images::{fixture_layer, rich_layers, Compression, Format, Image};
use bulwark_tests::registry::{registries, PASSWORD, USER};
use bulwark_tests::rootless::{User, SUBORDINATE};
use bulwark_tests::{runtime_binary, Bulwark};

fn publish(repo: &str, device: bool) -> (Image, String) {
    let mut layers = vec![(fixture_layer(), Compression::Gzip)];
    layers.extend(rich_layers(Compression::Gzip, device));
    let image = Image::build(&layers, "amd64", Format::Oci);
    registries().plain.push_image(repo, "v1", &image);
    (image, format!("{}/{repo}:v1", registries().plain.addr))
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn top_layer(engine: &Bulwark, name: &str) -> PathBuf {
    let lower = engine.ok([
        "image",
        "inspect",
        "-f",
        "{{.GraphDriver.Data.LowerDir}}",
        name,
    ]);
    PathBuf::from(lower.trim().split(':').next().unwrap())
}

#[test]
fn a_user_pulls_into_a_store_of_subordinate_ids() {
    let (image, name) = publish("rootless/rich", false);
    let engine = Bulwark::rootless();
    let user = User::get();
    let out = engine.cmd(["pull", &name]);
    out.assert_success();
    assert!(out.stdout.contains(&image.digest()), "{out}");
    assert!(
        engine.store().join("images").is_dir(),
        "the store is not at $HOME/.local/share/bulwark"
    );
    assert_eq!(
        engine
            .ok(["image", "inspect", "-f", "{{.Id}}", &name])
            .trim(),
        image.id()
    );
    let top = top_layer(&engine, &name);
    assert!(top.starts_with(engine.store()), "{}", top.display());
    // Root's files are the user's; uid 1234's are subordinate id 1233 past the range's start.
    let tool = top.join("bin/tool2").metadata().unwrap();
    assert_eq!((tool.uid(), tool.gid()), (user.uid, user.gid));
    let owned = top.join("home-1234").metadata().unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (SUBORDINATE.0 + 1233, SUBORDINATE.0 + 2344)
    );
    assert_eq!(
        top.join("bin/setuid").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    let whiteout = std::fs::symlink_metadata(top.join("etc/deleted-later")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert_eq!(
        xattr(&top.join("opaque"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr(&top.join("opaque"), "trusted.overlay.opaque"), None);
    // The file capability, stored by the kernel as one of the user's namespace (v3).
    let cap = xattr(&top.join("bin/capped"), "security.capability").expect("the file capability");
    assert!(cap[3] == 0x02 || cap[3] == 0x03, "{cap:?}");

    // The other commands, as the user.
    engine.ok(["tag", &name, "mine:1"]);
    let archive = engine.home().join("saved.tar");
    engine.ok(["save", "-o", archive.to_str().unwrap(), "mine:1"]);
    let table = engine.ok(["images"]);
    assert!(
        table.contains("mine") && table.contains(&image.id()[7..19]),
        "{table}"
    );
    let removed = engine.ok(["rmi", "mine:1", &name]);
    assert!(
        removed.contains(&format!("Deleted: {}", image.id())),
        "{removed}"
    );
    assert_eq!(
        engine.ok(["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: mine:1\n"
    );
    engine.ok(["image", "prune", "-a", "-f"]);
    assert_eq!(engine.ok(["images", "-q"]), "");
    let left: Vec<String> = engine
        .store_tree()
        .into_iter()
        .filter(|p| p.starts_with("layers/") && p != "layers/l")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_container_runs_on_a_users_root_filesystem() {
    let (_, name) = publish("rootless/run", false);
    let engine = Bulwark::rootless();
    let user = User::get();
    engine.ok(["pull", "-q", &name]);
    // Outside the user's namespace a mount would vanish with the command: refused.
    let out = engine.cmd(["image", "mount", &name]);
    out.assert_code(125);
    assert!(out.stderr.contains("bulwark unshare"), "{out}");

    // A bundle of the user's for bulwark-runtime, run inside `bulwark unshare`, where the
    // user is root of its namespace already.
    let home = engine.home();
    let bundle = home.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let runtime = home.join("bin/bulwark-runtime");
    std::fs::copy(runtime_binary(), &runtime).unwrap();
    let spec = std::process::Command::new(runtime_binary())
        .args(["spec", "--rootless"])
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(
        spec.status.success(),
        "{}",
        String::from_utf8_lossy(&spec.stderr)
    );
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let merged = engine.store().join("mounts/c1/merged");
    config["root"] = serde_json::json!({"path": merged, "readonly": false});
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "cat /etc/added; id -u; ls -n -d /home-1234"
    ]);
    let linux = config["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    linux["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "user");
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let chown = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(&bundle)
        .arg(&runtime)
        .status()
        .unwrap();
    assert!(chown.success());
    let script = format!(
        "set -e; b={bin}/bulwark; $b image mount --name c1 {name}; {bin}/bulwark-runtime --root {home}/rt run --bundle {bundle} c1; $b image umount c1",
        bin = home.join("bin").display(),
        home = home.display(),
        bundle = bundle.display(),
    );
    let out = engine.cmd(["unshare", "sh", "-c", &script]);
    out.assert_success();
    assert!(out.stdout.contains("added\n0\n"), "{out}");
    let listing = out
        .stdout
        .lines()
        .find(|l| l.ends_with("/home-1234"))
        .expect("the listing");
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        (fields[2], fields[3]),
        ("1234", "2345"),
        "the owner inside is not the image's: {out}"
    );
    assert!(out.stdout.trim_end().ends_with("c1"), "{out}");
    assert!(!merged.exists(), "the root filesystem is still there");
    let out = engine.cmd(["unshare", "true"]);
    out.assert_success();
}

#[test]
fn device_nodes_are_refused_without_root() {
    let (image, name) = publish("rootless/device", true);
    let engine = Bulwark::rootless();
    let out = engine.cmd(["pull", &name]);
    out.assert_code(1);
    let bad = bulwark_tests::images::digest(&image.layers[2].0);
    assert!(
        out.stderr.contains(&bad)
            && out.stderr.contains("dev-null")
            && out.stderr.contains("device node"),
        "{out}"
    );
    assert_eq!(engine.ok(["images", "-q"]), "");
    let kept: Vec<String> = engine
        .store_tree()
        .into_iter()
        .filter(|p| {
            (p.starts_with("blobs/sha256/") || p.starts_with("layers/") || p.starts_with("images/"))
                && p != "layers/l"
        })
        .collect();
    assert!(kept.is_empty(), "{kept:?}");
}

#[test]
fn a_user_logs_in_and_pulls_from_a_token_registry() {
    let (image, _) = publish("rootless/private", false);
    let engine = Bulwark::rootless();
    let token = &registries().token;
    let out = engine.cmd_input(
        ["login", "-u", USER, "--password-stdin", &token.addr],
        PASSWORD,
    );
    out.assert_success();
    let config = engine.docker_config().join("config.json");
    assert_eq!(
        config.metadata().unwrap().uid(),
        User::get().uid,
        "config.json is not the user's"
    );
    let private = format!("{}/rootless/private:v1", token.addr);
    let out = engine.cmd(["pull", &private]);
    out.assert_success();
    assert!(out.stdout.contains(&image.digest()), "{out}");
    // And pushes it elsewhere: the layers' tars played back from the user's store.
    let copy = format!("{}/rootless/pushed:v1", registries().plain.addr);
    engine.ok(["tag", &private, &copy]);
    let out = engine.cmd(["push", &copy]);
    out.assert_success();
    let other = Bulwark::new();
    other.ok(["pull", "-q", &copy]);
    assert_eq!(
        other
            .ok(["image", "inspect", "-f", "{{.Id}}", &copy])
            .trim(),
        image.id()
    );
}
