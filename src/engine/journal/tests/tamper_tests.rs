//! Tampering with a journal: each kind of damage is named at the right line.

use super::*;

#[test]
fn edit_in_middle_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let orig = lines(&path);

    let mut l = orig.clone();
    l[4] = l[4].replacen("\"s1\"", "\"s2\"", 1); // line 5 payload
    write_lines(&path, &l);
    let p = problem(&path);
    assert_eq!(
        p,
        Problem {
            line: 5,
            kind: ProblemKind::Edited { or_line: None }
        }
    );
    assert_eq!(
        p.to_string(),
        "line 5 was edited (the hash chain breaks there)"
    );

    let mut l = orig.clone();
    l[0] = l[0].replace("andi", "budi"); // header
    write_lines(&path, &l);
    assert_eq!(problem(&path).line, 1);

    let mut l = orig.clone();
    let prev = serde_json::from_str::<Value>(&l[6]).unwrap()["prev"]
        .as_str()
        .unwrap()
        .to_owned();
    l[6] = l[6].replace(&prev, &"0".repeat(64)); // line 7's prev field
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 7,
            kind: ProblemKind::Edited { or_line: None }
        }
    );

    let mut l = orig.clone();
    l[3] = l[3].replace("\"seq\":3", "\"seq\":9"); // line 4's seq
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 4,
            kind: ProblemKind::Edited { or_line: None }
        }
    );

    let mut l = orig.clone();
    l[10] = l[10].replace("srv2", "srv3"); // second-to-last: ambiguous
    write_lines(&path, &l);
    let p = problem(&path);
    assert_eq!(
        p,
        Problem {
            line: 12,
            kind: ProblemKind::Edited { or_line: Some(11) }
        }
    );
    assert_eq!(
        p.to_string(),
        "line 12 was edited, or line 11 was (the hash chain breaks there)"
    );

    let mut l = orig;
    l[5] = l[5].replacen('{', "[", 1);
    write_lines(&path, &l);
    assert!(matches!(
        problem(&path),
        Problem {
            line: 6,
            kind: ProblemKind::Unparsable(_)
        }
    ));
}

#[test]
fn dropped_inserted_and_swapped_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path());
    let orig = lines(&path);

    let mut l = orig.clone();
    l.remove(4); // drop line 5
    write_lines(&path, &l);
    let p = problem(&path);
    assert_eq!(
        p,
        Problem {
            line: 5,
            kind: ProblemKind::Dropped {
                first_missing: 4,
                count: 1
            }
        }
    );
    assert!(p.to_string().contains("dropped"), "{p}");

    let mut l = orig.clone();
    l.insert(7, l[2].clone()); // copy of line 3 inserted as line 8
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 8,
            kind: ProblemKind::Duplicated { of_line: 3 }
        }
    );

    let mut l = orig.clone();
    l.insert(3, l[3].clone()); // line 4 duplicated in place
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 5,
            kind: ProblemKind::Duplicated { of_line: 4 }
        }
    );

    let mut l = orig.clone();
    l.insert(2, l[9].clone()); // copy of line 10 inserted earlier, as line 3
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 3,
            kind: ProblemKind::Duplicated { of_line: 11 }
        }
    );

    let mut l = orig.clone();
    l.insert(5, l[0].clone()); // header copied into the middle
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 6,
            kind: ProblemKind::Duplicated { of_line: 1 }
        }
    );

    let mut l = orig.clone();
    l.swap(5, 8); // lines 6 and 9
    write_lines(&path, &l);
    let p = problem(&path);
    let kind = ProblemKind::Reordered {
        expected_seq: 5,
        found_seq: 8,
    };
    assert_eq!(p, Problem { line: 6, kind });
    assert!(p.to_string().contains("out of order"), "{p}");

    let mut l = orig;
    l.swap(0, 1);
    write_lines(&path, &l);
    assert_eq!(
        problem(&path),
        Problem {
            line: 1,
            kind: ProblemKind::NotHeader
        }
    );
}
