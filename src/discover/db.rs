//! The database an app uses, from the lines of its config files that the script sent
//! (never a password line: the script's filters leave those on the vendor host).
//!
//! Reads `define('DB_HOST', 'x')` (WordPress, plain PHP), `KEY=value` (`.env`: Laravel,
//! CodeIgniter 4, Node), `'hostname' => 'x'` (CodeIgniter), `$db_host = 'x';` (plain PHP)
//! and `DATABASE_URL=scheme://user:***@host:port/db`.

use serde::{Deserialize, Serialize};

/// A database as an app's config names it. The password is never here: the draft
/// refers to it by a secret's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// `mariadb`, `mysql` or `postgres` (as a `dump` step names it).
    pub engine: String,
    /// The host, as the vendor host reaches it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The database.
    pub database: String,
    /// The user.
    pub user: String,
    /// The file it was read from.
    pub from: String,
    /// The exact line that names the host, as the file has it (for `deploy.files`).
    #[serde(default)]
    pub host_line: Option<String>,
    /// The exact line that names the port, if another line than the host's.
    #[serde(default)]
    pub port_line: Option<String>,
}

/// The key/value pairs of config lines (each key as written).
pub fn pairs(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let quoted = quoted_strings(t);
        let pair = if t.starts_with("define") {
            (quoted.len() >= 2).then(|| (quoted[0].clone(), quoted[1].clone()))
        } else if let Some((k, v)) = t.split_once("=>") {
            let k = quoted_strings(k)
                .pop()
                .unwrap_or_else(|| k.trim().to_string());
            Some((k, first_value(v)))
        } else if let Some((k, v)) = t.split_once('=') {
            let k = k.trim().trim_start_matches("export ").trim();
            let k = k.trim_start_matches('$').trim_start_matches("public ");
            let k = k
                .rsplit(['[', '\'', '"', ' '])
                .find(|s| !s.is_empty() && *s != "]");
            k.map(|k| {
                (
                    k.trim_end_matches([']', '\'', '"']).to_string(),
                    first_value(v),
                )
            })
        } else {
            None
        };
        if let Some((k, v)) = pair {
            out.push((k, v, line.trim_end().to_string()));
        }
    }
    out
}

fn first_value(v: &str) -> String {
    let v = v.trim().trim_end_matches([';', ',']).trim();
    quoted_strings(v)
        .into_iter()
        .next()
        .unwrap_or_else(|| v.trim_matches(['"', '\'']).to_string())
}

fn quoted_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<(char, String)> = None;
    for c in s.chars() {
        match &mut cur {
            Some((q, buf)) if c == *q => {
                out.push(std::mem::take(buf));
                cur = None;
            }
            Some((_, buf)) => buf.push(c),
            None if c == '\'' || c == '"' => cur = Some((c, String::new())),
            None => {}
        }
    }
    out
}

fn engine_of(driver: &str) -> Option<&'static str> {
    let d = driver.to_ascii_lowercase();
    if d.contains("pg") || d.contains("postgre") {
        Some("postgres")
    } else if d.contains("mysql") || d.contains("maria") {
        Some("mariadb")
    } else {
        None
    }
}

/// The database named by the config lines of `file`, if they name one.
pub fn database(file: &str, text: &str) -> Option<Database> {
    let mut d = Database {
        from: file.to_string(),
        ..Database::default()
    };
    let mut engine: Option<&str> = None;
    for (k, v, line) in pairs(text) {
        let key = k.to_ascii_lowercase();
        let key = key.rsplit('.').next().unwrap_or(&key).to_string();
        if key == "database_url" {
            if let Some(u) = parse_url(&v) {
                engine = engine_of(&u.0);
                (d.user, d.host, d.port, d.database) = (u.1, u.2, u.3, u.4);
                d.host_line = Some(line);
            }
            continue;
        }
        match key.as_str() {
            "db_connection" | "dbdriver" | "db_driver" | "driver" | "db_type" => {
                engine = engine_of(&v).or(engine);
            }
            "db_host" | "hostname" | "host" | "dbhost" | "db_hostname" | "server" => {
                d.host = v;
                d.host_line = Some(line);
            }
            "db_port" | "port" | "dbport" => {
                d.port = v.parse().unwrap_or(0);
                d.port_line = Some(line);
            }
            "db_name" | "db_database" | "database" | "dbname" => d.database = v,
            "db_user" | "db_username" | "username" | "dbuser" | "user" => d.user = v,
            _ => {}
        }
    }
    if d.database.is_empty() && d.user.is_empty() {
        return None;
    }
    if let Some((h, p)) = d.host.rsplit_once(':')
        && let Ok(p) = p.parse()
    {
        d.port = p;
        d.host = h.to_string();
    }
    if d.host.is_empty() {
        d.host = "localhost".into();
    }
    d.engine = engine.unwrap_or("mariadb").to_string();
    if d.port == 0 {
        d.port = if d.engine == "postgres" { 5432 } else { 3306 };
    }
    Some(d)
}

/// `(scheme, user, host, port, database)` of `scheme://user:***@host:port/db`.
fn parse_url(url: &str) -> Option<(String, String, String, u16, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (auth, after_at) = rest.rsplit_once('@').unwrap_or(("", rest));
    let user = auth.split(':').next().unwrap_or("").to_string();
    let (hostport, db) = after_at.split_once('/').unwrap_or((after_at, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (hostport.to_string(), 0),
    };
    let db = db.split('?').next().unwrap_or("").to_string();
    Some((scheme.to_string(), user, host, port, db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpress_from_debian_example() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/discover/debian/wordpress-config-default.php"),
        )
        .expect("captured");
        // what the script's filter sends: the DB_ lines but the password's
        let sent: String = text
            .lines()
            .filter(|l| l.contains("DB_NAME") || l.contains("DB_USER") || l.contains("DB_HOST"))
            .fold(String::new(), |acc, l| {
                acc + l
                    + "
"
            });
        let d = database("/srv/www/wp-config.php", &sent).expect("a database");
        assert_eq!(d.engine, "mariadb");
        assert_eq!(d.database, "database_name_here");
        assert_eq!(d.user, "username_here");
        assert_eq!((d.host.as_str(), d.port), ("localhost", 3306));
        assert_eq!(
            d.host_line.as_deref(),
            Some("define( 'DB_HOST', 'localhost' );")
        );
    }

    #[test]
    fn laravel_codeigniter_node_and_plain_php() {
        let l = database(
            "/.env",
            "DB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3307\nDB_DATABASE=sipd\nDB_USERNAME=\"sipd\"\n",
        )
        .expect("laravel");
        assert_eq!(
            (l.host.as_str(), l.port, l.database.as_str()),
            ("127.0.0.1", 3307, "sipd")
        );
        let c = database(
            "/db.php",
            "\t'hostname' => 'localhost',\n\t'username' => 'ci',\n\t'database' => 'ci_db',\n\t'dbdriver' => 'postgre',\n",
        )
        .expect("codeigniter");
        assert_eq!(
            (c.engine.as_str(), c.port, c.user.as_str()),
            ("postgres", 5432, "ci")
        );
        let n = database(
            "/.env",
            "DATABASE_URL=postgres://api:***@10.0.0.7:5433/api?sslmode=disable\n",
        )
        .expect("node");
        assert_eq!(
            (
                n.host.as_str(),
                n.port,
                n.database.as_str(),
                n.user.as_str()
            ),
            ("10.0.0.7", 5433, "api", "api")
        );
        let p = database(
            "/koneksi.php",
            "$db_host = \"localhost:3307\";\n$db_user = 'kp';\n$db_name = 'kepeg';\n",
        )
        .expect("plain");
        assert_eq!(
            (p.host.as_str(), p.port, p.database.as_str()),
            ("localhost", 3307, "kepeg")
        );
        let ci4 = database("/.env", "database.default.hostname = db\ndatabase.default.database = x\ndatabase.default.DBDriver = MySQLi\n")
            .expect("ci4");
        assert_eq!((ci4.host.as_str(), ci4.engine.as_str()), ("db", "mariadb"));
        assert!(database("/x", "APP_ENV=production\n").is_none());
    }
}
