//! Artifacts: trees pulled from the vendor, unpacked safely and described exactly.
//!
//! Owns: [`unpack`] (a tar stream into a directory in one pass, hashing every file as
//! it is written, big files on a second thread by [`hasher`], refusing anything unsafe) and [`manifest`] (the sha256sum-compatible
//! manifest and the tree file beside it, and their re-verification). Invariants
//! (DESIGN.md 7): an entry whose path is absolute or has `..`, that would be written
//! through a link, or that is a device or fifo is refused, not written; links are
//! stored as links and never followed; setuid/setgid bits and owners are dropped.

pub mod credentials;
pub mod hasher;
pub mod manifest;
pub mod unpack;

pub use manifest::{Node, Tree};
pub use unpack::{UnpackError, unpack};
