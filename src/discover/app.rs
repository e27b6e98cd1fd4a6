//! The apps of a vendor host: the script's sections joined into typed [`App`] records.
//!
//! An app is a directory that something serves: a web server's document root (its
//! parent for Laravel's and CodeIgniter 4's `public/`), a service's working directory
//! (reached through a proxy to its port, or not), or a directory under the usual places
//! (`/var/www`, `/srv`, `/opt`) with an app's marker files. Its stack comes from its
//! marker files, its database from its config's lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::db::Database;
use super::host::{self, Listen, Pool, Process, Service};
use super::raw::Section;
use super::web::{self, Vhost};

/// A stack, as recipes know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// WordPress (`wp-config.php`, `wp-includes/version.php`).
    Wordpress,
    /// Laravel (`artisan`).
    Laravel,
    /// CodeIgniter 3 or 4 (`system/core/CodeIgniter.php`, `spark`).
    Codeigniter,
    /// PHP files, no framework found.
    PlainPhp,
    /// HTML, no PHP.
    Static,
    /// Node.js (`package.json`, a `node` service).
    Node,
    /// Python (`requirements.txt`, `manage.py`, `wsgi.py`).
    Python,
    /// Nothing recognised.
    Unknown,
}

impl Stack {
    /// The word in the inventory and the recipe's name.
    pub fn word(self) -> &'static str {
        match self {
            Self::Wordpress => "wordpress",
            Self::Laravel => "laravel",
            Self::Codeigniter => "codeigniter",
            Self::PlainPhp => "plain-php",
            Self::Static => "static",
            Self::Node => "node",
            Self::Python => "python",
            Self::Unknown => "unknown",
        }
    }
}

/// What an app directory holds, as the script saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirInfo {
    /// Regular files (the same file system only).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The newest change, seconds since 1970.
    pub newest: u64,
    /// Owner `user:group uid:gid`.
    pub owner: String,
    /// The marker files and directories present.
    pub has: Vec<String>,
    /// `*.php` and `*.htm*` files at the top.
    pub top_php: u64,
    /// `*.htm*` files at the top.
    pub top_html: u64,
    /// `missing`, `unreadable`, or empty.
    pub problem: String,
    /// Config lines by file (never a password line).
    pub conf: BTreeMap<String, String>,
}

impl DirInfo {
    fn has(&self, m: &str) -> bool {
        self.has.iter().any(|h| h == m)
    }
}

/// PHP as an app uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Php {
    /// `8.2`.
    pub version: String,
    /// The php-fpm pool (or `mod_php`).
    pub pool: String,
    /// The extensions its FPM loads.
    pub extensions: Vec<String>,
}

/// An app found on the vendor host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// A proposed app name (`[a-z0-9-]`), unique on the host.
    pub name: String,
    /// Its stack.
    pub stack: Stack,
    /// Its version when known (`WordPress 6.1.1`, `CodeIgniter 3.1.13`).
    pub version: Option<String>,
    /// The directory to fetch.
    pub root: String,
    /// Its document root, if served from another directory (`ROOT/public`).
    pub docroot: Option<String>,
    /// The web servers' sites that serve it.
    pub sites: Vec<Vhost>,
    /// Its names (from the sites).
    pub names: Vec<String>,
    /// PHP, if it uses it.
    pub php: Option<Php>,
    /// The service that runs it (Node, Python).
    pub service: Option<Service>,
    /// The local ports it listens on or is proxied to.
    pub ports: Vec<u16>,
    /// Its database.
    pub database: Option<Database>,
    /// Its URL on the vendor's side (from its config, else its first name).
    pub url: Option<String>,
    /// What its directory holds.
    pub dir: DirInfo,
    /// Crontab lines that name its directory (redacted).
    pub cron: Vec<String>,
    /// What the operator should know.
    pub notes: Vec<String>,
}

/// Everything the sections say, before apps are made of it.
#[derive(Debug, Default)]
pub struct Found {
    /// `host` facts: `hostname`, `user`, `os`, `php`, … (first word → rest).
    pub facts: BTreeMap<String, String>,
    /// Web sites.
    pub sites: Vec<Vhost>,
    /// php-fpm pools.
    pub pools: Vec<Pool>,
    /// FPM extensions per PHP version.
    pub extensions: BTreeMap<String, Vec<String>>,
    /// The CLI's modules.
    pub modules: Vec<String>,
    /// Services.
    pub services: Vec<Service>,
    /// Listening sockets.
    pub listening: Vec<Listen>,
    /// Processes.
    pub processes: Vec<Process>,
    /// Crontab lines, `FILE: LINE`.
    pub cron: Vec<String>,
    /// Directories inspected.
    pub dirs: BTreeMap<String, DirInfo>,
    /// Whether the script reached its end (else its output was cut).
    pub complete: bool,
}

/// The sections read into [`Found`].
pub fn read(sections: &[Section]) -> Found {
    let mut f = Found::default();
    let apache_php = sections
        .iter()
        .filter(|s| s.kind == "apache")
        .find_map(|s| web::apache_global_php(&s.body))
        .or_else(|| {
            sections
                .iter()
                .find(|s| s.kind == "apachemods")
                .and_then(|s| {
                    s.body
                        .lines()
                        .find(|l| l.starts_with("php") && l.to_ascii_lowercase().ends_with(".load"))
                })
                .map(|_| "mod_php".to_string())
        });
    let mut cwd = Vec::new();
    let mut current_dir: Option<String> = None;
    for s in sections {
        match s.kind.as_str() {
            "host" => {
                for l in s.body.lines() {
                    if let Some((k, v)) = l.split_once(' ') {
                        f.facts.insert(k.to_string(), v.trim().to_string());
                    }
                }
            }
            "apache" => f
                .sites
                .extend(web::apache(&s.arg, &s.body, apache_php.as_deref())),
            "nginx" => f.sites.extend(web::nginx(&s.arg, &s.body)),
            "fpm" => f.pools.extend(host::pools(&s.arg, &s.body)),
            "phpext" => {
                let v = s
                    .arg
                    .strip_prefix("/etc/php/")
                    .and_then(|r| r.split('/').next())
                    .unwrap_or("");
                let exts = s
                    .body
                    .lines()
                    .filter_map(|l| l.trim().strip_suffix(".ini"))
                    .map(|l| l.split_once('-').map_or(l, |(_, n)| n).to_string())
                    .collect();
                f.extensions.insert(v.to_string(), exts);
            }
            "phpmod" => {
                f.modules = s
                    .body
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.starts_with("[Zend"))
                    .filter(|l| !l.is_empty() && !l.starts_with('['))
                    .map(str::to_owned)
                    .collect();
            }
            "unit" => f.services.push(host::unit(&s.arg, &s.body)),
            "supervisor" => f.services.extend(host::supervisor(&s.body)),
            "cron" => f.cron.extend(
                host::cron(&s.body)
                    .into_iter()
                    .map(|l| format!("{}: {l}", s.arg)),
            ),
            "crontab" => f.cron.extend(
                host::cron(&s.body)
                    .into_iter()
                    .map(|l| format!("crontab -l: {l}")),
            ),
            "ports" => f.listening = host::ss(&s.body),
            "proctcp" if f.listening.is_empty() => f.listening = host::proc_tcp(&s.body),
            "cwd" => {
                for l in s.body.lines() {
                    if let Some((p, h)) = l.split_once(' ')
                        && let Ok(p) = p.parse::<u32>()
                    {
                        cwd.push((p, super::raw::unhex(h)));
                    }
                }
            }
            "ps" => f.processes = host::processes(&s.body, &[]),
            "dir" => {
                f.dirs.insert(s.arg.clone(), dir_info(&s.body));
                current_dir = Some(s.arg.clone());
            }
            "conf" => {
                if let Some(d) = current_dir.as_ref().and_then(|d| f.dirs.get_mut(d)) {
                    // a one-line connect call carries the vendor's password: masked
                    let body = host::mask_connect(&s.body);
                    d.conf.entry(s.arg.clone()).or_default().push_str(&body);
                }
            }
            "end" => f.complete = true,
            _ => {}
        }
    }
    for p in &mut f.processes {
        p.cwd = cwd
            .iter()
            .find(|(pid, _)| *pid == p.pid)
            .map(|(_, c)| c.clone());
    }
    f
}

fn dir_info(body: &str) -> DirInfo {
    let mut d = DirInfo::default();
    for l in body.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("size") => {
                let n: Vec<u64> = w.filter_map(|x| x.parse().ok()).collect();
                if let [files, bytes, newest] = n[..] {
                    (d.files, d.bytes, d.newest) = (files, bytes, newest);
                }
            }
            Some("owner") => d.owner = l["owner".len()..].trim().to_string(),
            Some("top") => {
                let n: Vec<u64> = w.filter_map(|x| x.parse().ok()).collect();
                if let [php, html] = n[..] {
                    (d.top_php, d.top_html) = (php, html);
                }
            }
            Some("has") => d.has.push(l[4..].to_string()),
            Some(p @ ("missing" | "unreadable")) => d.problem = p.to_string(),
            _ => {}
        }
    }
    d
}

/// The stack of a directory by its markers (and of the service that runs it).
pub fn stack_of(d: &DirInfo, service: Option<&Service>) -> Stack {
    if d.has("wp-config.php") || d.has("wp-includes/version.php") {
        Stack::Wordpress
    } else if d.has("artisan") {
        Stack::Laravel
    } else if d.has("system/core/CodeIgniter.php")
        || d.has("spark")
        || d.has("app/Config/Database.php")
    {
        Stack::Codeigniter
    } else if service.is_some_and(|s| s.exec.contains("node"))
        || (d.has("package.json") && d.top_php == 0)
    {
        Stack::Node
    } else if d.has("requirements.txt")
        || d.has("manage.py")
        || d.has("wsgi.py")
        || d.has("pyproject.toml")
    {
        Stack::Python
    } else if d.top_php > 0 || d.has("index.php") {
        Stack::PlainPhp
    } else if d.top_html > 0 || d.has("index.html") || d.has("index.htm") {
        Stack::Static
    } else {
        Stack::Unknown
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
