//! What the decommission tests share: the vendor's files, the playbook, the runs of the
//! real binary, and what a decommission left in the state directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::db::Mariadb;
use crate::support::env::Env;
use crate::support::text;

pub const APP: &str = "dectest";

pub fn said(o: &Output) -> String {
    text(&o.stdout) + &text(&o.stderr)
}

/// The vendor's files: the app's tree (with an excluded cache) and a sibling app's.
pub fn vendor_files(env: &Env) -> (PathBuf, PathBuf) {
    let app = env.path("vendor/srv/dectest");
    let sibling = env.path("vendor/srv/sibling");
    for (rel, data) in [
        ("dectest/index.php", "<?php echo 'halo';\n"),
        ("dectest/app/config.php", "<?php return [];\n"),
        ("dectest/name with space.txt", "spasi"),
        ("dectest/cache/session-1", "excluded"),
        ("sibling/index.php", "<?php echo 'sibling';\n"),
    ] {
        env.write(&format!("vendor/srv/{rel}"), data);
    }
    (app, sibling)
}

/// The playbook: fetch the app's tree, dump its database (when `db` is given).
pub fn playbook(env: &Env, tree: &Path, db: Option<&Mariadb>) -> PathBuf {
    let mut pb = format!(
        "version: 1\napp: {APP}\n{vendor}",
        vendor = env.sshd().vendor_yaml()
    );
    if db.is_some() {
        pb.push_str("vars:\n  pw: { env: BOYONG_TEST_DB_PASSWORD }\n");
    }
    let _ = write!(
        pb,
        "steps:\n  - id: code\n    fetch:\n      path: {}\n      exclude: [\"cache/\"]\n",
        tree.display()
    );
    if let Some(db) = db {
        let _ = write!(
            pb,
            "  - id: db\n    dump:\n      engine: mariadb\n      database: {}\n      user: {}\n      password: \"{{{{ vars.pw }}}}\"\n      host: 127.0.0.1\n      port: {}\n",
            db.database, db.user, db.port
        );
    }
    env.write("dectest.yml", pb)
}

pub fn boyong(env: &Env, db: Option<&Mariadb>, args: &[&str]) -> Output {
    let mut c = env.command(args);
    c.env("BOYONG_OPERATOR", "petugas-uji");
    if let Some(db) = db {
        c.env("BOYONG_TEST_DB_PASSWORD", &db.password);
    }
    c.output().expect("boyong runs")
}

/// A sibling database, and the DROP privilege on the app's own (an app's user owns its
/// database on a real vendor host).
pub fn prepare_db(db: &Mariadb) {
    db.query(&format!(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'satu'), (2, 'dua');\n\
         CREATE DATABASE sibling; CREATE TABLE sibling.keep (id INT); INSERT INTO sibling.keep VALUES (7);\n\
         GRANT DROP ON `{d}`.* TO '{u}'@'%';",
        d = db.database,
        u = db.user
    ));
}

/// Root's SQL over the socket, in no database (the app's may be gone).
pub fn root_sql(db: &Mariadb, sql: &str) -> String {
    db.root_query(sql)
}

pub fn databases(db: &Mariadb) -> String {
    db.databases()
}

pub fn decommissions(env: &Env) -> Vec<PathBuf> {
    let mut d: Vec<PathBuf> =
        std::fs::read_dir(env.state().join("apps").join(APP).join("decommissions"))
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
    d.sort();
    d
}

/// Nothing was deleted: the tree and the database are there.
pub fn assert_untouched(tree: &Path, db: Option<&Mariadb>) {
    assert!(
        tree.join("index.php").is_file(),
        "the vendor's tree is untouched"
    );
    if let Some(db) = db {
        assert!(
            databases(db).lines().any(|l| l == db.database),
            "the database is untouched"
        );
    }
}

pub fn sha2_digest(b: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(b).to_vec()
}

pub fn sha256(p: &Path) -> String {
    crate::support::db::hex(&sha2_digest(&std::fs::read(p).unwrap()))
}

/// A TCP proxy to `to`: every connection open when `cut_when()` first holds is cut then
/// (asked every 2 ms); later connections pass untouched.
pub fn cut_when(to: u16, cut_when: impl Fn() -> bool + Send + 'static) -> u16 {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let cut = Arc::new(AtomicBool::new(false));
    let (open2, cut2) = (Arc::clone(&open), Arc::clone(&cut));
    std::thread::spawn(move || {
        while !cut_when() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        cut2.store(true, Ordering::SeqCst);
        for s in open2.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    });
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
            if !cut.load(Ordering::SeqCst) {
                let mut o = open.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
            }
            let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c2, mut s2) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// Runs `sql` on `psql`'s stdin; its output.
pub fn run_sql(psql: &mut std::process::Command, sql: &str) -> String {
    crate::support::db::run(psql, sql.as_bytes(), "psql")
}

/// The tree-only app (no database), migrated and archived; its vendor tree.
pub fn migrated_tree_app(env: &Env) -> PathBuf {
    let (tree, _) = vendor_files(env);
    let pb = playbook(env, &tree, None);
    let run = boyong(env, None, &["run", pb.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", said(&run));
    let archived = boyong(env, None, &["archive", APP]);
    assert_eq!(archived.status.code(), Some(0), "{}", said(&archived));
    tree
}

/// Every file under `dir` with its size and modification time: what a read-only
/// command must leave as it was.
pub fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// `lines` (a journal's) with every MAC stripped and the chain recomputed, as a forger
/// without the key would: a plain SHA-256 chain that verifies, but proves nothing.
pub fn unkeyed(lines: &[&str]) -> String {
    let mut stripped: Vec<String> = lines
        .iter()
        .map(|l| {
            let at = l.rfind(",\"mac\":\"").unwrap();
            format!("{}}}", &l[..at])
        })
        .collect();
    rechain(&mut stripped);
    stripped.join("\n") + "\n"
}

/// `lines` (a journal's) with each line's `prev` set to the SHA-256 of the line before
/// it, as a forger with write access to the state (but not the key) would.
pub fn rechain(lines: &mut [String]) {
    for i in 1..lines.len() {
        let prev = crate::support::db::hex(&sha2_digest(lines[i - 1].as_bytes()));
        let at = lines[i].find("\"prev\":\"").unwrap() + 8;
        lines[i].replace_range(at..at + 64, &prev);
    }
}
