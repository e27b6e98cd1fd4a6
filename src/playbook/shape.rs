//! The shape check: a spanned YAML tree against the playbook's JSON Schema.
//!
//! Owns: reporting EVERY structural error of a file at once (unknown field with "did you
//! mean", missing field, wrong type, value not in a list, a step with zero or two kinds),
//! each at its line and column. The schema is the one generated from `raw.rs`, so what
//! editors are told and what boyong enforces cannot drift apart. It understands the
//! subset of JSON Schema that schemars emits for those types: `$ref`, `type` (one or a
//! list), `properties`, `required`, `additionalProperties`, `items`, `enum`, `anyOf`,
//! `oneOf` (of alternatives, or of `required: [key]` for "exactly one of these keys"),
//! `minimum` and `maximum`.

use serde_json::Value;

use super::yaml::{Node, Sp};
use crate::diag::{Diagnostic, suggest};

/// Checks `root` against `schema`; returns every problem found.
pub fn check(schema: &Value, root: &Sp<Node>) -> Vec<Diagnostic> {
    let mut w = Walker {
        root: schema,
        out: Vec::new(),
    };
    w.walk(schema, root, &Path::default());
    w.out
}

#[derive(Clone, Default)]
struct Path(Vec<String>);

impl Path {
    fn push(&self, seg: impl Into<String>) -> Self {
        let mut p = self.0.clone();
        p.push(seg.into());
        Self(p)
    }
    fn describe(&self) -> String {
        if self.0.is_empty() {
            "the playbook".into()
        } else {
            format!("`{}`", self.0.join("."))
        }
    }
}

struct Walker<'a> {
    root: &'a Value,
    out: Vec<Diagnostic>,
}

fn types_of(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn node_fits(t: &str, n: &Node) -> bool {
    match t {
        "object" => matches!(n, Node::Map(_)),
        "array" => matches!(n, Node::Seq(_)),
        "string" => matches!(
            n,
            Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_)
        ),
        "integer" => matches!(n, Node::Int(_)),
        "number" => matches!(n, Node::Int(_) | Node::Float(_)),
        "boolean" => matches!(n, Node::Bool(_)),
        "null" => matches!(n, Node::Null),
        _ => true,
    }
}

fn type_words(t: &str) -> &'static str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "nothing",
        _ => "a value",
    }
}

/// `oneOf: [{required: [a]}, {required: [b]} ...]`: exactly one of these keys.
fn exactly_one_keys(s: &Value) -> Option<Vec<&str>> {
    let alts = s.get("oneOf")?.as_array()?;
    alts.iter()
        .map(|a| {
            let obj = a.as_object()?;
            if obj.len() != 1 {
                return None;
            }
            match obj.get("required")?.as_array()?.as_slice() {
                [Value::String(k)] => Some(k.as_str()),
                _ => None,
            }
        })
        .collect()
}

impl<'a> Walker<'a> {
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                return s;
            };
            let Some(name) = r.strip_prefix("#/$defs/") else {
                return s;
            };
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(t) => s = t,
                None => return s,
            }
        }
        s
    }

    fn alternatives(&self, s: &'a Value) -> Option<Vec<&'a Value>> {
        if exactly_one_keys(s).is_some() {
            return s
                .get("anyOf")
                .and_then(Value::as_array)
                .map(|v| v.iter().map(|a| self.resolve(a)).collect());
        }
        s.get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Value::as_array)
            .map(|v| v.iter().map(|a| self.resolve(a)).collect())
    }

    fn describe_alt(&self, s: &Value) -> String {
        let s = self.resolve(s);
        if let Some(Value::Array(req)) = s.get("required")
            && let [Value::String(k)] = req.as_slice()
            && types_of(s) == ["object"]
        {
            return format!("`{{ {k}: ... }}`");
        }
        if let Some(Value::Array(vals)) = s.get("enum") {
            let words: Vec<String> = vals
                .iter()
                .filter_map(Value::as_str)
                .map(|v| format!("`{v}`"))
                .collect();
            return words.join(" or ");
        }
        types_of(s)
            .iter()
            .map(|t| type_words(t))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    fn walk(&mut self, s: &'a Value, node: &Sp<Node>, path: &Path) {
        let s = self.resolve(s);
        if let Some(alts) = self.alternatives(s) {
            self.walk_alternatives(&alts, node, path);
            return;
        }
        let types = types_of(s);
        if matches!(node.value, Node::Null) && types.contains(&"null") {
            return;
        }
        if !types.is_empty() && !types.iter().any(|t| node_fits(t, &node.value)) {
            let expected: Vec<&str> = types
                .iter()
                .filter(|t| **t != "null")
                .map(|t| type_words(t))
                .collect();
            let mut d = Diagnostic::error(
                Some(node.loc),
                format!(
                    "{} should be {}, found {}",
                    path.describe(),
                    expected.join(" or "),
                    node.value.kind()
                ),
            )
            .label(format!("expected {}", expected.join(" or ")));
            if matches!(node.value, Node::Null) && types.contains(&"string") {
                d = d.help("an empty value is null in YAML; write \"\" for an empty string");
            }
            self.out.push(d);
            return;
        }
        if let Some(Value::Array(allowed)) = s.get("enum") {
            self.check_enum(allowed, node, path);
            return;
        }
        match &node.value {
            Node::Map(entries) => self.walk_object(s, node, entries, path),
            Node::Seq(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        let seg = match path.0.last().map(String::as_str) {
                            Some("steps") if path.0.len() == 1 => step_label(i, item),
                            _ => format!("{i}"),
                        };
                        let p = if path.0.len() == 1 && path.0[0] == "steps" {
                            Path(vec![seg])
                        } else {
                            path.push(seg)
                        };
                        self.walk(item_schema, item, &p);
                    }
                }
            }
            Node::Int(n) => self.check_range(s, *n, node, path),
            _ => {}
        }
    }

    fn check_enum(&mut self, allowed: &[Value], node: &Sp<Node>, path: &Path) {
        let words: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        let text = node.value.key_text();
        if !words.contains(&text.as_str()) {
            self.out.push(
                Diagnostic::error(
                    Some(node.loc),
                    format!("{} cannot be `{text}`", path.describe()),
                )
                .label(format!("expected one of: {}", words.join(", ")))
                .did_you_mean(&text, words.iter().copied()),
            );
        }
    }

    fn check_range(&mut self, s: &Value, n: i128, node: &Sp<Node>, path: &Path) {
        let min = s.get("minimum").and_then(Value::as_f64);
        let max = s.get("maximum").and_then(Value::as_f64);
        #[expect(clippy::cast_precision_loss, reason = "bounds of small integers")]
        let v = n as f64;
        if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
            self.out.push(
                Diagnostic::error(
                    Some(node.loc),
                    format!("{} is out of range", path.describe()),
                )
                .label(format!(
                    "expected a whole number from {} to {}",
                    min.unwrap_or(0.0),
                    max.map_or_else(|| "any".into(), |m| m.to_string())
                )),
            );
        }
    }

    fn walk_alternatives(&mut self, alts: &[&'a Value], node: &Sp<Node>, path: &Path) {
        let is_null_alt = |a: &Value| types_of(a) == ["null"];
        if matches!(node.value, Node::Null) && alts.iter().any(|a| is_null_alt(a)) {
            return;
        }
        let real: Vec<&'a Value> = alts.iter().copied().filter(|a| !is_null_alt(a)).collect();
        if let [only] = real.as_slice() {
            self.walk(only, node, path);
            return;
        }
        let mut fitting = Vec::new();
        for alt in &real {
            let mut sub = Walker {
                root: self.root,
                out: Vec::new(),
            };
            sub.walk(alt, node, path);
            if sub.out.is_empty() {
                return;
            }
            let types = types_of(alt);
            if types.is_empty() || types.iter().any(|t| node_fits(t, &node.value)) {
                fitting.push(sub.out);
            }
        }
        if fitting.len() == 1 {
            self.out.append(&mut fitting[0]);
            return;
        }
        let expected: Vec<String> = real.iter().map(|a| self.describe_alt(a)).collect();
        self.out.push(
            Diagnostic::error(
                Some(node.loc),
                format!(
                    "{} has the wrong form: found {}",
                    path.describe(),
                    node.value.kind()
                ),
            )
            .label(format!("expected {}", expected.join(", or "))),
        );
    }

    fn walk_object(
        &mut self,
        s: &'a Value,
        node: &Sp<Node>,
        entries: &[(Sp<Node>, Sp<Node>)],
        path: &Path,
    ) {
        let props = s.get("properties").and_then(Value::as_object);
        let extra = s.get("additionalProperties");
        let known: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        // Fields that an unknown key is probably a typo of: no "missing" error for them.
        let mut meant: Vec<&str> = Vec::new();
        for (k, v) in entries {
            let Node::Str(key) = &k.value else {
                self.out.push(Diagnostic::error(
                    Some(k.loc),
                    format!(
                        "keys in {} must be text, found {}",
                        path.describe(),
                        k.value.kind()
                    ),
                ));
                continue;
            };
            if let Some(ps) = props.and_then(|p| p.get(key)) {
                self.walk(ps, v, &path.push(key.clone()));
            } else {
                match extra {
                    Some(Value::Bool(false)) => {
                        if let Some(m) = suggest(key, known.iter().copied()) {
                            meant.push(m);
                        }
                        let mut d = Diagnostic::error(
                            Some(k.loc),
                            format!("unknown field `{key}` in {}", path.describe()),
                        )
                        .label(format!("expected one of: {}", known.join(", ")))
                        .did_you_mean(key, known.iter().copied());
                        if key == "kind" || key == "type" {
                            d = d.help("a step's kind is its key, e.g. `fetch: { path: ... }`");
                        }
                        self.out.push(d);
                    }
                    Some(extra_schema @ Value::Object(_)) => {
                        self.walk(extra_schema, v, &path.push(key.clone()));
                    }
                    _ => {}
                }
            }
        }
        let present: Vec<&str> = entries
            .iter()
            .filter_map(|(k, _)| match &k.value {
                Node::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !present.contains(&r) && !meant.contains(&r) {
                    self.out.push(
                        Diagnostic::error(
                            Some(node.loc),
                            format!("missing field `{r}` in {}", path.describe()),
                        )
                        .label(format!("add `{r}:` here")),
                    );
                }
            }
        }
        if let Some(keys) = exactly_one_keys(s) {
            let found: Vec<&(Sp<Node>, Sp<Node>)> = entries
                .iter()
                .filter(|(k, _)| matches!(&k.value, Node::Str(s) if keys.contains(&s.as_str())))
                .collect();
            match found.as_slice() {
                [_] => {}
                [] if keys.iter().any(|k| meant.contains(k)) => {}
                [] => {
                    let guess = present
                        .iter()
                        .find_map(|p| suggest(p, keys.iter().copied()).map(|_| *p));
                    let mut d = Diagnostic::error(
                        Some(node.loc),
                        format!(
                            "{} says what to do with none of: {}",
                            path.describe(),
                            keys.join(", ")
                        ),
                    )
                    .label(format!("add exactly one of: {}", keys.join(", ")));
                    if let Some(g) = guess {
                        d = d.help(format!("`{g}` is not one of them"));
                    }
                    self.out.push(d);
                }
                [first, rest @ ..] => {
                    for (k, _) in rest {
                        self.out.push(
                            Diagnostic::error(
                                Some(k.loc),
                                format!(
                                    "{} has both `{}` and `{}`: exactly one is allowed",
                                    path.describe(),
                                    first.0.value.key_text(),
                                    k.value.key_text()
                                ),
                            )
                            .label("second one here")
                            .help(
                                "split it into two steps (each step does one thing), or remove one",
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn step_label(i: usize, item: &Sp<Node>) -> String {
    if let Node::Map(entries) = &item.value {
        for (k, v) in entries {
            if let (Node::Str(k), Node::Str(id)) = (&k.value, &v.value)
                && k == "id"
                && !id.is_empty()
                && id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return format!("steps.{id}");
            }
        }
    }
    format!("steps[{i}]")
}
