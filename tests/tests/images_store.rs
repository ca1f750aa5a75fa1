//! The store under stress: pulls killed part-way and retried, two pulls of images that
//! share layers at once, and images out and back in through `save` and `load` (also to
//! and from skopeo's docker-archive and oci-archive).
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use bulwark_tests::images::{digest, noise, rich_layers, seed, Compression, Format, Image, Tar};
use bulwark_tests::registry::registries;
use bulwark_tests::{default_timeout, Bulwark};

/// A test of how far a pull has got, from its store.
type Reached = dyn Fn(&Bulwark) -> bool;

/// Leftovers of a killed pull: partial downloads and unpacks.
fn leftovers(engine: &Bulwark) -> Vec<String> {
    engine
        .store_tree()
        .into_iter()
        .filter(|p| p.ends_with(".partial") || p.starts_with("layers/.tmp-"))
        .collect()
}

/// Waits for `child` to reach the state `reached` checks, then kills it. False if it
/// finished first.
fn kill_when(mut child: Child, reached: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + default_timeout();
    loop {
        if reached() {
            child.kill().expect("killing the pull");
            child.wait().expect("reaping the pull");
            return true;
        }
        if child.try_wait().expect("polling the pull").is_some() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "the pull neither finished nor got there"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_killed_pull_leaves_no_image_and_the_next_command_cleans_up() {
    // A large layer to be caught downloading, and one of many files to be caught unpacking.
    let big = Tar::new().file("big", &noise(160 << 20, seed())).finish();
    let mut many = Tar::new();
    for i in 0..30_000 {
        many.file(&format!("d{}/f{i}", i % 100), b"small file\n");
    }
    let image = Image::build(
        &[(big, Compression::None), (many.finish(), Compression::Gzip)],
        "amd64",
        Format::Oci,
    );
    let registry = &registries().plain;
    registry.push_image("store/killed", "v1", &image);
    let name = format!("{}/store/killed:v1", registry.addr);
    let engine = Bulwark::new();
    let phases: [(&str, &Reached); 2] = [
        // Layers stream from the registry into the unpacker: both are under way while a
        // layer's temporary directory exists.
        ("streaming the first layers", &|e: &Bulwark| {
            e.store_tree().iter().any(|p| p.starts_with("layers/.tmp-"))
        }),
        (
            "with one layer made and another under way",
            &|e: &Bulwark| {
                let tree = e.store_tree();
                tree.iter().any(|p| p.starts_with("layers/.tmp-"))
                    && tree.iter().any(|p| {
                        p.starts_with("layers/")
                            && p.ends_with("/layer.json")
                            && !p.contains(".tmp-")
                    })
            },
        ),
    ];
    for (phase, reached) in phases {
        let mut caught = false;
        for _attempt in 0..5 {
            let child = engine
                .command(["pull", "-q", &name])
                .spawn()
                .expect("starting a pull");
            if kill_when(child, || reached(&engine)) {
                caught = true;
                break;
            }
            engine.ok(["image", "prune", "-a", "-f"]);
        }
        assert!(caught, "no pull was caught {phase} in five tries");
        assert_eq!(
            engine.ok(["images", "-q"]),
            "",
            "killed while {phase}: an image is visible"
        );
        assert!(
            !leftovers(&engine).is_empty(),
            "killed while {phase}: nothing partial to clean?"
        );
        // The next pull cleans up, then does the whole job.
        engine.ok(["pull", "-q", &name]);
        assert_eq!(
            leftovers(&engine),
            Vec::<String>::new(),
            "after the retry ({phase})"
        );
        assert_eq!(
            engine
                .ok(["image", "inspect", "-f", "{{.Id}}", &name])
                .trim(),
            image.id()
        );
        engine.ok(["rmi", &name]);
        assert_eq!(engine.ok(["images", "-q"]), "");
    }
}

#[test]
fn two_pulls_at_once_share_their_layers_and_unpack_each_once() {
    let base = Tar::new().file("base", &noise(48 << 20, seed())).finish();
    let base_blob = Compression::Gzip.compress(&base);
    let one = Image::build(
        &[
            (base.clone(), Compression::Gzip),
            (Tar::new().file("one", b"1").finish(), Compression::Gzip),
        ],
        "amd64",
        Format::Oci,
    );
    let two = Image::build(
        &[
            (base, Compression::Gzip),
            (Tar::new().file("two", b"2").finish(), Compression::Gzip),
        ],
        "amd64",
        Format::Oci,
    );
    let registry = &registries().plain;
    registry.push_image("store/one", "v1", &one);
    registry.push_image("store/two", "v1", &two);
    let fetched_before = registry.blob_fetches(&digest(&base_blob));
    let engine = Bulwark::new();
    let a = engine
        .command(["pull", "-q", &format!("{}/store/one:v1", registry.addr)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = engine
        .command(["pull", "-q", &format!("{}/store/two:v1", registry.addr)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (child, what) in [(a, "one"), (b, "two")] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "pull of {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        registry.blob_fetches(&digest(&base_blob)) - fetched_before,
        1,
        "the shared layer was downloaded twice"
    );
    let layers: Vec<String> = engine
        .store_tree()
        .into_iter()
        .filter(|p| p.starts_with("layers/") && p.ends_with("/layer.json"))
        .collect();
    assert_eq!(layers.len(), 3, "three layers (one shared): {layers:?}");
    for image in [&one, &two] {
        let lower = engine.ok([
            "image",
            "inspect",
            "-f",
            "{{.GraphDriver.Data.LowerDir}}",
            &image.id(),
        ]);
        let bottom = lower.trim().rsplit(':').next().unwrap().to_owned();
        assert_eq!(
            std::fs::metadata(Path::new(&bottom).join("base"))
                .unwrap()
                .len(),
            48 << 20
        );
    }
}

fn same_content((a, in_a): (&Bulwark, &str), (b, in_b): (&Bulwark, &str)) {
    let dirs = |e: &Bulwark, what: &str| {
        e.ok([
            "image",
            "inspect",
            "-f",
            "{{.GraphDriver.Data.LowerDir}}",
            what,
        ])
    };
    let (da, db) = (dirs(a, in_a), dirs(b, in_b));
    for (x, y) in da.trim().split(':').zip(db.trim().split(':')) {
        let list = |d: &str| {
            let out = std::process::Command::new("find")
                .arg(d)
                .args(["-printf", "%P %y %m %U %G %s %T@ %l\n"])
                .output()
                .unwrap();
            // Times are compared for what the layer's entries set: not for directories a
            // layer makes implicitly nor for whiteouts (both get the time of unpacking).
            let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| {
                    let fields: Vec<&str> = l.split(' ').collect();
                    let untimed = fields[1] == "d" || (fields[1] == "c" && fields[2] == "0");
                    if untimed {
                        format!("{} {}", fields[..6].join(" "), fields[7])
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(list(x), list(y), "layer content differs: {x} vs {y}");
    }
}

#[test]
fn save_and_load_round_trip_and_speak_skopeos_archives() {
    let image = Image::build(
        &rich_layers(Compression::Gzip, true),
        "amd64",
        Format::Docker,
    );
    let registry = &registries().plain;
    registry.push_image("store/saved", "v1", &image);
    let name = format!("{}/store/saved:v1", registry.addr);
    let source = Bulwark::new();
    source.ok(["pull", "-q", &name]);
    let dir = bulwark_tests::TempDir::new();
    for format in ["docker-archive", "oci-archive"] {
        let archive = dir.path().join(format!("{format}.tar"));
        source.ok([
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            &name,
        ]);
        // skopeo reads what bulwark wrote.
        let inspected = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                &format!("{format}:{}", archive.display()),
            ])
            .output()
            .expect("running skopeo (Debian's skopeo)");
        assert!(
            inspected.status.success(),
            "skopeo cannot read the {format}: {}",
            String::from_utf8_lossy(&inspected.stderr)
        );
        let target = Bulwark::new();
        let out = target.ok(["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out, format!("Loaded image: {name}\n"), "{format}");
        assert_eq!(
            target
                .ok(["image", "inspect", "-f", "{{.Id}}", &name])
                .trim(),
            image.id(),
            "{format}"
        );
        same_content((&source, &name), (&target, &name));
    }
    // What skopeo writes, bulwark loads.
    for format in ["docker-archive", "oci-archive"] {
        let archive = dir.path().join(format!("skopeo-{format}.tar"));
        let dest = match format {
            "docker-archive" => format!("docker-archive:{}:{name}", archive.display()),
            _ => format!("oci-archive:{}:v1", archive.display()),
        };
        let copied = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{name}"),
                &dest,
            ])
            .output()
            .expect("running skopeo");
        assert!(
            copied.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
        let target = Bulwark::new();
        let out = target.cmd(["load", "-i", archive.to_str().unwrap()]);
        out.assert_success();
        // Converting a Docker image to OCI, skopeo rewrites its config (a new id); the
        // layers are the same.
        let id = target.ok(["images", "-q", "--no-trunc"]);
        assert_eq!(id.lines().count(), 1, "{format}: {out}");
        let layers = target.ok([
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            id.trim(),
        ]);
        let source_layers = source.ok(["image", "inspect", "-f", "{{json .RootFS.Layers}}", &name]);
        assert_eq!(layers, source_layers, "{format}");
        same_content((&source, &name), (&target, id.trim()));
    }
    // Not an archive: refused, nothing kept.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, noise(4096, seed())).unwrap();
    let target = Bulwark::new();
    target.ok(["images"]);
    let before = target.store_tree();
    let out = target.cmd(["load", "-i", junk.to_str().unwrap()]);
    out.assert_code(1);
    assert!(out.stderr.contains("archive"), "{out}");
    assert_eq!(target.store_tree(), before);
}

#[test]
fn unpacked_layers_keep_no_blob_and_give_their_exact_tar_back() {
    let image = Image::build(&rich_layers(Compression::Gzip, true), "amd64", Format::Oci);
    let registry = &registries().plain;
    registry.push_image("store/split", "v1", &image);
    let name = format!("{}/store/split:v1", registry.addr);
    let engine = Bulwark::new();
    engine.ok(["pull", "-q", &name]);
    // Only the config and the manifest stay as blobs: the layers are their directories.
    let mut blobs: Vec<String> = std::fs::read_dir(engine.store().join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    blobs.sort();
    let mut expected = vec![image.id(), image.digest()];
    expected.sort();
    assert_eq!(blobs, expected);
    // The tars played back are the ones pulled, byte for byte.
    let dir = bulwark_tests::TempDir::new();
    let archive = dir.path().join("saved.tar");
    engine.ok(["save", "-o", archive.to_str().unwrap(), &name]);
    let mut found = 0;
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if let Some((_, tar_bytes)) = image
            .layers
            .iter()
            .find(|(_, t)| path == format!("blobs/sha256/{}", &digest(t)[7..]))
        {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            assert!(bytes == *tar_bytes, "{path} is not the layer's tar");
            found += 1;
        }
    }
    assert_eq!(found, image.layers.len());
    // A file changed in a layer's directory: its tar no longer has the diff id, and
    // save says so rather than write a wrong layer.
    let lower = engine.ok([
        "image",
        "inspect",
        "-f",
        "{{.GraphDriver.Data.LowerDir}}",
        &name,
    ]);
    let top = Path::new(lower.trim().split(':').next().unwrap()).join("etc/added");
    let original = std::fs::read(&top).unwrap();
    std::fs::write(&top, b"changed\n").unwrap();
    let out = engine.cmd(["save", "-o", archive.to_str().unwrap(), &name]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&digest(&image.layers[1].1)) && out.stderr.contains("changed"),
        "{out}"
    );
    std::fs::write(&top, original).unwrap();
    engine.ok(["save", "-o", archive.to_str().unwrap(), &name]);
}
