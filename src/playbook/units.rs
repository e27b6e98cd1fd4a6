//! Durations (`60s`, `5m`, `1h30m`), ages (`7d`, `0`), sizes (`512m`) and port mappings
//! (`127.0.0.1:8080:8080/tcp`) as written in playbooks.
//!
//! Owns: parsing these from text with an error that says what was expected, and
//! printing them back in one normal spelling. Invariant: parse never panics and never
//! overflows (values are bounded).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// A minimum age (`decommission.after`, `--min-age`): parses `7d`, `12h`, `30m`, `45s`, `1d12h` or `0` (no minimum) into seconds.
///
/// # Errors
/// Anything else, saying what was expected.
pub fn parse_age(text: &str) -> Result<u64, String> {
    const EXPECTED: &str = "expected a duration such as `7d`, `36h`, `30m` or `0`";
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    let (mut total, mut rest) = (0_u64, t);
    if rest.is_empty() {
        return Err(EXPECTED.into());
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let n: u64 = rest[..digits.min(9)]
            .parse()
            .map_err(|_| EXPECTED.to_string())?;
        if digits == 0 || digits > 9 {
            return Err(EXPECTED.into());
        }
        rest = &rest[digits..];
        let unit = match rest.chars().next() {
            Some('d') => 86_400,
            Some('h') => 3_600,
            Some('m') => 60,
            Some('s') => 1,
            _ => return Err(format!("{EXPECTED}: `{t}`")),
        };
        rest = &rest[1..];
        total = total.saturating_add(n.saturating_mul(unit));
    }
    Ok(total)
}

/// A duration as written: `500ms`, `60s`, `5m`, `2h`, or combined `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// Parses `60s`, `5m`, `1h30m`, `500ms`. At most 7 days.
    pub fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected a duration such as `30s`, `5m`, `1h30m` or `500ms`";
        let t = text.trim();
        if t.is_empty() {
            return Err(EXPECTED.into());
        }
        let mut total: u128 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(EXPECTED.into());
            }
            let n: u128 = rest[..digits].parse().map_err(|_| EXPECTED.to_string())?;
            rest = &rest[digits..];
            let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
            let unit_ms: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(format!("{EXPECTED}: `{t}` has no unit")),
                other => return Err(format!("{EXPECTED}: unknown unit `{other}`")),
            };
            rest = &rest[unit_len..];
            total += n * unit_ms;
        }
        if total > 7 * 86_400_000 {
            return Err("a duration may be at most 7 days".into());
        }
        if total == 0 {
            return Err("a duration must be more than zero".into());
        }
        Ok(Self(Duration::from_millis(
            u64::try_from(total).unwrap_or(u64::MAX),
        )))
    }

    /// From whole seconds.
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut s = ms / 1000;
        let h = s / 3600;
        s %= 3600;
        let m = s / 60;
        s %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back as written: a saved plan's durations, sizes and ports are their text.
macro_rules! deserialize_from_text {
    ($t:ty, $parse:expr) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

deserialize_from_text!(Span, Span::parse);
deserialize_from_text!(Size, Size::parse);
// As shown (`0.0.0.0:8080->80/tcp`) or as written (`127.0.0.1:8080:80`).
deserialize_from_text!(PortMap, |t: &str| PortMap::parse(&t.replace("->", ":")));

/// A size in bytes as written: `512m`, `1g`, `64k`, `1048576`; binary units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses `512m`, `1g`, `64k`, `512MiB`, `2GB` (all binary), or plain bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected a size such as `512m`, `1g` or `64k`";
        let t = text.trim().to_ascii_lowercase();
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || digits > 15 {
            return Err(EXPECTED.into());
        }
        let n: u64 = t[..digits].parse().map_err(|_| EXPECTED.to_string())?;
        let mult: u64 = match &t[digits..] {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => return Err(format!("{EXPECTED}: unknown unit `{other}`")),
        };
        n.checked_mul(mult)
            .filter(|&b| b > 0)
            .map(Self)
            .ok_or_else(|| format!("{EXPECTED}: `{text}` is out of range"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] {
            if b >= 1 << shift && b.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}b")
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A published port: `[ADDRESS:]HOST:CONTAINER[/tcp|udp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    /// Host address to bind; `None` binds every interface.
    pub address: Option<IpAddr>,
    /// Port on the host.
    pub host: u16,
    /// Port in the container.
    pub container: u16,
    /// Protocol.
    pub proto: Proto,
}

impl PortMap {
    /// Parses `127.0.0.1:8080:80`, `8080:80/udp`, `[::1]:8080:80`.
    pub fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str =
            "expected `[ADDRESS:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`, e.g. `127.0.0.1:8080:8080`";
        let (main, proto) = match text.rsplit_once('/') {
            Some((m, "tcp")) => (m, Proto::Tcp),
            Some((m, "udp")) => (m, Proto::Udp),
            Some((_, p)) => return Err(format!("{EXPECTED}: unknown protocol `{p}`")),
            None => (text, Proto::Tcp),
        };
        let (address, ports) = if let Some(rest) = main.strip_prefix('[') {
            let (addr, ports) = rest.split_once("]:").ok_or(EXPECTED)?;
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{EXPECTED}: `{addr}` is not an IP address"))?;
            (Some(ip), ports)
        } else {
            let parts: Vec<&str> = main.split(':').collect();
            match parts.len() {
                2 => (None, main),
                3 => {
                    let ip: IpAddr = parts[0]
                        .parse()
                        .map_err(|_| format!("{EXPECTED}: `{}` is not an IP address", parts[0]))?;
                    (Some(ip), &main[parts[0].len() + 1..])
                }
                _ => return Err(EXPECTED.into()),
            }
        };
        let (h, c) = ports.split_once(':').ok_or(EXPECTED)?;
        let port = |p: &str| -> Result<u16, String> {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{EXPECTED}: `{p}` is not a port from 1 to 65535"))
        };
        Ok(Self {
            address,
            host: port(h)?,
            container: port(c)?,
            proto,
        })
    }
}

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        match self.address {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            None => write!(f, "0.0.0.0:")?,
        }
        write!(f, "{}->{}/{proto}", self.host, self.container)
    }
}

impl Serialize for PortMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Span::parse("60s"), Ok(Span::secs(60)));
        assert_eq!(Span::parse("5m"), Ok(Span::secs(300)));
        assert_eq!(Span::parse("1h30m"), Ok(Span::secs(5400)));
        assert_eq!(Span::parse("500ms").map(|s| s.0.as_millis()), Ok(500));
        assert_eq!(Span::secs(5400).to_string(), "1h30m");
        assert_eq!(
            Span::parse("90s").map(|s| s.to_string()),
            Ok("1m30s".into())
        );
        for bad in [
            "",
            "60",
            "5 m",
            "m",
            "10x",
            "0s",
            "8d",
            "99999999999s",
            "-1s",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("512m"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("1G"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("64KiB"), Ok(Size(64 << 10)));
        assert_eq!(Size::parse("1000"), Ok(Size(1000)));
        assert_eq!(Size(512 << 20).to_string(), "512m");
        for bad in ["", "m", "12x", "0", "-5m", "99999999999999g"] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        let p = PortMap::parse("127.0.0.1:8080:80").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "127.0.0.1:8080->80/tcp");
        let p = PortMap::parse("8080:80/udp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.address, p.proto), (None, Proto::Udp));
        let p = PortMap::parse("[::1]:8080:80").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "[::1]:8080->80/tcp");
        for bad in [
            "8080",
            "a:b",
            "1.2.3:80:80",
            "0:80",
            "80:70000",
            "80:80/sctp",
            "1:2:3:4",
        ] {
            assert!(PortMap::parse(bad).is_err(), "{bad}");
        }
    }
}
