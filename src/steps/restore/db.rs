//! What a `restore` does inside its database container: waits for the server, runs the
//! evidence queries, and loads the dump (decompressed, DEFINERs rewritten) through the
//! exec's stdin, from the complete artifact or from one still being written (a pipelined
//! pair: [`crate::engine::stream`]).
//!
//! Invariants: memory stays bounded whatever the dump's size (pieces of 256 KiB, a
//! bounded channel); nothing is written to disk; passwords reach the clients through the
//! exec's environment, never a command line.

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::docker::Docker;
use crate::engine::{StepCx, StepError};
use crate::steps::common::docker_err;
use crate::steps::db::{Conn, Dialect, Evidence, rewrite_definer};

/// Runs a query in the container, its SQL on the client's stdin; its output.
pub(super) async fn query(
    engine: &Docker,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
    sql: &str,
) -> Result<String, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    // Room for one piece: sent before the exec starts, then the end.
    let _ = tx.try_send(Bytes::from(format!("{sql};\n")));
    drop(tx);
    let out = engine
        .exec_io(name, &dialect.container_query(c), env, Some(rx), 64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if out.code == 0 {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The restored database's evidence: the same queries as on the vendor host, the counts in
/// one batch (its SQL goes on stdin, so any number of tables fits).
pub(super) async fn evidence(
    engine: &Docker,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
) -> Result<Evidence, StepError> {
    let fail = |e: String| StepError::Fatal(format!("the evidence query in `{name}` failed: {e}"));
    let out = query(engine, name, dialect, c, env, dialect.tables_sql())
        .await
        .map_err(fail)?;
    let (version, tables) = dialect.parse_tables(&out).map_err(fail)?;
    let mut out = String::new();
    for sql in dialect.counts_sql(&tables, usize::MAX) {
        out.push_str(
            &query(engine, name, dialect, c, env, &sql)
                .await
                .map_err(fail)?,
        );
        out.push('\n');
    }
    dialect
        .parse_counts(version, &tables, &out)
        .map_err(StepError::Fatal)
}

/// Waits until the server in `name` takes logins over TCP (after its first-start
/// initialisation), or says why not.
pub(super) async fn wait_ready(
    engine: &Docker,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
    limit: Duration,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let t0 = Instant::now();
    let mut last = String::new();
    // Said once, not every half second.
    let mut said = false;
    loop {
        match engine.container(name).await.map_err(docker_err)? {
            Some(s) if s.running => {}
            _ => {
                return Err(StepError::fatal(format!(
                    "the database container `{name}` stopped while starting (see `docker logs {name}`){}",
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                )));
            }
        }
        match query(engine, name, dialect, c, env, "SELECT 1").await {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        if t0.elapsed() >= limit {
            return Err(StepError::fatal(format!(
                "the database in `{name}` did not take logins within {}s: {last}",
                limit.as_secs()
            )));
        }
        if !said {
            cx.output("waiting for the database server to start");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads the dump from `src`, decompressed (and, for MariaDB/MySQL, with DEFINER clauses
/// made the app's user), in chunks for the container's stdin; the SQL's size, and `src`
/// back (a follower knows what it read).
pub(super) fn feed<R: std::io::Read>(
    src: R,
    dialect: Dialect,
    definer: &[u8],
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> std::io::Result<(u64, R)> {
    use std::io::Read as _;
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, src));
    if dialect == Dialect::Pg {
        // Passed through as it is, in pieces of bounded size whatever a line's length.
        let mut gz = gz;
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            let n = gz.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            buf.truncate(n);
            if tx.blocking_send(Bytes::from(buf)).is_err() {
                break;
            }
        }
        return Ok((total, gz.into_inner().into_inner()));
    }
    let mut r = std::io::BufReader::with_capacity(1 << 20, gz);
    let mut chunk = Vec::with_capacity(512 * 1024);
    let mut line = Vec::new();
    let mut total = 0u64;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        chunk.extend_from_slice(&rewrite_definer(&line, definer));
        if chunk.len() >= 256 * 1024 {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(512 * 1024));
            if tx.blocking_send(Bytes::from(full)).is_err() {
                break;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Bytes::from(chunk));
    }
    Ok((total, r.into_inner().into_inner().into_inner()))
}
