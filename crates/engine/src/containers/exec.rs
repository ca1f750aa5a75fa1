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
    pub detach: bool,
    pub privileged: bool,
}

impl Engine {
    /// Runs `request` in the container on this process's stdio; returns its exit code
    /// (0 at once with `detach`).
    pub fn exec_container(&self, what: &str, request: &ExecRequest) -> Result<i32, EngineError> {
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
        process["terminal"] = json!(false);
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
        let execed = bulwark_runtime::exec(
            &self.runtime_root(),
            &dir.id,
            bulwark_runtime::ExecOptions {
                process,
                rootless: self.config.rootless,
                ..Default::default()
            },
        )?;
        if request.detach {
            return Ok(0);
        }
        loop {
            match waitpid(execed.spawned.pid, None) {
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
