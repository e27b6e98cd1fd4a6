//! Real database servers for tests, as the vendor host runs them: MariaDB (`mariadbd`) and
//! PostgreSQL 15 started as ordinary child processes on a fresh data directory in a temp dir,
//! a unix socket there and TCP on 127.0.0.1 at a free port, with a database `perizinan` and a
//! user `perizinan` whose password is made at test time. Stopped, and their files removed,
//! when dropped. The seeds and fingerprints are in fixtures/db/; the target side's images are
//! built by fixtures/base-images.sh (`base_image`).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARIADBD: &str = "/usr/sbin/mariadbd";
const MARIADB_INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const MARIADB: &str = "/usr/bin/mariadb";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a server may take to answer after it is started.
const READY: Duration = Duration::from_secs(60);

/// The database and the user that own the app's data on both servers.
pub const DATABASE: &str = "perizinan";

/// A file in fixtures/db/.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/db")
        .join(name)
}

/// Builds (or finds) a target-side base image: `mariadb` (gov/mariadb:10.11) or `postgres`
/// (gov/postgres:15), by fixtures/base-images.sh; minutes the first time, then rebuilt only
/// when the image's scripts change.
pub fn base_image(which: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let t0 = Instant::now();
    let ok = Command::new("bash")
        .arg(format!("{root}/fixtures/base-images.sh"))
        .arg(which)
        .status()
        .expect("bash runs")
        .success();
    assert!(ok, "fixtures/base-images.sh {which} failed");
    eprintln!("base image {which}: ready in {:.1?}", t0.elapsed());
    let image = match which {
        "mariadb" => "gov/mariadb:10.11",
        "postgres" => "gov/postgres:15",
        other => panic!("no database base image {other}"),
    };
    if super::docker::engine() == super::docker::Engine::Podman {
        super::docker::load_into_podman(image);
    }
    image.into()
}

/// A password made for this run, with the characters that break naive quoting in shells,
/// option files, .pgpass and SQL: `'`, `"`, `\`, `$`, `#`, `:`, a space.
pub fn password() -> String {
    let mut bytes = [0_u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reads /dev/urandom");
    let hex = hex(&bytes);
    format!("{}'Pw\" $x\\ #:{}", &hex[..8], &hex[8..])
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Whether all of `paths` exist; when not, a test skips with a message, or fails under CI.
pub fn installed(paths: &[&str], package: &str) -> bool {
    let missing: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {} missing (apt-get install {package}); .ci/run installs it",
        missing.join(", ")
    );
    eprintln!(
        "skipped: {} not installed (apt-get install {package})",
        missing.join(", ")
    );
    false
}

/// Runs `cmd` with `input` on its standard input; its standard output, or a panic naming
/// `what` with its standard error.
/// Runs `cmd` with `input` on its stdin; its stdout, the last newlines dropped. Panics when
/// it fails.
pub fn run(cmd: &mut Command, input: &[u8], what: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("waits");
    let written = writer.join().expect("writer");
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    written.unwrap_or_else(|e| panic!("{what}: writing its input: {e}"));
    let mut text = String::from_utf8(out.stdout).expect("UTF-8 output");
    while text.ends_with('\n') {
        text.pop();
    }
    text
}

/// Waits until `ready` answers, or the server (`child`) dies or takes too long: then panics
/// with its log.
fn wait_ready(child: &mut Child, log: &Path, what: &str, ready: impl Fn() -> bool) {
    let t0 = Instant::now();
    loop {
        if ready() {
            return;
        }
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before it answered:\n{}", log());
        }
        assert!(
            t0.elapsed() < READY,
            "{what} did not answer within {READY:?}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A MariaDB server of the vendor's, stopped and removed on drop. Root has no password and
/// reaches the server over the socket (`query`, `client`); the app's user logs in with its
/// password over TCP or the socket, with the privileges a consistent dump needs.
pub struct Mariadb {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub port: u16,
    /// The server's unix socket.
    pub socket: PathBuf,
    pub database: String,
    pub user: String,
    pub password: String,
    child: Child,
}

/// The `mariadb` client as root over `socket`, reading no option file.
pub fn mariadb_root(socket: &Path) -> Command {
    let mut c = Command::new(MARIADB);
    c.arg("--no-defaults")
        .args(["-uroot", "--protocol=socket"])
        .arg(format!("--socket={}", socket.display()));
    c
}

impl Mariadb {
    /// Starts a server on a new data directory (`None`, with a message, when MariaDB is not
    /// installed; a panic instead under CI).
    pub fn start() -> Option<Self> {
        if !installed(
            &[MARIADBD, MARIADB_INSTALL_DB, MARIADB],
            "mariadb-server mariadb-client",
        ) {
            return None;
        }
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("boyong-mariadb-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let data = d.join("data");
        let user_opt = is_root().then_some("--user=root");
        let out = Command::new(MARIADB_INSTALL_DB)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // Its own temporary directory, not the shared /tmp, where a bootstrapping
            // server's temporary tables once met another's (`Error on delete of
            // '/tmp/#sql-temptable-…'`); passed on to the bootstrapping mariadbd.
            .arg(format!("--tmpdir={}", d.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(user_opt)
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let socket = d.join("mysqld.sock");
        let log = d.join("error.log");
        let child = Command::new(MARIADBD)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--tmpdir={}", d.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                "--max-allowed-packet=64M",
                // a test server: fast writes, nothing kept after a crash
                "--innodb-buffer-pool-size=256M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
            ])
            .args(user_opt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let mut db = Self {
            dir,
            host: "127.0.0.1".into(),
            port,
            socket,
            database: DATABASE.into(),
            user: DATABASE.into(),
            password: password(),
            child,
        };
        let socket = db.socket.clone();
        wait_ready(&mut db.child, &log, "mariadbd", move || {
            socket.exists()
                && listening(port)
                && mariadb_root(&socket)
                    .args(["-e", "SELECT 1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
        let pw = db.password.replace('\\', "\\\\").replace('\'', "\\'");
        let setup = format!(
            "CREATE DATABASE `{d}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\
             CREATE USER '{u}'@'%' IDENTIFIED BY '{pw}';\n\
             GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, EXECUTE ON `{d}`.* TO '{u}'@'%';\n\
             GRANT SELECT ON mysql.proc TO '{u}'@'%';\n\
             GRANT PROCESS ON *.* TO '{u}'@'%';",
            d = db.database,
            u = db.user,
        );
        run(&mut mariadb_root(&db.socket), setup.as_bytes(), "mariadb");
        eprintln!(
            "mariadb: {} on 127.0.0.1:{port}, started in {:.1?}",
            db.version(),
            t0.elapsed()
        );
        Some(db)
    }

    /// The `mariadb` client as root over the socket, in the app's database, output in
    /// `--batch --skip-column-names` form (tab-separated; `\t`, `\n`, `\\`, NUL escaped): for
    /// SQL on its standard input.
    pub fn client(&self) -> Command {
        let mut c = mariadb_root(&self.socket);
        c.args([
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
            "--max-allowed-packet=64M",
            &self.database,
        ]);
        c
    }

    /// Runs `sql` (one or more statements) as root; its output, every row a line of
    /// tab-separated values, the last newline dropped. Panics on an SQL error.
    pub fn query(&self, sql: &str) -> String {
        run(&mut self.client(), sql.as_bytes(), "mariadb")
    }

    /// Runs the SQL file `path` as root.
    pub fn source(&self, path: &Path) -> String {
        let sql = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(
            &mut self.client(),
            &sql,
            &format!("mariadb < {}", path.display()),
        )
    }

    /// Loads fixtures/db/mariadb-seed.sql (1,000,000 rows in `big`; about 5 s).
    pub fn seed(&self) {
        let t0 = Instant::now();
        self.source(&fixture("mariadb-seed.sql"));
        eprintln!("mariadb: seeded in {:.1?}", t0.elapsed());
    }

    /// Loads fixtures/db/mariadb-odd-names.sql: tables named with a tab, a line break, a
    /// backslash, quotes, a space, a dot and Javanese script, and `aaa_gate`.
    pub fn seed_odd_names(&self) {
        self.source(&fixture("mariadb-odd-names.sql"));
    }

    /// Loads fixtures/db/mariadb-myisam.sql: the MyISAM table `legacy_log`.
    pub fn seed_myisam(&self) {
        self.source(&fixture("mariadb-myisam.sql"));
    }

    /// fixtures/db/mariadb-fingerprint.sql on the app's database: a line per table (name,
    /// rows, digest) and per kind of schema object, to compare with a restored copy.
    pub fn fingerprint(&self) -> String {
        self.source(&fixture("mariadb-fingerprint.sql"))
    }

    /// The server's version, e.g. `10.11.19-MariaDB-0+deb12u1`.
    pub fn version(&self) -> String {
        self.query("SELECT VERSION()")
    }

    /// The server's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL 15 server of the vendor's, stopped and removed on drop. The superuser
/// `postgres` has no password and reaches the server over the socket (trust); the app's user
/// owns the app's database and logs in with its password over TCP (scram-sha-256), or over
/// the socket without one.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub port: u16,
    /// The directory of the server's unix socket (what clients take as `-h`).
    pub socket_dir: PathBuf,
    pub database: String,
    pub user: String,
    pub password: String,
    /// The superuser, who has no password (socket only).
    pub superuser: String,
    child: Child,
}

/// The `postgres` system user's uid and gid, when the tests run as root (PostgreSQL refuses
/// to run as root).
fn postgres_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, "postgres"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
    };
    Some((id("-u")?, id("-g")?))
}

fn psql(socket_dir: &Path, port: u16, user: &str, database: &str) -> Command {
    let mut c = Command::new(format!("{PG_BIN}/psql"));
    c.args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-U", user, "-d", database])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    c
}

impl Postgres {
    /// Starts a server on a new cluster (`None`, with a message, when PostgreSQL 15 is not
    /// installed; a panic instead under CI).
    pub fn start() -> Option<Self> {
        let bin = |name: &str| format!("{PG_BIN}/{name}");
        if !installed(
            &[&bin("initdb"), &bin("postgres"), &bin("psql")],
            "postgresql postgresql-client",
        ) {
            return None;
        }
        let ids = if is_root() {
            let ids = postgres_ids();
            assert!(
                ids.is_some() || std::env::var_os("CI").is_none(),
                "CI: running as root and there is no `postgres` user to run PostgreSQL as"
            );
            if ids.is_none() {
                eprintln!("skipped: running as root and there is no `postgres` user");
                return None;
            }
            ids
        } else {
            None
        };
        let as_owner = |cmd: &mut Command| {
            if let Some((uid, gid)) = ids {
                cmd.uid(uid).gid(gid);
            }
        };
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("boyong-postgres-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).expect("chown the temp dir");
        }
        let data = d.join("data");
        let mut initdb = Command::new(bin("initdb"));
        initdb
            .arg(format!("--pgdata={}", data.display()))
            .args([
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .current_dir(&d);
        as_owner(&mut initdb);
        let out = initdb.output().expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let log_path = d.join("postgres.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut server = Command::new(bin("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&d)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            // a test server: fast writes, nothing kept after a crash
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        as_owner(&mut server);
        let child = server.spawn().expect("postgres starts");
        let mut db = Self {
            dir,
            host: "127.0.0.1".into(),
            port,
            socket_dir: d.clone(),
            database: DATABASE.into(),
            user: DATABASE.into(),
            password: password(),
            superuser: "postgres".into(),
            child,
        };
        wait_ready(&mut db.child, &log_path, "postgres", move || {
            listening(port)
                && psql(&d, port, "postgres", "postgres")
                    .args(["-c", "SELECT 1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        });
        let pw = db.password.replace('\'', "''");
        run(
            &mut db.psql(&db.superuser, "postgres"),
            format!(
                "CREATE ROLE \"{u}\" LOGIN PASSWORD '{pw}';\n\
                 CREATE DATABASE \"{d}\" OWNER \"{u}\" ENCODING 'UTF8' TEMPLATE template0;\n",
                u = db.user,
                d = db.database
            )
            .as_bytes(),
            "psql",
        );
        eprintln!(
            "postgres: {} on 127.0.0.1:{port}, started in {:.1?}",
            db.query("SHOW server_version"),
            t0.elapsed()
        );
        Some(db)
    }

    /// psql as `user` over the socket into `database`: unaligned, tuples only, tab-separated,
    /// stopping at the first error; for SQL on its standard input.
    pub fn psql(&self, user: &str, database: &str) -> Command {
        psql(&self.socket_dir, self.port, user, database)
    }

    /// psql as the superuser in the app's database (see `psql`).
    pub fn client(&self) -> Command {
        self.psql(&self.superuser, &self.database)
    }

    /// Runs `sql` (one or more statements) as the superuser in the app's database; its
    /// output, every row a line of tab-separated values, the last newline dropped. Panics on
    /// an SQL error.
    pub fn query(&self, sql: &str) -> String {
        run(&mut self.client(), sql.as_bytes(), "psql")
    }

    /// Runs the SQL file `path` as `user` in the app's database.
    pub fn source_as(&self, user: &str, path: &Path) -> String {
        let sql = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(
            &mut self.psql(user, &self.database),
            &sql,
            &format!("psql < {}", path.display()),
        )
    }

    /// Loads fixtures/db/postgres-seed.sql as the app's user, who then owns every object
    /// (1,000,000 rows in `big`; about 3 s).
    pub fn seed(&self) {
        let t0 = Instant::now();
        self.source_as(&self.user, &fixture("postgres-seed.sql"));
        eprintln!("postgres: seeded in {:.1?}", t0.elapsed());
    }

    /// Loads fixtures/db/postgres-odd-names.sql as the app's user: tables named with a tab,
    /// a line break, a backslash, quotes, a space, a dot, Javanese and an emoji (one in a
    /// schema whose name holds a dot), and `aaa_gate`.
    pub fn seed_odd_names(&self) {
        self.source_as(&self.user, &fixture("postgres-odd-names.sql"));
    }

    /// Runs `sql` as `user` in the app's database; its output (see `query`).
    pub fn query_as(&self, user: &str, sql: &str) -> String {
        run(&mut self.psql(user, &self.database), sql.as_bytes(), "psql")
    }

    /// fixtures/db/postgres-fingerprint.sql on the app's database: a line per table (name,
    /// rows, digest) and per kind of schema object, to compare with a restored copy.
    pub fn fingerprint(&self) -> String {
        self.source_as(&self.superuser, &fixture("postgres-fingerprint.sql"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.socket_dir.join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, which also ends the backends and frees shared memory.
        let stopped = super::signal(self.child.id(), "-QUIT");
        let t0 = Instant::now();
        while stopped && t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
