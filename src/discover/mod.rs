//! `boyong discover`: what a vendor host serves, found read-only over SSH, as an
//! inventory of typed [`App`] records and draft playbooks from recipes per stack.
//!
//! Owns: the remote script (`script.sh`, one exec, sent on stdin: never built from any
//! string), its output's parsing (`raw.rs` sections, `web.rs` Apache2/nginx, `host.rs`
//! pools, units, ports, processes, crontabs, `db.rs` config lines, `app.rs` and
//! `assemble.rs` the apps), the inventory (`inventory.rs`: JSON and CSV), the drafts
//! (`recipe.rs`, templates in `recipes/`) and the TODO markers `validate` lists
//! (`todo.rs`).
//!
//! Invariants: nothing on the vendor host is changed: the script only reads, each of its
//! commands under `timeout` and each output under `head -c`, the whole run under
//! [`Limits::time`] and [`Limits::bytes`]; what the vendor host sends is data (parsed,
//! never evaluated; shown through `escape::controls`); no password is sent back by the
//! script's filters, and command lines and crontabs are redacted before they are kept.

mod app;
mod assemble;
mod db;
mod host;
pub mod inventory;
mod raw;
pub mod recipe;
pub mod todo;
mod web;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use app::{App, DirInfo, Php, Stack};
pub use db::Database;
pub use host::{Listen, Service, redact};
pub use web::Vhost;

use crate::ssh::{Out, Session, SshError, Target};

/// The script run on the vendor host, as it is sent (stdin of `sh -s -- NONCE`).
pub const SCRIPT: &str = include_str!("script.sh");

/// The commands the script may run, for `--show-commands` and the docs.
pub const COMMANDS: &[&str] = &[
    "cat",
    "head -c",
    "grep -E",
    "sed -n/-E",
    "awk",
    "find -xdev -type f -printf",
    "test -e/-f/-d/-r",
    "ls -1",
    "readlink /proc/PID/cwd",
    "od -An -tx1",
    "stat -c",
    "ss -Hltnp (or -ltn)",
    "ps -eo",
    "crontab -l",
    "id",
    "uname -srm",
    "hostname",
    "date +%s",
    "php -v",
    "php -m",
    "node --version",
    "python3 --version",
    "apache2 -v",
    "nginx -v",
    "timeout",
    "sort -u",
    "wc -l",
    "tr -d",
];

/// Bounds of one discovery.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole run: connect, script, output.
    pub time: Duration,
    /// Most bytes of output read.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(120),
            bytes: 32 << 20,
        }
    }
}

/// A discovery's failure.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Connecting or logging in failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The run took longer than its limit.
    #[error("discovery on {addr} did not finish within {secs}s (raise --timeout)")]
    TimedOut {
        /// `host:port`.
        addr: String,
        /// The limit.
        secs: u64,
    },
    /// The script failed before reaching its end.
    #[error("the discovery script on {addr} stopped early (exit status {status}): {stderr}")]
    Script {
        /// `host:port`.
        addr: String,
        /// Its exit status.
        status: u32,
        /// The first lines of its stderr, escaped.
        stderr: String,
    },
}

/// What one discovery found on one vendor host: the inventory's file for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostReport {
    /// Format version of this file.
    pub format: u32,
    /// The vendor host as given (`host`).
    pub host: String,
    /// Its SSH port.
    pub port: u16,
    /// The login.
    pub user: String,
    /// The host key it proved it holds.
    pub host_key: Option<String>,
    /// When (seconds since 1970, the vendor host's clock).
    pub discovered_at: u64,
    /// How long it took, seconds.
    pub seconds: f64,
    /// Facts: hostname, os, kernel, php, node, python, apache, nginx, user.
    pub facts: std::collections::BTreeMap<String, String>,
    /// The apps.
    pub apps: Vec<App>,
    /// Sites that proxy to a local port whose service was not found.
    pub unmatched_sites: Vec<Vhost>,
    /// Services (systemd units, supervisor programs).
    pub services: Vec<Service>,
    /// Listening TCP sockets.
    pub listening: Vec<Listen>,
    /// Every crontab line (redacted), `FILE: LINE`.
    pub cron: Vec<String>,
    /// The PHP CLI's modules.
    pub php_modules: Vec<String>,
    /// Whether the script ran to its end (else its output was cut by a limit).
    pub complete: bool,
}

/// The current inventory format.
pub const FORMAT: u32 = 1;

/// A fresh nonce for the script's markers.
fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{t}-{}-{:p}", std::process::id(), &t);
    let h = crate::digest::sha256_hex(seed.as_bytes());
    format!("B{}", &h[..24])
}

/// The report from the script's whole output (the parse alone, for tests and tools).
pub fn report_from(nonce: &str, out: &str, target: &Target) -> HostReport {
    let sections = raw::split(nonce, out);
    let found = app::read(&sections);
    let (apps, unmatched_sites) = assemble::apps(&found);
    HostReport {
        format: FORMAT,
        host: target.host.clone(),
        port: target.port,
        user: target.user.clone(),
        host_key: None,
        discovered_at: found
            .facts
            .get("now")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        seconds: 0.0,
        apps,
        unmatched_sites,
        services: found.services,
        listening: found.listening,
        cron: found.cron,
        php_modules: found.modules,
        complete: found.complete,
        facts: found.facts,
    }
}

/// Discovers what `target` serves: one login, one exec of [`SCRIPT`], bounded by `limits`.
///
/// # Errors
/// See [`DiscoverError`].
pub async fn discover(target: &Target, limits: Limits) -> Result<HostReport, DiscoverError> {
    let t0 = Instant::now();
    let addr = format!("{}:{}", target.host, target.port);
    let run = async {
        let session = Session::connect(target).await?;
        let host_key = session.host_key.clone();
        let nonce = nonce();
        let mut exec = session
            .exec(&format!("sh -s -- {nonce}"), Some(SCRIPT.as_bytes()))
            .await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(o) = exec.next().await {
            match o {
                Out::Stdout(b) if out.len() < limits.bytes => out.extend_from_slice(&b),
                Out::Stderr(b) if err.len() < 4096 => err.extend_from_slice(&b),
                _ => {}
            }
        }
        let status = exec.exit_status()?;
        session.close().await;
        Ok::<_, DiscoverError>((nonce, out, err, status, host_key))
    };
    let (nonce, out, err, status, host_key) = tokio::time::timeout(limits.time, run)
        .await
        .map_err(|_| DiscoverError::TimedOut {
            addr: addr.clone(),
            secs: limits.time.as_secs(),
        })??;
    let text = String::from_utf8_lossy(&out);
    let mut report = report_from(&nonce, &text, target);
    if !report.complete && status != 0 {
        let stderr = String::from_utf8_lossy(&err);
        return Err(DiscoverError::Script {
            addr,
            status,
            stderr: crate::escape::controls(
                stderr
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ")
                    .as_str(),
            )
            .into_owned(),
        });
    }
    report.host_key = host_key;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::SCRIPT;

    /// The script writes nothing: no command that changes files, services or processes,
    /// and no redirection into a file but /dev/null.
    #[test]
    fn the_script_only_reads() {
        let code: String = SCRIPT
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .fold(String::new(), |acc, l| acc + l + "\n");
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .collect();
        for cmd in [
            "rm",
            "mv",
            "cp",
            "touch",
            "mkdir",
            "chmod",
            "chown",
            "tee",
            "kill",
            "pkill",
            "systemctl",
            "jlist",
            "apache2ctl",
            "dd",
            "ln",
            "truncate",
            "install",
            "mysql",
            "mariadb",
            "-delete",
            "-exec",
            "-execdir",
            "-fprint",
            "-i",
        ] {
            assert!(!words.contains(&cmd), "the script runs `{cmd}`");
        }
        for (i, _) in code.match_indices('>') {
            let after = code[i + 1..].trim_start_matches('>').trim_start();
            let into_file = after.starts_with(['/', '"', '$', '.', '~']);
            assert!(
                !into_file || after.starts_with("/dev/null"),
                "a redirection into a file: …{}…",
                &code[i.saturating_sub(30)..(i + 20).min(code.len())]
            );
        }
    }
}
