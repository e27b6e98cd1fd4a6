//! The `# TODO` markers of a playbook (a draft's open questions), for `boyong validate`.

/// Each `# TODO` comment of `text`: its line (1-based), column, and what follows `TODO`.
pub fn todos(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // a comment: `#` at the start or after a space (not inside a quoted value such as "#x")
        let mut from = 0;
        while let Some(p) = line[from..].find("# TODO") {
            let at = from + p;
            let comment = at == 0 || line[..at].ends_with(' ') || line[..at].trim().is_empty();
            if comment && !in_quotes(&line[..at]) {
                let what = line[at + "# TODO".len()..].trim_start_matches(':').trim();
                out.push((i + 1, line[..at].chars().count() + 1, what.to_string()));
                break;
            }
            from = at + 1;
        }
    }
    out
}

/// Whether `prefix` leaves a quoted string open.
fn in_quotes(prefix: &str) -> bool {
    let (mut single, mut double) = (false, false);
    for c in prefix.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

#[cfg(test)]
mod tests {
    use super::todos;

    #[test]
    fn finds_comments_not_values() {
        let t = "a: 1\n  # TODO: the port\nb: \"x # TODO not this\"\nc: 2  # TODO: that\n";
        assert_eq!(
            todos(t),
            vec![(2, 3, "the port".to_string()), (4, 7, "that".to_string())]
        );
    }
}
