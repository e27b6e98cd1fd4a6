//! Plain-text tables fitted to a width, for `status` and a batch's summary.
//!
//! Owns the layout rule: every column is as wide as its widest cell; when the total is
//! wider than the width asked for, the columns that may shrink give way, in their order of
//! `shrink` (1 first), each down to its `min`; a cut cell ends in `…`. Without a width
//! (output that is not a terminal, and `COLUMNS` unset) nothing is cut. The last column is
//! not padded, so no line ends in spaces.

use std::io::IsTerminal as _;

/// A column: its header, and how it gives way when the table is too wide.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// The header.
    pub name: &'static str,
    /// 0: never cut; otherwise the order in which columns are cut (1 first).
    pub shrink: u8,
    /// The width a cut column keeps at least.
    pub min: usize,
}

impl Col {
    /// A column that is never cut.
    pub const fn fixed(name: &'static str) -> Self {
        Self {
            name,
            shrink: 0,
            min: 0,
        }
    }

    /// A column cut `shrink`-th, down to `min` characters.
    pub const fn cut(name: &'static str, shrink: u8, min: usize) -> Self {
        Self { name, shrink, min }
    }
}

/// The width to fit stdout's tables to: `COLUMNS` when set, else the terminal's when stdout
/// is one, else none (no cutting: pipes and files get every character).
pub fn stdout_width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(c);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// `s` in at most `w` characters, ending in `…` when cut.
pub fn cut(s: &str, w: usize) -> String {
    if len(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// The column widths for `rows` under `width`.
fn widths(cols: &[Col], rows: &[Vec<String>], width: Option<usize>) -> Vec<usize> {
    let mut w: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| len(s))
                .chain([len(c.name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let Some(limit) = width else { return w };
    let gaps = 2 * cols.len().saturating_sub(1);
    let mut order: Vec<usize> = (0..cols.len()).filter(|&i| cols[i].shrink > 0).collect();
    order.sort_by_key(|&i| cols[i].shrink);
    for i in order {
        let total: usize = w.iter().sum::<usize>() + gaps;
        if total <= limit {
            break;
        }
        let floor = cols[i].min.max(1);
        w[i] = w[i].saturating_sub(total - limit).max(floor.min(w[i]));
    }
    w
}

/// The table: a header line, then one line per row, each ending in `\n`. Cells are
/// shown with control characters escaped (`boyong::escape::controls`): an error cell may
/// quote what a vendor sent.
pub fn render(cols: &[Col], rows: &[Vec<String>], width: Option<usize>) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| boyong::escape::controls(c).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let w = widths(cols, rows, width);
    let mut out = String::new();
    let header: Vec<String> = cols.iter().map(|c| c.name.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cw) in w.iter().enumerate() {
            let cell = cut(row.get(i).map_or("", String::as_str), *cw);
            if i + 1 == w.len() {
                line.push_str(&cell);
            } else {
                line.push_str(&cell);
                line.push_str(&" ".repeat(cw - len(&cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "perizinan".into(),
                "failed".into(),
                "step `web`: the new `perizinan` is unhealthy".into(),
            ],
            vec!["sipkd".into(), "succeeded".into(), String::new()],
        ]
    }

    const COLS: [Col; 3] = [
        Col::fixed("APP"),
        Col::cut("RESULT", 2, 6),
        Col::cut("NOTE", 1, 10),
    ];

    #[test]
    fn without_a_width_nothing_is_cut_and_no_line_ends_in_spaces() {
        let t = render(&COLS, &rows(), None);
        assert_eq!(
            t,
            "APP        RESULT     NOTE\n\
             perizinan  failed     step `web`: the new `perizinan` is unhealthy\n\
             sipkd      succeeded\n"
        );
    }

    #[test]
    fn a_narrow_width_cuts_the_first_shrinking_column_first() {
        let t = render(&COLS, &rows(), Some(40));
        for l in t.lines() {
            assert!(l.chars().count() <= 40, "{l:?} is wider than 40");
        }
        assert!(
            t.contains("perizinan  failed     step `web`: the n…\n"),
            "{t}"
        );
        assert!(t.contains("succeeded"), "RESULT kept whole: {t}");
    }

    #[test]
    fn columns_never_go_below_their_minimum() {
        let t = render(&COLS, &rows(), Some(10));
        let first = t.lines().nth(1).unwrap_or_default();
        assert_eq!(first, "perizinan  failed  step `web…", "{t}");
        assert_eq!(t.lines().nth(2), Some("sipkd      succe…"), "{t}");
    }

    #[test]
    fn cut_marks_what_it_cut() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(cut("abc", 0), "");
    }
}
