//! A big file written and hashed at once: the SHA-256 on a second thread.
//!
//! Owns: [`write_hashed`], which copies a reader into a file in chunks and hands each
//! chunk, once written, to a hashing thread, so that hashing (about 0.7 CPU-s a GiB with
//! SHA-NI) overlaps reading and writing instead of following them. Used by the unpacker
//! for files of [`PARALLEL_FROM`] bytes or more; smaller files are not worth a thread.
//!
//! Invariants: the digest is of exactly the bytes written, in order; the hashing thread
//! ends before this returns, whatever happened; memory is a fixed set of [`CHUNK`]-sized
//! buffers, passed back and forth, never grown.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest as _, Sha256};

/// Files this big or bigger are hashed on a thread of their own.
pub const PARALLEL_FROM: u64 = 1 << 20;

/// Bytes per chunk handed to the hashing thread.
pub const CHUNK: usize = 512 * 1024;

/// Buffers in flight: one being filled and written, the rest queued or being hashed.
const BUFFERS: usize = 4;

/// How a copy failed: reading (the archive) or writing (the file).
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the file failed.
    Write(io::Error),
}

/// Copies `data` into `out`, hashing on a second thread; the bytes copied and their
/// SHA-256.
///
/// # Errors
/// The first read or write error; the hashing thread is stopped and joined first.
pub fn write_hashed(
    mut data: impl Read,
    out: &mut impl Write,
) -> Result<(u64, [u8; 32]), CopyError> {
    let (chunks_out, chunks_in): (SyncSender<(Vec<u8>, usize)>, Receiver<_>) =
        sync_channel(BUFFERS);
    let (returns_out, returns_in) = sync_channel::<Vec<u8>>(BUFFERS);
    std::thread::scope(|s| {
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for (buf, n) in chunks_in {
                h.update(&buf[..n]);
                // The writer may have stopped: its buffers are no longer wanted.
                let _ = returns_out.send(buf);
            }
            <[u8; 32]>::from(h.finalize())
        });
        let mut spare: Vec<Vec<u8>> = (0..BUFFERS).map(|_| vec![0u8; CHUNK]).collect();
        let mut size = 0u64;
        let copied = loop {
            let Some(mut buf) = spare.pop().or_else(|| returns_in.recv().ok()) else {
                break Err(CopyError::Read(io::Error::other(
                    "the hashing thread stopped",
                )));
            };
            let n = match fill(&mut data, &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(CopyError::Read(e)),
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(CopyError::Write(e));
            }
            size += n as u64;
            if chunks_out.send((buf, n)).is_err() {
                break Err(CopyError::Read(io::Error::other(
                    "the hashing thread stopped",
                )));
            }
        };
        drop(chunks_out);
        let digest = hasher
            .join()
            .map_err(|_| CopyError::Read(io::Error::other("the hashing thread panicked")))?;
        copied.map(|()| (size, digest))
    })
}

/// Reads until `buf` is full or the reader ends; the bytes read.
fn fill(data: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match data.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes in uneven pieces, then maybe fails.
    struct Pieces {
        data: Vec<u8>,
        pos: usize,
        fail_at: Option<usize>,
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(io::Error::other("link dropped"));
            }
            let n = buf
                .len()
                .min(self.data.len() - self.pos)
                .min(7_919 + self.pos % 40_000);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 31 + i / 977) % 251).unwrap_or(0))
            .collect()
    }

    #[test]
    fn the_digest_and_the_file_are_of_every_byte_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12_345] {
            let d = data(len);
            let mut out = Vec::new();
            let (n, sum) = write_hashed(
                Pieces {
                    data: d.clone(),
                    pos: 0,
                    fail_at: None,
                },
                &mut out,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(n, len as u64);
            assert_eq!(out, d, "{len}");
            assert_eq!(sum, <[u8; 32]>::from(Sha256::digest(&d)), "{len}");
        }
    }

    /// A disk that fills after two chunks.
    struct Full(usize);

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 + buf.len() > 2 * CHUNK {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_read_or_write_ends_the_thread_and_says_which() {
        let r = write_hashed(
            Pieces {
                data: data(3 * CHUNK),
                pos: 0,
                fail_at: Some(CHUNK + 5),
            },
            &mut Vec::new(),
        );
        assert!(matches!(r, Err(CopyError::Read(_))), "{r:?}");

        let r = write_hashed(
            Pieces {
                data: data(4 * CHUNK),
                pos: 0,
                fail_at: None,
            },
            &mut Full(0),
        );
        assert!(
            matches!(&r, Err(CopyError::Write(e)) if e.kind() == io::ErrorKind::StorageFull),
            "{r:?}"
        );
    }
}
