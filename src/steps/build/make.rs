//! The two ways a build makes its image from the verified files: as one layer loaded
//! into the engine with no container at all (no `run`), or through a helper container of
//! the base where the `run` commands run once before it is committed.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::context::{ChunkWriter, Measure, write_files};
use crate::artifact::Tree;
use crate::docker::{Docker, DockerError, ImageConfig, Layer};

/// What a build sends: the verified trees, their destinations, the files' owner.
pub(super) struct Files {
    pub(super) trees: Arc<Vec<(String, PathBuf, Tree)>>,
    pub(super) dests: Arc<Vec<String>>,
    pub(super) owner: (u64, u64),
}

impl Files {
    /// Writes the files' tar into a stream for the engine on a blocking thread; the
    /// handle gives the SHA-256 of what was sent.
    fn stream(
        &self,
    ) -> (
        impl futures_util::Stream<Item = Bytes> + Send + 'static,
        tokio::task::JoinHandle<std::io::Result<String>>,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let out = ChunkWriter {
            tx,
            hash: Sha256::new(),
            buf: Vec::new(),
        };
        let (trees, dests, owner) = (self.trees.clone(), self.dests.clone(), self.owner);
        let writing = tokio::task::spawn_blocking(move || {
            write_files(out, &trees, &dests, owner).map(|w| crate::digest::hex(&w.hash.finalize()))
        });
        (
            futures_util::stream::poll_fn(move |c| rx.poll_recv(c)),
            writing,
        )
    }

    /// How many files, for the image's history.
    fn count(&self) -> usize {
        self.trees.iter().map(|(_, _, t)| t.len()).sum()
    }
}

/// The SHA-256 the writer reported, or why it failed.
async fn sent(
    writing: tokio::task::JoinHandle<std::io::Result<String>>,
) -> Result<String, DockerError> {
    writing
        .await
        .map_err(|e| DockerError::Build(format!("the context writer failed: {e}")))?
        .map_err(|e| DockerError::Build(format!("cannot write the build context: {e}")))
}

/// One layer on the base, loaded: the files are written twice, once to measure the
/// layer (its size and digest go into the archive before it), once to send it; the
/// engine checks the digest of what arrived. Returns (image id, the layer's SHA-256).
pub(super) async fn layered(
    engine: &Docker,
    base: &str,
    tag: &str,
    files: &Files,
    config: &ImageConfig,
) -> Result<(String, String), DockerError> {
    let (trees, dests, owner) = (files.trees.clone(), files.dests.clone(), files.owner);
    let measured =
        tokio::task::spawn_blocking(move || write_files(Measure::default(), &trees, &dests, owner))
            .await
            .map_err(|e| DockerError::Build(format!("the context writer failed: {e}")))?
            .map_err(|e| DockerError::Build(format!("cannot read the app's files: {e}")))?;
    let sha256 = crate::digest::hex(&measured.hash.finalize());
    let layer = Layer {
        size: measured.size,
        sha256: sha256.clone(),
        created_by: format!(
            "boyong build: {} verified file(s) at {}",
            files.count(),
            files.dests.join(", ")
        ),
    };
    let (stream, writing) = files.stream();
    let made = engine.load_build(base, tag, layer, stream, config).await;
    let again = sent(writing).await;
    let id = made?;
    if again? != sha256 {
        return Err(DockerError::Build(
            "the app's files changed while the image was made".into(),
        ));
    }
    Ok((id, sha256))
}

/// Through the helper container `helper`: the files uploaded, the `run` commands run,
/// committed. Returns (image id, the SHA-256 of the files' tar).
pub(super) async fn committed(
    engine: &Docker,
    base: &str,
    helper: &str,
    tag: &str,
    files: &Files,
    config: ImageConfig,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(String, String), DockerError> {
    let (stream, writing) = files.stream();
    let built = Box::pin(engine.commit_build(base, helper, tag, stream, config, on_line)).await;
    let sha256 = sent(writing).await;
    Ok((built?, sha256?))
}
