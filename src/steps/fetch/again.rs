//! The pull after an earlier verified one ([`super::incr`]): find the earlier artifact,
//! list the vendor's tree, pull what changed, make the new tree beside the delta.
//!
//! A full pull instead (`None`), said in the step's output when it is not the first:
//! no earlier artifact of the same inputs; `path` is a file; the vendor's `find` has no
//! `-printf`; or most files changed (one stream of everything is then cheaper, and the
//! list of names would not fit the channel's window).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use super::Pulled;
use super::ahead::Ahead;
use super::incr::{self, Take};
use crate::artifact::Node;
use crate::artifact::unpack::Unpacked;
use crate::engine::{StepCx, StepError};
use crate::playbook::{Fetch, Incremental};
use crate::ssh::Session;
use crate::steps::common::remove_all;

/// Above this many bytes of names, or when more than half the files changed (and more
/// than [`FEW`]), the whole tree is pulled.
const MAX_NAMES: usize = 1 << 20;
/// So many changed files are always pulled by name.
const FEW: usize = 64;

/// What the search finds: the earlier artifact with the linking of it into the new tree
/// (already started), and why others were passed over.
type Found = (Option<(incr::Earlier, Ahead)>, Vec<String>);

/// The search for the earlier artifact of a fetch with these `inputs`, started with the
/// step on a task of its own: it reads and hashes the earlier descriptions, then starts
/// linking the earlier tree into the new one ([`Ahead`]), while the SSH connection is
/// made. Dropped, it stops the linking (the step cancelled); [`Looking::stop`] also
/// waits until nothing more is written.
pub(super) struct Looking {
    task: Option<tokio::task::JoinHandle<Found>>,
    stop: Arc<AtomicBool>,
}

/// Starts [`Looking`]; the new tree is made under `partial` (empty).
pub(super) fn look(cx: &StepCx<'_>, inputs: &str, partial: &Path) -> Looking {
    let (artifacts, runs, key, root) = (
        cx.artifacts().to_path_buf(),
        cx.earlier_runs(),
        inputs.to_string(),
        partial.to_path_buf(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let task = tokio::spawn(async move {
        let (earlier, passed) =
            tokio::task::spawn_blocking(move || incr::earlier(&artifacts, &key, &runs))
                .await
                .unwrap_or_else(|e| (None, vec![format!("the searching thread failed: {e}")]));
        let linking = earlier.filter(|_| !flag.load(Ordering::Relaxed)).map(|e| {
            let ahead = Ahead::start(e.tree.clone(), &e.dir, &root, Arc::clone(&flag));
            (e, ahead)
        });
        (linking, passed)
    });
    Looking {
        task: Some(task),
        stop,
    }
}

impl Looking {
    /// What was found (the linking going on meanwhile).
    async fn found(&mut self) -> Result<Found, StepError> {
        match self.task.take() {
            Some(t) => t
                .await
                .map_err(|e| StepError::failed(format!("the searching task failed: {e}"))),
            None => Err(StepError::failed("the search was stopped")),
        }
    }

    /// Stops the search and the linking, and waits for both: nothing is written under the
    /// new tree's folder after this returns.
    pub(super) async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok((Some((_, mut ahead)), _)) = self.found().await {
            ahead.stop().await;
        }
    }
}

impl Drop for Looking {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The incremental pull into `partial` on what `looking` finds, or `None` (pull the whole
/// tree; `partial` is then empty again).
pub(super) async fn pull(
    session: &Session,
    f: &Fetch,
    mut looking: Looking,
    partial: &std::path::Path,
    cx: &mut StepCx<'_>,
) -> Result<Option<Pulled>, StepError> {
    let looked = std::time::Instant::now();
    let (linking, passed) = looking.found().await?;
    for p in passed {
        cx.output(&format!(
            "not built on (its descriptions do not verify): {p}"
        ));
    }
    let Some((earlier, mut ahead)) = linking else {
        return Ok(None);
    };
    cx.detail(&format!(
        "timing: earlier artifact read {} ms after the connection",
        looked.elapsed().as_millis()
    ));
    let pulled = pull_on(session, f, &earlier, &mut ahead, partial, cx).await;
    if !matches!(pulled, Ok(Some(_))) {
        ahead.stop().await;
        let _ = remove_all(&[delta_dir(partial)]);
    }
    if matches!(pulled, Ok(None)) {
        remove_all(&[partial.to_path_buf()])
            .and_then(|()| std::fs::create_dir_all(partial))
            .map_err(|e| StepError::Fatal(format!("cannot empty {}: {e}", partial.display())))?;
    }
    drop(looking);
    pulled
}

/// Where the delta is unpacked (empty, as every unpack's root), beside `partial`.
pub(super) fn delta_dir(partial: &Path) -> PathBuf {
    let mut name = partial.file_name().unwrap_or_default().to_os_string();
    name.push(".delta");
    partial.with_file_name(name)
}

/// [`pull`] once the earlier artifact is found and being linked ahead.
async fn pull_on(
    session: &Session,
    f: &Fetch,
    earlier: &incr::Earlier,
    ahead: &mut Ahead,
    partial: &Path,
    cx: &mut StepCx<'_>,
) -> Result<Option<Pulled>, StepError> {
    let began = std::time::Instant::now();
    // The delta command starts beside the listing (a session set up is a round trip and
    // a shell started on the vendor host); its stdin, the names, is sent once the listing
    // is compared.
    let (list_cmd, delta_cmd) = (
        incr::list_command(&f.path, &f.exclude),
        incr::delta_command(&f.path, &f.exclude),
    );
    let (listed, delta_run) = tokio::join!(
        incr::run_to_end(session, &list_cmd, None),
        session.exec_held(&delta_cmd, &[])
    );
    let mut delta_run = delta_run.ok();
    let (out, err, code) = match listed {
        Ok(l) => l,
        Err(e) => {
            incr::drop_delta(delta_run.take()).await;
            return Err(e);
        }
    };
    if code != 0 || f.incremental == Incremental::Digest {
        // Not needed (a full pull), or started again after the digests (its own channel).
        incr::drop_delta(delta_run.take()).await;
    }
    cx.detail(&format!(
        "timing: listed in {} ms ({} bytes)",
        began.elapsed().as_millis(),
        out.len()
    ));
    match code {
        0 => {}
        65 => return Ok(None),
        67 => {
            cx.output("the vendor host's `find` has no -printf: the whole tree is pulled");
            return Ok(None);
        }
        c => {
            return Err(StepError::Failed(format!(
                "listing the tree on the vendor host failed (exit status {c}); nothing is taken as complete. It said:\n{err}"
            )));
        }
    }
    let (clock, list) = incr::parse_listing(&out).map_err(StepError::Fatal)?;
    let mut takes = incr::decide(&list, earlier);
    cx.detail(&format!(
        "timing: compared by {} ms",
        began.elapsed().as_millis()
    ));
    let digested = if f.incremental == Incremental::Digest {
        incr::digest_kept(session, &f.path, &mut takes).await?
    } else {
        0
    };
    let (names, asked) = incr::wanted(&takes);
    let files = list.values().filter(|l| l.kind == b'f').count();
    if asked == 0 || names.len() > MAX_NAMES || (asked > FEW && asked * 2 > files) {
        incr::drop_delta(delta_run.take()).await;
    }
    if names.len() > MAX_NAMES || (asked > FEW && asked * 2 > files) {
        cx.output(&format!(
            "{asked} of {files} files changed since run {}: the whole tree is pulled",
            earlier.run
        ));
        return Ok(None);
    }
    let delta_at = delta_dir(partial);
    let (delta, transferred) = if asked == 0 {
        (Unpacked::default(), 0)
    } else {
        let run = match delta_run {
            Some(r) => r,
            None => session
                .exec_held(&delta_cmd, &[])
                .await
                .map_err(|e| StepError::failed(e.to_string()))?,
        };
        std::fs::create_dir(&delta_at)
            .map_err(|e| StepError::Fatal(format!("cannot create {}: {e}", delta_at.display())))?;
        incr::pull_delta(run, &names, &delta_at, cx).await?
    };
    cx.detail(&format!(
        "timing: {asked} files pulled by {} ms",
        began.elapsed().as_millis()
    ));
    let tree = incr::merge(&takes, &delta).map_err(StepError::Fatal)?;
    // The earlier artifact removed meanwhile: another attempt finds another, or pulls all.
    let linked = ahead.finish().await.map_err(StepError::Failed)?;
    cx.detail(&format!(
        "timing: linked ahead in {} ms, done by {} ms",
        linked.as_millis(),
        began.elapsed().as_millis()
    ));
    // The maps go to the thread and come back: not copied.
    let (made, tree, takes, delta) = tokio::task::spawn_blocking({
        let (root, from) = (partial.to_path_buf(), earlier.tree.clone());
        move || {
            let made = incr::materialize(&root, &tree, &takes, &from, &delta_at, &delta.tree)
                .and_then(|()| remove_all(&[delta_at]).map_err(|e| e.to_string()));
            (made, tree, takes, delta)
        }
    })
    .await
    .map_err(|e| StepError::failed(format!("the linking thread failed: {e}")))?;
    made.map_err(StepError::Fatal)?;
    cx.detail(&format!(
        "timing: the new tree made by {} ms",
        began.elapsed().as_millis()
    ));
    let (mut kept, mut bytes) = (0usize, 0u64);
    let (mut listed, mut decided, mut sent) = (
        incr::Along::new(&list),
        incr::Along::new(&takes),
        incr::Along::new(&delta.mtimes),
    );
    // In order, as the map is then built.
    let mtimes: BTreeMap<Vec<u8>, i64> = tree
        .iter()
        .filter_map(|(name, node)| {
            let Node::File { size, .. } = node else {
                return None;
            };
            bytes += size;
            let listed = listed.get(name).map(|l| l.mtime);
            let t = match decided.get(name) {
                Some(Take::Keep(_)) => {
                    kept += 1;
                    listed
                }
                _ => sent.get(name).copied().or(listed),
            };
            t.map(|t| (name.clone(), t))
        })
        .collect();
    let mut now = incr::Along::new(&tree);
    let deleted = earlier
        .tree
        .iter()
        .filter(|(n, node)| matches!(node, Node::File { .. }) && now.get(n).is_none())
        .count();
    let links_outside = tree
        .iter()
        .filter_map(|(n, node)| match node {
            Node::Symlink { target } if !crate::artifact::unpack::stays_inside_bytes(n, target) => {
                Some((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(target).into_owned(),
                ))
            }
            _ => None,
        })
        .collect();
    let special_bits_dropped = list
        .iter()
        .filter(|(n, l)| l.mode & 0o7000 != 0 && tree.contains_key(*n))
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect();
    let pulled = asked - delta_missing(&takes, &delta);
    cx.output(&format!(
        "built on run {} step `{}`: {pulled} new or changed files pulled ({transferred} bytes), {kept} unchanged linked, {deleted} gone",
        earlier.run, earlier.step
    ));
    Ok(Some(Pulled {
        stat: incr::Stat {
            clock: Some(clock),
            mtimes,
        },
        tree,
        bytes,
        transferred,
        links_outside,
        special_bits_dropped,
        incremental: Some(json!({
            "from_run": earlier.run,
            "from_step": earlier.step,
            "listed": list.len(),
            "pulled": pulled,
            "linked": kept,
            "deleted": deleted,
            "digested": digested,
        })),
    }))
}

/// How many asked-for names the delta did not hold (tar left them out).
fn delta_missing(takes: &BTreeMap<Vec<u8>, Take>, delta: &Unpacked) -> usize {
    takes
        .iter()
        .filter(|(n, t)| **t == Take::Pull && !delta.tree.contains_key(*n))
        .count()
}
