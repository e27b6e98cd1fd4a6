//! The commands a decommission runs on the vendor host, over the run's SSH session.
//!
//! Owns: the read-only re-hash of a fetched path (`find … | sha256sum`), its removal
//! (`rm -rf -- PATH`, only for a path [`safe_path`] accepts), the check that it is gone
//! (`test ! -e`), and the database's `DROP DATABASE` and its check, through the dump's
//! own client (its password in an option file on stdin, never on a command line).
//!
//! Invariants: every value on a command line is shell-quoted ([`crate::shell::quote`]);
//! nothing here touches a path or a database the caller did not name.

use crate::shell::quote;
use crate::ssh::{Out, Session};
use crate::steps::db::{Conn, Dialect};

/// Whether `path` may be removed: absolute, not `/`, no `..` or `.` component, no
/// empty component (`//`), no control character.
pub fn safe_path(path: &str) -> Result<(), String> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    if trimmed.is_empty() {
        return Err("refusing to remove `/`".into());
    }
    if path.chars().any(char::is_control) {
        return Err(format!("`{path}` holds a control character"));
    }
    for part in trimmed[1..].split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!(
                "`{path}` has an empty, `.` or `..` component: only a plain absolute path is removed"
            ));
        }
    }
    Ok(())
}

/// Runs `command` on the vendor host with `stdin`; its exit status, stdout and stderr
/// (stdout bounded at 256 MiB, stderr at 64 KiB).
pub(super) async fn run(
    session: &Session,
    command: &str,
    stdin: &[u8],
) -> Result<(u32, Vec<u8>, String), String> {
    let exec = session
        .exec_held(command, stdin)
        .await
        .map_err(|e| e.to_string())?;
    collect(exec, command).await
}

/// [`run`], but `stdin` ends after `input` (EOF), for a command that reads all of it
/// (`crontab -`).
pub(super) async fn run_input(
    session: &Session,
    command: &str,
    input: &[u8],
) -> Result<(u32, Vec<u8>, String), String> {
    let exec = session
        .exec(command, Some(input))
        .await
        .map_err(|e| e.to_string())?;
    collect(exec, command).await
}

async fn collect(
    mut exec: crate::ssh::Exec,
    command: &str,
) -> Result<(u32, Vec<u8>, String), String> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = exec.next().await {
        match o {
            Out::Stdout(b) if out.len() < 256 << 20 => out.extend_from_slice(&b),
            Out::Stdout(_) => return Err("the vendor's listing exceeds 256 MiB".into()),
            Out::Stderr(b) if err.len() < 64 * 1024 => err.extend_from_slice(&b),
            Out::Stderr(_) => {}
        }
    }
    let code = exec
        .exit_status()
        .map_err(|e| format!("the connection dropped before `{command}` finished: {e}"))?;
    Ok((code, out, String::from_utf8_lossy(&err).trim().to_string()))
}

/// The read-only command that hashes every regular file under `path` (or the file
/// itself), names relative to it, as `sha256sum` writes them; exit 66 if it is gone.
#[must_use]
pub fn hash_command(path: &str) -> String {
    let (dir, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => (".", path),
    };
    format!(
        "P={}; if [ -d \"$P\" ]; then cd \"$P\" && find . -type f -print0 | LC_ALL=C xargs -0r sha256sum; \
         elif [ -e \"$P\" ]; then cd {} && sha256sum {}; else exit 66; fi",
        quote(path),
        quote(dir),
        quote(&format!("./{name}"))
    )
}

/// What the vendor has under `path` now: `(name, sha256)`; `None` when it is gone.
///
/// # Errors
/// The command failed, or the connection dropped.
pub async fn hash_now(
    session: &Session,
    path: &str,
) -> Result<Option<Vec<(Vec<u8>, String)>>, String> {
    let (code, out, err) = run(session, &hash_command(path), b"").await?;
    match code {
        0 => Ok(Some(
            crate::artifact::manifest::parse_sums(&out)
                .into_iter()
                .map(|(n, h)| (n.strip_prefix(b"./").map_or(n.clone(), <[u8]>::to_vec), h))
                .collect(),
        )),
        66 => Ok(None),
        c => Err(format!(
            "hashing {path} on the vendor host failed (exit status {c}): {err}"
        )),
    }
}

/// Removes `path` (`rm -rf --`), once [`safe_path`] accepts it.
///
/// # Errors
/// A refused path, or the command's failure.
pub async fn remove_path(session: &Session, path: &str) -> Result<(), String> {
    safe_path(path)?;
    let (code, _, err) = run(session, &format!("rm -rf -- {}", quote(path)), b"").await?;
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "`rm -rf` of {path} failed on the vendor host (exit status {code}): {err}"
        ))
    }
}

/// Whether `path` is gone (`test ! -e` and `! -L`), read-only.
///
/// # Errors
/// The connection dropped.
pub async fn path_gone(session: &Session, path: &str) -> Result<bool, String> {
    let p = quote(path);
    let (code, _, _) = run(session, &format!("test ! -e {p} && test ! -L {p}"), b"").await?;
    Ok(code == 0)
}

/// Runs `sql` through the database's own client on the vendor host, connected to
/// `conn` (its password line on stdin, see [`Dialect::password_line`]); its output.
///
/// # Errors
/// The client's failure, or the connection dropped.
pub async fn sql(
    session: &Session,
    dialect: Dialect,
    conn: &Conn<'_>,
    password_line: &str,
    sql: &str,
) -> Result<String, String> {
    crate::steps::dump_query(session, dialect, conn, password_line, sql)
        .await
        .map_err(|e| e.to_string())
}
