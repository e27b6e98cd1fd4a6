//! What a fetch's `exclude` leaves out, decided on this side the way the vendor's tools
//! decide it on theirs: `tar --exclude=./PATTERN` (a full pull and a delta) and `find
//! -path ./PATTERN -prune` (a re-pull's listing). Both read a pattern as a shell wildcard in
//! which `*`, `?` and `[...]` (with POSIX classes) also match `/`, and leave out whatever
//! lies under a folder the pattern matches. Those commands run in the C locale, where `?`
//! is one byte, as it is here. A decommission compares the vendor's files with what was pulled through
//! this: a file a pattern left out of the pull is not "new" on the vendor.
//!
//! Invariant: [`excluded`] agrees with GNU tar on every pattern the playbook accepts (a unit
//! test runs tar on the same tree).

/// Whether `name` (relative to the fetched path, no leading `./`) is left out by one of
/// `patterns` (the step's `exclude`, as written).
pub fn excluded(patterns: &[String], name: &[u8]) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim_start_matches("./").trim_end_matches('/').as_bytes();
        // the name itself, or a folder above it
        glob(p, name)
            || name
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'/' && glob(p, &name[..i]))
    })
}

/// Whether `text` matches the wildcard `pat` whole: `*` any run of bytes, `?` one byte,
/// `[...]` one byte of a class (`!` or `^` first negates it, `a-z` a range), `\` quotes the
/// next byte; `/` is an ordinary byte. (An unclosed `[` is a plain `[`.)
fn glob(pat: &[u8], text: &[u8]) -> bool {
    // Iterative, with one backtrack point for the last `*`: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(&pat[p..], text[t]).map_or_else(
                || (text[t] == b'[').then_some(1),
                |(ok, len)| ok.then_some(len),
            ),
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == text[t]).then_some(2),
            Some(&c) => (c == text[t]).then_some(1),
            None => None,
        };
        if let Some(len) = step {
            p += len;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat` against `c`: whether it matches, and the class's
/// length; `None` when the `[` is not closed. Inside: `!` or `^` first negates, `a-z` is a
/// range, `[:digit:]` and the other POSIX classes are the C locale's, `\` quotes a byte.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &b = pat.get(i)?;
        if b == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if b == b'['
            && pat.get(i + 1) == Some(&b':')
            && let Some(end) = pat[i + 2..].windows(2).position(|w| w == b":]")
        {
            hit |= posix(&pat[i + 2..i + 2 + end], c);
            i += end + 4;
            continue;
        }
        // a byte, `\` quoting it
        let byte = |at: usize| match pat.get(at) {
            Some(b'\\') => pat.get(at + 1).map(|&q| (q, 2)),
            Some(&q) => Some((q, 1)),
            None => None,
        };
        let (lo, n) = byte(i)?;
        i += n;
        if pat.get(i) == Some(&b'-') && pat.get(i + 1).is_some_and(|&e| e != b']') {
            let (hi, n) = byte(i + 1)?;
            hit |= lo <= c && c <= hi;
            i += 1 + n;
        } else {
            hit |= lo == c;
        }
    }
}

/// Whether `c` is in the POSIX class `name` (`digit`, `alpha` …) of the C locale; an
/// unknown name holds nothing.
fn posix(name: &[u8], c: u8) -> bool {
    match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_across_folders_and_a_matched_folder_takes_its_contents() {
        let x = |p: &str, n: &str| excluded(&[p.to_string()], n.as_bytes());
        assert!(x("cache/", "cache/a/b"));
        assert!(x("cache", "cache"));
        assert!(!x("cache/", "sub/cache/a"), "only at the top");
        assert!(!x("cache", "cachet"));
        assert!(x("*.log", "a/b/c.log"), "`*` crosses folders");
        assert!(x("storage/*", "storage/logs/x"));
        assert!(!x("storage/*", "storage"));
        assert!(x("?.txt", "a.txt") && !x("?.txt", "ab.txt"));
        assert!(x("[abc].php", "b.php") && !x("[!abc].php", "b.php"));
        assert!(x("v[0-9]", "v7/readme"));
        assert!(x("[x", "[x"), "an unclosed class is a plain `[`");
        assert!(x("a\\*b", "a*b") && !x("a\\*b", "axb"));
        assert!(x("v[[:digit:]]", "v8") && !x("v[[:digit:]]", "v:]"));
        assert!(x("a[\\]]", "a]"));
    }

    /// GNU tar, given the same patterns as a pull gives it, leaves out exactly what
    /// [`excluded`] says.
    #[test]
    fn it_agrees_with_gnu_tar() {
        let d = tempfile::tempdir().expect("tempdir");
        let files = [
            "index.php",
            "cache/a",
            "cache/sub/b",
            "sub/cache/c",
            "cachet",
            "logs/x.log",
            "a/b/c.log",
            "a/b/c.txt",
            "storage/logs/s",
            "storage/keep",
            "v1/f",
            "vx/f",
            "b.php",
            "ab.txt",
            "[x",
            "v8",
            "v:]",
            "a]",
            "é.txt",
            "A.PHP",
        ];
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, f).expect("write");
        }
        for patterns in [
            vec!["cache/"],
            vec!["*.log", "storage/*"],
            vec!["v[0-9]", "?.php"],
            vec!["[!a]b.txt", "a/*/c.*"],
            vec!["[x"],
            vec!["v[[:digit:]]", "a[\\]]"],
            vec!["?.txt", "[[:upper:]].[[:alpha:]]*"],
        ] {
            // as on the vendor host: the C locale (`?` is one byte)
            let mut tar = std::process::Command::new("tar");
            tar.current_dir(d.path())
                .env("LC_ALL", "C")
                .args(["-cf", "-"]);
            for p in &patterns {
                tar.arg(format!("--exclude=./{}", p.trim_end_matches('/')));
            }
            let archive = tar.arg(".").output().expect("tar runs");
            assert!(archive.status.success(), "tar: {patterns:?}");
            let mut list = std::process::Command::new("tar")
                .env("LC_ALL", "C")
                .args(["-tf", "-", "--quoting-style=literal"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("tar runs");
            std::io::Write::write_all(&mut list.stdin.take().expect("stdin"), &archive.stdout)
                .expect("tar reads");
            let listed = list.wait_with_output().expect("tar lists");
            let kept = String::from_utf8_lossy(&listed.stdout).into_owned();
            let patterns: Vec<String> = patterns.iter().map(ToString::to_string).collect();
            for f in files {
                assert_eq!(
                    kept.lines().any(|l| l == format!("./{f}")),
                    !excluded(&patterns, f.as_bytes()),
                    "{f} with {patterns:?}: tar kept\n{kept}"
                );
            }
        }
    }
}
