//! The bytes a build sends to the engine: the deterministic context (Dockerfile and
//! artifacts) or, without a builder, the app's files at their destinations; streamed as
//! they are made and hashed on the way.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::artifact::{Node, Tree};

/// Sends the tar bytes to the engine's stream as they are made, hashing them.
pub(super) struct ChunkWriter {
    pub(super) tx: tokio::sync::mpsc::Sender<Bytes>,
    pub(super) hash: Sha256,
    pub(super) buf: Vec<u8>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the engine stopped reading the build context"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hash.update(data);
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_chunk()
    }
}

/// The modification time of every file in a build context, and so in the image:
/// 2000-01-01T00:00:00Z. Fixed, so that the image stays deterministic; not 0, because
/// PHP's OPcache takes a timestamp of 0 for "unknown" and never caches such a file (a
/// migrated PHP app then recompiles every script on every request: seen 4.5x slower).
pub(crate) const CONTEXT_MTIME: u64 = 946_684_800;

/// A tar header of the build's files: fixed time, the given owner.
fn header(kind: tar::EntryType, mode: u32, size: u64, owner: (u64, u64)) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(CONTEXT_MTIME);
    h.set_uid(owner.0);
    h.set_gid(owner.1);
    h
}

/// Appends a verified tree under `root`: the root's own entry, then every entry sorted.
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    dir: &Path,
    tree: &Tree,
    owner: (u64, u64),
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0, owner);
    tar.append_data(&mut h, root, std::io::empty())?;
    for (path, node) in tree {
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        let name = root.join(rel);
        match node {
            Node::Dir { mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0, owner);
                tar.append_data(&mut h, &name, std::io::empty())?;
            }
            Node::File { size, mode, .. } => {
                let mut h = header(tar::EntryType::Regular, *mode, *size, owner);
                tar.append_data(&mut h, &name, fs::File::open(dir.join(rel))?)?;
            }
            Node::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, owner);
                tar.append_link(
                    &mut h,
                    &name,
                    Path::new(std::ffi::OsStr::from_bytes(target)),
                )?;
            }
        }
    }
    Ok(())
}

/// Counts and hashes the bytes written to it, keeping none: the first of a layered
/// build's two passes, which gives the layer's size and digest before it is sent.
#[derive(Default)]
pub(super) struct Measure {
    pub(super) size: u64,
    pub(super) hash: Sha256,
}

impl Write for Measure {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hash.update(data);
        self.size += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the app's files as they go into the image (no `run`: no builder): each
/// artifact at its destination, owned by `owner`, entries sorted, times fixed. The same
/// artifacts and playbook give the same bytes. Returns the writer, flushed.
pub(super) fn write_files<W: Write>(
    out: W,
    trees: &[(String, PathBuf, Tree)],
    dests: &[String],
    owner: (u64, u64),
) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    for ((_, dir, tree), to) in trees.iter().zip(dests) {
        let root = PathBuf::from(to.trim_start_matches('/'));
        append_tree(&mut tar, &root, dir, tree, owner)?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(out)
}

/// The first path in the trees with a name that image layers reserve for deletions
/// (`.wh.NAME`, `.wh..wh..opq`): the engine cannot hold such a file in an image (it
/// refuses it even through a container), so the build names it instead.
pub(super) fn whiteout_name(trees: &[(String, PathBuf, Tree)]) -> Option<(String, String)> {
    trees.iter().find_map(|(from, _, tree)| {
        tree.keys()
            .find(|p| {
                p.split(|b| *b == b'/')
                    .any(|name| name.starts_with(b".wh."))
            })
            .map(|p| (from.clone(), String::from_utf8_lossy(p).into_owned()))
    })
}
