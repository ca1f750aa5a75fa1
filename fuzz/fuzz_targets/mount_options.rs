//! Mount option lists (NUL-separated strings) through the option parser.
#![no_main]

use bulwark_spec::MountOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options: Vec<String> = data
        .split(|b| *b == 0)
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect();
    if let Ok(parsed) = MountOptions::parse(&options, "mounts[0].options") {
        // A flag is never both set and cleared.
        assert_eq!(parsed.set & parsed.clear, 0);
        assert_eq!(parsed.recursive_set & parsed.recursive_clear, 0);
    }
});
