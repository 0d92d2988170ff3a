//! Where deliveries may go: `https` URLs of public hosts only, checked when an endpoint is
//! saved and again on the addresses a name resolves to at delivery time, so that neither a
//! URL nor a DNS answer can point a delivery into the server's own network. A sandbox may
//! allow plain `http` and private addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Whether an address is reachable on the public internet (Python's `is_global`, which
/// Polar's check uses).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        // shared address space (carrier-grade NAT)
        || (a == 100 && (64..128).contains(&b))
        // benchmarking
        || (a == 198 && (b == 18 || b == 19))
        // IETF protocol assignments
        || (a == 192 && b == 0 && ip.octets()[2] == 0))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // unique local fc00::/7
        || (first & 0xfe00) == 0xfc00
        // link local fe80::/10
        || (first & 0xffc0) == 0xfe80
        // documentation 2001:db8::/32
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 well-known prefixes resolve into private space
        || ip.segments()[..6].iter().all(|segment| *segment == 0)
        || (first == 0x64 && ip.segments()[1] == 0xff9b))
}

/// Why an endpoint URL is refused, in the words Polar answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not a URL at all.
    Parsing,
    /// A scheme other than `https`.
    Scheme,
    /// `localhost` or an address that is not public.
    PrivateHost,
}

/// Checks an endpoint URL as it is saved; returns it as Python's URL type prints it.
pub fn check_endpoint_url(text: &str, allow_private: bool) -> Result<String, UrlRefusal> {
    let url = url::Url::parse(text.trim()).map_err(|_| UrlRefusal::Parsing)?;
    let scheme_ok = url.scheme() == "https" || (allow_private && url.scheme() == "http");
    if !scheme_ok {
        return Err(UrlRefusal::Scheme);
    }
    let host = url.host().ok_or(UrlRefusal::Parsing)?;
    if !allow_private && !host_is_public(&host) {
        return Err(UrlRefusal::PrivateHost);
    }
    Ok(url.to_string())
}

fn host_is_public(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => !name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => is_public(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => is_public(IpAddr::V6(*ip)),
    }
}

/// Checks the host of a URL about to be called when it is an address: names are checked by
/// `PublicResolver` as they resolve.
pub fn check_delivery_url(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err("webhook URLs must use https".into());
    }
    match url.host() {
        Some(host) if host_is_public(&host) => Ok(()),
        _ => Err("webhook URL points to a private address".into()),
    }
}

/// A DNS resolver that answers only with public addresses, so that a name resolving into a
/// private network is refused at the moment of connecting (no DNS rebinding in between).
pub struct PublicResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if resolved.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(resolved.into_iter());
            Ok(addresses)
        })
    }
}

pub fn resolver(allow_private: bool) -> Arc<PublicResolver> {
    Arc::new(PublicResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            check_endpoint_url(" https://example.com/hook ", false),
            Ok("https://example.com/hook".into())
        );
        assert_eq!(
            check_endpoint_url("http://example.com/hook", false),
            Err(UrlRefusal::Scheme)
        );
        assert_eq!(
            check_endpoint_url("https://localhost/hook", false),
            Err(UrlRefusal::PrivateHost)
        );
        assert_eq!(
            check_endpoint_url("https://10.0.0.7/hook", false),
            Err(UrlRefusal::PrivateHost)
        );
        assert_eq!(
            check_endpoint_url("https://[::1]:8443/", false),
            Err(UrlRefusal::PrivateHost)
        );
        assert_eq!(check_endpoint_url("nope", false), Err(UrlRefusal::Parsing));
        assert_eq!(
            check_endpoint_url("http://127.0.0.1:9000/hook", true),
            Ok("http://127.0.0.1:9000/hook".into())
        );
    }
}
