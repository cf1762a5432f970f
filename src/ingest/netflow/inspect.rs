//! `noctua flows inspect`: a capture decoded with netflow_parser's full decoder, every field
//! by the library's name for it (IANA's for IPFIX), templates and options included, per
//! exporter and observation domain. It answers "what is this router really sending?"; the
//! collector's hot path keeps its own template plans (`decode.rs`), which decode only what
//! noctua uses, about three times faster.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use netflow_parser::NetflowParser;
use serde_json::Value;

use crate::model::{Timestamp, printable};

/// One exported datagram: when it was captured (Unix ms), who sent it, and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Export<'a> {
    /// Capture time, Unix ms.
    pub at_ms: i64,
    /// Sender.
    pub src: IpAddr,
    /// UDP payload.
    pub payload: &'a [u8],
}

/// What to show.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Only this exporter's datagrams.
    pub exporter: Option<IpAddr>,
    /// One JSON object per datagram, every record, instead of text.
    pub json: bool,
    /// Records shown per data set in text (templates are always shown whole).
    pub records: usize,
    /// Only the tally per exporter and domain, in text.
    pub summary: bool,
}

/// What one exporter's domain sent.
#[derive(Debug, Default)]
struct Tally {
    datagrams: usize,
    versions: std::collections::BTreeSet<String>,
    templates: std::collections::BTreeSet<String>,
    options_templates: std::collections::BTreeSet<String>,
    records: usize,
    undecoded: usize,
}

/// The observation domain (IPFIX) or source id (v9) a datagram's header names; 0 for v5/v7.
fn domain(payload: &[u8]) -> u32 {
    let at = match payload.get(..2) {
        Some([0, 9]) => 16,
        Some([0, 10]) => 12,
        _ => return 0,
    };
    payload
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Every datagram decoded, templates kept per exporter and domain as the exporter scoped them.
/// Returns, per datagram in capture order, its exporter, domain and the library's packets (as
/// JSON, the library's own serialisation) with its error, if any.
pub fn decode<'a>(
    datagrams: &[Export<'a>],
    exporter: Option<IpAddr>,
) -> Vec<(Export<'a>, u32, Value)> {
    let mut parsers: HashMap<(IpAddr, u32), NetflowParser> = HashMap::new();
    datagrams
        .iter()
        .filter(|d| exporter.is_none_or(|e| e == d.src))
        .map(|d| {
            let dom = domain(d.payload);
            let parsed = parsers
                .entry((d.src, dom))
                .or_default()
                .parse_bytes(d.payload);
            let mut v = serde_json::json!({ "packets": parsed.packets });
            if let Some(e) = parsed.error {
                v["error"] = Value::String(printable(&format!("{e:?}")).into_owned());
            }
            (*d, dom, v)
        })
        .collect()
}

/// A field's name: the library's name for it (`InBytes`, or `{"IANA": "OctetDeltaCount"}`).
pub fn field_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.len() == 1 => o
            .iter()
            .next()
            .map(|(k, inner)| {
                inner
                    .as_str()
                    .map_or_else(|| format!("{k}:{inner}"), str::to_owned)
            })
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A value for people: numbers and addresses bare, durations in seconds, flags by name.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s).into_owned(),
        Value::Object(o) => {
            if let (Some(secs), Some(nanos)) = (o.get("secs"), o.get("nanos")) {
                let ms =
                    secs.as_u64().unwrap_or(0) * 1000 + nanos.as_u64().unwrap_or(0) / 1_000_000;
                return format!("{}.{:03}s", ms / 1000, ms % 1000);
            }
            if !o.is_empty() && o.values().all(Value::is_boolean) {
                let set: Vec<&str> = o
                    .iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(k, _)| k.as_str())
                    .collect();
                return if set.is_empty() {
                    "-".to_owned()
                } else {
                    set.join("|").to_uppercase()
                };
            }
            if o.len() == 1 {
                return o.values().next().map(show).unwrap_or_default();
            }
            o.iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join(" ")
        }
        Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A packet's flow records as (field name, value) pairs: the data sets of v9 and IPFIX (not
/// options data), the fixed records of v5 and v7.
pub fn records(packet: &Value) -> Vec<Vec<(String, Value)>> {
    let Some((_, body)) = packet.as_object().and_then(|o| o.iter().next()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for set in body["flowsets"].as_array().into_iter().flatten() {
        match set.get("body") {
            Some(b) => {
                out.extend(
                    b["Data"]["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(pairs),
                );
            }
            // v5 and v7: each set is a record.
            None => {
                if let Some(o) = set.as_object() {
                    out.push(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
                }
            }
        }
    }
    out
}

/// A v9 or IPFIX record's fields: `[name, value]` pairs, or for v9 options data its scope
/// fields (`{name: value}`) then its option fields.
fn pairs(rec: &Value) -> Vec<(String, Value)> {
    let list = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((field_name(p.get(0)?), p.get(1)?.clone())))
            .collect::<Vec<_>>()
    };
    if !rec.is_object() {
        return list(rec);
    }
    let scope = rec["scope_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())));
    scope.chain(list(&rec["options_fields"])).collect()
}

/// The first `shown` records, one line each, and how many more there were.
fn list(out: &mut String, recs: &[Vec<(String, Value)>], shown: usize) {
    for r in recs.iter().take(shown) {
        let line: Vec<String> = r.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
        let _ = writeln!(out, "    {}", line.join(" "));
    }
    if recs.len() > shown {
        let _ = writeln!(out, "    ... {} more", recs.len() - shown);
    }
}

/// The capture for people, or as JSON lines.
pub fn inspect(datagrams: &[Export<'_>], o: &Options) -> String {
    let mut out = String::new();
    let mut tallies: std::collections::BTreeMap<(IpAddr, u32), Tally> = Default::default();
    for (d, dom, v) in decode(datagrams, o.exporter) {
        let t = tallies.entry((d.src, dom)).or_default();
        t.datagrams += 1;
        t.undecoded += usize::from(v.get("error").is_some());
        for p in v["packets"].as_array().into_iter().flatten() {
            tally(t, p);
        }
        let at = Timestamp::from_millis(d.at_ms);
        if o.json {
            let line = serde_json::json!({
                "at": at, "exporter": d.src, "domain": dom,
                "packets": v["packets"], "error": v.get("error"),
            });
            let _ = writeln!(out, "{line}");
            continue;
        }
        if o.summary {
            continue;
        }
        for p in v["packets"].as_array().into_iter().flatten() {
            text(&mut out, at, d.src, dom, p, o.records);
        }
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            let _ = writeln!(out, "{at} {} domain {dom}: not decoded: {e}", d.src);
        }
    }
    if !o.json {
        for ((src, dom), t) in &tallies {
            let join = |s: &std::collections::BTreeSet<String>| {
                if s.is_empty() {
                    "none".to_owned()
                } else {
                    s.iter().cloned().collect::<Vec<_>>().join(" ")
                }
            };
            let _ = writeln!(
                out,
                "{src} domain {dom}: {} datagrams ({}), {} records; templates {}; options templates {}; {} not decoded",
                t.datagrams,
                join(&t.versions),
                t.records,
                join(&t.templates),
                join(&t.options_templates),
                t.undecoded
            );
        }
    }
    out
}

/// Counts a packet into its exporter's tally.
fn tally(t: &mut Tally, p: &Value) {
    let Some((version, body)) = p.as_object().and_then(|o| o.iter().next()) else {
        return;
    };
    t.versions.insert(version.clone());
    t.records += records(p).len();
    for set in body["flowsets"].as_array().into_iter().flatten() {
        for (kind, into) in [
            ("Template", &mut t.templates),
            ("OptionsTemplate", &mut t.options_templates),
        ] {
            let content = &set["body"][kind];
            let one = [content.clone()];
            let list = content["templates"].as_array().map_or(&one[..], |l| &l[..]);
            for tpl in list.iter().filter(|x| !x.is_null()) {
                into.insert(show(&tpl["template_id"]));
            }
        }
    }
}

fn text(out: &mut String, at: Timestamp, src: IpAddr, dom: u32, p: &Value, shown: usize) {
    let Some((version, body)) = p.as_object().and_then(|o| o.iter().next()) else {
        return;
    };
    let h = &body["header"];
    let seq = h.get("sequence_number").or(h.get("flow_sequence"));
    let _ = writeln!(
        out,
        "{at} {src} {version} domain {dom} sequence {}",
        seq.map_or("-".to_owned(), show)
    );
    for set in body["flowsets"].as_array().into_iter().flatten() {
        let Some(b) = set.get("body").and_then(Value::as_object) else {
            continue;
        };
        for (kind, content) in b {
            let templates = content.get("templates").and_then(Value::as_array);
            match kind.as_str() {
                "Template" | "OptionsTemplate" => {
                    let one = [content.clone()];
                    for t in templates.map_or(&one[..], |t| &t[..]) {
                        let fields: Vec<String> = ["scope_fields", "fields", "option_fields"]
                            .iter()
                            .flat_map(|k| t[*k].as_array().into_iter().flatten())
                            .map(|f| {
                                format!(
                                    "{}/{}",
                                    field_name(&f["field_type"]),
                                    show(&f["field_length"])
                                )
                            })
                            .collect();
                        let _ = writeln!(
                            out,
                            "  {} {}: {}",
                            if kind == "Template" {
                                "template"
                            } else {
                                "options template"
                            },
                            show(&t["template_id"]),
                            fields.join(" ")
                        );
                    }
                }
                "Data" | "OptionsData" => {
                    let recs: Vec<_> = content["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(pairs)
                        .collect();
                    let id = set["header"]
                        .get("flowset_id")
                        .or(set["header"].get("header_id"));
                    let _ = writeln!(
                        out,
                        "  {} {}: {} records",
                        if kind == "Data" {
                            "data"
                        } else {
                            "options data"
                        },
                        id.map_or("-".to_owned(), show),
                        recs.len()
                    );
                    list(out, &recs, shown);
                }
                other => {
                    let _ = writeln!(out, "  {}: {}", other.to_lowercase(), show(content));
                }
            }
        }
    }
    // v5 and v7: fixed records.
    if p.get("V5").is_some() || p.get("V7").is_some() {
        let fixed = records(p);
        let _ = writeln!(out, "  records: {}", fixed.len());
        list(out, &fixed, shown);
    }
}
