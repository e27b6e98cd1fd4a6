//! Credentials in a fetched tree: what a build must not put into an image layer.
//!
//! Owns two checks of a tree's files, neither of which ever returns a value it found:
//! - **well-known config files** (`wp-config.php`, `.env`, `config/database.php`,
//!   `application/config/database.php`, `LocalSettings.php`, `configuration.php`, …) that
//!   hold a literal password, key or DSN with a password (not one read from the
//!   environment, e.g. `env('DB_PASSWORD')` or `getenv(…)`);
//! - **the playbook's own secrets**: the value of any secret (at least 6 bytes) found in
//!   any file, e.g. the vendor's database password that the dump step uses.
//!
//! The findings name the file and what was seen (`DB_PASSWORD`, `the value of secret
//! \`db_password\``); callers show them in plans and errors.

use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use super::{Node, Tree};

/// File names (or path endings) of config files that commonly hold credentials.
pub const WELL_KNOWN: [&str; 16] = [
    "wp-config.php",
    "config.local.php",
    "dbconfig.inc.php",
    ".env",
    "config/database.php",
    "application/config/database.php",
    "app/Config/Database.php",
    "LocalSettings.php",
    "configuration.php",
    "sites/default/settings.php",
    "config.inc.php",
    "app/etc/env.php",
    "config/config.php",
    "config.php",
    "database.yml",
    "settings.py",
];

/// The largest well-known config file read for literal credentials.
const MAX_CONFIG: u64 = 1 << 20;

/// Words that name a credential in a config file's key.
const KEYS: [&str; 9] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "_key",
    "token",
    "salt",
    "pass",
];

/// Words that make a credential's key name a setting about credentials, not one:
/// `show_password`, `min_password_length`, `password_expiration`, `ssl_key_file`.
const ABOUT: [&str; 27] = [
    "show", "generate", "length", "min_", "max_", "expir", "reset", "validat", "policy", "script",
    "hash", "encrypt", "algo", "field", "column", "label", "forgot", "enable", "disable",
    "required", "mode", "type", "format", "file", "path", "lifetime", "strength",
];

/// Values that are switches or stock placeholders, not secrets: `'YES'`, `'changeme'`,
/// WordPress's `'put your unique phrase here'`, `'<password>'`, `'xxxxxx'`.
fn placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    let switch = matches!(
        v.as_str(),
        "" | "null"
            | "false"
            | "true"
            | "none"
            | "~"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "0"
            | "1"
            | "changeme"
            | "change-me"
            | "change_me"
            | "changethis"
            | "secret"
            | "password"
    );
    let stock = v.starts_with("put your ") || v.starts_with("your_") || v.starts_with("your-");
    // A printf placeholder (`password=%s` in a URL template).
    let printf = v.starts_with('%') && v.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic());
    let angle = v.starts_with('<') && v.ends_with('>');
    let first = v.chars().next();
    let repeated = v.len() >= 3
        && first.is_some_and(|c| !c.is_ascii_alphanumeric() || c == 'x')
        && v.chars().all(|c| Some(c) == first);
    switch || stock || printf || angle || repeated
}

/// Whether a key that holds a credential word is a setting about credentials.
fn about_credentials(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ABOUT.iter().any(|w| k.contains(w))
}

/// The position of the credential word in a lowercased line: the first of [`KEYS`], where
/// a bare `pass` counts only when no letter follows (`db_pass`, `$dbpass`, not `passive`,
/// `bypass_cache`).
fn credential_word(lower: &str) -> Option<usize> {
    let pass_word = lower.match_indices("pass").map(|(i, _)| i).find(|&i| {
        let after = lower[i + 4..].chars().next();
        !after.is_some_and(|c| c.is_ascii_alphabetic()) && !lower[..i].ends_with("by")
    });
    KEYS.iter()
        .filter(|k| **k != "pass")
        .filter_map(|k| lower.find(k))
        .chain(pass_word)
        .min()
}

/// One file that holds credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The path in the tree.
    pub path: String,
    /// What was seen, never a value: `DB_PASSWORD`, `the value of secret `x``.
    pub what: Vec<String>,
}

/// Whether `path` (relative, `/`-separated) is one of [`WELL_KNOWN`].
pub fn is_well_known(path: &str) -> bool {
    WELL_KNOWN
        .iter()
        .any(|w| path == *w || path.ends_with(&format!("/{w}")))
}

/// The credential keys with a literal value in a config file's text: e.g.
/// `define('DB_PASSWORD', 'x')`, `'password' => 'x'`, `$wgDBpassword = "x";`,
/// `DB_PASSWORD=x`, `mysql://user:x@host`. Empty values, switches and stock placeholders
/// (`'NO'`, `'changeme'`), settings about credentials (`show_password`,
/// `min_password_length`) and values read from the environment are not credentials.
pub fn literal_keys(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim();
        // A `/* … */` comment, over as many lines as it takes.
        if in_block {
            if t.contains("*/") {
                in_block = false;
            }
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.contains("*/");
            continue;
        }
        if t.starts_with("//") || t.starts_with('#') || t.starts_with('*') {
            continue;
        }
        if let Some(k) = dsn_with_password(t) {
            out.push(k);
        }
        if let Some(k) = key_with_literal(t) {
            out.push(k);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `scheme://user:password@` in a line.
fn dsn_with_password(line: &str) -> Option<String> {
    let at = line.find("://")?;
    let rest = &line[at + 3..];
    let end = rest.find(['@', '"', '\'', ' ']).unwrap_or(rest.len());
    let userinfo = &rest[..end];
    let (_, pass) = userinfo.split_once(':')?;
    (rest[end..].starts_with('@') && !pass.is_empty()).then(|| "a URL with a password".into())
}

/// A key naming a credential followed by `=`, `=>`, `:` or `,` and a non-empty literal.
fn key_with_literal(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let pos = credential_word(&lower)?;
    // The key: the identifier (or quoted word) around the keyword.
    let is_id = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    let start = line[..pos].rfind(|c: char| !is_id(c)).map_or(0, |i| i + 1);
    let end = line[pos..]
        .find(|c: char| !is_id(c))
        .map_or(line.len(), |i| pos + i);
    let key = line[start..end].to_string();
    if about_credentials(&key) {
        return None;
    }
    let mut rest = line[end..].trim_start();
    // Close a quoted key or an index: `'password'`, `['password']`.
    rest = rest.trim_start_matches(['\'', '"', ']']).trim_start();
    let rest = ["=>", "=", ":", ","]
        .iter()
        .find_map(|sep| rest.strip_prefix(sep))?
        .trim_start();
    let value = literal(rest)?;
    (!placeholder(value)).then_some(key)
}

/// The literal at the start of `s`: a quoted string, or (in `.env`-style lines) the bare
/// rest of the line. A function call (`env(…)`, `getenv(…)`) or a variable is not one.
fn literal(s: &str) -> Option<&str> {
    let q = s.chars().next()?;
    if q == '\'' || q == '"' {
        let body = &s[1..];
        let end = body.find(q)?;
        return Some(&body[..end]);
    }
    if s.contains('(') || s.starts_with('$') || s.starts_with("array") || s.starts_with('[') {
        return None;
    }
    let bare = s.trim_end_matches([';', ',']).trim();
    // `KEY=value` with nothing that looks like code.
    (!bare.contains(' ') || bare.starts_with('"')).then_some(bare)
}

/// Scans the regular files of `tree` (under `dir`): well-known config files for literal
/// credentials, every file for the values in `secrets` (name, value). `skip(path)`: files
/// left out (delivered otherwise, or allowed). Sorted by path.
///
/// # Errors
/// A file cannot be read.
pub fn scan(
    dir: &Path,
    tree: &Tree,
    secrets: &[(String, Vec<u8>)],
    skip: &dyn Fn(&str) -> bool,
) -> std::io::Result<Vec<Finding>> {
    let finders: Vec<(&str, memchr::memmem::Finder<'_>)> = secrets
        .iter()
        .filter(|(_, v)| v.len() >= 6)
        .map(|(n, v)| (n.as_str(), memchr::memmem::Finder::new(v)))
        .collect();
    let mut out = Vec::new();
    for (path, node) in tree {
        let Node::File { size, .. } = node else {
            continue;
        };
        let rel = String::from_utf8_lossy(path).into_owned();
        if skip(&rel) {
            continue;
        }
        let mut what = Vec::new();
        let file = dir.join(Path::new(std::ffi::OsStr::from_bytes(path)));
        if is_well_known(&rel) && *size <= MAX_CONFIG {
            let text = std::fs::read(&file)?;
            what.extend(literal_keys(&String::from_utf8_lossy(&text)));
        }
        if !finders.is_empty() {
            let bytes = std::fs::read(&file)?;
            for (name, f) in &finders {
                if f.find(&bytes).is_some() {
                    what.push(format!("the value of secret `{name}`"));
                }
            }
        }
        if !what.is_empty() {
            out.push(Finding { path: rel, what });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_credentials_are_found_and_values_from_the_environment_are_not() {
        let wp = "<?php\n// ** Database settings ** //\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_PASSWORD', 's3cr3t-vendor' );\ndefine('AUTH_KEY',         'put your unique phrase here');\ndefine('SECURE_AUTH_KEY', 'q#1Zx!vendor-salt');\n";
        assert_eq!(literal_keys(wp), ["DB_PASSWORD", "SECURE_AUTH_KEY"]);
        let laravel = "'mysql' => [\n  'password' => env('DB_PASSWORD', ''),\n  'username' => env('DB_USERNAME', 'forge'),\n],";
        assert!(
            literal_keys(laravel).is_empty(),
            "{:?}",
            literal_keys(laravel)
        );
        let ci = "$db['default']['password'] = 'hunter22';\n$db['default']['username'] = 'root';";
        assert_eq!(literal_keys(ci), ["password"]);
        let ci3 =
            "$db['default'] = array(\n\t'password' => 'rahasia',\n\t'hostname' => 'localhost',";
        assert_eq!(literal_keys(ci3), ["password"]);
        let env = "APP_KEY=base64:AAAA\nDB_PASSWORD=\nDB_HOST=127.0.0.1\nMAIL_PASSWORD=null\n";
        assert_eq!(literal_keys(env), ["APP_KEY"]);
        let mw = "$wgDBpassword = \"wiki-pass\";\n$wgDBuser = \"wiki\";";
        assert_eq!(literal_keys(mw), ["wgDBpassword"]);
        let dsn = "$config['db_dsnw'] = 'mysql://roundcube:pa55@localhost/roundcube';";
        assert_eq!(literal_keys(dsn), ["a URL with a password"]);
        let getenv = "define('DB_PASSWORD', getenv('DB_PASSWORD'));";
        assert!(literal_keys(getenv).is_empty());
    }

    #[test]
    fn switches_placeholders_and_settings_about_passwords_are_not_credentials() {
        // PostfixAdmin's stock config.inc.php: one real credential among its switches.
        let pfa = "$CONF['setup_password'] = 'changeme';\n$CONF['show_password'] = 'NO';\n$CONF['generate_password'] = 'NO';\n$CONF['password_expiration'] = 'YES';\n$CONF['min_password_length'] = '5';\n$CONF['encrypt'] = 'md5crypt';\n$CONF['database_password'] = 'postfixadmin';\n$CONF['ssl_key_file'] = '/etc/ssl/private/x.key';\n$CONF['passive_mode'] = 'on2';\n";
        assert_eq!(literal_keys(pfa), ["database_password"]);
        let plain =
            "$dbpass = 'rahasia99';\n$bypass_cache = 'sometimes';\n$db_pass='<password>';\n";
        assert_eq!(literal_keys(plain), ["dbpass"]);
        // Its SMS example, in a block comment, with a printf template and a placeholder.
        let sms = "/*\nfunction x() {\n    $clickatell_password = 'CHANGEME';\n    $url = 'https://api.clickatell.com/http/sendmsg?api_id=%s&user=%s&password=%s&to=%s';\n}\n*/\n$CONF['show_status_key']='YES';\n$x = 'a?password=%s&b';\n";
        assert!(literal_keys(sms).is_empty(), "{:?}", literal_keys(sms));
        let after = "/* one-line */ \n$db_pass = 'rahasia99';\n";
        assert_eq!(literal_keys(after), ["db_pass"]);
        let masked = "DB_PASSWORD=xxxxxx\nREDIS_PASSWORD=******\nAPI_TOKEN=your_token_here\n";
        assert!(
            literal_keys(masked).is_empty(),
            "{:?}",
            literal_keys(masked)
        );
    }

    #[test]
    fn well_known_names_match_whole_path_parts() {
        assert!(is_well_known("wp-config.php"));
        assert!(is_well_known("blog/wp-config.php"));
        assert!(is_well_known("application/config/database.php"));
        assert!(!is_well_known("my-wp-config.php"));
        assert!(!is_well_known("config/database.php.bak"));
    }
}
