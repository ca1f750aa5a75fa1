//! `bulwark pull` and the local image commands against Debian's docker-registry on
//! 127.0.0.1, with images these tests build: what lands in the store, what a container
//! sees on the overlay made from it, and Docker's output for `images`, `inspect`, `rmi`,
//! `tag`, `prune` and `system df`.
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bulwark_tests::images::{fixture_layer, rich_layers, Compression, Format, Image};
use bulwark_tests::registry::registries;
use bulwark_tests::{Bulwark, Bundle, Runtime};
use serde_json::Value;

/// Uploads the rich image (on the fixture, so it runs) as `repo:tag`.
fn publish(repo: &str, tag: &str, format: Format, compression: Compression, device: bool) -> Image {
    let mut layers = vec![(fixture_layer(), compression)];
    layers.extend(rich_layers(compression, device));
    let image = Image::build(&layers, "amd64", format);
    registries().plain.push_image(repo, tag, &image);
    image
}

fn inspect(engine: &Bulwark, what: &str) -> Value {
    let text = engine.ok(["image", "inspect", what]);
    let all: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("inspect is not JSON ({e}): {text}"));
    all[0].clone()
}

/// The unpacked directory of each layer, bottom first.
fn layer_dirs(engine: &Bulwark, what: &str) -> Vec<PathBuf> {
    let info = inspect(engine, what);
    let lower = info["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .expect("a LowerDir")
        .to_owned();
    lower.split(':').rev().map(PathBuf::from).collect()
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Everything the layers carry is in the store as overlayfs needs it.
fn check_layers(engine: &Bulwark, name: &str, device: bool) {
    let dirs = layer_dirs(engine, name);
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let (base, top) = (&dirs[1], &dirs[2]);
    assert_eq!(
        std::fs::read_to_string(base.join("etc/hostname")).unwrap(),
        "base\n"
    );
    let whiteout = std::fs::symlink_metadata(top.join("etc/deleted-later")).expect("a whiteout");
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "not a 0:0 whiteout"
    );
    assert_eq!(
        xattr(&top.join("opaque"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        std::fs::read_link(top.join("bin/link")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::read_link(top.join("abs-link")).unwrap(),
        Path::new("/etc/hostname")
    );
    let (hard, tool2) = (
        top.join("bin/hard").metadata().unwrap(),
        top.join("bin/tool2").metadata().unwrap(),
    );
    assert_eq!(
        hard.ino(),
        tool2.ino(),
        "bin/hard is not a hardlink of bin/tool2"
    );
    assert_eq!(
        top.join("bin/setuid").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    let cap = xattr(&top.join("bin/capped"), "security.capability").expect("the file capability");
    assert_eq!(&cap[..8], &[0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0]);
    let owned = top.join("home-1234").metadata().unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1234, 2345, 0o750)
    );
    assert_eq!(
        top.join("old-file").metadata().unwrap().mtime(),
        1_000_000_000
    );
    if device {
        let null = std::fs::symlink_metadata(top.join("dev-null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(
            (
                rustix::fs::major(null.rdev()),
                rustix::fs::minor(null.rdev())
            ),
            (1, 3)
        );
    }
}

/// A container on the image's overlay sees the image as the layers say.
fn check_container(engine: &Bulwark, name: &str, fuse: bool) {
    let mut args = vec!["image", "mount", name];
    if fuse {
        args.push("--fuse");
    }
    let merged = engine.ok(&args).trim().to_owned();
    let root_name = Path::new(&merged)
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    bundle.edit(|c| {
        c["root"]["path"] = Value::String(merged.clone());
        c["root"]["readonly"] = Value::Bool(false);
        c["process"]["args"] = serde_json::json!([
            "/bin/sh", "-c",
            "cat /etc/hostname /etc/added /opaque/*; ls /etc/deleted-later /opaque/from-base 2>&1; /bin/link; echo x > /new-file && echo wrote"
        ]);
    });
    let out = rt.run(&bundle, &rt.unique_id());
    out.assert_success();
    for want in ["base\n", "added\n", "only this\n", "tool\n", "wrote\n"] {
        assert!(out.stdout.contains(want), "{want:?} missing: {out}");
    }
    assert_eq!(
        out.stdout.matches("No such file or directory").count(),
        2,
        "{out}"
    );
    // The write went to this root filesystem's own upper layer, not the image.
    let store = engine.store();
    assert!(store
        .join("mounts")
        .join(&root_name)
        .join("upper/new-file")
        .exists());
    assert!(layer_dirs(engine, name)
        .iter()
        .all(|d| !d.join("new-file").exists()));
    let listed = engine.ok(["image", "umount", &root_name]);
    assert_eq!(listed.trim(), root_name);
    assert!(!Path::new(&merged).exists(), "{merged} is still there");
    assert!(
        bulwark_tests::mounts_under(&store).is_empty(),
        "a mount is left under the store"
    );
}

#[test]
fn a_multi_layer_image_pulls_whole_in_every_format_and_compression() {
    let cases = [
        ("pull/oci-gzip", Format::Oci, Compression::Gzip),
        ("pull/oci-zstd", Format::Oci, Compression::Zstd),
        ("pull/oci-plain", Format::Oci, Compression::None),
        ("pull/docker-gzip", Format::Docker, Compression::Gzip),
    ];
    for (repo, format, compression) in cases {
        let image = publish(repo, "v1", format, compression, true);
        let engine = Bulwark::new();
        let name = format!("{}/{repo}:v1", registries().plain.addr);
        let out = engine.cmd(["pull", &name]);
        out.assert_success();
        assert!(
            out.stdout.contains(&format!("Digest: {}", image.digest())),
            "{out}"
        );
        assert!(
            out.stdout
                .contains(&format!("Status: Downloaded newer image for {name}")),
            "{out}"
        );
        assert!(out.stdout.ends_with(&format!("{name}\n")), "{out}");
        assert!(
            !out.stdout.contains("\x1b["),
            "terminal codes on a pipe: {out}"
        );
        check_layers(&engine, &name, true);
        assert_eq!(inspect(&engine, &name)["Id"], Value::String(image.id()));
        // Pulled again: nothing new.
        let again = engine.cmd(["pull", &name]);
        again.assert_success();
        assert!(
            again
                .stdout
                .contains(&format!("Status: Image is up to date for {name}")),
            "{again}"
        );
    }
}

/// On a terminal, pull draws one line per layer in place; on a pipe it prints plain
/// lines (checked in every other pull here).
#[test]
fn a_pull_on_a_terminal_redraws_its_layer_lines() {
    publish("pull/tty", "v1", Format::Oci, Compression::Gzip, true);
    let engine = Bulwark::new();
    let name = format!("{}/pull/tty:v1", registries().plain.addr);
    let command = format!(
        "{} pull {name}",
        engine
            .command::<[&str; 0], &str>([])
            .get_program()
            .to_string_lossy()
    );
    // util-linux's script gives the command a pseudo-terminal.
    let out = engine.cmd_with::<[&str; 0], &str>([], |c| {
        *c = std::process::Command::new("script");
        c.args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("BULWARK_STORE", engine.store())
            .env("HOME", engine.home())
            .env("DOCKER_CONFIG", engine.docker_config())
            .stdin(std::process::Stdio::null());
    });
    out.assert_success();
    assert!(
        out.stdout.contains("\x1b[") && out.stdout.contains("\x1b[2K"),
        "no redraws: {out}"
    );
    assert!(out.stdout.contains(": Pull complete"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
}

#[test]
fn a_container_runs_on_the_images_overlay_and_on_fuse_overlayfs() {
    publish("pull/run", "v1", Format::Oci, Compression::Gzip, true);
    let engine = Bulwark::new();
    let name = format!("{}/pull/run:v1", registries().plain.addr);
    engine.ok(["pull", "-q", &name]);
    check_container(&engine, &name, false);
    check_container(&engine, &name, true);
}

#[test]
fn an_index_gives_this_hosts_platform_or_the_one_asked_for() {
    let layers = rich_layers(Compression::Gzip, false);
    for (repo, format) in [
        ("pull/index-oci", Format::Oci),
        ("pull/list-docker", Format::Docker),
    ] {
        let amd64 = Image::build(&layers[..1], "amd64", format);
        let arm64 = Image::build(&layers, "arm64", format);
        let index = registries()
            .plain
            .push_index(repo, "multi", &[&amd64, &arm64], format);
        let name = format!("{}/{repo}:multi", registries().plain.addr);
        let engine = Bulwark::new();
        let out = engine.cmd(["pull", &name]);
        out.assert_success();
        assert!(out.stdout.contains(&format!("Digest: {index}")), "{out}");
        let info = inspect(&engine, &name);
        assert_eq!(
            (info["Architecture"].as_str(), info["Id"].as_str()),
            (Some("amd64"), Some(amd64.id().as_str()))
        );
        assert!(
            info["RepoDigests"][0].as_str().unwrap().ends_with(&index),
            "{info}"
        );
        engine.ok(["pull", "--platform", "linux/arm64", &name]);
        let info = inspect(&engine, &name);
        assert_eq!(
            (info["Architecture"].as_str(), info["Variant"].as_str()),
            (Some("arm64"), Some("v8"))
        );
        let out = engine.cmd(["pull", "--platform", "linux/s390x", &name]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("linux/s390x") && out.stderr.contains("linux/amd64"),
            "{out}"
        );
    }
    // A single manifest for another platform is refused unless asked for.
    let arm_only = Image::build(&layers[..1], "arm64", Format::Oci);
    registries()
        .plain
        .push_image("pull/arm-only", "v1", &arm_only);
    let name = format!("{}/pull/arm-only:v1", registries().plain.addr);
    let engine = Bulwark::new();
    let out = engine.cmd(["pull", &name]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("does not match the specified platform"),
        "{out}"
    );
    assert_eq!(engine.ok(["images", "-q"]), "");
    engine.ok(["pull", "--platform", "linux/arm64", &name]);
}

#[test]
fn local_image_commands_print_what_docker_prints() {
    let image = publish("local/busy", "1.0", Format::Docker, Compression::Gzip, true);
    let engine = Bulwark::new();
    let addr = &registries().plain.addr;
    let name = format!("{addr}/local/busy:1.0");
    let short = &image.id()[7..19];
    assert_eq!(
        engine.ok(["images"]),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
    engine.ok(["pull", "-q", &name]);
    engine.ok(["tag", &name, "mine:latest"]);
    let table = engine.ok(["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY")
            && lines[0].contains("   TAG   ")
            && lines[0].contains("IMAGE ID"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        table.contains(&format!("{addr}/local/busy")) && table.contains(short),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mine ") && l.contains("latest")),
        "{table}"
    );
    assert_eq!(engine.ok(["images", "-q"]), format!("{short}\n{short}\n"));
    let digests = engine.ok(["images", "--digests", &format!("{addr}/local/busy")]);
    assert!(
        digests.contains("DIGEST") && digests.contains(&image.digest()),
        "{digests}"
    );
    let json = engine.ok(["images", "--format", "{{json .}}", "mine"]);
    let row: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["Repository"], "mine");
    assert_eq!(row["Tag"], "latest");
    assert_eq!(row["ID"], short);
    assert_eq!(row["Digest"], "<none>");
    assert!(
        json.contains("\\u003cnone\\u003e"),
        "not escaped as Go does: {json}"
    );
    let custom = engine.ok([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
        "mine",
    ]);
    assert_eq!(custom, format!("mine:latest {short}\n"));
    let bad = engine.cmd(["images", "--format", "{{.Nope}}"]);
    bad.assert_code(125);
    assert!(
        bad.stderr.contains(".Nope") && bad.stderr.contains(".Repository"),
        "{bad}"
    );

    let info = inspect(&engine, "mine");
    for key in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "GraphDriver",
    ] {
        assert!(info.get(key).is_some(), "inspect lacks {key}: {info}");
    }
    assert_eq!(info["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(info["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        engine.ok([
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            "mine"
        ]),
        "linux/amd64\n"
    );
    let missing = engine.cmd(["image", "inspect", "nosuch"]);
    missing.assert_code(1);
    assert_eq!(missing.stdout.trim(), "[]");
    assert!(
        missing.stderr.contains("No such image: nosuch:latest"),
        "{missing}"
    );

    // In use by a root filesystem: refused while it is the last tag, as Docker does.
    let mounted = engine.ok(["image", "mount", "--name", "user1", "mine"]);
    assert!(mounted.trim().ends_with("mounts/user1/merged"), "{mounted}");
    engine.ok(["rmi", &name]);
    let refused = engine.cmd(["rmi", "mine"]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr
            .contains("container user1 is using its referenced image"),
        "{refused}"
    );
    let df = engine.ok(["system", "df"]);
    assert!(
        df.lines().nth(1).unwrap().starts_with("Images")
            && df.contains("Containers")
            && df.contains("Local Volumes"),
        "{df}"
    );
    engine.ok(["image", "umount", "user1"]);
    let removed = engine.ok(["rmi", "mine"]);
    assert!(
        removed.contains("Untagged: mine:latest")
            && removed.contains(&format!("Deleted: {}", image.id())),
        "{removed}"
    );
    let nosuch = engine.cmd(["rmi", "mine"]);
    nosuch.assert_code(1);
    assert!(
        nosuch.stderr.contains("No such image: mine:latest"),
        "{nosuch}"
    );
    // Nothing of the image is left: blobs, layers and records all went.
    let left: Vec<String> = engine
        .store_tree()
        .into_iter()
        .filter(|p| {
            p.starts_with("blobs/sha256/")
                || p.starts_with("images/")
                || (p.starts_with("layers/") && p.len() > 20)
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn prune_removes_dangling_images_or_all_unused() {
    let engine = Bulwark::new();
    let addr = &registries().plain.addr;
    let layers = rich_layers(Compression::Gzip, true);
    let first = Image::build(&layers[..1], "amd64", Format::Oci);
    let second = Image::build(&layers, "amd64", Format::Oci);
    registries().plain.push_image("prune/x", "v1", &first);
    engine.ok(["pull", "-q", &format!("{addr}/prune/x:v1")]);
    registries().plain.push_image("prune/x", "v1", &second);
    engine.ok(["pull", "-q", &format!("{addr}/prune/x:v1")]);
    // The first lost its tag to the second: it is dangling now.
    let table = engine.ok(["images"]);
    assert!(table.contains("<none>"), "{table}");
    let dangling = engine.ok(["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(dangling, format!("{}\n", first.id()));
    let tagged = engine.ok([
        "images",
        "-q",
        "--no-trunc",
        "-f",
        "dangling=false",
        "-f",
        &format!("reference={addr}/prune/*"),
    ]);
    assert_eq!(tagged, format!("{}\n", second.id()));
    let bad = engine.cmd(["images", "--filter", "since=x"]);
    bad.assert_code(1);
    assert!(
        bad.stderr.contains("since") && bad.stderr.contains("not supported yet"),
        "{bad}"
    );
    let out = engine.ok(["image", "prune", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", first.id())) && out.contains("Total reclaimed space:"),
        "{out}"
    );
    assert!(!engine.ok(["images"]).contains("<none>"));
    let out = engine.ok(["image", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = engine.ok(["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("deleted: {}", second.id())), "{out}");
    assert_eq!(engine.ok(["images", "-q"]), "");
}

#[test]
fn bad_names_and_flags_are_refused_and_leave_nothing() {
    let engine = Bulwark::new();
    engine.ok(["images"]);
    let before = engine.store_tree();
    let cases: [(&[&str], &str); 5] = [
        (&["pull", "UPPER/case"], "invalid reference format"),
        (&["pull", "busybox@sha256:123"], "sha256:123"),
        (
            &["pull", "--platform", "linux", "busybox"],
            "--platform \"linux\"",
        ),
        (&["images", "--format", "{{range .}}"], "{{range .}}"),
        (&["tag", "nosuch", "other"], "No such image: nosuch:latest"),
    ];
    for (args, needle) in cases {
        let out = engine.cmd(args);
        out.assert_failure();
        assert!(
            out.stderr.contains(needle),
            "{args:?}: stderr lacks {needle:?}: {out}"
        );
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
    let out = engine.cmd([
        "pull",
        &format!("{}/no/such:thing", registries().plain.addr),
    ]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("manifest for") && out.stderr.contains("not found"),
        "{out}"
    );
    assert_eq!(
        engine.store_tree(),
        before,
        "a failed command changed the store"
    );
}
