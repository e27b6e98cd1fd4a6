//! Web server configs read as data: Apache2 virtual hosts and nginx `server` blocks, with
//! their names, document roots, PHP handlers (php-fpm sockets or addresses) and proxies.
//!
//! Invariant: a parser never fails and never panics: a config it does not understand
//! yields what it could read (a vhost with fewer fields), never an error; nothing is
//! followed (an `Include` is read only if the script sent that file too).

use serde::{Deserialize, Serialize};

/// A site a web server serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vhost {
    /// `apache` or `nginx`.
    pub server: String,
    /// The config file and the line its block starts on.
    pub file: String,
    /// Line number (1-based).
    pub line: usize,
    /// What it listens on (`*:80`, `443 ssl`).
    pub listen: Vec<String>,
    /// Server names and aliases.
    pub names: Vec<String>,
    /// The document root.
    pub root: Option<String>,
    /// Where PHP goes: a php-fpm socket (`/run/php/php8.2-fpm.sock`), an address
    /// (`127.0.0.1:9000`), or `mod_php`.
    pub php: Option<String>,
    /// Proxied to: the URLs (`http://127.0.0.1:3000/`).
    pub proxy: Vec<String>,
    /// TLS on.
    pub tls: bool,
}

/// Words of one config line: quoted strings whole (quotes removed), `#` comments dropped.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                started = true;
            }
            None if c == '#' && !started => break,
            None if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            None => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out
}

/// The PHP handler in an Apache `SetHandler`/`ProxyPassMatch` target.
fn apache_php(target: &str) -> Option<String> {
    if let Some(rest) = target.strip_prefix("proxy:unix:") {
        return Some(rest.split('|').next().unwrap_or(rest).to_string());
    }
    let rest = target
        .strip_prefix("proxy:fcgi://")
        .or_else(|| target.strip_prefix("fcgi://"))?;
    Some(rest.split('/').next().unwrap_or(rest).to_string())
}

/// The virtual hosts of an Apache config `text` from `file`. `php` is the host-wide PHP
/// handler (from `conf-enabled`, or `mod_php`), given to a vhost that has none.
pub fn apache(file: &str, text: &str, php: Option<&str>) -> Vec<Vhost> {
    let mut out = Vec::new();
    let mut cur: Option<Vhost> = None;
    let mut joined = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if joined.is_empty() {
            start = i + 1;
        }
        if let Some(head) = raw.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            continue;
        }
        joined.push_str(raw);
        let line = std::mem::take(&mut joined);
        let w = words(line.trim());
        let Some(first) = w.first() else { continue };
        let key = first.to_ascii_lowercase();
        if key.starts_with("<virtualhost") {
            let mut listen: Vec<String> = w[1..]
                .iter()
                .map(|a| a.trim_end_matches('>').to_string())
                .collect();
            if first.len() > "<virtualhost".len() {
                listen.insert(
                    0,
                    first["<virtualhost".len()..]
                        .trim_end_matches('>')
                        .to_string(),
                );
            }
            listen.retain(|l| !l.is_empty());
            cur = Some(Vhost {
                server: "apache".into(),
                file: file.into(),
                line: start,
                listen,
                ..Vhost::default()
            });
            continue;
        }
        if key == "</virtualhost>" {
            if let Some(mut v) = cur.take() {
                if v.php.is_none() {
                    v.php = php.map(str::to_owned);
                }
                out.push(v);
            }
            continue;
        }
        let Some(v) = cur.as_mut() else { continue };
        let arg = |n: usize| w.get(n).cloned();
        match key.as_str() {
            "servername" => v.names.extend(arg(1).map(|n| strip_port(&n))),
            "serveralias" => v.names.extend(w[1..].iter().map(|n| strip_port(n))),
            "documentroot" => v.root = arg(1).map(|r| r.trim_end_matches('/').to_string()),
            "sslengine" => v.tls |= arg(1).is_some_and(|a| a.eq_ignore_ascii_case("on")),
            "sethandler" => {
                if let Some(p) = arg(1).as_deref().and_then(apache_php) {
                    v.php = Some(p);
                }
            }
            "proxypassmatch" | "proxypass" => {
                let target = w
                    .iter()
                    .skip(1)
                    .find(|a| a.contains("://") || a.starts_with("unix:"));
                if let Some(t) = target {
                    if let Some(p) =
                        apache_php(t).filter(|_| key == "proxypassmatch" || t.starts_with("fcgi"))
                    {
                        v.php = Some(p);
                    } else if t.starts_with("http") || t.starts_with("ws") {
                        v.proxy.push(t.clone());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The host-wide PHP handler of an Apache config (a `SetHandler` outside any vhost, as
/// Debian's `conf-enabled/php8.2-fpm.conf` has).
pub fn apache_global_php(text: &str) -> Option<String> {
    let mut depth_vhost = false;
    for line in text.lines() {
        let w = words(line.trim());
        let Some(first) = w.first() else { continue };
        let key = first.to_ascii_lowercase();
        if key.starts_with("<virtualhost") {
            depth_vhost = true;
        } else if key == "</virtualhost>" {
            depth_vhost = false;
        } else if key == "sethandler"
            && !depth_vhost
            && let Some(p) = w.get(1).and_then(|a| apache_php(a))
        {
            return Some(p);
        }
    }
    None
}

fn strip_port(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => name.to_string(),
    }
}

/// An nginx token: a word, `{`, `}` or `;`, with the line it starts on.
fn nginx_tokens(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    if !started {
                        start = line;
                    }
                    started = true;
                }
                '#' if !started => {
                    for n in chars.by_ref() {
                        if n == '\n' {
                            line += 1;
                            break;
                        }
                    }
                }
                '{' | '}' | ';' => {
                    if started {
                        out.push((std::mem::take(&mut cur), start));
                        started = false;
                    }
                    out.push((c.to_string(), line));
                }
                c if c.is_whitespace() => {
                    if started {
                        out.push((std::mem::take(&mut cur), start));
                        started = false;
                    }
                }
                c => {
                    if !started {
                        start = line;
                    }
                    cur.push(c);
                    started = true;
                }
            },
        }
    }
    if started {
        out.push((cur, start));
    }
    out
}

/// The `server` blocks of an nginx config `text` from `file`.
pub fn nginx(file: &str, text: &str) -> Vec<Vhost> {
    let tokens = nginx_tokens(text);
    let mut out = Vec::new();
    // the open blocks: (name, index in `out` of the server it is in)
    let mut stack: Vec<(String, Option<usize>)> = Vec::new();
    let mut stmt: Vec<(String, usize)> = Vec::new();
    for (tok, line) in tokens {
        match tok.as_str() {
            "{" => {
                let name = stmt.first().map(|s| s.0.clone()).unwrap_or_default();
                let mut server = stack.last().and_then(|s| s.1);
                if name == "server" && stack.last().is_none_or(|s| s.0 == "http") {
                    out.push(Vhost {
                        server: "nginx".into(),
                        file: file.into(),
                        line: stmt.first().map_or(line, |s| s.1),
                        ..Vhost::default()
                    });
                    server = Some(out.len() - 1);
                }
                let location_root = name == "location" && stmt.get(1).is_some_and(|s| s.0 == "/");
                stack.push((
                    if location_root {
                        "location /".into()
                    } else {
                        name
                    },
                    server,
                ));
                stmt.clear();
            }
            "}" => {
                stack.pop();
                stmt.clear();
            }
            ";" => {
                if let Some(&(ref block, Some(i))) = stack.last() {
                    nginx_directive(&mut out[i], block, &stmt);
                }
                stmt.clear();
            }
            _ => stmt.push((tok, line)),
        }
    }
    out
}

fn nginx_directive(v: &mut Vhost, block: &str, stmt: &[(String, usize)]) {
    let Some((key, _)) = stmt.first() else { return };
    let args: Vec<&str> = stmt[1..].iter().map(|s| s.0.as_str()).collect();
    match key.as_str() {
        "listen" if block == "server" => {
            v.tls |= args.contains(&"ssl");
            v.listen.push(args.join(" "));
        }
        "server_name" if block == "server" => {
            v.names.extend(
                args.iter()
                    .filter(|n| **n != "_" && !n.is_empty())
                    .map(|n| (*n).to_string()),
            );
        }
        "root" if block == "server" || (block == "location /" && v.root.is_none()) => {
            v.root = args.first().map(|r| r.trim_end_matches('/').to_string());
        }
        "ssl_certificate" => v.tls = true,
        "fastcgi_pass" => {
            if let Some(a) = args.first() {
                v.php = Some(a.strip_prefix("unix:").unwrap_or(a).to_string());
            }
        }
        "proxy_pass" => {
            if let Some(a) = args.first() {
                v.proxy.push((*a).to_string());
            }
        }
        _ => {}
    }
}

/// The local port of a proxy URL on this host (`http://127.0.0.1:3000/` → 3000), if it
/// goes to a loopback address or `localhost`.
pub fn local_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local =
        matches!(host, "127.0.0.1" | "localhost" | "::1" | "0.0.0.0") || host.starts_with("127.");
    if !local {
        return None;
    }
    port.parse().ok()
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
