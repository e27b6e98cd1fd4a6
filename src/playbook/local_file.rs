//! Reading a local file that the operator or a playbook names: a playbook, a secret's
//! `{ file: PATH }`.
//!
//! Owns: the rule that such a file is a regular file (a symbolic link to one is fine),
//! checked before it is opened: opening a FIFO blocks until someone writes to it, and a
//! device never ends. Anything else is refused at once, saying what it is.
//!
//! Invariant: the opened file is checked again (its own metadata, not the path's) and
//! read within a size limit. A file swapped for a FIFO between the check and the open
//! would still block; only someone who can write the file's folder can do that, and they
//! could change the playbook itself.

use std::fs::{File, FileType};
use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    /// Nothing at the path.
    #[error("cannot read {}: {error}", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
        /// The error of the look-up.
        error: std::io::Error,
    },
    /// Something other than a regular file.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is (`a FIFO (named pipe)`).
        kind: &'static str,
    },
    /// Larger than the limit.
    #[error("{} is {len} bytes, more than the {max} allowed", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// What a file that is not a regular file is, in words.
pub fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a regular file"
    }
}

/// The bytes of the regular file at `path`, at most `max` of them.
///
/// # Errors
/// Nothing there, not a regular file (said what it is), larger than `max`, or unreadable.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, LocalFileError> {
    let io = |error: std::io::Error| LocalFileError::Io {
        path: path.to_path_buf(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            LocalFileError::NotFound {
                path: path.to_path_buf(),
                error,
            }
        } else {
            io(error)
        }
    })?;
    check(path, &meta, max)?;
    let f = File::open(path).map_err(io)?;
    check(path, &f.metadata().map_err(io)?, max)?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(LocalFileError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

fn check(path: &Path, meta: &std::fs::Metadata, max: u64) -> Result<(), LocalFileError> {
    if !meta.is_file() {
        return Err(LocalFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > max {
        return Err(LocalFileError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_read_and_anything_else_is_named() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("f");
        std::fs::write(&f, "abc").expect("write");
        assert_eq!(read_regular(&f, 3).expect("reads"), b"abc");
        assert!(matches!(
            read_regular(&f, 2),
            Err(LocalFileError::TooLarge { len: 3, max: 2, .. })
        ));
        assert!(matches!(
            read_regular(&d.path().join("nope"), 9),
            Err(LocalFileError::NotFound { .. })
        ));
        let fifo = d.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success();
        assert!(ok);
        for (p, what) in [
            (fifo.as_path(), "a FIFO (named pipe)"),
            (d.path(), "a directory"),
            (Path::new("/dev/null"), "a character device"),
        ] {
            let e = read_regular(p, 9).expect_err("refused");
            assert!(
                matches!(e, LocalFileError::NotRegular { kind, .. } if kind == what),
                "{e}"
            );
            assert!(
                e.to_string()
                    .ends_with(&format!("is {what}, not a regular file"))
            );
        }
    }
}
