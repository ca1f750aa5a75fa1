//! The flags of `network ...` and `port`, as Docker spells them.
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks.
    Inspect(crate::container_args::InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks.
    Prune(NetworkPruneArgs),
    /// Connect a container to a network.
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long)]
    pub driver: Option<String>,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long)]
    pub ip_range: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
    /// IP Address Management Driver (a plugin's name; default: bulwark's own).
    #[arg(long)]
    pub ipam_driver: Option<String>,
    /// Set driver specific options.
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Provide filter values (e.g. 'name=bridge', 'driver=bridge').
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub private: Option<String>,
}
