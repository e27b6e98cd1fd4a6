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

use serde::{Deserialize, Serialize};

use crate::playbook::DbEngine;
use crate::secret::Secret;
use crate::shell::quote;

/// One table's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEvidence {
    /// Name (`schema.table` for PostgreSQL).
    pub table: String,
    /// Rows.
    pub rows: u64,
    /// Content checksum: `CHECKSUM TABLE … EXTENDED` (MariaDB/MySQL) or a sum of the rows'
    /// MD5s (PostgreSQL); comparable only between servers of the same version.
    pub checksum: String,
    /// Storage engine (MariaDB/MySQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// A database's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The server's version string.
    pub server: String,
    /// Base tables, sorted.
    pub tables: Vec<TableEvidence>,
}

impl Evidence {
    /// Rows in all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Tables whose storage engine gives `--single-transaction` no consistency.
    pub fn non_transactional(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| {
                t.engine
                    .as_deref()
                    .is_some_and(|e| !e.eq_ignore_ascii_case("InnoDB"))
            })
            .map(|t| t.table.as_str())
            .collect()
    }

    /// Differences from `dumped`, one line per table; checksums are compared when both
    /// servers are the same major.minor version (else a note says they were not).
    pub fn differences(&self, dumped: &Self) -> (Vec<String>, bool) {
        let same = major_minor(&self.server) == major_minor(&dumped.server);
        let mine: std::collections::HashMap<&str, &TableEvidence> =
            self.tables.iter().map(|t| (t.table.as_str(), t)).collect();
        let theirs: std::collections::HashSet<&str> =
            dumped.tables.iter().map(|t| t.table.as_str()).collect();
        let mut diff = Vec::new();
        for d in &dumped.tables {
            let name = shown(&d.table);
            match mine.get(d.table.as_str()) {
                None => diff.push(format!("table `{name}` is missing")),
                Some(t) if t.rows != d.rows => diff.push(format!(
                    "table `{name}` has {} rows, the dump had {}",
                    t.rows, d.rows
                )),
                Some(t) if same && t.checksum != d.checksum => diff.push(format!(
                    "table `{name}`: content checksum {} differs from the dump's {}",
                    t.checksum, d.checksum
                )),
                Some(_) => {}
            }
        }
        for t in &self.tables {
            if !theirs.contains(t.table.as_str()) {
                diff.push(format!("table `{}` is not in the dump", shown(&t.table)));
            }
        }
        (diff, same)
    }
}

fn major_minor(version: &str) -> String {
    let flavour = if version.to_ascii_lowercase().contains("mariadb") {
        "mariadb"
    } else {
        ""
    };
    let v: Vec<&str> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .collect();
    // PostgreSQL 10 and later: the first number is the major version (15.8 and 15.14
    // write the same text for the same rows); MariaDB and MySQL: the first two.
    let postgres_major = flavour.is_empty() && v.first().is_some_and(|m| m.len() >= 2);
    let keep = if postgres_major { 1 } else { 2 };
    format!("{flavour}{}", v[..keep.min(v.len())].join("."))
}

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

/// A base table as its server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// PostgreSQL's schema.
    pub schema: Option<String>,
    /// The table's name, exactly.
    pub name: String,
    /// Storage engine (MariaDB/MySQL).
    pub engine: Option<String>,
}

impl Table {
    /// How the evidence names the table: its name; for PostgreSQL `schema.name`, where a
    /// part that holds a dot or a double quote is double-quoted (quotes doubled), so that
    /// two tables never share a label.
    pub fn label(&self) -> String {
        let part = |s: &str| {
            if s.contains(['.', '"']) {
                pg_id(s)
            } else {
                s.to_string()
            }
        };
        match &self.schema {
            Some(schema) => format!("{}.{}", part(schema), part(&self.name)),
            None => self.name.clone(),
        }
    }
}

/// A name as a message shows it: control characters (a tab, a line break) and backslashes
/// escaped, everything else as it is.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Hex (either case) to a UTF-8 string.
fn unhex(h: &str) -> Option<String> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Undoes the escaping of the `mariadb`/`mysql` client's batch mode: `\0`, `\t`, `\n`
/// and `\\` (a field's tab and line break would otherwise end it).
fn unescape_batch(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn my_host(c: &Conn<'_>) -> String {
    if c.host == "localhost" {
        // The local socket, as the vendor's own app reaches it.
        String::new()
    } else {
        format!(" --host={} --port={}", quote(c.host), c.port)
    }
}

fn my_id(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn pg_id(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A database name as libpq's `--dbname=` argument that is only a name: libpq reads an
/// argument with `=` in it (or one starting `postgresql://`) as a connection string whose
/// `host`, `sslmode` … override the other options. Given as a connection string of one
/// quoted keyword (`dbname='…'`, `\` and `'` escaped), it can only ever be the name.
fn pg_dbname(name: &str) -> String {
    format!(
        "dbname='{}'",
        name.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// A PostgreSQL string literal whatever `standard_conforming_strings` says: `E'…'` with
/// backslashes and quotes escaped.
fn pg_str(s: &str) -> String {
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
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn a_postgres_database_name_is_only_a_name_never_a_connection_string() {
        let hostile = "dbname=postgres host=/nonexistent-boyong-b it's \\";
        let c = Conn {
            host: "/nonexistent-boyong-a",
            port: 5432,
            user: "u",
            database: hostile,
        };
        let conninfo = r"dbname='dbname=postgres host=/nonexistent-boyong-b it\'s \\'";
        let arg = format!("--dbname={}", quote(conninfo));
        assert!(Dialect::Pg.dump_command(&c).ends_with(&arg));
        assert!(Dialect::Pg.query_command(&c, "select 1").contains(&arg));
        assert!(
            Dialect::Pg
                .load_command(&c)
                .contains(&format!("--dbname={conninfo}"))
        );
        // libpq agrees, where its tools are here: the connection is tried where boyong
        // said, not where the name says.
        if std::process::Command::new("pg_dump")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '[boyong]\\n' | {{ {}; }}",
                Dialect::Pg.dump_command(&c)
            ))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/nonexistent-boyong-a/") && !err.contains("nonexistent-boyong-b/"),
            "{err}"
        );
    }

    #[test]
    fn definers_become_the_app_user_and_data_is_untouched() {
        let app = Dialect::definer("izin");
        let ddl =
            b"/*!50003 CREATE*/ /*!50017 DEFINER=`perizinan`@`localhost`*/ /*!50003 TRIGGER t";
        assert_eq!(
            rewrite_definer(ddl, &app).as_ref(),
            b"/*!50003 CREATE*/ /*!50017 DEFINER=`izin`@`%`*/ /*!50003 TRIGGER t".as_slice()
        );
        let proc = b"CREATE DEFINER=`a``b`@`%` PROCEDURE `p`()";
        assert_eq!(
            rewrite_definer(proc, &app).as_ref(),
            b"CREATE DEFINER=`izin`@`%` PROCEDURE `p`()".as_slice()
        );
        let data = b"INSERT INTO `t` VALUES ('DEFINER=`x`@`y`')";
        assert_eq!(rewrite_definer(data, &app).as_ref(), data.as_slice());
        let current = b"CREATE DEFINER=CURRENT_USER VIEW v";
        assert_eq!(rewrite_definer(current, &app).as_ref(), current.as_slice());
    }

    #[test]
    fn postgres_literals_hold_backslashes_and_quotes() {
        assert_eq!(pg_str(r"a\'b"), r"E'a\\''b'");
        let sql = Dialect::Pg
            .app_role_sql("db", "u\"x", &Secret::new("p'w".into()))
            .unwrap_or_default();
        assert!(
            sql.contains(r#"CREATE ROLE "u""x" LOGIN NOSUPERUSER"#),
            "{sql}"
        );
        assert!(sql.contains("PASSWORD E'p''w'"), "{sql}");
        assert!(
            Dialect::My("mariadb-dump")
                .app_role_sql("d", "u", &Secret::new(String::new()))
                .is_none()
        );
    }

    #[test]
    fn passwords_go_into_option_files_quoted_or_are_refused() {
        let s = |v: &str| Secret::new(v.to_string());
        assert_eq!(
            Dialect::My("mariadb-dump")
                .password_line(Some(&s("a\"b\\c")))
                .as_deref(),
            Ok("password=\"a\\\"b\\\\c\"")
        );
        assert!(
            Dialect::My("mysqldump")
                .password_line(Some(&s("a\nb")))
                .is_err()
        );
        assert!(Dialect::Pg.password_line(Some(&s(" x"))).is_err());
        assert_eq!(Dialect::Pg.password_line(None).as_deref(), Ok(""));
    }

    #[test]
    fn evidence_differences_name_the_table_and_checksums_need_the_same_version() {
        let ev = |server: &str, rows: u64, sum: &str| Evidence {
            server: server.into(),
            tables: vec![TableEvidence {
                table: "permits".into(),
                rows,
                checksum: sum.into(),
                engine: None,
            }],
        };
        let dumped = ev("10.11.14-MariaDB-0+deb12u2", 3, "1");
        assert_eq!(
            ev("10.11.6-MariaDB", 3, "1").differences(&dumped),
            (vec![], true)
        );
        let (d, _) = ev("10.11.6-MariaDB", 2, "1").differences(&dumped);
        assert_eq!(d, vec!["table `permits` has 2 rows, the dump had 3"]);
        let (d, _) = ev("10.11.6-MariaDB", 3, "2").differences(&dumped);
        assert!(d[0].contains("checksum"), "{d:?}");
        assert_eq!(ev("8.0.36", 3, "2").differences(&dumped), (vec![], false));
    }

    #[test]
    fn evidence_output_is_parsed_per_engine() {
        let my = Dialect::My("mariadb-dump");
        let hex = |s: &str| crate::digest::hex(s.as_bytes());
        let listed = format!(
            "version\t10.11.6-MariaDB\n{}\tInnoDB\n{}\tMyISAM\n",
            hex("big"),
            hex("legacy_log")
        );
        let (v, t) = my.parse_tables(&listed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, "10.11.6-MariaDB");
        assert_eq!(t.len(), 2);
        let e = my
            .parse_counts(
                v,
                &t,
                "rows\t0\t1000000\nrows\t1\t2\nperizinan.big\t123\nperizinan.legacy_log\t456\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.rows(), 1_000_002);
        assert_eq!(e.non_transactional(), vec!["legacy_log"]);
        assert_eq!(e.tables[1].checksum, "456");
        let pg = Dialect::Pg;
        let listed = format!("version\t15.14\n{}.{}\t\n", hex("public"), hex("permits"));
        let (v, t) = pg.parse_tables(&listed).unwrap_or_else(|e| panic!("{e}"));
        let e = pg
            .parse_counts(v, &t, "0\t3\t99\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.tables[0].table, "public.permits");
        assert_eq!(e.tables[0].checksum, "99");
        assert!(pg.parse_counts("15".into(), &t, "").is_err());
        assert!(pg.parse_counts("15".into(), &t, "7\t3\t99\n").is_err());
        assert!(pg.parse_tables("public.permits\t\n").is_err(), "not hex");
    }

    #[test]
    fn any_legal_name_comes_back_exactly_and_is_named_in_a_difference() {
        let odd = [
            "tab\there",
            "line\nbreak",
            "back\\slash",
            "it's \"quoted\" `x`",
            "with space",
            "Jawa ꦗꦮ é",
            "dot.ted",
        ];
        let hex = |s: &str| crate::digest::hex(s.as_bytes());
        // MariaDB: names hex-encoded in the list, identifiers quoted in the SQL, and the
        // names CHECKSUM TABLE echoes in the client's batch escaping.
        let my = Dialect::My("mariadb-dump");
        let listed = odd.iter().fold(String::new(), |mut s, n| {
            let _ = writeln!(s, "{}\tInnoDB", hex(n));
            s
        });
        let (_, t) = my
            .parse_tables(&format!("version\t10.11.6-MariaDB\n{listed}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, odd);
        let sql = my.counts_sql(&t, usize::MAX).join("; ");
        assert!(sql.contains("FROM `it's \"quoted\" ``x```"), "{sql}");
        assert!(sql.contains("FROM `tab\there`"), "{sql}");
        let escape = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
        };
        let mut out = String::new();
        for i in 0..odd.len() {
            let _ = writeln!(out, "rows\t{i}\t{i}");
        }
        for n in odd {
            let _ = writeln!(out, "perizinan.{}\t{}", escape(n), n.len());
        }
        let e = my
            .parse_counts("10.11.6-MariaDB".into(), &t, &out)
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&str, u64, &str)> = e
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.rows, t.checksum.as_str()))
            .collect();
        for (i, n) in odd.iter().enumerate() {
            assert_eq!(got[i], (*n, i as u64, n.len().to_string().as_str()));
        }
        // A checksum answered for another table than asked is refused, not misfiled.
        let swapped = out.replace("perizinan.with space", "perizinan.elsewhere");
        assert!(my.parse_counts("10.11".into(), &t, &swapped).is_err());
        // A difference in such a table names it, control characters shown escaped.
        let mut changed = e.clone();
        changed.tables[0].rows += 1;
        let (d, _) = changed.differences(&e);
        assert_eq!(d, vec!["table `tab\\there` has 1 rows, the dump had 0"]);

        // PostgreSQL: schema and name each hex-encoded and quoted; a part with a dot or a
        // quote is labelled quoted, so `a.b`.`c` and `a`.`b.c` stay two tables.
        let pg = Dialect::Pg;
        let listed = format!(
            "version\t15.14\n{}.{}\t\n{}.{}\t\n{}.{}\t\n",
            hex("a.b"),
            hex("c"),
            hex("a"),
            hex("b.c"),
            hex("public"),
            hex("tab\there \"q\""),
        );
        let (_, t) = pg.parse_tables(&listed).unwrap_or_else(|e| panic!("{e}"));
        let labels: Vec<String> = t.iter().map(Table::label).collect();
        assert_eq!(
            labels,
            vec!["\"a.b\".c", "a.\"b.c\"", "public.\"tab\there \"\"q\"\"\""]
        );
        let sql = pg.counts_sql(&t, usize::MAX).join("");
        assert!(sql.contains("FROM \"a.b\".\"c\" r"), "{sql}");
        assert!(
            sql.contains("FROM \"public\".\"tab\there \"\"q\"\"\" r"),
            "{sql}"
        );
    }

    #[test]
    fn evidence_sql_comes_in_batches_that_fit_on_a_command_line() {
        for dialect in [Dialect::My("mariadb-dump"), Dialect::Pg] {
            let tables: Vec<Table> = (0..3000)
                .map(|i| Table {
                    schema: (dialect == Dialect::Pg).then(|| "public".to_string()),
                    name: format!("permohonan_izin_usaha_mikro_kecil_menengah_lampiran_{i:05}"),
                    engine: None,
                })
                .collect();
            let batches = dialect.counts_sql(&tables, ARG_SQL_MAX);
            assert!(batches.len() > 5, "{}", batches.len());
            for b in &batches {
                assert!(b.len() <= ARG_SQL_MAX, "{}", b.len());
                let line = dialect.query_command(
                    &Conn {
                        host: "127.0.0.1",
                        port: 5432,
                        user: "u",
                        database: "d",
                    },
                    b,
                );
                assert!(quote(&line).len() < 128 * 1024);
            }
            // Every table once, in order.
            let all = batches.concat();
            let mut at = 0;
            for t in &tables {
                let quoted = match dialect {
                    Dialect::My(_) => my_id(&t.name),
                    Dialect::Pg => pg_id(&t.name),
                };
                let found = all[at..].find(&quoted).map(|i| i + at);
                assert!(found.is_some(), "{} missing or out of order", t.name);
                at = found.unwrap_or(at);
            }
            assert!(dialect.counts_sql(&[], ARG_SQL_MAX).is_empty());
        }
    }
}
