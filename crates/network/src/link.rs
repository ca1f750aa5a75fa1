//! Links, addresses and routes through netlink (rtnetlink), in the network namespace of
//! the thread that opens the connection.
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::NetworkError;

/// A netlink connection and the small runtime that drives it.
#[derive(Debug)]
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().raw_os_error(),
        _ => None,
    }
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetworkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| NetworkError::Netlink(format!("cannot start: {e}")))?;
        let (connection, handle) = {
            let _inside = runtime.enter();
            let (connection, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetworkError::Netlink(format!("cannot open a netlink socket: {e}")))?;
            (connection, handle)
        };
        runtime.spawn(connection);
        Ok(Netlink { runtime, handle })
    }

    /// The index of the link called `name`, if there is one.
    pub fn index(&self, name: &str) -> Result<Option<u32>, NetworkError> {
        let found = self.runtime.block_on(
            self.handle
                .link()
                .get()
                .match_name(name.to_owned())
                .execute()
                .try_next(),
        );
        match found {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if errno(&e) == Some(libc_enodev()) => Ok(None),
            Err(e) => Err(NetworkError::Netlink(format!("cannot look up {name}: {e}"))),
        }
    }

    fn must_index(&self, name: &str) -> Result<u32, NetworkError> {
        self.index(name)?
            .ok_or_else(|| NetworkError::Netlink(format!("link {name} vanished")))
    }

    /// A bridge called `name` with `gateway/prefix` on it, up. Made if missing.
    pub fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetworkError> {
        if self.index(name)?.is_none() {
            let made = self.runtime.block_on(
                self.handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute(),
            );
            match made {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc_eexist()) => {}
                Err(e) => {
                    return Err(NetworkError::Netlink(format!(
                        "cannot create bridge {name}: {e}"
                    )))
                }
            }
        }
        let index = self.must_index(name)?;
        let added = self.runtime.block_on(
            self.handle
                .address()
                .add(index, IpAddr::V4(gateway), prefix)
                .execute(),
        );
        match added {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc_eexist()) => {}
            Err(e) => {
                return Err(NetworkError::Netlink(format!(
                    "cannot put {gateway}/{prefix} on {name}: {e}"
                )))
            }
        }
        self.up(index, name)
    }

    fn up(&self, index: u32, name: &str) -> Result<(), NetworkError> {
        self.runtime
            .block_on(
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).up().build())
                    .execute(),
            )
            .map_err(|e| NetworkError::Netlink(format!("cannot bring {name} up: {e}")))
    }

    /// Removes a link; one that is already gone is fine.
    pub fn delete(&self, name: &str) -> Result<(), NetworkError> {
        let Some(index) = self.index(name)? else {
            return Ok(());
        };
        match self
            .runtime
            .block_on(self.handle.link().del(index).execute())
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc_enodev()) => Ok(()),
            Err(e) => Err(NetworkError::Netlink(format!("cannot remove {name}: {e}"))),
        }
    }

    /// A veth pair: `host` on `bridge` (up, hairpin on so a container reaches itself
    /// through a published port), its peer made directly inside `netns` as `inside`.
    pub fn add_veth(
        &self,
        host: &str,
        bridge: &str,
        netns: BorrowedFd<'_>,
        inside: &str,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<(), NetworkError> {
        let bridge_index = self.must_index(bridge)?;
        let mut peer = LinkUnspec::new_with_name(inside)
            .setns_by_fd(netns.as_raw_fd())
            .address(mac.to_vec());
        let mut message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_owned())
            .controller(bridge_index)
            .up();
        if let Some(mtu) = mtu {
            peer = peer.mtu(mtu);
            message = message.mtu(mtu);
        }
        let message = message
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        self.runtime
            .block_on(self.handle.link().add(message).execute())
            .map_err(|e| NetworkError::Netlink(format!("cannot create veth {host}: {e}")))?;
        let index = self.must_index(host)?;
        let hairpin = LinkBridgePort::new(index).hairpin(true).build();
        self.runtime
            .block_on(self.handle.link().set_port(hairpin).execute())
            .map_err(|e| NetworkError::Netlink(format!("cannot set hairpin mode on {host}: {e}")))
    }

    /// Moves the link `name` into `netns` as `new_name` with address `mac` (an interface
    /// a remote driver made).
    pub fn move_into(
        &self,
        name: &str,
        netns: BorrowedFd<'_>,
        new_name: &str,
        mac: [u8; 6],
    ) -> Result<(), NetworkError> {
        let index = self.must_index(name)?;
        let down = LinkUnspec::new_with_index(index)
            .down()
            .address(mac.to_vec())
            .build();
        self.runtime
            .block_on(self.handle.link().set(down).execute())
            .map_err(|e| NetworkError::Netlink(format!("cannot set the address of {name}: {e}")))?;
        let moved = LinkUnspec::new_with_index(index)
            .setns_by_fd(netns.as_raw_fd())
            .name(new_name.to_owned())
            .build();
        self.runtime
            .block_on(self.handle.link().set(moved).execute())
            .map_err(|e| {
                NetworkError::Netlink(format!(
                    "cannot move {name} into the container as {new_name}: {e}"
                ))
            })
    }

    /// Inside a container's namespace: `lo` up, and if given, `iface` up with its
    /// address and (when `gateway` is given) the default route through it.
    pub fn configure_inside(
        &self,
        iface: Option<(&str, Ipv4Addr, u8, Option<Ipv4Addr>)>,
    ) -> Result<(), NetworkError> {
        let lo = self.must_index("lo")?;
        self.up(lo, "lo")?;
        let Some((name, ip, prefix, gateway)) = iface else {
            return Ok(());
        };
        let index = self.must_index(name)?;
        self.runtime
            .block_on(
                self.handle
                    .address()
                    .add(index, IpAddr::V4(ip), prefix)
                    .execute(),
            )
            .map_err(|e| {
                NetworkError::Netlink(format!("cannot put {ip}/{prefix} on {name}: {e}"))
            })?;
        self.up(index, name)?;
        if let Some(gateway) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build();
            let added = self
                .runtime
                .block_on(self.handle.route().add(route).execute());
            match added {
                Ok(()) => {}
                // A second network's default route: the first one's stays.
                Err(e) if errno(&e) == Some(libc_eexist()) => {}
                Err(e) => {
                    return Err(NetworkError::Netlink(format!(
                        "cannot route through {gateway}: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The IPv4 destinations the host routes somewhere (but the default route), so a new
    /// network's subnet can avoid them.
    pub fn routed_subnets(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<_> = self
            .runtime
            .block_on(self.handle.route().get(request).execute().try_collect())
            .map_err(|e| NetworkError::Netlink(format!("cannot list routes: {e}")))?;
        Ok(routes
            .iter()
            .filter(|r| r.header.destination_prefix_length > 0)
            .filter_map(|r| {
                r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                        Ipv4Net::new(*ip, r.header.destination_prefix_length).ok()
                    }
                    _ => None,
                })
            })
            .filter(|net| !net.addr().is_loopback())
            .collect())
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}
