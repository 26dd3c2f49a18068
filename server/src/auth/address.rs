//! Who the client is, for rate limits. The peer's address, unless the peer is one of the
//! configured trusted proxies (`BANZHENG_TRUSTED_PROXIES`): then the rightmost hop of the
//! forwarding header (`BANZHENG_FORWARDED_HEADER`) that is not a trusted proxy. Hops left of
//! it were written by the client and are never read; the other forwarding header, and both
//! from anyone else, are ignored. Development mode refuses forwarded requests outright.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, FORWARDED, X_FORWARDED_FOR};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, ErrorCode};

/// The proxies in front of the server whose forwarding header is believed, as CIDR blocks
/// (a bare address is one host). Empty (the default): every header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Which header the trusted proxies write: the one a proxy appends to is the only one whose
/// rightmost hops it vouches for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is not an address or a CIDR block like 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

/// A comma-separated string (an environment variable) or, in the TOML file, a list.
impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<String>),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::List(list) => list.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Finds the client of a request: the settings `BANZHENG_TRUSTED_PROXIES` and
/// `BANZHENG_FORWARDED_HEADER` together.
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    proxies: TrustedProxies,
    header: ForwardedHeader,
}

impl ClientAddresses {
    pub fn new(proxies: TrustedProxies, header: ForwardedHeader) -> Self {
        ClientAddresses { proxies, header }
    }

    /// The rate-limit bucket of the request's client: its address, an IPv6 one as its /64
    /// (one subscriber's whole network), or `unknown` without a peer address.
    pub fn bucket(&self, req: &HttpRequest) -> String {
        match req.peer_addr() {
            Some(peer) => bucket(self.proxies.client(peer.ip(), req.headers(), self.header)),
            None => "unknown".into(),
        }
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The peer, or behind trusted proxies the rightmost hop that is not one of them (all
    /// trusted: the leftmost; an unreadable hop: the trusted proxy that wrote it).
    fn client(&self, peer: IpAddr, headers: &HeaderMap, header: ForwardedHeader) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut nearest = peer;
        for hop in hops(headers, header).into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => nearest = ip,
                Some(ip) => return ip,
                None => return nearest,
            }
        }
        nearest
    }
}

/// The hops a forwarding header lists, left (the original client) to right (the last proxy),
/// over all its lines; `None` for one that is not an address (`unknown`, `_hidden`).
fn hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let name: &HeaderName = match header {
        ForwardedHeader::XForwardedFor => &X_FORWARDED_FOR,
        ForwardedHeader::Forwarded => &FORWARDED,
    };
    let elements = headers
        .get_all(name)
        .flat_map(|value| value.to_str().unwrap_or("_").split(','))
        .map(str::trim);
    match header {
        ForwardedHeader::XForwardedFor => elements.map(address).collect(),
        ForwardedHeader::Forwarded => elements
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(key, _)| key.eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| address(value.trim_matches('"')))
            })
            .collect(),
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })
        .map(|ip| ip.to_canonical())
}

fn bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).expect("64 is a valid prefix");
            net.trunc().to_string()
        }
    }
}

/// Development mode: a request that came through a proxy is refused, since the development
/// server must not be reachable from beyond the machine it runs on.
pub async fn refuse_forwarded(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let headers = req.headers();
    if headers.contains_key(FORWARDED) || headers.contains_key(X_FORWARDED_FOR) {
        let refusal = ApiError::from(ErrorCode::ProxiedInDevelopment).error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append((*name).clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn parses_blocks_and_hosts_and_names_a_bad_entry() {
        let proxies: TrustedProxies = " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,".parse().unwrap();
        assert_eq!(proxies.0.len(), 3);
        assert!(proxies.trusts(ip("10.1.2.3")) && proxies.trusts(ip("192.0.2.7")));
        assert!(
            proxies.trusts(ip("::ffff:10.9.9.9")),
            "v4-mapped counts as v4"
        );
        assert!(!proxies.trusts(ip("192.0.2.8")));
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
        let err = "10.0.0.0/8, proxy.local"
            .parse::<TrustedProxies>()
            .unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let none = TrustedProxies::default();
        let forged = headers(&[(&X_FORWARDED_FOR, "1.2.3.4"), (&FORWARDED, "for=5.6.7.8")]);
        assert_eq!(
            none.client(ip("203.0.113.9"), &forged, XFF),
            ip("203.0.113.9")
        );
        let proxies: TrustedProxies = "10.0.0.1".parse().unwrap();
        assert_eq!(
            proxies.client(ip("203.0.113.9"), &forged, XFF),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let peer = ip("10.0.0.1");
        // The client wrote `6.6.6.6`; the first proxy appended the client's real address.
        let chain = headers(&[(&X_FORWARDED_FOR, "6.6.6.6, 198.51.100.4, 10.0.0.2")]);
        assert_eq!(proxies.client(peer, &chain, XFF), ip("198.51.100.4"));
        // Over several lines, as some proxies append them.
        let lines = headers(&[
            (&X_FORWARDED_FOR, "6.6.6.6"),
            (&X_FORWARDED_FOR, "198.51.100.4:5555"),
        ]);
        assert_eq!(proxies.client(peer, &lines, XFF), ip("198.51.100.4"));
        // The other header is not the proxies': ignored.
        let other = headers(&[(&FORWARDED, "for=6.6.6.6")]);
        assert_eq!(proxies.client(peer, &other, XFF), peer);
        // Every hop trusted: the leftmost; an unreadable hop: the proxy that wrote it.
        let inner = headers(&[(&X_FORWARDED_FOR, "10.9.9.9, 10.0.0.2")]);
        assert_eq!(proxies.client(peer, &inner, XFF), ip("10.9.9.9"));
        let unknown = headers(&[(&X_FORWARDED_FOR, "198.51.100.4, unknown, 10.0.0.2")]);
        assert_eq!(proxies.client(peer, &unknown, XFF), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_for_elements_are_read_when_configured() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let chain = headers(&[(
            &FORWARDED,
            r#"for=6.6.6.6;proto=https, For="[2001:db8:cafe::17]:4711", for=10.0.0.2;by=x"#,
        )]);
        let header = ForwardedHeader::Forwarded;
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &chain, header),
            ip("2001:db8:cafe::17")
        );
        let xff = headers(&[(&X_FORWARDED_FOR, "6.6.6.6")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &xff, header), ip("10.0.0.1"));
    }

    #[test]
    fn an_ipv6_client_is_bucketed_by_its_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(bucket(ip("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(bucket(ip("192.0.2.1")), "192.0.2.1");
    }
}
