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
        tree: std::sync::Arc::new([(b"f".to_vec(), node.clone())].into()),
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

/// The earlier tree linked ahead, then made into the new one: every kind of change.
#[test]
fn the_tree_linked_ahead_becomes_the_new_tree_whatever_changed_kind() {
    let d = tempfile::tempdir().expect("tempdir");
    let (from, root, delta) = (
        d.path().join("from"),
        d.path().join("root"),
        d.path().join("delta"),
    );
    let file = |body: &str| Node::File {
        sha256: crate::digest::hex(&Sha256::digest(body.as_bytes())),
        size: body.len() as u64,
        mode: 0o644,
    };
    let dir = Node::Dir { mode: 0o755 };
    // Earlier: kept, changed, gone; `f2d` a file that becomes a folder; `d2f` a folder
    // that becomes a file; `d2l` a folder that becomes a link; `gone/` with a file.
    let mut earlier = Tree::new();
    for (n, body) in [
        ("kept", "k"),
        ("changed", "old"),
        ("gone.txt", "g"),
        ("f2d", "x"),
    ] {
        earlier.insert(n.into(), file(body));
    }
    for n in ["d2f", "d2l", "gone", "stay"] {
        earlier.insert(n.into(), dir.clone());
    }
    earlier.insert(b"d2f/inner".to_vec(), file("i"));
    earlier.insert(b"gone/a".to_vec(), file("a"));
    earlier.insert(b"stay/kept2".to_vec(), file("k2"));
    fs::create_dir(&from).expect("mkdir");
    for (n, node) in &earlier {
        if let Node::Dir { .. } = node {
            fs::create_dir(from.join(String::from_utf8_lossy(n).as_ref())).expect("mkdir");
        }
    }
    for (n, body) in [
        ("kept", "k"),
        ("changed", "old"),
        ("gone.txt", "g"),
        ("f2d", "x"),
        ("d2f/inner", "i"),
        ("gone/a", "a"),
        ("stay/kept2", "k2"),
    ] {
        fs::write(from.join(n), body).expect("write");
    }
    fs::create_dir(&root).expect("mkdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut ahead = super::super::ahead::Ahead::start(
            std::sync::Arc::new(earlier.clone()),
            &from,
            &root,
            std::sync::Arc::default(),
        );
        ahead.finish().await.expect("linked ahead");
    });
    // The delta: the changed file, `d2f` as a file, a new file in the new folder `f2d`.
    fs::create_dir_all(delta.join("f2d")).expect("mkdir");
    fs::write(delta.join("changed"), "new!").expect("write");
    fs::write(delta.join("d2f"), "now a file").expect("write");
    fs::write(delta.join("f2d/new"), "n").expect("write");
    let mut pulled = Tree::new();
    pulled.insert(b"changed".to_vec(), file("new!"));
    pulled.insert(b"d2f".to_vec(), file("now a file"));
    pulled.insert(b"f2d".to_vec(), dir.clone());
    pulled.insert(b"f2d/new".to_vec(), file("n"));
    let mut takes = BTreeMap::new();
    takes.insert(b"kept".to_vec(), Take::Keep(file("k")));
    takes.insert(b"stay".to_vec(), Take::Make(Node::Dir { mode: 0o750 }));
    takes.insert(b"stay/kept2".to_vec(), Take::Keep(file("k2")));
    takes.insert(b"changed".to_vec(), Take::Pull);
    takes.insert(b"d2f".to_vec(), Take::Pull);
    takes.insert(b"f2d".to_vec(), Take::Make(dir.clone()));
    takes.insert(b"f2d/new".to_vec(), Take::Pull);
    takes.insert(
        b"d2l".to_vec(),
        Take::Make(Node::Symlink {
            target: b"stay".to_vec(),
        }),
    );
    let unpacked = crate::artifact::unpack::Unpacked {
        tree: pulled.clone(),
        ..Default::default()
    };
    let tree = merge(&takes, &unpacked).expect("merged");
    materialize(&root, &tree, &takes, &earlier, &delta, &pulled).expect("made");
    assert_eq!(
        crate::artifact::manifest::scan(&root).expect("scan"),
        tree,
        "the new tree on disk is the merged one"
    );
    // The earlier artifact is untouched: its files are linked, never written.
    for (n, body) in [("kept", "k"), ("changed", "old"), ("d2f/inner", "i")] {
        assert_eq!(fs::read_to_string(from.join(n)).expect("read"), body);
    }
}

#[test]
fn along_finds_what_a_search_finds_for_names_asked_in_order() {
    let map: BTreeMap<Vec<u8>, usize> = ["a", "a-b", "a/b", "a/b/c", "a/c", "b"]
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_bytes().to_vec(), i))
        .collect();
    let asked = [
        "", "a", "a-a", "a-b", "a/b/c", "a/bb", "a/c", "a0", "b", "c",
    ];
    let mut along = Along::new(&map);
    for name in asked {
        assert_eq!(
            along.get(name.as_bytes()),
            map.get(name.as_bytes()),
            "{name}"
        );
    }
    // The same name twice in a row is found twice.
    let mut again = Along::new(&map);
    assert_eq!(again.get(b"a/b"), Some(&2));
    assert_eq!(again.get(b"a/b"), Some(&2));
}
