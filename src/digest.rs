//! SHA-256 digests as boyong writes them everywhere (manifests, labels, journals, reports):
//! lowercase hex, and a file's digest read in 1 MiB pieces (memory stays bounded whatever
//! the file's size).

use std::fs;
use std::io::{self, Read as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A file's SHA-256 (hex) and length.
///
/// # Errors
/// The file cannot be read.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(&h.finalize()), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex_and_files_hash_as_their_bytes() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        let bytes = vec![7u8; (1 << 20) + 3];
        fs::write(&p, &bytes).expect("writes");
        assert_eq!(
            file_sha256(&p).expect("reads"),
            (sha256_hex(&bytes), bytes.len() as u64)
        );
        assert!(file_sha256(&dir.path().join("missing")).is_err());
    }
}
