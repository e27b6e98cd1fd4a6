//! The rules of `deploy.route` (an app served by host name through the target's front
//! proxy) and of `target.front` (that proxy's name, image and listen addresses).

use crate::playbook::model::{Front, Route, RouteTls};
use crate::playbook::raw::{RawFront, RawRoute};
use crate::playbook::units::Span;
use crate::playbook::validate::Validator;
use crate::playbook::yaml::Sp;

/// Whether `s` is a host name a route can carry: lowercase DNS labels of letters, digits
/// and `-`, dot-separated, at most 253 characters (no wildcard, no port, no IP address
/// needed: nginx matches it as written).
pub fn is_route_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `ADDRESS:PORT` of a listener (an IPv4 address; `0.0.0.0` for every interface).
fn listen(s: &str) -> Result<(String, u16), String> {
    let (a, p) = s
        .rsplit_once(':')
        .ok_or("expected `ADDRESS:PORT`, e.g. `0.0.0.0:80`")?;
    let addr: std::net::Ipv4Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
    let port: u16 = p
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{p}` is not a port"))?;
    Ok((addr.to_string(), port))
}

impl Validator<'_> {
    /// `deploy.route`: a host name, the app's port, TLS as secrets.
    pub(super) fn route(&mut self, r: &Sp<RawRoute>, f: &str) -> Option<Route> {
        let before = self.errors();
        let v = &r.value;
        let host = self.text(&v.host, &format!("{f}.route.host"));
        if !is_route_host(&host) {
            self.error(
                v.host.loc,
                format!("`{host}` is not a host name a route can serve"),
                "expected lowercase DNS labels, e.g. `izin.kota.go.id` (no port, no wildcard)",
            );
        }
        if v.port.value == 0 {
            self.error(
                v.port.loc,
                "port 0 is not a port",
                "expected the port the app listens on inside its container, e.g. `8080`",
            );
        }
        let tls = v.tls.as_ref().map(|t| RouteTls {
            cert: self.secret_field(&t.value.cert, &format!("{f}.route.tls.cert")),
            key: self.secret_field(&t.value.key, &format!("{f}.route.tls.key")),
        });
        let redirect_http = v.redirect_http.as_ref().is_none_or(|b| b.value);
        if let Some(b) = &v.redirect_http
            && b.value
            && tls.is_none()
        {
            self.error(
                b.loc,
                "`redirect_http` needs `tls`",
                "add `tls: { cert: …, key: … }`, or remove `redirect_http`",
            );
        }
        let drain = v
            .drain
            .as_ref()
            .and_then(|d| self.span(d, &format!("{f}.route.drain")))
            .unwrap_or(Span::secs(5));
        if drain.0 > std::time::Duration::from_secs(600) {
            self.error(
                v.drain.as_ref().map_or(r.loc, |d| d.loc),
                "a drain of more than 10 minutes keeps two releases running",
                "expected e.g. `5s`",
            );
        }
        let assess = v.assess.as_ref().is_some_and(|a| a.value);
        if let Some(a) = &v.assess
            && a.value
            && self.assess.is_none()
        {
            self.error(
                a.loc,
                "`route.assess` runs the playbook's `assess:` section, and there is none (or it has errors)",
                "add `assess: { vendor_url: http://…, target_url: http://…, paths: [\"/\"] }` at the top level",
            );
        }
        if let Some(a) = &v.assess
            && a.value
            && self.ssh_target
        {
            self.error(
                a.loc,
                "`route.assess` requests the new release at its address on the front's network from this machine, which cannot reach it on an `ssh://` target",
                "remove it, and put an `assess` step after the deploy, against the app's own URL",
            );
        }
        (self.errors() == before).then_some(Route {
            host,
            port: v.port.value,
            redirect_http: redirect_http && tls.is_some(),
            tls,
            drain,
            assess,
        })
    }

    /// `target.front`: defaults for what is not given.
    pub(crate) fn front(&mut self, raw: Option<&Sp<RawFront>>) -> Front {
        let mut front = Front::default();
        let Some(raw) = raw else { return front };
        let r = &raw.value;
        if let Some(n) = &r.name {
            front.name = self.docker_name(n, "target.front.name");
        }
        if let Some(i) = &r.image {
            front.image = self.image_ref(i, "target.front.image");
        }
        for (given, slot, field) in [
            (&r.http, &mut front.http, "target.front.http"),
            (&r.https, &mut front.https, "target.front.https"),
        ] {
            let Some(g) = given else { continue };
            let t = self.text(g, field);
            match listen(&t) {
                Ok(l) => *slot = l,
                Err(e) => self.error(
                    g.loc,
                    format!("`{field}`: `{t}` is not a listen address"),
                    e,
                ),
            }
        }
        if front.http.1 == front.https.1 && front.http.0 == front.https.0 {
            self.error(
                raw.loc,
                "the front's `http` and `https` share an address and port",
                "give them different ports, e.g. `0.0.0.0:80` and `0.0.0.0:443`",
            );
        }
        front
    }

    /// A deploy with a route publishes no port (the front proxy serves it).
    pub(super) fn route_without_ports(&mut self, route: &Sp<RawRoute>, ports: &[Sp<String>]) {
        if let Some(p) = ports.first() {
            self.error(
                p.loc,
                "a routed app publishes no port: the front proxy serves it by host name",
                format!(
                    "remove `ports`, or remove `route` (at {}:{})",
                    route.loc.line, route.loc.col
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_listen_addresses() {
        assert!(is_route_host("izin.kota.go.id"));
        assert!(is_route_host("localhost"));
        assert!(!is_route_host("Izin.kota.go.id"));
        assert!(!is_route_host("*.kota.go.id"));
        assert!(!is_route_host("izin.kota.go.id:80"));
        assert!(!is_route_host("-a.b"));
        assert!(!is_route_host("a..b"));
        assert!(!is_route_host("a;b"));
        assert_eq!(listen("127.0.0.1:8080"), Ok(("127.0.0.1".into(), 8080)));
        assert!(listen("8080").is_err());
        assert!(listen("localhost:80").is_err());
        assert!(listen("0.0.0.0:0").is_err());
    }
}
