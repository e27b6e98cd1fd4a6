//! The earlier artifact linked into the new tree ahead of the listing.
//!
//! A re-pull waits on the network for most of its own time: the SSH connection, then
//! the vendor's `find`. Its local work is one hard link per unchanged file, as much
//! again. So, as soon as the earlier artifact is found, every folder and file of it is
//! made in the new tree (folders owner-only, files as hard links), by threads of their
//! own, while the connection is made and the vendor lists (the search for it starts with
//! the step, before the connection). Once the listing is compared,
//! [`super::incr::materialize`] takes out what is not kept (changed, gone, another kind)
//! and puts in what was pulled. A fall back to the whole tree stops the threads, waits
//! for them and empties the folder first.
//!
//! Never followed: the new tree holds only folders made here and links to the earlier
//! artifact's files (its verified tree) until the delta is moved in.

use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::artifact::{Node, Tree};

/// The linking threads; stopped when dropped (the step cancelled).
pub(super) struct Ahead {
    stop: Arc<AtomicBool>,
    done: Option<tokio::task::JoinHandle<Result<std::time::Duration, String>>>,
}

impl Ahead {
    /// Starts making `tree` (the earlier artifact's, whose files are under `from`) under
    /// `root` (empty); it stops when `stop` is set (by this, or by whoever started the
    /// search for the earlier artifact, before this existed).
    pub(super) fn start(tree: Arc<Tree>, from: &Path, root: &Path, stop: Arc<AtomicBool>) -> Self {
        let (from, root, flag) = (from.to_path_buf(), root.to_path_buf(), stop.clone());
        let done = tokio::task::spawn_blocking(move || {
            let began = std::time::Instant::now();
            make(&tree, &from, &root, &flag).map(|()| began.elapsed())
        });
        Self {
            stop,
            done: Some(done),
        }
    }

    /// Waits until every folder and file is made: how long it took, or why it failed
    /// (the earlier artifact removed meanwhile, a full disk).
    pub(super) async fn finish(&mut self) -> Result<std::time::Duration, String> {
        match self.done.take() {
            Some(h) => h
                .await
                .map_err(|e| format!("the linking thread failed: {e}"))?,
            None => Err("the linking threads were stopped".into()),
        }
    }

    /// Stops the threads and waits for them: nothing is written under the root after.
    pub(super) async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.done.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every folder of `tree` (owner-only; its mode is set once the listing is known), then
/// every file linked from `from`, on two threads.
fn make(tree: &Tree, from: &Path, root: &Path, stop: &AtomicBool) -> Result<(), String> {
    let mut files = Vec::new();
    let mut dirs = fs::DirBuilder::new();
    dirs.mode(0o700);
    // Parents come first in the tree's byte order (`a` < `a-b` < `a/b`).
    for (name, node) in tree {
        match node {
            Node::Dir { .. } => {
                if stop.load(Ordering::Relaxed) {
                    return Err("stopped".into());
                }
                let p = root.join(std::ffi::OsStr::from_bytes(name));
                dirs.create(&p)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            }
            Node::File { .. } => files.push(name.as_slice()),
            Node::Symlink { .. } => {}
        }
    }
    let (a, b) = files.split_at(files.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| link(b, from, root, stop));
        let mine = link(a, from, root, stop);
        mine.and(
            other
                .join()
                .unwrap_or_else(|_| Err("the linking thread failed".into())),
        )
    })
}

/// Links each of `names` from `from` into `root`, within a pair of open folders
/// (`linkat`): walking the two long paths again for every file cost about as much as the
/// link.
fn link(names: &[&[u8]], from: &Path, root: &Path, stop: &AtomicBool) -> Result<(), String> {
    let at = |base: &Path, name: &[u8]| base.join(std::ffi::OsStr::from_bytes(name));
    let mut open: Option<(&[u8], fs::File, fs::File)> = None;
    for name in names {
        if stop.load(Ordering::Relaxed) {
            return Err("stopped".into());
        }
        let (parent, leaf) = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => (&name[..0], &name[..]),
        };
        let fail = |e: &dyn std::fmt::Display| {
            format!(
                "cannot link {} to {}: {e}",
                at(from, name).display(),
                at(root, name).display()
            )
        };
        let dirs = match open.take() {
            Some(d) if d.0 == parent => d,
            _ => {
                let src = fs::File::open(at(from, parent)).map_err(|e| fail(&e))?;
                let dst = fs::File::open(at(root, parent)).map_err(|e| fail(&e))?;
                (parent, src, dst)
            }
        };
        let leaf = std::ffi::OsStr::from_bytes(leaf);
        rustix::fs::linkat(&dirs.1, leaf, &dirs.2, leaf, rustix::fs::AtFlags::empty())
            .map_err(|e| fail(&e))?;
        open = Some(dirs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Node {
        Node::File {
            sha256: "0".repeat(64),
            size: 1,
            mode: 0o644,
        }
    }

    #[tokio::test]
    async fn every_folder_and_file_of_the_earlier_tree_is_made_and_the_earlier_is_untouched() {
        let d = tempfile::tempdir().expect("tempdir");
        let (from, root) = (d.path().join("from"), d.path().join("root"));
        let mut tree = Tree::new();
        for dir in ["a", "a/b", "a-b"] {
            fs::create_dir_all(from.join(dir)).expect("mkdir");
            tree.insert(dir.as_bytes().to_vec(), Node::Dir { mode: 0o755 });
        }
        for f in ["top", "a/1", "a/b/2", "a-b/3", "a/4"] {
            fs::write(from.join(f), f).expect("write");
            tree.insert(f.as_bytes().to_vec(), file());
        }
        fs::create_dir(&root).expect("mkdir");
        let mut ahead = Ahead::start(Arc::new(tree.clone()), &from, &root, Arc::default());
        ahead.finish().await.expect("made");
        for f in ["top", "a/1", "a/b/2", "a-b/3", "a/4"] {
            assert_eq!(fs::read(root.join(f)).expect("linked"), f.as_bytes());
        }
        // The same files; the folders owner-only until the listing gives their modes.
        let mut want = crate::artifact::manifest::scan(&from).expect("scan");
        for n in want.values_mut() {
            if let Node::Dir { mode } = n {
                *mode = 0o700;
            }
        }
        assert_eq!(crate::artifact::manifest::scan(&root).expect("scan"), want);
        // A second start into the same folder fails: nothing is made over what is there.
        let mut again = Ahead::start(Arc::new(tree), &from, &root, Arc::default());
        assert!(again.finish().await.is_err());
    }

    #[tokio::test]
    async fn a_missing_earlier_file_fails_and_a_stopped_one_writes_nothing_after() {
        let d = tempfile::tempdir().expect("tempdir");
        let (from, root) = (d.path().join("from"), d.path().join("root"));
        fs::create_dir_all(&from).expect("mkdir");
        fs::create_dir_all(&root).expect("mkdir");
        let mut tree = Tree::new();
        tree.insert(b"gone".to_vec(), file());
        let mut ahead = Ahead::start(Arc::new(tree.clone()), &from, &root, Arc::default());
        let err = ahead.finish().await.expect_err("the file is gone");
        assert!(err.contains("gone"), "{err}");
        let mut big = Tree::new();
        for i in 0..2000 {
            let n = format!("f{i}");
            fs::write(from.join(&n), b"x").expect("write");
            big.insert(n.into_bytes(), file());
        }
        let root2 = d.path().join("root2");
        fs::create_dir(&root2).expect("mkdir");
        let mut ahead = Ahead::start(Arc::new(big), &from, &root2, Arc::default());
        ahead.stop().await;
        let after = fs::read_dir(&root2).expect("read").count();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(fs::read_dir(&root2).expect("read").count(), after);
        assert!(ahead.finish().await.is_err(), "a stopped start is not done");
    }
}
