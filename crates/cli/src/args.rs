//! The command line, shaped like runc's so engines can drive bulwark-runtime unchanged.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bulwark-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1"), about = "A security-first OCI container runtime with runc's command line")]
pub struct Cli {
    /// Directory for container state [default: /run/bulwark-runtime, or
    /// $XDG_RUNTIME_DIR/bulwark-runtime when run without root]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Append log lines to this file instead of stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log line format
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups with systemd (not supported yet)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Run without root privileges: true, false or auto (with `spec`: emit a rootless config)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a default config.json to the bundle directory
    Spec(SpecArgs),
    /// Create a container from a bundle; its program waits for `start`
    Create(CreateArgs),
    /// Start the program of a created container
    Start(IdArg),
    /// Print a container's OCI state as JSON
    State(IdArg),
    /// Send a signal to a container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a stopped container (or any, with --force)
    Delete(DeleteArgs),
    /// Create and start a container; in the foreground, wait and return its exit status
    Run(RunArgs),
    /// Run a new process inside a container
    Exec(ExecArgs),
    /// List containers
    List(ListArgs),
    /// List the processes of a container
    Ps(PsArgs),
    /// Print the runtime-spec features this runtime supports, as JSON
    Features,
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// Change a container's resource limits
    Update(UpdateArgs),
    /// Print a container's resource statistics and OOM events as JSON lines
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file with linux.resources, or - for stdin
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (k, m, g suffixes)
    #[arg(
        long,
        short = 'm',
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    pub memory: Option<String>,
    #[arg(
        long = "memory-reservation",
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for none
    #[arg(
        long = "memory-swap",
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(
        long = "cpu-quota",
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(
        long = "pids-limit",
        allow_negative_numbers = true,
        allow_hyphen_values = true
    )]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// How often to print statistics in stream mode
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Policy profile: hardened (bulwark's default) or docker (Docker's defaults)
    #[arg(long, default_value = bulwark_policy::DEFAULT)]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Bundle directory (holding config.json)
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container is started instead of waiting for it
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long = "keep")]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container, not just its init
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// Signal name (TERM, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A JSON file with the process to run (runtime-spec `process`)
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Return once the process runs instead of waiting for it
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Set an environment variable (NAME=value); repeatable
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid] to run as
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional supplementary gid; repeatable
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN); repeatable
    #[arg(long = "cap", short = 'c')]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container (the process starts once it is resumed)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup: PATH, or CONTROLLER[,CONTROLLER]:PATH
    /// on cgroup v1 (repeatable)
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the ids
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    pub id: String,
}
