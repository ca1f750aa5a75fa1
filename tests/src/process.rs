//! Running a command with a time limit and capturing what it printed.
//!
//! Output goes to unlinked temporary files rather than pipes: a detached container
//! inherits the runtime's stdio, and a pipe would then stay open until the container
//! exits, hanging the test. A file is simply read once the command itself has exited.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::paths::unique_name;

/// Time limit for one command, overridable with `BULWARK_TEST_TIMEOUT` (seconds).
pub fn default_timeout() -> Duration {
    std::env::var("BULWARK_TEST_TIMEOUT")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// What a finished command printed, as text.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or `None` if a signal ended the command.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing everything the command printed, unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Panics, showing everything the command printed, unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit: {self}");
        self
    }

    /// Panics unless it exited non-zero.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` and captures its stdout and stderr (stdin is left as the caller set
/// it), killing it and panicking after `timeout`.
#[track_caller]
pub fn run_captured(command: &mut Command, timeout: Duration) -> Output {
    match try_run_captured(command, timeout) {
        Ok(output) => output,
        Err(e) => panic!("running {command:?}: {e}"),
    }
}

/// Like [`run_captured`] but reports failures instead of panicking (for `Drop`).
pub(crate) fn try_run_captured(
    command: &mut Command,
    timeout: Duration,
) -> std::io::Result<Output> {
    Spawned::new(command)?.try_finish(timeout)
}

/// A command started in the background with its output captured, for tests that act on
/// it while it runs (signal it, watch its container) and then wait for it, never forever.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout: File,
    stderr: File,
}

impl Spawned {
    pub fn new(command: &mut Command) -> std::io::Result<Spawned> {
        let (stdout_writer, stdout) = capture_file()?;
        let (stderr_writer, stderr) = capture_file()?;
        let child = command
            .stdout(stdout_writer)
            .stderr(stderr_writer)
            .spawn()?;
        Ok(Spawned {
            child,
            stdout,
            stderr,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the command to exit; kills it and panics after `timeout`.
    #[track_caller]
    pub fn finish(self, timeout: Duration) -> Output {
        match self.try_finish(timeout) {
            Ok(output) => output,
            Err(e) => panic!("waiting for a spawned command: {e}"),
        }
    }

    fn try_finish(mut self, timeout: Duration) -> std::io::Result<Output> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let partial =
                    read_all(&mut self.stdout) + "\n--- stderr ---\n" + &read_all(&mut self.stderr);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no exit after {timeout:?}; killed it. stdout so far:\n{partial}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Output {
            status,
            stdout: read_all(&mut self.stdout),
            stderr: read_all(&mut self.stderr),
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An unlinked temp file, opened twice: a writer for the child and a reader of our own
/// (separate file offsets, so the child's later writes do not disturb our read).
fn capture_file() -> std::io::Result<(Stdio, File)> {
    let path = std::env::temp_dir().join(unique_name("bulwark-tests-io"));
    let writer = File::options().write(true).create_new(true).open(&path)?;
    let reader = File::open(&path);
    std::fs::remove_file(&path)?;
    Ok((Stdio::from(writer), reader?))
}

fn read_all(reader: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = reader
        .rewind()
        .and_then(|()| reader.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The value of a `key: value` line of a container's output, trimmed; panics (showing
/// the output) when there is none.
#[track_caller]
pub fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} in the output:\n{output}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_both_streams_and_status() {
        let output = run_captured(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            default_timeout(),
        );
        assert_eq!(output.stdout, "out\n");
        assert_eq!(output.stderr, "err\n");
        output.assert_code(3).assert_failure();
    }

    #[test]
    fn background_children_holding_stdout_do_not_hang() {
        let start = Instant::now();
        let output = run_captured(
            Command::new("sh").args(["-c", "sleep 120 & echo started"]),
            default_timeout(),
        );
        output.assert_success();
        assert_eq!(output.stdout, "started\n");
        // Not waited for the background sleep (two minutes).
        assert!(start.elapsed() < Duration::from_secs(100));
    }

    #[test]
    fn timeouts_kill_and_report() {
        let err = try_run_captured(
            Command::new("sh").args(["-c", "echo partial; exec sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("partial"), "{err}");
    }
}
