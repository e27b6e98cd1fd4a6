//! `fetch`: pull a directory or file from the vendor host as one tar stream over SSH,
//! hashed and safely unpacked as it arrives.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::common::{ChunkReader, pump, remove_all, write_synced};
use super::live::Live;
use super::probe::ProbeCx;
use super::{Described, Kind};
use crate::artifact::manifest::{manifest_bytes, tree_bytes};
use crate::artifact::{Node, UnpackError, unpack};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlanContext, PlannedStep, Resource, Undo};
use crate::playbook::{Fetch, Incremental, Step};
use crate::shell::quote;
use crate::ssh::{Out, Session};

mod again;
mod ahead;
pub(crate) mod exclude;
pub(crate) mod incr;
mod probe;
pub(crate) mod reuse;

pub(crate) use probe::Tree;

/// The `fetch` kind.
pub(crate) struct FetchStep;

impl Kind for FetchStep {
    type Spec = Fetch;

    fn describe(step: &Step, spec: &Fetch, _ctx: &PlanContext) -> Described {
        describe(step, spec)
    }

    fn reads_vendor(_spec: &Fetch) -> bool {
        true
    }

    async fn probe(p: &mut ProbeCx<'_>, step: &PlannedStep, spec: &Fetch) {
        match p.vendor {
            Some(v) => probe::probe_tree(v, step, spec, p.fx, p.sf).await,
            None => p.vendor_unreached(),
        }
    }

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Fetch,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        execute(live, step, spec, cx).await
    }

    async fn still_valid(
        _live: &Live,
        step: &PlannedStep,
        facts: &Value,
        artifacts: &Path,
    ) -> Result<(), String> {
        still_valid(&step.id, facts, artifacts)
    }
}

fn describe(step: &Step, f: &Fetch) -> Described {
    let mut read = format!("vendor:{} (one tar stream over SSH", f.path);
    if !f.exclude.is_empty() {
        read.push_str(", excluding ");
        read.push_str(&f.exclude.join(", "));
    }
    if f.incremental != Incremental::Off {
        read.push_str("; after an earlier verified pull, only what changed");
        if f.incremental == Incremental::Digest {
            read.push_str(", by size, time and SHA-256");
        }
    }
    read.push(')');
    let mut reads = vec![read];
    let mut details = vec![
        format!("SHA-256 manifest: artifacts/{}.manifest", step.id),
        "unpacked safely: no absolute paths, `..`, writes through links, devices or fifos; setuid/setgid and owners dropped".into(),
    ];
    if let Some(sums) = &f.sha256sums {
        reads.push(format!("vendor:{sums} (the vendor's SHA256SUMS)"));
        details.push(format!("every file listed in {sums} must match"));
    }
    Described {
        reads,
        changes: vec![Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Artifact,
            place: Place::Local,
            name: format!("artifacts/{}/", step.id),
            details,
            condition: None,
            undo: "delete the artifact".into(),
        }],
    }
}

/// The remote command: one tar stream of `path` (a directory's contents, or one file),
/// excluding `exclude` (relative to `path`). Every value is shell-quoted, and a file's
/// folder and name are split here, not by the remote shell: `$(dirname)` and
/// `$(basename)` would drop a name's trailing newlines and pull another file.
pub(crate) fn tar_command(path: &str, exclude: &[String]) -> String {
    let p = quote(path);
    let (dir, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => (".", path),
    };
    let (dir, name) = (quote(dir), quote(&format!("./{name}")));
    let mut excludes = String::new();
    for e in exclude {
        let rel = format!("./{}", e.trim_end_matches('/').trim_start_matches("./"));
        excludes.push_str(" --exclude=");
        excludes.push_str(&quote(&rel));
    }
    format!(
        "LC_ALL=C; export LC_ALL; P={p}; echo \"boyong-clock $(date +%s)\" >&2; if [ -d \"$P\" ]; then cd \"$P\" && exec tar -cf -{excludes} .; \
         elif [ -e \"$P\" ]; then cd {dir} && exec tar -cf - {name}; \
         else echo \"boyong: $P does not exist on the vendor host\" >&2; exit 66; fi"
    )
}

fn paths(artifacts: &Path, id: &str) -> [PathBuf; 4] {
    [
        artifacts.join(id),
        artifacts.join(format!("{id}.partial")),
        artifacts.join(format!("{id}.manifest")),
        artifacts.join(format!("{id}.tree")),
    ]
}

/// The stat sidecar of a fetch's artifact: the vendor's clock and each file's time.
pub(crate) fn stat_path(artifacts: &Path, id: &str) -> PathBuf {
    artifacts.join(format!("{id}.stat"))
}

/// What a pull (full or incremental) produced in its partial directory.
struct Pulled {
    tree: crate::artifact::Tree,
    stat: incr::Stat,
    /// Bytes of file content in the tree.
    bytes: u64,
    /// Bytes that came over the connection.
    transferred: u64,
    links_outside: Vec<(String, String)>,
    special_bits_dropped: Vec<String>,
    /// What an incremental pull took from where (`None`: a full pull).
    incremental: Option<Value>,
}

/// Pulls the tree: intent, stream, unpack and hash in one pass (or, after an earlier
/// verified pull, only what changed: [`again`]), manifest, `done`.
async fn execute(
    live: &Live,
    step: &PlannedStep,
    f: &Fetch,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    // `--reuse-artifacts`: an earlier run's verified tree with the same inputs, copied in.
    let inputs = reuse::inputs(live, f).ok();
    if let Some(key) = &inputs
        && let Some(facts) = reuse::reuse(step, key, cx).await?
    {
        return Ok(facts);
    }
    let artifacts = cx.artifacts().to_path_buf();
    let [dest, _, manifest_path, tree_path] = paths(&artifacts, &step.id);
    let stat_file = stat_path(&artifacts, &step.id);
    // Each attempt unpacks into a directory of its own: an attempt cut off by a time
    // limit or Ctrl-C may still be finishing its last chunks while the next one starts.
    let partial = artifacts.join(format!("{}.partial-{:x}", step.id, reuse::nonce()));
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("a fetch step lists its artifact"))?;
    let delta = again::delta_dir(&partial);
    let undo = Undo::RemoveArtifact {
        paths: vec![
            dest.clone(),
            partial.clone(),
            delta.clone(),
            manifest_path.clone(),
            tree_path.clone(),
            stat_file.clone(),
        ],
    };
    let id = cx.intent(change, &undo)?;
    // A failed pull leaves nothing that could pass for an artifact. `fail` may be
    // retried (a dropped link); `fatal` may not (a refused entry, a full disk, tar's
    // own error on the vendor host).
    let scrap = [
        partial.clone(),
        delta,
        manifest_path.clone(),
        tree_path.clone(),
        stat_file.clone(),
    ];
    let fail = |e: String| {
        let _ = remove_all(&scrap);
        StepError::Failed(e)
    };
    let fatal = |e: String| {
        let _ = remove_all(&scrap);
        StepError::Fatal(e)
    };
    let scrapped = |e: StepError| match e {
        StepError::Fatal(t) => fatal(t),
        StepError::Failed(t) => fail(t),
        other @ StepError::Journal(_) => {
            let _ = remove_all(&scrap);
            other
        }
    };
    remove_all(std::slice::from_ref(&partial)).map_err(|e| fail(e.to_string()))?;
    fs::create_dir_all(&partial)
        .map_err(|e| fail(format!("cannot create {}: {e}", partial.display())))?;
    let began = std::time::Instant::now();
    let looking = match &inputs {
        Some(key) if f.incremental != Incremental::Off => Some(again::look(cx, key, &partial)),
        _ => None,
    };
    let session = match live.vendor(Some(cx)).await {
        Ok(s) => s,
        Err(e) => {
            // The earlier tree may be being linked in: stopped, then scrapped.
            if let Some(l) = looking {
                l.stop().await;
            }
            return Err(scrapped(e));
        }
    };
    cx.detail(&format!(
        "timing: connected in {} ms",
        began.elapsed().as_millis()
    ));
    let mut pulled = None;
    if let Some(looking) = looking {
        pulled = again::pull(&session, f, looking, &partial, cx)
            .await
            .map_err(scrapped)?;
    }
    let pulled = match pulled {
        Some(p) => p,
        None => full_pull(&session, f, &partial, cx)
            .await
            .map_err(scrapped)?,
    };
    cx.progress(pulled.transferred, Some(pulled.transferred));
    for (link, target) in &pulled.links_outside {
        cx.output(&format!("link `{link}` points outside the tree: {target}"));
    }
    for p in &pulled.special_bits_dropped {
        cx.output(&format!("setuid/setgid/sticky bit dropped: {p}"));
    }
    let manifest = manifest_bytes(&pulled.tree);
    let tree_file = tree_bytes(&pulled.tree);
    let stat = pulled.stat.bytes(&pulled.tree);
    for (path, bytes) in [
        (&manifest_path, &manifest),
        (&tree_path, &tree_file),
        (&stat_file, &stat),
    ] {
        write_synced(path, bytes)
            .map_err(|e| fatal(format!("cannot write {}: {e}", path.display())))?;
    }
    cx.detail(&format!(
        "timing: descriptions written by {} ms",
        began.elapsed().as_millis()
    ));
    if let Some(sums) = &f.sha256sums {
        check_sums(&session, sums, &pulled.tree)
            .await
            .map_err(scrapped)?;
    }
    fs::rename(&partial, &dest)
        .map_err(|e| fail(format!("cannot move the artifact into place: {e}")))?;
    let files = pulled
        .tree
        .values()
        .filter(|n| matches!(n, Node::File { .. }))
        .count();
    let mut facts = json!({
        "manifest_sha256": crate::digest::hex(&Sha256::digest(&manifest)),
        "tree_sha256": crate::digest::hex(&Sha256::digest(&tree_file)),
        "stat_sha256": crate::digest::hex(&Sha256::digest(&stat)),
        "files": files,
        "entries": pulled.tree.len(),
        "bytes": pulled.bytes,
        "transferred": pulled.transferred,
        "links_outside": pulled.links_outside.len(),
        "inputs_sha256": inputs,
        "pulled_at": crate::engine::reuse::now_secs(),
    });
    if let (Some(o), Some(i)) = (facts.as_object_mut(), pulled.incremental) {
        o.insert("incremental".into(), i);
    }
    cx.done(&id, &facts)?;
    Ok(facts)
}

/// The whole tree in one tar stream, unpacked and hashed as it arrives.
async fn full_pull(
    session: &Session,
    f: &Fetch,
    partial: &Path,
    cx: &mut StepCx<'_>,
) -> Result<Pulled, StepError> {
    let mut run = session
        .exec(&tar_command(&f.path, &f.exclude), None)
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let into = partial.to_path_buf();
    let unpacking = tokio::task::spawn_blocking(move || {
        unpack(
            ChunkReader {
                rx,
                cur: Bytes::new(),
            },
            &into,
        )
    });
    let (bytes, stderr) = pump(&mut run, tx, cx).await;
    let unpacked = unpacking
        .await
        .map_err(|e| StepError::failed(format!("the unpacking thread failed: {e}")))?;
    let (clock, stderr) = clock_of(&String::from_utf8_lossy(&stderr));
    let unpacked = match (unpacked, run.exit_status()) {
        (_, Err(e)) => return Err(StepError::failed(e.to_string())),
        (_, Ok(66)) => return Err(StepError::Fatal(stderr)),
        (_, Ok(1)) => {
            // GNU tar: a file changed while it was read (a live log): worth another try.
            return Err(StepError::Failed(format!(
                "tar on the vendor host reported files changing while it read them; nothing is taken as complete. It said:\n{stderr}"
            )));
        }
        (_, Ok(code @ 2..)) => {
            return Err(StepError::Fatal(format!(
                "tar on the vendor host failed (exit status {code}); nothing is taken as complete. It said:\n{stderr}"
            )));
        }
        (Err(e @ UnpackError::Archive(_)), Ok(_)) => return Err(StepError::Failed(e.to_string())),
        (Err(e), Ok(_)) => return Err(StepError::Fatal(e.to_string())),
        (Ok(u), Ok(_)) => u,
    };
    Ok(Pulled {
        stat: incr::Stat {
            clock,
            mtimes: unpacked.mtimes,
        },
        tree: unpacked.tree,
        bytes: unpacked.bytes,
        transferred: bytes,
        links_outside: unpacked.links_outside,
        special_bits_dropped: unpacked.special_bits_dropped,
        incremental: None,
    })
}

/// The vendor's clock from the tar command's first line on stderr, and the rest.
fn clock_of(stderr: &str) -> (Option<i64>, String) {
    let mut clock = None;
    let rest: Vec<&str> = stderr
        .lines()
        .filter(|l| match l.strip_prefix("boyong-clock ") {
            Some(n) if clock.is_none() => {
                clock = n.trim().parse().ok();
                false
            }
            _ => true,
        })
        .collect();
    (clock, rest.join("\n").trim().to_string())
}

/// Checks every file the vendor's SHA256SUMS lists against what was pulled.
async fn check_sums(
    session: &Session,
    sums: &str,
    tree: &crate::artifact::Tree,
) -> Result<(), StepError> {
    let mut run = session
        .exec(&format!("cat {}", quote(sums)), None)
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    let mut text = Vec::new();
    while let Some(out) = run.next().await {
        if let Out::Stdout(b) = out {
            text.extend_from_slice(&b);
        }
    }
    match run.exit_status() {
        Ok(0) => {}
        Ok(code) => {
            return Err(StepError::fatal(format!(
                "cannot read the vendor's {sums} (exit status {code})"
            )));
        }
        Err(e) => return Err(StepError::failed(e.to_string())),
    }
    let listed = crate::artifact::manifest::parse_sums(&text);
    if listed.is_empty() {
        return Err(StepError::fatal(format!(
            "the vendor's {sums} lists no file"
        )));
    }
    for (name, want) in listed {
        let key = name.strip_prefix(b"./").unwrap_or(&name);
        match tree.get(key) {
            Some(Node::File { sha256, .. }) if *sha256 == want => {}
            Some(Node::File { sha256, .. }) => {
                return Err(StepError::fatal(format!(
                    "`{}` does not match the vendor's {sums}: pulled sha256 {sha256}, the vendor lists {want}",
                    String::from_utf8_lossy(key)
                )));
            }
            _ => {
                return Err(StepError::fatal(format!(
                    "`{}` is listed in the vendor's {sums} but was not pulled",
                    String::from_utf8_lossy(key)
                )));
            }
        }
    }
    Ok(())
}

/// On resume: the manifest and tree file are the ones journaled, and the artifact still
/// matches them, byte for byte.
fn still_valid(id: &str, facts: &Value, artifacts: &Path) -> Result<(), String> {
    let [dest, _, manifest_path, tree_path] = paths(artifacts, id);
    let m = fs::read(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let t = fs::read(&tree_path).map_err(|e| format!("{}: {e}", tree_path.display()))?;
    for (file, bytes, fact) in [
        (&manifest_path, &m, "manifest_sha256"),
        (&tree_path, &t, "tree_sha256"),
    ] {
        let journaled = facts.get(fact).and_then(Value::as_str);
        let now = crate::digest::hex(&Sha256::digest(bytes));
        if journaled != Some(now.as_str()) {
            return Err(format!(
                "{} is not the one journaled when it was pulled",
                file.display()
            ));
        }
    }
    let tree = crate::artifact::manifest::parse(&m, &t)?;
    crate::artifact::manifest::verify(&dest, &tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in the tar stream that [`tar_command`] writes, run by the local shell.
    fn names(path: &str) -> Vec<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(tar_command(path, &[]))
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tar::Archive::new(out.stdout.as_slice())
            .entries()
            .expect("a tar stream")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_file_whose_name_ends_in_a_newline_is_the_file_pulled() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(d.path().join("config.php"), "another file").expect("write");
        fs::write(d.path().join("config.php\n"), "the one named").expect("write");
        let dir = d.path().display().to_string();
        assert_eq!(names(&format!("{dir}/config.php\n")), ["./config.php\n"]);
        assert_eq!(names(&format!("{dir}/config.php")), ["./config.php"]);
        fs::create_dir(d.path().join("sub\n")).expect("mkdir");
        fs::write(d.path().join("sub\n/f"), "x").expect("write");
        assert_eq!(names(&format!("{dir}/sub\n/f")), ["./f"]);
    }
}
