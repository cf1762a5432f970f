//! The floors of the design page, checked: every `crate::`, `super::` and `self::` path in
//! `src/` (use statements and inline paths, test modules included) must point at the file's own
//! module or a floor below it; a pure core must not reach an edge or the wiring; one ingest
//! source must not reach into another. A broken rule fails with file, line and the rule.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The floor of each top-level module (1 ground … 5 wiring; the face, `main.rs` and `cli.rs`,
/// is the binary and reaches the library as `noctua::`, so it is not checked here).
const FLOORS: [(&str, u8); 17] = [
    ("model", 1),
    ("telemetry", 1),
    ("message", 1),
    ("config", 2),
    ("detect", 3),
    ("alarm", 3),
    ("fault", 3),
    ("impact", 3),
    ("action", 3),
    ("forecast", 3),
    ("cluster", 3),
    ("store", 4),
    ("ingest", 4),
    ("northbound", 4),
    ("fleet", 4),
    ("pipeline", 5),
    ("daemon", 5),
];

/// Imports between two modules of one floor that the picture allows: the ground's metrics and
/// messages speak the model's words; sources and northbound read and write through the store
/// (NetFlow keeps its templates, the API reads history, MQTT reads the outbox); the cluster's
/// edge reads the journal it replicates and hands forwarded samples to the ingest sink; the
/// daemon starts the pipeline.
const SAME_FLOOR: [(&str, &str); 7] = [
    ("telemetry", "model"),
    ("message", "model"),
    ("ingest", "store"),
    ("northbound", "store"),
    ("fleet", "store"),
    ("fleet", "ingest"),
    ("daemon", "pipeline"),
];

/// Rooms of `ingest/` every source may use: the shared sink (items of `ingest` itself), the
/// SNMPv3 security shared by the poller and the trap receiver, and the UDP socket options.
const SHARED_INGEST: [&str; 2] = ["usm", "socket"];

const PURE_CORES: [&str; 7] = [
    "detect", "alarm", "fault", "impact", "action", "forecast", "cluster",
];
const EDGES_AND_WIRING: [&str; 6] = [
    "store",
    "ingest",
    "northbound",
    "fleet",
    "pipeline",
    "daemon",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.rule)
    }
}

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `ingest/netflow/mod.rs` is `[ingest, netflow]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The text with comments, strings and char literals blanked (newlines kept, so byte offsets
/// still give line numbers).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' if matches!(b.get(i + 1), Some(b'#') | Some(b'"'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let start = i + 2 + hashes;
                let end = text[start..]
                    .find(&close)
                    .map_or(b.len(), |n| start + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1f}', '\''), not a lifetime.
                let rest = &text[i + 1..];
                let len = if rest.starts_with("\\u{") {
                    rest.find('}').map(|n| n + 1)
                } else if rest.starts_with('\\') {
                    Some(2)
                } else {
                    rest.chars().next().map(char::len_utf8)
                };
                match len {
                    Some(n) if rest.as_bytes().get(n) == Some(&b'\'') => {
                        blank(&mut out, i, i + n + 2);
                        i += n + 2;
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Expands a use tree (`crate::{a::B, c::{self, D}}`) into its paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    fn parse(tokens: &[String], pos: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            match tokens.get(*pos).map(String::as_str) {
                Some("{") => {
                    *pos += 1;
                    loop {
                        parse(tokens, pos, path.clone(), out);
                        match tokens.get(*pos).map(String::as_str) {
                            Some(",") => {
                                *pos += 1;
                                if tokens.get(*pos).map(String::as_str) == Some("}") {
                                    *pos += 1;
                                    return;
                                }
                            }
                            Some("}") => {
                                *pos += 1;
                                return;
                            }
                            _ => return,
                        }
                    }
                }
                Some("::") => *pos += 1,
                Some("as") => *pos += 2,
                Some(",") | Some("}") | None => {
                    out.push(path);
                    return;
                }
                Some(t) => {
                    if t != "self" || path.is_empty() {
                        path.push(t.to_owned());
                    }
                    *pos += 1;
                }
            }
        }
    }
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = tree.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' || c == '*' {
            word.push(c);
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if c == ':' && chars.get(i + 1) == Some(&':') {
                tokens.push("::".to_owned());
                i += 1;
            } else if matches!(c, '{' | '}' | ',') {
                tokens.push(c.to_string());
            }
        }
        i += 1;
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    parse(&tokens, &mut pos, Vec::new(), &mut out);
    out
}

/// Every path the code names, with the byte offset where it starts.
fn paths_in(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':');
        if boundary && code[i..].starts_with("use ") {
            let end = code[i..].find(';').map_or(code.len(), |n| i + n);
            for p in expand(&code[i + 4..end]) {
                out.push((i, p));
            }
            i = end;
            continue;
        }
        let root = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|r| boundary && code[i..].starts_with(r));
        if let Some(root) = root {
            let mut j = i + root.len();
            let mut path = vec![root.trim_end_matches("::").to_owned()];
            loop {
                let start = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                if j == start {
                    break;
                }
                path.push(code[start..j].to_owned());
                if code[j..].starts_with("::")
                    && code[j + 2..].starts_with(|c: char| c.is_alphabetic() || c == '_')
                {
                    j += 2;
                } else {
                    break;
                }
            }
            out.push((i, path));
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Resolves a path against the module it is written in; `None` for paths outside the crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut at: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                at.pop();
                rest = &rest[1..];
            }
        }
        Some("self") => rest = &rest[1..],
        _ => return None,
    }
    at.extend(rest.iter().cloned());
    Some(at)
}

fn check_file(rel: &Path, text: &str, ingest_rooms: &BTreeSet<String>) -> Vec<Violation> {
    let module = module_of(rel);
    let Some(from) = module.first().cloned() else {
        return Vec::new();
    };
    let Some(from_floor) = floor(&from) else {
        return Vec::new();
    };
    let code = code_only(text);
    let mut out = Vec::new();
    for (offset, path) in paths_in(&code) {
        let Some(target) = resolve(&module, &path) else {
            continue;
        };
        let Some(to) = target.first().cloned() else {
            continue;
        };
        let line = code[..offset].matches('\n').count() + 1;
        let mut broken = |rule: String| {
            out.push(Violation {
                file: rel.display().to_string(),
                line,
                rule,
            })
        };
        let named = target.join("::");
        if to == from {
            // Sources: a room of ingest/ reaches only its own room, the shared rooms, and
            // `ingest` itself.
            if from == "ingest"
                && let (Some(own), Some(other)) = (module.get(1), target.get(1))
                && own != other
                && ingest_rooms.contains(other)
                && !SHARED_INGEST.contains(&other.as_str())
            {
                broken(format!(
                    "the source `ingest::{own}` imports another source's internals: `{named}`"
                ));
            }
            continue;
        }
        let Some(to_floor) = floor(&to) else {
            continue;
        };
        if PURE_CORES.contains(&from.as_str()) && EDGES_AND_WIRING.contains(&to.as_str()) {
            broken(format!(
                "the pure core `{from}` imports `{named}` (an edge or the wiring)"
            ));
        } else if to_floor > from_floor {
            broken(format!(
                "`{from}` (floor {from_floor}) imports `{named}` from a higher floor ({to_floor})"
            ));
        } else if to_floor == from_floor && !SAME_FLOOR.contains(&(from.as_str(), to.as_str())) {
            broken(format!(
                "`{from}` imports `{named}` from another room of its own floor ({to_floor})"
            ));
        }
    }
    out
}

/// Every broken rule under `src`.
fn check(src: &Path) -> Vec<Violation> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let ingest_rooms: BTreeSet<String> = std::fs::read_dir(src.join("ingest"))
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                let name = name.trim_end_matches(".rs").to_owned();
                (name != "mod").then_some(name)
            })
            .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        out.extend(check_file(rel, &text, &ingest_rooms));
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn src_follows_the_floors() {
    let broken = check(&src());
    let listing: Vec<String> = broken.iter().map(ToString::to_string).collect();
    assert!(
        broken.is_empty(),
        "layering broken:\n{}",
        listing.join("\n")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Appends `line` to `file` in the copy; returns its line number.
fn add_line(src: &Path, file: &str, line: &str) -> usize {
    let path = src.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    std::fs::write(&path, &text).unwrap();
    text.lines().count()
}

#[test]
fn deliberately_bad_imports_in_a_copy_are_caught_with_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("src");
    copy_dir(&src(), &copy);
    let cases = [
        (
            "detect/mod.rs",
            "use crate::store::Store;",
            "the pure core `detect` imports `store::Store` (an edge or the wiring)",
        ),
        (
            "model/mod.rs",
            "use crate::pipeline::Pipeline;",
            "`model` (floor 1) imports `pipeline::Pipeline` from a higher floor (5)",
        ),
        (
            "config/mod.rs",
            "fn f() { let _ = crate::detect::Detector::new; }",
            "`config` (floor 2) imports `detect::Detector::new` from a higher floor (3)",
        ),
        (
            "alarm/flap.rs",
            "use super::super::fault::report;",
            "`alarm` imports `fault::report` from another room of its own floor (3)",
        ),
        (
            "ingest/netflow/aggregate.rs",
            "use crate::ingest::snmp::{counters::Counters, Poller};",
            "the source `ingest::netflow` imports another source's internals: `ingest::snmp::counters::Counters`",
        ),
        (
            "telemetry.rs",
            "use crate::message::Ingest;",
            "`telemetry` imports `message::Ingest` from another room of its own floor (1)",
        ),
    ];
    let mut expected = Vec::new();
    for (file, line, rule) in cases {
        let n = add_line(&copy, file, line);
        expected.push(format!("{file}:{n}: {rule}"));
    }
    // Comments and strings are not imports.
    add_line(&copy, "model/mod.rs", "// use crate::store::Store;");
    add_line(
        &copy,
        "model/mod.rs",
        "const _S: &str = \"crate::pipeline::Pipeline\";",
    );
    let found: Vec<String> = check(&copy).iter().map(ToString::to_string).collect();
    for e in &expected {
        assert!(
            found.contains(e),
            "not reported: {e}\nreported:\n{}",
            found.join("\n")
        );
    }
    // The grouped import names both paths; nothing else is reported.
    assert_eq!(found.len(), expected.len() + 1, "{}", found.join("\n"));
}

#[test]
fn use_trees_expand_into_paths() {
    let paths = expand(" crate::{a::B, c::{self, D as E}, f::*}");
    let text: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        text,
        ["crate::a::B", "crate::c", "crate::c::D", "crate::f::*"]
    );
    let module = ["ingest".to_owned(), "trap".to_owned(), "engine".to_owned()];
    let up = resolve(&module, &["super".into(), "super".into(), "snmp".into()]);
    assert_eq!(up, Some(vec!["ingest".to_owned(), "snmp".to_owned()]));
}
