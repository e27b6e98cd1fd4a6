//! Semantic rules of each step kind (see `validate.rs` for the shared machinery).

use std::collections::BTreeMap;

use super::model::{
    Build, Deploy, Dump, Exec, ExecOn, Fetch, Health, HealthCheck, ImageSource, Restore, Security,
    Step, StepKind, VolumeMount,
};
use super::raw::{
    RawBuild, RawDeploy, RawDump, RawExec, RawExecOn, RawFetch, RawHealth, RawRestore, RawSecurity,
    RawStep,
};
use super::template::{Template, is_var_name};
use super::units::{PortMap, Size, Span};
use super::validate::{Validator, is_step_id};
use super::yaml::Sp;
use crate::diag::{Diagnostic, Loc};

const NO_SECRET_REMOTE: &str = "a secret on a command line is visible to every user of that host (`ps`): pass it in the step's `env:` instead";
const NO_SECRET_IMAGE: &str = "a secret here would be written into the image, readable by anyone who has it: pass it at deploy time in `deploy.env`";

/// Linux capabilities `cap_add` accepts.
pub const CAPABILITIES: [&str; 41] = [
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// An image reference with a tag or digest: `name[:tag]`, `registry/ns/name:tag`, `name@sha256:...`.
pub fn is_image_ref(s: &str) -> bool {
    let (name, tag) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d.starts_with("sha256:") && d.len() == 71)),
        None => match s.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (
                n,
                Some(
                    !t.is_empty()
                        && t.len() <= 128
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                ),
            ),
            _ => (s, None),
        },
    };
    tag.unwrap_or(false)
        && !name.is_empty()
        && !name.starts_with(['/', '-', '.'])
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-:".contains(c))
        })
}

fn is_abs_path(s: &str) -> bool {
    s.starts_with('/') && !s.split('/').any(|c| c == "..") && !s.contains('\0')
}

impl Validator<'_> {
    pub(super) fn step(&mut self, at: usize, raw: &RawStep, loc: Loc) -> Option<Step> {
        let id = raw.id.value.clone();
        let timeout = raw.timeout.as_ref().and_then(|t| self.span(t, "timeout"));
        let retry_delay = raw
            .retry_delay
            .as_ref()
            .and_then(|t| self.span(t, "retry_delay"));
        if let (Some(d), Some(raw_d)) = (retry_delay, &raw.retry_delay)
            && d.0 > std::time::Duration::from_secs(600)
        {
            self.error(
                raw_d.loc,
                "`retry_delay` is at most 10m",
                "expected e.g. `5s`",
            );
        }
        let reads_vendor = raw.fetch.is_some() || raw.dump.is_some();
        let retries = raw
            .retries
            .as_ref()
            .map_or(if reads_vendor { 2 } else { 0 }, |r| r.value);
        if let Some(r) = &raw.retries
            && r.value > 10
        {
            self.error(r.loc, "at most 10 retries", "expected 0 to 10");
        }
        let p = |f: &str| format!("steps.{id}.{f}");
        let kind = if let Some(f) = &raw.fetch {
            Some(StepKind::Fetch(self.fetch(&f.value, &p("fetch"))))
        } else if let Some(d) = &raw.dump {
            Some(StepKind::Dump(self.dump(&d.value, &p("dump"))))
        } else if let Some(e) = &raw.exec {
            Some(StepKind::Exec(self.exec(&e.value, &p("exec"))))
        } else if let Some(b) = &raw.build {
            Some(StepKind::Build(self.build(at, &b.value, &p("build"))))
        } else if let Some(r) = &raw.restore {
            Some(StepKind::Restore(self.restore(at, &r.value, &p("restore"))))
        } else if let Some(d) = &raw.deploy {
            Some(StepKind::Deploy(self.deploy(
                at,
                &d.value,
                d.loc,
                &p("deploy"),
            )))
        } else {
            let _ = loc;
            None
        };
        Some(Step {
            id,
            retries,
            retry_delay,
            timeout,
            kind: kind?,
        })
    }

    fn span(&mut self, s: &Sp<String>, field: &str) -> Option<Span> {
        self.unit(s, field, "a duration", Span::parse)
    }

    fn size(&mut self, s: &Sp<String>, field: &str) -> Option<Size> {
        self.unit(s, field, "a size", Size::parse)
    }

    /// A field holding a value with units; nothing more is said when its text failed.
    fn unit<T>(
        &mut self,
        s: &Sp<String>,
        field: &str,
        what: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let before = self.errors();
        let t = self.text(s, field);
        if self.errors() > before {
            return None;
        }
        parse(&t)
            .map_err(|e| self.error(s.loc, format!("`{field}` is not {what}: `{t}`"), e))
            .ok()
    }

    fn abs_path(&mut self, s: &Sp<String>, field: &str, why: &str) -> String {
        let before = self.errors();
        let t = self.text_because(s, field, why);
        if !is_abs_path(&t) && self.errors() == before {
            self.error(
                s.loc,
                format!("`{field}` must be an absolute path without `..`: `{t}`"),
                "expected e.g. `/srv/www/app`",
            );
        }
        t
    }

    fn image_ref(&mut self, s: &Sp<String>, field: &str) -> String {
        let before = self.errors();
        let t = self.text_because(s, field, NO_SECRET_IMAGE);
        if !is_image_ref(&t) && self.errors() == before {
            self.error(s.loc, format!("`{t}` is not an image reference with a tag"), "expected e.g. `gov/php:8.2` (a tag is required: no registry decides what `latest` means)");
        }
        t
    }

    fn env_map(
        &mut self,
        m: &BTreeMap<String, Sp<String>>,
        field: &str,
        secrets_ok: bool,
    ) -> BTreeMap<String, Template> {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            if !is_var_name(k) {
                self.error(
                    v.loc,
                    format!("`{k}` is not an environment variable name"),
                    "expected letters, digits and `_`",
                );
            }
            let f = format!("{field}.{k}");
            let t = if secrets_ok {
                self.template(v, &f)
            } else {
                Template::text(self.text_because(v, &f, NO_SECRET_IMAGE))
            };
            out.insert(k.clone(), t);
        }
        out
    }

    fn fetch(&mut self, r: &RawFetch, f: &str) -> Fetch {
        let path = self.abs_path(&r.path, &format!("{f}.path"), NO_SECRET_REMOTE);
        let exclude = r
            .exclude
            .iter()
            .map(|e| {
                let t = self.text_because(e, &format!("{f}.exclude"), NO_SECRET_REMOTE);
                if t.is_empty() || t.starts_with('/') || t.split('/').any(|c| c == "..") {
                    self.error(
                        e.loc,
                        format!("exclude `{t}` must be a path relative to `path`"),
                        "expected e.g. `storage/logs/`",
                    );
                }
                t
            })
            .collect();
        let sha256sums = r
            .sha256sums
            .as_ref()
            .map(|s| self.abs_path(s, &format!("{f}.sha256sums"), NO_SECRET_REMOTE));
        Fetch {
            path,
            exclude,
            sha256sums,
        }
    }

    fn dump(&mut self, r: &RawDump, f: &str) -> Dump {
        let database = self.text_because(&r.database, &format!("{f}.database"), NO_SECRET_REMOTE);
        let user = self.text_because(&r.user, &format!("{f}.user"), NO_SECRET_REMOTE);
        for (v, what) in [(&database, &r.database), (&user, &r.user)] {
            if v.is_empty() || v.starts_with('-') || v.chars().any(char::is_control) {
                self.error(
                    what.loc,
                    format!("`{v}` is not a valid name"),
                    "expected a database or user name, not starting with `-`",
                );
            }
        }
        if r.engine.value == super::model::DbEngine::Postgres
            && let Some(why) = super::text::pg_database_problem(&database)
        {
            self.error(
                r.database.loc,
                format!("`{database}` is not a PostgreSQL database name"),
                why,
            );
        }
        let password = r
            .password
            .as_ref()
            .map(|p| self.secret_field(p, &format!("{f}.password")));
        let host = r.host.as_ref().map_or_else(
            || "localhost".to_string(),
            |h| self.text_because(h, &format!("{f}.host"), NO_SECRET_REMOTE),
        );
        if host.starts_with('-') || host.is_empty() {
            let loc = r.host.as_ref().map_or(r.database.loc, |h| h.loc);
            self.error(
                loc,
                format!("`{host}` is not a host name"),
                "expected e.g. `localhost`",
            );
        }
        let engine = r.engine.value;
        let port = r.port.as_ref().map_or(engine.default_port(), |p| p.value);
        Dump {
            engine,
            database,
            user,
            password,
            host,
            port,
        }
    }

    fn exec(&mut self, r: &RawExec, f: &str) -> Exec {
        // Vars go into these shell command lines as one quoted word each.
        self.shell_words = true;
        let run = self.text_because(&r.run, &format!("{f}.run"), NO_SECRET_REMOTE);
        if run.trim().is_empty() {
            self.error(r.run.loc, "`run` is empty", "expected a command");
        }
        let undo = r
            .undo
            .as_ref()
            .map(|u| self.text_because(u, &format!("{f}.undo"), NO_SECRET_REMOTE));
        self.shell_words = false;
        let on = match r.on.as_ref().map(|o| (&o.value, o.loc)) {
            None | Some((RawExecOn::Vendor(_), _)) => ExecOn::Vendor,
            Some((RawExecOn::Container { container }, loc)) => ExecOn::Container(self.docker_name(
                &Sp::new(container.clone(), loc),
                &format!("{f}.on.container"),
            )),
        };
        let env = self.env_map(&r.env, &format!("{f}.env"), true);
        Exec { run, undo, on, env }
    }

    fn build(&mut self, at: usize, r: &RawBuild, f: &str) -> Build {
        let base = self.image_ref(&r.base, &format!("{f}.base"));
        let mut copy = Vec::new();
        for (key, dest) in &r.copy {
            let key = &key.0;
            let from = &key.value;
            if let Some(id) = self.step_ref(key, at, "fetch", &format!("{f}.copy")) {
                let d = self.abs_path(dest, &format!("{f}.copy.{from}"), NO_SECRET_IMAGE);
                copy.push((id, d));
            }
        }
        let run = r
            .run
            .iter()
            .map(|c| self.text_because(c, &format!("{f}.run"), NO_SECRET_IMAGE))
            .collect();
        let user = r.user.as_ref().map(|u| {
            let before = self.errors();
            let t = self.text_because(u, &format!("{f}.user"), NO_SECRET_IMAGE);
            if !super::text::is_image_user(&t) && self.errors() == before {
                self.error(
                    u.loc,
                    format!("`{t}` is not a user for the image"),
                    "expected a user name or id, optionally `:` and a group: `33`, `www-data`, `65534:65534`",
                );
            }
            t
        });
        let workdir = r
            .workdir
            .as_ref()
            .map(|w| self.abs_path(w, &format!("{f}.workdir"), NO_SECRET_IMAGE));
        let env = self
            .env_map(&r.env, &format!("{f}.env"), false)
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let cmd = r.cmd.as_ref().map(|c| {
            c.iter()
                .map(|x| self.text_because(x, &format!("{f}.cmd"), NO_SECRET_IMAGE))
                .collect::<Vec<_>>()
        });
        if let Some(c) = &r.cmd
            && c.is_empty()
        {
            self.push(
                Diagnostic::error(Some(r.base.loc), format!("`{f}.cmd` is an empty list"))
                    .label("expected at least the program to run"),
            );
        }
        let mut expose = Vec::new();
        for p in &r.expose {
            if p.value == 0 {
                self.error(p.loc, "port 0 cannot be exposed", "expected 1 to 65535");
            }
            expose.push(p.value);
        }
        let tag = r
            .tag
            .as_ref()
            .map(|t| self.image_ref(t, &format!("{f}.tag")));
        Build {
            base,
            copy,
            run,
            user,
            workdir,
            env,
            cmd,
            expose,
            tag,
        }
    }

    fn restore(&mut self, at: usize, r: &RawRestore, f: &str) -> Restore {
        let from = self
            .step_ref(&r.from, at, "dump", &format!("{f}.from"))
            .unwrap_or_default();
        let image = self.image_ref(&r.image, &format!("{f}.image"));
        let name = self.docker_name(&r.name, &format!("{f}.name"));
        let volume = self.docker_name(&r.volume, &format!("{f}.volume"));
        let network = r
            .network
            .as_ref()
            .map(|n| self.docker_name(n, &format!("{f}.network")));
        let password = self.secret_field(&r.password, &format!("{f}.password"));
        let replace = r.replace.as_ref().is_some_and(|x| x.value);
        Restore {
            from,
            image,
            name,
            volume,
            network,
            password,
            replace,
        }
    }

    fn deploy(&mut self, at: usize, r: &RawDeploy, loc: Loc, f: &str) -> Deploy {
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
        }
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
        if !super::validate::is_docker_name(vol) {
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
                    "expected an `http://` URL of the container's own port, or `tcp: HOST:PORT`",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "gov/php:8.2",
            "perizinan:2026.11.1",
            "registry.local:5000/a/b:1",
            "x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(is_image_ref(ok), "{ok}");
        }
        for bad in [
            "php",
            "Gov/php:8",
            "php:",
            "-x:1",
            "a b:1",
            "x@sha256:12",
            "/x:1",
        ] {
            assert!(!is_image_ref(bad), "{bad}");
        }
    }
}
