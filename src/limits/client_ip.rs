//! Who the client is: the connecting address, or behind trusted reverse
//! proxies the right-most `X-Forwarded-For` entry that is not one of them.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;
use warp::http::HeaderMap;

pub struct ClientIp {
    trusted: Vec<IpNet>,
    warned: AtomicBool,
}

impl ClientIp {
    /// `trusted_proxies` were validated with the configuration.
    pub fn new(trusted_proxies: &[String]) -> ClientIp {
        ClientIp {
            trusted: trusted_proxies
                .iter()
                .filter_map(|p| crate::config::parse_network(p).ok())
                .collect(),
            warned: AtomicBool::new(false),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // Split as bytes: one non-ASCII byte a client put in its own entry
        // must not make the entries our proxy appended unreadable.
        let hops: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|hop| !hop.is_empty())
            .collect();
        if hops.is_empty() {
            return peer;
        }
        if !self.is_trusted(peer) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    %peer,
                    "requests arrive with X-Forwarded-For from an address that is not a trusted proxy: \
                     its clients share that address's rate limits. If latch runs behind a reverse \
                     proxy, set limits.trusted_proxies (LATCH_LIMITS_TRUSTED_PROXIES) to its address"
                );
            }
            return peer;
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                // Not an address: stop at the last hop a trusted proxy vouched for.
                None => break,
            }
        }
        client
    }
}

/// An address as proxies write it: `1.2.3.4`, `::1`, or with a port,
/// `1.2.3.4:5678` and `[::1]:5678`.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?;
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_address_counts() {
        let c = ClientIp::new(&[]);
        assert_eq!(
            c.resolve(ip("10.0.0.1"), &headers(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
        assert_eq!(c.resolve(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_counts() {
        let c = ClientIp::new(&["10.0.0.0/8".into(), "192.168.1.1".into()]);
        let peer = ip("10.0.0.1");
        // A client cannot choose its address by sending its own header first.
        assert_eq!(
            c.resolve(peer, &headers(&["6.6.6.6, 1.2.3.4, 192.168.1.1"])),
            ip("1.2.3.4")
        );
        assert_eq!(
            c.resolve(peer, &headers(&["6.6.6.6", "1.2.3.4"])),
            ip("1.2.3.4")
        );
        assert_eq!(c.resolve(peer, &headers(&["10.1.1.1"])), ip("10.1.1.1"));
        assert_eq!(
            c.resolve(peer, &headers(&["garbage, 10.2.2.2"])),
            ip("10.2.2.2")
        );
        assert_eq!(
            c.resolve(peer, &headers(&["::ffff:1.2.3.4"])),
            ip("::ffff:1.2.3.4")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            c.resolve(ip("8.8.8.8"), &headers(&["1.2.3.4"])),
            ip("8.8.8.8")
        );
        // A v4-mapped peer is judged as its IPv4 address.
        assert_eq!(
            c.resolve(ip("::ffff:10.0.0.1"), &headers(&["1.2.3.4"])),
            ip("1.2.3.4")
        );
    }
}
