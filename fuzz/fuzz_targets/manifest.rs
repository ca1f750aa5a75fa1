//! Registry bytes through the image crate: a manifest, index or config as a registry
//! (or an archive) could send it, and the same bytes as an image name. An error is fine;
//! a panic or a hang is a bug.
#![no_main]

use bulwark_image::manifest::{self, Manifest};
use bulwark_image::{Digest, ImageName, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(name) = ImageName::parse(text) {
            let _ = (name.canonical(), name.familiar(), name.full_repository());
        }
    }
    let digest = Digest::of(data);
    match manifest::parse(data, &digest) {
        Ok(Manifest::Index(index)) => {
            let _ = manifest::choose(&index, &Platform::host(), "fuzz");
        }
        Ok(Manifest::Image(image)) => {
            // The same bytes as the config too: layers() must agree or refuse.
            if let Ok(config) = manifest::parse_config(data, &digest) {
                let _ = manifest::layers(&image, &config, &digest);
            }
        }
        Err(_) => {}
    }
});
