//! The rules of a `deploy` step: its ports, volumes, health check and hardening.

use super::{CAPABILITIES, is_abs_path};
use crate::diag::{Diagnostic, Loc};
use crate::playbook::model::{
    Deploy, Health, HealthCheck, ImageSource, Security, Service, VolumeMount,
};
use crate::playbook::raw::{RawDeploy, RawHealth, RawSecurity};
use crate::playbook::units::{PortMap, Span};
use crate::playbook::validate::{Validator, is_step_id};
use crate::playbook::yaml::Sp;

impl Validator<'_> {
    pub(super) fn deploy(&mut self, at: usize, r: &RawDeploy, loc: Loc, f: &str) -> Deploy {
        let img = &r.image;
        let image = if is_step_id(&img.value) && !img.value.contains(':') {
            if self.is_earlier(&img.value, at, "build") {
                ImageSource::Build(img.value.clone())
            } else if self.steps.iter().any(|(id, _, _)| id == &img.value) {
                self.step_ref(img, at, "build", &format!("{f}.image"));
                ImageSource::Reference(String::new())
            } else {
                let builds: Vec<String> = self.steps[..at]
                    .iter()
                    .filter(|(_, k, _)| *k == "build")
                    .map(|(i, _, _)| i.clone())
                    .collect();
                self.push(
                    Diagnostic::error(
                        Some(img.loc),
                        format!(
                            "`{}` is neither a build step nor an image reference with a tag",
                            img.value
                        ),
                    )
                    .label(format!(
                        "expected the id of an earlier build step{} or e.g. `{}:1.0`",
                        if builds.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", builds.join(", "))
                        },
                        img.value
                    ))
                    .did_you_mean(&img.value, builds.iter().map(String::as_str)),
                );
                ImageSource::Reference(String::new())
            }
        } else {
            ImageSource::Reference(self.image_ref(img, &format!("{f}.image")))
        };
        let name = self.docker_name(&r.name, &format!("{f}.name"));
        let network = r
            .network
            .as_ref()
            .map(|n| self.docker_name(n, &format!("{f}.network")));
        let mut ports = Vec::new();
        for p in &r.ports {
            let before = self.errors();
            let t = self.text(p, &format!("{f}.ports"));
            if self.errors() > before {
                continue;
            }
            match PortMap::parse(&t) {
                Ok(pm) => {
                    if pm.address.is_none() {
                        self.push(
                            Diagnostic::warning(Some(p.loc), format!("port `{t}` is published on every network interface"))
                                .label("no address given")
                                .help(format!("bind it to one address behind the reverse proxy, e.g. `127.0.0.1:{}:{}`", pm.host, pm.container)),
                        );
                    }
                    ports.push(pm);
                }
                Err(e) => self.error(p.loc, format!("`{t}` is not a port mapping"), e),
            }
        }
        let env = self.env_map(&r.env, &format!("{f}.env"), true);
        let volumes = r
            .volumes
            .iter()
            .filter_map(|v| self.volume(v, &format!("{f}.volumes")))
            .collect();
        let health = self.health(r.health.as_ref(), loc, &format!("{f}.health"));
        if let Some(h) = &r.health {
            self.health_port(&health.check, &ports, h.loc);
        }
        let security = self.security(
            r.security.as_ref().map(|s| &s.value),
            &format!("{f}.security"),
        );
        let keep = r.keep.as_ref().map_or(1, |k| k.value);
        if let Some(k) = &r.keep
            && k.value > 20
        {
            self.error(
                k.loc,
                "at most 20 previous releases are kept",
                "expected 0 to 20",
            );
        }
        let files = self.deploy_files(&r.files, f);
        let stop_grace = r
            .stop_grace
            .as_ref()
            .and_then(|t| self.span(t, &format!("{f}.stop_grace")))
            .unwrap_or(Span::secs(10));
        let route = r.route.as_ref().and_then(|rt| {
            self.route_without_ports(rt, &r.ports);
            self.route(rt, f)
        });
        let service = self.service(r, f);
        Deploy {
            image,
            name,
            network,
            ports,
            env,
            volumes,
            health,
            security,
            keep,
            stop_grace,
            files,
            service,
            route,
        }
    }

    /// `deploy.service`, and what a Swarm service cannot take: `Some` exactly when the
    /// target is a swarm.
    fn service(&mut self, r: &RawDeploy, f: &str) -> Option<Service> {
        if !self.swarm_target {
            if let Some(s) = &r.service {
                self.error(
                    s.loc,
                    "`service` applies to a Swarm target",
                    "add `swarm: true` under `target:`, or remove it",
                );
            }
            return None;
        }
        if let Some(p) = r.ports.first() {
            self.error(
                p.loc,
                "a Swarm service publishes no port: the routing mesh is not used",
                "serve it through the front proxy with `route: { host: ..., port: ... }`",
            );
        }
        let raw = r.service.as_ref().map(|s| &s.value);
        let replicas = raw.and_then(|s| s.replicas.as_ref()).map_or(1, |n| {
            if n.value == 0 || n.value > 100 {
                self.error(n.loc, format!("{} replicas", n.value), "expected 1 to 100");
            }
            n.value
        });
        let mut placement = Vec::new();
        for c in raw.map(|s| s.placement.as_slice()).unwrap_or_default() {
            let t = self.text(c, &format!("{f}.service.placement"));
            if !(t.contains("==") || t.contains("!=")) {
                self.error(
                    c.loc,
                    format!("`{t}` is not a placement constraint"),
                    "expected e.g. `node.role == worker` or `node.labels.zone != dmz`",
                );
            }
            placement.push(t);
        }
        let monitor = raw
            .and_then(|s| s.monitor.as_ref())
            .and_then(|m| self.span(m, &format!("{f}.service.monitor")))
            .unwrap_or(Span::secs(5));
        Some(Service {
            replicas,
            placement,
            monitor,
        })
    }

    fn volume(&mut self, v: &Sp<String>, field: &str) -> Option<VolumeMount> {
        let t = self.text(v, field);
        let parts: Vec<&str> = t.split(':').collect();
        let (vol, path, ro) = match parts.as_slice() {
            [v, p] | [v, p, "rw"] => (*v, *p, false),
            [v, p, "ro"] => (*v, *p, true),
            _ => {
                self.error(
                    v.loc,
                    format!("`{t}` is not a volume mount"),
                    "expected `VOLUME:/path` or `VOLUME:/path:ro`",
                );
                return None;
            }
        };
        if !crate::playbook::validate::is_docker_name(vol) {
            self.error(v.loc, format!("`{vol}` is not a volume name"), "expected a named volume (host paths are not mounted: they tie the app to one server)");
            return None;
        }
        if !is_abs_path(path) {
            self.error(
                v.loc,
                format!("`{path}` is not an absolute path"),
                "expected e.g. `data:/var/www/html/storage`",
            );
            return None;
        }
        Some(VolumeMount {
            volume: vol.into(),
            path: path.into(),
            read_only: ro,
        })
    }

    /// A health check is made from the engine's host (this machine for a local socket or
    /// `tcp://`; the remote host, through SSH, for `ssh://`), to the host's side of a port
    /// mapping: a URL or address whose port is only a container's side of `ports`
    /// (`8080:80` checked at `:80`) is warned about. With a `tcp://` engine, a loopback
    /// address is this machine's, not the engine's host's: warned about too.
    fn health_port(&mut self, check: &HealthCheck, ports: &[PortMap], loc: Loc) {
        let hostport = match check {
            HealthCheck::Http { url, .. } => url
                .strip_prefix("http://")
                .map(|r| r.split('/').next().unwrap_or_default()),
            HealthCheck::Tcp(a) => Some(a.as_str()),
            _ => None,
        };
        let Some(hostport) = hostport else { return };
        let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
        if self.tcp_target && (host.starts_with("127.") || host == "localhost" || host == "[::1]") {
            self.push(
                Diagnostic::warning(
                    Some(loc),
                    format!("the health check goes to {hostport}, this machine's loopback: over `tcp://` checks are made from here, not from the engine's host"),
                )
                .help("give an address of the engine's host that this machine reaches, or use `docker: ssh://USER@HOST` (checks then go through the SSH connection)"),
            );
        }
        let port = match hostport.rsplit_once(':') {
            Some((_, p)) if !hostport.ends_with(']') => p.parse::<u16>().ok(),
            _ => Some(80),
        };
        let Some(port) = port else { return };
        if ports.iter().any(|p| p.host == port) {
            return;
        }
        if let Some(p) = ports.iter().find(|p| p.container == port) {
            self.push(
                Diagnostic::warning(
                    Some(loc),
                    format!(
                        "the health check goes to port {port}, which is the container's side of `{p}`: the check is made from this machine, to the host's side"
                    ),
                )
                .help(format!("check the published port, e.g. `http://127.0.0.1:{}/`", p.host)),
            );
        }
    }

    fn health(&mut self, h: Option<&Sp<RawHealth>>, deploy_loc: Loc, f: &str) -> Health {
        let mut health = Health {
            check: HealthCheck::Running,
            timeout: Span::secs(60),
            interval: Span::secs(1),
        };
        let Some(h) = h else {
            self.push(
                Diagnostic::warning(Some(deploy_loc), "deploy has no health check: the cut-over only checks that the container keeps running")
                    .help("add `health: { http: http://127.0.0.1:PORT/ }` or `health: { tcp: 127.0.0.1:PORT }`"),
            );
            return health;
        };
        let r = &h.value;
        let status = r.expect_status.as_ref().map_or(200, |s| s.value);
        if let Some(s) = &r.expect_status
            && !(100..=599).contains(&s.value)
        {
            self.error(
                s.loc,
                format!("{} is not an HTTP status", s.value),
                "expected 100 to 599",
            );
        }
        if let Some(u) = &r.http {
            let url = self.text(u, &format!("{f}.http"));
            if url.starts_with("https://") {
                // The check talks to the container itself, on the target, before any
                // proxy's TLS: plain HTTP, or a TCP connect.
                self.error(
                    u.loc,
                    format!("`{url}`: health checks speak plain HTTP to the new container"),
                    "expected an `http://` URL of the port the new container publishes on the host (the host's side of `ports`), or `tcp: HOST:PORT`",
                );
            } else if !url.starts_with("http://") || url.len() < 10 {
                self.error(
                    u.loc,
                    format!("`{url}` is not an http URL"),
                    "expected e.g. `http://127.0.0.1:8080/healthz`",
                );
            }
            health.check = HealthCheck::Http {
                url,
                expect_status: status,
                host: None,
            };
        } else if let Some(t) = &r.tcp {
            let addr = self.text(t, &format!("{f}.tcp"));
            if !addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            {
                self.error(
                    t.loc,
                    format!("`{addr}` is not HOST:PORT"),
                    "expected e.g. `127.0.0.1:8080`",
                );
            }
            health.check = HealthCheck::Tcp(addr);
        } else if let Some(c) = &r.cmd {
            let cmd: Vec<String> = c
                .value
                .iter()
                .map(|x| self.text(x, &format!("{f}.cmd")))
                .collect();
            if cmd.is_empty() {
                self.error(
                    c.loc,
                    "`cmd` is an empty list",
                    "expected the command to run in the container",
                );
            }
            health.check = HealthCheck::Cmd(cmd);
        }
        if r.http.is_none()
            && let Some(s) = &r.expect_status
        {
            self.error(
                s.loc,
                "`expect_status` applies to an `http` check",
                "remove it",
            );
        }
        if let Some(t) = &r.timeout
            && let Some(v) = self.span(t, &format!("{f}.timeout"))
        {
            health.timeout = v;
        }
        if let Some(i) = &r.interval
            && let Some(v) = self.span(i, &format!("{f}.interval"))
        {
            health.interval = v;
        }
        if health.interval > health.timeout {
            let loc = r.interval.as_ref().map_or(h.loc, |i| i.loc);
            self.error(
                loc,
                "the health check's interval is longer than its timeout",
                "make it shorter than `timeout`",
            );
        }
        health
    }

    fn security(&mut self, s: Option<&RawSecurity>, f: &str) -> Security {
        let mut sec = Security::default();
        let Some(s) = s else { return sec };
        if let Some(v) = &s.read_only {
            sec.read_only = v.value;
        }
        if let Some(v) = &s.init {
            sec.init = v.value;
        }
        if let Some(v) = &s.no_new_privileges {
            sec.no_new_privileges = v.value;
            if !v.value {
                self.push(Diagnostic::warning(Some(v.loc), "no_new_privileges is off: a setuid program in the image can gain root inside the container").label("relaxed here"));
            }
        }
        for c in &s.cap_add {
            let name = c.value.trim_start_matches("CAP_").to_ascii_uppercase();
            if CAPABILITIES.contains(&name.as_str()) {
                if name == "SYS_ADMIN" {
                    self.push(
                        Diagnostic::warning(
                            Some(c.loc),
                            "SYS_ADMIN gives the container nearly full control of the host",
                        )
                        .label("added here"),
                    );
                }
                sec.cap_add.push(name);
            } else {
                self.push(
                    Diagnostic::error(
                        Some(c.loc),
                        format!("`{}` is not a Linux capability", c.value),
                    )
                    .label("expected e.g. NET_BIND_SERVICE")
                    .did_you_mean(&name, CAPABILITIES.iter().copied()),
                );
            }
        }
        if let Some(m) = &s.memory
            && let Some(v) = self.size(m, &format!("{f}.memory"))
        {
            if v.0 < 6 << 20 {
                self.error(
                    m.loc,
                    "a memory limit under 6m cannot start a container",
                    "expected e.g. `256m`",
                );
            }
            sec.memory = v;
        }
        if let Some(p) = &s.pids {
            if p.value == 0 {
                self.error(
                    p.loc,
                    "a pids limit of 0 is not a limit",
                    "expected e.g. 256",
                );
            }
            sec.pids = p.value;
        }
        if let Some(r) = &s.restart {
            sec.restart = r.value;
        }
        if let Some(t) = &s.tmpfs {
            sec.tmpfs = t
                .iter()
                .map(|p| self.abs_path(p, &format!("{f}.tmpfs"), ""))
                .collect();
        }
        if let Some(m) = &s.log_max_size
            && let Some(v) = self.size(m, &format!("{f}.log_max_size"))
        {
            sec.log_max_size = v;
        }
        if let Some(n) = &s.log_max_files {
            if n.value == 0 || n.value > 100 {
                self.error(
                    n.loc,
                    "log_max_files must be from 1 to 100",
                    "expected e.g. 3",
                );
            }
            sec.log_max_files = n.value;
        }
        sec
    }
}
