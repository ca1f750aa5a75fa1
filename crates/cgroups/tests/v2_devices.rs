//! cgroup v2 device rules on the real kernel: the v2 manager attaches the compiled eBPF
//! program to its own test cgroup (never to the root or any other), and a shell moved
//! into it can open /dev/null but not /dev/zero. On a hybrid host the process-only
//! unified mount stands in for a v2 host. Skips, saying why, without root or cgroup2.
mod common;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_cgroups::{device_program, manager_for, Layout, Mode};
use bulwark_sys::bpf;
use common::*;

/// The host's cgroup2 hierarchy as a v2 layout.
fn v2_layout() -> Result<Layout, String> {
    if !is_root() {
        return Err("needs root".into());
    }
    let host = Layout::detect().map_err(|e| format!("no cgroup layout: {e}"))?;
    match host.mode() {
        Mode::V2 => Ok(host),
        Mode::Hybrid => Layout::from_parts(Mode::V2, Vec::new(), host.unified().cloned())
            .map_err(|e| e.to_string()),
        Mode::V1 => Err("the host has no cgroup2 mount".into()),
    }
}

/// The runtime's default rules (deny all, then the standard devices).
const DEFAULTS: &str = r#"{"devices":[
    {"allow":false,"type":"a","access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":7,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":8,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":9,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":0,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":1,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":2,"access":"rwm"},
    {"allow":true,"type":"c","major":136,"access":"rwm"}]}"#;

const ONLY_NULL: &str = r#"{"devices":[{"allow":false,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#;

/// A shell that moves itself into `dir`, then reports which of /dev/null and /dev/zero
/// it could open for reading and for writing (`true`, not `:`: a failed redirection of a
/// special builtin ends the shell). Returns (stdout, stderr).
fn probe(dir: &Path) -> (String, String) {
    const SCRIPT: &str = r#"echo $$ > "$1/cgroup.procs" || exit 10
cat /proc/self/cgroup
for dev in null zero; do
    if true < /dev/$dev; then echo "$dev read ok"; fi
    if true > /dev/$dev; then echo "$dev write ok"; fi
done"#;
    let out = Command::new("sh")
        .args(["-c", SCRIPT, "sh"])
        .arg(dir)
        .env("LC_ALL", "C")
        .output()
        .expect("run sh");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "probe: {out:?}");
    (text(&out.stdout), text(&out.stderr))
}

fn opened(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.ends_with(" ok")).collect()
}

fn attached(dir: &Path) -> Vec<u32> {
    let cgroup = std::fs::File::open(dir).expect("open the test cgroup");
    bpf::query_cgroup_device(cgroup.as_fd()).expect("query device programs")
}

#[test]
fn v2_device_program_denies_all_but_dev_null() {
    let layout = match v2_layout() {
        Ok(l) => l,
        Err(why) => return skip("v2_device_program_denies_all_but_dev_null", &why),
    };
    let root = layout.unified().unwrap().mount_point().to_path_buf();
    let name = format!("bulwark-test-{}-devices", std::process::id());
    let cleanup = Cleanup {
        manager: manager_for(&layout, &format!("/{name}")).unwrap(),
        extra: Vec::new(),
    };
    let m = cleanup.manager.as_ref();
    let leaf: PathBuf = m.paths().remove(0);
    assert_eq!(leaf, root.join(&name), "only ever our own cgroup");
    m.create().unwrap();

    m.apply(&resources(ONLY_NULL)).unwrap();
    let first = attached(&leaf);
    assert_eq!(first.len(), 1, "one program after the first apply");
    let (stdout, stderr) = probe(&leaf);
    eprintln!("only /dev/null:\n{stdout}{stderr}");
    assert!(stdout.contains(&format!("0::/{name}\n")), "{stdout}");
    assert_eq!(opened(&stdout), ["null read ok", "null write ok"]);
    assert!(stderr.contains("/dev/zero"), "{stderr}");
    assert!(
        stderr.contains("Operation not permitted"),
        "EPERM: {stderr}"
    );

    // An update swaps the program (one attached before: BPF_F_REPLACE).
    m.apply(&resources(DEFAULTS)).unwrap();
    let second = attached(&leaf);
    assert_eq!(second.len(), 1, "still one program after an update");
    assert_ne!(second, first);
    let (stdout, stderr) = probe(&leaf);
    assert_eq!(
        opened(&stdout),
        [
            "null read ok",
            "null write ok",
            "zero read ok",
            "zero write ok"
        ],
        "{stderr}"
    );

    // With two attached (one from elsewhere), an update detaches both for its new one.
    let extra = device_program(&resources(ONLY_NULL).devices().clone().unwrap()).unwrap();
    let extra = bpf::load_cgroup_device_program(&extra, c"Apache-2.0").unwrap();
    let dir = std::fs::File::open(&leaf).unwrap();
    bpf::attach_cgroup_device(dir.as_fd(), extra.as_fd(), None).unwrap();
    assert_eq!(attached(&leaf).len(), 2);
    m.apply(&resources(ONLY_NULL)).unwrap();
    assert_eq!(
        attached(&leaf).len(),
        1,
        "the update detached both older programs"
    );
    let (stdout, _) = probe(&leaf);
    assert_eq!(opened(&stdout), ["null read ok", "null write ok"]);

    // Without a device list, apply leaves the program alone.
    let kept = attached(&leaf);
    m.apply(&resources("{}")).unwrap();
    assert_eq!(attached(&leaf), kept);

    m.destroy().unwrap();
    assert!(!leaf.exists());
}

/// Program shapes the verifier must take: empty list, a final allow-all, the defaults,
/// and many rules. Loaded only, attached nowhere.
#[test]
fn verifier_accepts_every_shape() {
    if !is_root() {
        return skip("verifier_accepts_every_shape", "needs root");
    }
    let mut many = String::from(r#"{"devices":[{"allow":false}"#);
    for i in 0..2000 {
        many += &format!(
            r#",{{"allow":{},"type":"b","major":{i},"minor":{},"access":"rw"}}"#,
            i % 2 == 0,
            i * 7
        );
    }
    many += "]}";
    for json in [
        r#"{"devices":[]}"#,
        r#"{"devices":[{"allow":false,"type":"c","major":1,"access":"w"},{"allow":true}]}"#,
        DEFAULTS,
        ONLY_NULL,
        &many,
    ] {
        let rules = resources(json).devices().clone().unwrap();
        let program = device_program(&rules).unwrap();
        if let Err(e) = bpf::load_cgroup_device_program(&program, c"Apache-2.0") {
            panic!("{} rules, {} instructions: {e}", rules.len(), program.len());
        }
    }
}

/// A program the verifier refuses (it returns an unset r0) comes back with its log.
#[test]
fn verifier_refusal_carries_the_log() {
    if !is_root() {
        return skip("verifier_refusal_carries_the_log", "needs root");
    }
    let e = bpf::load_cgroup_device_program(&[bpf::Insn::exit()], c"Apache-2.0").unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.errno, bulwark_sys::Errno::EACCES);
    assert!(e.log.contains("R0"), "{e}");
}
