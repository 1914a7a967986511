//! Address blocks, for the trusted proxies a client address is taken from,
//! and whether a service's address answers.

use std::net::IpAddr;
use std::time::Duration;

/// Whether the host and port of a service URL (`postgres://user@host:5432/db`,
/// `mqtt://host`; `default_port` when it names none) accept a TCP
/// connection within `timeout`. The tests and benchmarks ask it before they
/// use a service.
pub fn accepts_connections(url: &str, default_port: u16, timeout: Duration) -> bool {
    use std::net::ToSocketAddrs;
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    };
    host_port.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
    })
}

/// An address block (`10.0.0.0/8`, `::1`, `192.168.1.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an address or address/prefix");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl IpNet {
    pub fn contains(&self, other: &IpAddr) -> bool {
        let bits = |a: &IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u32::from(*v4) as u128,
                IpAddr::V6(v6) => u128::from(*v6),
            }
        };
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        let other = match (self.addr, other) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
            _ => *other,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = width - self.prefix as u32;
        bits(&self.addr) >> shift == bits(&other) >> shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_accepts_and_a_closed_one_does_not() {
        let timeout = Duration::from_secs(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(accepts_connections(
            &format!("postgres://user:secret@127.0.0.1:{port}/db"),
            1,
            timeout
        ));
        // No port in the URL: the default one is asked.
        assert!(accepts_connections("mqtt://127.0.0.1", port, timeout));
        drop(listener);
        assert!(!accepts_connections(
            &format!("http://127.0.0.1:{port}/"),
            1,
            timeout
        ));
        assert!(!accepts_connections("not a url", 1, timeout));
    }
}
