//! `boyong journal verify APP [--run ID]`: checks a run journal's hash chain and, for a
//! keyed journal, every line's MAC. Exit status 0 when intact (a torn last line, which a
//! resume drops, is intact), 1 when BROKEN or unreadable, 2 for an unknown app or run.
//!
//! Also owns finding this installation's journal key ([`key`]): `BOYONG_JOURNAL_KEY_FILE`,
//! else `$XDG_CONFIG_HOME/boyong/journal.key`, else `~/.config/boyong/journal.key`;
//! created (0600, 32 random bytes as hex) on first use. Invariant: the key is never inside
//! the state directory (someone who can write the state directory alone must not be able
//! to re-seal a journal), never printed, and a key file others can read is refused.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use boyong::engine::journal::{self, JournalKey, Keying};
use boyong::engine::open::find_run;
use boyong::engine::state::StateDir;

use super::error::{CliError, Result};

/// `boyong journal verify`.
pub fn verify(state: &Path, app: &str, run: Option<&str>) -> Result {
    const CMD: &str = "boyong journal verify";
    let dir = StateDir::new(state);
    let path = find_run(&dir, app, run)
        .map_err(|e| CliError::no_run(CMD, &e))?
        .journal_path();
    let key = key(state, CMD)?;
    let report = journal::verify_keyed(&path, Some(&key))
        .map_err(|e| CliError::failed(format!("{CMD}: {e}")))?;
    let head = report.head_sha256.as_deref().unwrap_or("-");
    let keying = match report.keying {
        Keying::Unkeyed => {
            "unkeyed (no MACs: written by an earlier release or without a key; its chain proves order, not authorship)"
        }
        other => other.word(),
    };
    match &report.problem {
        None => println!(
            "{}: intact, {} lines, {keying}, chain head sha256 {head}",
            path.display(),
            report.lines
        ),
        Some(p) if report.is_intact() => println!(
            "{}: intact, {} lines, {keying}, chain head sha256 {head} ({p}: a crash cut the last write; it is dropped on resume)",
            path.display(),
            report.lines
        ),
        Some(p) => {
            return Err(
                CliError::failed(format!("{}: BROKEN: {p}", path.display())).hint(
                    "the journal was changed after it was written; keep a copy for the auditors before anything else",
                ),
            );
        }
    }
    Ok(())
}

/// Where this installation's journal key is.
fn key_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("BOYONG_JOURNAL_KEY_FILE") {
        return Some(PathBuf::from(p));
    }
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("boyong").join("journal.key"))
}

/// This installation's journal key, created on first use (see the module's doc).
pub fn key(state: &Path, cmd: &str) -> Result<JournalKey> {
    find_key(state, cmd, true)
        .and_then(|k| k.ok_or_else(|| CliError::failed(format!("{cmd}: journal key: not found"))))
}

/// This installation's journal key if there is one; never creates it (for commands that
/// must write nothing, such as `boyong decommission --plan`).
pub fn existing_key(state: &Path, cmd: &str) -> Result<Option<JournalKey>> {
    find_key(state, cmd, false)
}

fn find_key(state: &Path, cmd: &str, create: bool) -> Result<Option<JournalKey>> {
    let fail = |what: String| {
        CliError::failed(format!("{cmd}: journal key: {what}")).hint(
            "the key is found at BOYONG_JOURNAL_KEY_FILE, else $XDG_CONFIG_HOME/boyong/journal.key, else ~/.config/boyong/journal.key",
        )
    };
    let path = key_path()
        .ok_or_else(|| fail("no HOME, XDG_CONFIG_HOME or BOYONG_JOURNAL_KEY_FILE".into()))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    if let (Ok(p), Ok(s)) = (fs::canonicalize(parent), fs::canonicalize(state))
        && p.starts_with(&s)
    {
        return Err(fail(format!(
            "{} is inside the state directory {}: anyone who can write the state could re-seal a journal; keep it elsewhere",
            path.display(),
            s.display()
        )));
    }
    match fs::symlink_metadata(&path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(fail(format!("{} is not a regular file", path.display())));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(fail(format!(
                    "{} can be read or written by others (mode {:o}): `chmod 600` it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                )));
            }
            let text = fs::read_to_string(&path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
            JournalKey::from_hex(&text)
                .map(Some)
                .ok_or_else(|| fail(format!("{} does not hold 64 hex digits", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_key(&path).map(Some).map_err(fail)
        }
        Err(e) => Err(fail(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Key files this process began writing: each its own temporary name.
static KEYS_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes a new random key at `path` (0600, its directory 0700 if made). A key written
/// by another process in between wins: it is read back.
fn create_key(path: &Path) -> std::result::Result<JournalKey, String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let key = JournalKey::new(bytes);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Written whole under a name of this process, then linked into place: another
    // process never sees a key file half written, and a key linked first wins.
    let n = KEYS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("new-{}-{n}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fs::read_to_string(path)
            .ok()
            .and_then(|t| JournalKey::from_hex(&t))
            .ok_or_else(|| format!("{} does not hold 64 hex digits", path.display())),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::create_key;

    /// A batch's runs make the key at once: every one gets the same whole key, and no
    /// temporary file is left.
    #[test]
    fn runs_making_the_key_at_once_all_get_the_one_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state").join("journal.key");
        let keys: Vec<String> = std::thread::scope(|s| {
            let made: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create_key(&path).map(|k| k.to_hex())))
                .collect();
            made.into_iter()
                .map(|h| h.join().expect("joins").expect("a key"))
                .collect()
        });
        assert!(
            keys.iter().all(|k| k == &keys[0] && k.len() == 64),
            "{keys:?}"
        );
        let on_disk = std::fs::read_to_string(&path).expect("the key file");
        assert_eq!(on_disk.trim(), keys[0]);
        let files = std::fs::read_dir(path.parent().expect("dir"))
            .expect("lists")
            .count();
        assert_eq!(files, 1, "a temporary file was left");
    }
}
