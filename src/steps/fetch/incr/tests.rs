use super::*;

#[test]
fn stat_reads_back_what_it_wrote() {
    let mut tree = Tree::new();
    for name in [&b"a"[..], b"back\\slash", b"new\nline"] {
        tree.insert(
            name.to_vec(),
            Node::File {
                sha256: "0".repeat(64),
                size: 1,
                mode: 0o644,
            },
        );
    }
    tree.insert(b"d".to_vec(), Node::Dir { mode: 0o755 });
    let stat = Stat {
        clock: Some(1_700_000_000),
        mtimes: tree
            .keys()
            .filter(|k| *k != b"d")
            .map(|k| (k.clone(), -5))
            .collect(),
    };
    assert_eq!(Stat::parse(&stat.bytes(&tree)), Ok(stat));
    let unknown = Stat::default();
    assert_eq!(Stat::parse(&unknown.bytes(&Tree::new())), Ok(unknown));
}

#[test]
fn the_listing_is_parsed_and_unsafe_names_refused() {
    let out = b"1700000000\nd 755 4096 1.5 .\0\0f 4755 3 9.25 ./a b\0\0l 777 1 9 ./l\0a b\0";
    let (clock, list) = parse_listing(out).expect("parsed");
    assert_eq!(clock, 1_700_000_000);
    assert_eq!(list.len(), 2);
    assert_eq!(list[&b"a b"[..]].mode, 0o4755);
    assert_eq!(list[&b"a b"[..]].mtime, 9);
    assert_eq!(list[&b"l"[..]].target, b"a b");
    for bad in [
        &b"1\nf 644 1 1 ./../x\0\0"[..],
        b"1\nf 644 1 1 /etc/x\0\0",
        b"1\nf 644 1 1 ./a//b\0\0",
    ] {
        assert!(
            parse_listing(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_file_below_a_link_is_refused() {
    let mut takes = BTreeMap::new();
    takes.insert(
        b"a".to_vec(),
        Take::Make(Node::Symlink {
            target: b"/etc".to_vec(),
        }),
    );
    takes.insert(
        b"a/passwd".to_vec(),
        Take::Keep(Node::File {
            sha256: "0".repeat(64),
            size: 1,
            mode: 0o644,
        }),
    );
    let e = merge(&takes, &crate::artifact::unpack::Unpacked::default()).expect_err("refused");
    assert!(e.contains("not a folder"), "{e}");
}

#[test]
fn a_file_touched_around_the_earlier_pull_is_pulled_again() {
    let node = Node::File {
        sha256: "0".repeat(64),
        size: 3,
        mode: 0o644,
    };
    let earlier = |clock| Earlier {
        run: "r".into(),
        step: "s".into(),
        dir: PathBuf::new(),
        tree: [(b"f".to_vec(), node.clone())].into(),
        stat: Stat {
            clock: Some(clock),
            mtimes: [(b"f".to_vec(), 100)].into(),
        },
    };
    let list: BTreeMap<Vec<u8>, Listed> = [(
        b"f".to_vec(),
        Listed {
            kind: b'f',
            mode: 0o644,
            size: 3,
            mtime: 100,
            target: Vec::new(),
        },
    )]
    .into();
    assert_eq!(
        decide(&list, &earlier(200))[&b"f"[..]],
        Take::Keep(node.clone())
    );
    assert_eq!(decide(&list, &earlier(101))[&b"f"[..]], Take::Pull);
    let mut resized = list.clone();
    resized.get_mut(&b"f"[..]).expect("f").size = 4;
    assert_eq!(decide(&resized, &earlier(200))[&b"f"[..]], Take::Pull);
    let mut chmod = list;
    chmod.get_mut(&b"f"[..]).expect("f").mode = 0o755;
    assert_eq!(decide(&chmod, &earlier(200))[&b"f"[..]], Take::Pull);
}
