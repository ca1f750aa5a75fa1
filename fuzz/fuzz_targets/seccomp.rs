//! `linux.seccomp` JSON through checking and compilation with libseccomp (no filter is
//! installed).
#![no_main]

use bulwark_spec::runtime::LinuxSeccomp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(filter) = bulwark_seccomp::compile(&profile) {
        assert!(!filter.program.is_empty());
    }
});
