//! The YAML reader: the one place in boyong that uses serde-saphyr.
//!
//! Owns: the parser options and budgets (depth, nodes, aliases, scalar bytes, one
//! document, duplicate keys refused, strict booleans), [`Sp`] (a value with the
//! [`Loc`] it came from), [`Node`] (a generic spanned tree used to check a file's shape
//! and report every structural error at once), and the conversion of the library's
//! errors into [`Diagnostic`]s. Invariant: nothing here panics on any input; every
//! failure becomes a diagnostic with a line and column.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Loc};

/// A value together with where it stands in the playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub loc: Loc,
}

impl<T> Sp<T> {
    /// Wraps a value with a location.
    pub const fn new(value: T, loc: Loc) -> Self {
        Self { value, loc }
    }
}

fn loc_of(l: serde_saphyr::Location) -> Loc {
    let len = u32::try_from(l.span().len()).unwrap_or(u32::MAX);
    Loc {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX),
        col: u32::try_from(l.column()).unwrap_or(u32::MAX),
        len,
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Self {
            value: s.value,
            loc: loc_of(s.referenced),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A mapping key with its location; ordered and compared by its text only.
#[derive(Debug, Clone)]
pub struct Key(pub Sp<String>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.value.cmp(&other.0.value)
    }
}
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Sp::<String>::deserialize(d).map(Key)
    }
}
impl JsonSchema for Key {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "String".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// A generic YAML node with locations, used for the shape check.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string (quoted or plain).
    Str(String),
    /// A sequence.
    Seq(Vec<Sp<Node>>),
    /// A mapping, in the order written.
    Map(Vec<(Sp<Node>, Sp<Node>)>),
}

impl Node {
    /// How the node is named in messages: "a mapping", "a string" ...
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "an empty value (null)",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar key, for messages.
    pub fn key_text(&self) -> String {
        match self {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Bool(b) => b.to_string(),
            Node::Null => "~".into(),
            Node::Seq(_) | Node::Map(_) => "<complex key>".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
                Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
                Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = a.next_element::<Sp<Node>>()? {
                    items.push(x);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = a.next_key::<Sp<Node>>()? {
                    let v = a.next_value::<Sp<Node>>()?;
                    entries.push((k, v));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Nesting levels a playbook may have.
const MAX_DEPTH: usize = 32;
/// Values (scalars, lists, mappings) a playbook may hold, aliases expanded.
const MAX_NODES: usize = 100_000;
/// Parser events a playbook may produce, aliases expanded.
const MAX_EVENTS: usize = 400_000;
/// Aliases (`*name`), anchors (`&name`) and merge keys (`<<`) a playbook may use, each.
const MAX_ALIASES: usize = 1_000;
/// Bytes of all scalars together.
const MAX_SCALAR_BYTES: usize = 2 * 1024 * 1024;

/// The parser options: one document, limits far above any real playbook and far below
/// what would hurt the machine.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: MAX_EVENTS,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ALIASES,
            max_documents: 1,
            max_total_scalar_bytes: MAX_SCALAR_BYTES,
            max_merge_keys: MAX_ALIASES,
        },
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// Parses the text into a spanned generic tree.
pub fn parse_tree(text: &str) -> Result<Sp<Node>, Diagnostic> {
    serde_saphyr::from_str_with_options::<Sp<Node>>(text, options())
        .map_err(|e| unclosed_flow(text, point_at_tab(text, to_diag(text, &e))))
}

/// When the parser stumbles after a `[` or `{` left open on an earlier line, the
/// bracket is the mistake: report it there, with the parser's words as help.
fn unclosed_flow(text: &str, d: Diagnostic) -> Diagnostic {
    let Some(at) = d.loc else { return d };
    let mut open: Vec<(char, u32, u32)> = Vec::new();
    for (li, line) in text.lines().enumerate().take(at.line as usize) {
        let line_no = u32::try_from(li + 1).unwrap_or(u32::MAX);
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (ci, c) in line.chars().enumerate() {
            if line_no == at.line && u32::try_from(ci + 1).unwrap_or(u32::MAX) >= at.col {
                break;
            }
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '"' | '\'' if prev.is_whitespace() || "[{,:".contains(prev) => {
                        quote = Some(c);
                    }
                    '#' if prev.is_whitespace() => break,
                    '[' | '{' => {
                        open.push((c, line_no, u32::try_from(ci + 1).unwrap_or(u32::MAX)));
                    }
                    ']' | '}' => {
                        open.pop();
                    }
                    _ => {}
                }
            }
            prev = c;
        }
    }
    match open.last() {
        Some(&(c, line, col)) if line < at.line => Diagnostic::error(
            Some(Loc { line, col, len: 1 }),
            format!("`{c}` is not closed"),
        )
        .label(format!(
            "opened here; expected a matching `{}`",
            if c == '[' { ']' } else { '}' }
        ))
        .help(format!(
            "the parser then stopped at line {}: {}",
            at.line, d.message
        )),
        _ => d,
    }
}

/// The parser reports a tab in indentation one column after it: point at the tab.
fn point_at_tab(text: &str, mut d: Diagnostic) -> Diagnostic {
    if let Some(loc) = d.loc.as_mut()
        && d.message.contains("tab")
        && loc.col > 1
    {
        let line = text
            .lines()
            .nth(loc.line.saturating_sub(1) as usize)
            .unwrap_or_default();
        if line.chars().nth(loc.col as usize - 2) == Some('\t') {
            loc.col -= 1;
        }
        d = d.help("indent with spaces: YAML does not allow tabs there");
    }
    d
}

/// Parses the text into a typed value.
pub fn parse_typed<T: DeserializeOwned>(text: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|e| to_diag(text, &e))
}

/// Turns a library error into a diagnostic with its location and a plain message.
fn to_diag(text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::MessageFormatter as _;
    let inner = e.without_snippet();
    let message = match breach(inner) {
        Some(b) => over_budget(text, b),
        None => friendly(&serde_saphyr::UserMessageFormatter.format_message(inner)),
    };
    let loc = e.location().map(loc_of).filter(|l| l.line > 0);
    Diagnostic::error(loc, message)
}

/// The budget limit an error reports, if it is one.
fn breach(mut e: &serde_saphyr::Error) -> Option<&serde_saphyr::budget::BudgetBreach> {
    loop {
        match e {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => e = error,
            serde_saphyr::Error::Budget { breach, .. } => return Some(breach),
            _ => return None,
        }
    }
}

/// Which limit the YAML went over, in an operator's words. A file that is large without
/// any alias is not told about aliases.
fn over_budget(text: &str, b: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let far_fewer = "a playbook needs far fewer";
    let expanded = || {
        let aliases = serde_saphyr::budget::check_yaml_budget(
            text,
            serde_saphyr::Budget::default(),
            serde_saphyr::budget::EnforcingPolicy::AllContent,
        )
        .map_or(0, |r| r.aliases);
        if aliases > 0 {
            format!(", counting what its {aliases} aliases (`*name`) expand to")
        } else {
            String::new()
        }
    };
    match b {
        B::Documents { .. } => "a playbook is one YAML document; found a second one (`---`)".into(),
        B::Depth { .. } => {
            format!("the YAML is nested too deeply (more than {MAX_DEPTH} levels); {far_fewer}")
        }
        B::Nodes { .. } => format!(
            "the YAML holds more than {MAX_NODES} values (scalars, lists and mappings){}; {far_fewer}",
            expanded()
        ),
        B::Events { .. } => format!(
            "the YAML is longer than {MAX_EVENTS} parser events{}; {far_fewer}",
            expanded()
        ),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => format!(
            "the YAML uses more than {MAX_ALIASES} aliases (`*name`), or expands them too much; {far_fewer}"
        ),
        B::Anchors { .. } => {
            format!("the YAML defines more than {MAX_ALIASES} anchors (`&name`); {far_fewer}")
        }
        B::MergeKeys { .. } => {
            format!("the YAML uses more than {MAX_ALIASES} merge keys (`<<`); {far_fewer}")
        }
        B::ScalarBytes { .. } => format!(
            "the YAML's text values add up to more than {} MiB; {far_fewer}",
            MAX_SCALAR_BYTES >> 20
        ),
        _ => format!(
            "the YAML exceeds one of boyong's limits on a playbook's size and structure; {far_fewer}"
        ),
    }
}

/// Rewrites the library's wording where an operator would not understand it.
fn friendly(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    if first.contains("breached") || first.contains("recursion limit") {
        if first.contains("Documents") {
            return "a playbook is one YAML document; found a second one (`---`)".into();
        }
        if first.contains("Depth") || first.contains("recursion") || first.contains("Nesting") {
            return "the YAML is nested too deeply (more than 32 levels); a playbook needs far fewer".into();
        }
        if first.contains("Alias")
            || first.contains("Anchor")
            || first.contains("Nodes")
            || first.contains("Events")
        {
            return "the YAML expands to too many values (alias or anchor expansion); a playbook needs far fewer".into();
        }
        return format!("the YAML exceeds boyong's size limits ({first})");
    }
    if first.contains("multiple YAML documents") {
        return "a playbook is one YAML document; found a second one (`---`)".into();
    }
    if first.contains("duplicate mapping key") {
        let key = first
            .split('`')
            .nth(1)
            .or_else(|| first.split(": ").nth(1).and_then(|r| r.split(',').next()))
            .unwrap_or("?");
        return format!("duplicate key `{key}`: each key may appear once in a mapping");
    }
    first.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_has_locations() {
        let t = parse_tree("a: 1\nb:\n  - x\n").unwrap_or_else(|d| panic!("{d:?}"));
        let Node::Map(m) = t.value else {
            panic!("not a map")
        };
        assert_eq!(m[1].0.loc.line, 2);
        let Node::Seq(s) = &m[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!((s[0].loc.line, s[0].loc.col), (3, 5));
    }

    #[test]
    fn pathological_inputs_are_errors_not_panics() {
        for bad in [
            "[".repeat(100_000),
            (0..200).fold(String::new(), |mut s, i| {
                s.push_str(&"  ".repeat(i));
                s.push_str("- \n");
                s
            }),
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n".to_string(),
            "a: 1\na: 2\n".to_string(),
            "a: 1\n---\nb: 2\n".to_string(),
            "a: [1, 2\nb: 3\n".to_string(),
            "\u{0}\u{1}\u{2}garbage: [".to_string(),
        ] {
            let d = parse_tree(&bad).expect_err("must be refused");
            assert!(d.loc.is_some(), "{d:?}");
            assert!(!d.message.is_empty());
        }
    }

    #[test]
    fn duplicate_key_message_names_the_key() {
        let d = parse_tree("app: a\napp: b\n").expect_err("dup");
        assert!(d.message.contains("duplicate key `app`"), "{}", d.message);
        assert_eq!(d.loc.map(|l| l.line), Some(2));
    }
}
