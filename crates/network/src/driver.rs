//! What a network driver does. The bridge driver implements it, and so do external
//! drivers reached over Docker's remote driver protocol; the engine only speaks to this.
use std::path::Path;

use crate::{Endpoint, NetworkError, NetworkRecord};

pub trait Driver: std::fmt::Debug {
    /// Makes what the network needs on the host (a bridge...). Repeatable: it is also
    /// called to bring a network back after a reboot.
    fn create_network(&self, network: &NetworkRecord) -> Result<(), NetworkError>;
    /// Removes what `create_network` made; what is already gone is fine.
    fn delete_network(&self, network: &NetworkRecord) -> Result<(), NetworkError>;
    /// Connects the namespace pinned at `netns` to `network` as `endpoint` says
    /// (interface name, address, MAC, gateway).
    fn join(
        &self,
        network: &NetworkRecord,
        endpoint: &Endpoint,
        netns: &Path,
    ) -> Result<(), NetworkError>;
    /// Undoes `join`; what is already gone is fine.
    fn leave(&self, network: &NetworkRecord, endpoint: &Endpoint) -> Result<(), NetworkError>;
}
