//! The live plan's look at a dump: the tool's version, and the database reached as the
//! dump will reach it (password on stdin), with its size. Read-only: `--version`, SELECT.

use crate::plan::{Estimate, PlannedStep};
use crate::steps::db::{Conn, Dialect};
use crate::steps::live::Live;
use crate::steps::probe::{Findings, PROBE_TIMEOUT, StepFound, Vendor, human_bytes, secs, sh};

/// A dump step: the tool's version, and the database reached as the dump will reach it
/// (password on stdin), with its size.
pub(super) async fn database(
    v: &Vendor,
    live: &Live,
    step: &PlannedStep,
    d: &crate::playbook::Dump,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let id = step.id.as_str();
    let tool = d.engine.dump_tool();
    match sh(
        v,
        &format!("command -v {tool} >/dev/null && {tool} --version | head -n 1"),
        None,
    )
    .await
    {
        Ok((0, out)) => sf.found.push(format!("{tool}: {}", out.trim())),
        _ => fx.problem(
            Some(id),
            format!("no `{tool}` on the vendor host"),
            format!("install the database's client tools there ({tool} comes with them)"),
        ),
    }
    let dialect = Dialect::of(d.engine);
    let password = match d
        .password
        .as_ref()
        .map(|t| t.resolve(live.secrets()))
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            fx.problem(Some(id), e, "set the secret the playbook names");
            return;
        }
    };
    let Ok(option_line) = dialect.password_line(password.as_ref()) else {
        fx.problem(
            Some(id),
            "the database password cannot be passed in an option file",
            "choose a password without line breaks or surrounding blanks",
        );
        return;
    };
    let conn = Conn {
        host: &d.host,
        port: d.port,
        user: &d.user,
        database: &d.database,
    };
    let sql = match dialect {
        Dialect::My(_) => {
            "SELECT VERSION(), COALESCE(SUM(data_length + index_length), 0), COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        Dialect::Pg => {
            "SELECT split_part(version(), ' ', 2), pg_database_size(current_database()), (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))"
        }
    };
    let permit = v.channels.acquire().await;
    let answer = tokio::time::timeout(
        PROBE_TIMEOUT,
        super::query(&v.session, dialect, &conn, &option_line, sql),
    )
    .await;
    drop(permit);
    match answer {
        Ok(Ok(out)) => {
            let cols: Vec<&str> = out.trim().split('\t').collect();
            let size: u64 = cols.get(1).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            let tables = cols.get(2).map_or("?", |s| s.trim());
            let version = cols.first().map_or("?", |s| s.trim());
            sf.found.push(format!(
                "database `{}` reachable as `{}`: {} {version}, {tables} tables, {} on disk",
                d.database,
                d.user,
                d.engine.display_name(),
                human_bytes(size)
            ));
            fx.fingerprints.insert(
                format!("vendor.dump.{id}"),
                format!("reachable, server {version}"),
            );
            sf.estimate = Some(Estimate {
                bytes: Some(size),
                seconds: 2.0 + secs(size, 55e6),
                basis: "evidence queries plus a dump at ~55 MB/s of SQL (the 1 GB benchmark)"
                    .into(),
            });
            fx.local_bytes += size / 2;
            fx.dumped.insert(id.to_string(), size);
        }
        Ok(Err(e)) => {
            fx.fingerprints
                .insert(format!("vendor.dump.{id}"), "refused".into());
            fx.problem(
                Some(id),
                format!("the database cannot be read: {e}"),
                "check the database's name, user, password and host as seen from the vendor host",
            );
        }
        Err(_) => fx.problem(
            Some(id),
            "the database did not answer within 20 s",
            "check that the database server runs on the vendor host",
        ),
    }
}
