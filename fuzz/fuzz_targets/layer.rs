//! Tar bytes through the unpacker (in process, into a fresh directory, no device nodes),
//! and what it made played back through the tar split. Refusing a layer is fine; a panic,
//! a hang or an object outside the directory is a bug. A layer that unpacked must play
//! back as the same bytes or fail with an error (an entry a later one replaced).
#![no_main]

use std::io::Read;
use std::os::fd::AsFd;

use bulwark_image::manifest::Compression;
use bulwark_image::Digest;
use bulwark_layer::{LayerTar, Limits, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("bulwark-fuzz-layer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("diff");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let root = std::fs::File::open(&dir).expect("the scratch directory");
    let diff_id = Digest::of(data);
    let options = Options {
        compression: Compression::None,
        diff_id: diff_id.clone(),
        limits: Limits {
            max_bytes: 16 << 20,
            max_entries: 10_000,
            max_path: 4096,
            max_ratio: 250,
        },
        devices: false,
        user_xattrs: true,
    };
    if let Ok((_, split)) = bulwark_layer::unpack(data, root.as_fd(), &options, Vec::new()) {
        let split_path = base.join("tar-split");
        let compressed = zstd::encode_all(&split[..], 1).expect("zstd in memory");
        std::fs::write(&split_path, compressed).expect("writing the tar split");
        if let Ok(mut played) = LayerTar::open(&dir, &split_path, &diff_id) {
            let mut back = Vec::new();
            if played.read_to_end(&mut back).is_ok() {
                assert_eq!(back, data, "a layer played back differently and passed its digest check");
            }
        }
    }
    // Nothing may appear beside the layer's directory but the tar split.
    for entry in std::fs::read_dir(&base).expect("the scratch directory") {
        let name = entry.expect("an entry").file_name();
        assert!(name == "diff" || name == "tar-split", "{name:?} was made outside the layer");
    }
    let _ = std::fs::remove_dir_all(&base);
});
