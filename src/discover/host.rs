//! What else the vendor host runs, read from the script's sections: php-fpm pools,
//! systemd units, supervisor programs, listening ports, processes and their working
//! directories, scheduled jobs.
//!
//! Invariant: a command line or a crontab line may hold a password (`mysqldump -pSECRET`,
//! `PASSWORD=…`); [`redact`] masks such values before anything is kept or shown.

use serde::{Deserialize, Serialize};

/// A php-fpm pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Its name (`www`).
    pub name: String,
    /// The PHP version of its FPM (`8.2`), from its path.
    pub version: String,
    /// Where it listens (a socket path or an address).
    pub listen: String,
    /// The user it runs as.
    pub user: String,
}

/// The pools in a pool file at `path` (`/etc/php/8.2/fpm/pool.d/www.conf`).
pub fn pools(path: &str, text: &str) -> Vec<Pool> {
    let version = path
        .strip_prefix("/etc/php/")
        .and_then(|r| r.split('/').next())
        .unwrap_or("")
        .to_string();
    let mut out: Vec<Pool> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(Pool {
                name: name.to_string(),
                version: version.clone(),
                ..Pool::default()
            });
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let Some(p) = out.last_mut() else { continue };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "listen" => p.listen = v,
            "user" => p.user = v,
            _ => {}
        }
    }
    out
}

/// A long-running service: a systemd unit or a supervisor program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `systemd`, `supervisor` or `process`.
    pub kind: String,
    /// The unit (`sipkd.service`) or program name, or the process id.
    pub name: String,
    /// What it runs (redacted).
    pub exec: String,
    /// Its working directory.
    pub workdir: Option<String>,
    /// The user it runs as.
    pub user: Option<String>,
    /// The port its environment names (`PORT=3000`), or where it was seen listening.
    pub port: Option<u16>,
    /// Its description.
    pub description: Option<String>,
}

/// A systemd unit file's service.
pub fn unit(path: &str, text: &str) -> Service {
    let mut s = Service {
        kind: "systemd".into(),
        name: path.rsplit('/').next().unwrap_or(path).to_string(),
        ..Service::default()
    };
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Description" => s.description = Some(v.to_string()),
            "ExecStart" => s.exec = redact(v.trim_start_matches(['-', '@', '+', '!', ':'])),
            "WorkingDirectory" => s.workdir = Some(v.trim_start_matches('-').to_string()),
            "User" => s.user = Some(v.to_string()),
            "Environment" => {
                if let Some(p) = v.strip_prefix("PORT=") {
                    s.port = p.parse().ok();
                }
            }
            _ => {}
        }
    }
    s
}

/// The programs of a supervisor config.
pub fn supervisor(text: &str) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("[program:")
            .and_then(|l| l.strip_suffix(']'))
        {
            out.push(Service {
                kind: "supervisor".into(),
                name: name.to_string(),
                ..Service::default()
            });
            continue;
        }
        let (Some((k, v)), Some(s)) = (line.split_once('='), out.last_mut()) else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "command" => s.exec = redact(v),
            "directory" => s.workdir = Some(v.to_string()),
            "user" => s.user = Some(v.to_string()),
            _ => {}
        }
    }
    out
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    /// The address (`0.0.0.0`, `127.0.0.1`, `[::]`, `*`).
    pub addr: String,
    /// The port.
    pub port: u16,
    /// The process (`nginx`, `node`), when this login may see it.
    pub process: Option<String>,
    /// Its pid.
    pub pid: Option<u32>,
}

/// `ss -Hltnp` (or `ss -ltn`) output.
pub fn ss(text: &str) -> Vec<Listen> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() != Some(&"LISTEN") || cols.len() < 4 {
            continue;
        }
        let Some((addr, port)) = cols[3].rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse() else { continue };
        let users = cols.iter().find(|c| c.starts_with("users:"));
        let process = users.and_then(|u| u.split('"').nth(1)).map(str::to_owned);
        let pid = users
            .and_then(|u| u.split("pid=").nth(1))
            .and_then(|p| p.split([',', ')']).next())
            .and_then(|p| p.parse().ok());
        let l = Listen {
            addr: addr.split('%').next().unwrap_or(addr).to_string(),
            port,
            process,
            pid,
        };
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// `/proc/net/tcp{,6}` local addresses of listening sockets (`0100007F:0BB8`), when `ss`
/// is missing.
pub fn proc_tcp(text: &str) -> Vec<Listen> {
    let mut out: Vec<Listen> = Vec::new();
    for w in text.split_whitespace() {
        let Some((a, p)) = w.split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(p, 16) else {
            continue;
        };
        let addr = if a.len() == 8 {
            u32::from_str_radix(a, 16).map_or_else(
                |_| a.to_string(),
                |n| std::net::Ipv4Addr::from(n.swap_bytes()).to_string(),
            )
        } else {
            "[::]".to_string()
        };
        if !out.iter().any(|l| l.port == port && l.addr == addr) {
            out.push(Listen {
                addr,
                port,
                process: None,
                pid: None,
            });
        }
    }
    out
}

/// A process: pid, user, command line (redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its user.
    pub user: String,
    /// Its command line, redacted.
    pub args: String,
    /// Its working directory, when this login may see it.
    pub cwd: Option<String>,
}

/// `ps -eo pid=,user=,args=` output, with the working directories of `cwd` (`PID HEX`).
pub fn processes(ps: &str, cwd: &[(u32, String)]) -> Vec<Process> {
    ps.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let pid = w.next()?.parse().ok()?;
            let user = w.next()?.to_string();
            let args = redact(&w.collect::<Vec<_>>().join(" "));
            let cwd = cwd.iter().find(|(p, _)| *p == pid).map(|(_, c)| c.clone());
            Some(Process {
                pid,
                user,
                args,
                cwd,
            })
        })
        .collect()
}

/// Crontab lines, one per job, redacted (comments and empty lines dropped).
pub fn cron(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(redact)
        .collect()
}

/// The calls that take a database password as a positional argument, each with the
/// argument's place (1-based): `mysqli_connect("host", "user", "PASSWORD", "db")`.
const CONNECT_CALLS: [(&str, usize); 5] = [
    ("mysqli_connect(", 3),
    ("mysql_connect(", 3),
    ("new mysqli(", 3),
    ("mysqli_real_connect(", 4),
    ("new pdo(", 3),
];

/// `text` (a config file's lines) with the password argument of each database connect
/// call masked as `***` (`mysqli_connect("localhost", "root", ***, "db")`), and a
/// `password=` inside a connection string (`pg_connect("host=… password=…")`): a
/// vendor's config that connects in one line carries its password in it.
pub fn mask_connect(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let lower = line.to_ascii_lowercase();
            let mut out = line.to_string();
            for (call, place) in CONNECT_CALLS {
                if let Some(at) = lower.find(call) {
                    out = mask_argument(&out, at + call.len(), place);
                    break;
                }
            }
            // every `password=` (`PGPASSWORD=x`, `--password="p w"`, a connection string's)
            let mut from = 0;
            while let Some(at) = out[from..].to_ascii_lowercase().find("password=") {
                let start = from + at + "password=".len();
                // a quoted value (`password='a b'`, `\"pw\"`) up to its closing quote
                let rest = out[start..].trim_start_matches('\\');
                let lead = out.len() - start - rest.len();
                let end = match rest.chars().next() {
                    Some(q @ ('\'' | '"')) => rest[1..]
                        .find(q)
                        .map_or(out.len(), |e| start + lead + 1 + e + 1),
                    _ => out[start..]
                        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ';')
                        .map_or(out.len(), |e| start + e),
                };
                out.replace_range(start..end, "***");
                from = start + 3;
            }
            out
        })
        .collect()
}

/// `line` with its call's argument number `place` (the arguments start at byte `from`)
/// replaced by `***`; quotes and parentheses are followed so that a comma inside a string
/// does not count.
fn mask_argument(line: &str, from: usize, place: usize) -> String {
    let (mut n, mut start, mut depth, mut quote) = (1, from, 0usize, None::<char>);
    let mut escaped = false;
    for (i, c) in line[from..].char_indices() {
        let i = from + i;
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ',' | ')' if depth == 0 => {
                if n == place {
                    let lead = line[start..i].len() - line[start..i].trim_start().len();
                    return format!(
                        "{}{}***{}",
                        &line[..start],
                        &line[start..start + lead],
                        &line[i..]
                    );
                }
                if c == ')' {
                    break;
                }
                n += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    line.to_string()
}

/// `line` with every value that looks like a password masked as `***`: `-pSECRET`,
/// `--password=…`, `PASSWORD=…` and the like (`*PASS*=`, `*SECRET*=`, `*TOKEN*=`,
/// `*KEY*=`), and the password of a URL (`scheme://user:…@`).
pub fn redact(line: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut words = line.split(' ').peekable();
    while let Some(w) = words.next() {
        let lower = w.to_ascii_lowercase();
        if w.len() > 2 && w.starts_with("-p") && !w.starts_with("--") {
            out.push("-p***".into());
        } else if lower == "-p" || lower == "--password" {
            out.push(w.to_string());
            if words.peek().is_some() {
                words.next();
                out.push("***".into());
            }
        } else if let Some((k, _)) = w.split_once('=').filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            ["pass", "pwd", "secret", "token", "key"]
                .iter()
                .any(|s| k.contains(s))
        }) {
            out.push(format!("{k}=***"));
        } else {
            out.push(url_password(w));
        }
    }
    out.join(" ")
}

fn url_password(w: &str) -> String {
    let Some((scheme, rest)) = w.split_once("://") else {
        return w.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return w.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => w.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connect_calls_password_argument_is_masked() {
        use super::mask_connect;
        assert_eq!(
            mask_connect(
                "$koneksi = mysqli_connect(\"localhost\", \"root\", \"rah,a(s)ia\", \"db\");\n"
            ),
            "$koneksi = mysqli_connect(\"localhost\", \"root\", ***, \"db\");\n"
        );
        assert_eq!(
            mask_connect("$db = new PDO('mysql:host=h;dbname=d', 'u', 'pw');"),
            "$db = new PDO('mysql:host=h;dbname=d', 'u', ***);"
        );
        assert_eq!(
            mask_connect("mysqli_real_connect($l, 'h', 'u', 'pw', 'd');"),
            "mysqli_real_connect($l, 'h', 'u', ***, 'd');"
        );
        assert_eq!(
            mask_connect("$c = pg_connect(\"host=h dbname=d password=pw user=u\");"),
            "$c = pg_connect(\"host=h dbname=d password=*** user=u\");"
        );
        assert_eq!(
            mask_connect("$c = pg_connect(\"host=h password='a b' user=u\");"),
            "$c = pg_connect(\"host=h password=*** user=u\");"
        );
        assert_eq!(
            mask_connect("\"db\": \"PGPASSWORD=x psql --password=\\\"p w\\\" -c 1\""),
            "\"db\": \"PGPASSWORD=*** psql --password=*** -c 1\""
        );
        let plain = "$host = \"localhost\";\n$db_name = 'sipkd';\n";
        assert_eq!(mask_connect(plain), plain);
    }

    use super::*;

    #[test]
    fn debian_fpm_pool() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/discover/debian/fpm-www.conf"),
        )
        .expect("captured");
        let p = pools("/etc/php/8.2/fpm/pool.d/www.conf", &text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].name, "www");
        assert_eq!(p[0].version, "8.2");
        assert_eq!(p[0].listen, "/run/php/php8.2-fpm.sock");
        assert_eq!(p[0].user, "www-data");
    }

    #[test]
    fn units_ports_and_processes() {
        let u = unit(
            "/etc/systemd/system/sipkd.service",
            "[Service]\nExecStart=/usr/bin/node server.js --db-password=hunter22\nWorkingDirectory=-/opt/sipkd\nUser=sipkd\nEnvironment=PORT=3000\n",
        );
        assert_eq!(u.name, "sipkd.service");
        assert_eq!(u.workdir.as_deref(), Some("/opt/sipkd"));
        assert_eq!(u.port, Some(3000));
        assert!(!u.exec.contains("hunter22"), "{}", u.exec);
        let l = ss(
            "LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=10,fd=6),(\"nginx\",pid=11,fd=6))\nLISTEN 0 80 127.0.0.1:3307 0.0.0.0:*\nLISTEN 0 511 [::]:80 [::]:*\n",
        );
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].process.as_deref(), Some("nginx"));
        assert_eq!(l[0].pid, Some(10));
        assert_eq!(l[1].port, 3307);
        let p = proc_tcp("0100007F:0BB8\n00000000000000000000000000000000:0050\n");
        assert_eq!(p[0].addr, "127.0.0.1");
        assert_eq!(p[0].port, 3000);
        assert_eq!(p[1].port, 80);
    }

    #[test]
    fn secrets_in_command_lines_and_crontabs_are_masked() {
        for (line, secret) in [
            (
                "0 2 * * * mysqldump -uroot -phunter22 db > /backup.sql",
                "hunter22",
            ),
            ("mysql --password hunter22 -e x", "hunter22"),
            ("DB_PASSWORD=hunter22 php artisan schedule:run", "hunter22"),
            ("curl https://u:hunter22@example.go.id/x", "hunter22"),
            ("API_TOKEN=hunter22 node x", "hunter22"),
        ] {
            let r = redact(line);
            assert!(!r.contains(secret), "{r}");
            assert!(r.contains("***"), "{r}");
        }
        assert_eq!(
            redact("php /srv/www/app/artisan schedule:run"),
            "php /srv/www/app/artisan schedule:run"
        );
    }
}
