//! `config.json` bytes through parsing and planning, for a host's root and for a runtime
//! without root: an error is fine, a panic or a hang is a bug.
#![no_main]

use bulwark_spec::{parse_config, Config, Host};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = parse_config(data) else {
        return;
    };
    let rootless = Host {
        rootless: true,
        euid: 1000,
        egid: 1000,
        ..Host::privileged()
    };
    for host in [Host::privileged(), rootless] {
        if let Ok(planned) = Config::plan(spec.clone(), "/b".into(), "/b/rootfs".into(), &host) {
            // What the stages read must be consistent with what was checked.
            let config = planned.config;
            assert!(!config.process().args().is_empty());
            assert!(config.process().cwd().is_absolute());
            for mount in config.mounts() {
                assert!(mount.destination.is_absolute());
            }
            let _ = config.devices();
        }
    }
});
