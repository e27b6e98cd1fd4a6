//! `restore`: load a verified dump into a database container on the target and prove
//! it equal, table by table.
//!
//! Two ways: on its own, the dump is verified against its manifest first, then loaded; in
//! a pipelined pair with its `dump` (the step right before, [`StepCx::follow`]), the
//! container is made and started while the dump streams, the dump is loaded as it is
//! written, and once the dump step finished, the SHA-256 of what was loaded must equal the
//! manifest's, and the files verify, before the evidence is compared. Either way every
//! change is journaled before it is made, and the evidence must match table by table.

use std::time::Duration;

mod db;
mod probe;
mod rewrite;
mod serialized;
mod service;
mod volume;

use volume::replace_volume;
pub(crate) use volume::{undo_volume, unreplaceable};

use bytes::Bytes;
use serde_json::{Value, json};

use super::common::{change, docker_err, hardening, labels, network_if_missing};
use super::db::{Conn, Dialect};
use super::live::Live;
use super::probe::ProbeCx;
use super::{Described, Kind};
use crate::docker::{ContainerSpec, VolumeStorage};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlanContext, PlannedStep, Resource, Undo};
use crate::playbook::{Dump, Restore, Security, Step, StepKind};
use crate::secret::Secret;
use db::{evidence, feed, wait_ready};

/// The `restore` kind.
pub(crate) struct RestoreStep;

impl Kind for RestoreStep {
    type Spec = Restore;

    fn describe(step: &Step, spec: &Restore, ctx: &PlanContext) -> Described {
        describe(step, spec, ctx)
    }

    async fn probe(p: &mut ProbeCx<'_>, step: &PlannedStep, spec: &Restore) {
        probe::restore(p.target, step, spec, p.fx, p.sf).await;
    }

    async fn execute(
        live: &Live,
        step: &PlannedStep,
        spec: &Restore,
        cx: &mut StepCx<'_>,
    ) -> Result<Value, StepError> {
        execute(live, step, spec, cx).await
    }
}

/// How a database container is hardened: as a deploy's (read-only root, no new
/// privileges, all capabilities dropped), except that the server writes to tmpfs /run and
/// /tmp, may use 1 GiB and 512 threads, and keeps SETUID and SETGID: the image's
/// entrypoint starts as root and drops to the server's own user.
pub(super) fn db_security() -> Security {
    Security {
        tmpfs: vec!["/tmp".into(), "/run".into()],
        memory: crate::playbook::units::Size(1 << 30),
        pids: 512,
        cap_add: ["SETUID", "SETGID"].map(String::from).to_vec(),
        ..Security::default()
    }
}

fn describe(step: &Step, r: &Restore, ctx: &PlanContext) -> Described {
    // Right after its dump, the restore runs beside it (the engine's pair): it reads the
    // file as it is written and checks the whole file's SHA-256 at the end. Otherwise (its
    // dump further up, or run on its own on resume) it re-verifies the file first.
    let read = if ctx.previous.get(&step.id) == Some(&r.from) {
        format!(
            "artifacts/{}.sql.gz, loaded while step `{}` writes it; its SHA-256 checked against the manifest at the end (re-verified first when it runs on its own, e.g. on resume)",
            r.from, r.from
        )
    } else {
        format!("artifacts/{}.sql.gz (SHA-256 re-verified)", r.from)
    };
    let mut changes = Vec::new();
    if r.replace {
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Replace,
            resource: Resource::Volume,
            place: Place::Target,
            name: r.volume.clone(),
            details: vec![
                "its current contents are snapshotted into the run's artifacts first".into(),
            ],
            condition: Some("if it exists".into()),
            undo: "restore the snapshot".into(),
        });
    }
    changes.push(Change {
        now: None,
        part: None,
        op: Op::Create,
        resource: Resource::Volume,
        place: Place::Target,
        name: r.volume.clone(),
        details: Vec::new(),
        condition: Some(
            if r.replace {
                "if missing"
            } else {
                "if missing; an existing one is refused unless `replace: true`"
            }
            .into(),
        ),
        undo: "remove it (only if this run created it)".into(),
    });
    if let Some(n) = &r.network {
        let mut c = network_if_missing(n);
        if r.service {
            c.details = vec!["an attachable overlay network".into()];
        }
        changes.push(c);
    }
    if r.service {
        changes.extend(service::changes(r, &step.id));
    }
    let mut details = vec![
        format!("image {}", r.image),
        format!("volume {}", r.volume),
        format!("password {}", r.password),
    ];
    details.extend(hardening(&db_security()));
    if !r.service {
        changes.push(Change {
        now: None,
        part: None,
        op: Op::Create,
        resource: Resource::Container,
        place: Place::Target,
        name: r.name.clone(),
        details,
        condition: None,
        undo: format!(
            "stop and remove it, its database first dumped into rollback/{}.sql.gz (unless `rollback --discard-data`)",
            step.id
        ),
        });
    }
    changes.push(Change {
        now: None,
        part: None,
        op: Op::Replace,
        resource: Resource::Database,
        place: Place::Target,
        name: format!("{} <- artifacts/{}.sql.gz", r.name, r.from),
        details: vec!["the dump streamed in through the Docker API; row counts and checksums compared per table".into()],
        condition: None,
        undo: "removed with its container and volume, dumped first".into(),
    });
    if !r.rewrite.is_empty() {
        let mut details: Vec<String> = r
            .rewrite
            .iter()
            .map(|w| format!("`{}` -> `{}`", w.from, w.to))
            .collect();
        details.push("in every text column of every table with a primary key, after the load is proven equal to the dump; PHP-serialized values keep their lengths right; rows changed per table are recorded".into());
        changes.push(Change {
            now: None,
            part: None,
            op: Op::Replace,
            resource: Resource::Database,
            place: Place::Target,
            name: format!("{}: the app's URL in its data", r.name),
            details,
            condition: None,
            undo: "removed with its container and volume".into(),
        });
    }
    Described {
        reads: vec![read],
        changes,
    }
}

/// The dump step a restore loads.
fn dump_of<'a>(live: &'a Live, r: &Restore) -> Result<&'a Dump, StepError> {
    match live.playbook_step(&r.from).map(|s| &s.kind) {
        Some(StepKind::Dump(d)) => Ok(d),
        _ => Err(StepError::fatal(format!("`{}` is not a dump step", r.from))),
    }
}

/// A client connection inside the database container, as `user`.
fn conn_as<'a>(dialect: Dialect, d: &'a Dump, user: &'a str) -> Conn<'a> {
    Conn {
        host: "127.0.0.1",
        port: dialect.port(),
        user,
        database: &d.database,
    }
}

/// A password for the database server's superuser, made for this restore: never in the
/// playbook, the journal or any output; the container's environment holds it.
fn admin_password() -> Result<Secret, StepError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| StepError::fatal(format!("cannot read /dev/urandom: {e}")))?;
    Ok(Secret::new(crate::digest::hex(&bytes)))
}

/// Where the SQL comes from.
enum Source {
    /// The complete artifact, verified.
    File(std::fs::File),
    /// The artifact as the dump step writes it.
    Growing(crate::engine::stream::FollowReader),
}

/// After a load from the dump as it was written: the dump step finished, the SHA-256 of
/// the bytes loaded (and their count) is the manifest's, and the files verify. The
/// dump's evidence.
async fn loaded_as_written(
    cx: &StepCx<'_>,
    from: &str,
    follow: Option<&mut crate::engine::stream::Follow>,
    read: Option<(u64, String)>,
) -> Result<super::db::Evidence, StepError> {
    use crate::engine::stream::End;
    let (Some(f), Some((bytes, sha256))) = (follow, read) else {
        return Err(StepError::fatal("the dump was not read as it was written"));
    };
    let (want_bytes, want) = match f.ended().await {
        End::Finished { bytes, sha256 } => (bytes, sha256),
        End::Failed(e) => {
            return Err(StepError::failed(format!(
                "the dump of step `{from}` stopped: {e}"
            )));
        }
        End::Open => return Err(StepError::failed("the dump did not end")),
    };
    let manifest =
        crate::steps::dump::dump_sha256(cx.artifacts(), from).map_err(StepError::Fatal)?;
    if bytes != want_bytes || sha256 != want || sha256 != manifest {
        return Err(StepError::fatal(format!(
            "the dump loaded ({bytes} bytes, SHA-256 {sha256}) is not the dump step `{from}` made ({want_bytes} bytes, SHA-256 {manifest} in its manifest)"
        )));
    }
    crate::steps::dump::verify(cx.artifacts(), from).map_err(StepError::Fatal)
}

/// Restores: the dump re-verified, a volume and a hardened database container created,
/// the dump streamed in through the Docker API, then the evidence compared table by table.
async fn execute(
    live: &Live,
    step: &PlannedStep,
    r: &Restore,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let d = dump_of(live, r)?;
    let dialect = Dialect::of(d.engine);
    let mut follow = cx.follow();
    // On its own, the dump is checked before anything is made; read as it is written, it
    // is checked once complete.
    let verified = match follow {
        None => {
            Some(crate::steps::dump::verify(cx.artifacts(), &r.from).map_err(StepError::Fatal)?)
        }
        Some(_) => None,
    };
    let password: Secret = r.password.resolve(cx.secrets()).map_err(StepError::Fatal)?;
    let engine = live.engine().await?;
    let labels = labels(live.extra_labels(), live.app(), cx.run_id(), &step.id);

    if engine
        .container(&r.name)
        .await
        .map_err(docker_err)?
        .is_some()
    {
        return Err(StepError::fatal(format!(
            "a container named `{}` exists already on the target; restore makes its own: remove that one or choose another `name`",
            r.name
        )));
    }
    if let Some(storage) = engine.volume_storage(&r.volume).await.map_err(docker_err)? {
        if !r.replace {
            return Err(StepError::fatal(format!(
                "volume `{}` exists already: it is not overwritten unless the step says `replace: true` (its contents are then saved first, for rollback)",
                r.volume
            )));
        }
        if let VolumeStorage::Custom(how) = storage {
            return Err(StepError::fatal(unreplaceable(&r.volume, &how)));
        }
        replace_volume(&engine, step, r, &labels, cx).await?;
    } else {
        let c = change(step, Op::Create, Resource::Volume)?;
        let id = cx.intent(
            c,
            &Undo::RemoveVolume {
                name: r.volume.clone(),
            },
        )?;
        engine
            .create_volume(&r.volume, &labels)
            .await
            .map_err(docker_err)?;
        cx.done(&id, &json!({}))?;
    }
    if let Some(n) = &r.network
        && !engine.network_exists(n).await.map_err(docker_err)?
    {
        let c = change(step, Op::Create, Resource::Network)?;
        if r.service {
            let undo = Undo::RemoveOverlay {
                detach: Vec::new(),
                name: n.clone(),
            };
            let id = cx.intent(c, &undo)?;
            engine
                .create_overlay(n, &labels)
                .await
                .map_err(docker_err)?;
            cx.done(&id, &json!({}))?;
        } else {
            let id = cx.intent(c, &Undo::RemoveNetwork { name: n.clone() })?;
            engine
                .create_network(n, &labels)
                .await
                .map_err(docker_err)?;
            cx.done(&id, &json!({}))?;
        }
    }

    let s = db_security();
    let admin = admin_password()?;
    let spec = ContainerSpec {
        image: r.image.clone(),
        env: dialect.server_env(&d.database, &d.user, &password, &admin),
        labels,
        ports: Vec::new(),
        binds: vec![format!("{}:{}", r.volume, dialect.data_dir())],
        network: r.network.clone(),
        read_only: s.read_only,
        no_new_privileges: s.no_new_privileges,
        cap_add: s.cap_add.clone(),
        memory: i64::try_from(s.memory.0).unwrap_or(i64::MAX),
        pids: i64::from(s.pids),
        restart: "unless-stopped".into(),
        tmpfs: s.tmpfs.clone(),
        log_max_size: s.log_max_size.0.to_string(),
        log_max_files: s.log_max_files,
        init: s.init,
    };
    if engine
        .image_id(&r.image)
        .await
        .map_err(docker_err)?
        .is_none()
    {
        return Err(StepError::fatal(format!(
            "image `{}` is not on the target engine: load it there (`docker load`), or build one with fixtures/base-images.sh",
            r.image
        )));
    }
    let (target, container_id) = if r.service {
        service::make(
            &engine,
            step,
            r,
            spec.env.clone(),
            dialect.data_dir(),
            &spec.labels,
            cx,
        )
        .await?
    } else {
        let c = change(step, Op::Create, Resource::Container)?;
        let id = cx.intent(
            c,
            &Undo::RemoveContainer {
                name: r.name.clone(),
            },
        )?;
        let container_id = engine
            .create_container(&r.name, &spec)
            .await
            .map_err(docker_err)?;
        engine.start(&r.name).await.map_err(docker_err)?;
        cx.done(&id, &json!({"container_id": container_id}))?;
        (r.name.clone(), container_id)
    };

    // The superuser checks readiness, makes the app's role (PostgreSQL), loads a
    // MariaDB/MySQL dump (its events and routines need it) and reads the evidence; the
    // app's own user loads a PostgreSQL dump, so that it owns what the dump makes.
    let env = vec![dialect.env(&admin)];
    let conn = conn_as(dialect, d, dialect.admin());
    wait_ready(
        &engine,
        &target,
        dialect,
        &conn,
        &env,
        Duration::from_secs(180),
        cx,
    )
    .await?;
    if let Some(sql) = dialect.app_role_sql(&d.database, &d.user, &password) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let _ = tx.send(Bytes::from(sql)).await;
        drop(tx);
        let made = engine
            .exec_io(
                &target,
                &dialect.load_command(&conn),
                &env,
                Some(rx),
                64 * 1024,
            )
            .await
            .map_err(docker_err)?;
        if made.code != 0 {
            return Err(StepError::fatal(format!(
                "cannot make the role `{}` in `{}`: {}",
                d.user,
                r.name,
                String::from_utf8_lossy(&made.stderr).trim()
            )));
        }
    }
    let (load_conn, load_env) = match dialect {
        Dialect::Pg => (conn_as(dialect, d, &d.user), vec![dialect.env(&password)]),
        Dialect::My(_) => (conn_as(dialect, d, dialect.admin()), env.clone()),
    };

    let c = change(step, Op::Replace, Resource::Database)?;
    let id = cx.intent(c, &Undo::None)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let path = crate::steps::dump::paths(cx.artifacts(), &r.from)[0].clone();
    let definer = Dialect::definer(&d.user);
    let source = match &mut follow {
        None => Source::File(
            std::fs::File::open(&path)
                .map_err(|e| StepError::Fatal(format!("cannot read {}: {e}", path.display())))?,
        ),
        Some(following) => {
            following.begun().await.map_err(|e| {
                StepError::failed(format!("the dump of step `{}` did not come: {e}", r.from))
            })?;
            Source::Growing(following.reader().map_err(|e| {
                StepError::failed(format!("cannot read the dump as it is written: {e}"))
            })?)
        }
    };
    let feeding = tokio::task::spawn_blocking(move || match source {
        Source::File(file) => feed(file, dialect, &definer, &tx).map(|(n, _)| (n, None)),
        Source::Growing(growing) => feed(growing, dialect, &definer, &tx)
            .map(|(n, growing)| (n, Some((growing.bytes(), growing.sha256())))),
    });
    let loaded = engine
        .exec_io(
            &target,
            &dialect.load_command(&load_conn),
            &load_env,
            Some(rx),
            64 * 1024,
        )
        .await
        .map_err(docker_err)?;
    let fed = feeding
        .await
        .map_err(|e| StepError::failed(format!("the reading thread failed: {e}")))?;
    if loaded.code != 0 {
        let err = String::from_utf8_lossy(&loaded.stderr);
        return Err(StepError::fatal(format!(
            "loading the dump into `{}` failed (exit status {}): {}",
            r.name,
            loaded.code,
            err.trim()
        )));
    }
    let (sql_bytes, read) = match (fed, &mut follow) {
        (Ok(fed), _) => fed,
        // Read as it was written: the dump step's failure is its own (and stops this one).
        (Err(why), Some(following)) => {
            return Err(match following.ended().await {
                crate::engine::stream::End::Finished { .. } => {
                    StepError::Fatal(format!("cannot read the dump as it was written: {why}"))
                }
                _ => StepError::failed(format!("the dump of step `{}` stopped: {why}", r.from)),
            });
        }
        (Err(why), None) => {
            return Err(StepError::Fatal(format!("cannot read the dump: {why}")));
        }
    };
    let dumped = match verified {
        Some(evidence) => evidence,
        None => loaded_as_written(cx, &r.from, follow.as_mut(), read).await?,
    };
    let restored = evidence(&engine, &target, dialect, &conn, &env).await?;
    let (diff, checksums) = restored.differences(&dumped);
    if !diff.is_empty() {
        return Err(StepError::fatal(format!(
            "the restored database differs from the dump: {}",
            diff.join("; ")
        )));
    }
    if !checksums {
        cx.output(&format!(
            "row counts compared; checksums not compared: the vendor ran {} and the target runs {}",
            dumped.server, restored.server
        ));
    }
    cx.output(&format!(
        "{} tables, {} rows: equal to the dump{}",
        restored.tables.len(),
        restored.rows(),
        if checksums {
            " (rows and checksums)"
        } else {
            " (rows)"
        }
    ));
    // Evidence for the report: the hardening as the engine applied it, not as asked.
    let settings = engine.applied_settings(&target).await.unwrap_or_default();
    let facts = json!({
        "container": r.name,
        "container_id": container_id,
        "image": r.image,
        "volume": r.volume,
        "settings": settings,
        "sql_bytes": sql_bytes,
        "server": restored.server,
        "tables": restored.tables.len(),
        "rows": restored.rows(),
        "checksums_compared": checksums,
        "evidence": restored.tables,
    });
    cx.done(&id, &facts)?;
    if r.rewrite.is_empty() {
        return Ok(facts);
    }
    let planned = format!("{}: the app's URL in its data", r.name);
    let c = step
        .changes
        .iter()
        .find(|c| c.name == planned)
        .ok_or_else(|| StepError::failed("the plan of this restore lists no rewrite"))?;
    let id = cx.intent(c, &Undo::None)?;
    let done = rewrite::rewrite(&engine, &target, dialect, &conn, &env, &r.rewrite).await?;
    let total: u64 = done.rows.values().sum();
    cx.output(&format!(
        "rewrite: {total} row(s) changed{}",
        if done.rows.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                done.rows
                    .iter()
                    .map(|(t, n)| format!("{t}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    if !done.skipped.is_empty() {
        cx.output(&format!(
            "rewrite: not changed (no primary key): {}",
            done.skipped.join(", ")
        ));
    }
    let rewritten = json!({ "rows": done.rows, "skipped": done.skipped, "total": total });
    cx.done(&id, &rewritten)?;
    let mut facts = facts;
    facts["rewrite"] = rewritten;
    Ok(facts)
}
