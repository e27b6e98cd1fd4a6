//! What a report page says, in which order, independent of the markup: sections of
//! paragraphs and tables made of typed cells. Markdown and HTML render the same layout,
//! so the two formats never disagree on content.

use super::{Report, time};

/// An inline piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cell {
    /// Plain text.
    Text(String),
    /// Machine text: ids, digests, paths.
    Code(String),
    /// Something wrong an auditor must see.
    Bad(String),
    /// Something checked and right.
    Good(String),
}

/// A table: column heads and rows of cells (a cell may hold several pieces).
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) head: Vec<&'static str>,
    pub(super) rows: Vec<Vec<Vec<Cell>>>,
}

/// A block of a section.
#[derive(Debug, Clone)]
pub(super) enum Block {
    /// A paragraph.
    Para(Vec<Cell>),
    /// A sub-heading.
    Sub(Vec<Cell>),
    /// A table.
    Table(Table),
    /// A bar chart of latencies (HTML: an inline SVG; Markdown: nothing, the table has
    /// the figures).
    Chart(super::assessment::Bars),
}

/// A titled section.
#[derive(Debug, Clone)]
pub(super) struct Section {
    /// Anchor id.
    pub(super) id: &'static str,
    /// Title.
    pub(super) title: &'static str,
    /// Its content.
    pub(super) blocks: Vec<Block>,
}

fn t(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}
fn c(s: impl Into<String>) -> Cell {
    Cell::Code(s.into())
}
fn opt(s: Option<&String>) -> Vec<Cell> {
    s.map_or_else(|| vec![t("-")], |v| vec![c(v.clone())])
}

/// Files listed per tree on the page; the rest are in the JSON and the manifest.
pub(super) const TREE_FILES_SHOWN: usize = 200;

/// The page's sections, in order.
pub(super) fn sections(r: &Report) -> Vec<Section> {
    let mut all = vec![summary(r), steps(r)];
    all.extend(super::assessment::section(r));
    all.extend([artifacts(r), databases(r), target(r)]);
    all.extend(super::kept::section(r));
    all.extend([changes(r), rollback(r), notes(r), journal(r)]);
    all
}

fn digest_check(now: Option<&String>, recorded: &str) -> Vec<Cell> {
    match now {
        Some(n) if n == recorded => vec![c(recorded), t(" "), Cell::Good("(file matches)".into())],
        Some(n) => vec![
            c(recorded),
            t(" "),
            Cell::Bad(format!("the file now has {n}: it was changed")),
        ],
        None => vec![c(recorded), t(" (file missing)")],
    }
}

fn summary(r: &Report) -> Section {
    let w = &r.who;
    let mut rows = vec![
        vec![vec![t("App")], vec![c(&r.app)]],
        vec![vec![t("Run")], vec![c(&r.run)]],
        vec![vec![t("Operator")], vec![c(&w.operator)]],
        vec![vec![t("Run from (machine)")], vec![c(&w.host)]],
        vec![vec![t("Started (UTC)")], vec![t(&w.started)]],
        vec![vec![t("Last record (UTC)")], vec![t(&w.last_record)]],
        vec![
            vec![t("Duration")],
            vec![t(w.duration_s.map_or_else(|| "-".into(), time::human))],
        ],
        vec![vec![t("From: vendor host")], opt(r.route.vendor.as_ref())],
        vec![
            vec![t("Vendor host key checked against")],
            opt(r.route.known_hosts.as_ref()),
        ],
    ];
    let keys = if r.route.host_keys.is_empty() {
        vec![t("not recorded by this run")]
    } else {
        r.route
            .host_keys
            .iter()
            .enumerate()
            .flat_map(|(i, k)| [t(if i == 0 { "" } else { ", " }), c(k.clone())])
            .collect()
    };
    rows.push(vec![vec![t("Vendor host key (as seen)")], keys]);
    rows.push(vec![
        vec![t("To: target engine")],
        opt(r.route.target.as_ref()),
    ]);
    rows.push(vec![
        vec![t("Playbook")],
        vec![t(r.inputs.playbook.clone().unwrap_or_else(|| "-".into()))],
    ]);
    rows.push(vec![
        vec![t("Playbook SHA-256 (journal)")],
        digest_check(
            r.inputs.playbook_file_sha256.as_ref(),
            &r.inputs.playbook_sha256,
        ),
    ]);
    rows.push(vec![
        vec![t("Plan SHA-256 (journal)")],
        digest_check(r.inputs.plan_file_sha256.as_ref(), &r.inputs.plan_sha256),
    ]);
    rows.push(vec![
        vec![t("Journal chain head SHA-256")],
        opt(r.journal.head_sha256.as_ref()),
    ]);
    let verify = if r.verdict.journal_intact {
        Cell::Good(format!("intact ({} lines)", r.journal.lines))
    } else {
        Cell::Bad(format!(
            "BROKEN: {}",
            r.journal.problem.as_deref().unwrap_or("?")
        ))
    };
    rows.push(vec![vec![t("journal verify")], vec![verify]]);
    let mut blocks = vec![Block::Table(Table {
        head: vec!["", ""],
        rows,
    })];
    if !w.later.is_empty() {
        blocks.push(Block::Sub(vec![t("Afterwards")]));
        blocks.extend(w.later.iter().map(|l| Block::Para(vec![t(l)])));
    }
    Section {
        id: "summary",
        title: "Summary",
        blocks,
    }
}

/// A step's duration: the log's milliseconds when it has them (one attempt, under a
/// minute), else the journal's whole seconds, with the last attempt's time after retries.
fn duration(s: &super::StepReport) -> String {
    let journal = s.duration_s.map_or_else(|| "-".into(), time::human);
    let secs = |ms: u64| std::time::Duration::from_millis(ms).as_secs_f64();
    match s.elapsed_ms {
        Some(ms) if s.attempts > 1 => format!("{journal} (last attempt {:.2} s)", secs(ms)),
        Some(ms) if ms < 60_000 => format!("{:.2} s", secs(ms)),
        _ => journal,
    }
}

fn steps(r: &Report) -> Section {
    let rows = r
        .steps
        .iter()
        .map(|s| {
            let outcome = match s.outcome.as_str() {
                "done" => Cell::Good("done".into()),
                "not run" | "undone" => t(&s.outcome),
                other => Cell::Bad(other.to_string()),
            };
            let mut what = vec![t(s.planned.join("; "))];
            if let Some(e) = &s.error {
                what.push(t(" "));
                what.push(Cell::Bad(format!("error: {e}")));
            }
            vec![
                vec![t(if s.number == 0 {
                    "-".into()
                } else {
                    s.number.to_string()
                })],
                vec![c(&s.id)],
                vec![t(&s.kind)],
                vec![outcome],
                vec![t(s.attempts.to_string())],
                vec![t(s.started.clone().unwrap_or_else(|| "-".into()))],
                vec![t(duration(s))],
                what,
            ]
        })
        .collect();
    Section {
        id: "steps",
        title: "Steps",
        blocks: vec![Block::Table(Table {
            head: vec![
                "#", "Step", "Kind", "Outcome", "Attempts", "Started", "Duration", "Changes",
            ],
            rows,
        })],
    }
}

fn artifacts(r: &Report) -> Section {
    let mut blocks = Vec::new();
    if r.artifacts.is_empty() {
        blocks.push(Block::Para(vec![t("This run left no artifacts.")]));
    } else {
        blocks.push(Block::Para(vec![t(
            "SHA-256 computed now from the files in the run directory; \"recorded\" is what the journal (or a dump's manifest) holds. A tree's digest is its manifest's, which lists every file's SHA-256.",
        )]));
        let rows = r
            .artifacts
            .iter()
            .map(|a| {
                let check = match (&a.recorded_sha256, a.matches) {
                    (_, Some(true)) => vec![Cell::Good("matches".into())],
                    (Some(rec), Some(false)) => {
                        vec![Cell::Bad("DIFFERS: recorded ".into()), c(rec)]
                    }
                    _ => vec![t("-")],
                };
                let size = match a.files {
                    Some(n) => format!("{} ({n} files)", a.bytes),
                    None => a.bytes.to_string(),
                };
                vec![
                    vec![c(&a.path)],
                    vec![c(&a.step)],
                    vec![t(&a.kind)],
                    vec![t(size)],
                    vec![c(&a.sha256)],
                    check,
                ]
            })
            .collect();
        blocks.push(Block::Table(Table {
            head: vec!["Path", "Step", "Kind", "Bytes", "SHA-256", "Recorded"],
            rows,
        }));
    }
    for tree in &r.trees {
        blocks.push(Block::Sub(vec![
            t("Files of "),
            c(format!("artifacts/{}/", tree.step)),
            t(format!(
                " ({} files; {} other entries: directories, links)",
                tree.files.len(),
                tree.other_entries
            )),
        ]));
        blocks.push(Block::Para(vec![match &tree.problem {
            None => Cell::Good(
                "every file hashed again now: all match the manifest, nothing added".into(),
            ),
            Some(p) => Cell::Bad(format!("CHANGED SINCE THE PULL: {p}")),
        }]));
        let rows = tree
            .files
            .iter()
            .take(TREE_FILES_SHOWN)
            .map(|f| {
                vec![
                    vec![c(&f.path)],
                    vec![t(f.bytes.to_string())],
                    vec![c(&f.sha256)],
                ]
            })
            .collect();
        blocks.push(Block::Table(Table {
            head: vec!["Path", "Bytes", "SHA-256"],
            rows,
        }));
        if tree.files.len() > TREE_FILES_SHOWN {
            blocks.push(Block::Para(vec![
                t(format!(
                    "… and {} more: all are in the JSON report and in ",
                    tree.files.len() - TREE_FILES_SHOWN
                )),
                c(format!("artifacts/{}.manifest", tree.step)),
            ]));
        }
    }
    Section {
        id: "artifacts",
        title: "Artifacts",
        blocks,
    }
}

fn databases(r: &Report) -> Section {
    let mut blocks = Vec::new();
    if r.databases.is_empty() {
        blocks.push(Block::Para(vec![t("No database was moved by this run.")]));
    }
    for d in &r.databases {
        let mut head = vec![
            c(&d.step),
            t(if d.role == "dumped" {
                ": dumped on the vendor host"
            } else {
                ": restored on the target"
            }),
        ];
        if let Some(ct) = &d.container {
            head.extend([t(" into "), c(ct)]);
        }
        head.push(t(format!(
            ", {}, {} tables, {} rows",
            d.server.as_deref().unwrap_or("server unknown"),
            d.tables.len(),
            d.rows
        )));
        blocks.push(Block::Sub(head));
        match (d.checksums_compared, &d.sql_sha256) {
            (Some(true), _) => blocks.push(Block::Para(vec![Cell::Good(
                "rows and checksums equal to the dump's".into(),
            )])),
            (Some(false), _) => blocks.push(Block::Para(vec![t(
                "row counts equal to the dump's; checksums not compared (different server versions)",
            )])),
            (None, Some(sql)) => {
                blocks.push(Block::Para(vec![t("SHA-256 of the SQL: "), c(sql)]));
            }
            (None, None) => {}
        }
        blocks.push(Block::Table(Table {
            head: vec!["Table", "Rows", "Checksum"],
            rows: d
                .tables
                .iter()
                .map(|tb| {
                    vec![
                        vec![c(&tb.table)],
                        vec![t(tb.rows.to_string())],
                        vec![c(&tb.checksum)],
                    ]
                })
                .collect(),
        }));
    }
    Section {
        id: "databases",
        title: "Databases",
        blocks,
    }
}

/// A mark after a heading whose step a rollback undid.
fn undone(outcome: &str) -> Cell {
    if outcome == "undone" {
        Cell::Bad("(undone by a rollback)".into())
    } else {
        t("")
    }
}

fn target(r: &Report) -> Section {
    let mut blocks = Vec::new();
    for i in &r.images {
        blocks.push(Block::Sub(vec![
            t("Image "),
            c(&i.tag),
            t(" (step "),
            c(&i.step),
            t(") "),
            undone(&i.outcome),
        ]));
        let mut rows = vec![
            vec![vec![t("Image id")], opt(i.image_id.as_ref())],
            vec![vec![t("Source SHA-256")], opt(i.source_sha256.as_ref())],
            vec![
                vec![t("Build context SHA-256")],
                opt(i.context_sha256.as_ref()),
            ],
        ];
        rows.extend(
            i.labels
                .iter()
                .map(|(k, v)| vec![vec![t("label "), c(k)], vec![c(v)]]),
        );
        blocks.push(Block::Table(Table {
            head: vec!["", ""],
            rows,
        }));
    }
    for ct in &r.containers {
        blocks.push(Block::Sub(vec![
            t("Container "),
            c(&ct.name),
            t(" (step "),
            c(&ct.step),
            t(") "),
            undone(&ct.outcome),
        ]));
        let mut rows = vec![
            vec![vec![t("Container id")], opt(ct.container_id.as_ref())],
            vec![vec![t("Image")], opt(ct.image.as_ref())],
            vec![vec![t("Image id")], opt(ct.image_id.as_ref())],
            vec![vec![t("Replaced")], opt(ct.previous.as_ref())],
            vec![
                vec![t("Health")],
                vec![ct.health.clone().map_or_else(|| t("-"), Cell::Good)],
            ],
        ];
        if let Some(route) = &ct.route {
            rows.push(vec![vec![t("Route")], vec![c(route)]]);
        }
        if ct.settings.is_empty() {
            rows.push(vec![
                vec![t("Settings as applied")],
                vec![t("not recorded by this run")],
            ]);
        }
        rows.extend(
            ct.settings
                .iter()
                .map(|(k, v)| vec![vec![t("applied: "), c(k)], vec![c(v)]]),
        );
        blocks.push(Block::Table(Table {
            head: vec!["", ""],
            rows,
        }));
    }
    if blocks.is_empty() {
        blocks.push(Block::Para(vec![t(
            "No image or container was made by this run.",
        )]));
    }
    Section {
        id: "target",
        title: "Images and containers",
        blocks,
    }
}

fn changes(r: &Report) -> Section {
    let rows = r
        .changes
        .iter()
        .map(|ch| {
            let mut what = vec![t(&ch.summary)];
            what.extend(ch.details.iter().map(|d| t(format!("; {d}"))));
            let state = if ch.state.starts_with("undo failed") || ch.state.starts_with("intended") {
                Cell::Bad(ch.state.clone())
            } else {
                t(&ch.state)
            };
            vec![
                vec![c(&ch.change_id)],
                vec![c(&ch.step)],
                what,
                vec![state],
                vec![t(&ch.at)],
                vec![t(ch.undo.clone().unwrap_or_default())],
            ]
        })
        .collect();
    Section {
        id: "changes",
        title: "Changes (journaled before each was made)",
        blocks: vec![Block::Table(Table {
            head: vec!["Change", "Step", "What", "State", "Intent at", "Undo"],
            rows,
        })],
    }
}

fn rollback(r: &Report) -> Section {
    let blocks = if r.rollback.is_empty() {
        vec![Block::Para(vec![t("Nothing of this run was undone.")])]
    } else {
        vec![Block::Table(Table {
            head: vec!["At", "Event", "Change", "Step", "Detail"],
            rows: r
                .rollback
                .iter()
                .map(|x| {
                    let ev = if x.event == "undo-failed" {
                        Cell::Bad(x.event.clone())
                    } else {
                        t(&x.event)
                    };
                    vec![
                        vec![t(&x.at)],
                        vec![ev],
                        opt(x.change_id.as_ref()),
                        opt(x.step.as_ref()),
                        vec![t(&x.text)],
                    ]
                })
                .collect(),
        })]
    };
    Section {
        id: "rollback",
        title: "Rollback history",
        blocks,
    }
}

fn notes(r: &Report) -> Section {
    let blocks = if r.notes.is_empty() {
        vec![Block::Para(vec![t("No notes.")])]
    } else {
        vec![Block::Table(Table {
            head: vec!["At", "Kind", "Note"],
            rows: r
                .notes
                .iter()
                .map(|n| vec![vec![t(&n.at)], vec![c(&n.kind)], vec![t(&n.text)]])
                .collect(),
        })]
    };
    Section {
        id: "notes",
        title: "Journal notes",
        blocks,
    }
}

fn journal(r: &Report) -> Section {
    let j = &r.journal;
    let verify = if r.verdict.journal_intact {
        Cell::Good("intact".into())
    } else {
        Cell::Bad("BROKEN".into())
    };
    let mut rows = vec![
        vec![vec![t("File")], vec![c(&j.path)]],
        vec![vec![t("Complete lines")], vec![t(j.lines.to_string())]],
        vec![vec![t("Chain head SHA-256")], opt(j.head_sha256.as_ref())],
        vec![vec![t("File SHA-256")], vec![c(&j.file_sha256)]],
        vec![vec![t("journal verify")], vec![verify]],
    ];
    if let Some(p) = &j.problem {
        let cell = if r.verdict.journal_intact {
            t(p)
        } else {
            Cell::Bad(p.clone())
        };
        rows.push(vec![vec![t("First problem")], vec![cell]]);
    }
    Section {
        id: "journal",
        title: "Journal",
        blocks: vec![
            Block::Table(Table {
                head: vec!["", ""],
                rows,
            }),
            Block::Para(vec![
                t("Check it again by hand: "),
                c(format!("boyong journal verify {} --run {}", r.app, r.run)),
            ]),
        ],
    }
}
