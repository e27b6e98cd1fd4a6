//! `restore`: load a verified dump into a database container on the target and prove
//! it equal, table by table.

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::build::docker_err;
use super::db::{Conn, Dialect, Evidence, rewrite_definer};
use super::deploy_run::{change, part};
use super::live::{Live, nothing_to_undo};
use super::{Described, hardening, network_if_missing};
use crate::docker::{ContainerSpec, Engine};
use crate::engine::{StepCx, StepError};
use crate::plan::{Change, Op, Place, PlannedStep, Resource};
use crate::playbook::{Dump, Restore, Secret, Security, StepKind};

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

pub(super) fn describe(r: &Restore) -> Described {
    let mut changes = Vec::new();
    if r.replace {
        changes.push(Change {
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
        changes.push(network_if_missing(n));
    }
    let mut details = vec![
        format!("image {}", r.image),
        format!("volume {}", r.volume),
        format!("password {}", r.password),
    ];
    details.extend(hardening(&db_security()));
    changes.push(Change {
        op: Op::Create,
        resource: Resource::Container,
        place: Place::Target,
        name: r.name.clone(),
        details,
        condition: None,
        undo: "stop and remove it".into(),
    });
    changes.push(Change {
        op: Op::Replace,
        resource: Resource::Database,
        place: Place::Target,
        name: format!("{} <- artifacts/{}.sql.gz", r.name, r.from),
        details: vec!["dump re-verified, streamed in through the Docker API; row counts and checksums compared per table".into()],
        condition: None,
        undo: "removed with its container and volume".into(),
    });
    Described {
        reads: vec![format!("artifacts/{}.sql.gz (SHA-256 re-verified)", r.from)],
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
    Ok(Secret::new(crate::playbook::hex(&bytes)))
}

/// Runs a query in the container; its output.
async fn query(
    engine: &Engine,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
    sql: &str,
) -> Result<String, String> {
    let out = engine
        .exec_io(name, &dialect.container_query(c, sql), env, None, 64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if out.code == 0 {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The restored database's evidence.
async fn evidence(
    engine: &Engine,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
) -> Result<Evidence, StepError> {
    let fail = |e: String| StepError::Fatal(format!("the evidence query in `{name}` failed: {e}"));
    let out = query(engine, name, dialect, c, env, dialect.tables_sql())
        .await
        .map_err(fail)?;
    let (version, tables) = dialect.parse_tables(&out);
    let out = if tables.is_empty() {
        String::new()
    } else {
        query(engine, name, dialect, c, env, &dialect.counts_sql(&tables))
            .await
            .map_err(fail)?
    };
    dialect
        .parse_counts(version, &tables, &out)
        .map_err(StepError::Fatal)
}

/// Waits until the server in `name` takes logins over TCP (after its first-start
/// initialisation), or says why not.
async fn wait_ready(
    engine: &Engine,
    name: &str,
    dialect: Dialect,
    c: &Conn<'_>,
    env: &[String],
    limit: Duration,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let t0 = Instant::now();
    let mut last = String::new();
    loop {
        match engine.container(name).await.map_err(docker_err)? {
            Some(s) if s.running => {}
            _ => {
                return Err(StepError::fatal(format!(
                    "the database container `{name}` stopped while starting (see `docker logs {name}`){}",
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                )));
            }
        }
        match query(engine, name, dialect, c, env, "SELECT 1").await {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        if t0.elapsed() >= limit {
            return Err(StepError::fatal(format!(
                "the database in `{name}` did not take logins within {}s: {last}",
                limit.as_secs()
            )));
        }
        cx.output("waiting for the database server to start");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads the dump, decompressed (and, for MariaDB/MySQL, with DEFINER clauses made the
/// app's user), in chunks for the container's stdin.
fn feed(
    path: std::path::PathBuf,
    dialect: Dialect,
    definer: &[u8],
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> std::io::Result<u64> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
    if dialect == Dialect::Pg {
        // Passed through as it is, in pieces of bounded size whatever a line's length.
        let mut gz = gz;
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            let n = gz.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            buf.truncate(n);
            if tx.blocking_send(Bytes::from(buf)).is_err() {
                break;
            }
        }
        drop(tx);
        return Ok(total);
    }
    let mut r = std::io::BufReader::with_capacity(1 << 20, gz);
    let mut chunk = Vec::with_capacity(512 * 1024);
    let mut line = Vec::new();
    let mut total = 0u64;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        chunk.extend_from_slice(&rewrite_definer(&line, definer));
        if chunk.len() >= 256 * 1024 {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(512 * 1024));
            if tx.blocking_send(Bytes::from(full)).is_err() {
                return Ok(total);
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Bytes::from(chunk));
    }
    // Dropped: the container's stdin ends.
    drop(tx);
    Ok(total)
}

/// `replace: true` on an existing volume: its contents saved into the run's artifacts
/// (`ID.volume.tar`, hashed), then the volume emptied (removed and created again). The
/// undo puts the saved contents back into a fresh volume of the same name.
async fn replace_volume(
    engine: &Engine,
    step: &PlannedStep,
    r: &Restore,
    labels: &std::collections::HashMap<String, String>,
    cx: &mut StepCx<'_>,
) -> Result<(), StepError> {
    let c = change(step, Op::Replace, Resource::Volume)?;
    let snapshot = cx.artifacts().join(format!("{}.volume.tar", step.id));
    let run = labels.get("boyong.run").cloned().unwrap_or_default();
    let helper = format!("{}.snapshot-{run}", r.name);
    let id = cx.intent(
        &part(
            c,
            &format!("save its contents into artifacts/{}.volume.tar", step.id),
        ),
        &json!({"action": "remove-container", "name": helper}),
    )?;
    let (sha256, bytes) = engine
        .snapshot_volume(&r.volume, &r.image, &helper, labels, &snapshot)
        .await
        .map_err(|e| StepError::fatal(format!("cannot save volume `{}`: {e}", r.volume)))?;
    cx.done(&id, &json!({"sha256": sha256, "bytes": bytes}))?;
    cx.output(&format!(
        "volume `{}` saved: {bytes} bytes, SHA-256 {sha256}",
        r.volume
    ));
    let id = cx.intent(
        &part(c, "emptied: removed and created again"),
        &json!({
            "action": "restore-volume",
            "name": r.volume,
            "image": r.image,
            "helper": helper,
            "snapshot": snapshot,
            "sha256": sha256,
            "labels": labels,
        }),
    )?;
    engine
        .remove_volume(&r.volume)
        .await
        .map_err(|e| StepError::fatal(format!("cannot empty volume `{}`: {e}", r.volume)))?;
    engine
        .create_volume(&r.volume, labels)
        .await
        .map_err(docker_err)?;
    cx.done(&id, &json!({}))?;
    Ok(())
}

/// Undoes `restore-volume`: the saved contents, checked against their hash, put back.
pub(super) async fn undo_volume(engine: &Engine, data: &Value) -> Result<(), StepError> {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let snapshot = std::path::Path::new(s("snapshot"));
    let sum = super::dump::file_sha256(snapshot).map_err(StepError::Failed)?;
    if sum != s("sha256") {
        return Err(StepError::failed(format!(
            "{} changed since it was saved: volume `{}` is not restored from it",
            snapshot.display(),
            s("name")
        )));
    }
    let labels: std::collections::HashMap<String, String> = data
        .get("labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    engine
        .restore_volume(s("name"), s("image"), s("helper"), &labels, snapshot)
        .await
        .map_err(|e| StepError::failed(e.to_string()))
}

/// Restores: the dump re-verified, a volume and a hardened database container created,
/// the dump streamed in through the Docker API, then the evidence compared table by table.
pub(super) async fn execute(
    live: &Live,
    step: &PlannedStep,
    r: &Restore,
    cx: &mut StepCx<'_>,
) -> Result<Value, StepError> {
    let d = dump_of(live, r)?;
    let dialect = Dialect::of(d.engine);
    let dumped = super::dump::verify(cx.artifacts(), &r.from).map_err(StepError::Fatal)?;
    let password: Secret = r.password.resolve(cx.secrets()).map_err(StepError::Fatal)?;
    let engine = live.engine().await?;
    let run = cx
        .artifacts()
        .parent()
        .and_then(std::path::Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut labels = live.extra_labels().clone();
    labels.insert("boyong.app".into(), live.app().to_string());
    labels.insert("boyong.run".into(), run);
    labels.insert("boyong.step".into(), step.id.clone());

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
    if engine.volume_exists(&r.volume).await.map_err(docker_err)? {
        if !r.replace {
            return Err(StepError::fatal(format!(
                "volume `{}` exists already: it is not overwritten unless the step says `replace: true` (its contents are then saved first, for rollback)",
                r.volume
            )));
        }
        replace_volume(&engine, step, r, &labels, cx).await?;
    } else {
        let c = change(step, Op::Create, Resource::Volume)?;
        let id = cx.intent(c, &json!({"action": "remove-volume", "name": r.volume}))?;
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
        let id = cx.intent(c, &json!({"action": "remove-network", "name": n}))?;
        engine
            .create_network(n, &labels)
            .await
            .map_err(docker_err)?;
        cx.done(&id, &json!({}))?;
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
    let c = change(step, Op::Create, Resource::Container)?;
    let id = cx.intent(c, &json!({"action": "remove-container", "name": r.name}))?;
    let container_id = engine
        .create_container(&r.name, &spec)
        .await
        .map_err(docker_err)?;
    engine.start(&r.name).await.map_err(docker_err)?;
    cx.done(&id, &json!({"container_id": container_id}))?;

    // The superuser checks readiness, makes the app's role (PostgreSQL), loads a
    // MariaDB/MySQL dump (its events and routines need it) and reads the evidence; the
    // app's own user loads a PostgreSQL dump, so that it owns what the dump makes.
    let env = vec![dialect.env(&admin)];
    let conn = conn_as(dialect, d, dialect.admin());
    wait_ready(
        &engine,
        &r.name,
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
                &r.name,
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
    let id = cx.intent(c, &nothing_to_undo())?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let path = super::dump::paths(cx.artifacts(), &r.from)[0].clone();
    let definer = Dialect::definer(&d.user);
    let feeding = tokio::task::spawn_blocking(move || feed(path, dialect, &definer, tx));
    let loaded = engine
        .exec_io(
            &r.name,
            &dialect.load_command(&load_conn),
            &load_env,
            Some(rx),
            64 * 1024,
        )
        .await
        .map_err(docker_err)?;
    let sql_bytes = feeding
        .await
        .map_err(|e| StepError::failed(format!("the reading thread failed: {e}")))?
        .map_err(|e| StepError::Fatal(format!("cannot read the dump: {e}")))?;
    if loaded.code != 0 {
        let err = String::from_utf8_lossy(&loaded.stderr);
        return Err(StepError::fatal(format!(
            "loading the dump into `{}` failed (exit status {}): {}",
            r.name,
            loaded.code,
            err.trim()
        )));
    }
    let restored = evidence(&engine, &r.name, dialect, &conn, &env).await?;
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
    let facts = json!({
        "container": r.name,
        "container_id": container_id,
        "image": r.image,
        "volume": r.volume,
        "sql_bytes": sql_bytes,
        "server": restored.server,
        "tables": restored.tables.len(),
        "rows": restored.rows(),
        "checksums_compared": checksums,
        "evidence": restored.tables,
    });
    cx.done(&id, &facts)?;
    Ok(facts)
}
