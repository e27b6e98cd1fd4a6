//! The rules of the hosts: the vendor (address, login, key or password, known_hosts,
//! legacy algorithms) and the target engine (a Unix socket, `tcp://` with TLS files, or
//! `ssh://user@host[:port]` with a key, known_hosts and the remote socket).

use std::path::PathBuf;

use super::model::{
    DEFAULT_DOCKER_SOCKET, DockerEndpoint, LEGACY_ALGORITHMS, Target, Vendor, VendorAuth,
};
use super::raw::{RawTarget, RawVendor};
use super::validate::Validator;
use super::yaml::Sp;
use crate::diag::{Diagnostic, Loc};

/// A host name or address safe to hand to SSH: no spaces, no leading `-`.
fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_[]".contains(c))
}

/// A POSIX user name.
fn is_user_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl Validator<'_> {
    pub(super) fn vendor(&mut self, raw: &Sp<RawVendor>) -> Option<Vendor> {
        let r = &raw.value;
        let host = self.text(&r.host, "vendor.host");
        if !is_host(&host) {
            self.error(
                r.host.loc,
                format!("`{host}` is not a host name or address"),
                "expected e.g. `10.20.0.5` or `app.vendor.co.id`",
            );
        }
        let user = self.text(&r.user, "vendor.user");
        if !is_user_name(&user) {
            self.error(
                r.user.loc,
                format!("`{user}` is not a user name"),
                "expected letters, digits, `.`, `_` and `-`, not starting with `-`",
            );
        }
        let port = r.port.as_ref().map_or(22, |p| p.value);
        if port == 0
            && let Some(p) = &r.port
        {
            self.error(p.loc, "port 0 is not a port", "expected 1 to 65535");
        }
        let known_hosts = r
            .known_hosts
            .as_ref()
            .map(|k| self.path(k, "vendor.known_hosts"));
        if known_hosts.is_none() {
            self.push(
                Diagnostic::warning(Some(raw.loc), "`vendor.known_hosts` is not given: the operator's ~/.ssh/known_hosts is used")
                    .help("give the vendor host's key in a file next to the playbook, so every operator checks the same key"),
            );
        }
        let auth = match (&r.identity, &r.password) {
            (Some(id), None) => Some(VendorAuth::Key {
                identity: self.path(id, "vendor.identity"),
                passphrase: r
                    .passphrase
                    .as_ref()
                    .map(|p| self.secret_field(p, "vendor.passphrase")),
            }),
            (None, Some(pw)) => {
                if let Some(pp) = &r.passphrase {
                    self.error(
                        pp.loc,
                        "`passphrase` goes with `identity`, not `password`",
                        "remove it",
                    );
                }
                Some(VendorAuth::Password(
                    self.secret_field(pw, "vendor.password"),
                ))
            }
            (Some(_), Some(pw)) => {
                self.error(
                    pw.loc,
                    "`vendor` has both `identity` and `password`",
                    "choose one way to log in",
                );
                None
            }
            (None, None) => {
                self.error(
                    raw.loc,
                    "`vendor` has no way to log in",
                    "add `identity: keys/vendor_ed25519` or `password: { env: NAME }`",
                );
                None
            }
        };
        let mut legacy_algorithms = Vec::new();
        for a in &r.legacy_algorithms {
            if LEGACY_ALGORITHMS.contains(&a.value.as_str()) {
                legacy_algorithms.push(a.value.clone());
            } else {
                self.push(
                    Diagnostic::error(
                        Some(a.loc),
                        format!(
                            "`{}` is not a legacy SSH algorithm boyong can allow",
                            a.value
                        ),
                    )
                    .label(format!("expected one of: {}", LEGACY_ALGORITHMS.join(", ")))
                    .did_you_mean(&a.value, LEGACY_ALGORITHMS.iter().copied()),
                );
            }
        }
        if !legacy_algorithms.is_empty()
            && let Some(first) = r.legacy_algorithms.first()
        {
            self.push(
                Diagnostic::warning(
                    Some(first.loc),
                    format!(
                        "legacy SSH algorithms allowed for {host}: {}",
                        legacy_algorithms.join(", ")
                    ),
                )
                .label("weaker than boyong's defaults")
                .help("ask the vendor to update its SSH server, then remove this"),
            );
        }
        Some(Vendor {
            host,
            port,
            user,
            auth: auth?,
            known_hosts,
            legacy_algorithms,
        })
    }

    pub(super) fn target(&mut self, raw: Option<&Sp<RawTarget>>) -> Target {
        let mut t = self.endpoint(raw);
        if let Some(s) = raw.and_then(|r| r.value.swarm.as_ref())
            && s.value
        {
            t.swarm = true;
        }
        t
    }

    fn endpoint(&mut self, raw: Option<&Sp<RawTarget>>) -> Target {
        let front = self.front(raw.and_then(|r| r.value.front.as_ref()));
        let default = Target {
            docker: DockerEndpoint::Unix(PathBuf::from("/var/run/docker.sock")),
            front: front.clone(),
            swarm: false,
        };
        let Some(raw) = raw else { return default };
        let r = &raw.value;
        let ssh = r
            .docker
            .as_ref()
            .is_some_and(|d| d.value.starts_with("ssh://"));
        if !ssh {
            for (field, v) in [
                ("identity", &r.identity),
                ("known_hosts", &r.known_hosts),
                ("socket", &r.socket),
            ] {
                if let Some(v) = v {
                    self.error(
                        v.loc,
                        format!("`{field}` applies to an `ssh://` endpoint"),
                        "add `docker: ssh://USER@HOST`, or remove it",
                    );
                }
            }
        }
        let Some(d) = &r.docker else {
            if let Some(tls) = &r.tls {
                self.error(
                    tls.loc,
                    "`tls` applies to a `tcp://` endpoint",
                    "add `docker: tcp://HOST:2376`",
                );
            }
            return default;
        };
        let url = self.text(d, "target.docker");
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                self.error(
                    d.loc,
                    "a unix socket path must be absolute",
                    "expected e.g. `unix:///var/run/docker.sock`",
                );
            }
            if let Some(tls) = &r.tls {
                self.error(
                    tls.loc,
                    "`tls` applies to a `tcp://` endpoint, not a unix socket",
                    "remove it",
                );
            }
            return Target {
                docker: DockerEndpoint::Unix(PathBuf::from(path)),
                front,
                swarm: false,
            };
        }
        if let Some(hp) = url.strip_prefix("tcp://") {
            let (host, port) = match hp.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().ok().filter(|&p| p > 0)),
                None => (hp.to_string(), Some(2376)),
            };
            if port.is_none() || !is_host(&host) {
                self.error(
                    d.loc,
                    format!("`{url}` is not a valid tcp endpoint"),
                    "expected `tcp://HOST:PORT`",
                );
            }
            let Some(tls) = &r.tls else {
                self.error(
                    d.loc,
                    "the Docker API over TCP needs TLS client certificates",
                    "add `tls: { ca: ..., cert: ..., key: ... }`",
                );
                return default;
            };
            let t = &tls.value;
            return Target {
                docker: DockerEndpoint::Tcp {
                    host,
                    port: port.unwrap_or(2376),
                    ca: self.path(&t.ca, "target.tls.ca"),
                    cert: self.path(&t.cert, "target.tls.cert"),
                    key: self.path(&t.key, "target.tls.key"),
                },
                front,
                swarm: false,
            };
        }
        if let Some(rest) = url.strip_prefix("ssh://") {
            return match self.ssh_target(d, rest, r) {
                Some(docker) => Target {
                    docker,
                    front,
                    swarm: false,
                },
                None => default,
            };
        }
        self.error(
            d.loc,
            format!("`{url}` is not a Docker endpoint"),
            "expected `unix:///path/to/docker.sock`, `tcp://HOST:PORT` or `ssh://USER@HOST[:PORT]`",
        );
        default
    }

    /// The local path of `target.FIELD`, which an `ssh://` target needs: an error at
    /// `loc` saying what to add (`hint`) when it is missing.
    fn required_path(
        &mut self,
        value: Option<&Sp<String>>,
        loc: Loc,
        field: &str,
        hint: &str,
    ) -> Option<PathBuf> {
        if let Some(v) = value {
            return Some(self.path(v, &format!("target.{field}")));
        }
        self.error(loc, format!("an `ssh://` target needs `{field}`"), hint);
        None
    }

    /// `target.docker: ssh://USER@HOST[:PORT]` (`rest` is what follows `ssh://`) with its
    /// `identity`, `known_hosts` and `socket`; `None` after an error.
    fn ssh_target(&mut self, d: &Sp<String>, rest: &str, r: &RawTarget) -> Option<DockerEndpoint> {
        let before = self.errors();
        if let Some(tls) = &r.tls {
            self.error(
                tls.loc,
                "`tls` applies to a `tcp://` endpoint; over `ssh://` the SSH connection is the encryption",
                "remove it",
            );
        }
        let parsed = parse_ssh(rest);
        match &parsed {
            Err(why) => self.error(
                d.loc,
                format!("`ssh://{rest}` is not a valid ssh endpoint: {why}"),
                "expected `ssh://USER@HOST` or `ssh://USER@HOST:PORT`, e.g. `ssh://deploy@10.30.0.8`",
            ),
            Ok((user, host, _)) => {
                if !is_user_name(user) {
                    self.error(
                        d.loc,
                        format!("`{user}` is not a user name"),
                        "expected letters, digits, `.`, `_` and `-`, not starting with `-`",
                    );
                }
                if !is_host(host) {
                    self.error(
                        d.loc,
                        format!("`{host}` is not a host name or address"),
                        "expected e.g. `10.30.0.8` or `docker.kota.go.id`",
                    );
                }
            }
        }
        let identity = self.required_path(
            r.identity.as_ref(),
            d.loc,
            "identity",
            "add `identity: keys/target_ed25519` (a key whose public half is in the remote user's authorized_keys)",
        );
        let known_hosts = self.required_path(
            r.known_hosts.as_ref(),
            d.loc,
            "known_hosts",
            "add `known_hosts: keys/known_hosts` holding the server's host key (`ssh-keyscan`, checked with its administrators)",
        );
        let socket = match &r.socket {
            Some(s) => {
                let text = self.text(s, "target.socket");
                if !text.starts_with('/') || text.chars().any(char::is_whitespace) {
                    self.error(
                        s.loc,
                        format!("`{text}` is not an absolute socket path"),
                        "expected e.g. `/var/run/docker.sock`",
                    );
                }
                PathBuf::from(text)
            }
            None => PathBuf::from(DEFAULT_DOCKER_SOCKET),
        };
        let (user, host, port) = parsed.ok()?;
        if self.errors() > before {
            return None;
        }
        Some(DockerEndpoint::Ssh {
            user,
            host,
            port,
            identity: identity?,
            known_hosts: known_hosts?,
            socket,
        })
    }
}

/// `USER@HOST[:PORT]` (an IPv6 address in brackets): its parts, or why not.
fn parse_ssh(rest: &str) -> Result<(String, String, u16), &'static str> {
    let (user, hostport) = rest.split_once('@').ok_or("no `USER@`")?;
    if user.is_empty() {
        return Err("the user is empty");
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("`[` without `]`")?;
        let port = if after.is_empty() {
            None
        } else {
            Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected `:PORT` after `]`")?,
            )
        };
        (h, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.contains('/') {
        return Err("a path is not part of it (name the socket in `socket`)");
    }
    let port = match port {
        None => 22,
        Some(p) => match p.parse::<u16>() {
            Ok(0) => return Err("port 0 is not a port (expected 1 to 65535)"),
            Ok(p) => p,
            Err(_) => return Err("the port is not a number from 1 to 65535"),
        },
    };
    Ok((user.to_string(), host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::parse_ssh;

    #[test]
    fn an_ssh_endpoint_gives_its_user_host_and_port() {
        let p = |s: &str| parse_ssh(s).map(|(u, h, p)| format!("{u} {h} {p}"));
        assert_eq!(p("deploy@10.30.0.8"), Ok("deploy 10.30.0.8 22".into()));
        assert_eq!(
            p("root@gov.example:2222"),
            Ok("root gov.example 2222".into())
        );
        assert_eq!(p("a@[::1]:2200"), Ok("a ::1 2200".into()));
        assert_eq!(p("a@[::1]"), Ok("a ::1 22".into()));
        assert!(p("10.30.0.8").is_err());
        assert!(p("@h").is_err());
        assert!(p("u@h:0").is_err());
        assert!(p("u@h:99999").is_err());
        assert!(p("u@h/var/run/docker.sock").is_err());
        assert!(p("u@:22").is_err());
    }
}
