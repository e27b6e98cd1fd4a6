//! Probes on the vendor host: the size of what a fetch pulls, the tools, the database a
//! dump reads. Read-only: `find`, `stat`, `test`, `--version`, SELECT.

use std::fmt::Write as _;

use super::{Findings, PROBE_TIMEOUT, StepFound, Vendor, human_bytes, secs, sh, utc};
use crate::plan::{Estimate, PlannedStep};
use crate::shell::quote;
use crate::steps::db::{Conn, Dialect};
use crate::steps::live::Live;

/// What a fetch probe saw.
pub(super) struct Tree {
    pub(super) kind: String,
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) newest: u64,
}

/// The read-only command that sizes a fetch: files, bytes and the newest mtime, with the
/// fetch's own exclusions.
fn size_command(path: &str, exclude: &[String]) -> String {
    let mut prune = String::new();
    for (i, e) in exclude.iter().enumerate() {
        let rel = format!("./{}", e.trim_end_matches('/').trim_start_matches("./"));
        if i > 0 {
            prune.push_str(" -o");
        }
        let _ = write!(prune, " -path {}", quote(&rel));
    }
    let prune = if prune.is_empty() {
        String::new()
    } else {
        format!(" \\({prune} \\) -prune -o")
    };
    format!(
        "P={p}; if [ -d \"$P\" ]; then cd \"$P\" && find . -xdev{prune} -type f -printf '%s %T@\\n' | \
         awk 'BEGIN {{n=0; s=0; m=0}} {{n++; s+=$1; t=int($2); if (t>m) m=t}} END {{printf \"dir %d %.0f %d\\n\", n, s, m}}'; \
         elif [ -f \"$P\" ]; then echo \"file 1 $(stat -c '%s %Y' -- \"$P\")\"; \
         elif [ -e \"$P\" ]; then echo other; else echo missing; fi",
        p = quote(path)
    )
}

fn parse_tree(out: &str) -> Option<Tree> {
    let mut w = out.split_whitespace();
    let kind = w.next()?.to_string();
    if kind != "dir" && kind != "file" {
        return Some(Tree {
            kind,
            files: 0,
            bytes: 0,
            newest: 0,
        });
    }
    Some(Tree {
        kind,
        files: w.next()?.parse().ok()?,
        bytes: w.next()?.parse().ok()?,
        newest: w.next()?.parse().ok()?,
    })
}

/// A fetch step: the tree's files, bytes and newest change (with the step's exclusions),
/// `tar`, and the vendor's manifest.
pub(super) async fn fetch(
    v: &Vendor,
    step: &PlannedStep,
    x: &crate::playbook::Fetch,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let id = step.id.as_str();
    let key = format!("vendor.fetch.{id}");
    match sh(v, &size_command(&x.path, &x.exclude), None).await {
        Ok((0, out)) => match parse_tree(&out) {
            Some(t) if t.kind == "dir" || t.kind == "file" => {
                sf.found.push(format!(
                    "vendor:{}: {} {}, {} (newest change {})",
                    x.path,
                    t.files,
                    if t.files == 1 { "file" } else { "files" },
                    human_bytes(t.bytes),
                    utc(t.newest)
                ));
                fx.print(
                    key,
                    format!(
                        "{} files={} bytes={} newest={}",
                        t.kind, t.files, t.bytes, t.newest
                    ),
                );
                sf.estimate = Some(Estimate {
                    bytes: Some(t.bytes),
                    seconds: 0.5 + secs(t.bytes, 100e6),
                    basis: "one tar stream at ~100 MB/s (loopback measures ~240 MB/s; a long link is slower)".into(),
                });
                fx.local_bytes += t.bytes;
                fx.fetched.insert(id.to_string(), t);
            }
            Some(t) => {
                fx.print(key, t.kind.clone());
                fx.problem(
                    Some(id),
                    format!(
                        "vendor:{} does not exist or is not a file or directory ({})",
                        x.path, t.kind
                    ),
                    "correct `fetch.path`, or ask the vendor where the app lives",
                );
            }
            None => sf.found.push(format!(
                "vendor:{}: size unknown (the host's find/awk answered `{}`)",
                x.path,
                out.trim()
            )),
        },
        Ok((c, err)) => fx.problem(
            Some(id),
            format!("sizing vendor:{} failed (exit status {c}): {err}", x.path),
            "check that the vendor account can read the path",
        ),
        Err(e) => fx.problem(
            Some(id),
            format!("sizing vendor:{}: {e}", x.path),
            "check the vendor link",
        ),
    }
    match sh(v, "tar --version 2>/dev/null | head -n 1", None).await {
        Ok((0, out)) if !out.trim().is_empty() => sf.found.push(format!("tar: {}", out.trim())),
        _ => fx.problem(
            Some(id),
            "no `tar` on the vendor host",
            "install tar there (every Linux has it), or ask the vendor for an archive",
        ),
    }
    if let Some(sums) = &x.sha256sums {
        let present = matches!(
            sh(v, &format!("test -r {}", quote(sums)), None).await,
            Ok((0, _))
        );
        fx.print(
            format!("vendor.sha256sums.{id}"),
            if present { "present" } else { "missing" },
        );
        if present {
            sf.found.push(format!("vendor:{sums}: present"));
        } else {
            fx.problem(
                Some(id),
                format!("the vendor's manifest {sums} is missing or unreadable"),
                "ask the vendor for it, or remove `sha256sums` from the step",
            );
        }
    }
}

/// A dump step: the tool's version, and the database reached as the dump will reach it
/// (password on stdin), with its size.
pub(super) async fn dump(
    v: &Vendor,
    live: &Live,
    step: &PlannedStep,
    d: &crate::playbook::Dump,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let id = step.id.as_str();
    let tool = d.engine.dump_tool();
    match sh(
        v,
        &format!("command -v {tool} >/dev/null && {tool} --version | head -n 1"),
        None,
    )
    .await
    {
        Ok((0, out)) => sf.found.push(format!("{tool}: {}", out.trim())),
        _ => fx.problem(
            Some(id),
            format!("no `{tool}` on the vendor host"),
            format!("install the database's client tools there ({tool} comes with them)"),
        ),
    }
    let dialect = Dialect::of(d.engine);
    let password = match d
        .password
        .as_ref()
        .map(|t| t.resolve(live.secrets()))
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            fx.problem(Some(id), e, "set the secret the playbook names");
            return;
        }
    };
    let Ok(option_line) = dialect.password_line(password.as_ref()) else {
        fx.problem(
            Some(id),
            "the database password cannot be passed in an option file",
            "choose a password without line breaks or surrounding blanks",
        );
        return;
    };
    let conn = Conn {
        host: &d.host,
        port: d.port,
        user: &d.user,
        database: &d.database,
    };
    let sql = match dialect {
        Dialect::My(_) => {
            "SELECT VERSION(), COALESCE(SUM(data_length + index_length), 0), COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        Dialect::Pg => {
            "SELECT split_part(version(), ' ', 2), pg_database_size(current_database()), (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))"
        }
    };
    let permit = v.channels.acquire().await;
    let answer = tokio::time::timeout(
        PROBE_TIMEOUT,
        crate::steps::dump::query(&v.session, dialect, &conn, &option_line, sql),
    )
    .await;
    drop(permit);
    match answer {
        Ok(Ok(out)) => {
            let cols: Vec<&str> = out.trim().split('\t').collect();
            let size: u64 = cols.get(1).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            let tables = cols.get(2).map_or("?", |s| s.trim());
            let version = cols.first().map_or("?", |s| s.trim());
            sf.found.push(format!(
                "database `{}` reachable as `{}`: {} {version}, {tables} tables, {} on disk",
                d.database,
                d.user,
                d.engine
                    .dump_tool()
                    .trim_end_matches("-dump")
                    .trim_end_matches("dump"),
                human_bytes(size)
            ));
            fx.fingerprints.insert(
                format!("vendor.dump.{id}"),
                format!("reachable, server {version}"),
            );
            sf.estimate = Some(Estimate {
                bytes: Some(size),
                seconds: 2.0 + secs(size, 55e6),
                basis: "evidence queries plus a dump at ~55 MB/s of SQL (the 1 GB benchmark)"
                    .into(),
            });
            fx.local_bytes += size / 2;
            fx.dumped.insert(id.to_string(), size);
        }
        Ok(Err(e)) => {
            fx.fingerprints
                .insert(format!("vendor.dump.{id}"), "refused".into());
            fx.problem(
                Some(id),
                format!("the database cannot be read: {e}"),
                "check the database's name, user, password and host as seen from the vendor host",
            );
        }
        Err(_) => fx.problem(
            Some(id),
            "the database did not answer within 20 s",
            "check that the database server runs on the vendor host",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_command_prunes_exclusions_quoted() {
        let c = size_command("/srv/a b", &["storage/logs/".into(), "x'y".into()]);
        assert!(c.starts_with("P='/srv/a b';"), "{c}");
        assert!(
            c.contains("\\( -path './storage/logs' -o -path './x'\\''y' \\) -prune -o -type f"),
            "{c}"
        );
    }

    #[test]
    fn trees_parse() {
        let t = parse_tree("dir 42 123456 1700000000\n").expect("parses");
        assert_eq!((t.files, t.bytes, t.newest), (42, 123_456, 1_700_000_000));
        assert_eq!(
            parse_tree("missing\n").map(|t| t.kind),
            Some("missing".into())
        );
        assert!(parse_tree("dir x").is_none());
    }
}
