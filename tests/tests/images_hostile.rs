//! Hostile images: layers written to escape the unpacker (CVE-2014-6407, CVE-2014-9356,
//! CVE-2021-41089, CVE-2021-32760, CVE-2025-47290 and their kin), decompression and
//! archive bombs (CVE-2017-14992), and blobs a registry serves damaged. Each pull is
//! refused with an error naming the layer and the entry or limit, nothing lands where
//! the layer aimed, and the store keeps no record, blob or layer of it.
use std::path::{Path, PathBuf};

use bulwark_tests::images::{digest, noise, seed, Compression, Format, Image, Tar};
use bulwark_tests::registry::registries;
use bulwark_tests::Bulwark;

/// A place outside every store that an attack aims at; it must never appear.
fn target(case: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bulwark-escape-{}-{case}", std::process::id()))
}

/// The store holds nothing but its empty skeleton.
#[track_caller]
fn assert_store_empty(engine: &Bulwark) {
    let left: Vec<String> = engine
        .store_tree()
        .into_iter()
        .filter(|p| {
            let dirs = [
                "blobs",
                "blobs/sha256",
                "images",
                "ingest",
                "layers",
                "layers/l",
                "mounts",
            ];
            let files = ["lock", "gc.lock", "names.json"];
            !dirs.contains(&p.as_str()) && !files.contains(&p.as_str())
        })
        .collect();
    assert!(left.is_empty(), "the store kept: {left:?}");
    assert_eq!(engine.ok(["images", "-q"]), "");
}

/// Publishes `tar` as the second layer of an image (over a good one) and pulls it, as
/// root and without: the pull must fail naming the bad layer and `needles`.
#[track_caller]
fn refused(case: &str, tar: Vec<u8>, needles: &[&str]) {
    let good = Tar::new()
        .dir("ok")
        .file("ok/file", format!("good {case}").as_bytes())
        .finish();
    let image = Image::build(
        &[(good, Compression::Gzip), (tar, Compression::Gzip)],
        "amd64",
        Format::Oci,
    );
    let repo = format!("hostile/{case}");
    registries().plain.push_image(&repo, "v1", &image);
    // As root and as a user without root (whose unpacker could write to /tmp too).
    for engine in [Bulwark::new(), Bulwark::rootless()] {
        let out = engine.cmd(["pull", &format!("{}/{repo}:v1", registries().plain.addr)]);
        out.assert_code(1);
        eprintln!("{case}: {}", out.stderr.trim());
        assert!(!out.stderr.contains("panicked"), "{out}");
        let bad_layer = digest(&image.layers[1].0);
        assert!(
            out.stderr.contains(&bad_layer),
            "the error does not name layer {bad_layer}: {out}"
        );
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "the error lacks {needle:?}: {out}"
            );
        }
        assert_store_empty(&engine);
    }
}

#[test]
fn names_that_leave_the_layer_are_refused() {
    let escape = target("dotdot");
    let dotdot = format!("../../../../../../../../../..{}", escape.display());
    refused(
        "dotdot",
        Tar::new().file(&dotdot, b"escaped").finish(),
        &[&dotdot],
    );
    assert!(!escape.exists());
    let escape = target("absolute");
    let absolute = escape.display().to_string();
    refused(
        "absolute",
        Tar::new().file(&absolute, b"escaped").finish(),
        &[&absolute],
    );
    assert!(!escape.exists());
}

#[test]
fn writes_through_symlinks_are_refused() {
    let escape = target("via-root");
    let through = format!("evil{}", escape.display());
    let tar = Tar::new()
        .symlink("evil", "/")
        .file(&through, b"escaped")
        .finish();
    refused("symlink-root", tar, &[&through]);
    assert!(!escape.exists());

    let escape = target("via-dotdot");
    let through = format!("up{}", escape.display());
    let tar = Tar::new()
        .symlink("up", "../../../../../../../../..")
        .file(&through, b"escaped")
        .finish();
    refused("symlink-dotdot", tar, &[&through]);
    assert!(!escape.exists());

    // A symlink, then a directory of the same name, then a file meant to go through it.
    let outside = target("replaced");
    std::fs::create_dir_all(&outside).unwrap();
    let tar = Tar::new()
        .symlink("swap", outside.to_str().unwrap())
        .dir("swap")
        .file("swap/planted", b"escaped")
        .finish();
    refused("symlink-then-dir", tar, &["swap", "in place of a symlink"]);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something landed in {}",
        outside.display()
    );
    std::fs::remove_dir(&outside).unwrap();
}

#[test]
fn hardlinks_to_host_files_are_refused() {
    let passwd = Path::new("/etc/passwd");
    let before = (
        std::fs::read(passwd).unwrap(),
        std::fs::metadata(passwd).unwrap().len(),
    );
    let tar = Tar::new().hardlink("stolen", "/etc/passwd").finish();
    refused("hardlink-absolute", tar, &["stolen", "/etc/passwd"]);
    let tar = Tar::new()
        .hardlink("stolen", "../../../../../../../etc/passwd")
        .finish();
    refused("hardlink-dotdot", tar, &["stolen"]);
    // Through a symlink in the layer to a host directory.
    let tar = Tar::new()
        .symlink("etc-link", "/etc")
        .hardlink("stolen", "etc-link/passwd")
        .finish();
    refused("hardlink-via-symlink", tar, &["stolen"]);
    assert_eq!(
        (
            std::fs::read(passwd).unwrap(),
            std::fs::metadata(passwd).unwrap().len()
        ),
        before
    );
}

#[test]
fn bombs_hit_their_limits() {
    // 100 MB of zeros compress about a thousandfold: past the ratio limit.
    let bomb = Tar::new().file("zeros", &vec![0u8; 100 << 20]).finish();
    refused("gzip-bomb", bomb, &["decompression bomb"]);

    // The limits an administrator sets in engine.json.
    let good = Tar::new().file("small", b"ok").finish();
    let cases: [(&str, serde_json::Value, Vec<u8>, &str); 3] = [
        (
            "too-big",
            serde_json::json!({"max-bytes": 1 << 20}),
            Tar::new().file("big", &noise(2 << 20, seed())).finish(),
            "more than 1048576 bytes",
        ),
        (
            "too-many",
            serde_json::json!({"max-entries": 10}),
            {
                let mut t = Tar::new();
                for i in 0..20 {
                    t.file(&format!("f{i}"), b"x");
                }
                t.finish()
            },
            "entries",
        ),
        (
            "too-long",
            serde_json::json!({"max-path": 50}),
            Tar::new().file(&"n".repeat(60), b"x").finish(),
            "50",
        ),
    ];
    for (case, limits, tar, needle) in cases {
        let image = Image::build(
            &[(good.clone(), Compression::Gzip), (tar, Compression::Gzip)],
            "amd64",
            Format::Oci,
        );
        let repo = format!("hostile/{case}");
        registries().plain.push_image(&repo, "v1", &image);
        let engine = Bulwark::new();
        engine.configure(&serde_json::json!({"layer-limits": limits}));
        let out = engine.cmd(["pull", &format!("{}/{repo}:v1", registries().plain.addr)]);
        out.assert_code(1);
        assert!(
            out.stderr.contains(&digest(&image.layers[1].0)) && out.stderr.contains(needle),
            "{case}: {out}"
        );
        assert_store_empty(&engine);
    }
}

#[test]
fn a_layer_whose_content_is_not_its_diff_id_is_refused() {
    let good = Tar::new().file("a", b"a").finish();
    let mut image = Image::build(&[(good, Compression::Gzip)], "amd64", Format::Oci);
    // Swap in a different layer under the same config: its diff id no longer matches.
    let other = Tar::new().file("a", b"b").finish();
    let blob = Compression::Gzip.compress(&other);
    let manifest = String::from_utf8(image.manifest.clone())
        .unwrap()
        .replace(&digest(&image.layers[0].0), &digest(&blob))
        .replace(
            &format!("\"size\":{}", image.layers[0].0.len()),
            &format!("\"size\":{}", blob.len()),
        );
    image.manifest = manifest.into_bytes();
    image.layers[0] = (blob.clone(), other);
    registries()
        .plain
        .push_image("hostile/diff-id", "v1", &image);
    let engine = Bulwark::new();
    let out = engine.cmd([
        "pull",
        &format!("{}/hostile/diff-id:v1", registries().plain.addr),
    ]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&digest(&blob)) && out.stderr.contains("diff"),
        "{out}"
    );
    assert_store_empty(&engine);
}

/// A layer the registry serves damaged: changed, cut short or gone.
#[test]
fn damaged_blobs_are_refused_by_digest() {
    for case in ["changed", "truncated", "missing"] {
        let layer = Tar::new().file("data", &noise(256 << 10, seed())).finish();
        let image = Image::build(&[(layer, Compression::Gzip)], "amd64", Format::Oci);
        let repo = format!("damaged/{case}");
        let registry = &registries().plain;
        registry.push_image(&repo, "v1", &image);
        let blob = digest(&image.layers[0].0);
        let file = registry.blob_file(&blob);
        let mut bytes = std::fs::read(&file).unwrap();
        match case {
            "changed" => {
                let at = bytes.len() / 2;
                bytes[at] ^= 0xff;
                std::fs::write(&file, &bytes).unwrap();
            }
            "truncated" => std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap(),
            _ => std::fs::remove_file(&file).unwrap(),
        }
        let engine = Bulwark::new();
        let out = engine.cmd(["pull", &format!("{}/{repo}:v1", registry.addr)]);
        out.assert_code(1);
        eprintln!("{case}: {}", out.stderr.trim());
        assert!(
            out.stderr.contains(&blob),
            "{case}: the error does not name {blob}: {out}"
        );
        let said = match case {
            "changed" => "does not match",
            "truncated" => "truncated",
            _ => "does not have it",
        };
        assert!(out.stderr.contains(said), "{case}: {out}");
        assert_store_empty(&engine);
    }
}
