//! `config.json` in a container's directory: what the container was created from. It is
//! written once by `create` (and again only by `rename` and `update`).
use serde::{Deserialize, Serialize};

/// A container as created: the image's config merged with the user's flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (`sha256:...`).
    pub image_id: String,
    /// RFC 3339.
    pub created: String,
    pub run: RunConfig,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub log: LogOptions,
    pub resources: Resources,
    pub security: Security,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<Tmpfs>,
    /// `bridge` (the default network), a network's name, `none`, `host` or
    /// `container:NAME`.
    pub network: String,
    /// `-p`, `--ip`, `--dns`... as given (checked by `create`).
    #[serde(default)]
    pub net: NetworkSettings,
    pub health: Option<HealthConfig>,
    /// The `bulwark` binary that made it (the monitor runs it for `--rm`).
    pub engine_binary: String,
}

/// The networking flags of `create` and `run`, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    /// `-p` values.
    pub publish: Vec<String>,
    /// `-P`: every exposed port to a free host port.
    pub publish_all: bool,
    /// The image's `ExposedPorts` and `--expose`, as `80/tcp`.
    pub exposed: Vec<String>,
    pub ip: Option<String>,
    pub aliases: Vec<String>,
    pub mac: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host` values.
    pub extra_hosts: Vec<String>,
}

/// The process and its surroundings, in Docker's terms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: String,
    /// Seconds; `None`: 10.
    pub stop_timeout: Option<i64>,
    pub tty: bool,
    pub open_stdin: bool,
    pub init: bool,
}

impl RunConfig {
    /// The program and its arguments: the entrypoint followed by the command.
    pub fn args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// `--restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    /// At most this many restarts (0: no limit).
    OnFailure(u32),
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses Docker's forms: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        Some(match text.split_once(':') {
            None if text == "no" || text.is_empty() => RestartPolicy::No,
            None if text == "on-failure" => RestartPolicy::OnFailure(0),
            None if text == "always" => RestartPolicy::Always,
            None if text == "unless-stopped" => RestartPolicy::UnlessStopped,
            Some(("on-failure", n)) => RestartPolicy::OnFailure(n.parse().ok()?),
            _ => return None,
        })
    }

    /// Docker's name, for `inspect`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure(_) => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// `--log-driver` and `--log-opt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogOptions {
    pub driver: LogDriver,
    /// Rotate when the file passes this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (at least 1).
    pub max_file: u32,
    pub mode: LogMode,
    /// Bytes the monitor holds for a reader (an attached client) before `mode` applies.
    pub max_buffer_size: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            driver: LogDriver::JsonFile,
            max_size: None,
            max_file: 1,
            mode: LogMode::Block,
            max_buffer_size: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    /// Docker's `json-file`: a JSON object per line.
    JsonFile,
    /// Docker's `local`: the same entries, rotated by default (20 MB x 5).
    Local,
    None,
}

impl LogDriver {
    pub fn name(&self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
        }
    }
}

/// What the monitor does when a reader falls behind by `max_buffer_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogMode {
    /// Stop reading the container's output until the reader catches up.
    Block,
    /// Drop what the reader cannot take, count it and say so in the log.
    Drop,
}

/// Limits (`-m`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`, `--ulimit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Option<i64>,
    /// `-1`: unlimited swap.
    pub memory_swap: Option<i64>,
    /// Billionths of a CPU.
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    /// `(name, soft, hard)`, the name without `RLIMIT_` in lower case (`nofile`).
    pub ulimits: Vec<(String, u64, u64)>,
}

/// `--privileged`, `--cap-add`, `--cap-drop`, `--security-opt`, `--read-only`, `--userns`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Security {
    /// `hardened` (the default) or `docker`.
    pub profile: String,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: Option<bool>,
    /// `None`: the profile's; `Some("unconfined")`, or a file's contents (JSON).
    pub seccomp: Option<String>,
    pub landlock: bool,
    pub read_only: bool,
    pub userns: String,
}

/// A bind mount (`-v SRC:DST[:ro]`, `--mount type=bind,...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

/// `--tmpfs DST[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub destination: String,
    pub options: Vec<String>,
}

/// `--health-cmd` and its intervals (nanoseconds, as Docker keeps them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthConfig {
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub retries: u32,
    pub start_period: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_as_dockers() {
        assert_eq!(RestartPolicy::parse("no"), Some(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Some(RestartPolicy::OnFailure(3))
        );
        assert_eq!(
            RestartPolicy::parse("on-failure"),
            Some(RestartPolicy::OnFailure(0))
        );
        assert_eq!(RestartPolicy::parse("always"), Some(RestartPolicy::Always));
        assert_eq!(
            RestartPolicy::parse("unless-stopped"),
            Some(RestartPolicy::UnlessStopped)
        );
        for bad in ["sometimes", "on-failure:x", "always:2"] {
            assert_eq!(RestartPolicy::parse(bad), None, "{bad}");
        }
    }
}
