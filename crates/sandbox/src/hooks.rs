//! Running OCI hooks: the container state on stdin, `timeout` honoured, a non-zero exit
//! or a timeout reported with the hook's field name.
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_spec::runtime::Hook;

/// Runs each hook of one kind (`name` is its field, e.g. `createRuntime`) in order,
/// stopping at the first failure.
pub fn run_all(name: &str, hooks: &[Hook], state: &[u8]) -> Result<(), String> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state)
            .map_err(|e| format!("hooks.{name}[{index}] {}: {e}", hook.path().display()))?;
    }
    Ok(())
}

/// Runs every hook of one kind even when some fail (poststart and poststop, whose
/// failures are only warnings); returns the failures.
pub fn run_all_reporting(name: &str, hooks: &[Hook], state: &[u8]) -> Vec<String> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| {
            run_one(hook, state)
                .err()
                .map(|e| format!("hooks.{name}[{index}] {}: {e}", hook.path().display()))
        })
        .collect()
}

fn run_one(hook: &Hook, state: &[u8]) -> Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut command = Command::new(hook.path());
    if let Some(arg0) = args.first() {
        command.arg0(arg0);
    }
    command.args(args.iter().skip(1)).env_clear();
    for var in hook.env().iter().flatten() {
        if let Some((key, value)) = var.split_once('=') {
            command.env(key, value);
        }
    }
    // Hook output goes to the runtime's stderr, where engines collect it.
    let stderr = std::io::stderr()
        .as_fd_clone()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(stderr)
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("failed with {status}"))
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "did not finish within its timeout of {}s and was killed",
                hook.timeout().unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

trait CloneFd {
    fn as_fd_clone(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl CloneFd for std::io::Stderr {
    fn as_fd_clone(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}
