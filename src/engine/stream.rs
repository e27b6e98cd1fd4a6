//! A growing artifact, handed from the step that writes it to the step that reads it
//! while it is written: the two halves of a pipelined pair (see the executor's `pair`).
//!
//! Owns: [`Feed`], the writer's side (which file, how many of its bytes are on disk, how
//! it ended), and [`Follow`], the reader's side (waits for the file, reads it as it grows
//! with a [`FollowReader`], hashing every byte read).
//!
//! Invariants: the writer reports bytes only once they are written to the file, so a
//! reader never reads past what is there; a reader ends (EOF) only after the writer
//! finished, with exactly the writer's byte count read and the writer's SHA-256 equal to
//! the hash of what it read, else it returns an error; a writer that fails, is closed or
//! is dropped before finishing ends every reader with an error. Nothing polls: readers
//! wait on a watch channel that the writer updates.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

/// How the writing ended, if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum End {
    /// Still being written.
    #[default]
    Open,
    /// Written in full: its size and SHA-256 (hex).
    Finished {
        /// Bytes in the file.
        bytes: u64,
        /// Its SHA-256, lowercase hex.
        sha256: String,
    },
    /// The writing stopped without finishing, and why.
    Failed(String),
}

#[derive(Debug, Clone, Default)]
struct State {
    path: Option<PathBuf>,
    /// A handle for reading, opened by the writer: the file may be renamed into place,
    /// or removed after a failure, before a reader gets to it.
    file: Option<Arc<File>>,
    written: u64,
    end: End,
}

/// A new growing artifact: the writer's and the reader's sides.
pub fn channel() -> (Feed, Follow) {
    let (tx, rx) = watch::channel(State::default());
    (Feed { tx: Arc::new(tx) }, Follow { rx })
}

/// The writer's side. Clones share one state; dropping the last one without
/// [`Feed::finish`] ends the readers with an error.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: Arc<watch::Sender<State>>,
}

impl Feed {
    /// The file is created at `path` and is about to grow; `reading` is a handle a
    /// reader may read it through (else readers open `path`).
    pub fn begin(&self, path: &Path, reading: Option<File>) {
        self.tx.send_modify(|s| {
            if s.end == End::Open {
                s.path = Some(path.to_path_buf());
                s.file = reading.map(Arc::new);
            }
        });
    }

    /// `total` bytes of the file are written (not necessarily synced).
    pub fn wrote(&self, total: u64) {
        self.tx.send_modify(|s| s.written = s.written.max(total));
    }

    /// The file is complete: `bytes` long, with this SHA-256.
    pub fn finish(&self, bytes: u64, sha256: &str) {
        self.tx.send_modify(|s| {
            if s.end == End::Open {
                s.written = bytes;
                s.end = End::Finished {
                    bytes,
                    sha256: sha256.to_string(),
                };
            }
        });
    }

    /// Ends the writing without finishing (a no-op once it ended).
    pub fn close(&self, why: &str) {
        self.tx.send_modify(|s| {
            if s.end == End::Open {
                s.end = End::Failed(why.to_string());
            }
        });
    }
}

/// The reader's side.
#[derive(Debug, Clone)]
pub struct Follow {
    rx: watch::Receiver<State>,
}

const GONE: &str = "the step writing it stopped before it finished";

impl Follow {
    /// Waits until the writer began; the file's path. `Err` when the writing ended
    /// without ever beginning.
    ///
    /// # Errors
    /// Why the file will not come.
    pub async fn begun(&mut self) -> Result<PathBuf, String> {
        let s = self
            .rx
            .wait_for(|s| s.path.is_some() || s.end != End::Open)
            .await
            .map_err(|_| GONE.to_string())?;
        match (&s.path, &s.end) {
            (Some(p), End::Open | End::Finished { .. }) => Ok(p.clone()),
            (_, End::Failed(why)) => Err(why.clone()),
            _ => Err("the step writing it ended without writing it".into()),
        }
    }

    /// Waits until the writing ended; how.
    pub async fn ended(&mut self) -> End {
        match self.rx.wait_for(|s| s.end != End::Open).await {
            Ok(s) => s.end.clone(),
            Err(_) => End::Failed(GONE.into()),
        }
    }

    /// A reader of the growing file (once [`Follow::begun`]), for a blocking thread.
    /// Call from within the runtime.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn reader(&self) -> io::Result<FollowReader> {
        let (path, file) = {
            let s = self.rx.borrow();
            (s.path.clone(), s.file.clone())
        };
        let file = match (file, path) {
            (Some(f), _) => f,
            (None, Some(p)) => Arc::new(File::open(p)?),
            (None, None) => return Err(io::Error::other("the file was not begun")),
        };
        Ok(FollowReader {
            file,
            rx: self.rx.clone(),
            runtime: tokio::runtime::Handle::current(),
            pos: 0,
            hash: Sha256::new(),
        })
    }
}

/// Reads a file while it grows, waiting (without polling) for the writer; EOF only once
/// the writer finished and what was read is the whole file, hash checked.
pub struct FollowReader {
    file: Arc<File>,
    rx: watch::Receiver<State>,
    runtime: tokio::runtime::Handle,
    pos: u64,
    hash: Sha256,
}

impl FollowReader {
    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.pos
    }

    /// SHA-256 (hex) of the bytes read so far.
    pub fn sha256(&self) -> String {
        crate::digest::hex(&self.hash.clone().finalize())
    }
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (written, end) = {
                let s = self.rx.borrow_and_update();
                (s.written, s.end.clone())
            };
            if self.pos < written {
                let room = usize::try_from(written - self.pos).unwrap_or(usize::MAX);
                let want = buf.len().min(room);
                let n = self.file.read_at(&mut buf[..want], self.pos)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file being followed is shorter than its writer said",
                    ));
                }
                self.hash.update(&buf[..n]);
                self.pos += n as u64;
                return Ok(n);
            }
            match end {
                End::Finished { bytes, sha256 } => {
                    if bytes != self.pos {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("read {} bytes of a file finished at {bytes}", self.pos),
                        ));
                    }
                    if self.sha256() != sha256 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the bytes read differ from the file its writer finished (SHA-256)",
                        ));
                    }
                    return Ok(0);
                }
                End::Failed(why) => return Err(io::Error::other(why)),
                End::Open => {
                    let changed = self.runtime.block_on(self.rx.changed());
                    if changed.is_err() && self.rx.borrow().end == End::Open {
                        return Err(io::Error::other(GONE));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_reader_follows_the_writer_and_checks_the_whole() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        let (feed, mut follow) = channel();
        rt().block_on(async {
            let p = path.clone();
            let writer = tokio::task::spawn_blocking(move || {
                let mut f = File::create(&p).unwrap_or_else(|e| panic!("{e}"));
                feed.begin(&p, Some(File::open(&p).unwrap_or_else(|e| panic!("{e}"))));
                let mut all = Vec::new();
                for i in 0..50u8 {
                    let chunk = vec![i; 10_000];
                    f.write_all(&chunk).unwrap_or_else(|e| panic!("{e}"));
                    all.extend_from_slice(&chunk);
                    feed.wrote(all.len() as u64);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                let sum = crate::digest::hex(&Sha256::digest(&all));
                feed.finish(all.len() as u64, &sum);
                sum
            });
            follow.begun().await.unwrap_or_else(|e| panic!("{e}"));
            let mut r = follow.reader().unwrap_or_else(|e| panic!("{e}"));
            let read = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                r.read_to_end(&mut out).map(|_| (out.len(), r.sha256()))
            });
            let sum = writer.await.unwrap_or_else(|e| panic!("{e}"));
            let (n, got) = read
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((n, got), (500_000, sum));
        });
    }

    #[test]
    fn a_writer_that_stops_ends_its_reader_with_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap_or_else(|e| panic!("{e}"));
        let (feed, mut follow) = channel();
        rt().block_on(async {
            feed.begin(&path, None);
            feed.wrote(3);
            follow.begun().await.unwrap_or_else(|e| panic!("{e}"));
            let mut r = follow.reader().unwrap_or_else(|e| panic!("{e}"));
            let read = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                r.read_to_end(&mut out)
            });
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            drop(feed);
            let e = read.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(e.is_err(), "{e:?}");
        });
        // A wrong hash is refused too.
        let (feed, follow) = channel();
        rt().block_on(async {
            feed.begin(&path, None);
            feed.finish(3, "00");
            let mut r = follow.reader().unwrap_or_else(|e| panic!("{e}"));
            let e = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                r.read_to_end(&mut out)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(e.is_err(), "{e:?}");
        });
    }
}
