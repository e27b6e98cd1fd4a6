//! The description of an artifact tree: `<step>.manifest` (what `sha256sum -c` reads:
//! one line per regular file, sorted by path) and `<step>.tree` (every entry: files with
//! mode and size, directories with mode, symlinks with their target), and the check of
//! a directory against them.
//!
//! Names are written as bytes, escaped like coreutils: a line holding a backslash, a
//! newline or a carriage return in its name starts with `\` and those characters are
//! written `\\`, `\n`, `\r`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// SHA-256, lowercase hex.
        sha256: String,
        /// Bytes.
        size: u64,
        /// Permission bits as stored (setuid/setgid dropped).
        mode: u32,
    },
    /// A directory.
    Dir {
        /// Permission bits as stored.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Its target, as in the archive.
        target: Vec<u8>,
    },
}

/// A tree: relative path (bytes) → entry. Sorted by path bytes, like `LC_ALL=C sort`.
pub type Tree = BTreeMap<Vec<u8>, Node>;

/// Escapes a name like coreutils; returns whether a leading `\` is needed.
pub(crate) fn escape(name: &[u8]) -> (bool, Vec<u8>) {
    let mut out = Vec::with_capacity(name.len());
    let mut escaped = false;
    for &b in name {
        match b {
            b'\\' => {
                out.extend_from_slice(b"\\\\");
                escaped = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\\n");
                escaped = true;
            }
            b'\r' => {
                out.extend_from_slice(b"\\r");
                escaped = true;
            }
            _ => out.push(b),
        }
    }
    (escaped, out)
}

pub(crate) fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut it = text.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            match it.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b'r') => out.push(b'\r'),
                Some(&o) => out.push(o),
                None => out.push(b'\\'),
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// The manifest: `HASH  NAME` per regular file, sorted.
pub fn manifest_bytes(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, node) in tree {
        if let Node::File { sha256, .. } = node {
            let (esc, name) = escape(path);
            if esc {
                out.push(b'\\');
            }
            out.extend_from_slice(sha256.as_bytes());
            out.extend_from_slice(b"  ");
            out.extend_from_slice(&name);
            out.push(b'\n');
        }
    }
    out
}

/// The tree file: `file MODE SIZE NAME`, `dir MODE NAME`, `link NAME -> TARGET`.
pub fn tree_bytes(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, node) in tree {
        let (_, name) = escape(path);
        match node {
            Node::File { size, mode, .. } => {
                out.extend_from_slice(format!("file {mode:04o} {size} ").as_bytes());
                out.extend_from_slice(&name);
            }
            Node::Dir { mode } => {
                out.extend_from_slice(format!("dir {mode:04o} ").as_bytes());
                out.extend_from_slice(&name);
            }
            Node::Symlink { target } => {
                // `>` in the name is written `\>`, so ` -> ` only ever separates.
                out.extend_from_slice(b"link ");
                for &b in &name {
                    if b == b'>' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.extend_from_slice(b" -> ");
                out.extend_from_slice(&escape(target).1);
            }
        }
        out.push(b'\n');
    }
    out
}

/// Reads a tree back from its manifest and tree file.
///
/// # Errors
/// A line that is not in the format.
pub fn parse(manifest: &[u8], tree_file: &[u8]) -> Result<Tree, String> {
    let mut digests: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    for line in manifest.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (esc, line) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if line.len() < 66 || &line[64..66] != b"  " {
            return Err(format!(
                "manifest line not `HASH  NAME`: {}",
                String::from_utf8_lossy(line)
            ));
        }
        let name = if esc {
            unescape(&line[66..])
        } else {
            line[66..].to_vec()
        };
        digests.insert(name, String::from_utf8_lossy(&line[..64]).into_owned());
    }
    let mut tree = Tree::new();
    for line in tree_file.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let bad = || {
            format!(
                "tree line not understood: {}",
                String::from_utf8_lossy(line)
            )
        };
        let mut words = line.splitn(4, |&b| b == b' ');
        match words.next() {
            Some(b"file") => {
                let mode = words
                    .next()
                    .and_then(|m| u32::from_str_radix(&String::from_utf8_lossy(m), 8).ok())
                    .ok_or_else(bad)?;
                let size = words
                    .next()
                    .and_then(|s| String::from_utf8_lossy(s).parse().ok())
                    .ok_or_else(bad)?;
                let name = unescape(words.next().ok_or_else(bad)?);
                let sha256 = digests.remove(&name).ok_or_else(|| {
                    format!(
                        "{} is in the tree file but not the manifest",
                        String::from_utf8_lossy(&name)
                    )
                })?;
                tree.insert(name, Node::File { sha256, size, mode });
            }
            Some(b"dir") => {
                let rest = line.strip_prefix(b"dir ").ok_or_else(bad)?;
                let mut words = rest.splitn(2, |&b| b == b' ');
                let mode = words
                    .next()
                    .and_then(|m| u32::from_str_radix(&String::from_utf8_lossy(m), 8).ok())
                    .ok_or_else(bad)?;
                let name = words.next().ok_or_else(bad)?;
                tree.insert(unescape(name), Node::Dir { mode });
            }
            Some(b"link") => {
                let rest: Vec<u8> = line.strip_prefix(b"link ").ok_or_else(bad)?.to_vec();
                let at = rest.windows(4).position(|w| w == b" -> ").ok_or_else(bad)?;
                tree.insert(
                    unescape(&rest[..at]),
                    Node::Symlink {
                        target: unescape(&rest[at + 4..]),
                    },
                );
            }
            _ => return Err(bad()),
        }
    }
    if let Some((name, _)) = digests.into_iter().next() {
        return Err(format!(
            "{} is in the manifest but not the tree file",
            String::from_utf8_lossy(&name)
        ));
    }
    Ok(tree)
}

/// Reads a SHA256SUMS file as `sha256sum` writes it (`HASH  NAME` or `HASH *NAME`,
/// escaped names): `(name, lowercase hash)` per line; other lines are skipped.
pub fn parse_sums(text: &[u8]) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (esc, line) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if line.len() < 66
            || !line[..64].iter().all(u8::is_ascii_hexdigit)
            || line[64] != b' '
            || !matches!(line[65], b' ' | b'*')
        {
            continue;
        }
        let name = if esc {
            unescape(&line[66..])
        } else {
            line[66..].to_vec()
        };
        out.push((
            name,
            String::from_utf8_lossy(&line[..64]).to_ascii_lowercase(),
        ));
    }
    out
}

/// Reads what is on disk under `root` now, hashing every file.
///
/// # Errors
/// An I/O error, or an entry that is neither a file, a directory nor a symlink.
pub fn scan(root: &Path) -> io::Result<Tree> {
    let mut tree = Tree::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let meta = fs::symlink_metadata(root.join(&rel))?;
            let key = rel.as_os_str().as_bytes().to_vec();
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = fs::read_link(root.join(&rel))?;
                tree.insert(
                    key,
                    Node::Symlink {
                        target: target.as_os_str().as_bytes().to_vec(),
                    },
                );
            } else if ft.is_dir() {
                tree.insert(
                    key,
                    Node::Dir {
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
                stack.push(rel);
            } else if ft.is_file() {
                let sha256 = hash_file(&root.join(&rel))?;
                tree.insert(
                    key,
                    Node::File {
                        sha256,
                        size: meta.size(),
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            } else {
                return Err(io::Error::other(format!(
                    "{} is not a file, directory or link",
                    rel.display()
                )));
            }
        }
    }
    Ok(tree)
}

fn hash_file(path: &Path) -> io::Result<String> {
    crate::digest::file_sha256(path).map(|(d, _)| d)
}

/// Checks the tree under `root` against `expected`, naming the first difference.
///
/// # Errors
/// What differs, or why the directory cannot be read.
pub fn verify(root: &Path, expected: &Tree) -> Result<(), String> {
    let found = scan(root).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    for (path, want) in expected {
        let name = String::from_utf8_lossy(path);
        match (found.get(path), want) {
            (None, _) => return Err(format!("`{name}` is missing")),
            (Some(Node::File { sha256: got, .. }), Node::File { sha256: exp, .. })
                if got != exp =>
            {
                return Err(format!("`{name}` changed: sha256 {got}, expected {exp}"));
            }
            (Some(got), want) if std::mem::discriminant(got) != std::mem::discriminant(want) => {
                return Err(format!("`{name}` is no longer of the same kind"));
            }
            (Some(got), want) if got != want => {
                return Err(format!("`{name}` changed: {got:?}, expected {want:?}"));
            }
            _ => {}
        }
    }
    if let Some(extra) = found.keys().find(|k| !expected.contains_key(*k)) {
        return Err(format!("`{}` was added", String::from_utf8_lossy(extra)));
    }
    Ok(())
}
