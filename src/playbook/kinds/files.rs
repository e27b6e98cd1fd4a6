//! The rules of `deploy.files` (files the app reads, delivered at deploy time) and their
//! link to the build that would otherwise copy the vendor's version into an image layer.
//!
//! Owns: a file's source (exactly one of `template`, `content`, `replace`), its owner and
//! mode, reading a template from the playbook's folder (a regular file of at most 1 MiB,
//! `{{ vars.NAME }}` filled in, errors named `FILE:LINE:COL`), and [`link`]: which
//! fetched file a delivered one stands for, so that the build leaves it out.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Loc};
use crate::playbook::model::{DeployFile, FileSource, ImageSource, Step, StepKind};
use crate::playbook::raw::RawFile;
use crate::playbook::template::{Part, Piece, Template, scan};
use crate::playbook::validate::{Validator, Var};
use crate::playbook::yaml::Sp;

/// The largest template file read.
const MAX_TEMPLATE: u64 = 1 << 20;

impl Validator<'_> {
    /// `deploy.files`.
    pub(super) fn deploy_files(&mut self, files: &[Sp<RawFile>], at: &str) -> Vec<DeployFile> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let field = format!("{at}.files[{i}]");
            let raw = &file.value;
            let path = self.abs_path(
                &raw.path,
                &format!("{field}.path"),
                "a secret in a path shows in plans",
            );
            if path.ends_with('/') {
                self.error(
                    raw.path.loc,
                    format!("`{path}` names a folder"),
                    "expected the path of a file",
                );
            }
            if !seen.insert(path.clone()) {
                self.error(
                    raw.path.loc,
                    format!("`{path}` is delivered twice"),
                    "give each path once",
                );
            }
            let given = [
                raw.template.is_some(),
                raw.content.is_some(),
                raw.replace.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if given != 1 {
                self.error(
                    file.loc,
                    format!("`{field}` gives {given} sources"),
                    "expected exactly one of `template` (a local file), `content` (inline text) or `replace` (the fetched file, edited)",
                );
                continue;
            }
            let source = if let Some(t) = &raw.template {
                let text = self.template_file(t, &format!("{field}.template"));
                FileSource::Template {
                    file: t.value.clone(),
                    text,
                }
            } else if let Some(c) = &raw.content {
                FileSource::Content(self.template(c, &format!("{field}.content")))
            } else {
                let list = raw.replace.as_deref().unwrap_or_default();
                if list.is_empty() {
                    self.error(
                        file.loc,
                        format!("`{field}.replace` is empty"),
                        "expected at least one `{ find: …, with: … }`",
                    );
                }
                let mut pairs = Vec::new();
                for (j, rep) in list.iter().enumerate() {
                    let find =
                        self.template(&rep.value.find, &format!("{field}.replace[{j}].find"));
                    if rep.value.find.value.is_empty() {
                        self.error(
                            rep.value.find.loc,
                            "`find` is empty",
                            "expected the text to replace",
                        );
                    }
                    let with =
                        self.template(&rep.value.with, &format!("{field}.replace[{j}].with"));
                    pairs.push((find, with));
                }
                FileSource::Replace(pairs)
            };
            let (uid, gid) = match &raw.owner {
                Some(o) => {
                    let t = self.text(o, &format!("{field}.owner"));
                    numeric_owner(&t).unwrap_or_else(|| {
                        self.error(
                            o.loc,
                            format!("`{t}` is not a numeric owner"),
                            "expected `UID:GID`, e.g. `33:33`",
                        );
                        (0, 0)
                    })
                }
                // Filled in by `link` from the build, when there is one.
                None => (u32::MAX, u32::MAX),
            };
            let mode = match &raw.mode {
                Some(m) => {
                    let t = self.text(m, &format!("{field}.mode"));
                    match u32::from_str_radix(t.trim_start_matches("0o"), 8) {
                        Ok(v) if v <= 0o7777 && (v & 0o6000) == 0 => v,
                        _ => {
                            self.error(
                                m.loc,
                                format!("`{t}` is not a file mode"),
                                "expected octal permission bits without setuid/setgid, e.g. `\"0440\"`",
                            );
                            0o440
                        }
                    }
                }
                None => 0o440,
            };
            out.push(DeployFile {
                path,
                source,
                uid,
                gid,
                mode,
                replaces: None,
            });
        }
        out
    }

    /// A template file's text, its `{{ vars.NAME }}` resolved; errors at `FILE:LINE:COL`.
    fn template_file(&mut self, s: &Sp<String>, field: &str) -> Template {
        let path = self.path(s, field);
        let bytes = match crate::playbook::read_regular(&path, MAX_TEMPLATE) {
            Ok(b) => b,
            Err(e) => {
                self.error(
                    s.loc,
                    format!("`{field}`: {e}"),
                    "expected a readable file next to the playbook",
                );
                return Template::default();
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            self.error(
                s.loc,
                format!("`{field}`: {} is not UTF-8 text", path.display()),
                "expected a text file",
            );
            return Template::default();
        };
        let at = |offset: usize| {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{col}", path.display())
        };
        let pieces = match scan(&text) {
            Ok(p) => p,
            Err(e) => {
                self.error(
                    s.loc,
                    format!("{}: {}", at(e.offset), e.message),
                    "in this template",
                );
                return Template::default();
            }
        };
        let mut parts: Vec<Part> = Vec::new();
        let lit = |parts: &mut Vec<Part>, t: &str| {
            if let Some(Part::Lit(last)) = parts.last_mut() {
                last.push_str(t);
            } else {
                parts.push(Part::Lit(t.to_string()));
            }
        };
        for p in pieces {
            match p {
                Piece::Lit(t) => lit(&mut parts, &t),
                Piece::Var { name, offset, .. } => match self.var(&name) {
                    Some(Var::Text(t)) => lit(&mut parts, &t),
                    Some(Var::Secret) => parts.push(Part::Secret(name)),
                    None => self.push(
                        Diagnostic::error(
                            Some(s.loc),
                            format!("{}: `vars.{name}` is not defined", at(offset)),
                        )
                        .label("in this template")
                        .help(format!(
                            "define it under `vars:`, e.g. `{name}: {{ env: {} }}`",
                            name.to_uppercase()
                        )),
                    ),
                },
            }
        }
        Template(parts)
    }
}

/// `UID:GID` (or `UID`, the group the same number), numeric.
pub(super) fn numeric_owner(t: &str) -> Option<(u32, u32)> {
    let (u, g) = t.split_once(':').unwrap_or((t, t));
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Links each delivered file to the build its deploy runs: the owner defaults to the
/// build's `owner`, else its `user` (numeric), else root; a path inside a copied tree
/// names the fetched file it replaces, and the build leaves that one out. A `replace`
/// needs such a fetched file. Errors at the deploy step's `loc`.
pub(crate) fn link(val: &mut Validator<'_>, steps: &mut [Option<Step>], locs: &[Loc]) {
    let builds: Vec<(String, crate::playbook::model::Build)> = steps
        .iter()
        .flatten()
        .filter_map(|s| match &s.kind {
            StepKind::Build(b) => Some((s.id.clone(), b.clone())),
            _ => None,
        })
        .collect();
    let mut omits: Vec<(String, (String, String, String))> = Vec::new();
    for (step, loc) in steps.iter_mut().zip(locs) {
        let Some(step) = step else { continue };
        let id = step.id.clone();
        let StepKind::Deploy(d) = &mut step.kind else {
            continue;
        };
        let build = match &d.image {
            ImageSource::Build(b) => builds.iter().find(|(i, _)| i == b),
            ImageSource::Reference(_) => None,
        };
        for file in &mut d.files {
            if file.uid == u32::MAX {
                let owner = build
                    .and_then(|(_, b)| b.owner.clone().or_else(|| b.user.clone()))
                    .unwrap_or_else(|| "0:0".into());
                let Some((u, g)) = numeric_owner(&owner) else {
                    val.error(
                        *loc,
                        format!("`{}`: the build's user `{owner}` is not numeric, so the file's owner is not known", file.path),
                        "give the file `owner: \"UID:GID\"`",
                    );
                    continue;
                };
                (file.uid, file.gid) = (u, g);
            }
            let replaced = build.and_then(|(bid, b)| {
                b.copy.iter().find_map(|(from, to)| {
                    let rel = file.path.strip_prefix(to.trim_end_matches('/'))?;
                    let rel = rel.strip_prefix('/')?;
                    Some((bid.clone(), from.clone(), rel.to_string()))
                })
            });
            match replaced {
                Some((bid, from, rel)) => {
                    omits.push((bid, (from.clone(), rel.clone(), id.clone())));
                    file.replaces = Some((from, rel));
                }
                None if matches!(file.source, FileSource::Replace(_)) => val.error(
                    *loc,
                    format!("`{}` is edited with `replace`, but no fetched file lies there", file.path),
                    "expected a path inside a tree that the deploy's build copies (its `copy:`), or use `template`/`content`",
                ),
                None => {}
            }
        }
    }
    for step in steps.iter_mut().flatten() {
        if let StepKind::Build(b) = &mut step.kind {
            b.omit.extend(
                omits
                    .iter()
                    .filter(|(bid, _)| *bid == step.id)
                    .map(|(_, o)| o.clone()),
            );
            b.omit.sort();
            b.omit.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::playbook::{FileSource, StepKind, load};

    const HEAD: &str = "version: 1\napp: situs\nvendor: { host: 127.0.0.1, user: v, identity: k, known_hosts: kh }\nvars:\n  pw: { env: PW }\nsteps:\n  - id: code\n    fetch: { path: /srv/www }\n  - id: image\n    build:\n      base: gov/php:8.2\n      copy: { code: /var/www/html }\n      owner: \"33:33\"\n  - id: web\n    deploy:\n      image: image\n      name: situs\n      files:\n";

    fn check(files: &str, template: Option<&str>) -> crate::playbook::Loaded {
        let d = tempfile::tempdir().expect("tempdir");
        if let Some(t) = template {
            std::fs::write(d.path().join("app.tmpl"), t).expect("template");
        }
        let p = d.path().join("p.yml");
        std::fs::write(&p, format!("{HEAD}{files}")).expect("playbook");
        load(&p)
    }

    fn errors(l: &crate::playbook::Loaded) -> String {
        l.diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_files_text_and_its_edits_may_span_lines_but_hold_no_other_control_character() {
        let l = check(
            "        - path: /etc/php/8.2/cli/conf.d/99-app.ini\n          content: \"memory_limit = 256M\\n\\tupload_max_filesize = 64M\\n\"\n        - path: /var/www/html/wp-config.php\n          replace: [{ find: \"a\\nb\", with: \"c\\n\" }]\n",
            None,
        );
        assert_eq!(errors(&l), "", "the docs' example validates");
        let pb = l.playbook.as_ref().expect("valid");
        let StepKind::Deploy(d) = &pb.steps[2].kind else {
            panic!("a deploy")
        };
        let FileSource::Content(c) = &d.files[0].source else {
            panic!("content")
        };
        assert_eq!(
            c.to_string(),
            "memory_limit = 256M\n\tupload_max_filesize = 64M\n",
            "kept as written"
        );
        let l = check(
            "        - path: /etc/app.ini\n          content: \"a = 1\\r\\n\"\n",
            None,
        );
        assert!(
            errors(&l).contains("U+000D (carriage return)"),
            "{}",
            errors(&l)
        );
    }

    #[test]
    fn a_delivered_file_inside_a_copied_tree_is_left_out_of_the_build_and_owned_as_it() {
        let l = check(
            "        - path: /var/www/html/wp-config.php\n          replace: [{ find: \"{{ vars.pw }}\", with: x }]\n        - path: /etc/app.ini\n          template: app.tmpl\n",
            Some("a = {{ vars.pw }}\n"),
        );
        let pb = l
            .playbook
            .as_ref()
            .unwrap_or_else(|| panic!("{}", errors(&l)));
        let StepKind::Build(b) = &pb.steps[1].kind else {
            panic!("a build")
        };
        assert_eq!(
            b.omit,
            [(
                "code".to_string(),
                "wp-config.php".to_string(),
                "web".to_string()
            )]
        );
        let StepKind::Deploy(d) = &pb.steps[2].kind else {
            panic!("a deploy")
        };
        assert_eq!(
            (d.files[0].uid, d.files[0].gid, d.files[0].mode),
            (33, 33, 0o440)
        );
        assert!(matches!(d.files[1].source, FileSource::Template { .. }));
        assert_eq!(d.files[1].replaces, None);
    }

    #[test]
    fn bad_files_are_errors_naming_what_was_expected() {
        let e = errors(&check(
            "        - path: /etc/a\n          content: x\n          template: app.tmpl\n",
            Some("x"),
        ));
        assert!(e.contains("gives 2 sources"), "{e}");
        let e = errors(&check(
            "        - path: /etc/a\n          replace: [{ find: a, with: b }]\n",
            None,
        ));
        assert!(e.contains("no fetched file lies there"), "{e}");
        let e = errors(&check(
            "        - path: /etc/a\n          template: app.tmpl\n",
            Some("{{ vars.nope }}"),
        ));
        assert!(
            e.contains("app.tmpl:1:1: `vars.nope` is not defined"),
            "{e}"
        );
        let e = errors(&check(
            "        - path: /etc/a\n          content: x\n          mode: \"4755\"\n",
            None,
        ));
        assert!(e.contains("is not a file mode"), "{e}");
        let e = errors(&check(
            "        - path: etc/a\n          content: x\n",
            None,
        ));
        assert!(e.contains("must be an absolute path"), "{e}");
    }
}
