//! `deploy.files`: the app's config delivered at deploy time, never in an image layer.
//!
//! Each file's bytes are made before any change (a template or inline text with its
//! secrets filled in, or the verified fetched file with its `replace` edits; a `find` that
//! is not there fails the step with nothing changed), then written into a volume of this
//! release (`NAME.files-RUN`, through a never-started helper container, owners and modes
//! as given) and mounted read-only over each path of the new container. The volume is
//! journaled like every change: rollback removes it with the release, and pruning an old
//! release removes its volume too.

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::artifact::{Node, manifest};
use crate::docker::Docker;
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlannedStep, Resource, Undo};
use crate::playbook::{Deploy, DeployFile, FileSource};
use crate::secret::SecretStore;
use crate::steps::common::{docker_err, part};

/// The name of a release's files volume, as the plan shows it (`<run-id>`) or for a run.
pub(super) fn volume_name(d: &Deploy, run: &str) -> String {
    format!("{}.files-{run}", d.name)
}

/// Whether `c` is the files volume of this release (named for the run once the plan is
/// bound to one).
pub(super) fn is_files_volume(d: &Deploy, c: &Change, run: &str) -> bool {
    c.resource == Resource::Volume
        && (c.name == volume_name(d, "<run-id>") || c.name == volume_name(d, run))
}

/// The plan's change for the files volume, when the deploy delivers files.
pub(super) fn change(d: &Deploy) -> Option<Change> {
    if d.files.is_empty() {
        return None;
    }
    let details = d
        .files
        .iter()
        .map(|f| format!("{}, mounted read-only", words(f)))
        .collect();
    Some(Change {
        now: None,
        part: None,
        op: Op::Create,
        resource: Resource::Volume,
        place: Place::Target,
        name: volume_name(d, "<run-id>"),
        details,
        condition: None,
        undo: "remove it, with the files (secrets) it holds".into(),
    })
}

/// A file in a plan's words: its path, where its text comes from, its owner and mode.
pub(super) fn words(f: &DeployFile) -> String {
    let from = match &f.source {
        FileSource::Template { file, .. } => format!("template {file}"),
        FileSource::Content(_) => "inline content".to_string(),
        FileSource::Replace(r) => format!(
            "the fetched {} with {} replacement(s)",
            f.replaces
                .as_ref()
                .map_or_else(String::new, |(s, rel)| format!("{s}:{rel}")),
            r.len()
        ),
    };
    format!(
        "file {} from {from}, owner {}:{}, mode {:04o}",
        f.path, f.uid, f.gid, f.mode
    )
}

/// A file made ready: its name in the volume, path in the container, bytes, owner, mode.
pub(super) struct Ready {
    entry: String,
    pub(super) file: DeployFile,
    pub(super) bytes: Vec<u8>,
}

impl Ready {
    /// What the journal keeps of the file: its path, size and digest, never its text.
    pub(super) fn evidence(&self) -> serde_json::Value {
        json!({
            "path": self.file.path,
            "bytes": self.bytes.len(),
            "sha256": crate::digest::hex(&Sha256::digest(&self.bytes)),
        })
    }
}

/// Makes every file's bytes, before any change. A `replace` reads the fetched file,
/// checked against its manifest, and needs each `find` to be there.
pub(super) fn render(
    d: &Deploy,
    artifacts: &Path,
    secrets: &SecretStore,
) -> Result<Vec<Ready>, StepError> {
    let mut out = Vec::new();
    for (i, f) in d.files.iter().enumerate() {
        let base = f.path.rsplit('/').next().unwrap_or("file");
        let entry = format!("{i:02}-{base}");
        let bytes = match &f.source {
            FileSource::Template { text, .. } | FileSource::Content(text) => text
                .resolve(secrets)
                .map_err(StepError::Fatal)?
                .expose()
                .as_bytes()
                .to_vec(),
            FileSource::Replace(pairs) => {
                let (from, rel) = f.replaces.as_ref().ok_or_else(|| {
                    StepError::fatal(format!("`{}`: no fetched file to edit", f.path))
                })?;
                let text = fetched(artifacts, from, rel)?;
                let mut text = String::from_utf8(text).map_err(|_| {
                    StepError::fatal(format!(
                        "{from}:{rel} is not UTF-8 text: it cannot be edited with `replace`"
                    ))
                })?;
                for (n, (find, with)) in pairs.iter().enumerate() {
                    let find = find.resolve(secrets).map_err(StepError::Fatal)?;
                    let with = with.resolve(secrets).map_err(StepError::Fatal)?;
                    if !text.contains(find.expose()) {
                        return Err(StepError::fatal(format!(
                            "`{}`: replacement {} (`find`) is not in the fetched {from}:{rel}; nothing was changed. Check the text (spaces and quotes count)",
                            f.path,
                            n + 1
                        )));
                    }
                    text = text.replace(find.expose(), with.expose());
                }
                text.into_bytes()
            }
        };
        out.push(Ready {
            entry,
            file: f.clone(),
            bytes,
        });
    }
    Ok(out)
}

/// The fetched file `rel` of artifact `from`, its bytes checked against the manifest.
fn fetched(artifacts: &Path, from: &str, rel: &str) -> Result<Vec<u8>, StepError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| StepError::fatal(format!("cannot read {}: {e}", p.display())))
    };
    let m = read(&artifacts.join(format!("{from}.manifest")))?;
    let t = read(&artifacts.join(format!("{from}.tree")))?;
    let tree = manifest::parse(&m, &t).map_err(StepError::Fatal)?;
    let Some(Node::File { sha256, .. }) = tree.get(rel.as_bytes()) else {
        return Err(StepError::fatal(format!(
            "{from}:{rel} was not fetched (or is not a regular file): `replace` has nothing to edit"
        )));
    };
    let bytes = read(&artifacts.join(from).join(rel))?;
    if crate::digest::hex(&Sha256::digest(&bytes)) != *sha256 {
        return Err(StepError::fatal(format!(
            "{from}:{rel} changed since it was pulled; nothing was deployed"
        )));
    }
    Ok(bytes)
}

/// The output line of files delivered (`how`: where they went).
pub(super) fn delivered(ready: &[Ready], how: &str) -> String {
    let paths: Vec<&str> = ready.iter().map(|r| r.file.path.as_str()).collect();
    format!(
        "{} file(s) delivered {how}: {}",
        ready.len(),
        paths.join(", ")
    )
}

/// The tar of the files, entries under `boyong-volume/` (where the helper mounts the
/// volume), owners and modes as given, times fixed.
fn tar_of(ready: &[Ready]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for r in ready {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(r.bytes.len() as u64);
        h.set_mode(r.file.mode);
        h.set_uid(u64::from(r.file.uid));
        h.set_gid(u64::from(r.file.gid));
        h.set_mtime(crate::steps::build::CONTEXT_MTIME);
        tar.append_data(
            &mut h,
            format!("boyong-volume/{}", r.entry),
            r.bytes.as_slice(),
        )?;
    }
    tar.into_inner()
}

/// Creates and fills this release's files volume (journaled), and returns the binds
/// that mount each file read-only at its path.
pub(super) async fn deliver(
    engine: &Docker,
    step: &PlannedStep,
    d: &Deploy,
    image: &str,
    ready: &[Ready],
    labels: &HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<Vec<String>, StepError> {
    if ready.is_empty() {
        return Ok(Vec::new());
    }
    let c = step
        .changes
        .iter()
        .find(|c| is_files_volume(d, c, cx.run_id()))
        .ok_or_else(|| StepError::fatal("the plan of this deploy lists no files volume"))?;
    let name = volume_name(d, cx.run_id());
    let id = cx.intent(c, &Undo::RemoveVolume { name: name.clone() })?;
    // A volume of this run left by a cut-off attempt is ours to replace.
    engine.remove_volume(&name).await.map_err(docker_err)?;
    engine
        .create_volume(&name, labels)
        .await
        .map_err(docker_err)?;
    cx.done(&id, &json!({}))?;
    let helper = format!("{name}.fill");
    let id = cx.intent(
        &part(
            c,
            &format!(
                "filled through the helper container `{helper}` (never started, then removed)"
            ),
        ),
        &Undo::RemoveContainer {
            name: helper.clone(),
        },
    )?;
    let tar = tar_of(ready).map_err(|e| StepError::fatal(format!("cannot pack the files: {e}")))?;
    engine
        .fill_volume(&name, image, &helper, labels, tar)
        .await
        .map_err(docker_err)?;
    let mountpoint = engine.volume_mountpoint(&name).await.map_err(docker_err)?;
    let digests: Vec<serde_json::Value> = ready.iter().map(Ready::evidence).collect();
    cx.done(&id, &json!({ "files": digests }))?;
    cx.output(&delivered(ready, &format!("in volume `{name}`")));
    Ok(ready
        .iter()
        .map(|r| format!("{mountpoint}/{}:{}:ro", r.entry, r.file.path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_keeps_owner_and_mode_and_names_entries_in_the_volume() {
        let f = DeployFile {
            path: "/var/www/html/wp-config.php".into(),
            source: FileSource::Content(crate::playbook::Template::text("x")),
            uid: 33,
            gid: 33,
            mode: 0o440,
            replaces: None,
        };
        let ready = vec![Ready {
            entry: "00-wp-config.php".into(),
            file: f,
            bytes: b"<?php\n".to_vec(),
        }];
        let bytes = tar_of(&ready).expect("tar");
        let mut ar = tar::Archive::new(bytes.as_slice());
        let e = ar
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        let h = e.header();
        assert_eq!(h.uid().expect("uid"), 33);
        assert_eq!(h.mode().expect("mode"), 0o440);
        assert_eq!(
            e.path().expect("path").to_string_lossy(),
            "boyong-volume/00-wp-config.php"
        );
    }
}
