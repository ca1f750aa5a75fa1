//! `bulwark`'s command line: Docker's verbs and flags for images.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "bulwark",
    version,
    about = "Pull, store and run container images",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The store's directory (default /var/lib/bulwark, or $XDG_DATA_HOME/bulwark without root).
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image.
    Run(crate::container_args::RunArgs),
    /// Create a new container.
    Create(crate::container_args::CreateArgs),
    /// Start one or more stopped containers.
    Start(crate::container_args::StartArgs),
    /// Stop one or more running containers.
    Stop(crate::container_args::StopArgs),
    /// Restart one or more containers.
    Restart(crate::container_args::StopArgs),
    /// Kill one or more running containers.
    Kill(crate::container_args::KillArgs),
    /// Remove one or more containers.
    Rm(crate::container_args::RmArgs),
    /// List containers.
    Ps(crate::container_args::PsArgs),
    /// Fetch the logs of a container.
    Logs(crate::container_args::LogsArgs),
    /// Execute a command in a running container.
    Exec(crate::container_args::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(crate::container_args::ContainersArgs),
    /// Return low-level information on containers or images.
    Inspect(crate::container_args::InspectArgs),
    /// Display the running processes of a container.
    Top(crate::container_args::TopArgs),
    /// Rename a container.
    Rename(crate::container_args::RenameArgs),
    /// Pause all processes within one or more containers.
    Pause(crate::container_args::ContainersArgs),
    /// Unpause all processes within one or more containers.
    Unpause(crate::container_args::ContainersArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(crate::container_args::StatsArgs),
    /// Update configuration of one or more containers.
    Update(crate::container_args::UpdateArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(crate::container_args::CpArgs),
    /// Get real time events from the containers.
    Events(crate::container_args::EventsArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(crate::container_args::AttachArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(crate::network_args::NetworkCommand),
    /// List port mappings or a specific mapping for the container.
    Port(crate::network_args::PortArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    Images(ImagesArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage bulwark.
    #[command(subcommand)]
    System(SystemCommand),
    /// Run a command in the user namespace (and mount namespace) of a store without root.
    Unshare(UnshareArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Make a root filesystem of an image (an overlay with its own upper layer) and print its path.
    Mount(MountArgs),
    /// Unmount and remove root filesystems made by `image mount`.
    Umount(UmountArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
    /// Start the containers whose restart policy asks for it after the host booted (run by contrib/systemd/bulwark-boot.service).
    Boot,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    pub name: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    pub name: String,
    /// Push all tags of the repository.
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show images of this repository (and tag) only.
    pub reference: Option<String>,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output: dangling=true|false, reference=PATTERN.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a template: 'table', 'table TEMPLATE', 'json', or a template such as '{{.Repository}}' or '{{json .}}'.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output using a template ('{{.Id}}', '{{json .Config}}', 'json').
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The archive's format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFormat,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    pub image: String,
    /// The root filesystem's name (random when not given).
    #[arg(long)]
    pub name: Option<String>,
    /// Use fuse-overlayfs even where the kernel's overlayfs works.
    #[arg(long)]
    pub fuse: bool,
}

#[derive(Debug, Args)]
pub struct UmountArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnshareArgs {
    /// The command (default: $SHELL).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(crate::container_args::PsArgs),
    /// Create and run a new container from an image.
    Run(crate::container_args::RunArgs),
    /// Create a new container.
    Create(crate::container_args::CreateArgs),
    /// Start one or more stopped containers.
    Start(crate::container_args::StartArgs),
    /// Stop one or more running containers.
    Stop(crate::container_args::StopArgs),
    /// Restart one or more containers.
    Restart(crate::container_args::StopArgs),
    /// Kill one or more running containers.
    Kill(crate::container_args::KillArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(crate::container_args::RmArgs),
    /// Fetch the logs of a container.
    Logs(crate::container_args::LogsArgs),
    /// Execute a command in a running container.
    Exec(crate::container_args::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(crate::container_args::ContainersArgs),
    /// Display detailed information on one or more containers.
    Inspect(crate::container_args::InspectArgs),
    /// Display the running processes of a container.
    Top(crate::container_args::TopArgs),
    /// Rename a container.
    Rename(crate::container_args::RenameArgs),
    /// Pause all processes within one or more containers.
    Pause(crate::container_args::ContainersArgs),
    /// Unpause all processes within one or more containers.
    Unpause(crate::container_args::ContainersArgs),
    /// Remove all stopped containers.
    Prune(crate::container_args::PruneArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(crate::container_args::StatsArgs),
    /// Update configuration of one or more containers.
    Update(crate::container_args::UpdateArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(crate::container_args::CpArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(crate::container_args::AttachArgs),
    /// List port mappings or a specific mapping for the container.
    Port(crate::network_args::PortArgs),
}
