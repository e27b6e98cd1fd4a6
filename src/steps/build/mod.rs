//! `build`: re-verify artifacts, then build an image from a deterministic context
//! streamed to the engine (its Dockerfile made by `dockerfile.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

mod context;
mod make;

pub(crate) use context::CONTEXT_MTIME;

use super::common::{LABEL_SOURCE, docker_err, labels};
use super::live::Live;
use super::probe::{Findings, ProbeCx, StepFound, Target, human_bytes, image_present, secs, short};
use super::{Described, Kind};
use crate::artifact::{Tree, manifest};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Estimate, Op, Place, PlanContext, PlannedStep, Resource, Undo};
use crate::playbook::{Build, Step};

/// The `build` kind.
pub(crate) struct BuildStep;

impl Kind for BuildStep {
    type Spec = Build;

    fn describe(step: &Step, spec: &Build, ctx: &PlanContext) -> Described {
        describe(step, spec, ctx)
    }

    async fn probe(p: &mut ProbeCx<'_>, step: &PlannedStep, spec: &Build) {
        probe(p.target, step, spec, p.fx, p.sf).await;
    }

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Build,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        execute(live, step, spec, cx).await
    }

    /// The image is still there, the same one.
    async fn still_valid(
        live: &Live,
        _step: &PlannedStep,
        facts: &Value,
        _artifacts: &Path,
    ) -> Result<(), String> {
        let tag = facts
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let engine = live.engine().await.map_err(|e| e.to_string())?;
        let now = engine.image_id(tag).await.map_err(|e| e.to_string())?;
        if now.as_deref() == facts.get("image_id").and_then(Value::as_str) {
            Ok(())
        } else {
            Err(format!("image `{tag}` is gone or was replaced"))
        }
    }
}

fn describe(step: &Step, b: &Build, ctx: &PlanContext) -> Described {
    let mut reads: Vec<String> = b
        .copy
        .iter()
        .map(|(from, _)| format!("artifacts/{from}/ (manifest re-verified first)"))
        .collect();
    reads.push(format!("base image {} on the target", b.base));
    let mut details = vec![format!("FROM {}", b.base)];
    let owner = b
        .owner
        .as_ref()
        .map_or_else(String::new, |o| format!(" (owned by {o})"));
    details.extend(
        b.copy
            .iter()
            .map(|(from, to)| format!("COPY {from} -> {to}{owner}")),
    );
    details.extend(b.omit.iter().map(|(from, rel, by)| {
        format!("without {from}:{rel} (delivered at deploy time by step `{by}`, never in a layer)")
    }));
    details.push(
        "refused if a copied file holds credentials (a literal password in a well-known config file, or a secret's value) that `allow_secrets_in` does not name"
            .into(),
    );
    details.extend(b.run.iter().map(|r| format!("RUN {r}")));
    if let Some(w) = &b.workdir {
        details.push(format!("WORKDIR {w}"));
    }
    details.extend(b.env.iter().map(|(k, v)| format!("ENV {k}={v}")));
    if let Some(u) = &b.user {
        details.push(format!("USER {u}"));
    }
    if !b.expose.is_empty() {
        let ports: Vec<String> = b.expose.iter().map(u16::to_string).collect();
        details.push(format!("EXPOSE {}", ports.join(" ")));
    }
    if let Some(c) = &b.cmd {
        details.push(format!(
            "CMD {}",
            serde_json::to_string(c).unwrap_or_default()
        ));
    }
    details.push(format!(
        "LABEL boyong.app={} boyong.run=<run-id> boyong.step={} boyong.source.sha256=<digest known after fetch>",
        ctx.app, step.id
    ));
    Described {
        reads,
        changes: vec![Change {
            now: None,
            part: None,
            op: Op::Create,
            resource: Resource::Image,
            place: Place::Target,
            name: ctx.build_tag(&step.id),
            details,
            condition: None,
            undo: "remove the tag (and the image, if nothing else uses it)".into(),
        }],
    }
}

/// A fetched artifact, verified against its manifest and tree file: its tree, and the
/// manifest's digest.
fn verified(artifacts: &Path, from: &str) -> Result<(Tree, String), StepError> {
    let dir = artifacts.join(from);
    let read = |p: PathBuf| {
        fs::read(&p).map_err(|e| StepError::fatal(format!("cannot read {}: {e}", p.display())))
    };
    let m = read(artifacts.join(format!("{from}.manifest")))?;
    let t = read(artifacts.join(format!("{from}.tree")))?;
    let tree = manifest::parse(&m, &t).map_err(StepError::Fatal)?;
    manifest::verify(&dir, &tree).map_err(|e| {
        StepError::fatal(format!(
            "artifact `{from}` changed since it was pulled: {e}; nothing was built"
        ))
    })?;
    Ok((tree, crate::digest::hex(&Sha256::digest(&m))))
}

/// The owner of the copied files when written as numbers (`33`, `33:33`); `None` for a
/// name, which only the base image's `/etc/passwd` knows.
fn numeric_owner(o: &str) -> Option<(u64, u64)> {
    let (u, g) = o.split_once(':').unwrap_or((o, o));
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Builds the image: artifacts re-verified, the context streamed, labels set.
async fn execute(
    live: &Live,
    step: &PlannedStep,
    b: &Build,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let change = step
        .changes
        .first()
        .ok_or_else(|| StepError::failed("a build step lists its image"))?;
    let tag = change.name.clone();
    let artifacts = cx.artifacts().to_path_buf();
    let mut trees = Vec::new();
    let mut sources = String::new();
    for (from, _) in &b.copy {
        let (mut tree, digest) = verified(&artifacts, from)?;
        let _ = writeln!(sources, "{from} {digest}");
        // Files a deploy delivers (the app's config) are left out of every layer.
        tree.retain(|path, _| {
            !b.omit
                .iter()
                .any(|(f, rel, _)| f == from && rel.as_bytes() == path.as_slice())
        });
        trees.push((from.clone(), artifacts.join(from), tree));
    }
    let (count, bytes) =
        trees
            .iter()
            .flat_map(|(_, _, t)| t.values())
            .fold((0u64, 0u64), |(n, total), node| match node {
                crate::artifact::Node::File { size, .. } => (n + 1, total + size),
                _ => (n, total),
            });
    cx.output(&format!(
        "verified {count} file(s), {}, against the manifest{}",
        human_bytes(bytes),
        if b.omit.is_empty() {
            String::new()
        } else {
            format!(" ({} delivered at deploy time left out)", b.omit.len())
        }
    ));
    refuse_credentials(b, &trees, cx.secrets())?;
    if let Some((from, path)) = context::whiteout_name(&trees) {
        return Err(StepError::fatal(format!(
            "artifact `{from}` holds `{}`: names starting `.wh.` mark deletions in image layers and no image can hold such a file; exclude it (`fetch.exclude`) or rename it on the vendor host; nothing was built",
            crate::escape::controls(&path)
        )));
    }
    let source = if b.copy.len() == 1 {
        sources
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    } else {
        crate::digest::hex(&Sha256::digest(sources.as_bytes()))
    };
    let engine = live.engine().await?;
    if engine
        .image_id(&b.base)
        .await
        .map_err(docker_err)?
        .is_none()
    {
        return Err(StepError::fatal(format!(
            "base image `{}` is not on the target engine ({}), and no registry is used: build it there first (e.g. `bash fixtures/base-images.sh busybox` for boyong-fixture/busybox:1) or `docker load` it",
            b.base,
            engine.endpoint()
        )));
    }
    let mut labels: HashMap<String, String> =
        labels(live.extra_labels(), live.app(), cx.run_id(), &step.id);
    labels.insert(LABEL_SOURCE.into(), source.clone());
    // The values are checked as a Dockerfile would carry them (one line each, names).
    super::dockerfile::dockerfile(b).map_err(StepError::Fatal)?;
    let undo = Undo::RemoveImage { tag: tag.clone() };
    let id = cx.intent(change, &undo)?;
    let t = std::time::Instant::now();
    // No `run`: the files are one layer on the base, loaded with no container at all.
    // Otherwise (or on an engine that cannot load a layer alone) they go into a helper
    // container of the base, the `run` commands run in it once, and it is committed: one layer either way.
    let layered = b.run.is_empty() && engine.loads_partial_archives();
    let named_owner = b.owner.as_deref().filter(|o| numeric_owner(o).is_none());
    let helper = format!("{}.build", tag.replace([':', '/'], "-"));
    let hid = if layered && named_owner.is_none() {
        None
    } else {
        let part = super::common::part(
            change,
            &format!("through the helper container `{helper}` (removed once used)"),
        );
        Some(cx.intent(
            &part,
            &Undo::RemoveContainer {
                name: helper.clone(),
            },
        )?)
    };
    let owner = match (b.owner.as_deref(), named_owner) {
        (None, _) => (0, 0),
        (Some(o), None) => numeric_owner(o).unwrap_or((0, 0)),
        (Some(o), Some(_)) => engine
            .owner_ids(&b.base, &helper, o)
            .await
            .map_err(|e| StepError::fatal(format!("`owner: {o}`: {e}")))?,
    };
    let files = make::Files {
        trees: std::sync::Arc::new(trees),
        dests: std::sync::Arc::new(b.copy.iter().map(|(_, to)| to.clone()).collect()),
        owner,
    };
    let config = image_config(b, labels.clone());
    let mut lines = Vec::new();
    let built = if layered {
        make::layered(&engine, &b.base, &tag, &files, &config).await
    } else {
        make::committed(&engine, &b.base, &helper, &tag, &files, config, &mut |l| {
            lines.push(l.to_string());
        })
        .await
    };
    for l in &lines {
        cx.detail(l);
    }
    if !b.run.is_empty() {
        cx.output(&format!(
            "ran {} `run` command(s) in the helper: {} line(s) of output{}",
            b.run.len(),
            lines.len(),
            if lines.is_empty() {
                ""
            } else {
                " (shown with --verbose; all in the run's log.jsonl)"
            }
        ));
    }
    if let Some(hid) = hid {
        cx.done(&hid, &json!({}))?;
    }
    let (image_id, context_sha256) = built.map_err(docker_err)?;
    cx.output(&format!(
        "image {tag} ({}) made in {:.1} s ({}{})",
        short(&image_id),
        t.elapsed().as_secs_f64(),
        if layered {
            "the files loaded as one layer on the base, no container"
        } else {
            "the files committed onto the base in one layer"
        },
        if b.run.is_empty() {
            String::new()
        } else {
            format!(", after {} `run` command(s)", b.run.len())
        }
    ));
    let facts = json!({
        "image": tag,
        "image_id": image_id,
        "context_sha256": context_sha256,
        "source_sha256": source,
        "labels": labels,
        "builder": if layered { "load" } else { "commit" },
    });
    cx.done(&id, &facts)?;
    Ok(facts)
}

/// The configuration of an image made without the builder: what the Dockerfile would say.
fn image_config(b: &Build, labels: HashMap<String, String>) -> crate::docker::ImageConfig {
    crate::docker::ImageConfig {
        labels,
        user: b.user.clone(),
        env: b.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cmd: b.cmd.clone(),
        entrypoint: None,
        run: b.run.clone(),
        expose: b.expose.iter().map(|p| format!("{p}/tcp")).collect(),
        workdir: b.workdir.clone(),
    }
}

/// Refuses (before any change) when a file about to go into an image layer holds the
/// vendor's credentials or one of the playbook's secrets, unless `allow_secrets_in`
/// names its path in the image.
fn refuse_credentials(
    b: &Build,
    trees: &[(String, PathBuf, Tree)],
    secrets: &crate::secret::SecretStore,
) -> Result<(), StepError> {
    let values: Vec<(String, Vec<u8>)> = secrets
        .named()
        .map(|(n, v)| (n.to_string(), v.expose().as_bytes().to_vec()))
        .collect();
    let mut found = Vec::new();
    for (from, dir, tree) in trees {
        let to = b
            .copy
            .iter()
            .find(|(f, _)| f == from)
            .map_or("", |(_, t)| t.trim_end_matches('/'));
        let allowed = |rel: &str| {
            b.allow_secrets_in
                .iter()
                .any(|a| *a == format!("{to}/{rel}"))
        };
        let hits = crate::artifact::credentials::scan(dir, tree, &values, &allowed)
            .map_err(|e| StepError::fatal(format!("cannot scan artifact `{from}`: {e}")))?;
        found.extend(
            hits.into_iter()
                .map(|h| format!("{to}/{} (from `{from}`: {})", h.path, h.what.join(", "))),
        );
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(StepError::fatal(format!(
        "the vendor's credentials would be written into an image layer: {}; nothing was built. Deliver the app's config at deploy time with `deploy.files` (a template, or the fetched file with `replace`), leave the file out with the fetch's `exclude`, or, if it must stay, name it in `allow_secrets_in`",
        found.join("; ")
    )))
}

/// A build step: its base image, and the tag it moves if that exists.
/// Whether an image user is root (`0`, `root`, with or without a group).
fn is_root(user: &str) -> bool {
    matches!(user.split(':').next(), Some("0" | "root"))
}

async fn probe(
    t: Option<&Target>,
    step: &PlannedStep,
    b: &crate::playbook::Build,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let bytes: u64 = b
        .copy
        .iter()
        .filter_map(|(from, _)| fx.fetched.get(from).map(|t| t.bytes))
        .sum();
    for (from, _) in &b.copy {
        sf.found.push(match fx.fetched.get(from) {
            Some(t) => format!(
                "context: artifact `{from}` ({} files, {} as probed; its digest is known after fetch)",
                t.files,
                human_bytes(t.bytes)
            ),
            None => format!("context: artifact `{from}` (size known after fetch)"),
        });
    }
    // Files copied as root's and readable by no one else, in an image that runs as
    // another user: the app cannot read them (a 0640 `wp-config.php`: every page a 500).
    if let Some(user) = b.user.as_ref().filter(|u| !is_root(u))
        && b.owner.is_none()
    {
        let private: Vec<String> = b
            .copy
            .iter()
            .filter_map(|(from, _)| {
                let t = fx.fetched.get(from)?;
                (t.private.count > 0).then(|| format!("`{from}`: {}", t.private.shown()))
            })
            .collect();
        if !private.is_empty() {
            fx.problem(
                Some(&step.id),
                format!(
                    "the image runs as user {user}, but the copied files are root's and some are readable by no one else ({}): the app could not read them",
                    private.join("; ")
                ),
                format!("set `owner: \"{user}\"` on the build (the user the app runs as), or make those files readable on the vendor host"),
            );
        }
    }
    // The vendor's credentials that would reach a layer: well-known config files with
    // literal passwords, neither delivered by a deploy nor allowed.
    let mut leaks = Vec::new();
    for (from, to) in &b.copy {
        let Some(t) = fx.fetched.get(from) else {
            continue;
        };
        for (path, keys) in &t.credentials {
            let in_image = format!("{}/{path}", to.trim_end_matches('/'));
            let delivered = b.omit.iter().any(|(f, rel, _)| f == from && rel == path);
            if !delivered && !b.allow_secrets_in.contains(&in_image) {
                leaks.push(format!("{in_image} ({})", keys.join(", ")));
            }
        }
    }
    if !leaks.is_empty() {
        fx.problem(
            Some(&step.id),
            format!(
                "the vendor's credentials would be written into an image layer: {}; the build refuses this",
                leaks.join("; ")
            ),
            "deliver the app's config at deploy time with `deploy.files` (the fetched file edited with `replace`, or a template), or leave the file out with the fetch's `exclude`, or name it in `allow_secrets_in`",
        );
    }
    let known = b.copy.iter().all(|(from, _)| fx.fetched.contains_key(from));
    sf.estimate = Some(Estimate {
        bytes: known.then_some(bytes),
        seconds: 3.0 + secs(bytes, 100e6),
        basis: "context sent at ~100 MB/s plus the base image's RUN commands".into(),
    });
    fx.target_bytes += bytes;
    let Some(t) = t else { return };
    image_present(t, &b.base, Some(&step.id), fx, sf).await;
    if let Some(tag) = &b.tag {
        let n = step
            .changes
            .iter()
            .position(|c| c.resource == Resource::Image);
        if let (Some(n), Ok(Some(img))) = (n, t.engine.image_id(tag).await) {
            sf.now[n] = Some(format!(
                "the tag exists ({}): it moves to the new image; rollback moves it back",
                short(&img)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::manifest::{manifest_bytes, tree_bytes};
    use bytes::Bytes;
    use context::{ChunkWriter, write_files};

    /// An artifact as a fetch leaves it: `artifacts/code/` with its manifest and tree file.
    fn artifact(artifacts: &Path) {
        let src = artifacts.join("src");
        fs::create_dir_all(src.join("www")).expect("mkdir");
        fs::write(src.join("www/index.html"), b"<h1>halo</h1>\n").expect("write");
        let tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .args(["-cf", "-", "."])
            .output()
            .expect("tar");
        fs::create_dir(artifacts.join("code")).expect("mkdir");
        let u = crate::artifact::unpack(tar.stdout.as_slice(), &artifacts.join("code"))
            .expect("unpacks");
        fs::write(artifacts.join("code.manifest"), manifest_bytes(&u.tree)).expect("manifest");
        fs::write(artifacts.join("code.tree"), tree_bytes(&u.tree)).expect("tree");
    }

    #[test]
    fn an_artifact_changed_at_rest_is_refused_naming_the_file() {
        let d = tempfile::tempdir().expect("tempdir");
        artifact(d.path());
        let (_, digest) = verified(d.path(), "code").expect("verifies");
        assert_eq!(
            digest,
            crate::digest::hex(&Sha256::digest(
                fs::read(d.path().join("code.manifest")).expect("read")
            ))
        );
        fs::write(d.path().join("code/www/index.html"), b"<h1>HALO</h1>\n").expect("tamper");
        let err = verified(d.path(), "code").expect_err("refused").to_string();
        assert!(
            err.contains("www/index.html") && err.contains("changed"),
            "{err}"
        );
    }

    #[test]
    fn the_same_artifact_gives_the_same_bytes_owned_and_timed_alike() {
        let d = tempfile::tempdir().expect("tempdir");
        artifact(d.path());
        let context = || {
            let (tree, _) = verified(d.path(), "code").expect("verifies");
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
            let out = ChunkWriter {
                tx,
                hash: Sha256::new(),
                buf: Vec::new(),
            };
            let trees = [("code".into(), d.path().join("code"), tree)];
            let dests = ["/var/www".to_string()];
            let digest = crate::digest::hex(
                &write_files(out, &trees, &dests, (33, 33))
                    .expect("writes")
                    .hash
                    .finalize(),
            );
            // The first pass of a layered build measures the same bytes.
            let m = write_files(context::Measure::default(), &trees, &dests, (33, 33))
                .expect("measures");
            assert_eq!(crate::digest::hex(&m.hash.finalize()), digest);
            let mut bytes = Vec::new();
            while let Ok(b) = rx.try_recv() {
                bytes.extend_from_slice(&b);
            }
            assert_eq!(m.size, bytes.len() as u64);
            (digest, bytes)
        };
        let (a, bytes) = context();
        // Touch the file's time: the context does not change.
        let f = fs::File::options()
            .append(true)
            .open(d.path().join("code/www/index.html"))
            .expect("open");
        f.set_modified(std::time::SystemTime::now()).expect("mtime");
        let (b, _) = context();
        assert_eq!(a, b);
        assert_eq!(a, crate::digest::hex(&Sha256::digest(&bytes)));
        let mut ar = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["var/www", "var/www/www", "var/www/www/index.html"]);
        // Every entry has the fixed, non-zero time (OPcache caches no file of time 0).
        let mut ar = tar::Archive::new(bytes.as_slice());
        for entry in ar.entries().expect("entries") {
            let entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(header.mtime().expect("mtime"), CONTEXT_MTIME);
            let owner = (header.uid().expect("uid"), header.gid().expect("gid"));
            assert_eq!(owner, (33, 33));
        }
        assert_ne!(CONTEXT_MTIME, 0);
    }
}
