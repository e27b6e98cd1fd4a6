//! Safe, single-pass unpacking of a tar stream.
//!
//! Every regular file is hashed while it is written, so the tree's description comes
//! out of the same pass as the files. Refused (the whole unpack fails, naming the
//! entry): absolute paths, `..`, a write below a path that is not a directory this
//! unpack created (so never through a symlink), device nodes and fifos, hard links to
//! anything but a file unpacked before, the same path twice. Kept: symlinks, as links
//! (never followed), and permission bits without setuid, setgid and sticky bits, with
//! the owner always able to read and write. Owners and times are not restored.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::hasher;
use super::manifest::{Node, Tree};

/// Why an unpack failed.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry was refused.
    #[error("refused entry `{path}`: {why}")]
    Refused {
        /// The entry's path as in the archive.
        path: String,
        /// Why.
        why: String,
    },
    /// The stream is not a valid tar archive, or ended early.
    #[error("bad archive: {0}")]
    Archive(String),
    /// Writing failed (a full disk, permissions).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

/// What an unpack produced.
#[derive(Debug, Clone, Default)]
pub struct Unpacked {
    /// Every entry.
    pub tree: Tree,
    /// Symlinks whose target leaves the tree (absolute, or climbing out): `(path, target)`.
    pub links_outside: Vec<(String, String)>,
    /// Entries whose setuid, setgid or sticky bit was dropped.
    pub special_bits_dropped: Vec<String>,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Each regular file's modification time on the vendor host (seconds, from its
    /// header): what the next pull compares to find what changed.
    pub mtimes: std::collections::BTreeMap<Vec<u8>, i64>,
}

fn refused(path: &[u8], why: impl Into<String>) -> UnpackError {
    UnpackError::Refused {
        path: String::from_utf8_lossy(path).into_owned(),
        why: why.into(),
    }
}

/// The entry's path made relative and plain: `./a/b` → `a/b`; `None` for the root.
fn clean(raw: &[u8]) -> Result<Option<PathBuf>, UnpackError> {
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(raw, "an absolute path"));
            }
            Component::ParentDir => return Err(refused(raw, "a path with `..`")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Whether a link at `path` (bytes, relative) pointing to `target` stays inside the tree.
pub(crate) fn stays_inside_bytes(path: &[u8], target: &[u8]) -> bool {
    stays_inside(Path::new(std::ffi::OsStr::from_bytes(path)), target)
}

/// Whether a link at `path` pointing to `target` stays inside the tree.
fn stays_inside(path: &Path, target: &[u8]) -> bool {
    let t = Path::new(std::ffi::OsStr::from_bytes(target));
    if t.is_absolute() {
        return false;
    }
    let mut depth = i64::try_from(path.components().count()).unwrap_or(i64::MAX) - 1;
    for c in t.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

struct Writer<'a> {
    root: &'a Path,
    dirs: BTreeSet<PathBuf>,
    out: Unpacked,
    buf: Vec<u8>,
}

impl Writer<'_> {
    fn write_err(&self, rel: &Path) -> impl FnOnce(io::Error) -> UnpackError {
        let path = self.root.join(rel).display().to_string();
        move |source| UnpackError::Write { path, source }
    }

    /// Makes sure every parent of `rel` is a directory this unpack created.
    fn parents(&mut self, rel: &Path, raw: &[u8]) -> Result<(), UnpackError> {
        let mut cur = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            cur.push(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(self.root.join(&cur)) {
                Ok(_) => {
                    return Err(refused(
                        raw,
                        format!(
                            "`{}` is not a directory of this archive (a link or a file): nothing is written through it",
                            cur.display()
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(self.root.join(&cur)).map_err(self.write_err(&cur))?;
                    fs::set_permissions(self.root.join(&cur), fs::Permissions::from_mode(0o755))
                        .map_err(self.write_err(&cur))?;
                    self.dirs.insert(cur.clone());
                    self.out.tree.insert(
                        cur.as_os_str().as_bytes().to_vec(),
                        Node::Dir { mode: 0o755 },
                    );
                }
                Err(e) => return Err(self.write_err(&cur)(e)),
            }
        }
        Ok(())
    }

    fn mode(&mut self, rel: &Path, mode: u32, floor: u32) -> u32 {
        if mode & 0o7000 != 0 {
            self.out
                .special_bits_dropped
                .push(rel.display().to_string());
        }
        (mode & 0o755) | floor
    }

    fn file(
        &mut self,
        rel: &Path,
        raw: &[u8],
        mode: u32,
        declared: u64,
        mut data: impl Read,
    ) -> Result<(), UnpackError> {
        let mode = self.mode(rel, mode, 0o600);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nofollow())
            .open(self.root.join(rel))
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => refused(raw, "the same path twice"),
                _ => self.write_err(rel)(e),
            })?;
        let (size, sha256) = if declared >= hasher::PARALLEL_FROM {
            hasher::write_hashed(data, &mut f).map_err(|e| match e {
                hasher::CopyError::Read(e) => UnpackError::Archive(e.to_string()),
                hasher::CopyError::Write(e) => self.write_err(rel)(e),
            })?
        } else {
            let mut h = Sha256::new();
            let mut size = 0u64;
            loop {
                let n = data
                    .read(&mut self.buf)
                    .map_err(|e| UnpackError::Archive(e.to_string()))?;
                if n == 0 {
                    break;
                }
                h.update(&self.buf[..n]);
                f.write_all(&self.buf[..n]).map_err(self.write_err(rel))?;
                size += n as u64;
            }
            (size, h.finalize().into())
        };
        // The umask may have narrowed the mode given at creation.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(self.write_err(rel))?;
        self.out.bytes += size;
        self.out.tree.insert(
            rel.as_os_str().as_bytes().to_vec(),
            Node::File {
                sha256: crate::digest::hex(&sha256),
                size,
                mode,
            },
        );
        Ok(())
    }
}

/// O_NOFOLLOW, whose value differs between Linux architectures. (`create_new`, i.e.
/// O_EXCL, already refuses a symlink; this is a second guard.)
fn nofollow() -> i32 {
    if cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
        0o100_000
    } else {
        0o400_000
    }
}

/// Unpacks the tar stream `reader` into `root` (which must exist and be empty).
///
/// # Errors
/// The first refused entry, a malformed archive, or a write error. What was written
/// before stays; the caller removes the directory.
pub fn unpack(reader: impl Read, root: &Path) -> Result<Unpacked, UnpackError> {
    let mut w = Writer {
        root,
        dirs: BTreeSet::from([PathBuf::new()]),
        out: Unpacked::default(),
        buf: vec![0u8; 256 * 1024],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| UnpackError::Archive(e.to_string()))?;
    for entry in entries {
        let mut e = entry.map_err(|e| UnpackError::Archive(e.to_string()))?;
        let raw = e.path_bytes().into_owned();
        let Some(rel) = clean(&raw)? else {
            continue; // the root directory itself
        };
        let header_mode = e
            .header()
            .mode()
            .map_err(|x| UnpackError::Archive(x.to_string()))?;
        let kind = e.header().entry_type();
        w.parents(&rel, &raw)?;
        let key = rel.as_os_str().as_bytes().to_vec();
        if let Ok(t) = e.header().mtime().map(i64::try_from)
            && let Ok(t) = t
        {
            w.out.mtimes.insert(key.clone(), t);
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let declared = e.header().size().unwrap_or(0);
                w.file(&rel, &raw, header_mode, declared, &mut e)?;
            }
            tar::EntryType::Directory => {
                let mode = w.mode(&rel, header_mode, 0o700);
                match fs::create_dir(root.join(&rel)) {
                    Ok(()) => {}
                    Err(x) if x.kind() == io::ErrorKind::AlreadyExists && w.dirs.contains(&rel) => {
                    }
                    Err(x) if x.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(refused(&raw, "the same path twice"));
                    }
                    Err(x) => return Err(w.write_err(&rel)(x)),
                }
                fs::set_permissions(root.join(&rel), fs::Permissions::from_mode(mode))
                    .map_err(w.write_err(&rel))?;
                w.dirs.insert(rel.clone());
                w.out.tree.insert(key, Node::Dir { mode });
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| refused(&raw, "a symlink without a target"))?
                    .into_owned();
                if !stays_inside(&rel, &target) {
                    w.out.links_outside.push((
                        rel.display().to_string(),
                        String::from_utf8_lossy(&target).into_owned(),
                    ));
                }
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), root.join(&rel))
                    .map_err(|x| match x.kind() {
                    io::ErrorKind::AlreadyExists => refused(&raw, "the same path twice"),
                    _ => w.write_err(&rel)(x),
                })?;
                w.out.tree.insert(key, Node::Symlink { target });
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| refused(&raw, "a hard link without a target"))?
                    .into_owned();
                let Some(trel) = clean(&target)? else {
                    return Err(refused(&raw, "a hard link to the root"));
                };
                let Some(node @ Node::File { .. }) =
                    w.out.tree.get(trel.as_os_str().as_bytes()).cloned()
                else {
                    return Err(refused(
                        &raw,
                        format!(
                            "a hard link to `{}`, which is not a file unpacked before it",
                            trel.display()
                        ),
                    ));
                };
                fs::hard_link(root.join(&trel), root.join(&rel)).map_err(|x| match x.kind() {
                    io::ErrorKind::AlreadyExists => refused(&raw, "the same path twice"),
                    _ => w.write_err(&rel)(x),
                })?;
                w.out.tree.insert(key, node);
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refused(&raw, "a device node (exclude it in the playbook)"));
            }
            tar::EntryType::Fifo => {
                return Err(refused(&raw, "a fifo (exclude it in the playbook)"));
            }
            other => return Err(refused(&raw, format!("an entry of type {other:?}"))),
        }
    }
    Ok(w.out)
}

#[cfg(test)]
mod tests;
