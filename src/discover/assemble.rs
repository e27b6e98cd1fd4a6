//! [`Found`] joined into [`App`]s: sites by their directory, proxies to the services
//! behind them, services and directories that no site serves.

use std::collections::BTreeMap;

use super::app::{App, DirInfo, Found, Php, Stack, stack_of};
use super::db;
use super::host::Service;
use super::web::{Vhost, local_port};

/// Where the usual app directories are.
const USUAL: [&str; 4] = ["/var/www/", "/srv/", "/opt/", "/home/"];

/// What makes an app of a directory: the sites on it, the service that runs it, its
/// document root when not the directory.
type Parts = (Vec<Vhost>, Option<Service>, Option<String>);

/// The apps in `f`, sorted by name, names unique; and the sites that proxy to a local
/// port whose service was not found.
pub fn apps(f: &Found) -> (Vec<App>, Vec<Vhost>) {
    let mut by_root: BTreeMap<String, Parts> = BTreeMap::new();
    let mut orphans: Vec<Vhost> = Vec::new();
    for site in &f.sites {
        if let Some(root) = &site.root {
            let (app_root, docroot) = app_root_of(f, root);
            let e = by_root.entry(app_root).or_default();
            e.0.push(site.clone());
            e.2 = docroot;
        } else if let Some(port) = site.proxy.iter().find_map(|p| local_port(p)) {
            match service_on(f, port) {
                Some(s) if s.workdir.is_some() => {
                    let e = by_root
                        .entry(s.workdir.clone().unwrap_or_default())
                        .or_default();
                    e.0.push(site.clone());
                    e.1 = Some(s);
                }
                _ => orphans.push(site.clone()),
            }
        }
    }
    for s in &f.services {
        let Some(w) = &s.workdir else { continue };
        let known_dir = f.dirs.get(w).is_some_and(|d| d.problem.is_empty());
        if known_dir && is_app_service(s) {
            let e = by_root.entry(w.clone()).or_default();
            if e.1.is_none() {
                e.1 = Some(s.clone());
            }
        }
    }
    for p in &f.processes {
        let (Some(cwd), true) = (&p.cwd, is_app_process(&p.args)) else {
            continue;
        };
        if f.dirs.contains_key(cwd) && !by_root.contains_key(cwd) && cwd != "/" {
            by_root.insert(
                cwd.clone(),
                (
                    Vec::new(),
                    Some(Service {
                        kind: "process".into(),
                        name: p.pid.to_string(),
                        exec: p.args.clone(),
                        workdir: Some(cwd.clone()),
                        user: Some(p.user.clone()),
                        port: f
                            .listening
                            .iter()
                            .find(|l| l.pid == Some(p.pid))
                            .map(|l| l.port),
                        description: None,
                    }),
                    None,
                ),
            );
        }
    }
    for (path, d) in &f.dirs {
        let usual = USUAL
            .iter()
            .any(|u| path.starts_with(u) && path[u.len()..].split('/').count() <= 2);
        let inside_known = by_root
            .keys()
            .any(|r| path.starts_with(&format!("{r}/")) || r == path);
        if usual && !inside_known && d.problem.is_empty() && stack_of(d, None) != Stack::Unknown {
            by_root.insert(path.clone(), (Vec::new(), None, None));
        }
    }
    let mut apps: Vec<App> = by_root
        .into_iter()
        .map(|(root, (sites, service, docroot))| app(f, root, sites, service, docroot))
        .collect();
    name_uniquely(&mut apps);
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    (apps, orphans)
}

/// The app's directory for a document root: the parent of a `public/` whose parent holds
/// `artisan` or `spark`.
fn app_root_of(f: &Found, root: &str) -> (String, Option<String>) {
    if let Some(parent) = root.strip_suffix("/public")
        && f.dirs
            .get(parent)
            .is_some_and(|d| d.has.iter().any(|h| h == "artisan" || h == "spark"))
    {
        return (parent.to_string(), Some(root.to_string()));
    }
    (root.to_string(), None)
}

fn service_on(f: &Found, port: u16) -> Option<Service> {
    if let Some(s) = f.services.iter().find(|s| s.port == Some(port)) {
        return Some(s.clone());
    }
    let pid = f
        .listening
        .iter()
        .find(|l| l.port == port)
        .and_then(|l| l.pid)?;
    let p = f.processes.iter().find(|p| p.pid == pid)?;
    // a unit whose working directory is the process's
    if let Some(s) = f
        .services
        .iter()
        .find(|s| s.workdir.is_some() && s.workdir == p.cwd)
    {
        let mut s = s.clone();
        s.port = Some(port);
        return Some(s);
    }
    Some(Service {
        kind: "process".into(),
        name: pid.to_string(),
        exec: p.args.clone(),
        workdir: p.cwd.clone(),
        user: Some(p.user.clone()),
        port: Some(port),
        description: None,
    })
}

fn is_app_process(args: &str) -> bool {
    let first = args.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    [
        "node", "nodejs", "python", "python3", "gunicorn", "uwsgi", "uvicorn",
    ]
    .iter()
    .any(|n| base == *n || base.starts_with("python3."))
}

fn is_app_service(s: &Service) -> bool {
    let first = s.exec.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    is_app_process(&s.exec) || matches!(base, "npm" | "pm2" | "pm2-runtime" | "yarn" | "php")
}

fn app(
    f: &Found,
    root: String,
    sites: Vec<Vhost>,
    service: Option<Service>,
    docroot: Option<String>,
) -> App {
    let dir = f.dirs.get(&root).cloned().unwrap_or_else(|| DirInfo {
        problem: "not inspected".into(),
        ..DirInfo::default()
    });
    let stack = stack_of(&dir, service.as_ref());
    let mut names: Vec<String> = Vec::new();
    for s in &sites {
        for n in &s.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let php_via = sites.iter().find_map(|s| s.php.clone());
    let php = php_via
        .filter(|_| {
            matches!(
                stack,
                Stack::Wordpress | Stack::Laravel | Stack::Codeigniter | Stack::PlainPhp
            )
        })
        .map(|via| {
            let pool = f
                .pools
                .iter()
                .find(|p| p.listen == via || via.ends_with(&p.listen));
            let version = pool.map_or_else(
                || {
                    via.split("php")
                        .nth(1)
                        .map(|v| {
                            v.trim_end_matches(|c: char| !c.is_ascii_digit())
                                .split('-')
                                .next()
                                .unwrap_or("")
                                .to_string()
                        })
                        .unwrap_or_default()
                },
                |p| p.version.clone(),
            );
            Php {
                extensions: f
                    .extensions
                    .get(&version)
                    .cloned()
                    .unwrap_or_else(|| f.modules.clone()),
                pool: pool.map_or(via, |p| p.name.clone()),
                version,
            }
        });
    let database = dir
        .conf
        .iter()
        .filter(|(file, _)| {
            let lower = file.to_ascii_lowercase();
            std::path::Path::new(&lower)
                .extension()
                .is_none_or(|e| e != "json")
                && !lower.ends_with("requirements.txt")
                && !file.ends_with("version.php")
        })
        .find_map(|(file, text)| db::database(file, text));
    let mut ports: Vec<u16> = sites
        .iter()
        .flat_map(|s| s.proxy.iter().filter_map(|p| local_port(p)))
        .collect();
    ports.extend(service.as_ref().and_then(|s| s.port));
    ports.sort_unstable();
    ports.dedup();
    let conf_value = |key: &str| {
        dir.conf
            .values()
            .flat_map(|t| db::pairs(t))
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v)
    };
    let url = conf_value("WP_HOME")
        .or_else(|| conf_value("WP_SITEURL"))
        .or_else(|| conf_value("APP_URL"))
        .or_else(|| conf_value("base_url"))
        .or_else(|| conf_value("app.baseURL"))
        .or_else(|| {
            names.first().map(|n| {
                format!(
                    "{}://{n}",
                    if sites.iter().any(|s| s.tls) {
                        "https"
                    } else {
                        "http"
                    }
                )
            })
        });
    let version = match stack {
        Stack::Wordpress => conf_value("wp_version").map(|v| format!("WordPress {v}")),
        Stack::Codeigniter => dir.conf.values().find_map(|t| {
            t.lines()
                .find(|l| l.contains("CI_VERSION"))
                .and_then(|l| db::pairs(&l.replace(',', "=")).pop())
                .map(|(_, v, _)| format!("CodeIgniter {v}"))
        }),
        _ => None,
    };
    let cron = f
        .cron
        .iter()
        .filter(|l| l.contains(&root))
        .cloned()
        .collect();
    let mut notes = Vec::new();
    if !dir.problem.is_empty() {
        notes.push(format!("directory {}", dir.problem));
    }
    if let Some(d) = &database
        && !matches!(d.host.as_str(), "localhost" | "127.0.0.1" | "::1")
    {
        notes.push(format!(
            "its database is on another host ({}): the dump must reach it from the vendor host",
            d.host
        ));
    }
    App {
        name: name_for(&names, &sites, &root),
        stack,
        version,
        docroot,
        sites,
        names,
        php,
        service,
        ports,
        database,
        url,
        dir,
        cron,
        notes,
        root,
    }
}

/// `[a-z0-9][a-z0-9-]{0,62}` from the first site name's first label that is not `www`,
/// else (a default site) its config file's name, else the directory's last component
/// that is not `public`, `html`, `www`, ….
fn name_for(names: &[String], sites: &[Vhost], root: &str) -> String {
    let from_name = names.first().and_then(|n| {
        n.split('.')
            .find(|l| !matches!(*l, "www" | "" | "*"))
            .map(str::to_owned)
    });
    let from_file = sites
        .first()
        .and_then(|s| s.file.rsplit('/').next())
        .map(|f| f.trim_end_matches(".conf").to_string());
    let from_name = from_name.or(from_file);
    let from_dir = root
        .rsplit('/')
        .find(|c| {
            !matches!(
                *c,
                "" | "public"
                    | "html"
                    | "www"
                    | "public_html"
                    | "htdocs"
                    | "var"
                    | "srv"
                    | "opt"
                    | "home"
            )
        })
        .map(str::to_owned);
    let raw = from_name.or(from_dir).unwrap_or_else(|| "app".into());
    let mut s: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s = s.trim_matches('-').to_string();
    s.truncate(50);
    if s.is_empty() { "app".into() } else { s }
}

fn name_uniquely(apps: &mut [App]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for a in apps.iter_mut() {
        let n = seen.entry(a.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            a.name = format!("{}-{}", a.name, n);
        }
    }
}
