//! The unpacker's sandbox, tried as an attacker would use a bug in its tar handling: a
//! stand-in unpacker (`unpack-probe`) enters the real sandbox and attempts host writes,
//! metadata changes, links, mounts, programs and sockets. Only writes inside its layer
//! directory may work; the host file aimed at keeps its content, mode and owner.
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bulwark_tests::TempDir;

#[test]
fn a_confined_unpacker_reaches_nothing_but_its_layer() {
    let work = TempDir::with_mode(0o755);
    let layer = work.path().join("diff");
    std::fs::create_dir(&layer).unwrap();
    let host_file = work.path().join("host-file");
    std::fs::write(&host_file, b"host content").unwrap();
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unpack-probe"))
        .arg(&layer)
        .arg(&host_file)
        .output()
        .expect("running unpack-probe");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        "write-host-path",
        "chmod-host-file",
        "chown-host-file",
        "truncate-host-file",
        "write-through-dotdot",
        "symlink-then-write",
        "hardlink-host-file",
        "read-proc",
        "mount-tmpfs",
        "run-a-program",
        "open-a-socket",
        "new-user-namespace",
        "chroot",
    ];
    assert!(
        report.contains("write-inside: DONE"),
        "the sandbox keeps the unpacker from its own layer: {report}"
    );
    for attempt in expected {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{attempt}:")))
            .unwrap_or_else(|| panic!("no verdict for {attempt}: {report}"));
        assert!(line.contains(": blocked ("), "{line}\n{report}");
    }
    assert_eq!(report.lines().count(), expected.len() + 1, "{report}");
    // The host file is as it was; the one write landed inside the layer.
    let meta = std::fs::metadata(&host_file).unwrap();
    assert_eq!(std::fs::read(&host_file).unwrap(), b"host content");
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 0));
    assert_eq!(std::fs::read(layer.join("inside")).unwrap(), b"ok");
    let beside: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        beside.len(),
        2,
        "something was made beside the layer: {beside:?}"
    );
}
