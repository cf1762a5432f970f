//! Maps config keys to `line:column` so every error points into the file.
//!
//! The typed config carries no spans (that would leak `Spanned<T>` into every stage); instead the
//! text is parsed a second time into toml's spanned document and errors are located by key path.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An index into an array (of tables).
    Index(usize),
}

/// A dotted path to a config value, e.g. `device[2].parent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The path extended by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        Self(v)
    }

    /// The path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// The spanned view of one config text.
pub struct SourceMap<'i> {
    text: &'i str,
    doc: Option<DeTable<'i>>,
}

impl<'i> SourceMap<'i> {
    /// Parses `text`; a text that does not parse yields a map that only converts offsets.
    pub fn new(text: &'i str) -> Self {
        let doc = DeTable::parse(text).ok().map(|t| t.into_inner());
        Self { text, doc }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Where `path` is: the value's span if present, else the deepest present ancestor's.
    pub fn locate(&self, path: &KeyPath) -> (usize, usize) {
        let Some(doc) = &self.doc else { return (1, 1) };
        let mut best = 0..0;
        let mut table = Some(doc);
        let mut array: Option<&[toml::Spanned<DeValue<'i>>]> = None;
        for seg in &path.0 {
            let next = match (seg, table, array) {
                (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
                (Seg::Index(i), _, Some(a)) => a.get(*i),
                _ => None,
            };
            let Some(value) = next else { break };
            best = value.span();
            table = None;
            array = None;
            match value.get_ref() {
                DeValue::Table(t) => table = Some(t),
                DeValue::Array(a) => array = Some(a),
                _ => {}
            }
        }
        self.line_col(best.start)
    }

    /// The key a parse error at `span` is about: the last key (or array element) that starts at
    /// or before the error. Table headers span only the header, not their body, so "covers" would
    /// miss keys under `[section]`; "last one starting before" does not.
    pub fn key_at(&self, span: &Range<usize>) -> KeyPath {
        let mut best = (0, KeyPath::default());
        if let Some(doc) = &self.doc {
            Self::walk_table(doc, &KeyPath::default(), span.start, &mut best);
        }
        best.1
    }

    fn walk_table(t: &DeTable<'i>, at: &KeyPath, offset: usize, best: &mut (usize, KeyPath)) {
        for (k, v) in t.iter() {
            let path = at.key(k.get_ref());
            if k.span().start <= offset && k.span().start >= best.0 {
                *best = (k.span().start, path.clone());
            }
            Self::walk_value(v, &path, offset, best);
        }
    }

    fn walk_value(
        v: &toml::Spanned<DeValue<'i>>,
        at: &KeyPath,
        offset: usize,
        best: &mut (usize, KeyPath),
    ) {
        match v.get_ref() {
            DeValue::Table(t) => Self::walk_table(t, at, offset, best),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    let path = at.index(i);
                    if e.span().start <= offset && e.span().start >= best.0 {
                        *best = (e.span().start, path.clone());
                    }
                    Self::walk_value(e, &path, offset, best);
                }
            }
            _ => {}
        }
    }
}
