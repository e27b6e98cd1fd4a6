//! Unit tests of the engines' differences: commands, option files, evidence parsing.

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
    let ddl = b"/*!50003 CREATE*/ /*!50017 DEFINER=`perizinan`@`localhost`*/ /*!50003 TRIGGER t";
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
