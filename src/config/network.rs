//! Client networks for allow-lists: `10.0.0.0/8`, `2603:1000::/24`, or a bare address
//! (one host).

use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Parses `addr/prefix` or a bare address. Host bits set below the prefix
    /// (`10.1.2.3/8`) are refused: they usually mean a typo in the prefix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix {p:?} must be 0 to {max}"))?,
        };
        let net = IpNetwork { addr, prefix };
        if net.masked(addr) != bits(addr) {
            return Err(format!(
                "{text} has host bits set; did you mean {}?",
                IpNetwork {
                    addr: from_bits(addr, net.masked(addr)),
                    prefix
                }
            ));
        }
        Ok(net)
    }

    /// Whether `ip` lies in this network. An IPv4 client seen on an IPv6 socket
    /// (`::ffff:10.1.2.3`) matches IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == bits(self.addr)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
        let host_bits = width - u32::from(self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        bits(ip) & mask
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, b: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(b).unwrap_or(0).into()),
        IpAddr::V6(_) => IpAddr::V6(b.into()),
    }
}

/// Whether any network in `list` holds `ip`.
pub fn allowed(list: &[IpNetwork], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::IpNetwork;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_hold_their_addresses_only() {
        let n = IpNetwork::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.255.1.2")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(
            n.contains(ip("::ffff:10.1.2.3")),
            "IPv4 seen on an IPv6 socket"
        );
        assert!(!n.contains(ip("::1")));
        let v6 = IpNetwork::parse("2603:1000::/24").unwrap();
        assert!(v6.contains(ip("2603:10ff::1")));
        assert!(!v6.contains(ip("2603:1100::1")));
        let host = IpNetwork::parse("192.0.2.7").unwrap();
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.8")));
        assert!(
            IpNetwork::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(
            IpNetwork::parse("::/0")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let e = IpNetwork::parse("10.1.2.3/8").unwrap_err();
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
        assert!(IpNetwork::parse("10.0.0.0/33").is_err());
        assert!(IpNetwork::parse("intranet").is_err());
        assert!(IpNetwork::parse("10.0.0.0/").is_err());
    }
}
