//! `fetch` after an earlier verified pull of the same inputs: only what changed is pulled.
//!
//! One remote command lists the tree (`find -printf`: kind, mode, size, modification
//! time, path, link target; the vendor's clock first). Against the earlier artifact's
//! tree and `<step>.stat` (each file's time and the vendor's clock at that pull), a file
//! whose size, mode and time are unchanged is taken from the earlier artifact (a hard
//! link, its digest from the earlier manifest); folders and links are made here from the
//! listing; every other file is asked for in one tar stream (`tar -T -`, the names on
//! stdin, NUL-separated), hashed and unpacked as a full pull's are. What is not listed any
//! more is not in the new tree. With `incremental: digest`, the vendor also hashes
//! (`sha256sum`) the files that look unchanged, for hosts whose times lie.
//!
//! Invariants: the new manifest and tree file are those a full pull of the same tree
//! writes (tested against one); the earlier artifact's manifest, tree file and `.stat`
//! are the ones its journal holds the SHA-256 of, or it is not used; a file touched in
//! the second before the earlier pull's listing began (the vendor's clock) is always
//! pulled again (a change in the same second keeps the time); names from the vendor are
//! checked as an unpack checks them (relative, no `..`, every parent a folder of the new
//! tree), and a tar entry not asked for is refused. No earlier artifact: the plain full
//! pull, nothing listed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::artifact::manifest::{escape, unescape};
use crate::artifact::{Node, Tree, UnpackError, unpack};
use crate::engine::StepError;
use crate::engine::reuse::candidates;
use crate::shell::quote;
use crate::ssh::{Out, Session};
use crate::steps::common::{ChunkReader, pump};

/// A walk along a map sorted by name, for lookups in ascending order of names: each costs
/// a comparison or two where a search costs about fourteen at 10,000 entries (names of a
/// tree share long prefixes: those comparisons were a re-pull's main own cost).
pub(super) struct Along<'a, V> {
    it: std::iter::Peekable<std::collections::btree_map::Iter<'a, Vec<u8>, V>>,
}

impl<'a, V> Along<'a, V> {
    pub(super) fn new(map: &'a BTreeMap<Vec<u8>, V>) -> Self {
        Self {
            it: map.iter().peekable(),
        }
    }

    /// The value at `name`; `name` is not below any name asked for before.
    pub(super) fn get(&mut self, name: &[u8]) -> Option<&'a V> {
        while self.it.next_if(|(k, _)| k.as_slice() < name).is_some() {}
        self.it
            .peek()
            .filter(|(k, _)| k.as_slice() == name)
            .map(|(_, v)| *v)
    }
}

/// The earlier verified artifact a pull builds on.
pub(super) struct Earlier {
    /// Its run.
    pub(super) run: String,
    /// Its step id in that run.
    pub(super) step: String,
    /// Its tree on disk.
    pub(super) dir: PathBuf,
    /// Its tree, as its journaled manifest and tree file say.
    pub(super) tree: std::sync::Arc<Tree>,
    /// Its files' times and the vendor's clock then.
    pub(super) stat: Stat,
}

/// `<step>.stat`: the vendor's clock when the pull began and each file's modification
/// time there (seconds since 1970).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The vendor's clock when the pull began; `None`: unknown (every file is pulled).
    pub(crate) clock: Option<i64>,
    /// Path → time.
    pub(crate) mtimes: BTreeMap<Vec<u8>, i64>,
}

impl Stat {
    /// `clock SECS` (or `clock -`), then `TIME  NAME` per file of `tree`, names escaped
    /// as in the manifest.
    pub(crate) fn bytes(&self, tree: &Tree) -> Vec<u8> {
        let mut out = match self.clock {
            Some(c) => format!("clock {c}\n").into_bytes(),
            None => b"clock -\n".to_vec(),
        };
        let mut times = Along::new(&self.mtimes);
        for (name, node) in tree {
            if !matches!(node, Node::File { .. }) {
                continue;
            }
            let Some(t) = times.get(name) else {
                continue;
            };
            let (esc, text) = escape(name);
            if esc {
                out.push(b'\\');
            }
            out.extend_from_slice(format!("{t}  ").as_bytes());
            out.extend_from_slice(&text);
            out.push(b'\n');
        }
        out
    }

    /// Reads [`Stat::bytes`] back.
    pub(crate) fn parse(text: &[u8]) -> Result<Self, String> {
        let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let bad = |l: &[u8]| format!("stat line not understood: {}", String::from_utf8_lossy(l));
        let first = lines.next().unwrap_or_default();
        let clock = match first.strip_prefix(b"clock ") {
            Some(b"-") => None,
            Some(n) => Some(String::from_utf8_lossy(n).parse().map_err(|_| bad(first))?),
            None => return Err(bad(first)),
        };
        let mut mtimes = BTreeMap::new();
        for line in lines {
            let (esc, l) = match line.strip_prefix(b"\\") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let at = l
                .windows(2)
                .position(|w| w == b"  ")
                .ok_or_else(|| bad(line))?;
            let t: i64 = String::from_utf8_lossy(&l[..at])
                .parse()
                .map_err(|_| bad(line))?;
            let name = if esc {
                unescape(&l[at + 2..])
            } else {
                l[at + 2..].to_vec()
            };
            mtimes.insert(name, t);
        }
        Ok(Self { clock, mtimes })
    }
}

/// The newest earlier artifact of a fetch with these `inputs` whose descriptions are the
/// ones journaled, or `None`. Its files are not hashed again here: the build verifies
/// the new tree, whose unchanged files are these, before packaging it.
pub(super) fn earlier(
    artifacts: &Path,
    inputs: &str,
    runs: &crate::engine::Reuse,
) -> (Option<Earlier>, Vec<String>) {
    let mut passed = Vec::new();
    for e in candidates(artifacts, inputs, runs) {
        match described(&e.artifacts, &e.step, &e.facts) {
            Ok((tree, stat)) => {
                return (
                    Some(Earlier {
                        dir: e.artifacts.join(&e.step),
                        run: e.run,
                        step: e.step,
                        tree: std::sync::Arc::new(tree),
                        stat,
                    }),
                    passed,
                );
            }
            Err(why) => passed.push(format!("run {} step `{}`: {why}", e.run, e.step)),
        }
    }
    (None, passed)
}

/// The tree and times of an earlier artifact, if its files are the journaled ones.
fn described(
    artifacts: &Path,
    step: &str,
    facts: &serde_json::Value,
) -> Result<(Tree, Stat), String> {
    let [dir, _, manifest_path, tree_path] = super::paths(artifacts, step);
    let stat_path = super::stat_path(artifacts, step);
    if !dir.is_dir() {
        return Err(format!("{} is gone", dir.display()));
    }
    let mut read = Vec::new();
    for (file, fact) in [
        (&manifest_path, "manifest_sha256"),
        (&tree_path, "tree_sha256"),
        (&stat_path, "stat_sha256"),
    ] {
        let bytes = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let journaled = facts.get(fact).and_then(serde_json::Value::as_str);
        if journaled != Some(crate::digest::hex(&Sha256::digest(&bytes)).as_str()) {
            return Err(format!(
                "{} is not the one journaled when it was pulled",
                file.display()
            ));
        }
        read.push(bytes);
    }
    let tree = crate::artifact::manifest::parse(&read[0], &read[1])?;
    Ok((tree, Stat::parse(&read[2])?))
}

/// The listing command: exit 65 when `path` is not a folder and 67 when `find` has no
/// `-printf` (a full pull then); else the vendor's clock, a newline, and per entry
/// `KIND MODE SIZE TIME PATH\0TARGET\0` (TIME with a fraction). Excluded paths are pruned as tar leaves them out.
pub(super) fn list_command(path: &str, exclude: &[String]) -> String {
    let mut prune = String::new();
    for (i, e) in exclude.iter().enumerate() {
        let rel = format!("./{}", e.trim_end_matches('/').trim_start_matches("./"));
        if i > 0 {
            prune.push_str(" -o");
        }
        prune.push_str(" -path ");
        prune.push_str(&quote(&rel));
    }
    let prune = if prune.is_empty() {
        String::new()
    } else {
        format!(" \\({prune} \\) -prune -o")
    };
    format!(
        "LC_ALL=C; export LC_ALL; P={}; [ -d \"$P\" ] || exit 65; cd \"$P\" || exit 65; \
         find . -maxdepth 0 -printf '' 2>/dev/null || exit 67; date +%s; \
         exec find .{prune} -printf '%y %m %s %T@ %p\\0%l\\0'",
        quote(path)
    )
}

/// The delta command: a tar of the names on stdin (NUL-separated, `./`-prefixed), no
/// folder's contents, the same exclusions as a full pull.
pub(super) fn delta_command(path: &str, exclude: &[String]) -> String {
    let mut excludes = String::new();
    for e in exclude {
        let rel = format!("./{}", e.trim_end_matches('/').trim_start_matches("./"));
        excludes.push_str(" --exclude=");
        excludes.push_str(&quote(&rel));
    }
    format!(
        "LC_ALL=C; export LC_ALL; cd {} && exec tar -cf - --null --no-recursion --no-unquote{excludes} -T -",
        quote(path)
    )
}

/// One entry of the vendor's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    /// `find`'s `%y`: `f`, `d`, `l`, or another kind.
    pub(super) kind: u8,
    /// Permission bits, with setuid/setgid/sticky.
    pub(super) mode: u32,
    /// Bytes.
    pub(super) size: u64,
    /// Modification time, seconds.
    pub(super) mtime: i64,
    /// A link's target.
    pub(super) target: Vec<u8>,
}

/// The vendor's clock and its listing, each name checked as an unpack checks it.
pub(super) fn parse_listing(out: &[u8]) -> Result<(i64, BTreeMap<Vec<u8>, Listed>), String> {
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("the listing has no clock line")?;
    let clock: i64 = String::from_utf8_lossy(&out[..nl])
        .trim()
        .parse()
        .map_err(|_| "the listing's clock line is not a number")?;
    let mut fields = out[nl + 1..].split(|&b| b == 0);
    let mut list = BTreeMap::new();
    while let Some(rec) = fields.next() {
        if rec.is_empty() {
            break;
        }
        let target = fields.next().ok_or("the listing ends inside an entry")?;
        let bad = || {
            format!(
                "listing entry not understood: {}",
                String::from_utf8_lossy(rec)
            )
        };
        let mut w = rec.splitn(5, |&b| b == b' ');
        let kind = *w.next().and_then(|k| k.first()).ok_or_else(bad)?;
        let mode = word(w.next())
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .ok_or_else(bad)?;
        let size = word(w.next())
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        // `%T@` has a fraction (faster than `%Ts`, which formats a date); a tar header's
        // time, what a full pull records, is the whole seconds.
        let mtime = word(w.next())
            .and_then(|s| s.split('.').next().and_then(|i| i.parse().ok()))
            .ok_or_else(bad)?;
        let path = w.next().ok_or_else(bad)?;
        if path == b"." {
            continue;
        }
        let rel = path.strip_prefix(b"./").ok_or_else(bad)?;
        if rel
            .split(|&b| b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b"..")
        {
            return Err(format!(
                "the vendor listed an unsafe name: {}",
                String::from_utf8_lossy(path)
            ));
        }
        list.insert(
            rel.to_vec(),
            Listed {
                kind,
                mode,
                size,
                mtime,
                target: target.to_vec(),
            },
        );
    }
    Ok((clock, list))
}

/// A field of a listing entry, as text (its numbers are ASCII).
fn word(w: Option<&[u8]>) -> Option<&str> {
    w.and_then(|x| std::str::from_utf8(x).ok())
}

/// What becomes of one listed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Take {
    /// Unchanged: the earlier artifact's file (linked), its node.
    Keep(Node),
    /// A folder or link, made here from the listing.
    Make(Node),
    /// Asked for in the delta tar.
    Pull,
}

/// Decides every listed entry against the earlier artifact.
pub(super) fn decide(
    list: &BTreeMap<Vec<u8>, Listed>,
    earlier: &Earlier,
) -> BTreeMap<Vec<u8>, Take> {
    let (mut nodes, mut times) = (Along::new(&earlier.tree), Along::new(&earlier.stat.mtimes));
    list.iter()
        .map(|(name, l)| {
            let take = match l.kind {
                b'd' => Take::Make(Node::Dir {
                    mode: (l.mode & 0o755) | 0o700,
                }),
                b'l' => Take::Make(Node::Symlink {
                    target: l.target.clone(),
                }),
                b'f' => match (nodes.get(name), times.get(name)) {
                    (Some(node @ Node::File { size, mode, .. }), time)
                        if *size == l.size
                            && *mode == (l.mode & 0o755) | 0o600
                            && time == Some(&l.mtime)
                            && earlier.stat.clock.is_some_and(|c| l.mtime < c - 1) =>
                    {
                        Take::Keep(node.clone())
                    }
                    _ => Take::Pull,
                },
                _ => Take::Pull,
            };
            (name.clone(), take)
        })
        .collect()
}

/// Runs `command` (with `stdin`) to its end: stdout, stderr, exit status.
pub(super) async fn run_to_end(
    session: &Session,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<(Vec<u8>, String, u32), StepError> {
    let mut run = session
        .exec(command, stdin)
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = run.next().await {
        match o {
            Out::Stdout(b) => out.extend_from_slice(&b),
            Out::Stderr(b) if err.len() < 64 * 1024 => err.extend_from_slice(&b),
            Out::Stderr(_) => {}
        }
    }
    let code = run
        .exit_status()
        .map_err(|e| StepError::failed(e.to_string()))?;
    Ok((out, String::from_utf8_lossy(&err).trim().to_string(), code))
}

/// `incremental: digest`: the vendor's SHA-256 of every file kept so far; a file whose
/// digest differs from the earlier one's is pulled instead. Returns how many were hashed.
pub(super) async fn digest_kept(
    session: &Session,
    path: &str,
    takes: &mut BTreeMap<Vec<u8>, Take>,
) -> Result<usize, StepError> {
    let mut names = Vec::new();
    let mut count = 0;
    for (name, t) in takes.iter() {
        if matches!(t, Take::Keep(_)) {
            names.extend_from_slice(b"./");
            names.extend_from_slice(name);
            names.push(0);
            count += 1;
        }
    }
    if count == 0 {
        return Ok(0);
    }
    let command = format!("cd {} && exec xargs -0 -r sha256sum --", quote(path));
    let (out, err, code) = run_to_end(session, &command, Some(&names)).await?;
    if code != 0 {
        return Err(StepError::failed(format!(
            "sha256sum on the vendor host failed (exit status {code}): {err}"
        )));
    }
    let sums: BTreeMap<Vec<u8>, String> = crate::artifact::manifest::parse_sums(&out)
        .into_iter()
        .map(|(n, d)| (n.strip_prefix(b"./").map(<[u8]>::to_vec).unwrap_or(n), d))
        .collect();
    for (name, t) in takes.iter_mut() {
        if let Take::Keep(Node::File { sha256, .. }) = t
            && sums.get(name) != Some(sha256)
        {
            *t = Take::Pull;
        }
    }
    Ok(count)
}

/// The names to pull, as the delta command reads them.
pub(super) fn wanted(takes: &BTreeMap<Vec<u8>, Take>) -> (Vec<u8>, usize) {
    let mut names = Vec::new();
    let mut n = 0;
    for (name, t) in takes {
        if *t == Take::Pull {
            names.extend_from_slice(b"./");
            names.extend_from_slice(name);
            names.push(0);
            n += 1;
        }
    }
    (names, n)
}

/// Pulls the asked-for files into `into` (empty) through `run`, the delta command started
/// beside the listing (its session set up meanwhile): the names, the end of its stdin, then
/// the tar stream. The unpack's result and the bytes moved, or the step error.
pub(super) async fn pull_delta(
    mut run: crate::ssh::Exec,
    names: &[u8],
    into: &Path,
    cx: &mut crate::engine::StepCx<'_>,
) -> Result<(crate::artifact::unpack::Unpacked, u64), StepError> {
    run.send(names)
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    run.eof()
        .await
        .map_err(|e| StepError::failed(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let dir = into.to_path_buf();
    let unpacking = tokio::task::spawn_blocking(move || {
        unpack(
            ChunkReader {
                rx,
                cur: Bytes::new(),
            },
            &dir,
        )
    });
    let (bytes, stderr) = pump(&mut run, tx, cx).await;
    let unpacked = unpacking
        .await
        .map_err(|e| StepError::failed(format!("the unpacking thread failed: {e}")))?;
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    match (unpacked, run.exit_status()) {
        (_, Err(e)) => Err(StepError::failed(e.to_string())),
        // 1: a file changed while read; 2: most often one gone since the listing.
        (_, Ok(code @ 1..)) => Err(StepError::Failed(format!(
            "tar on the vendor host failed (exit status {code}) while pulling what changed; nothing is taken as complete. It said:\n{stderr}"
        ))),
        (Err(e @ UnpackError::Archive(_)), Ok(_)) => Err(StepError::Failed(e.to_string())),
        (Err(e), Ok(_)) => Err(StepError::Fatal(e.to_string())),
        (Ok(u), Ok(_)) => Ok((u, bytes)),
    }
}

/// Ends a delta command that is not needed (nothing changed, or a full pull instead): the
/// end of its stdin sent, its (empty) tar read to the end by a task of its own, so that the
/// pull does not wait for the vendor's tar to exit.
pub(super) async fn drop_delta(run: Option<crate::ssh::Exec>) {
    if let Some(mut run) = run
        && run.eof().await.is_ok()
    {
        tokio::spawn(async move { while run.next().await.is_some() {} });
    }
}

/// The new tree: kept and made entries from the listing, pulled ones from the delta.
/// Refused: a delta entry not asked for, an entry whose parent is not a folder.
pub(super) fn merge(
    takes: &BTreeMap<Vec<u8>, Take>,
    delta: &crate::artifact::unpack::Unpacked,
) -> Result<Tree, String> {
    for (name, node) in &delta.tree {
        let asked = matches!(takes.get(name), Some(Take::Pull))
            || (matches!(node, Node::Dir { .. })
                && matches!(takes.get(name), Some(Take::Make(Node::Dir { .. }))));
        if !asked {
            return Err(format!(
                "the vendor sent `{}`, which was not asked for",
                String::from_utf8_lossy(name)
            ));
        }
    }
    let mut pulled = Along::new(&delta.tree);
    // In order: the map is built from it in one pass, not searched once per entry.
    let tree: Tree = takes
        .iter()
        .filter_map(|(name, t)| match t {
            Take::Keep(n) | Take::Make(n) => Some((name.clone(), n.clone())),
            // Not in the delta: tar left it out (an exclusion), as a full pull would.
            Take::Pull => pulled.get(name).map(|n| (name.clone(), n.clone())),
        })
        .collect();
    let folders: std::collections::HashSet<&[u8]> = tree
        .iter()
        .filter(|(_, n)| matches!(n, Node::Dir { .. }))
        .map(|(name, _)| name.as_slice())
        .collect();
    for name in tree.keys() {
        if let Some(at) = name.iter().rposition(|&b| b == b'/') {
            let parent = &name[..at];
            if !folders.contains(parent) {
                return Err(format!(
                    "the vendor listed `{}` below `{}`, which is not a folder of the tree",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(parent)
                ));
            }
        }
    }
    Ok(tree)
}

/// Makes `root`, which holds the earlier artifact's folders and files
/// ([`super::ahead`]), into `tree`: what is not kept is taken out (a changed or gone
/// file, a folder that is gone or of another kind now), the folders of `tree` are made
/// or given their mode, the files pulled are moved in from `delta` (the folder the delta
/// was unpacked into), and the links are made last, so nothing is ever written through
/// one.
pub(super) fn materialize(
    root: &Path,
    tree: &Tree,
    takes: &BTreeMap<Vec<u8>, Take>,
    earlier: &Tree,
    delta: &Path,
    pulled: &Tree,
) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let at = |base: &Path, name: &[u8]| base.join(std::ffi::OsStr::from_bytes(name));
    let err = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let gone = |p: &Path, r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(p, e)),
        _ => Ok(()),
    };
    let mut decided = Along::new(takes);
    for (name, node) in earlier {
        if matches!(node, Node::File { .. }) && !matches!(decided.get(name), Some(Take::Keep(_))) {
            let p = at(root, name);
            gone(&p, fs::remove_file(&p))?;
        }
    }
    // Children first: a folder that stays may hold one that goes.
    for (name, node) in earlier.iter().rev() {
        if matches!(node, Node::Dir { .. })
            && !matches!(takes.get(name), Some(Take::Make(Node::Dir { .. })))
        {
            let p = at(root, name);
            gone(&p, fs::remove_dir_all(&p))?;
        }
    }
    for (name, node) in tree {
        if let Node::Dir { mode } = node {
            let p = at(root, name);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("`{}` is not a folder", p.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&p).map_err(|e| err(&p, e))?;
                }
                Err(e) => return Err(err(&p, e)),
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(|e| err(&p, e))?;
        }
    }
    for (name, node) in pulled {
        if !matches!(node, Node::Dir { .. }) {
            let p = at(root, name);
            fs::rename(at(delta, name), &p).map_err(|e| err(&p, e))?;
        }
    }
    for (name, t) in takes {
        if let Take::Make(Node::Symlink { target }) = t {
            let p = at(root, name);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &p)
                .map_err(|e| err(&p, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
