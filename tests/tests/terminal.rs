//! `process.terminal`: the container's stdio is a pty whose master reaches whoever asked
//! for it (a `--console-socket` listener, or the foreground runtime relaying its own
//! terminal), and the program really sees a tty of the right size.

use std::io::{ErrorKind, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bulwark_tests::{Bundle, Runtime, TempDir, CHECKER};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// How long to wait for the runtime to connect, or a container to finish writing.
/// How long a terminal session may take: a deadline for hangs, as long as any test's.
fn patience() -> Duration {
    bulwark_tests::default_timeout()
}

/// A unix socket for `--console-socket`, in a directory of its own.
struct ConsoleSocket {
    dir: TempDir,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.path().join("console.sock")).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { dir, listener }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    fn arg(&self) -> String {
        self.path().to_str().expect("UTF-8 path").to_owned()
    }

    /// Accepts the runtime's connection and receives the pty master it sends.
    #[track_caller]
    fn receive_master(&self) -> OwnedFd {
        let stream = self.accept();
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(patience())).unwrap();
        let mut name = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let flags = MsgFlags::MSG_CMSG_CLOEXEC;
        let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), flags)
            .unwrap_or_else(|e| panic!("receiving the pty master: {e}"));
        let mut received = msg
            .cmsgs()
            .expect("control messages fit")
            .filter_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => Some(fds),
                _ => None,
            });
        let fds = received.next().expect("an SCM_RIGHTS message");
        assert_eq!(fds.len(), 1, "one fd, the pty master");
        // SAFETY: the kernel has just installed this descriptor in our table for the
        // SCM_RIGHTS message; nothing else refers to it, so it is ours to own and close.
        unsafe { OwnedFd::from_raw_fd(fds[0]) }
    }

    fn accept(&self) -> UnixStream {
        let deadline = Instant::now() + patience();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => return stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accepting on the console socket: {e}"),
            }
        }
    }
}

/// Everything written to the pty until every slave fd is closed (EIO), or `patience()`.
fn read_master(master: &OwnedFd) -> String {
    let deadline = Instant::now() + patience();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => break,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(e) => panic!("poll on the pty master: {e}"),
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => panic!("reading the pty master: {e}"),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The checker's report among what came through the terminal (lines end in `\r\n`).
#[track_caller]
fn report_in(output: &str) -> Value {
    let line = output.lines().find(|l| l.starts_with('{'));
    let line = line.unwrap_or_else(|| panic!("no report in the terminal output: {output:?}"));
    serde_json::from_str(line.trim_end())
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {line:?}"))
}

/// Asserts the report's stdio is a pty of the container's devpts, of `size` (rows, cols)
/// if given.
#[track_caller]
fn assert_on_a_tty(report: &Value, size: Option<(u16, u16)>) {
    assert_eq!(report["stdin_isatty"], true, "{report}");
    assert_eq!(report["stdout_isatty"], true, "{report}");
    let tty = &report["tty"];
    let name = tty["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("/dev/pts/"), "tty {tty}");
    if let Some((rows, cols)) = size {
        let got = (&tty["rows"], &tty["cols"]);
        assert_eq!(got, (&json!(rows), &json!(cols)), "tty {tty}");
    }
}

fn bundle_arg(bundle: &Bundle) -> &str {
    bundle.path().to_str().expect("UTF-8 path")
}

fn terminal_bundle(size: Option<(u16, u16)>) -> Bundle {
    Bundle::with(|config| {
        config["process"]["terminal"] = json!(true);
        if let Some((height, width)) = size {
            config["process"]["consoleSize"] = json!({ "height": height, "width": width });
        }
    })
}

#[test]
fn console_socket_receives_the_pty_master() {
    let rt = Runtime::new();
    let socket = ConsoleSocket::new();
    let bundle = terminal_bundle(Some((37, 123)));
    let id = rt.unique_id();
    let args = [
        "create",
        "--console-socket",
        &socket.arg(),
        "--bundle",
        bundle_arg(&bundle),
        &id,
    ];
    rt.cmd(args).assert_success();
    let master = socket.receive_master();
    rt.cmd(["start", &id]).assert_success();
    let report = report_in(&read_master(&master));
    assert_on_a_tty(&report, Some((37, 123)));
    drop(master);
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}

#[test]
fn terminal_without_console_socket_fails_create_clearly() {
    let rt = Runtime::new();
    let bundle = terminal_bundle(None);
    let output = rt.cmd(["create", "--bundle", bundle_arg(&bundle), &rt.unique_id()]);
    output.assert_failure();
    for words in ["process.terminal", "--console-socket"] {
        assert!(output.stderr.contains(words), "{output}");
    }
    rt.assert_clean(&bundle);
}

/// Sets the window size of the terminal behind `fd` with TIOCSWINSZ.
fn set_window_size(fd: &OwnedFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is an open pty descriptor for the whole call, and TIOCSWINSZ only
    // reads a `winsize`, which `size` is and which outlives the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    assert_eq!(ret, 0, "TIOCSWINSZ: {}", Errno::last());
}

/// Foreground `run` of `args` with a pty of our own of `rows` x `cols` as its stdio;
/// the checker's report as it came through that pty.
#[track_caller]
fn report_through_our_pty(rt: &Runtime, args: &[&str], rows: u16, cols: u16) -> Value {
    let pty = nix::pty::openpty(None, None).unwrap();
    set_window_size(&pty.slave, rows, cols);
    let mut bundle = terminal_bundle(None);
    bundle.set_args(args);
    let mut command = rt.command(["run", "--bundle", bundle_arg(&bundle), &rt.unique_id()]);
    let stdio = || Stdio::from(pty.slave.try_clone().unwrap());
    command.stdin(stdio()).stdout(stdio()).stderr(stdio());
    let mut runtime = command.spawn().unwrap();
    drop(command);
    drop(pty.slave);
    let output = read_master(&pty.master);
    let deadline = Instant::now() + patience();
    let status = loop {
        if let Some(status) = runtime.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = runtime.kill();
            panic!("run did not exit; the terminal showed {output:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        status.success(),
        "run: {status}; the terminal showed {output:?}"
    );
    rt.assert_clean(&bundle);
    report_in(&output)
}

/// The container's terminal is relayed to ours, and our window size reaches it (the
/// pause gives the relay time to copy it: see the next test).
#[test]
fn foreground_run_relays_the_terminal_it_was_given() {
    let rt = Runtime::new();
    let script = format!("sleep 1; exec {CHECKER} report");
    let report = report_through_our_pty(&rt, &["/bin/sh", "-c", &script], 33, 111);
    assert_on_a_tty(&report, Some((33, 111)));
}

/// The program must find the window size in place when it starts, as with consoleSize.
/// A race, so a few tries.
#[test]

fn foreground_run_sets_the_window_size_before_the_program_starts() {
    let rt = Runtime::new();
    for _ in 0..5 {
        let report = report_through_our_pty(&rt, &[CHECKER, "report"], 33, 111);
        assert_on_a_tty(&report, Some((33, 111)));
    }
}

#[test]
fn exec_with_tty_and_console_socket_gets_a_pty() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    bundle.set_args(&[CHECKER, "sleep", "60"]);
    let id = rt.unique_id();
    rt.cmd(["run", "--detach", "--bundle", bundle_arg(&bundle), &id])
        .assert_success();
    let init = rt.state(&id)["pid"].as_i64().expect("state has a pid");

    let socket = ConsoleSocket::new();
    let socket_arg = socket.arg();
    let args = [
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        &socket_arg,
        &id,
        CHECKER,
        "report",
    ];
    rt.cmd(args).assert_success();
    let master = socket.receive_master();
    let report = report_in(&read_master(&master));
    assert_on_a_tty(&report, None);
    let init_pid_ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    assert_eq!(
        report["namespaces"]["pid"],
        init_pid_ns.to_string_lossy().as_ref()
    );
    rt.cmd(["delete", "--force", &id]).assert_success();
    rt.assert_clean(&bundle);
}
