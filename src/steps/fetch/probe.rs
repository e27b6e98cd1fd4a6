//! The live plan's look at a fetch: the tree's files, bytes and newest change (with the
//! step's exclusions), what the vendor's account and others can read of it, `tar`, and
//! the vendor's manifest. Read-only: `find`, `stat`, `test`, `--version`.

use std::fmt::Write as _;

use crate::plan::{Estimate, PlannedStep};
use crate::shell::quote;
use crate::steps::probe::{Findings, StepFound, Vendor, human_bytes, secs, sh, utc};

/// What a fetch probe saw.
pub(crate) struct Tree {
    pub(crate) kind: String,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    pub(crate) newest: u64,
    /// Files that no one but their owner and group may read (mode without `o+r`), with
    /// the first few names: an image that runs as another user cannot read them.
    pub(crate) private: Access,
    /// Well-known config files that hold literal credentials: `(path in the tree without
    /// `./`, what they hold)`. The build's probe says which would reach an image layer.
    pub(crate) credentials: Vec<(String, Vec<String>)>,
}

/// A count of files and the first few of their names (`./a/b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) count: u64,
    pub(crate) names: Vec<String>,
}

impl Access {
    /// `N file(s) (e.g. ./a, ./b)`.
    pub(crate) fn shown(&self) -> String {
        format!(
            "{} file{} (e.g. {})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.names.join(", ")
        )
    }
}

/// The read-only command that finds, in a fetched tree (with the fetch's exclusions),
/// the files the vendor's account cannot read (`U`: the pull would fail on them) and
/// those that others cannot read (`P`): a count and the first three names each. Prints
/// `unknown` where `find` has no `-readable` (not GNU find).
fn access_command(path: &str, exclude: &[String]) -> String {
    format!(
        "LC_ALL=C; export LC_ALL; P={p}; [ -d \"$P\" ] || exit 0; cd \"$P\" || exit 0; \
         find . -maxdepth 0 -readable >/dev/null 2>&1 || {{ echo unknown; exit 0; }}; \
         find . -xdev{prune} -type f \\( ! -readable -printf 'U %p\\n' -o ! -perm -o=r -printf 'P %p\\n' \\) 2>/dev/null | \
         awk '{{k=substr($0,1,1); n[k]++; if (n[k]<=3) s[k]=s[k] \"\\t\" substr($0,3)}} END {{printf \"U %d%s\\nP %d%s\\n\", n[\"U\"]+0, s[\"U\"], n[\"P\"]+0, s[\"P\"]}}'",
        p = quote(path),
        prune = prune(exclude)
    )
}

/// `(unreadable by the vendor's account, unreadable by others)` from [`access_command`]'s
/// output; `None` when it could not tell.
fn parse_access(out: &str) -> Option<(Access, Access)> {
    let mut found = (None, None);
    for line in out.lines() {
        let mut parts = line.split('\t');
        let head = parts.next()?;
        let (kind, count) = head.split_once(' ')?;
        let access = Access {
            count: count.trim().parse().ok()?,
            names: parts.map(str::to_owned).collect(),
        };
        match kind {
            "U" => found.0 = Some(access),
            "P" => found.1 = Some(access),
            _ => return None,
        }
    }
    Some((found.0?, found.1?))
}

/// The `find` pruning of a fetch's exclusions (relative to its path), shell-quoted.
fn prune(exclude: &[String]) -> String {
    let mut prune = String::new();
    for (i, e) in exclude.iter().enumerate() {
        let rel = format!("./{}", e.trim_end_matches('/').trim_start_matches("./"));
        if i > 0 {
            prune.push_str(" -o");
        }
        let _ = write!(prune, " -path {}", quote(&rel));
    }
    if prune.is_empty() {
        String::new()
    } else {
        format!(" \\({prune} \\) -prune -o")
    }
}

/// The read-only command that sizes a fetch: files, bytes and the newest mtime, with the
/// fetch's own exclusions.
fn size_command(path: &str, exclude: &[String]) -> String {
    let prune = prune(exclude);
    format!(
        "LC_ALL=C; export LC_ALL; P={p}; if [ -d \"$P\" ]; then cd \"$P\" && find . -xdev{prune} -type f -printf '%s %T@\\n' | \
         awk 'BEGIN {{n=0; s=0; m=0}} {{n++; s+=$1; t=int($2); if (t>m) m=t}} END {{printf \"dir %d %.0f %d\\n\", n, s, m}}'; \
         elif [ -f \"$P\" ]; then echo \"file 1 $(stat -c '%s %Y' -- \"$P\")\"; \
         elif [ -e \"$P\" ]; then echo other; else echo missing; fi",
        p = quote(path)
    )
}

fn parse_tree(out: &str) -> Option<Tree> {
    let mut w = out.split_whitespace();
    let kind = w.next()?.to_string();
    if kind != "dir" && kind != "file" {
        return Some(Tree {
            kind,
            files: 0,
            bytes: 0,
            newest: 0,
            private: Access::default(),
            credentials: Vec::new(),
        });
    }
    Some(Tree {
        kind,
        files: w.next()?.parse().ok()?,
        bytes: w.next()?.parse().ok()?,
        newest: w.next()?.parse().ok()?,
        private: Access::default(),
        credentials: Vec::new(),
    })
}

/// What the vendor's account and others can read of a fetched tree: files it cannot read
/// are a problem (the pull would fail on them: `tar: Cannot open: Permission denied`);
/// those others cannot read are kept in `t.private` for the build's check.
async fn access(v: &Vendor, x: &crate::playbook::Fetch, id: &str, t: &mut Tree, fx: &mut Findings) {
    let Ok((0, out)) = sh(v, &access_command(&x.path, &x.exclude), None).await else {
        return;
    };
    let Some((unreadable, private)) = parse_access(&out) else {
        return;
    };
    if unreadable.count > 0 {
        fx.problem(
            Some(id),
            format!(
                "the vendor's account cannot read {} under vendor:{}: the pull would fail on them",
                unreadable.shown(),
                x.path
            ),
            "ask the vendor to let the account read them (e.g. add it to the files' group), or add them to `exclude` and provide them another way",
        );
    }
    t.private = private;
}

/// The read-only command that prints the first 20 well-known config files of a fetched
/// tree (with the fetch's exclusions) that the vendor's account can read, each as
/// `F ./path<TAB>BASE64 of its first MiB`.
fn config_command(path: &str, exclude: &[String]) -> String {
    let names: Vec<String> = crate::artifact::credentials::WELL_KNOWN
        .iter()
        .map(|w| {
            if w.contains('/') {
                format!("-path {}", quote(&format!("*/{w}")))
            } else {
                format!("-name {}", quote(w))
            }
        })
        .collect();
    format!(
        "LC_ALL=C; export LC_ALL; P={p}; [ -d \"$P\" ] || exit 0; cd \"$P\" || exit 0; \
         find . -xdev{prune} -type f \\( {names} \\) -print 2>/dev/null | head -n 20 | \
         while IFS= read -r f; do [ -r \"$f\" ] || continue; printf 'F %s\\t' \"$f\"; head -c 1048576 -- \"$f\" | base64 -w0; echo; done",
        p = quote(path),
        prune = prune(exclude),
        names = names.join(" -o ")
    )
}

/// The credentials in [`config_command`]'s output: `(path, keys)` of each file with any.
fn parse_configs(out: &str) -> Vec<(String, Vec<String>)> {
    use base64::Engine as _;
    out.lines()
        .filter_map(|l| {
            let (path, b64) = l.strip_prefix("F ./")?.split_once('\t')?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let keys = crate::artifact::credentials::literal_keys(&String::from_utf8_lossy(&bytes));
            (!keys.is_empty()).then(|| (path.to_string(), keys))
        })
        .collect()
}

/// Probes a fetch step: the tree's files, bytes and newest change (with the step's exclusions),
/// `tar`, and the vendor's manifest.
pub(super) async fn probe_tree(
    v: &Vendor,
    step: &PlannedStep,
    x: &crate::playbook::Fetch,
    fx: &mut Findings,
    sf: &mut StepFound,
) {
    let id = step.id.as_str();
    let key = format!("vendor.fetch.{id}");
    match sh(v, &size_command(&x.path, &x.exclude), None).await {
        Ok((0, out)) => match parse_tree(&out) {
            Some(mut t) if t.kind == "dir" || t.kind == "file" => {
                access(v, x, id, &mut t, fx).await;
                if t.kind == "dir"
                    && let Ok((0, out)) = sh(v, &config_command(&x.path, &x.exclude), None).await
                {
                    t.credentials = parse_configs(&out);
                    for (path, keys) in &t.credentials {
                        sf.found.push(format!(
                            "vendor:{}/{path}: holds credentials ({})",
                            x.path.trim_end_matches('/'),
                            keys.join(", ")
                        ));
                    }
                }
                sf.found.push(format!(
                    "vendor:{}: {} {}, {} (newest change {})",
                    x.path,
                    t.files,
                    if t.files == 1 { "file" } else { "files" },
                    human_bytes(t.bytes),
                    utc(t.newest)
                ));
                fx.print(
                    key,
                    format!(
                        "{} files={} bytes={} newest={}",
                        t.kind, t.files, t.bytes, t.newest
                    ),
                );
                sf.estimate = Some(Estimate {
                    bytes: Some(t.bytes),
                    seconds: 0.5 + secs(t.bytes, 100e6),
                    basis: "one tar stream at ~100 MB/s (loopback measures ~240 MB/s; a long link is slower)".into(),
                });
                fx.local_bytes += t.bytes;
                fx.fetched.insert(id.to_string(), t);
            }
            Some(t) => {
                fx.print(key, t.kind.clone());
                fx.problem(
                    Some(id),
                    format!(
                        "vendor:{} does not exist or is not a file or directory ({})",
                        x.path, t.kind
                    ),
                    "correct `fetch.path`, or ask the vendor where the app lives",
                );
            }
            None => sf.found.push(format!(
                "vendor:{}: size unknown (the host's find/awk answered `{}`)",
                x.path,
                out.trim()
            )),
        },
        Ok((c, err)) => fx.problem(
            Some(id),
            format!("sizing vendor:{} failed (exit status {c}): {err}", x.path),
            "check that the vendor account can read the path",
        ),
        Err(e) => fx.problem(
            Some(id),
            format!("sizing vendor:{}: {e}", x.path),
            "check the vendor link",
        ),
    }
    match sh(v, "tar --version 2>/dev/null | head -n 1", None).await {
        Ok((0, out)) if !out.trim().is_empty() => sf.found.push(format!("tar: {}", out.trim())),
        _ => fx.problem(
            Some(id),
            "no `tar` on the vendor host",
            "install tar there (every Linux has it), or ask the vendor for an archive",
        ),
    }
    if let Some(sums) = &x.sha256sums {
        let present = matches!(
            sh(v, &format!("test -r {}", quote(sums)), None).await,
            Ok((0, _))
        );
        fx.print(
            format!("vendor.sha256sums.{id}"),
            if present { "present" } else { "missing" },
        );
        if present {
            sf.found.push(format!("vendor:{sums}: present"));
        } else {
            fx.problem(
                Some(id),
                format!("the vendor's manifest {sums} is missing or unreadable"),
                "ask the vendor for it, or remove `sha256sums` from the step",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn size_command_prunes_exclusions_quoted() {
        let c = size_command("/srv/a b", &["storage/logs/".into(), "x'y".into()]);
        assert!(
            c.starts_with("LC_ALL=C; export LC_ALL; P='/srv/a b';"),
            "{c}"
        );
        assert!(
            c.contains("\\( -path './storage/logs' -o -path './x'\\''y' \\) -prune -o -type f"),
            "{c}"
        );
    }

    /// The config command, run by the local shell on a real tree: a `wp-config.php` with a
    /// password is found, an excluded one and a `.env` reading nothing literal are not.
    #[test]
    fn the_config_command_finds_credentials_in_well_known_files() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(d.path().join("old/x")).expect("mkdir");
        fs::create_dir_all(d.path().join("application/config")).expect("mkdir");
        fs::write(
            d.path().join("wp-config.php"),
            "define('DB_PASSWORD', 'rahasia');\n",
        )
        .expect("write");
        fs::write(
            d.path().join("old/x/wp-config.php"),
            "define('DB_PASSWORD', 'lama');\n",
        )
        .expect("write");
        fs::write(d.path().join(".env"), "DB_PASSWORD=\n").expect("write");
        fs::write(
            d.path().join("application/config/database.php"),
            "$db['default']['password'] = 'ci';\n",
        )
        .expect("write");
        let cmd = config_command(&d.path().display().to_string(), &["old/".into()]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .expect("sh");
        let mut found = parse_configs(&String::from_utf8_lossy(&out.stdout));
        found.sort();
        assert_eq!(
            found,
            [
                (
                    "application/config/database.php".to_string(),
                    vec!["password".to_string()]
                ),
                ("wp-config.php".to_string(), vec!["DB_PASSWORD".to_string()]),
            ]
        );
    }

    #[test]
    fn trees_parse() {
        let t = parse_tree("dir 42 123456 1700000000\n").expect("parses");
        assert_eq!((t.files, t.bytes, t.newest), (42, 123_456, 1_700_000_000));
        assert_eq!(
            parse_tree("missing\n").map(|t| t.kind),
            Some("missing".into())
        );
        assert!(parse_tree("dir x").is_none());
    }

    #[test]
    fn access_is_counted_with_the_first_names_and_unknown_is_none() {
        let (u, p) = parse_access("U 0\nP 4\t./wp-config.php\t./.env\t./a b\n").expect("parses");
        assert_eq!(u.count, 0);
        assert_eq!((p.count, p.names.len()), (4, 3));
        assert_eq!(p.shown(), "4 files (e.g. ./wp-config.php, ./.env, ./a b)");
        assert_eq!(parse_access("unknown\n"), None);
        assert_eq!(parse_access(""), None);
    }

    /// The access command, run by the local shell on a real tree: a 0640 file is private,
    /// a 0000 one unreadable (unless root, who reads everything), excluded ones not seen.
    #[test]
    fn the_access_command_finds_private_files_and_honours_exclusions() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().expect("tempdir");
        let set = |p: &str, mode: u32| {
            fs::write(d.path().join(p), "x").expect("write");
            fs::set_permissions(d.path().join(p), fs::Permissions::from_mode(mode)).expect("chmod");
        };
        fs::create_dir(d.path().join("logs")).expect("mkdir");
        set("index.php", 0o644);
        set("wp-config.php", 0o640);
        set("logs/secret.log", 0o600);
        let cmd = access_command(&d.path().display().to_string(), &["logs/".into()]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let (u, p) = parse_access(&text).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(u.count, 0, "{text}");
        assert_eq!(p.count, 1, "{text}");
        assert_eq!(p.names, ["./wp-config.php"]);
    }
}
