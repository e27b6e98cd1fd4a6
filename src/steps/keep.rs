//! Saving the data a rollback is about to remove, on real hosts ([`Keep`]): a restore's
//! database dumped by the engine's own tool inside its container (`mariadb-dump` or
//! `pg_dump`, through the engine's exec API), gzip'd into `rollback/STEP.sql.gz`; or a
//! volume copied as a tar (through a never-started helper container, as `replace: true`
//! saves one) into `rollback/STEP.VOLUME.tar`.
//!
//! Invariants: the password never reaches a command line: the dump tool reads it from an
//! environment variable that a shell inside the container sets from the container's own
//! environment (which already holds it, from the restore); a file is written under a
//! `.partial` name, fsync'd, and renamed only when complete (the tool exited 0), mode 0600
//! in a 0700 directory; memory stays bounded whatever the database's size.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::common::labels;
use super::live::Live;
use crate::docker::Docker;
use crate::engine::StepError;
use crate::engine::keep::{Keep, Kept};
use crate::playbook::DbEngine;

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
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

/// The dump command inside a database container: a shell that sets the tool's password
/// variable from the container's own environment and execs the tool, the database's name
/// its one argument (`$1`), never spliced into the script.
fn dump_command(engine: DbEngine, database: &str) -> Vec<String> {
    let script = match engine {
        DbEngine::Postgres => {
            r#"PGPASSWORD="${POSTGRES_PASSWORD:-$(cat "${POSTGRES_PASSWORD_FILE:-/dev/null}")}" exec pg_dump -w --no-owner --no-privileges --encoding=UTF8 --host=127.0.0.1 --port=5432 --username="${POSTGRES_USER:-postgres}" --dbname="$1""#
        }
        _ => {
            r#"tool=$(command -v mariadb-dump || command -v mysqldump) || { echo "no mariadb-dump or mysqldump in the container" >&2; exit 127; }
MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-$(cat "${MARIADB_ROOT_PASSWORD_FILE:-/dev/null}")}}" exec "$tool" --protocol=tcp --host=127.0.0.1 --port=3306 --user=root --single-transaction --quick --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --skip-dump-date -- "$1""#
        }
    };
    let arg = match engine {
        DbEngine::Postgres => super::db::pg_dbname(database),
        _ => database.to_string(),
    };
    vec![
        "sh".into(),
        "-c".into(),
        script.into(),
        "boyong-keep".into(),
        arg,
    ]
}

/// `rollback/` in `run_dir`, made mode 0700 if missing.
fn rollback_dir(run_dir: &Path) -> Result<(), StepError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir.join("rollback"))
        .map_err(|e| StepError::failed(format!("cannot make {}/rollback: {e}", run_dir.display())))
}

/// Dumps `database` from the running `container` into `dest` (gzip'd; under a partial
/// name until the tool exited 0); its size and SHA-256.
async fn dump(
    engine: &Docker,
    container: &str,
    db: DbEngine,
    database: &str,
    dest: &Path,
) -> Result<(u64, String), StepError> {
    let partial = dest.with_extension("gz.partial");
    let io = |e: std::io::Error| StepError::failed(format!("{}: {e}", partial.display()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io)?;
    let mut gz = flate2::write::GzEncoder::new(
        Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        },
        flate2::Compression::fast(),
    );
    let out = engine
        .exec_streamed(container, &dump_command(db, database), &[], &mut |b| {
            gz.write_all(b)
        })
        .await;
    let finished = async {
        let out = out.map_err(|e| StepError::failed(e.to_string()))?;
        if out.code != 0 {
            return Err(StepError::failed(format!(
                "the dump in `{container}` failed (exit status {}): {}",
                out.code,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let h = gz.finish().map_err(io)?;
        let file = h.inner.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, dest).map_err(io)?;
        Ok((h.bytes, crate::digest::hex(&h.hash.finalize())))
    }
    .await;
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

/// `rel` (under `run_dir`), or, when a file is there already (an earlier save of the same
/// step's data in this run: before a resume, then at a rollback), the first free one of
/// `NAME.2.EXT`, `NAME.3.EXT` …: a save never overwrites another, whose SHA-256 the
/// journal holds.
fn fresh(run_dir: &Path, rel: std::path::PathBuf) -> std::path::PathBuf {
    if !run_dir.join(&rel).exists() {
        return rel;
    }
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = [".sql.gz", ".tar"]
        .iter()
        .find_map(|e| name.strip_suffix(e).map(|s| (s.to_string(), *e)))
        .unwrap_or((name.clone(), ""));
    (2u32..=u32::MAX)
        .map(|n| rel.with_file_name(format!("{stem}.{n}{ext}")))
        .find(|c| !run_dir.join(c).exists())
        .unwrap_or(rel)
}

/// Saves `keep` into `run_dir`.
pub(super) async fn keep(live: &Live, keep: &Keep, run_dir: &Path) -> Result<Kept, StepError> {
    let engine = live.engine().await?;
    rollback_dir(run_dir)?;
    let run = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let labels = labels(live.extra_labels(), live.app(), &run, keep.step());
    let copy = |volume: &str, image: &str, rel: std::path::PathBuf| {
        let (engine, labels) = (engine.clone(), labels.clone());
        let helper = format!("{volume}.keep-{run}");
        let (volume, image) = (volume.to_string(), image.to_string());
        let rel = fresh(run_dir, rel);
        async move {
            if engine
                .volume_storage(&volume)
                .await
                .map_err(|e| StepError::failed(e.to_string()))?
                .is_none()
            {
                return Ok(Kept {
                    path: None,
                    bytes: 0,
                    sha256: String::new(),
                    note: format!("volume `{volume}` is gone: nothing to save"),
                });
            }
            let (sha256, bytes) = engine
                .snapshot_volume(&volume, &image, &helper, &labels, &run_dir.join(&rel))
                .await
                .map_err(|e| StepError::failed(format!("cannot copy volume `{volume}`: {e}")))?;
            Ok(Kept {
                note: format!("volume `{volume}` copied"),
                path: Some(rel),
                bytes,
                sha256,
            })
        }
    };
    match keep {
        Keep::Database {
            container: name,
            volume,
            image,
            engine: db,
            database,
            ..
        } => {
            // A database service's task container (`target.swarm`), or the container.
            let task = engine
                .task_container(name)
                .await
                .map_err(|e| StepError::failed(e.to_string()))?;
            let container = task.as_deref().unwrap_or(name);
            keep_database(
                &engine, keep, container, volume, image, *db, database, run_dir, copy,
            )
            .await
        }
        Keep::Volume { volume, image, .. } => copy(volume, image, keep.path()).await,
    }
}

/// The database of a [`Keep::Database`] dumped from `container`, or its volume copied
/// when it does not run.
#[expect(
    clippy::too_many_arguments,
    reason = "the keep's parts, borrowed apart"
)]
async fn keep_database<F, Fut>(
    engine: &crate::docker::Docker,
    keep: &Keep,
    container: &str,
    volume: &str,
    image: &str,
    db: DbEngine,
    database: &str,
    run_dir: &Path,
    copy: F,
) -> Result<Kept, StepError>
where
    F: Fn(&str, &str, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<Kept, StepError>>,
{
    match engine
        .container(container)
        .await
        .map_err(|e| StepError::failed(e.to_string()))?
    {
        Some(c) if c.running => {
            let rel = fresh(run_dir, keep.path());
            let (bytes, sha256) =
                dump(engine, container, db, database, &run_dir.join(&rel)).await?;
            Ok(Kept {
                note: format!("database `{database}` dumped from `{container}`"),
                path: Some(rel),
                bytes,
                sha256,
            })
        }
        Some(_) => {
            let mut kept = copy(volume, image, keep.volume_path()).await?;
            kept.note = format!("`{container}` does not run: {}", kept.note);
            Ok(kept)
        }
        None => copy(volume, image, keep.volume_path()).await.map(|mut k| {
            k.note = format!("`{container}` is gone: {}", k.note);
            k
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_never_takes_the_name_of_an_earlier_one() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("rollback")).expect("mkdir");
        let tar = std::path::PathBuf::from("rollback/web.files.tar");
        assert_eq!(fresh(d.path(), tar.clone()), tar);
        std::fs::write(d.path().join(&tar), "first").expect("write");
        let second = fresh(d.path(), tar.clone());
        assert_eq!(second, std::path::PathBuf::from("rollback/web.files.2.tar"));
        std::fs::write(d.path().join(&second), "second").expect("write");
        assert_eq!(
            fresh(d.path(), tar),
            std::path::PathBuf::from("rollback/web.files.3.tar")
        );
        let sql = std::path::PathBuf::from("rollback/database.sql.gz");
        std::fs::write(d.path().join(&sql), "dump").expect("write");
        assert_eq!(
            fresh(d.path(), sql),
            std::path::PathBuf::from("rollback/database.2.sql.gz")
        );
    }

    #[test]
    fn the_dump_command_holds_no_password_and_the_name_only_as_an_argument() {
        let name = "db'; DROP TABLE x; --";
        for engine in [DbEngine::Mariadb, DbEngine::Postgres] {
            let cmd = dump_command(engine, name);
            assert_eq!(&cmd[..2], ["sh", "-c"]);
            assert!(!cmd[2].contains(name), "{cmd:?}");
            assert!(cmd[4].contains("DROP TABLE x"), "{cmd:?}");
            assert!(cmd[2].contains("\"$1\""), "{cmd:?}");
        }
        assert!(
            dump_command(DbEngine::Mariadb, "x")[2].contains("MYSQL_PWD=\"${MARIADB_ROOT_PASSWORD")
        );
        // A database service's password is a file (`target.swarm`).
        assert!(dump_command(DbEngine::Mariadb, "x")[2].contains("${MARIADB_ROOT_PASSWORD_FILE"));
        assert!(dump_command(DbEngine::Postgres, "x")[2].contains("${POSTGRES_PASSWORD_FILE"));
        assert!(
            dump_command(DbEngine::Postgres, "x")[2].contains("PGPASSWORD=\"${POSTGRES_PASSWORD:-")
        );
    }
}
