//! `boyong archive APP`: a migration run's verified artifacts in one tarball for the
//! records, kept on the government side before anything is deleted from the vendor.
//!
//! Layout: `apps/<app>/archives/<run>.tar` holds `<run>/playbook.yml`, `plan.json`
//! (and each later version's `playbook.vN.yml`, `plan.vN.json`), `journal.jsonl`,
//! `report.md`, every file under `artifacts/` (links as links), and
//! `<run>/SHA256SUMS` last (every other file's SHA-256, `sha256sum -c` reads it);
//! `<run>.tar.sha256` beside it is the tarball's own digest in `sha256sum` form.
//!
//! Invariants: a run's artifacts are checked against their manifests before they are
//! packed (a fetched tree file by file, a dump and its evidence), so the archive holds
//! only verified bytes; the tarball is written under a temporary name and renamed once
//! complete and synced, so an archive that exists is whole.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::artifact::manifest;
use crate::engine::state::{RunDir, StateDir};
use crate::playbook::{Playbook, StepKind};

/// An archive that exists and whose digest matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// The tarball.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Where run `run`'s archive is: the tarball and its digest file.
///
/// # Errors
/// An invalid app name.
pub fn paths(dir: &StateDir, app: &str, run: &str) -> Result<(PathBuf, PathBuf), String> {
    let d = dir
        .app_dir(app)
        .map_err(|e| e.to_string())?
        .join("archives");
    Ok((
        d.join(format!("{run}.tar")),
        d.join(format!("{run}.tar.sha256")),
    ))
}

/// The archive of run `run`, if it exists and its tarball's SHA-256 is the one recorded.
///
/// # Errors
/// No archive, or one that does not verify, saying which.
pub fn verify(dir: &StateDir, app: &str, run: &str) -> Result<Archive, String> {
    let (tar, sum) = paths(dir, app, run)?;
    let recorded = fs::read_to_string(&sum)
        .map_err(|_| format!("no archive of run {run} ({} is missing)", sum.display()))?;
    let want = recorded
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let (got, bytes) = crate::digest::file_sha256(&tar)
        .map_err(|e| format!("the archive {} cannot be read: {e}", tar.display()))?;
    if got != want {
        return Err(format!(
            "the archive {} does not verify: its SHA-256 is {got}, {} records {want}",
            tar.display(),
            sum.display()
        ));
    }
    Ok(Archive {
        path: tar,
        sha256: got,
        bytes,
    })
}

/// Checks each artifact of `pb`'s run against its manifest.
///
/// # Errors
/// The first artifact that is missing or differs.
pub fn verify_artifacts(pb: &Playbook, run: &RunDir) -> Result<(), String> {
    let a = run.artifacts_dir();
    for step in &pb.steps {
        match &step.kind {
            StepKind::Fetch(_) => {
                let read = |ext: &str| {
                    let p = a.join(format!("{}.{ext}", step.id));
                    fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
                };
                let tree = manifest::parse(&read("manifest")?, &read("tree")?)?;
                manifest::verify(&a.join(&step.id), &tree)
                    .map_err(|e| format!("step `{}`: {e}", step.id))?;
            }
            StepKind::Dump(_) => {
                crate::steps::dump::artifact::verify(&a, &step.id)
                    .map_err(|e| format!("step `{}`: {e}", step.id))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Packs run `run` (verified first) with `report_md` into its archive; replaces none.
///
/// # Errors
/// An artifact that does not verify, an archive that exists already, or the file system.
pub fn create(
    dir: &StateDir,
    pb: &Playbook,
    run: &RunDir,
    report_md: &str,
) -> Result<Archive, String> {
    verify_artifacts(pb, run)?;
    let id = run.id().as_str();
    let (tar_path, sum_path) = paths(dir, &pb.app, id)?;
    if sum_path.exists() {
        return Err(format!(
            "run {id} is archived already: {} (it is never overwritten)",
            tar_path.display()
        ));
    }
    let parent = tar_path.parent().unwrap_or(Path::new("."));
    super::mkdir_private(parent)?;
    let partial = parent.join(format!("{id}.tar.partial"));
    let written = write_tar(&partial, run, report_md);
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &tar_path).map_err(|e| format!("{}: {e}", tar_path.display()))?;
    let (sha, bytes) = crate::digest::file_sha256(&tar_path)
        .map_err(|e| format!("{}: {e}", tar_path.display()))?;
    let name = tar_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    super::write_private(&sum_path, format!("{sha}  {name}\n").as_bytes())?;
    Ok(Archive {
        path: tar_path,
        sha256: sha,
        bytes,
    })
}

/// The files of a run to pack, relative to its directory, sorted.
fn files(run: &RunDir) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = ["playbook.yml", "plan.json", "journal.jsonl", "log.jsonl"]
        .iter()
        .map(PathBuf::from)
        .chain((2..=run.version()).flat_map(|n| {
            [run.playbook_version_path(n), run.plan_version_path(n)]
                .into_iter()
                .filter_map(|p| p.file_name().map(PathBuf::from))
        }))
        .filter(|p| run.path().join(p).is_file())
        .collect();
    let mut stack = vec![PathBuf::from("artifacts")];
    let mut found = Vec::new();
    while let Some(rel) = stack.pop() {
        let abs = run.path().join(&rel);
        let entries = fs::read_dir(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("{}: {e}", abs.display()))?;
            let rel = rel.join(e.file_name());
            let t = e
                .file_type()
                .map_err(|e| format!("{}: {e}", rel.display()))?;
            if t.is_dir() {
                stack.push(rel);
            } else if t.is_file() || t.is_symlink() {
                found.push(rel);
            }
        }
    }
    found.sort();
    out.extend(found);
    Ok(out)
}

fn write_tar(path: &Path, run: &RunDir, report_md: &str) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?
    };
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let id = run.id().as_str();
    let mut sums = String::new();
    for rel in files(run)? {
        let abs = run.path().join(&rel);
        let name = Path::new(id).join(&rel);
        let meta = fs::symlink_metadata(&abs).map_err(err)?;
        if meta.is_file() {
            let (sha, _) = crate::digest::file_sha256(&abs).map_err(err)?;
            let _ = writeln!(sums, "{sha}  {}", rel.display());
        }
        tar.append_path_with_name(&abs, &name).map_err(err)?;
    }
    let mut add = |rel: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, Path::new(id).join(rel), bytes)
            .map_err(err)
    };
    add("report.md", report_md.as_bytes())?;
    let _ = writeln!(
        sums,
        "{}  report.md",
        crate::digest::sha256_hex(report_md.as_bytes())
    );
    add("SHA256SUMS", sums.as_bytes())?;
    let inner = tar.into_inner().map_err(err)?;
    let file = inner.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::engine::state::StateDir;

    #[test]
    fn every_version_of_an_edited_run_is_packed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_348_981);
        let run = state.create_run("web", at, 1).unwrap();
        for f in [
            "playbook.yml",
            "plan.json",
            "journal.jsonl",
            "playbook.v2.yml",
            "plan.v2.json",
        ] {
            fs::write(run.path().join(f), f).unwrap();
        }
        fs::write(run.artifacts_dir().join("code.manifest"), "m").unwrap();
        let names: Vec<String> = files(&run)
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for f in ["playbook.v2.yml", "plan.v2.json", "artifacts/code.manifest"] {
            assert!(names.iter().any(|n| n == f), "{f} not in {names:?}");
        }
    }
}
