//! Stands in for an unpacker with a bug in its tar handling: it enters the real
//! unpacker's sandbox (`bulwark_layer::confine`) on the directory it is given, then tries
//! what such a bug would let a hostile layer do, one line per attempt: `<name>: blocked
//! (<error>)` or `<name>: DONE`. The engine tests run it and check every line.
//!
//! usage: unpack-probe LAYER_DIR HOST_FILE
#![forbid(unsafe_code)]

use std::path::Path;

fn report(name: &str, result: Result<(), String>) {
    match result {
        Ok(()) => println!("{name}: DONE"),
        Err(e) => println!("{name}: blocked ({e})"),
    }
}

fn io<T>(r: std::io::Result<T>) -> Result<(), String> {
    r.map(drop).map_err(|e| e.to_string())
}

fn sys<T>(r: nix::Result<T>) -> Result<(), String> {
    r.map(drop).map_err(|e| e.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, host_file) = (Path::new(&args[1]), args[2].as_str());
    if let Err(e) = bulwark_layer::confine::confine(dir, true) {
        println!("confine: FAILED ({e})");
        std::process::exit(1);
    }
    // What the unpacker must still be able to do.
    report("write-inside", io(std::fs::write("/inside", b"ok")));
    // Host files by name: they have none in here.
    report("write-host-path", io(std::fs::write(host_file, b"escaped")));
    report(
        "chmod-host-file",
        sys(nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            host_file,
            nix::sys::stat::Mode::from_bits_truncate(0o777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )),
    );
    report(
        "chown-host-file",
        sys(nix::unistd::chown(
            host_file,
            Some(nix::unistd::Uid::from_raw(1)),
            None,
        )),
    );
    report(
        "truncate-host-file",
        sys(nix::unistd::truncate(host_file, 0)),
    );
    report(
        "write-through-dotdot",
        io(std::fs::write(format!("/../../..{host_file}"), b"escaped")),
    );
    report("symlink-then-write", {
        let _ = std::os::unix::fs::symlink(host_file, "/link");
        io(std::fs::OpenOptions::new().append(true).open("/link"))
    });
    report(
        "hardlink-host-file",
        io(std::fs::hard_link(host_file, "/hard")),
    );
    report("read-proc", io(std::fs::read("/proc/self/mounts")));
    // What the seccomp filter refuses.
    report(
        "mount-tmpfs",
        sys(nix::mount::mount(
            Some("tmpfs"),
            "/",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )),
    );
    report(
        "run-a-program",
        io(std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("true")
            .status()),
    );
    report(
        "open-a-socket",
        io(std::net::TcpStream::connect("127.0.0.1:1")),
    );
    report(
        "new-user-namespace",
        sys(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)),
    );
    report("chroot", sys(nix::unistd::chroot("/")));
}
