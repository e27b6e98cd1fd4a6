use super::*;
use crate::artifact::manifest::{self, manifest_bytes, tree_bytes};
use std::process::Command;

/// A tree with the names and kinds that break naive copies, made on disk.
fn odd_tree(src: &Path) {
    let w = |p: &str, data: &[u8]| std::fs::write(src.join(p), data).expect("write");
    std::fs::create_dir_all(src.join("dir with space/sub")).expect("mkdir");
    std::fs::create_dir_all(src.join("empty dir")).expect("mkdir");
    w("plain.txt", b"hello\n");
    w(
        "dir with space/sub/ünïcödé ꦧꦺꦴꦪꦺꦴꦁ.txt",
        "Selamat datang 🚚\n".as_bytes(),
    );
    w("-leading-dash", b"dash");
    w("back\\slash", b"bs");
    w("new\nline", b"nl");
    w("empty", b"");
    w("run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    w("setuid-tool", b"suid");
    std::fs::set_permissions(src.join("setuid-tool"), fs::Permissions::from_mode(0o4755))
        .expect("chmod");
    std::os::unix::fs::symlink("plain.txt", src.join("link-inside")).expect("symlink");
    std::os::unix::fs::symlink("../../etc/passwd", src.join("dir with space/link-outside"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc/hostname", src.join("link-absolute")).expect("symlink");
    std::fs::hard_link(src.join("plain.txt"), src.join("hard-link")).expect("hard link");
    w(&"n".repeat(200), b"long name");
}

fn gnu_tar(src: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-C")
        .arg(src)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_gnu_tar_of_odd_names_unpacks_exactly_and_sha256sum_agrees() {
    let d = tempfile::tempdir().expect("tempdir");
    let (src, dest) = (d.path().join("src"), d.path().join("dest"));
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::create_dir(&dest).expect("mkdir");
    odd_tree(&src);
    let out = unpack(gnu_tar(&src).as_slice(), &dest).expect("unpacks");

    let mut want = manifest::scan(&src).expect("scan src");
    // Setuid is dropped; everything else is kept exactly.
    if let Some(Node::File { mode, .. }) = want.get_mut(b"setuid-tool".as_slice()) {
        *mode = 0o755;
    }
    assert_eq!(out.tree, want);
    assert_eq!(manifest::scan(&dest).expect("scan dest"), want);
    assert_eq!(out.special_bits_dropped, ["setuid-tool"]);
    let mut outside: Vec<&str> = out.links_outside.iter().map(|(p, _)| p.as_str()).collect();
    outside.sort_unstable();
    assert_eq!(outside, ["dir with space/link-outside", "link-absolute"]);

    // The manifest is what coreutils reads, odd names included.
    std::fs::write(d.path().join("m"), manifest_bytes(&out.tree)).expect("write manifest");
    let check = Command::new("sha256sum")
        .args(["--strict", "-c"])
        .arg(d.path().join("m"))
        .current_dir(&dest)
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let lines = String::from_utf8_lossy(&check.stdout).lines().count();
    assert_eq!(
        lines,
        out.tree
            .values()
            .filter(|n| matches!(n, Node::File { .. }))
            .count()
    );

    // Written and read back, the description is the same; verify finds a change.
    let again =
        manifest::parse(&manifest_bytes(&out.tree), &tree_bytes(&out.tree)).expect("parses");
    assert_eq!(again, out.tree);
    manifest::verify(&dest, &again).expect("verifies");
    std::fs::write(dest.join("run.sh"), b"#!/bin/sh\necho HI\n").expect("tamper");
    let err = manifest::verify(&dest, &again).expect_err("a changed byte is found");
    assert!(err.contains("run.sh"), "{err}");
}

/// A tar with one raw header: `name` written as given (no checks), of `kind`.
fn raw_entry(b: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let g = h.as_gnu_mut().expect("gnu header");
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b.resize(b.len().div_ceil(512) * 512, 0);
}

fn finish(mut b: Vec<u8>) -> Vec<u8> {
    b.extend_from_slice(&[0u8; 1024]);
    b
}

fn refuse(archive: &[u8], expect: &str) {
    let d = tempfile::tempdir().expect("tempdir");
    let dest = d.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir");
    let err = unpack(archive, &dest).expect_err("refused");
    assert!(err.to_string().contains(expect), "{err}");
    // Nothing was written outside the destination.
    let outside: Vec<_> = std::fs::read_dir(d.path()).expect("ls").collect();
    assert_eq!(outside.len(), 1, "something was written beside dest");
}

#[test]
fn absolute_and_parent_paths_are_refused() {
    let mut b = Vec::new();
    raw_entry(
        &mut b,
        b"/tmp/boyong-abs",
        tar::EntryType::Regular,
        b"",
        b"x",
    );
    refuse(&finish(b), "an absolute path");
    let mut b = Vec::new();
    raw_entry(
        &mut b,
        b"a/../../escape",
        tar::EntryType::Regular,
        b"",
        b"x",
    );
    refuse(&finish(b), "`..`");
}

#[test]
fn nothing_is_written_through_a_symlink() {
    let d = tempfile::tempdir().expect("tempdir");
    let target = d.path().join("victim");
    std::fs::create_dir(&target).expect("mkdir");
    let mut b = Vec::new();
    raw_entry(
        &mut b,
        b"link",
        tar::EntryType::Symlink,
        target.as_os_str().as_bytes(),
        b"",
    );
    raw_entry(&mut b, b"link/pwned", tar::EntryType::Regular, b"", b"x");
    let dest = d.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir");
    let err = unpack(finish(b).as_slice(), &dest).expect_err("refused");
    assert!(
        err.to_string().contains("not a directory of this archive"),
        "{err}"
    );
    assert!(!target.join("pwned").exists());
    // And a file entry over an existing link is refused, not followed.
    let mut b = Vec::new();
    raw_entry(
        &mut b,
        b"l2",
        tar::EntryType::Symlink,
        target.join("f").as_os_str().as_bytes(),
        b"",
    );
    raw_entry(&mut b, b"l2", tar::EntryType::Regular, b"", b"x");
    let dest2 = d.path().join("dest2");
    std::fs::create_dir(&dest2).expect("mkdir");
    let err = unpack(finish(b).as_slice(), &dest2).expect_err("refused");
    assert!(err.to_string().contains("the same path twice"), "{err}");
    assert!(!target.join("f").exists());
}

#[test]
fn devices_fifos_and_stray_hard_links_are_refused() {
    let mut b = Vec::new();
    raw_entry(&mut b, b"dev", tar::EntryType::Char, b"", b"");
    refuse(&finish(b), "a device node");
    let mut b = Vec::new();
    raw_entry(&mut b, b"pipe", tar::EntryType::Fifo, b"", b"");
    refuse(&finish(b), "a fifo");
    let mut b = Vec::new();
    raw_entry(&mut b, b"h", tar::EntryType::Link, b"/etc/passwd", b"");
    refuse(&finish(b), "an absolute path");
    let mut b = Vec::new();
    raw_entry(&mut b, b"h", tar::EntryType::Link, b"not-there", b"");
    refuse(&finish(b), "not a file unpacked before");
}

#[test]
fn a_truncated_stream_is_an_error_not_a_short_tree() {
    let d = tempfile::tempdir().expect("tempdir");
    let src = d.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("big"), vec![7u8; 100_000]).expect("write");
    let full = gnu_tar(&src);
    let dest = d.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir");
    let err = unpack(&full[..50_000], &dest).expect_err("truncated");
    assert!(matches!(err, UnpackError::Archive(_)), "{err}");
}

#[test]
fn odd_link_names_round_trip_and_bad_tree_lines_are_errors_not_panics() {
    let mut tree = Tree::new();
    tree.insert(
        b"a -> b".to_vec(),
        Node::Symlink {
            target: b"c -> d".to_vec(),
        },
    );
    tree.insert(
        b"x>y".to_vec(),
        Node::Symlink {
            target: b"z".to_vec(),
        },
    );
    let back = manifest::parse(&manifest_bytes(&tree), &tree_bytes(&tree)).expect("parses");
    assert_eq!(back, tree);
    for bad in [
        &b"dir"[..],
        b"link",
        b"file",
        b"dir 0755",
        b"link a",
        b"nonsense x",
    ] {
        assert!(
            manifest::parse(b"", bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
