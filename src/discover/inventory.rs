//! The inventory: `STATE/inventory/HOST.json` (a [`HostReport`], the whole of what one
//! discovery found) and `STATE/inventory/HOST.csv` (one row per app, for spreadsheets),
//! one pair per vendor host, replaced by each discovery of that host.
//!
//! Invariants: written to a temporary file and renamed (a reader never sees half a file);
//! the file name is made of the host and port alone, with anything but `[A-Za-z0-9.-]`
//! as `_`; a CSV field that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) is
//! prefixed with `'`.

use std::path::{Path, PathBuf};

use super::HostReport;

/// The inventory directory of a state directory.
pub fn dir(state: &Path) -> PathBuf {
    state.join("inventory")
}

/// `HOST` or `HOST_PORT` (port other than 22), safe as a file name.
pub fn stem(host: &str, port: u16) -> String {
    let mut s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        s.insert(0, '_');
    }
    if port != 22 {
        s = format!("{s}_{port}");
    }
    s
}

/// The CSV columns.
pub const COLUMNS: [&str; 22] = [
    "host",
    "app",
    "stack",
    "version",
    "root",
    "docroot",
    "names",
    "web_server",
    "site_config",
    "php",
    "php_extensions",
    "service",
    "ports",
    "db_engine",
    "db_host",
    "db_port",
    "db_name",
    "db_user",
    "db_secret",
    "files",
    "bytes",
    "newest",
];

fn field(s: &str) -> String {
    let s = crate::escape::controls(s);
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.into_owned()
    };
    if s.contains([',', '"', '\n']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The CSV of a report: a header and one row per app.
pub fn csv(r: &HostReport) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for a in &r.apps {
        let db = a.database.as_ref();
        let site = a.sites.first();
        let row = [
            r.host.clone(),
            a.name.clone(),
            a.stack.word().to_string(),
            a.version.clone().unwrap_or_default(),
            a.root.clone(),
            a.docroot.clone().unwrap_or_default(),
            a.names.join(" "),
            site.map(|s| s.server.clone()).unwrap_or_default(),
            site.map(|s| format!("{}:{}", s.file, s.line))
                .unwrap_or_default(),
            a.php
                .as_ref()
                .map(|p| format!("{} ({})", p.version, p.pool))
                .unwrap_or_default(),
            a.php
                .as_ref()
                .map(|p| p.extensions.join(" "))
                .unwrap_or_default(),
            a.service
                .as_ref()
                .map(|s| format!("{} {}", s.kind, s.name))
                .unwrap_or_default(),
            a.ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            db.map(|d| d.engine.clone()).unwrap_or_default(),
            db.map(|d| d.host.clone()).unwrap_or_default(),
            db.map(|d| d.port.to_string()).unwrap_or_default(),
            db.map(|d| d.database.clone()).unwrap_or_default(),
            db.map(|d| d.user.clone()).unwrap_or_default(),
            db.map(|_| super::recipe::secret_name(&a.name, "VENDOR_DB_PASSWORD"))
                .unwrap_or_default(),
            a.dir.files.to_string(),
            a.dir.bytes.to_string(),
            a.dir.newest.to_string(),
        ];
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `r` as `HOST.json` and `HOST.csv` in the inventory of `state`; their paths.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write(state: &Path, r: &HostReport) -> std::io::Result<(PathBuf, PathBuf)> {
    let d = dir(state);
    std::fs::create_dir_all(&d)?;
    let stem = stem(&r.host, r.port);
    let json = d.join(format!("{stem}.json"));
    let csv_path = d.join(format!("{stem}.csv"));
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    write_atomic(&json, text.as_bytes())?;
    write_atomic(&csv_path, csv(r).as_bytes())?;
    Ok((json, csv_path))
}

/// An app the inventory knows: `(app, host, stack)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The app's name.
    pub app: String,
    /// Its vendor host.
    pub host: String,
    /// Its stack.
    pub stack: String,
    /// Its directory there.
    pub root: String,
}

/// Every app of every host in the inventory of `state` (unreadable files skipped).
pub fn known(state: &Path) -> Vec<Known> {
    let Ok(entries) = std::fs::read_dir(dir(state)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(r) = serde_json::from_str::<HostReport>(&text) else {
            continue;
        };
        out.extend(r.apps.iter().map(|a| Known {
            app: a.name.clone(),
            host: r.host.clone(),
            stack: a.stack.word().to_string(),
            root: a.root.clone(),
        }));
    }
    out.sort_by(|a, b| a.app.cmp(&b.app));
    out
}
