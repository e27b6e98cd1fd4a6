//! `boyong discover`: vendor hosts (from flags or a hosts file) discovered read-only, at
//! most `--jobs` at once; each host's inventory written to `STATE/inventory/`, its apps
//! shown, and with `--drafts DIR` a draft playbook per app (an edited one kept, the new
//! draft beside it as `.new`, the diff shown).
//!
//! Exit status: 0 every host discovered; 1 one could not be (unreachable, refused host
//! key, login, time limit); 2 bad input (flags, the hosts file, with FILE:LINE:COL).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use boyong::discover::recipe::{self, Login, Written};
use boyong::discover::{self, HostReport, Limits, inventory};
use boyong::escape::controls;
use boyong::ssh::{Auth, Target};

use super::error::{CliError, Kind, Result};
use super::table::{self, Col};

/// `boyong discover`'s arguments.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The vendor host (name or address); or use --hosts.
    #[arg(value_name = "HOST")]
    pub host: Option<String>,
    /// Its SSH port.
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// The login.
    #[arg(long)]
    pub user: Option<String>,
    /// The private key file.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The OpenSSH known_hosts file the host's key must be in.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Several hosts: blocks of `host:`, `port:`, `user:`, `identity:`, `known_hosts:`
    /// lines, a blank line between hosts; paths relative to the file.
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    pub hosts: Option<PathBuf>,
    /// Hosts discovered at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Limit on each host's discovery (connect, script, output), in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// Write a draft playbook per app into this directory (never over an edited one).
    #[arg(long, value_name = "DIR")]
    pub drafts: Option<PathBuf>,
    /// The first host port the drafts publish apps on (127.0.0.1:PORT, then PORT+1, …,
    /// one per app of a host, in the inventory's order).
    #[arg(long, default_value_t = 8081, value_name = "PORT")]
    pub publish_from: u16,
    /// Print the script sent to each host and the commands it may run, and exit.
    #[arg(long)]
    pub show_commands: bool,
    /// Print each host's report as JSON (one array).
    #[arg(long)]
    pub json: bool,
}

/// A host to discover, with where it was given (for messages).
#[derive(Debug, Clone)]
struct HostSpec {
    host: String,
    port: u16,
    user: String,
    identity: PathBuf,
    known_hosts: PathBuf,
}

/// `boyong discover`.
pub fn discover(state: &Path, args: &DiscoverArgs) -> Result {
    if args.show_commands {
        println!("# Commands the discovery may run on a vendor host (all read-only):");
        for c in discover::COMMANDS {
            println!("#   {c}");
        }
        println!("# The script, sent on stdin to `sh -s -- NONCE`:");
        print!("{}", discover::SCRIPT);
        return Ok(());
    }
    let hosts = match (&args.host, &args.hosts) {
        (Some(h), None) => vec![from_flags(h, args)?],
        (None, Some(file)) => read_hosts(file)?,
        _ => {
            return Err(CliError::bad_input(
                "boyong discover: name a HOST (with --user, --identity, --known-hosts) or --hosts FILE",
            ));
        }
    };
    let limits = Limits {
        time: Duration::from_secs(args.timeout.max(1)),
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("boyong discover: {e}")))?;
    let jobs = Arc::new(tokio::sync::Semaphore::new(usize::from(args.jobs)));
    let results: Vec<(HostSpec, std::result::Result<HostReport, String>)> = rt.block_on(async {
        let tasks: Vec<_> = hosts
            .into_iter()
            .map(|h| {
                let jobs = Arc::clone(&jobs);
                tokio::spawn(async move {
                    let _permit = jobs.acquire().await;
                    let r = discover::discover(&target(&h), limits)
                        .await
                        .map_err(|e| e.to_string());
                    (h, r)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        out
    });
    let mut worst: Option<Kind> = None;
    let mut reports = Vec::new();
    for (h, r) in results {
        match r {
            Err(e) => {
                say!("boyong discover: {}:{}: {}", h.host, h.port, controls(&e));
                worst = Some(Kind::Failed);
            }
            Ok(report) => {
                let (json, csv) = inventory::write(state, &report).map_err(|e| {
                    CliError::failed(format!(
                        "boyong discover: the inventory in {}: {e}",
                        state.display()
                    ))
                })?;
                if !args.json {
                    show(&report, &json, &csv);
                }
                if let Some(dir) = &args.drafts {
                    drafts(dir, &h, &report, args.publish_from)?;
                }
                reports.push(report);
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
    }
    worst.map_or(Ok(()), |k| Err(CliError::reported(k)))
}

fn target(h: &HostSpec) -> Target {
    Target {
        host: h.host.clone(),
        port: h.port,
        user: h.user.clone(),
        auth: Auth::Key {
            path: h.identity.clone(),
            passphrase: None,
        },
        known_hosts: h.known_hosts.clone(),
        accept_new: false,
        connect_timeout: Duration::from_secs(10),
        legacy_algorithms: Vec::new(),
    }
}

fn from_flags(host: &str, args: &DiscoverArgs) -> Result<HostSpec> {
    let missing =
        |f: &str| CliError::bad_input(format!("boyong discover: {f} is required with a HOST"));
    Ok(HostSpec {
        host: host.to_string(),
        port: args.port,
        user: args.user.clone().ok_or_else(|| missing("--user"))?,
        identity: abs(args.identity.clone().ok_or_else(|| missing("--identity"))?),
        known_hosts: abs(args
            .known_hosts
            .clone()
            .ok_or_else(|| missing("--known-hosts"))?),
    })
}

fn abs(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

/// The hosts of a hosts file; every mistake at its FILE:LINE:COL.
fn read_hosts(file: &Path) -> Result<Vec<HostSpec>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::bad_input(format!("boyong discover: {}: {e}", file.display())))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let shown = file.display().to_string();
    let mut hosts = Vec::new();
    let mut errors = Vec::new();
    let mut block: Vec<(usize, String, String, usize)> = Vec::new();
    let finish = |block: &mut Vec<(usize, String, String, usize)>,
                  errors: &mut Vec<String>,
                  hosts: &mut Vec<HostSpec>,
                  end: usize| {
        if block.is_empty() {
            return;
        }
        let get = |k: &str| {
            block
                .iter()
                .find(|b| b.1 == k)
                .map(|b| (b.0, b.2.clone(), b.3))
        };
        let first = block[0].0;
        let need = |k: &str, errors: &mut Vec<String>| {
            let v = get(k).map(|g| g.1);
            if v.is_none() {
                errors.push(format!(
                    "{shown}:{first}:1: the host ending at line {end} has no `{k}:`"
                ));
            }
            v.unwrap_or_default()
        };
        let port = match get("port") {
            None => 22,
            Some((l, v, c)) => v.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{shown}:{l}:{c}: `{}` is not a port (1 to 65535)",
                    controls(&v)
                ));
                22
            }),
        };
        let host = need("host", errors);
        let user = need("user", errors);
        let identity = need("identity", errors);
        let known = need("known_hosts", errors);
        hosts.push(HostSpec {
            host,
            port,
            user,
            identity: abs(base.join(identity)),
            known_hosts: abs(base.join(known)),
        });
        block.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if t.is_empty() || t == "---" {
            finish(&mut block, &mut errors, &mut hosts, n);
            continue;
        }
        let Some((k, v)) = t.split_once(':') else {
            errors.push(format!(
                "{shown}:{n}:1: expected `KEY: VALUE` (host, port, user, identity, known_hosts)"
            ));
            continue;
        };
        let k = k.trim();
        if !["host", "port", "user", "identity", "known_hosts"].contains(&k) {
            let col = line.find(k).map_or(1, |c| c + 1);
            errors.push(format!("{shown}:{n}:{col}: unknown key `{}`: expected one of host, port, user, identity, known_hosts", controls(k)));
            continue;
        }
        if block.iter().any(|b| b.1 == k) {
            errors.push(format!(
                "{shown}:{n}:1: `{k}` twice for one host (a blank line starts the next host)"
            ));
            continue;
        }
        let col = line.find(':').map_or(1, |c| c + 2);
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        block.push((n, k.to_string(), v, col));
    }
    finish(&mut block, &mut errors, &mut hosts, text.lines().count());
    if !errors.is_empty() {
        return Err(CliError::bad_input(errors.join("\n")));
    }
    if hosts.is_empty() {
        return Err(CliError::bad_input(format!(
            "boyong discover: {shown} names no host"
        )));
    }
    Ok(hosts)
}

const COLS: [Col; 8] = [
    Col {
        name: "APP",
        shrink: 0,
        min: 4,
    },
    Col {
        name: "STACK",
        shrink: 0,
        min: 6,
    },
    Col {
        name: "ROOT",
        shrink: 1,
        min: 8,
    },
    Col {
        name: "SERVED",
        shrink: 2,
        min: 8,
    },
    Col {
        name: "DATABASE",
        shrink: 3,
        min: 8,
    },
    Col {
        name: "FILES",
        shrink: 0,
        min: 5,
    },
    Col {
        name: "SIZE",
        shrink: 0,
        min: 4,
    },
    Col {
        name: "NEWEST",
        shrink: 0,
        min: 6,
    },
];

fn show(r: &HostReport, json: &Path, csv: &Path) {
    println!(
        "{}:{} ({}, {}): {} app(s) in {:.1} s{}",
        r.host,
        r.port,
        controls(r.facts.get("hostname").map_or("?", String::as_str)),
        controls(r.facts.get("os").map_or("?", String::as_str)),
        r.apps.len(),
        r.seconds,
        if r.complete {
            ""
        } else {
            " (output cut at a limit: some facts missing)"
        }
    );
    let rows: Vec<Vec<String>> = r
        .apps
        .iter()
        .map(|a| {
            let served = a.sites.first().map_or_else(
                || {
                    a.service
                        .as_ref()
                        .map_or("-".into(), |s| format!("{} {}", s.kind, s.name))
                },
                |s| {
                    format!(
                        "{} {}",
                        s.server,
                        a.names.first().map_or("(default)", String::as_str)
                    )
                },
            );
            let db = a.database.as_ref().map_or("-".into(), |d| {
                format!(
                    "{} {}@{}:{}/{}",
                    d.engine, d.user, d.host, d.port, d.database
                )
            });
            vec![
                a.name.clone(),
                a.version.clone().unwrap_or_else(|| a.stack.word().into()),
                controls(&a.root).into_owned(),
                controls(&served).into_owned(),
                controls(&db).into_owned(),
                a.dir.files.to_string(),
                human(a.dir.bytes),
                age(r.discovered_at, a.dir.newest),
            ]
        })
        .collect();
    print!("{}", table::render(&COLS, &rows, table::stdout_width()));
    for s in &r.unmatched_sites {
        println!(
            "  note: {} {}:{} proxies to {} but no service there was found",
            s.server,
            controls(&s.file),
            s.line,
            controls(&s.proxy.join(" "))
        );
    }
    println!("inventory: {} and {}", json.display(), csv.display());
}

fn human(b: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
    let f = b as f64;
    if b >= 1 << 30 {
        format!("{:.1} GiB", f / f64::from(1u32 << 30))
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", f / f64::from(1u32 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// How long ago the newest change was, as of the discovery.
fn age(now: u64, newest: u64) -> String {
    if newest == 0 {
        return "-".into();
    }
    let d = now.saturating_sub(newest) / 86_400;
    if d == 0 {
        "today".into()
    } else {
        format!("{d} d ago")
    }
}

fn drafts(dir: &Path, h: &HostSpec, r: &HostReport, publish_from: u16) -> Result {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::failed(format!("boyong discover: {}: {e}", dir.display())))?;
    let login = Login {
        host: h.host.clone(),
        port: h.port,
        user: h.user.clone(),
        identity: h.identity.display().to_string(),
        known_hosts: h.known_hosts.display().to_string(),
    };
    for (i, app) in r.apps.iter().enumerate() {
        let port = publish_from.saturating_add(u16::try_from(i).unwrap_or(u16::MAX));
        let Some(body) = recipe::draft(app, r, &login, port) else {
            println!(
                "  draft {}: none: no recipe for stack {} yet",
                app.name,
                app.stack.word()
            );
            continue;
        };
        let path = dir.join(format!("{}.yml", app.name));
        let written = recipe::write(&path, &body)
            .map_err(|e| CliError::failed(format!("boyong discover: {}: {e}", path.display())))?;
        match written {
            Written::Created(p) => println!("  draft {}: written", p.display()),
            Written::Updated(p) => println!("  draft {}: updated (it was not edited)", p.display()),
            Written::Unchanged(p) => println!("  draft {}: unchanged", p.display()),
            Written::Kept { path, new, diff } => {
                println!(
                    "  draft {}: edited, kept; the new draft is {}:",
                    path.display(),
                    new.display()
                );
                for l in diff.lines() {
                    println!("    {}", controls(l));
                }
            }
        }
    }
    Ok(())
}
