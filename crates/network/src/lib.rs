//! Container networks: records and addresses on disk (`store`, `ipam`), the kernel's
//! links and namespaces (`link`, `netns`), nftables (`firewall`), and the files a
//! container resolves names with (`files`). The bridge driver (`bridge`) puts them
//! together behind the `Driver` interface that external drivers implement too.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod driver;
mod error;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod pasta;
pub mod plugin;
pub mod ports;
mod record;
pub mod remote;
pub mod remote_ipam;
pub mod store;

pub use error::NetworkError;
pub use record::{Attachment, Endpoint, NetworkRecord, DEFAULT_NETWORK, MTU_OPTION};
