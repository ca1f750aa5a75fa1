//! The small probe subcommands: exit, sleep, wait-signal, open, rewrite, cat, stat,
//! syscall, forks, alloc and as.

use std::ffi::OsStr;
use std::io::Write;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{lstat, major, minor, Mode, SFlag};
use serde_json::json;

use crate::kernel;

/// A wrong command line: reported with the usage text and exit status 2.
#[derive(Debug)]
pub struct Usage(pub String);

fn number<T: std::str::FromStr>(what: &str, arg: &OsStr) -> Result<T, Usage> {
    arg.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Usage(format!("{what} {arg:?} is not a valid number")))
}

/// `exit N`
pub fn exit(status: &OsStr) -> Result<i32, Usage> {
    number("exit status", status)
}

/// `sleep SECS` (fractions allowed)
pub fn sleep(secs: &OsStr) -> Result<i32, Usage> {
    let secs: f64 = number("sleep duration", secs)?;
    let duration = Duration::try_from_secs_f64(secs)
        .map_err(|e| Usage(format!("sleep duration {secs}: {e}")))?;
    std::thread::sleep(duration);
    Ok(0)
}

/// `wait-signal`: blocks the signals, installs handlers for them, then takes the first
/// with sigwait. Tests know it is ready once the signals show as caught (`SigCgt` in
/// /proc/PID/status): from then on nothing can be lost.
pub fn wait_signal() -> i32 {
    const SIGNALS: [Signal; 5] = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    let mut set = SigSet::empty();
    for signal in SIGNALS {
        set.add(signal);
    }
    let received = set
        .thread_block()
        .and_then(|()| kernel::catch_signals(&SIGNALS))
        .and_then(|()| set.wait());
    match received {
        Ok(signal) => {
            say(signal.as_str());
            128 + signal as i32
        }
        Err(e) => {
            eprintln!("bulwark-check: waiting for a signal: {e}");
            1
        }
    }
}

/// `open PATH r|w|rw`: prints `ok` or the errno name. Never creates, truncates or writes.
pub fn open(path: &OsStr, mode: &OsStr) -> Result<i32, Usage> {
    let access = match mode.to_str() {
        Some("r") => OFlag::O_RDONLY,
        Some("w") => OFlag::O_WRONLY,
        Some("rw") => OFlag::O_RDWR,
        _ => return Err(Usage(format!("open mode {mode:?} is not one of r, w, rw"))),
    };
    // O_NONBLOCK so a FIFO without a peer answers instead of hanging.
    let flags = access | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    match nix::fcntl::open(path, flags, Mode::empty()) {
        Ok(_fd) => say("ok"),
        Err(errno) => say(&errno_name(errno)),
    }
    Ok(0)
}

/// `rewrite PATH`: opens PATH for reading and writing, reads its first byte and writes
/// that same byte back in place; prints `ok` or the errno name of the step that failed.
/// Proves a file writable without changing it (an empty file is only opened).
pub fn rewrite(path: &OsStr) -> i32 {
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let result = nix::fcntl::open(path, flags, Mode::empty()).and_then(|fd| {
        let mut first = [0u8; 1];
        match nix::sys::uio::pread(&fd, &mut first, 0)? {
            0 => Ok(()),
            _ => nix::sys::uio::pwrite(&fd, &first, 0).map(drop),
        }
    });
    match result {
        Ok(()) => say("ok"),
        Err(errno) => say(&errno_name(errno)),
    }
    0
}

/// `syscall NR [ARG...]`: makes system call NR with up to six integer arguments and
/// prints `ok RESULT` or the errno name.
pub fn syscall(number: &OsStr, args: &[std::ffi::OsString]) -> Result<i32, Usage> {
    if args.len() > 6 {
        return Err(Usage(format!(
            "syscall takes at most 6 arguments, not {}",
            args.len()
        )));
    }
    let number: libc::c_long = self::number("syscall number", number)?;
    let mut values = [0 as libc::c_ulong; 6];
    for (slot, arg) in values.iter_mut().zip(args) {
        *slot = self::number("syscall argument", arg)?;
    }
    match kernel::raw_syscall(number, values) {
        Ok(ret) => say(&format!("ok {ret}")),
        Err(errno) => say(&errno_name(errno)),
    }
    Ok(0)
}

/// `cat PATH`: the file's bytes on stdout, or the errno name on stderr and status 1.
pub fn cat(path: &OsStr) -> i32 {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
        Err(e) => {
            eprintln!("{}", io_errno_name(&e));
            1
        }
    }
}

/// `stat PATH`: JSON {type, mode, uid, gid, size, major, minor[, target]} of the path
/// itself (symlinks are not followed), or the errno name.
pub fn stat(path: &OsStr) -> i32 {
    match lstat(path) {
        Ok(st) => {
            let kind = file_type(st.st_mode);
            let mut json = json!({
                "type": kind,
                "mode": st.st_mode & 0o7777,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "size": st.st_size,
                "major": major(st.st_rdev),
                "minor": minor(st.st_rdev),
            });
            if kind == "symlink" {
                json["target"] = match std::fs::read_link(path) {
                    Ok(target) => json!(target.to_string_lossy()),
                    Err(e) => json!(format!("error: {}", io_errno_name(&e))),
                };
            }
            say(&json.to_string());
        }
        Err(errno) => say(&errno_name(errno)),
    }
    0
}

fn file_type(mode: libc::mode_t) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "file",
        SFlag::S_IFDIR => "dir",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFCHR => "char",
        SFlag::S_IFBLK => "block",
        SFlag::S_IFIFO => "fifo",
        SFlag::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

/// `EACCES`, `ENOENT`...: the symbolic name tests compare against.
pub fn errno_name(errno: Errno) -> String {
    format!("{errno:?}")
}

fn io_errno_name(error: &std::io::Error) -> String {
    error
        .raw_os_error()
        .map_or_else(|| error.to_string(), |raw| errno_name(Errno::from_raw(raw)))
}

/// One line on stdout, flushed because the caller may exit right after.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout is the reader's problem; the exit status still tells the result.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// `tiocsti`: pushes a newline into the terminal on stdin as if typed (TIOCSTI), the way
/// a container could type commands into the shell it was started from; prints `ok` or
/// the errno name.
pub fn tiocsti() -> i32 {
    let stdin = std::io::stdin();
    match kernel::push_input(std::os::fd::AsFd::as_fd(&stdin), b'\n') {
        Ok(()) => say("ok"),
        Err(errno) => say(&errno_name(errno)),
    }
    0
}

/// `forks N [HOLD_SECS]`: a bounded fork bomb. Forks up to `N` children that wait to be
/// killed, prints `forked K` (how many the kernel allowed) and the errno that stopped it,
/// holds them HOLD_SECS (so several such bombs overlap), then kills and reaps them all. Bounded by `N`, so even an unlimited container harms nothing.
pub fn forks(count: &OsStr, hold: Option<&OsStr>) -> Result<i32, Usage> {
    let count: usize = number("fork count", count)?;
    let hold: f64 = hold.map_or(Ok(0.0), |h| number("hold seconds", h))?;
    let mut children = Vec::new();
    let mut stopped = String::from("none");
    for _ in 0..count {
        match kernel::fork_paused() {
            Ok(pid) => children.push(pid),
            Err(errno) => {
                stopped = errno_name(errno);
                break;
            }
        }
    }
    say(&format!("forked {} stopped by {stopped}", children.len()));
    std::thread::sleep(Duration::from_secs_f64(hold.max(0.0)));
    for pid in &children {
        let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
    }
    for pid in children {
        let _ = nix::sys::wait::waitpid(pid, None);
    }
    Ok(0)
}

/// `alloc MIB`: allocates MIB mebibytes in 16 MiB steps, touching every page so it is
/// really used, then prints `allocated MIB` and frees it all on exit. A memory limit
/// below MIB ends it first: the kernel's OOM killer (SIGKILL), or `stopped at N MiB`
/// when an allocation fails.
pub fn alloc(mib: &OsStr) -> Result<i32, Usage> {
    const STEP: usize = 16;
    let mib: usize = number("mebibytes", mib)?;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut total = 0;
    while total < mib {
        let size = STEP.min(mib - total) << 20;
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(size).is_err() {
            say(&format!("stopped at {total} MiB"));
            return Ok(0);
        }
        // Filling writes every page, so the kernel must back each one.
        chunk.resize(size, 1);
        held.push(chunk);
        total += size >> 20;
    }
    say(&format!("allocated {total} MiB"));
    Ok(0)
}

/// `as UID PROGRAM [ARG...]`: becomes uid and gid UID (no supplementary groups, where
/// that is allowed) and execs PROGRAM; prints the errno name if it cannot.
pub fn run_as(uid: &OsStr, command: &[std::ffi::OsString]) -> Result<i32, Usage> {
    let id: u32 = number("uid", uid)?;
    let Some(program) = command.first() else {
        return Err(Usage("as needs a program to run".into()));
    };
    let to_c = |s: &std::ffi::OsString| {
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(s.as_os_str()))
            .map_err(|_| Usage(format!("{s:?} contains a NUL byte")))
    };
    let args = command.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let _ = nix::unistd::setgroups(&[]);
    let (gid, uid) = (
        nix::unistd::Gid::from_raw(id),
        nix::unistd::Uid::from_raw(id),
    );
    let switched =
        nix::unistd::setresgid(gid, gid, gid).and_then(|()| nix::unistd::setresuid(uid, uid, uid));
    let errno = match switched {
        Ok(()) => nix::unistd::execvp(&to_c(program)?, &args).unwrap_err(),
        Err(errno) => errno,
    };
    say(&errno_name(errno));
    Ok(1)
}

/// Answers every UDP datagram on `port` with `echo: ` and the datagram, for ever (the
/// network tests' UDP server; busybox's nc has no UDP).
pub fn udp_echo(port: &OsStr) -> Result<i32, Usage> {
    let port: u16 = number("port", port)?;
    let socket = match std::net::UdpSocket::bind(("0.0.0.0", port)) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("udp-echo: bind {port}: {e}"));
            return Ok(1);
        }
    };
    say(&format!("udp-echo: listening on {port}"));
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_holds_what_it_says() {
        assert_eq!(alloc(OsStr::new("3")).unwrap(), 0);
        assert!(alloc(OsStr::new("lots")).is_err());
    }

    #[test]
    fn errno_names_are_symbolic() {
        assert_eq!(errno_name(Errno::EACCES), "EACCES");
        assert_eq!(errno_name(Errno::EROFS), "EROFS");
        assert_eq!(
            io_errno_name(&std::io::Error::from_raw_os_error(libc::ENOENT)),
            "ENOENT"
        );
    }

    #[test]
    fn file_types() {
        assert_eq!(file_type(libc::S_IFCHR | 0o666), "char");
        assert_eq!(file_type(libc::S_IFDIR | 0o755), "dir");
        assert_eq!(file_type(libc::S_IFLNK | 0o777), "symlink");
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        assert!(exit(OsStr::new("x")).is_err());
        assert_eq!(exit(OsStr::new("7")).unwrap(), 7);
        assert!(sleep(OsStr::new("-1")).is_err());
    }
}
