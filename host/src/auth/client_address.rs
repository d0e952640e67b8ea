//! Which address a login attempt came from, for the per-address throttle.
//!
//! Forwarding headers are only believed when a proxy we trust wrote them: Envoy in front of
//! the ext_authz listener, or a proxy in front of the phone listener when the operator says
//! so (`trust_forwarded_for`). A client can put anything in them otherwise.

use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Envoy's verdict on the client's address (set when Envoy faces the internet,
/// `use_remote_address: true`).
const ENVOY_EXTERNAL_ADDRESS: &str = "x-envoy-external-address";

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request whose forwarding headers come from a trusted proxy:
/// Envoy's external address, else the last `X-Forwarded-For` entry (the one the proxy
/// appended; earlier ones are the client's own claims), else the peer.
pub fn forwarded_client(headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    let envoy =
        headers.get(ENVOY_EXTERNAL_ADDRESS).and_then(|value| parse_address(value.as_bytes()));
    envoy.or_else(|| last_forwarded_for(headers)).unwrap_or_else(|| peer.ip())
}

/// The phone listener's view: the peer, unless the operator put a proxy in front of it.
pub fn phone_client(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for { forwarded_client(headers, peer) } else { peer.ip() }
}

fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    // several headers count as one comma-separated list (RFC 9110 §5.3)
    let last_header = headers.get_all(X_FORWARDED_FOR).iter().next_back()?;
    let last_entry = last_header.as_bytes().rsplit(|&byte| byte == b',').next()?;
    parse_address(last_entry)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `192.0.2.1:443`.
fn parse_address(bytes: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn envoy_external_address_wins_then_the_last_forwarded_entry() {
        let both = headers(&[
            ("x-forwarded-for", "10.0.0.1, 192.0.2.9"),
            ("x-envoy-external-address", "198.51.100.4"),
        ]);
        assert_eq!(forwarded_client(&both, peer()), "198.51.100.4".parse::<IpAddr>().expect("ip"));
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.66"),
            ("x-forwarded-for", "10.0.0.1, [2001:db8::5]:443"),
        ]);
        assert_eq!(
            forwarded_client(&forwarded, peer()),
            "2001:db8::5".parse::<IpAddr>().expect("ip")
        );
        let garbage = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(forwarded_client(&garbage, peer()), peer().ip());
        assert_eq!(forwarded_client(&HeaderMap::new(), peer()), peer().ip());
    }

    #[test]
    fn the_phone_listener_believes_headers_only_when_told() {
        let claimed = headers(&[("x-forwarded-for", "192.0.2.9")]);
        assert_eq!(phone_client(&claimed, peer(), false), peer().ip());
        assert_eq!(
            phone_client(&claimed, peer(), true),
            "192.0.2.9".parse::<IpAddr>().expect("ip")
        );
    }
}
