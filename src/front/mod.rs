//! The target's front proxy: one nginx container per engine that serves every routed app
//! by host name, so that a cut-over or a rollback switches a route instead of a port.
//!
//! Why nginx (Debian's package, in the locally built `gov/front:1`): a configuration
//! reload (`nginx -s reload`) is graceful by design: the master keeps the listening
//! sockets, starts workers with the new configuration, and lets the old workers finish
//! the requests they hold. No connection is refused or reset across a switch, and the
//! switch is one file written and one signal, both checked (`nginx -t` first).
//!
//! Owns: the text of the proxy's files ([`route_conf`], [`generation_conf`]), and
//! [`FrontProxy`]: the container made (hardened: non-root, read-only root, no
//! capabilities), a route written, checked and reloaded, and the moment the new
//! configuration serves known exactly: each reload writes a new generation number into a
//! server of its own, and the switch is done when the proxy answers it.
//!
//! Invariants: a route's file names come from the app's name (`[a-z0-9-]`) and its host
//! from a validated name, never from anything else; file contents go through the exec's
//! standard input, never a command line (a key is a secret); a configuration that fails
//! `nginx -t` is never reloaded and the previous file is put back.

mod cert;
mod ops;

pub use cert::fingerprint_and_expiry;

use std::fmt::Write as _;

pub use ops::FrontProxy;

use crate::playbook::Front;

/// Where the proxy reads its routes (a volume).
pub const CONF_DIR: &str = "/etc/boyong-front";
/// Its HTTP port inside its container.
pub const HTTP_PORT: u16 = 8080;
/// Its HTTPS port inside its container.
pub const HTTPS_PORT: u16 = 8443;
/// The host name of the server that answers the configuration's generation.
pub const GENERATION_HOST: &str = "boyong-front.generation";

/// Where a route sends its requests: the release's address on the front's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The release's container (named in the file, for people).
    pub container: String,
    /// Its IPv4 address on the front's network.
    pub ip: String,
    /// The app's port in it.
    pub port: u16,
    /// A Docker Swarm service named `container`, reached by name through the engine's
    /// DNS (asked again every second: its tasks' addresses change across an update,
    /// and a refused connection goes on to the next task); `ip` is unused.
    pub service: bool,
}

/// What a route file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFile {
    /// The app.
    pub app: String,
    /// Its host name.
    pub host: String,
    /// With HTTPS (the app's `APP.crt` and `APP.key` beside it).
    pub tls: bool,
    /// Plain HTTP redirected to HTTPS.
    pub redirect_http: bool,
    /// Where requests go.
    pub upstream: Upstream,
}

/// Whether an app name can name the proxy's files.
fn is_app(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A route's nginx configuration.
///
/// # Errors
/// A name, host or address that could not stay inside its directive.
pub fn route_conf(r: &RouteFile) -> Result<String, String> {
    if !is_app(&r.app) {
        return Err(format!("`{}` cannot name a route", r.app));
    }
    if !crate::playbook::is_route_host(&r.host) {
        return Err(format!("`{}` is not a host name", r.host));
    }
    if r.upstream.service {
        return service_conf(r);
    }
    let ip: std::net::Ipv4Addr = r
        .upstream
        .ip
        .parse()
        .map_err(|_| format!("`{}` is not an IPv4 address", r.upstream.ip))?;
    let container: String = r
        .upstream
        .container
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    let (app, host, port) = (&r.app, &r.host, r.upstream.port);
    let proxy = "        proxy_pass http://boyong_".to_string() + app + ";\n";
    let mut out = format!(
        "# boyong route of `{app}`: {host} -> {container} ({ip}:{port})\nupstream boyong_{app} {{\n    server {ip}:{port} max_fails=0;\n    keepalive 16;\n}}\nserver {{\n    listen {HTTP_PORT};\n    server_name {host};\n    location / {{\n"
    );
    if r.tls && r.redirect_http {
        out.push_str("        return 308 https://$host$request_uri;\n");
    } else {
        out.push_str(&proxy);
    }
    out.push_str("    }\n}\n");
    if r.tls {
        let _ = write!(
            out,
            "server {{\n    listen {HTTPS_PORT} ssl;\n    server_name {host};\n    ssl_certificate {CONF_DIR}/{app}.crt;\n    ssl_certificate_key {CONF_DIR}/{app}.key;\n    location / {{\n{proxy}    }}\n}}\n"
        );
    }
    Ok(out)
}

/// A route to a Swarm service by name (see [`Upstream::service`]).
fn service_conf(r: &RouteFile) -> Result<String, String> {
    let svc = &r.upstream.container;
    let first = svc.bytes().next();
    if !(first.is_some_and(|b| b.is_ascii_alphanumeric())
        && svc.len() <= 63
        && svc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(format!("`{svc}` cannot name a service in a route"));
    }
    let (app, host, port) = (&r.app, &r.host, r.upstream.port);
    let proxy = format!(
        "        set $boyong_{a} \"{svc}\";\n        proxy_pass http://$boyong_{a}:{port};\n        proxy_next_upstream error timeout;\n        proxy_connect_timeout 2s;\n",
        a = app.replace('-', "_")
    );
    let resolver = "    resolver 127.0.0.11 valid=1s ipv6=off;\n    resolver_timeout 2s;\n";
    let mut out = format!(
        "# boyong route of `{app}`: {host} -> Swarm service {svc} (by name):{port}\nserver {{\n    listen {HTTP_PORT};\n    server_name {host};\n{resolver}    location / {{\n"
    );
    if r.tls && r.redirect_http {
        out.push_str("        return 308 https://$host$request_uri;\n");
    } else {
        out.push_str(&proxy);
    }
    out.push_str("    }\n}\n");
    if r.tls {
        let _ = write!(
            out,
            "server {{\n    listen {HTTPS_PORT} ssl;\n    server_name {host};\n{resolver}    ssl_certificate {CONF_DIR}/{app}.crt;\n    ssl_certificate_key {CONF_DIR}/{app}.key;\n    location / {{\n{proxy}    }}\n}}\n"
        );
    }
    Ok(out)
}

/// The server that answers the configuration's generation: written with every change, so
/// the proxy answering `n` means the workers of that configuration serve.
pub fn generation_conf(n: u64) -> String {
    format!(
        "server {{\n    listen {HTTP_PORT};\n    server_name {GENERATION_HOST};\n    location / {{\n        return 200 \"{n}\\n\";\n    }}\n}}\n"
    )
}

/// Where boyong reaches the proxy's HTTP listener, from the engine's host
/// ([`crate::docker::Docker::dial`]: through the SSH connection of an `ssh://` engine).
pub fn http_address(front: &Front) -> String {
    let (a, p) = &front.http;
    let a = if a == "0.0.0.0" { "127.0.0.1" } else { a };
    format!("{a}:{p}")
}

/// The route's file of `app`, relative to [`CONF_DIR`].
pub fn route_file(app: &str) -> String {
    format!("{app}.conf")
}

#[cfg(test)]
mod tests;
