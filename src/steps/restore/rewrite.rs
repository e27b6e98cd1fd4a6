//! `restore.rewrite`: the app's own URL in its database, old origin to new, after the
//! restored database was proven equal to the dump.
//!
//! Every text column of every base table with a primary key is searched (inside the
//! database container, as its superuser); each matching value is rewritten here, safely
//! for PHP-serialized data ([`super::serialized`]), and written back by primary key in one
//! transaction. Names and values only ever travel hex-encoded, so any table name or value
//! is safe in the SQL. The rows changed per table are the step's evidence. A table without
//! a primary key that holds the old origin is named, not changed. The rewrite is undone
//! with the restore itself (the container and its volume are removed, or the replaced
//! volume put back).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::db::query;
use crate::docker::Docker;
use crate::engine::StepError;
use crate::playbook::Rewrite;
use crate::steps::db::{Conn, Dialect};

/// One text column of a table, and whether it is part of the primary key.
struct Column {
    name: String,
    key: bool,
    text: bool,
}

/// A table: (schema, name) and its columns.
type Tables = BTreeMap<(String, String), Vec<Column>>;

/// What the rewrite did: rows changed per table, tables it could not change.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Rewritten {
    /// `table` -> rows changed.
    pub rows: BTreeMap<String, u64>,
    /// Tables holding an old origin but without a primary key: left as they are.
    pub skipped: Vec<String>,
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if h == "NULL" || !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    crate::digest::hex(b)
}

fn ident(d: Dialect, name: &str) -> String {
    match d {
        Dialect::My(_) => format!("`{}`", name.replace('`', "``")),
        Dialect::Pg => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

fn table_sql(d: Dialect, schema: &str, table: &str) -> String {
    match d {
        Dialect::My(_) => ident(d, table),
        Dialect::Pg => format!("{}.{}", ident(d, schema), ident(d, table)),
    }
}

/// A value given hex-encoded, as the engine's expression of the same bytes.
fn literal(d: Dialect, bytes: &[u8]) -> String {
    match d {
        Dialect::My(_) => format!("UNHEX('{}')", hex(bytes)),
        Dialect::Pg => format!("convert_from(decode('{}', 'hex'), 'UTF8')", hex(bytes)),
    }
}

/// A column read as hex (a key column as its text).
fn read_hex(d: Dialect, col: &str, key: bool) -> String {
    match (d, key) {
        (Dialect::My(_), true) => format!("HEX(CAST({} AS CHAR))", ident(d, col)),
        (Dialect::My(_), false) => format!("HEX({})", ident(d, col)),
        (Dialect::Pg, _) => format!("encode(convert_to({}::text, 'UTF8'), 'hex')", ident(d, col)),
    }
}

fn columns_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::My(_) => {
            "SELECT '', HEX(c.TABLE_NAME), HEX(c.COLUMN_NAME), IF(k.COLUMN_NAME IS NULL, 0, 1), c.DATA_TYPE FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE' LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY' WHERE c.TABLE_SCHEMA = DATABASE() ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
        }
        Dialect::Pg => {
            "SELECT encode(convert_to(c.table_schema, 'UTF8'), 'hex'), encode(convert_to(c.table_name, 'UTF8'), 'hex'), encode(convert_to(c.column_name, 'UTF8'), 'hex'), CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema AND k.table_name = tc.table_name WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema AND tc.table_name = c.table_name AND k.column_name = c.column_name) THEN 1 ELSE 0 END, c.data_type FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, c.ordinal_position"
        }
    }
}

fn is_text(t: &str) -> bool {
    matches!(
        t,
        "char"
            | "varchar"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "json"
            | "character varying"
            | "character"
    )
}

fn parse_columns(out: &str) -> Result<Tables, String> {
    let mut tables = Tables::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [schema, table, col, key, ty] = f.as_slice() else {
            return Err(format!("unexpected column listing: {line:?}"));
        };
        let text = |h: &str| {
            unhex(h)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("unexpected name {h:?}"))
        };
        let schema = if schema.is_empty() {
            String::new()
        } else {
            text(schema)?
        };
        tables
            .entry((schema, text(table)?))
            .or_default()
            .push(Column {
                name: text(col)?,
                key: *key == "1",
                text: is_text(ty),
            });
    }
    Ok(tables)
}

/// Rewrites every pair in `rewrites`, in order, in the database of `c` in container `name`.
pub(super) async fn rewrite(
    engine: &Docker,
    name: &str,
    d: Dialect,
    c: &Conn<'_>,
    env: &[String],
    rewrites: &[Rewrite],
) -> Result<Rewritten, StepError> {
    let fail = |e: String| StepError::Fatal(format!("the URL rewrite in `{name}` failed: {e}"));
    let out = query(engine, name, d, c, env, columns_sql(d))
        .await
        .map_err(fail)?;
    let tables = parse_columns(&out).map_err(fail)?;
    let mut done = Rewritten::default();
    for ((schema, table), cols) in &tables {
        let texts: Vec<&Column> = cols.iter().filter(|c| c.text).collect();
        if texts.is_empty() {
            continue;
        }
        let keys: Vec<&Column> = cols.iter().filter(|c| c.key).collect();
        let shown = if schema.is_empty() || schema == "public" {
            table.clone()
        } else {
            format!("{schema}.{table}")
        };
        let matches = |col: &Column| {
            rewrites
                .iter()
                .map(|r| match d {
                    Dialect::My(_) => format!(
                        "LOCATE({}, {}) > 0",
                        literal(d, r.from.as_bytes()),
                        ident(d, &col.name)
                    ),
                    Dialect::Pg => format!(
                        "strpos({}, {}) > 0",
                        ident(d, &col.name),
                        literal(d, r.from.as_bytes())
                    ),
                })
                .collect::<Vec<_>>()
        };
        let cond: Vec<String> = texts.iter().flat_map(|c| matches(c)).collect();
        let cond = cond.join(" OR ");
        let from = table_sql(d, schema, table);
        if keys.is_empty() {
            let n = query(
                engine,
                name,
                d,
                c,
                env,
                &format!("SELECT COUNT(*) FROM {from} WHERE {cond}"),
            )
            .await
            .map_err(fail)?;
            if n.trim() != "0" {
                done.skipped.push(shown);
            }
            continue;
        }
        let select: Vec<String> = keys
            .iter()
            .map(|k| read_hex(d, &k.name, true))
            .chain(texts.iter().map(|t| read_hex(d, &t.name, false)))
            .collect();
        let rows = query(
            engine,
            name,
            d,
            c,
            env,
            &format!("SELECT {} FROM {from} WHERE {cond}", select.join(", ")),
        )
        .await
        .map_err(fail)?;
        let mut updates = String::new();
        let mut changed = 0u64;
        for line in rows.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != keys.len() + texts.len() {
                return Err(fail(format!("unexpected row from {shown}")));
            }
            let mut sets = Vec::new();
            for (i, col) in texts.iter().enumerate() {
                let Some(mut v) = unhex(f[keys.len() + i]) else {
                    continue;
                };
                let before = v.clone();
                for r in rewrites {
                    if let Some(n) =
                        super::serialized::replace(&v, r.from.as_bytes(), r.to.as_bytes())
                    {
                        v = n;
                    }
                }
                if v != before {
                    sets.push(format!("{} = {}", ident(d, &col.name), literal(d, &v)));
                }
            }
            if sets.is_empty() {
                continue;
            }
            let wheres: Vec<String> = keys
                .iter()
                .zip(&f)
                .map(|(k, h)| {
                    let key = unhex(h).unwrap_or_default();
                    match d {
                        Dialect::My(_) => format!("{} = {}", ident(d, &k.name), literal(d, &key)),
                        Dialect::Pg => {
                            format!("{}::text = {}", ident(d, &k.name), literal(d, &key))
                        }
                    }
                })
                .collect();
            let _ = writeln!(
                updates,
                "UPDATE {from} SET {} WHERE {};",
                sets.join(", "),
                wheres.join(" AND ")
            );
            changed += 1;
        }
        if changed > 0 {
            let begin = match d {
                Dialect::My(_) => "START TRANSACTION",
                Dialect::Pg => "BEGIN",
            };
            query(
                engine,
                name,
                d,
                c,
                env,
                &format!("{begin};\n{updates}COMMIT"),
            )
            .await
            .map_err(fail)?;
            done.rows.insert(shown, changed);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_from_hex_and_keys_and_text_columns_are_told_apart() {
        let out = format!(
            "\t{}\t{}\t1\tbigint\n\t{}\t{}\t0\tlongtext\n",
            hex(b"wp_options"),
            hex(b"option_id"),
            hex(b"wp_options"),
            hex(b"option_value")
        );
        let t = parse_columns(&out).expect("parses");
        let cols = &t[&(String::new(), "wp_options".to_string())];
        assert!(cols[0].key && !cols[0].text);
        assert!(!cols[1].key && cols[1].text);
        assert_eq!(unhex("NULL"), None);
        assert_eq!(unhex("6162"), Some(b"ab".to_vec()));
        assert_eq!(ident(Dialect::My("mariadb-dump"), "a`b"), "`a``b`");
    }
}
