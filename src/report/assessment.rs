//! The report's "Assessment" section: each `assess` step of the run, its verdict, a table
//! of its requests (vendor → target) and a bar chart of p95 latencies (an inline SVG in
//! HTML, no script; Markdown has the table's figures). Built from the step's journaled
//! facts (an [`Assessment`]); a failed step has only its error, which names each failing
//! request and figure. Present only when the run has an `assess` step.

use std::fmt::Write as _;

use super::Report;
use super::layout::{Block, Cell, Section, Table};
use crate::assess::{Assessment, PathResult, Side};

/// One bar pair of the chart: a request, the vendor's and the target's p95 in ms.
pub(super) type Bars = Vec<(String, f64, f64)>;

/// The section, when the run has an `assess` step.
pub(super) fn section(r: &Report) -> Option<Section> {
    let steps: Vec<_> = r.steps.iter().filter(|s| s.kind == "assess").collect();
    if steps.is_empty() {
        return None;
    }
    let mut blocks = Vec::new();
    for s in steps {
        blocks.push(Block::Sub(vec![Cell::Text(format!("step {}", s.id))]));
        let result = s
            .facts
            .as_ref()
            .and_then(|f| serde_json::from_value::<Assessment>(f.clone()).ok());
        let Some(a) = result else {
            blocks.push(Block::Para(vec![match &s.error {
                Some(e) => Cell::Bad(e.clone()),
                None => Cell::Text(format!("not run ({})", s.outcome)),
            }]));
            continue;
        };
        blocks.push(Block::Para(vec![
            if a.passed {
                Cell::Good(a.verdict())
            } else {
                Cell::Bad(a.verdict())
            },
            Cell::Text(format!(
                ": {} (vendor) against {} (target), {} repeats, {} requests in {:.1} s",
                a.vendor_url, a.target_url, a.repeat, a.requests_sent, a.seconds
            )),
        ]));
        blocks.push(Block::Table(Table {
            head: vec![
                "request",
                "status",
                "size",
                "hash",
                "median ms",
                "p95 ms",
                "max ms",
                "verdict",
            ],
            rows: a.results.iter().map(row).collect(),
        }));
        blocks.push(Block::Chart(
            a.results
                .iter()
                .map(|x| {
                    let p = |s: &Option<Side>| s.as_ref().map_or(0.0, |s| s.p95_ms);
                    (
                        format!("{} {}", x.method, x.path),
                        p(&x.vendor),
                        p(&x.target),
                    )
                })
                .collect(),
        ));
    }
    Some(Section {
        id: "assessment",
        title: "Assessment",
        blocks,
    })
}

fn row(r: &PathResult) -> Vec<Vec<Cell>> {
    let both = |f: &dyn Fn(&Side) -> String| {
        let v = r.vendor.as_ref().map_or("-".into(), f);
        let t = r.target.as_ref().map_or("-".into(), f);
        vec![Cell::Text(if v == t { v } else { format!("{v} → {t}") })]
    };
    vec![
        vec![Cell::Code(format!("{} {}", r.method, r.path))],
        both(&|s| s.status.to_string()),
        both(&|s| s.size.to_string()),
        both(&|s| s.hash.chars().take(8).collect()),
        both(&|s| format!("{:.1}", s.median_ms)),
        both(&|s| format!("{:.1}", s.p95_ms)),
        both(&|s| format!("{:.1}", s.max_ms)),
        vec![if r.failures.is_empty() {
            Cell::Good("ok".into())
        } else {
            Cell::Bad(r.failures.join("; "))
        }],
    ]
}

/// The p95 bars as an inline SVG: per request, the vendor's (grey) over the target's
/// (blue), scaled to the largest; labels escaped.
pub(super) fn svg(bars: &Bars, escape: fn(&str) -> String) -> String {
    const W: f64 = 420.0;
    let max = bars.iter().fold(0.0_f64, |m, (_, v, t)| m.max(*v).max(*t));
    let scale = if max > 0.0 { W / max } else { 0.0 };
    let h = bars.len() * 34 + 20;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{h}\" role=\"img\" aria-label=\"p95 latency per request, vendor and target\">"
    );
    for (i, (label, v, t)) in bars.iter().enumerate() {
        let y = i * 34 + 4;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text><rect x=\"200\" y=\"{y}\" width=\"{:.1}\" height=\"12\" fill=\"#8c959f\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{v:.1} ms</text><rect x=\"200\" y=\"{}\" width=\"{:.1}\" height=\"12\" fill=\"#0969da\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{t:.1} ms</text>",
            y + 16,
            escape(&label.chars().take(32).collect::<String>()),
            v * scale,
            204.0 + v * scale,
            y + 10,
            y + 14,
            t * scale,
            204.0 + t * scale,
            y + 24,
        );
    }
    let _ = write!(
        out,
        "<text x=\"200\" y=\"{}\" font-size=\"10\" fill=\"#57606a\">p95: grey vendor, blue target</text></svg>",
        h - 2
    );
    out
}
