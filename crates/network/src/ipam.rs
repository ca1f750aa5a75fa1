//! Addresses: which subnet a new network gets and which address a container gets.
//! Every address handed out is a file made with `O_EXCL` (see `store`), so two commands
//! at once never get the same one and a crash loses nothing.
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Docker's pools, in its order: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn pool() -> impl Iterator<Item = Ipv4Net> {
    let sixteens =
        (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("a prefix"));
    let twenties =
        (0..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("a prefix"));
    sixteens.chain(twenties)
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of the pool that overlaps none of `taken` (other networks, the
/// host's routes).
pub fn choose_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pool().find(|candidate| !taken.iter().any(|t| overlaps(candidate, t)))
}

/// The gateway Docker picks: the subnet's first address.
pub fn default_gateway(subnet: &Ipv4Net) -> Option<Ipv4Addr> {
    subnet.hosts().next()
}

/// Addresses a container may get, in the order they are tried: the range's (or the
/// subnet's) host addresses except the gateway.
pub fn candidates(
    subnet: Ipv4Net,
    range: Option<Ipv4Net>,
    gateway: Ipv4Addr,
) -> impl Iterator<Item = Ipv4Addr> {
    range
        .unwrap_or(subnet)
        .hosts()
        .filter(move |ip| *ip != gateway && subnet.contains(ip) && *ip != subnet.broadcast())
}

/// A MAC address as Docker derives it from an IPv4 address: `02:42:` and the four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let mac: [u8; 6] = parts.try_into().ok()?;
    // Multicast addresses cannot be an interface's.
    (mac[0] & 1 == 0).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_skip_what_is_taken() {
        let taken = vec![
            "172.17.0.0/16".parse().unwrap(),
            "172.18.5.0/24".parse().unwrap(),
        ];
        assert_eq!(choose_subnet(&taken).unwrap().to_string(), "172.19.0.0/16");
        let all: Vec<Ipv4Net> = pool().collect();
        assert!(choose_subnet(&all).is_none());
        let wide = vec!["172.16.0.0/12".parse().unwrap()];
        assert_eq!(choose_subnet(&wide).unwrap().to_string(), "192.168.0.0/20");
    }

    #[test]
    fn addresses_skip_the_gateway() {
        let subnet: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let gw = default_gateway(&subnet).unwrap();
        assert_eq!(gw, Ipv4Addr::new(10, 0, 0, 1));
        let all: Vec<_> = candidates(subnet, None, gw).collect();
        assert_eq!(all.first(), Some(&Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(10, 0, 0, 6)));
        let ranged: Vec<_> = candidates(subnet, Some("10.0.0.4/30".parse().unwrap()), gw).collect();
        assert_eq!(
            ranged,
            vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)]
        );
    }

    #[test]
    fn macs() {
        let mac = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(format_mac(&mac), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(mac));
        assert_eq!(parse_mac("01:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
    }
}
