//! `dump`: dump a database on the vendor host with its own tool, streamed back over SSH,
//! hashed and gzip-compressed as it arrives, with the vendor's evidence read meanwhile.
//!
//! Invariants: the password reaches the tools on their stdin, never a command line; the
//! artifact appears under its name only once complete and hashed (a per-attempt partial
//! file until then, removed on failure); in a pipelined pair, the partial file is
//! announced to its reader only once SQL arrives, each piece only once written, and the
//! end only with the manifest's hash.

use std::fs;
use std::io::{Read as _, Write};
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub(crate) mod artifact;
mod probe;
pub(crate) mod reuse;

pub(crate) use artifact::{dump_sha256, paths, verify};

use super::common::{ChunkReader, pump, remove_all, ssh_err, write_synced};
use super::db::{ARG_SQL_MAX, Conn, Dialect, Evidence};
use super::live::Live;
use super::probe::ProbeCx;
use super::{Described, Kind};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlanContext, PlannedStep, Resource, Undo};
use crate::playbook::{DbEngine, Dump, Step};
use crate::shell::quote;
use crate::ssh::{Out, Session};

/// The `dump` kind.
pub(crate) struct DumpStep;

impl Kind for DumpStep {
    type Spec = Dump;

    fn describe(step: &Step, spec: &Dump, _ctx: &PlanContext) -> Described {
        describe(step, spec)
    }

    fn reads_vendor(_spec: &Dump) -> bool {
        true
    }

    async fn probe(p: &mut ProbeCx<'_>, step: &PlannedStep, spec: &Dump) {
        match p.vendor {
            Some(v) => probe::database(v, p.live, step, spec, p.fx, p.sf).await,
            None => p.vendor_unreached(),
        }
    }

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Dump,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        execute(live, step, spec, cx).await
    }

    async fn still_valid(
        _live: &Live,
        step: &PlannedStep,
        facts: &Value,
        artifacts: &Path,
    ) -> Result<(), String> {
        artifact::still_valid(&step.id, facts, artifacts)
    }
}

fn describe(step: &Step, d: &Dump) -> Described {
    let consistency = match d.engine {
        DbEngine::Mariadb | DbEngine::Mysql => {
            "--single-transaction --routines --triggers --events --hex-blob, utf8mb4"
        }
        DbEngine::Postgres => "one snapshot",
    };
    let pw = if d.password.is_some() {
        "password *** through stdin, never on a command line"
    } else {
        "no password"
    };
    Described {
        reads: vec![format!(
            "{:?} database `{}` as `{}` at {}:{} on the vendor host, with {} ({consistency}; {pw})",
            d.engine, d.database, d.user, d.host, d.port, d.engine.dump_tool()
        )
        .to_lowercase()
        .replacen(&d.database.to_lowercase(), &d.database, 1)
        .replacen(&format!("`{}`", d.user.to_lowercase()), &format!("`{}`", d.user), 1)],
        changes: vec![Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Artifact,
            place: Place::Local,
            name: format!("artifacts/{}.sql.gz", step.id),
            details: vec![
                format!("SHA-256 in artifacts/{}.manifest", step.id),
                "row counts and checksums per table recorded as evidence".into(),
            ],
            condition: None,
            undo: "delete the artifact".into(),
        }],
    }
}

/// Runs `$0` (a command that reads an option file on its stdin) with stdin fed, by the
/// `printf` builtin, the line `$1` and then the first line this script reads on its own
/// stdin (the password line): the secret is never in an argument or the environment of
/// anything exec'd. The rest of stdin stays open while the command runs; when it ends
/// (boyong went away), the session's process group is stopped (`held_on_vendor!`).
const OPTIONS_FROM_STDIN: &str = concat!(
    r#"IFS= read -r __boyong_o || { echo "boyong: no options on stdin" >&2; exit 125; }
exec 3<&0
printf '%s\n%s\n' "$1" "$__boyong_o" | /bin/sh -c "$0" &
__boyong_o=
"#,
    held_on_vendor!()
);

/// A running client on the vendor host, its password fed off the command line.
async fn start(
    session: &Session,
    dialect: Dialect,
    command: &str,
    password_line: &str,
) -> Result<crate::ssh::Exec, StepError> {
    let line = format!(
        "sh -c {} {} {}",
        quote(OPTIONS_FROM_STDIN),
        quote(command),
        quote(dialect.option_header())
    );
    let stdin = format!("{password_line}\n");
    session
        .exec_held(&line, stdin.as_bytes())
        .await
        .map_err(ssh_err)
}

/// A failed client's error: bad credentials, an unknown database or a missing tool are
/// not retried; anything else (a dropped link) may be.
fn client_failed(what: &str, code: Option<u32>, stderr: &[u8]) -> StepError {
    let said = String::from_utf8_lossy(stderr).trim().to_string();
    let lower = said.to_ascii_lowercase();
    let msg = match code {
        Some(c) => format!("{what} failed on the vendor host (exit status {c}): {said}"),
        None => format!("{what}: the connection dropped before it finished"),
    };
    let lost = lower.contains("lost connection") || lower.contains("server closed the connection");
    if code.is_some() && !lost {
        StepError::Fatal(msg)
    } else {
        StepError::Failed(msg)
    }
}

/// Runs a query on the vendor host; its whole output.
pub(crate) async fn query(
    session: &Session,
    dialect: Dialect,
    conn: &Conn<'_>,
    password_line: &str,
    sql: &str,
) -> Result<String, StepError> {
    let mut run = start(
        session,
        dialect,
        &dialect.query_command(conn, sql),
        password_line,
    )
    .await?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = run.next().await {
        match o {
            // Evidence is a few lines a table: a bound, not a buffer that grows.
            Out::Stdout(b) if out.len() < 64 << 20 => out.extend_from_slice(&b),
            Out::Stdout(_) => {
                return Err(StepError::fatal(
                    "the evidence query's output exceeds 64 MiB",
                ));
            }
            Out::Stderr(b) if err.len() < 64 * 1024 => err.extend_from_slice(&b),
            Out::Stderr(_) => {}
        }
    }
    match run.exit_status() {
        Ok(0) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Ok(c) => Err(client_failed("the evidence query", Some(c), &err)),
        Err(_) => Err(client_failed("the evidence query", None, &err)),
    }
}

/// Row counts and checksums of every base table, as the vendor's server has them: the
/// tables listed, then counted in batches whose SQL fits on a command line, one after the
/// other on channels of the same session.
async fn evidence(
    session: &Session,
    dialect: Dialect,
    conn: &Conn<'_>,
    password_line: &str,
) -> Result<Evidence, StepError> {
    let out = query(session, dialect, conn, password_line, dialect.tables_sql()).await?;
    let (version, tables) = dialect.parse_tables(&out).map_err(StepError::Fatal)?;
    let mut out = String::new();
    for sql in dialect.counts_sql(&tables, ARG_SQL_MAX) {
        out.push_str(&query(session, dialect, conn, password_line, &sql).await?);
        out.push('\n');
    }
    dialect
        .parse_counts(version, &tables, &out)
        .map_err(StepError::Fatal)
}

/// What a dump writes, and its hashes.
struct Written {
    sql_sha256: String,
    gz_sha256: String,
    sql_bytes: u64,
    gz_bytes: u64,
}

/// Compresses the SQL as it arrives into `path`, hashing both the SQL and the file. With
/// a `feed` (a restore reads the file as it grows), the file is announced once the first
/// SQL arrives, and each piece reported once it is written to the file.
fn write_gz(
    reader: ChunkReader,
    path: &Path,
    feed: Option<&crate::engine::stream::Feed>,
) -> std::io::Result<Written> {
    struct Hashing<W> {
        inner: W,
        hash: Sha256,
        bytes: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hash.update(&buf[..n]);
            self.bytes += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    /// The file, telling the feed how much of it is written.
    struct Reporting<'f> {
        file: fs::File,
        feed: Option<&'f crate::engine::stream::Feed>,
        bytes: u64,
    }
    impl Write for Reporting<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.file.write(buf)?;
            self.bytes += n as u64;
            if let Some(f) = self.feed {
                f.wrote(self.bytes);
            }
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }
    let file = super::common::private_file(path)?;
    // For the reader: the partial file is renamed or removed before it may get to it.
    let mut reading = match feed {
        Some(_) => Some(fs::File::open(path)?),
        None => None,
    };
    let out = Hashing {
        inner: std::io::BufWriter::with_capacity(
            1 << 20,
            Reporting {
                file,
                feed,
                bytes: 0,
            },
        ),
        hash: Sha256::new(),
        bytes: 0,
    };
    // Level 1: the link, not the compressor, should be the limit (~150 MB/s on one core).
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut sql = Hashing {
        inner: std::io::sink(),
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut reader = reader;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(f) = feed
            && let Some(r) = reading.take()
        {
            f.begin(path, Some(r));
        }
        sql.write_all(&buf[..n])?;
        // A reader following the file gets it 1 MiB (the buffer) at a time.
        gz.write_all(&buf[..n])?;
    }
    let out = gz.finish()?;
    let reporting = out
        .inner
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    reporting.file.sync_all()?;
    Ok(Written {
        sql_sha256: crate::digest::hex(&sql.hash.finalize()),
        gz_sha256: crate::digest::hex(&out.hash.finalize()),
        sql_bytes: sql.bytes,
        gz_bytes: out.bytes,
    })
}

/// Dumps: one stream over SSH, compressed and hashed as it arrives, into a partial file
/// renamed into place once the tool said it finished well; meanwhile the evidence (row
/// counts and checksums) is read on a second channel. In a pipelined pair, the partial
/// file is announced to the restore that reads it as it grows, and finished with its hash.
async fn execute(
    live: &Live,
    step: &PlannedStep,
    d: &Dump,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let dialect = Dialect::of(d.engine);
    let password = d
        .password
        .as_ref()
        .map(|t| t.resolve(cx.secrets()))
        .transpose()
        .map_err(StepError::Fatal)?;
    let password_line = dialect
        .password_line(password.as_ref())
        .map_err(StepError::Fatal)?;
    let conn = Conn {
        host: &d.host,
        port: d.port,
        user: &d.user,
        database: &d.database,
    };
    // `--reuse-artifacts`: an earlier run's verified dump with the same inputs, copied in.
    let inputs = reuse::inputs(live, d).ok();
    if let Some(key) = &inputs
        && let Some(facts) = reuse::reuse(step, key, cx).await?
    {
        return Ok(facts);
    }
    let artifacts = cx.artifacts().to_path_buf();
    let [gz_path, manifest_path, evidence_path] = paths(&artifacts, &step.id);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos());
    let partial = artifacts.join(format!("{}.sql.gz.partial-{nonce:x}", step.id));
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("a dump step lists its artifact"))?;
    let undo = Undo::RemoveArtifact {
        paths: vec![
            gz_path.clone(),
            partial.clone(),
            manifest_path.clone(),
            evidence_path.clone(),
        ],
    };
    let id = cx.intent(change, &undo)?;
    let scrap = [
        partial.clone(),
        manifest_path.clone(),
        evidence_path.clone(),
    ];
    let clean = |e: StepError| {
        let _ = remove_all(&scrap);
        e
    };
    fs::create_dir_all(&artifacts).map_err(|e| {
        clean(StepError::failed(format!(
            "cannot create {}: {e}",
            artifacts.display()
        )))
    })?;
    let session = live.vendor(Some(cx)).await?;
    let feed = cx.feed();

    // The dump streams while the evidence queries run on a second channel of the same
    // session: the evidence is not the dump's snapshot either way (docs/playbook.md).
    let mut run = start(
        &session,
        dialect,
        &dialect.dump_command(&conn),
        &password_line,
    )
    .await
    .map_err(clean)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let into = partial.clone();
    let writer_feed = feed.clone();
    let writing = tokio::task::spawn_blocking(move || {
        write_gz(
            ChunkReader {
                rx,
                cur: bytes::Bytes::new(),
            },
            &into,
            writer_feed.as_ref(),
        )
    });
    let (mut ev, mut pumped) = (None, None);
    {
        let querying = evidence(&session, dialect, &conn, &password_line);
        let pumping = async {
            let pumped = pump(&mut run, tx, cx).await;
            let ended_well = matches!(run.exit_status(), Ok(0));
            (pumped, ended_well)
        };
        tokio::pin!(querying, pumping);
        while ev.is_none() || pumped.is_none() {
            tokio::select! {
                r = &mut querying, if ev.is_none() => {
                    let failed = r.is_err();
                    ev = Some(r);
                    if failed {
                        // The dump is abandoned: its channel closes with `run`.
                        break;
                    }
                }
                (p, ended_well) = &mut pumping, if pumped.is_none() => {
                    pumped = Some(p);
                    if !ended_well {
                        // The dump failed (or its connection dropped): the evidence is
                        // of no use, and a query on a lost connection may never end.
                        break;
                    }
                }
            }
        }
    }
    let written = writing
        .await
        .map_err(|e| clean(StepError::failed(format!("the writing thread failed: {e}"))))?;
    let tool = dialect_tool(dialect);
    let Some((bytes, stderr)) = pumped else {
        match ev {
            Some(Err(e)) => return Err(clean(e)),
            _ => return Err(clean(StepError::failed("the dump did not end"))),
        }
    };
    let ev = match ev {
        Some(r) => r.map_err(clean)?,
        None => {
            return Err(clean(match run.exit_status() {
                Ok(0) => StepError::failed("the evidence queries did not end"),
                Ok(c) => client_failed(tool, Some(c), &stderr),
                Err(_) => client_failed(tool, None, &stderr),
            }));
        }
    };
    let loose = ev.non_transactional();
    if !loose.is_empty() {
        cx.output(&format!(
            "warning: {} not InnoDB ({}): a --single-transaction dump of them is not consistent while the app writes; freeze writes first with an `exec` step (maintenance mode) before this dump",
            if loose.len() == 1 { "a table is" } else { "tables are" },
            loose.join(", ")
        ));
    }
    cx.output(&format!(
        "{} tables, {} rows on {}",
        ev.tables.len(),
        ev.rows(),
        ev.server
    ));
    match run.exit_status() {
        Ok(0) => {}
        Ok(c) => return Err(clean(client_failed(tool, Some(c), &stderr))),
        Err(_) => return Err(clean(client_failed(tool, None, &stderr))),
    }
    // A full disk is not retried: the next attempt would meet it too.
    let written = written.map_err(|e| {
        clean(StepError::Fatal(format!(
            "cannot write {}: {e}",
            partial.display()
        )))
    })?;
    cx.progress(bytes, Some(bytes));
    let evidence_json =
        serde_json::to_vec_pretty(&ev).map_err(|e| clean(StepError::Fatal(e.to_string())))?;
    write_synced(&evidence_path, &evidence_json).map_err(|e| {
        clean(StepError::Fatal(format!(
            "cannot write {}: {e}",
            evidence_path.display()
        )))
    })?;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let manifest = format!(
        "{}  {}\n{}  {}\n",
        written.gz_sha256,
        name(&gz_path),
        crate::digest::hex(&Sha256::digest(&evidence_json)),
        name(&evidence_path)
    );
    write_synced(&manifest_path, manifest.as_bytes()).map_err(|e| {
        clean(StepError::Fatal(format!(
            "cannot write {}: {e}",
            manifest_path.display()
        )))
    })?;
    fs::rename(&partial, &gz_path).map_err(|e| {
        clean(StepError::failed(format!(
            "cannot move the dump into place: {e}"
        )))
    })?;
    // A restore reading the file as it grew checks what it read against this.
    if let Some(f) = &feed {
        f.finish(written.gz_bytes, &written.gz_sha256);
    }
    let facts = json!({
        "manifest_sha256": crate::digest::hex(&Sha256::digest(manifest.as_bytes())),
        "sql_gz_sha256": written.gz_sha256,
        "sql_sha256": written.sql_sha256,
        "sql_bytes": written.sql_bytes,
        "gz_bytes": written.gz_bytes,
        "server": ev.server,
        "tables": ev.tables.len(),
        "rows": ev.rows(),
        "not_transactional": loose,
        "inputs_sha256": inputs,
        "pulled_at": crate::engine::reuse::now_secs(),
    });
    cx.done(&id, &facts)?;
    Ok(facts)
}

fn dialect_tool(d: Dialect) -> &'static str {
    match d {
        Dialect::My(t) => t,
        Dialect::Pg => "pg_dump",
    }
}
