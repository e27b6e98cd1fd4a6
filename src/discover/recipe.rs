//! Draft playbooks from recipes: one template per stack (`recipes/STACK.yml`, shipped in
//! the binary), filled with what discovery found of an app.
//!
//! Templates: `<<name>>` is a value; a line `#if FLAG` … `#endif` keeps what is between
//! only when FLAG holds (`db`, `port_line`); `#include _head.yml` puts the common head.
//! Invariant: every value that came from the vendor host is written as one YAML
//! double-quoted scalar (JSON's escaping, which YAML reads the same), and in a comment
//! with its control characters escaped: a hostile path cannot add a key or a line.
//!
//! A draft starts with `# boyong-draft sha256:HEX`, the digest of the rest of the file:
//! [`write`] overwrites a draft whose digest still holds (nobody edited it) and otherwise
//! writes `NAME.yml.new` beside it and returns the diff.

use std::path::{Path, PathBuf};

use super::HostReport;
use super::app::{App, Stack};

const HEAD: &str = include_str!("../../recipes/_head.yml");

/// The recipe of a stack: its name and template, or `None` for a stack without one.
pub fn recipe(stack: Stack) -> Option<(&'static str, &'static str)> {
    Some(match stack {
        Stack::Wordpress => ("wordpress", include_str!("../../recipes/wordpress.yml")),
        Stack::Laravel => ("laravel", include_str!("../../recipes/laravel.yml")),
        Stack::Codeigniter => ("codeigniter", include_str!("../../recipes/codeigniter.yml")),
        Stack::PlainPhp => ("plain-php", include_str!("../../recipes/plain-php.yml")),
        Stack::Static => ("static", include_str!("../../recipes/static.yml")),
        Stack::Node => ("node", include_str!("../../recipes/node.yml")),
        Stack::Python => ("python", include_str!("../../recipes/python.yml")),
        Stack::Unknown => return None,
    })
}

/// How the drafts log in to the vendor host (as discovery did).
#[derive(Debug, Clone)]
pub struct Login {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Identity file, as the playbook will name it.
    pub identity: String,
    /// known_hosts file, as the playbook will name it.
    pub known_hosts: String,
}

/// A YAML double-quoted scalar of `s`.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `s` fit for a comment: control characters escaped.
fn c(s: &str) -> String {
    crate::escape::controls(s).into_owned()
}

/// A secret's environment variable name for `app`: `APP_SUFFIX`.
pub fn secret_name(app: &str, suffix: &str) -> String {
    format!("{}_{suffix}", app.to_ascii_uppercase().replace('-', "_"))
}

/// The directories left out of the pull: caches, logs, sessions, VCS, that exist there.
fn excludes(app: &App) -> Vec<String> {
    const LEAVE: [&str; 17] = [
        ".git",
        "wp-content/cache",
        "wp-content/upgrade",
        "storage/logs",
        "storage/framework/sessions",
        "storage/framework/cache",
        "storage/framework/views",
        "application/cache",
        "application/logs",
        "writable/cache",
        "writable/logs",
        "writable/session",
        "writable/debugbar",
        "logs",
        "log",
        "tmp",
        "cache",
    ];
    let mut out: Vec<String> = LEAVE
        .iter()
        .filter(|l| app.dir.has.iter().any(|h| h == *l))
        .map(|l| format!("{l}/"))
        .collect();
    if app.stack == Stack::Node && app.dir.has.iter().any(|h| h == "node_modules") {
        out.push("node_modules/.cache/".into());
    }
    out
}

fn flow(list: &[String]) -> String {
    format!(
        "[{}]",
        list.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// The draft of `app`, published on the target at 127.0.0.1:`new_port`, or `None` when
/// its stack has no recipe.
pub fn draft(app: &App, report: &HostReport, login: &Login, new_port: u16) -> Option<String> {
    let (stack, template) = recipe(app.stack)?;
    let db = app.database.as_ref();
    let mut values: Vec<(&str, String)> = vec![
        ("stack", stack.to_string()),
        ("app", app.name.clone()),
        ("summary", c(&summary(app, report))),
        (
            "description",
            q(&format!(
                "{} at {} on {} (found by boyong discover)",
                app.version.clone().unwrap_or_else(|| stack.to_string()),
                app.root,
                report.host
            )),
        ),
        ("host", q(&login.host)),
        ("port", login.port.to_string()),
        ("user", q(&login.user)),
        ("identity", q(&login.identity)),
        ("known_hosts", q(&login.known_hosts)),
        ("root", q(&app.root)),
        ("excludes", flow(&excludes(app))),
        ("new_port", new_port.to_string()),
        ("new_url", q(&format!("http://127.0.0.1:{new_port}"))),
        (
            "url",
            q(app.url.as_deref().unwrap_or("http://vendor.invalid")),
        ),
        ("secret", secret_name(&app.name, "DB_PASSWORD")),
        (
            "vendor_secret",
            secret_name(&app.name, "VENDOR_DB_PASSWORD"),
        ),
        (
            "php_note",
            c(&app.php.as_ref().map_or_else(
                || "TODO: the PHP version: not found".into(),
                |p| {
                    if p.version == "8.2" {
                        format!("the vendor runs PHP {} (pool {})", p.version, p.pool)
                    } else {
                        format!(
                            "TODO: the vendor runs PHP {}: a base image of that version?",
                            p.version
                        )
                    }
                },
            )),
        ),
        (
            "docroot_rel",
            app.docroot
                .as_ref()
                .and_then(|d| d.strip_prefix(&app.root))
                .unwrap_or("")
                .to_string(),
        ),
        (
            "tmpfs",
            flow(
                &[
                    "/tmp",
                    "/var/www/html/storage/logs",
                    "/var/www/html/storage/framework/views",
                    "/var/www/html/storage/framework/cache",
                    "/var/www/html/storage/framework/sessions",
                    "/var/www/html/bootstrap/cache",
                ]
                .map(str::to_owned),
            ),
        ),
        (
            "node_note",
            c(report
                .facts
                .get("node")
                .map_or("the vendor's version unknown", String::as_str)),
        ),
        (
            "service_note",
            c(&app.service.as_ref().map_or_else(
                || "TODO: no service found: the command that starts it".into(),
                |s| format!("{} {}: {}", s.kind, s.name, s.exec),
            )),
        ),
        ("node_cmd", flow(&node_cmd(app))),
        ("python_cmd", flow(&python_cmd(app))),
        ("python_excludes", flow(&python_excludes(app))),
        (
            "node_major",
            report
                .facts
                .get("node")
                .and_then(|v| v.trim_start_matches('v').split('.').next())
                .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or("20")
                .to_string(),
        ),
        (
            "app_port",
            app.service
                .as_ref()
                .and_then(|s| s.port)
                .or_else(|| app.ports.first().copied())
                .unwrap_or(3000)
                .to_string(),
        ),
    ];
    let mut flags: Vec<&str> = Vec::new();
    if let Some(d) = db {
        flags.push("db");
        values.extend([
            ("db_engine", d.engine.clone()),
            ("db_name", q(&d.database)),
            ("db_user", q(&d.user)),
            ("db_host", q(&d.host)),
            ("db_port", d.port.to_string()),
            (
                "db_image",
                if d.engine == "postgres" {
                    "gov/postgres:15"
                } else {
                    "gov/mariadb:10.11"
                }
                .to_string(),
            ),
            (
                "db_file",
                q(d.from
                    .strip_prefix(&format!("{}/", app.root))
                    .unwrap_or(&d.from))
                .trim_matches('"')
                .to_string(),
            ),
        ]);
        let new_host = format!("{}-db", app.name);
        let line = d.host_line.clone().unwrap_or_default();
        let replaced = if line.contains(&format!("{}:{}", d.host, d.port)) {
            line.replace(&format!("{}:{}", d.host, d.port), &new_host)
        } else {
            line.replacen(&d.host, &new_host, 1)
        };
        values.push(("host_line", q(&line)));
        values.push(("host_line_new", q(&replaced)));
        // the app's own address in the same config file (Laravel's APP_URL, CodeIgniter's
        // base_url): the new address, as `restore.rewrite` does in the database
        let url_line = app.url.as_ref().and_then(|url| {
            app.dir.conf.get(&d.from)?.lines().find(|l| {
                l.contains(url.as_str())
                    && ["APP_URL", "base_url", "app.baseURL"]
                        .iter()
                        .any(|k| l.contains(k))
            })
        });
        if let Some(l) = url_line {
            flags.push("url_line");
            values.push(("url_line", q(l)));
            let url = app.url.clone().unwrap_or_default();
            values.push((
                "url_line_new",
                q(&l.replacen(&url, &format!("http://127.0.0.1:{new_port}"), 1)),
            ));
        }
        let default_port = if d.engine == "postgres" { 5432 } else { 3306 };
        if let Some(pl) = d.port_line.as_ref().filter(|_| d.port != default_port) {
            flags.push("port_line");
            values.push(("port_line", q(pl)));
            values.push((
                "port_line_new",
                q(&pl.replacen(&d.port.to_string(), &default_port.to_string(), 1)),
            ));
        }
    }
    Some(render(template, &values, &flags))
}

fn node_cmd(app: &App) -> Vec<String> {
    let exec = app.service.as_ref().map_or("", |s| s.exec.as_str());
    let words: Vec<&str> = exec.split_whitespace().collect();
    match words.first() {
        Some(first) if first.ends_with("node") || first.ends_with("nodejs") => {
            let mut v = vec!["node".to_string()];
            v.extend(words[1..].iter().map(|w| {
                let root = format!("{}/", app.root);
                w.strip_prefix(&root).unwrap_or(w).to_string()
            }));
            v
        }
        _ => vec![
            "node".into(),
            ["server.js", "app.js", "index.js"]
                .iter()
                .find(|f| app.dir.has.iter().any(|h| h == *f))
                .map_or("server.js", |f| f)
                .into(),
        ],
    }
}

/// The command that starts a Python app in the image: the service's (its program by name,
/// the app's paths made relative to `/app`, bound on every interface), or `python3` of
/// the first of `app.py`, `main.py`, `manage.py runserver`.
fn python_cmd(app: &App) -> Vec<String> {
    let exec = app.service.as_ref().map_or("", |s| s.exec.as_str());
    let root = format!("{}/", app.root);
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.strip_prefix(&root).unwrap_or(w).to_string())
        .map(|w| {
            w.replace("127.0.0.1:", "0.0.0.0:")
                .replace("localhost:", "0.0.0.0:")
        })
        .collect();
    let program = words
        .first()
        .map(|f| f.rsplit('/').next().unwrap_or(f).to_string());
    match program.as_deref() {
        Some(p @ ("gunicorn" | "uvicorn" | "uwsgi" | "waitress-serve")) => {
            let mut v = vec![p.to_string()];
            v.extend(words[1..].iter().cloned());
            v
        }
        Some(p) if p.starts_with("python") => {
            let mut v = vec!["python3".to_string()];
            v.extend(words[1..].iter().cloned());
            v
        }
        _ if app.dir.has.iter().any(|h| h == "manage.py") => vec![
            "python3".into(),
            "manage.py".into(),
            "runserver".into(),
            "0.0.0.0:8000".into(),
        ],
        _ => vec![
            "python3".into(),
            ["app.py", "main.py", "wsgi.py"]
                .iter()
                .find(|f| app.dir.has.iter().any(|h| h == *f))
                .map_or("app.py", |f| f)
                .into(),
        ],
    }
}

/// A Python app's pull leaves out, besides caches and logs, its virtualenv and bytecode.
fn python_excludes(app: &App) -> Vec<String> {
    let mut out = excludes(app);
    for d in ["venv", ".venv", "env", "__pycache__"] {
        if app.dir.has.iter().any(|h| h == d) {
            out.push(format!("{d}/"));
        }
    }
    out
}

fn summary(app: &App, report: &HostReport) -> String {
    let served = if app.sites.is_empty() {
        app.service.as_ref().map_or_else(
            || "not served by any site found".to_string(),
            |s| format!("run by {} {}", s.kind, s.name),
        )
    } else {
        let s = &app.sites[0];
        format!(
            "served by {} as {} ({}:{})",
            s.server,
            if app.names.is_empty() {
                "the default site".into()
            } else {
                app.names.join(", ")
            },
            s.file,
            s.line
        )
    };
    format!(
        "{} at {} on {}, {}; {} files, {} bytes",
        app.stack.word(),
        app.root,
        report.host,
        served,
        app.dir.files,
        app.dir.bytes
    )
}

/// `template` with its values and flags applied.
fn render(template: &str, values: &[(&str, String)], flags: &[&str]) -> String {
    let mut out = String::new();
    let mut keep: Vec<bool> = Vec::new();
    let text = template.replace("#include _head.yml\n", HEAD);
    for line in text.lines() {
        if let Some(flag) = line.strip_prefix("#if ") {
            keep.push(flags.contains(&flag.trim()));
            continue;
        }
        if line.trim() == "#endif" {
            keep.pop();
            continue;
        }
        if keep.iter().all(|k| *k) {
            let mut l = line.to_string();
            for (k, v) in values {
                l = l.replace(&format!("<<{k}>>"), v);
            }
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// The first line of a draft: the digest of the rest.
fn header(body: &str) -> String {
    format!(
        "# boyong-draft sha256:{}\n",
        crate::digest::sha256_hex(body.as_bytes())
    )
}

/// What [`write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A new file.
    Created(PathBuf),
    /// The same as before: nothing written.
    Unchanged(PathBuf),
    /// A draft nobody had edited, replaced.
    Updated(PathBuf),
    /// An edited playbook kept; the draft written beside it, with the diff.
    Kept {
        /// The edited file.
        path: PathBuf,
        /// The new draft.
        new: PathBuf,
        /// The diff from the edited file to the new draft.
        diff: String,
    },
}

/// Writes `body` as the draft at `path`, never over an edited file.
///
/// # Errors
/// The file cannot be read or written.
pub fn write(path: &Path, body: &str) -> std::io::Result<Written> {
    let text = format!("{}{body}", header(body));
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(path, &text)?;
            Ok(Written::Created(path.to_path_buf()))
        }
        Err(e) => Err(e),
        Ok(old) if old == text => Ok(Written::Unchanged(path.to_path_buf())),
        Ok(old) => {
            let (first, rest) = old
                .split_once('\n')
                .map_or((old.as_str(), ""), |(a, b)| (a, b));
            if format!("{first}\n") == header(rest) {
                std::fs::write(path, &text)?;
                return Ok(Written::Updated(path.to_path_buf()));
            }
            let mut new = path.as_os_str().to_owned();
            new.push(".new");
            let new = PathBuf::from(new);
            std::fs::write(&new, &text)?;
            let diff = crate::assess::compare::unified(
                &old,
                &text,
                &path.display().to_string(),
                &new.display().to_string(),
            );
            Ok(Written::Kept {
                path: path.to_path_buf(),
                new,
                diff,
            })
        }
    }
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;
