//! Who may connect to a server: the peer allowlist (address ranges and
//! predicates) and the slot policy (what a new client does to the one
//! being served). Pure code: the accept loop in `accept.rs` asks it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::error::{Error, Result};

/// What happens when a client connects while another is served.
///
/// ```
/// use ts_tcpip::prelude::*;
/// let server = OneClientServer::builder()
///     .slot_policy(SlotPolicy::ReplaceOld)
///     .start()?;
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SlotPolicy {
    /// The new client is closed at once (it sees end of file) and counted
    /// in [`Stats::connections_rejected`](crate::Stats::connections_rejected);
    /// the served one is undisturbed. A served client whose peer has
    /// already gone (closed, nothing unread, not yet noticed by the
    /// monitor) gives way to the new one. The Python package's behaviour.
    #[default]
    RejectNew,
    /// The new client is served and the current one is closed, with
    /// [`DisconnectReason::Replaced`](crate::DisconnectReason::Replaced)
    /// (its `Disconnected` event and the callback's `false` come before
    /// the new `Connected` and `true`). For a controller that reboots
    /// while its old connection is still half-open on this side: it need
    /// not wait for the dead-peer bound to get the slot back. Anyone who
    /// can connect can take the slot, so pair it with an allowlist
    /// ([`allow`](crate::builder::Builder::allow)).
    ReplaceOld,
}

/// A predicate on the peer's address, as given to `allow_peer`.
pub(crate) type PeerPredicate = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// An address range: an address and how many of its leading bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    /// With every bit past the prefix zero.
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `"10.0.0.0/8"`, `"::1/128"`, or a bare address (one host).
    /// An address with bits set past the prefix (`"10.0.0.1/8"`) is
    /// refused: it is more likely a typo than a wish for the whole range.
    pub(crate) fn parse(text: &str) -> Result<Cidr> {
        let bad = |why: &str| Error::invalid_argument(format!("bad CIDR {text:?}: {why}"));
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 or IPv6 address before the '/'"))?;
        let width = bit_width(network);
        let prefix = match prefix {
            None => width,
            // Digits only: u8's parser would take a '+'.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(|| bad(&format!("the prefix length must be 0 to {width}")))?,
            Some(_) => return Err(bad("the prefix length must be a number")),
        };
        if bits(network) & !mask(prefix, width) != 0 {
            let masked = from_bits(network, bits(network) & mask(prefix, width));
            return Err(bad(&format!(
                "bits are set past the prefix (the range is {masked}/{prefix})"
            )));
        }
        Ok(Cidr { network, prefix })
    }

    /// True if `ip` is in the range. An IPv4 address seen on an IPv6
    /// socket (`::ffff:a.b.c.d`) is matched as the IPv4 address it is.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let width = bit_width(ip);
        bits(ip) & mask(self.prefix, width) == bits(self.network)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn bit_width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// The address as a number, IPv4 in the low 32 bits.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        // The low 32 bits are the whole IPv4 address.
        IpAddr::V4(_) => IpAddr::V4((bits as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

/// `prefix` leading ones in a field of `width` bits (the low bits of the
/// result).
fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    // A shift by the whole width (128) would overflow: nothing is left.
    all & !all.checked_shr(prefix.into()).unwrap_or(0)
}

/// The allowlist as the accept loop uses it. Empty: everyone is allowed.
#[derive(Clone, Default)]
pub(crate) struct Allowlist {
    ranges: Vec<Cidr>,
    predicates: Vec<PeerPredicate>,
}

impl Allowlist {
    /// From the builder's ranges (parsed here, so a bad one is refused by
    /// `start()`) and predicates.
    pub(crate) fn new(ranges: &[String], predicates: Vec<PeerPredicate>) -> Result<Allowlist> {
        Ok(Allowlist {
            ranges: ranges
                .iter()
                .map(|r| Cidr::parse(r))
                .collect::<Result<_>>()?,
            predicates,
        })
    }

    /// Ok if `peer` may connect; else why not, for the log. Runs the
    /// predicates (user code) with no lock held; a panicking one refuses.
    pub(crate) fn check(&self, peer: SocketAddr) -> std::result::Result<(), String> {
        if self.ranges.is_empty() && self.predicates.is_empty() {
            return Ok(());
        }
        if self.ranges.iter().any(|r| r.contains(peer.ip())) {
            return Ok(());
        }
        let mut panicked = false;
        for predicate in &self.predicates {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| predicate(peer))) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(_) => panicked = true,
            }
        }
        let mut why = match self.ranges.as_slice() {
            [] => "the allow_peer predicate refused it".to_owned(),
            ranges => {
                let listed: Vec<String> = ranges.iter().map(Cidr::to_string).collect();
                let mut why = format!("not in the allowed ranges ({})", listed.join(", "));
                if !self.predicates.is_empty() {
                    why.push_str(" and the allow_peer predicate refused it");
                }
                why
            }
        };
        if panicked {
            why.push_str(" (an allow_peer predicate panicked)");
        }
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn ranges_hold_what_they_should() {
        let lo = Cidr::parse("127.0.0.1/32").expect("parse");
        assert!(lo.contains(ip("127.0.0.1")));
        assert!(!lo.contains(ip("127.0.0.2")));
        let ten = Cidr::parse("10.0.0.0/8").expect("parse");
        assert!(ten.contains(ip("10.255.1.2")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("::1")));
        let all4 = Cidr::parse("0.0.0.0/0").expect("parse");
        assert!(all4.contains(ip("203.0.113.9")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").expect("parse");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let one6 = Cidr::parse("::1/128").expect("parse");
        assert!(one6.contains(ip("::1")));
        assert!(!one6.contains(ip("::2")));
        assert!(Cidr::parse("::/0").expect("parse").contains(ip("fe80::1")));
        // A bare address is one host.
        assert_eq!(Cidr::parse("192.0.2.7").expect("parse").prefix, 32);
        assert_eq!(Cidr::parse("::1").expect("parse").prefix, 128);
    }

    #[test]
    fn an_ipv4_peer_on_an_ipv6_socket_matches_ipv4_ranges() {
        let lo = Cidr::parse("127.0.0.0/8").expect("parse");
        assert!(lo.contains(ip("::ffff:127.0.0.1")));
        assert!(!lo.contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn bad_ranges_are_invalid_arguments() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "localhost/32",
            "10.0.0.1/8",
            "fe80::1%eth0/64",
        ] {
            match Cidr::parse(bad) {
                Err(Error::InvalidArgument(msg)) => {
                    assert!(msg.contains(&format!("{bad:?}")), "{msg}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let Err(Error::InvalidArgument(msg)) = Cidr::parse("10.1.2.3/8") else {
            panic!("host bits accepted")
        };
        assert!(msg.contains("10.0.0.0/8"), "{msg}");
    }

    #[test]
    fn masks_have_the_right_ones() {
        assert_eq!(mask(0, 32), 0);
        assert_eq!(mask(8, 32), 0xff00_0000);
        assert_eq!(mask(32, 32), 0xffff_ffff);
        assert_eq!(mask(1, 128), 1 << 127);
        assert_eq!(mask(128, 128), u128::MAX);
    }

    #[test]
    fn an_empty_list_allows_everyone_and_rules_add_up() {
        let peer = |s: &str| -> SocketAddr { s.parse().expect("addr") };
        assert!(Allowlist::default().check(peer("198.51.100.1:9")).is_ok());
        let odd_ports: PeerPredicate = Arc::new(|p: SocketAddr| p.port() % 2 == 1);
        let list = Allowlist::new(&["10.0.0.0/8".to_owned()], vec![odd_ports]).expect("list");
        assert!(list.check(peer("10.1.1.1:2")).is_ok());
        assert!(list.check(peer("192.0.2.1:3")).is_ok());
        let why = list.check(peer("192.0.2.1:4")).expect_err("refused");
        assert!(
            why.contains("10.0.0.0/8") && why.contains("predicate"),
            "{why}"
        );
        let panics: PeerPredicate = Arc::new(|_| panic!("boom"));
        let list = Allowlist::new(&[], vec![panics]).expect("list");
        let why = list.check(peer("10.0.0.1:1")).expect_err("refused");
        assert!(why.contains("panicked"), "{why}");
    }
}
