//! What differs between database engines, for `dump` (on the vendor host, over SSH) and
//! `restore` (in a container on the target): the tools and their options, how a password
//! reaches a tool off every command line, readiness, and the evidence queries (row count
//! and a content checksum per table) that prove a restored database equal to its dump.
//!
//! Passwords: a tool reads them from an option file that is its standard input (MariaDB
//! `--defaults-extra-file=/dev/stdin`, libpq `PGSERVICEFILE=/dev/stdin`), written there by
//! a shell builtin (`printf`) from a line the wrapper read on its own stdin. Nothing with
//! the secret is ever exec'd, so no command line and no environment carries it.

use serde::{Deserialize, Serialize};

use crate::playbook::{Engine, Secret};
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
        let mut diff = Vec::new();
        for d in &dumped.tables {
            match self.tables.iter().find(|t| t.table == d.table) {
                None => diff.push(format!("table `{}` is missing", d.table)),
                Some(t) if t.rows != d.rows => diff.push(format!(
                    "table `{}` has {} rows, the dump had {}",
                    d.table, t.rows, d.rows
                )),
                Some(t) if same && t.checksum != d.checksum => diff.push(format!(
                    "table `{}`: content checksum {} differs from the dump's {}",
                    d.table, t.checksum, d.checksum
                )),
                Some(_) => {}
            }
        }
        for t in &self.tables {
            if !dumped.tables.iter().any(|d| d.table == t.table) {
                diff.push(format!("table `{}` is not in the dump", t.table));
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
    pub fn of(engine: Engine) -> Self {
        match engine {
            Engine::Postgres => Self::Pg,
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
                quote(c.database)
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
                quote(c.database)
            ),
        }
    }

    /// A query's command (stdout: tab-separated rows).
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
                format!("--dbname={}", c.database),
            ],
        }
    }

    /// A query inside the database container, output tab-separated.
    pub fn container_query(self, c: &Conn<'_>, sql: &str) -> Vec<String> {
        let mut cmd = self.load_command(c);
        match self {
            Self::My(_) => cmd.extend([
                "--batch".into(),
                "--skip-column-names".into(),
                format!("--execute={sql}"),
            ]),
            Self::Pg => cmd.extend([
                "-A".into(),
                "-t".into(),
                "-F".into(),
                "\t".into(),
                format!("--command={sql}"),
            ]),
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
    /// storage engine).
    pub fn tables_sql(self) -> &'static str {
        match self {
            Self::My(_) => {
                "SELECT 'version', VERSION(); SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
            }
            Self::Pg => {
                "SELECT 'version', current_setting('server_version') UNION ALL (SELECT table_schema || '.' || table_name, '' FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1)"
            }
        }
    }

    /// Parses the first query's output: (version, [(table, engine)]).
    pub fn parse_tables(self, out: &str) -> (String, Vec<(String, Option<String>)>) {
        let mut version = String::new();
        let mut tables = Vec::new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let (a, b) = line.split_once('\t').unwrap_or((line, ""));
            if a == "version" && version.is_empty() {
                version = b.to_string();
            } else {
                let engine = (self != Self::Pg && !b.is_empty()).then(|| b.to_string());
                tables.push((a.to_string(), engine));
            }
        }
        (version, tables)
    }

    /// The second evidence query: rows and a content checksum per table.
    pub fn counts_sql(self, tables: &[(String, Option<String>)]) -> String {
        match self {
            Self::My(_) => {
                let mut sql: Vec<String> = tables
                    .iter()
                    .map(|(t, _)| format!("SELECT 'rows', {}, COUNT(*) FROM {}", my_str(t), my_id(t)))
                    .collect();
                if !tables.is_empty() {
                    let list: Vec<String> = tables.iter().map(|(t, _)| my_id(t)).collect();
                    sql.push(format!("CHECKSUM TABLE {} EXTENDED", list.join(", ")));
                }
                sql.join("; ")
            }
            // The rows' text depends on session settings: the same on both sides.
            Self::Pg => PG_SESSION.to_string() + &tables
                .iter()
                .map(|(t, _)| {
                    let (schema, name) = t.split_once('.').unwrap_or(("public", t));
                    format!(
                        "SELECT {}, count(*), coalesce(sum(('x' || left(md5(r::text), 15))::bit(60)::bigint), 0) FROM {}.{} r",
                        pg_str(t),
                        pg_id(schema),
                        pg_id(name)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
        }
    }

    /// Parses the second query's output into evidence.
    ///
    /// # Errors
    /// A table without a row count or checksum.
    pub fn parse_counts(
        self,
        version: String,
        tables: &[(String, Option<String>)],
        out: &str,
    ) -> Result<Evidence, String> {
        let mut rows = std::collections::HashMap::new();
        let mut sums = std::collections::HashMap::new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            match (self, f.as_slice()) {
                (Self::My(_), ["rows", t, n]) => {
                    rows.insert(
                        (*t).to_string(),
                        n.parse::<u64>().map_err(|e| e.to_string())?,
                    );
                }
                (Self::My(_), [qualified, sum]) => {
                    // `db.table`: the database name may itself hold dots; tables are known.
                    if let Some((t, _)) = tables
                        .iter()
                        .find(|(t, _)| qualified.ends_with(&format!(".{t}")))
                    {
                        sums.insert(t.clone(), (*sum).to_string());
                    }
                }
                (Self::Pg, [t, n, sum]) => {
                    rows.insert(
                        (*t).to_string(),
                        n.parse::<u64>().map_err(|e| e.to_string())?,
                    );
                    sums.insert((*t).to_string(), (*sum).to_string());
                }
                _ => return Err(format!("unexpected evidence line: {line}")),
            }
        }
        let tables = tables
            .iter()
            .map(|(t, engine)| {
                Ok(TableEvidence {
                    table: t.clone(),
                    rows: *rows
                        .get(t)
                        .ok_or_else(|| format!("no row count for `{t}`"))?,
                    checksum: sums
                        .get(t)
                        .cloned()
                        .ok_or_else(|| format!("no checksum for `{t}`"))?,
                    engine: engine.clone(),
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

fn my_id(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn my_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn pg_id(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
        let (v, t) = my.parse_tables("version\t10.11.6-MariaDB\nbig\tInnoDB\nlegacy_log\tMyISAM\n");
        assert_eq!(v, "10.11.6-MariaDB");
        assert_eq!(t.len(), 2);
        let e = my
            .parse_counts(
                v,
                &t,
                "rows\tbig\t1000000\nrows\tlegacy_log\t2\nperizinan.big\t123\nperizinan.legacy_log\t456\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.rows(), 1_000_002);
        assert_eq!(e.non_transactional(), vec!["legacy_log"]);
        let pg = Dialect::Pg;
        let (v, t) = pg.parse_tables("version\t15.14\npublic.permits\t\n");
        let e = pg
            .parse_counts(v, &t, "public.permits\t3\t99\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.tables[0].checksum, "99");
        assert!(pg.parse_counts("15".into(), &t, "").is_err());
    }
}
