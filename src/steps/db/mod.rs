//! What differs between database engines, for `dump` (on the vendor host, over SSH) and
//! `restore` (in a container on the target): the tools and their options, how a password
//! reaches a tool off every command line, readiness, and the evidence queries (row count
//! and a content checksum per table) that prove a restored database equal to its dump.
//!
//! Passwords: a tool reads them from an option file that is its standard input (MariaDB
//! `--defaults-extra-file=/dev/stdin`, libpq `PGSERVICEFILE=/dev/stdin`), written there by
//! a shell builtin (`printf`) from a line the wrapper read on its own stdin. Nothing with
//! the secret is ever exec'd, so no command line and no environment carries it.
//!
//! Evidence: any legal table name and any number of tables. Names are listed hex-encoded,
//! put in SQL only as quoted identifiers, and never parsed back from text except where
//! `CHECKSUM TABLE` echoes them (decoded, and checked against the table asked for); rows
//! and checksums come keyed by the table's position. On the vendor host a query is one
//! argument (at most 128 KiB on Linux): the counts go in batches of [`ARG_SQL_MAX`]; in
//! the container the SQL goes on the client's stdin.

mod evidence;

pub use evidence::{Evidence, Table, TableEvidence, shown};
use evidence::{unescape_batch, unhex};

use crate::playbook::DbEngine;
use crate::secret::Secret;
use crate::shell::quote;

/// Settings under which PostgreSQL writes a row as text the same way on the vendor's
/// server and in the container, whatever their configuration.
const PG_SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'; ";

/// The most SQL one query on the vendor host carries. It is a single argument there (to
/// the login shell, then the client), and Linux refuses one longer than 128 KiB
/// (`MAX_ARG_STRLEN`); shell quoting at most quadruples it (`'` becomes `'\''`), and the
/// wrapper around it is under 1 KiB. The evidence of a database of any size is sent in
/// batches of this size (the vendor host's stdin carries the password and, held open, the
/// signal that boyong is still there: not the SQL).
pub const ARG_SQL_MAX: usize = 30 * 1024;

/// How one engine is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MariaDB or MySQL: its dump tool.
    My(&'static str),
    /// PostgreSQL.
    Pg,
}

/// Where a client connects.
pub struct Conn<'a> {
    /// Host (a name, an address, or `localhost` for the socket).
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// User.
    pub user: &'a str,
    /// Database.
    pub database: &'a str,
}

impl Dialect {
    /// The dialect of an engine.
    pub fn of(engine: DbEngine) -> Self {
        match engine {
            DbEngine::Postgres => Self::Pg,
            other => Self::My(other.dump_tool()),
        }
    }

    /// The first line of the option file (the wrapper prints it before the password line).
    pub fn option_header(self) -> &'static str {
        match self {
            Self::My(_) => "[client]",
            Self::Pg => "[boyong]",
        }
    }

    /// The password line of the option file, sent on stdin; refused when the option-file
    /// syntax cannot carry it.
    ///
    /// # Errors
    /// A password with a line break (or, for PostgreSQL, leading or trailing blanks).
    pub fn password_line(self, password: Option<&Secret>) -> Result<String, String> {
        let Some(p) = password.map(Secret::expose) else {
            return Ok(String::new());
        };
        if p.contains(['\n', '\r', '\0']) {
            return Err(
                "the database password contains a line break, which no option file can carry"
                    .into(),
            );
        }
        Ok(match self {
            Self::My(_) => format!(
                "password=\"{}\"",
                p.replace('\\', "\\\\").replace('"', "\\\"")
            ),
            Self::Pg => {
                if p.trim() != p {
                    return Err("the database password starts or ends with a blank, which a libpq service file cannot carry".into());
                }
                format!("password={p}")
            }
        })
    }

    fn client(self, c: &Conn<'_>) -> String {
        match self {
            Self::My(tool) => {
                let client = if tool == "mysqldump" {
                    "mysql"
                } else {
                    "mariadb"
                };
                format!(
                    "{client} --defaults-extra-file=/dev/stdin --batch --skip-column-names --default-character-set=utf8mb4{} --user={} --database={}",
                    my_host(c),
                    quote(c.user),
                    quote(c.database)
                )
            }
            Self::Pg => format!(
                "PGSERVICEFILE=/dev/stdin PGSERVICE=boyong exec psql -w -X -q -A -t -F '\t' -v ON_ERROR_STOP=1 --host={} --port={} --username={} --dbname={}",
                quote(c.host),
                c.port,
                quote(c.user),
                quote(&pg_dbname(c.database))
            ),
        }
    }

    /// The database a client connects to when its own is to be dropped or looked for
    /// (one that always exists and that any user may reach).
    pub fn maintenance_database(self) -> &'static str {
        match self {
            Self::My(_) => "information_schema",
            Self::Pg => "postgres",
        }
    }

    /// `DROP DATABASE IF EXISTS` of `database`, its name quoted (a decommission).
    pub fn drop_database_sql(self, database: &str) -> String {
        match self {
            Self::My(_) => format!("DROP DATABASE IF EXISTS {}", my_id(database)),
            Self::Pg => format!("DROP DATABASE IF EXISTS {}", pg_id(database)),
        }
    }

    /// A query whose output is `1` while `database` exists, `0` once it is gone.
    pub fn database_exists_sql(self, database: &str) -> String {
        match self {
            Self::My(_) => format!(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 0x{}",
                crate::digest::hex(database.as_bytes())
            ),
            Self::Pg => format!(
                "SELECT COUNT(*) FROM pg_database WHERE datname = {}",
                pg_str(database)
            ),
        }
    }

    /// The dump command (stdout: the SQL).
    pub fn dump_command(self, c: &Conn<'_>) -> String {
        match self {
            Self::My(tool) => format!(
                "exec {tool} --defaults-extra-file=/dev/stdin --single-transaction --quick --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --skip-dump-date{} --user={} -- {}",
                my_host(c),
                quote(c.user),
                quote(c.database)
            ),
            Self::Pg => format!(
                "PGSERVICEFILE=/dev/stdin PGSERVICE=boyong exec pg_dump -w --no-owner --no-privileges --encoding=UTF8 --host={} --port={} --username={} --dbname={}",
                quote(c.host),
                c.port,
                quote(c.user),
                quote(&pg_dbname(c.database))
            ),
        }
    }

    /// A query's command (stdout: tab-separated rows). The SQL is one argument: it must
    /// keep within [`ARG_SQL_MAX`] (the evidence comes in batches that do).
    pub fn query_command(self, c: &Conn<'_>, sql: &str) -> String {
        match self {
            Self::My(_) => format!("exec {} --execute={}", self.client(c), quote(sql)),
            Self::Pg => format!("{} --command={}", self.client(c), quote(sql)),
        }
    }

    /// The command that loads SQL from stdin (after the option file, for MariaDB: so the
    /// password goes through the environment of the exec instead, see [`Dialect::env`]).
    pub fn load_command(self, c: &Conn<'_>) -> Vec<String> {
        match self {
            Self::My(_) => vec![
                "mariadb".into(),
                "--default-character-set=utf8mb4".into(),
                "--protocol=tcp".into(),
                format!("--host={}", c.host),
                format!("--port={}", c.port),
                format!("--user={}", c.user),
                format!("--database={}", c.database),
            ],
            Self::Pg => vec![
                "psql".into(),
                "-w".into(),
                "-X".into(),
                "-q".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
                format!("--host={}", c.host),
                format!("--port={}", c.port),
                format!("--username={}", c.user),
                format!("--dbname={}", pg_dbname(c.database)),
            ],
        }
    }

    /// A query inside the database container, its SQL read from stdin (no length limit, none
    /// of it on a command line), output tab-separated.
    pub fn container_query(self, c: &Conn<'_>) -> Vec<String> {
        let mut cmd = self.load_command(c);
        match self {
            Self::My(_) => cmd.extend(["--batch".into(), "--skip-column-names".into()]),
            Self::Pg => cmd.extend(["-A".into(), "-t".into(), "-F".into(), "\t".into()]),
        }
        cmd
    }

    /// The environment a client in the database container reads the password from (the
    /// container's own environment holds it already; nothing new is exposed).
    pub fn env(self, password: &Secret) -> String {
        match self {
            Self::My(_) => format!("MYSQL_PWD={}", password.expose()),
            Self::Pg => format!("PGPASSWORD={}", password.expose()),
        }
    }

    /// The database container's environment (the official images' contract). The
    /// superuser (MariaDB's root, reachable only from inside the container; PostgreSQL's
    /// `postgres`) gets `admin`, a password made for this restore and never stored; the
    /// app's `user` gets the playbook's `password` and only its own database (MariaDB
    /// grants it there; PostgreSQL's role is made by [`Dialect::app_role_sql`]).
    pub fn server_env(
        self,
        database: &str,
        user: &str,
        password: &Secret,
        admin: &Secret,
    ) -> Vec<String> {
        let (p, a) = (password.expose(), admin.expose());
        match self {
            Self::My(_) => vec![
                format!("MARIADB_ROOT_PASSWORD={a}"),
                "MARIADB_ROOT_HOST=127.0.0.1".into(),
                format!("MARIADB_DATABASE={database}"),
                format!("MARIADB_USER={user}"),
                format!("MARIADB_PASSWORD={p}"),
            ],
            Self::Pg => vec![
                format!("POSTGRES_PASSWORD={a}"),
                "POSTGRES_USER=postgres".into(),
                format!("POSTGRES_DB={database}"),
            ],
        }
    }

    /// The superuser's name in the container.
    pub fn admin(self) -> &'static str {
        match self {
            Self::My(_) => "root",
            Self::Pg => "postgres",
        }
    }

    /// PostgreSQL: the SQL (sent on stdin: it holds the password) that makes the app's
    /// role, a plain login role that owns its database and so loads and owns the dump's
    /// objects. `None` for MariaDB/MySQL, where the image makes the user.
    pub fn app_role_sql(self, database: &str, user: &str, password: &Secret) -> Option<String> {
        match self {
            Self::My(_) => None,
            Self::Pg => Some(format!(
                "SET password_encryption = 'scram-sha-256';\nCREATE ROLE {u} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {p};\nALTER DATABASE {d} OWNER TO {u};\n",
                u = pg_id(user),
                d = pg_id(database),
                p = pg_str(password.expose())
            )),
        }
    }

    /// The account a MariaDB/MySQL dump's DEFINER clauses become: the app's user as the
    /// image makes it.
    pub fn definer(user: &str) -> Vec<u8> {
        format!("`{}`@`%`", user.replace('`', "``")).into_bytes()
    }

    /// Where the server keeps its data in the container.
    pub fn data_dir(self) -> &'static str {
        match self {
            Self::My(_) => "/var/lib/mysql",
            Self::Pg => "/var/lib/postgresql/data",
        }
    }

    /// The server's port.
    pub fn port(self) -> u16 {
        match self {
            Self::My(_) => 3306,
            Self::Pg => 5432,
        }
    }

    /// The first evidence query: the server's version, then the base tables (and their
    /// storage engine), each name hex-encoded (UTF-8) so that any legal name, a tab, a line
    /// break or a backslash in it, comes back exactly whatever the client escapes.
    pub fn tables_sql(self) -> &'static str {
        match self {
            Self::My(_) => {
                "SELECT 'version', VERSION(); SELECT HEX(CONVERT(TABLE_NAME USING utf8mb4)), ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
            }
            Self::Pg => {
                "SELECT 'version', current_setting('server_version') UNION ALL (SELECT encode(convert_to(table_schema, 'UTF8'), 'hex') || '.' || encode(convert_to(table_name, 'UTF8'), 'hex'), '' FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_schema, table_name)"
            }
        }
    }

    /// Parses the first query's output: the server's version and the base tables.
    ///
    /// # Errors
    /// A line that is not a version or a hex-encoded UTF-8 name.
    pub fn parse_tables(self, out: &str) -> Result<(String, Vec<Table>), String> {
        let mut version = String::new();
        let mut tables = Vec::new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let (a, b) = line.split_once('\t').unwrap_or((line, ""));
            if a == "version" {
                version = b.to_string();
                continue;
            }
            let bad = || format!("unexpected line in the list of tables: {line}");
            tables.push(match self {
                Self::My(_) => Table {
                    schema: None,
                    name: unhex(a).ok_or_else(bad)?,
                    engine: (!b.is_empty() && b != "NULL").then(|| b.to_string()),
                },
                Self::Pg => {
                    let (schema, name) = a.split_once('.').ok_or_else(bad)?;
                    Table {
                        schema: Some(unhex(schema).ok_or_else(bad)?),
                        name: unhex(name).ok_or_else(bad)?,
                        engine: None,
                    }
                }
            });
        }
        Ok((version, tables))
    }

    /// The second evidence query, in batches of at most about `max` bytes of SQL each (a
    /// table's own SQL is never split): rows and a content checksum per table. A table is
    /// named in the SQL only as an identifier (quoted as the engine quotes them) and in the
    /// output only by its position in `tables`, so no name is ever parsed back from text.
    pub fn counts_sql(self, tables: &[Table], max: usize) -> Vec<String> {
        let (head, join, tail_join) = match self {
            Self::My(_) => ("", "; ", ", "),
            // The rows' text depends on session settings: the same on both sides.
            Self::Pg => (PG_SESSION, " UNION ALL ", ""),
        };
        let mut batches = Vec::new();
        let (mut parts, mut ids, mut size) = (Vec::new(), Vec::new(), head.len() + 32);
        for (i, t) in tables.iter().enumerate() {
            let (part, id) = match self {
                Self::My(_) => {
                    let id = my_id(&t.name);
                    (format!("SELECT 'rows', {i}, COUNT(*) FROM {id}"), id)
                }
                Self::Pg => (
                    format!(
                        "SELECT {i}, count(*), coalesce(sum(('x' || left(md5(r::text), 15))::bit(60)::bigint), 0) FROM {}.{} r",
                        pg_id(t.schema.as_deref().unwrap_or("public")),
                        pg_id(&t.name)
                    ),
                    String::new(),
                ),
            };
            let more = part.len() + join.len() + id.len() + tail_join.len();
            if !parts.is_empty() && size + more > max {
                batches.push(Self::batch(head, join, &parts, &ids));
                (parts, ids, size) = (Vec::new(), Vec::new(), head.len() + 32);
            }
            size += more;
            parts.push(part);
            if !id.is_empty() {
                ids.push(id);
            }
        }
        if !parts.is_empty() {
            batches.push(Self::batch(head, join, &parts, &ids));
        }
        batches
    }

    fn batch(head: &str, join: &str, parts: &[String], ids: &[String]) -> String {
        let mut sql = head.to_string() + &parts.join(join);
        if !ids.is_empty() {
            sql.push_str("; CHECKSUM TABLE ");
            sql.push_str(&ids.join(", "));
            sql.push_str(" EXTENDED");
        }
        sql
    }

    /// Parses the second query's output (its batches' outputs one after the other) into
    /// evidence. Row counts (and PostgreSQL's checksums) come keyed by the table's position;
    /// `CHECKSUM TABLE` answers a row per table in the order asked, its name escaped by the
    /// client's batch mode, which is undone and checked against the table asked for.
    ///
    /// # Errors
    /// A table without a row count or checksum, or a line that is not one of those.
    pub fn parse_counts(
        self,
        version: String,
        tables: &[Table],
        out: &str,
    ) -> Result<Evidence, String> {
        let mut rows: Vec<Option<u64>> = vec![None; tables.len()];
        let mut sums: Vec<Option<String>> = vec![None; tables.len()];
        let mut next_sum = 0;
        let index = |i: &str| {
            i.parse::<usize>()
                .ok()
                .filter(|&i| i < tables.len())
                .ok_or_else(|| format!("unexpected table number in the evidence: {i}"))
        };
        let count = |n: &str| n.parse::<u64>().map_err(|e| format!("{n}: {e}"));
        for line in out.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            match (self, f.as_slice()) {
                (Self::My(_), ["rows", i, n]) => rows[index(i)?] = Some(count(n)?),
                (Self::My(_), [qualified, sum]) => {
                    let t = tables
                        .get(next_sum)
                        .ok_or_else(|| format!("unexpected evidence line: {line}"))?;
                    // `db.table`, as the statement named the table (the database name may
                    // itself hold dots).
                    let named = unescape_batch(qualified);
                    let suffix = format!(".{}", t.name);
                    if !named.ends_with(&suffix)
                        && !named.to_lowercase().ends_with(&suffix.to_lowercase())
                    {
                        return Err(format!(
                            "CHECKSUM TABLE answered for `{}` where `{}` was asked",
                            shown(&named),
                            shown(&t.name)
                        ));
                    }
                    sums[next_sum] = Some((*sum).to_string());
                    next_sum += 1;
                }
                (Self::Pg, [i, n, sum]) => {
                    let i = index(i)?;
                    rows[i] = Some(count(n)?);
                    sums[i] = Some((*sum).to_string());
                }
                _ => return Err(format!("unexpected evidence line: {line}")),
            }
        }
        let tables = tables
            .iter()
            .zip(rows.into_iter().zip(sums))
            .map(|(t, (rows, sum))| {
                let label = t.label();
                Ok(TableEvidence {
                    rows: rows.ok_or_else(|| format!("no row count for `{}`", shown(&label)))?,
                    checksum: sum.ok_or_else(|| format!("no checksum for `{}`", shown(&label)))?,
                    table: label,
                    engine: t.engine.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Evidence {
            server: version,
            tables,
        })
    }
}

fn my_host(c: &Conn<'_>) -> String {
    if c.host == "localhost" {
        // The local socket, as the vendor's own app reaches it.
        String::new()
    } else {
        format!(" --host={} --port={}", quote(c.host), c.port)
    }
}

pub(crate) fn my_id(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub(crate) fn pg_id(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A database name as libpq's `--dbname=` argument that is only a name: libpq reads an
/// argument with `=` in it (or one starting `postgresql://`) as a connection string whose
/// `host`, `sslmode` … override the other options. Given as a connection string of one
/// quoted keyword (`dbname='…'`, `\` and `'` escaped), it can only ever be the name.
pub(crate) fn pg_dbname(name: &str) -> String {
    format!(
        "dbname='{}'",
        name.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// A PostgreSQL string literal whatever `standard_conforming_strings` says: `E'…'` with
/// backslashes and quotes escaped.
pub(crate) fn pg_str(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Rewrites `DEFINER=`user`@`host`` in the DDL lines of a MariaDB/MySQL dump to `account`
/// (the app's own user): the vendor's accounts do not exist on the target, a view, trigger
/// or routine whose definer is missing fails when used, and one owned by the restoring
/// superuser would run with its rights. Data lines (`INSERT INTO …`) pass untouched.
pub fn rewrite_definer<'a>(line: &'a [u8], account: &[u8]) -> std::borrow::Cow<'a, [u8]> {
    const KEY: &[u8] = b"DEFINER=";
    if line.starts_with(b"INSERT INTO ") || !line.windows(KEY.len()).any(|w| w == KEY) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(KEY) {
            // DEFINER=`u`@`h` or DEFINER=CURRENT_USER (kept: it already means the restorer).
            let rest = &line[i + KEY.len()..];
            if let Some(end) = quoted_account(rest) {
                out.extend_from_slice(KEY);
                out.extend_from_slice(account);
                i += KEY.len() + end;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// The length of `` `u`@`h` `` (backquoted, doubled backquotes inside) at the start.
fn quoted_account(s: &[u8]) -> Option<usize> {
    let part = |s: &[u8]| -> Option<usize> {
        if s.first() != Some(&b'`') {
            return None;
        }
        let mut i = 1;
        while i < s.len() {
            if s[i] == b'`' {
                if s.get(i + 1) == Some(&b'`') {
                    i += 2;
                    continue;
                }
                return Some(i + 1);
            }
            i += 1;
        }
        None
    };
    let u = part(s)?;
    if s.get(u) != Some(&b'@') {
        return None;
    }
    Some(u + 1 + part(&s[u + 1..])?)
}

#[cfg(test)]
mod tests;
