//! `exec`: a new process in a running container, through the runtime library (this
//! process joins the container, so it runs from a sealed binary: see
//! `bulwark_runtime::seal`).
use bulwark_container::Status;
use nix::sys::wait::{waitpid, WaitStatus};
use serde_json::{json, Value};

use crate::{Engine, EngineError};

/// What `exec` runs, and how.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub interactive: bool,
    /// A terminal of `(rows, columns)`: the caller relays it ([`Execution::master`]).
    pub tty: Option<(u16, u16)>,
    pub detach: bool,
    pub privileged: bool,
}

/// A started exec'd process.
#[derive(Debug)]
pub struct Execution {
    pub pid: nix::unistd::Pid,
    /// Its terminal's master side, with `tty`.
    pub master: Option<std::os::fd::OwnedFd>,
}

impl Engine {
    /// Runs `request` in the container on this process's stdio (or a new terminal, with
    /// `tty`); [`Engine::wait_exec`] waits for it.
    pub fn exec_container(
        &self,
        what: &str,
        request: &ExecRequest,
    ) -> Result<Execution, EngineError> {
        let dir = self.container(what)?;
        let state = dir.state()?;
        match state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is paused, unpause the container before exec",
                    dir.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    dir.id
                )))
            }
        }
        if request.cmd.is_empty() {
            return Err(EngineError::InvalidArgument(
                "exec needs a command to run".into(),
            ));
        }
        let bundle = dir.bundle().join("config.json");
        let config: Value = serde_json::from_slice(
            &std::fs::read(&bundle)
                .map_err(|e| EngineError::Other(format!("{}: {e}", bundle.display())))?,
        )
        .map_err(|e| EngineError::Other(format!("{}: {e}", bundle.display())))?;
        let mut process = config["process"].clone();
        process["args"] = json!(request.cmd);
        process["terminal"] = json!(request.tty.is_some());
        if let Some((rows, cols)) = request.tty {
            process["consoleSize"] = json!({"height": rows, "width": cols});
        }
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for var in &request.env {
            let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(var.clone());
        }
        process["env"] = json!(env);
        if let Some(cwd) = &request.working_dir {
            process["cwd"] = json!(cwd);
        }
        if let Some(user) = &request.user {
            let rootfs = config["root"]["path"].as_str().unwrap_or_default();
            process["user"] = super::spec::user(std::path::Path::new(rootfs), user)?;
        }
        if request.privileged {
            let all = super::spec::grantable();
            process["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
        }
        let process = serde_json::from_value(process)
            .map_err(|e| EngineError::Other(format!("the exec process: {e}")))?;
        if !request.interactive {
            let null = std::fs::File::open("/dev/null")
                .map_err(|e| EngineError::Other(format!("/dev/null: {e}")))?;
            let _ = nix::unistd::dup2_stdin(&null);
        }
        let (ours, theirs) = match request.tty {
            Some(_) => {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| {
                    EngineError::Other(format!("a socket pair for the terminal: {e}"))
                })?;
                (Some(ours), Some(std::os::fd::OwnedFd::from(theirs)))
            }
            None => (None, None),
        };
        let execed = bulwark_runtime::exec(
            &self.runtime_root(),
            &dir.id,
            bulwark_runtime::ExecOptions {
                process,
                console: theirs,
                rootless: self.config.rootless,
                ..Default::default()
            },
        )?;
        let master = ours
            .map(|socket| {
                bulwark_sys::socket::recv_fd(std::os::fd::AsFd::as_fd(&socket))
                    .map_err(|e| EngineError::Other(format!("receiving the exec's terminal: {e}")))
            })
            .transpose()?;
        Ok(Execution {
            pid: execed.spawned.pid,
            master,
        })
    }

    /// Waits for an exec'd process; its exit code (128 + the signal that ended it).
    pub fn wait_exec(&self, execution: &Execution) -> Result<i32, EngineError> {
        loop {
            match waitpid(execution.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(EngineError::Other(format!(
                        "waiting for the exec'd process: {e}"
                    )))
                }
            }
        }
    }
}
