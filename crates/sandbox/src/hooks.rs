//! Running OCI hooks: the container state written to the hook's stdin while the timeout
//! runs (a hook that never reads a large state cannot hold the runtime up past its
//! timeout), the hook waited on through a pidfd, and a failure reported with the hook's
//! field name.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use bulwark_spec::hooks::{HookConfig, HookPoint};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// A hook that failed, named by its field (`hooks.prestart[0]`) and path.
#[derive(Debug, thiserror::Error)]
#[error("hooks.{point}[{index}] {path}: {failure}")]
pub struct HookError {
    pub point: &'static str,
    pub index: usize,
    pub path: String,
    pub failure: HookFailure,
}

/// How a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("cannot run: {0}")]
    Spawn(std::io::Error),
    #[error("failed with {0}")]
    Exit(ExitStatus),
    #[error("did not finish within its timeout of {0}s and was killed")]
    Timeout(u64),
    #[error("waiting for it: {0}")]
    Wait(Errno),
}

/// Runs each hook at `point` in order, stopping at the first failure.
pub fn run_all(point: HookPoint, hooks: &[HookConfig], state: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state).map_err(|failure| error(point, index, hook, failure))?;
    }
    Ok(())
}

/// Runs every hook at `point` even when some fail (poststart and poststop, whose failures
/// are only warnings); returns the failures.
pub fn run_all_reporting(point: HookPoint, hooks: &[HookConfig], state: &[u8]) -> Vec<HookError> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| {
            run_one(hook, state)
                .err()
                .map(|failure| error(point, index, hook, failure))
        })
        .collect()
}

fn error(point: HookPoint, index: usize, hook: &HookConfig, failure: HookFailure) -> HookError {
    HookError {
        point: point.name(),
        index,
        path: hook.path.display().to_string(),
        failure,
    }
}

fn run_one(hook: &HookConfig, state: &[u8]) -> Result<(), HookFailure> {
    let mut command = Command::new(&hook.path);
    command
        .arg0(&hook.args[0])
        .args(&hook.args[1..])
        .env_clear();
    for var in &hook.env {
        if let Some((key, value)) = var.split_once('=') {
            command.env(key, value);
        }
    }
    // Hook output goes to the runtime's stderr, where engines collect it.
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(stderr)
        .spawn()
        .map_err(HookFailure::Spawn)?;
    let result = supervise(&mut child, hook, state);
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Feeds `state` to the hook and waits for it to exit, both within its timeout.
fn supervise(child: &mut Child, hook: &HookConfig, state: &[u8]) -> Result<(), HookFailure> {
    // A hook that already exited is a zombie until waited for, so this cannot miss it.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pidfd = bulwark_sys::process::pidfd_open(pid).map_err(HookFailure::Wait)?;
    let mut stdin: Option<OwnedFd> = child.stdin.take().map(OwnedFd::from);
    if let Some(fd) = &stdin {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(HookFailure::Wait)?;
    }
    let deadline = hook.timeout.map(|t| Instant::now() + t);
    let mut written = 0;
    loop {
        if stdin.is_some() && written == state.len() {
            stdin = None; // EOF: the hook has the whole state.
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &stdin {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
        }
        let ready = match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(HookFailure::Wait(e)),
            Ok(ready) => ready,
        };
        let exited = fds[0].any().unwrap_or(false);
        let writable = fds.get(1).is_some_and(|fd| fd.any().unwrap_or(false));
        if exited {
            let status = child.wait().map_err(|e| HookFailure::Wait(io_errno(&e)))?;
            return if status.success() {
                Ok(())
            } else {
                Err(HookFailure::Exit(status))
            };
        }
        if ready == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(HookFailure::Timeout(
                hook.timeout.map_or(0, |t| t.as_secs()),
            ));
        }
        if writable {
            let fd = stdin.as_ref().expect("polled only while open");
            match nix::unistd::write(fd, &state[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN) => {}
                // A hook that does not read its state is fine: stop offering it.
                Err(_) => stdin = None,
            }
        }
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hook(script: &str, timeout: Option<u64>) -> HookConfig {
        HookConfig {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hi".into()],
            timeout: timeout.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_hook_reads_its_state_and_env() {
        let ok = hook("[ \"$(cat)\" = state ] && [ \"$GREETING\" = hi ]", Some(60));
        run_all(HookPoint::Prestart, &[ok], b"state").unwrap();
        let e = run_all(HookPoint::Poststop, &[hook("exit 3", None)], b"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("hooks.poststop[0] /bin/sh: failed with"),
            "{e}"
        );
    }

    #[test]
    fn a_hook_that_never_reads_a_large_state_times_out() {
        let state = vec![b'x'; 8 << 20];
        let started = Instant::now();
        let e = run_all(
            HookPoint::CreateRuntime,
            &[hook("sleep 30", Some(1))],
            &state,
        )
        .unwrap_err();
        assert!(matches!(e.failure, HookFailure::Timeout(1)), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the timeout held"
        );
        // Not reading at all, but exiting: fine.
        run_all(HookPoint::CreateRuntime, &[hook("true", Some(60))], &state).unwrap();
    }
}
