//! The databases a decommission removes, through the dump step's own client and login
//! (its password in an option file on stdin, never on a command line): `DROP DATABASE`,
//! or with `--wipe` every table, view, sequence, routine, type and event in it (the
//! database and its user stay); the account the dump logged in as (`DROP USER`, unless
//! it is shared, an administrator, or PostgreSQL's own role); and the read-only checks
//! that each is gone or empty.
//!
//! Invariants: names reach SQL only as quoted identifiers or hex literals (listed
//! hex-encoded, never parsed from text); an account is dropped only as the server named
//! it (`CURRENT_USER()`) before anything was dropped, and never one with rights on other
//! databases or on every database.

use crate::playbook::{Playbook, StepKind};
use crate::secret::SecretStore;
use crate::ssh::Session;
use crate::steps::db::{Conn, Dialect, my_id, pg_id, pg_str};

use super::{Item, vendor};

/// System schemas a MariaDB grant on is not a sign of sharing.
const MY_SYSTEM: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// Global MariaDB privileges that reach every database (an account holding one is never
/// dropped: it is not the app's alone).
const MY_GLOBAL_DATA: [&str; 10] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "SUPER",
    "GRANT OPTION",
];

/// A login: the client, where it connects, and its password line.
pub struct Login<'a> {
    /// The engine's dialect.
    pub dialect: Dialect,
    /// Where it connects.
    pub conn: Conn<'a>,
    /// The option file's password line (sent on stdin).
    pub line: &'a str,
}

impl Login<'_> {
    async fn query(&self, session: &Session, sql: &str) -> Result<String, String> {
        vendor::sql(session, self.dialect, &self.conn, self.line, sql).await
    }
}

/// A dump step's login: its dialect, server and password line (the password is held
/// only here, in memory, and sent only on the client's stdin).
pub struct DumpLogin {
    dialect: Dialect,
    host: String,
    port: u16,
    user: String,
    database: String,
    line: String,
}

impl DumpLogin {
    /// `step`'s login, connected to `database`, or to the server's maintenance database
    /// when `None`.
    ///
    /// # Errors
    /// `step` dumps nothing, or its password cannot be resolved or carried.
    pub fn of(
        step: &crate::playbook::Step,
        secrets: &SecretStore,
        database: Option<&str>,
    ) -> Result<Self, String> {
        let StepKind::Dump(d) = &step.kind else {
            return Err(format!("step `{}` dumps no database", step.id));
        };
        let dialect = Dialect::of(d.engine);
        let password = d
            .password
            .as_ref()
            .map(|t| t.resolve(secrets))
            .transpose()?;
        Ok(Self {
            dialect,
            host: d.host.clone(),
            port: d.port,
            user: d.user.clone(),
            database: database
                .unwrap_or(dialect.maintenance_database())
                .to_string(),
            line: dialect.password_line(password.as_ref())?,
        })
    }

    /// The login, borrowed.
    pub fn login(&self) -> Login<'_> {
        Login {
            dialect: self.dialect,
            conn: Conn {
                host: &self.host,
                port: self.port,
                user: &self.user,
                database: &self.database,
            },
            line: &self.line,
        }
    }
}

/// Fills each `user` item of `list` not `begun`: the account as its server names it
/// (asked before anything is dropped), the SQL that drops it, or why it is kept. Grants
/// on the databases this decommission drops on the same server do not make it shared.
///
/// # Errors
/// A login or a query failed.
pub async fn resolve_users(
    session: &Session,
    pb: &Playbook,
    secrets: &SecretStore,
    list: &mut [Item],
    begun: &[String],
) -> Result<(), String> {
    let dumps: Vec<(&str, &crate::playbook::Dump)> = pb
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Dump(d) => Some((s.id.as_str(), d)),
            _ => None,
        })
        .collect();
    let dropped_steps: Vec<String> = list
        .iter()
        .filter(|i| i.kind == "database")
        .map(|i| i.step.clone())
        .collect();
    for item in list.iter_mut().filter(|i| i.kind == "user") {
        if begun.contains(&item.id) {
            continue;
        }
        let Some(step) = pb.steps.iter().find(|s| s.id == item.step) else {
            return Err(format!("step `{}` is not in the playbook", item.step));
        };
        let StepKind::Dump(me) = &step.kind else {
            continue;
        };
        let dropped: Vec<String> = dumps
            .iter()
            .filter(|(id, d)| {
                dropped_steps.iter().any(|s| s == id)
                    && d.host == me.host
                    && d.port == me.port
                    && d.engine == me.engine
            })
            .map(|(_, d)| d.database.clone())
            .collect();
        let owned = DumpLogin::of(step, secrets, None)?;
        let a = probe_account(session, &owned.login(), &dropped).await?;
        item.target = format!(
            "{} account {} at {}:{} (as step `{}` logged in)",
            format!("{:?}", me.engine).to_lowercase(),
            a.name,
            me.host,
            me.port,
            step.id
        );
        item.action = a.drop_sql;
        item.account = Some(a.name);
        item.kept = a.kept;
    }
    Ok(())
}

/// The account a dump logged in as, as its server names it, and why it is kept (when it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// MariaDB: `user@host` as `CURRENT_USER()` says; PostgreSQL: the role.
    pub name: String,
    /// The SQL that drops it.
    pub drop_sql: String,
    /// Why it is not dropped.
    pub kept: Option<String>,
}

fn unhex(h: &str) -> Result<String, String> {
    let h = h.trim();
    let bytes: Option<Vec<u8>> = (0..h.len() / 2)
        .map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| format!("the server's answer `{h}` is not hex-encoded UTF-8"))
}

fn my_hex(s: &str) -> String {
    format!("0x{}", crate::digest::hex(s.as_bytes()))
}

/// A MariaDB account `user@host` (split at the last `@`) as SQL: `'user'@'host'`.
fn my_account(name: &str) -> Result<String, String> {
    let (u, h) = name
        .rsplit_once('@')
        .ok_or_else(|| format!("`{name}` is not user@host"))?;
    if name.contains('\\') {
        return Err(format!("the account `{name}` holds a backslash"));
    }
    Ok(format!(
        "'{}'@'{}'",
        u.replace('\'', "''"),
        h.replace('\'', "''")
    ))
}

/// Asks the server who the dump's login is and whether it may be dropped; `dropped`: the
/// databases this decommission drops on the same server (grants on them do not count).
///
/// # Errors
/// The login or a query failed.
pub async fn probe_account(
    session: &Session,
    login: &Login<'_>,
    dropped: &[String],
) -> Result<Account, String> {
    match login.dialect {
        Dialect::My(_) => probe_my(session, login, dropped).await,
        Dialect::Pg => probe_pg(session, login, dropped).await,
    }
}

async fn probe_my(
    session: &Session,
    login: &Login<'_>,
    dropped: &[String],
) -> Result<Account, String> {
    let name = unhex(&login.query(session, "SELECT HEX(CURRENT_USER())").await?)?;
    let sql_account = match my_account(&name) {
        Ok(a) => a,
        Err(e) => {
            return Ok(Account {
                drop_sql: String::new(),
                kept: Some(format!("{e}: not dropped")),
                name,
            });
        }
    };
    let (user, _) = name.rsplit_once('@').unwrap_or((&name, ""));
    // I_S shows the grantee as 'user'@'host', quotes doubled.
    let grantee = my_hex(&sql_account);
    let not_in: Vec<String> = dropped
        .iter()
        .map(String::as_str)
        .chain(MY_SYSTEM)
        .map(my_hex)
        .collect();
    let not_in = not_in.join(", ");
    let others = login
        .query(
            session,
            &format!(
                "SELECT DISTINCT HEX(TABLE_SCHEMA) FROM (\
                 SELECT TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {grantee} \
                 UNION ALL SELECT TABLE_SCHEMA FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {grantee} \
                 UNION ALL SELECT TABLE_SCHEMA FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = {grantee}) g \
                 WHERE TABLE_SCHEMA NOT IN ({not_in}) ORDER BY 1"
            ),
        )
        .await?;
    let others: Vec<String> = others
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(unhex)
        .collect::<Result<_, _>>()?;
    let global = login
        .query(
            session,
            &format!(
                // the grant option is a column of each global privilege, not a privilege
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {grantee} \
                 UNION SELECT 'GRANT OPTION' FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {grantee} AND IS_GRANTABLE = 'YES' ORDER BY 1"
            ),
        )
        .await?;
    let global: Vec<&str> = global.lines().map(str::trim).collect();
    let wide: Vec<&str> = global
        .iter()
        .copied()
        .filter(|p| MY_GLOBAL_DATA.contains(p))
        .collect();
    let kept = if user == "root" {
        Some("`root` is an administrator account: never dropped".to_string())
    } else if !others.is_empty() {
        Some(format!(
            "shared: it has grants on other databases ({}); a shared user is not dropped",
            others.join(", ")
        ))
    } else if !wide.is_empty() {
        Some(format!(
            "shared: it holds {} on every database (*.*); a shared user is not dropped",
            wide.join(", ")
        ))
    } else if !global.contains(&"CREATE USER") {
        Some(format!(
            "it lacks the CREATE USER privilege that DROP USER needs: the vendor's administrator drops it (`DROP USER {sql_account}`)"
        ))
    } else {
        None
    };
    Ok(Account {
        drop_sql: format!("DROP USER IF EXISTS {sql_account}"),
        name,
        kept,
    })
}

async fn probe_pg(
    session: &Session,
    login: &Login<'_>,
    dropped: &[String],
) -> Result<Account, String> {
    let not_in: Vec<String> = dropped.iter().map(|d| pg_str(d)).collect();
    let not_in = if not_in.is_empty() {
        "TRUE".to_string()
    } else {
        format!("d.datname NOT IN ({})", not_in.join(", "))
    };
    let out = login
        .query(
            session,
            &format!(
                "SELECT encode(convert_to(r.rolname, 'UTF8'), 'hex'), r.rolsuper, \
                 (SELECT string_agg(encode(convert_to(d.datname, 'UTF8'), 'hex'), ',' ORDER BY d.datname) FROM pg_database d \
                  WHERE {not_in} AND (d.datdba = r.oid OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = r.oid))) \
                 FROM pg_roles r WHERE r.rolname = current_user"
            ),
        )
        .await?;
    let mut f = out.trim_end_matches('\n').split('\t');
    let name = unhex(f.next().unwrap_or_default())?;
    let superuser = f.next() == Some("t");
    let others: Vec<String> = f
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(unhex)
        .collect::<Result<_, _>>()?;
    let drop_sql = format!("DROP ROLE IF EXISTS {}", pg_id(&name));
    let kept = if superuser {
        format!("`{name}` is a superuser: never dropped")
    } else if !others.is_empty() {
        format!(
            "shared: it owns or has grants on other databases ({}); a shared user is not dropped",
            others.join(", ")
        )
    } else {
        format!(
            "PostgreSQL refuses DROP ROLE of the role a session is logged in as, and the dump logs in only as `{name}`: the vendor's administrator drops it (`{drop_sql}`)"
        )
    };
    Ok(Account {
        name,
        drop_sql,
        kept: Some(kept),
    })
}

/// Drops `account` (its SQL as probed), over the maintenance database.
///
/// # Errors
/// The client's failure.
pub async fn drop_account(
    session: &Session,
    login: &Login<'_>,
    drop_sql: &str,
) -> Result<(), String> {
    login.query(session, drop_sql).await.map(|_| ())
}

/// Whether `account` is gone, read-only: a login as it is refused now (or it logs in
/// as another account). `(gone, what was seen)`.
///
/// # Errors
/// The connection dropped.
pub async fn account_gone(
    session: &Session,
    login: &Login<'_>,
    account: &str,
) -> Result<(bool, String), String> {
    let sql = match login.dialect {
        Dialect::My(_) => "SELECT HEX(CURRENT_USER())",
        Dialect::Pg => "SELECT encode(convert_to(current_user, 'UTF8'), 'hex')",
    };
    match login.query(session, sql).await {
        Ok(out) => {
            let now = unhex(&out).unwrap_or_default();
            if now == account {
                Ok((
                    false,
                    format!("a login as `{account}` still succeeds (STILL THERE)"),
                ))
            } else {
                Ok((
                    true,
                    format!("the login now matches another account, `{now}` (`{account}` is gone)"),
                ))
            }
        }
        Err(e) if e.contains("Access denied") || e.contains("authentication failed") => Ok((
            true,
            format!("a login as `{account}` is refused now (gone)"),
        )),
        Err(e) => Err(e),
    }
}

/// The objects in the database the login is connected to: `(kind, SQL name)`, the name
/// quoted and qualified, in the order they are dropped.
///
/// # Errors
/// The client's failure.
pub async fn objects(
    session: &Session,
    login: &Login<'_>,
    database: &str,
) -> Result<Vec<(String, String)>, String> {
    let sql = match login.dialect {
        Dialect::My(_) => {
            let d = my_hex(database);
            format!(
                "SELECT 1, 'VIEW', HEX(table_name) FROM information_schema.tables WHERE table_schema = {d} AND table_type = 'VIEW' \
                 UNION ALL SELECT 2, 'TABLE', HEX(table_name) FROM information_schema.tables WHERE table_schema = {d} AND table_type NOT IN ('VIEW', 'SEQUENCE') \
                 UNION ALL SELECT 3, 'SEQUENCE', HEX(table_name) FROM information_schema.tables WHERE table_schema = {d} AND table_type = 'SEQUENCE' \
                 UNION ALL SELECT 4, routine_type, HEX(routine_name) FROM information_schema.routines WHERE routine_schema = {d} AND routine_type IN ('PROCEDURE', 'FUNCTION') \
                 UNION ALL SELECT 5, 'EVENT', HEX(event_name) FROM information_schema.events WHERE event_schema = {d} ORDER BY 1"
            )
        }
        Dialect::Pg => {
            let not_ext = |cat: &str, oid: &str| {
                format!(
                    "NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '{cat}'::regclass AND x.objid = {oid} AND x.deptype = 'e')"
                )
            };
            let user_ns = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'";
            format!(
                "SELECT o, kind, encode(convert_to(name, 'UTF8'), 'hex') FROM (\
                 SELECT CASE c.relkind WHEN 'v' THEN 1 WHEN 'm' THEN 1 WHEN 'S' THEN 3 ELSE 2 END AS o, \
                 CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind, \
                 format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {user_ns} AND {} \
                 UNION ALL SELECT 4, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, \
                 format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user_ns} AND {} \
                 UNION ALL SELECT 5, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname) \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {user_ns} AND {} \
                 AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))\
                 ) x ORDER BY 1",
                not_ext("pg_class", "c.oid"),
                not_ext("pg_proc", "p.oid"),
                not_ext("pg_type", "t.oid"),
            )
        }
    };
    let out = login.query(session, &sql).await?;
    let mut list = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t').skip(1);
        let kind = f.next().unwrap_or_default().to_string();
        let name = unhex(f.next().unwrap_or_default())?;
        let name = match login.dialect {
            // PostgreSQL's names come quoted and qualified by `format('%I')`.
            Dialect::Pg => name,
            Dialect::My(_) => format!("{}.{}", my_id(database), my_id(&name)),
        };
        list.push((kind, name));
    }
    Ok(list)
}

/// The statements that drop `objects`, in batches that fit one command line.
#[must_use]
pub fn wipe_sql(dialect: Dialect, objects: &[(String, String)]) -> Vec<String> {
    let head = match dialect {
        Dialect::My(_) => "SET FOREIGN_KEY_CHECKS = 0; ",
        Dialect::Pg => "",
    };
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::from(head);
    for (kind, name) in objects {
        let stmt = match dialect {
            Dialect::My(_) => format!("DROP {kind} IF EXISTS {name}; "),
            Dialect::Pg => format!("DROP {kind} IF EXISTS {name} CASCADE; "),
        };
        if cur.len() + stmt.len() > crate::steps::db::ARG_SQL_MAX && cur.len() > head.len() {
            out.push(std::mem::replace(&mut cur, String::from(head)));
        }
        cur.push_str(&stmt);
    }
    if cur.len() > head.len() {
        out.push(cur);
    }
    out
}

/// Empties the database the login is connected to: every object dropped, the database
/// and its users kept.
///
/// # Errors
/// The client's failure.
pub async fn wipe(session: &Session, login: &Login<'_>, database: &str) -> Result<(), String> {
    let list = objects(session, login, database).await?;
    for sql in wipe_sql(login.dialect, &list) {
        login.query(session, &sql).await?;
    }
    Ok(())
}

/// Whether the database is empty, read-only: `(empty, what was seen)`.
///
/// # Errors
/// The client's failure.
pub async fn is_empty(
    session: &Session,
    login: &Login<'_>,
    database: &str,
) -> Result<(bool, String), String> {
    let left = objects(session, login, database).await?;
    if left.is_empty() {
        Ok((
            true,
            format!(
                "database `{database}` holds no table, view, sequence, routine, type or event (empty)"
            ),
        ))
    } else {
        let shown: Vec<String> = left
            .iter()
            .take(10)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        Ok((
            false,
            format!(
                "database `{database}` still holds {} object(s): {} (NOT EMPTY)",
                left.len(),
                shown.join(", ")
            ),
        ))
    }
}

/// The SQL shown for a database's removal: drop it, or empty it.
#[must_use]
pub fn action(dialect: Dialect, database: &str, wipe: bool) -> String {
    if wipe {
        let q = match dialect {
            Dialect::My(_) => my_id(database),
            Dialect::Pg => pg_id(database),
        };
        format!(
            "wipe {q}: DROP every table, view, sequence, routine, type and event in it (listed by the server first); the database and its user stay"
        )
    } else {
        dialect.drop_database_sql(database)
    }
}
