//! The web console in a real browser (Debian's Chromium through chromedriver), against a real
//! daemon taking real SNMP traps, and against `noctua demo`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "console-test-token-0123456789";
/// A varbind an attacker controls (an ifAlias, a trap string), which must stay text.
const HOSTILE: &str = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>";

/// A daemon on a fixed port (the page reconnects to the same origin after a restart), with a
/// token, taking v2c traps from device `r1`.
fn config(dir: &std::path::Path, http: u16) -> std::path::PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    write_config(
        dir,
        http,
        &format!(
            "token-file = \"{}\"\n\
             [snmp]\ninterval = \"1h\"\n\
             [snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
             [traps]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
             [traps.severity]\n\"1.3.6.1.4.1.9999.1.2\" = \"major\"\n\
             [[device]]\nname = \"r1\"\naddress = \"127.0.0.1\"\nsnmp-port = {}\nrole = \"router\"\n\
             site = \"lab\"\ncredentials = \"v2\"\n",
            token.display(),
            peer_port()
        ),
    )
}

/// An enterprise trap from r1 carrying `text` in a string varbind.
fn trap(d: &Daemon, text: &str) {
    let to = format!("127.0.0.1:{}", bound_port(&d.bound["traps"]));
    let out = Command::new("snmptrap")
        .env("MIBS", "")
        .args(["-v", "2c", "-c", "public", &to, "", "1.3.6.1.4.1.9999.1.2"])
        .args(["1.3.6.1.4.1.9999.1.2.1", "s", text])
        .output()
        .expect("snmptrap (scripts/setup-peers.sh installs snmp)");
    assert_success(&out, "snmptrap");
}

fn api(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Answers the token dialog a write opened, as `user`.
fn sign_in(b: &Browser, user: &str) {
    b.wait_for(
        "the token dialog",
        "return document.getElementById('login-dialog').open",
        Duration::from_secs(5),
    );
    b.type_into("#login-dialog [name=user]", user);
    b.type_into("#login-dialog [name=token]", TOKEN);
    b.click("#login-ok");
}

/// Errors the page logged (a CSP violation or a script error is SEVERE).
fn severe(b: &Browser) -> Vec<String> {
    b.console_log()
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn pages_carry_security_headers_and_no_inline_script() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &write_config(dir.path(), 0, ""));
    for path in [
        "/",
        "/dashboard",
        "/console/console.js",
        "/api/v1/alarms",
        "/nope",
    ] {
        let (_, head) = head_of(d.port, path);
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{path}: {head}"
        );
        assert!(head.contains("frame-ancestors 'none'"), "{path}");
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
        assert!(head.contains("x-frame-options: deny"), "{path}");
    }
    let (status, head) = head_of(d.port, "/console/vendor/uPlot.iife.min.js");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(head_of(d.port, "/console/secret.txt").0, 404);
    // Files are looked up by name in the embedded list: no path leads out of it.
    assert_eq!(head_of(d.port, "/console/../Cargo.toml").0, 404);
    assert_eq!(head_of(d.port, "/console/vendor/../console.js").0, 404);
    // Every script is a file of ours: no inline script, no other origin.
    for page in ["/", "/dashboard"] {
        let (_, html) = get(d.port, page).unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty());
        for s in scripts {
            assert!(
                s.trim_start().starts_with("src=\"/console/"),
                "{page}: <script{s}"
            );
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page} loads from elsewhere"
        );
    }
    let settings = api(d.port, "/api/v1/console");
    assert_eq!(settings["writes"], false);
    assert_eq!(settings["targets"]["critical"]["ackSecs"], 900);
}

/// Status and lower-cased head of a GET.
fn head_of(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let head = out
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head)
}

#[test]
fn the_console_lives_acts_resumes_and_keeps_device_text_inert() {
    let dir = tempfile::tempdir().unwrap();
    let http = peer_port();
    let file = config(dir.path(), http);
    let mut d = start(dir.path(), &file);
    let b = Browser::start();
    let page = format!("http://127.0.0.1:{http}/");
    b.goto(&page);
    b.wait_for(
        "the snapshot",
        "return window.noctuaConsole && window.noctuaConsole.lastSeq !== null",
        Duration::from_secs(20),
    );
    b.wait_for(
        "the read-only notice",
        "return !document.getElementById('readonly').hidden",
        Duration::from_secs(10),
    );

    // A trap with hostile text: it appears, as text.
    let sent = Instant::now();
    trap(&d, HOSTILE);
    b.wait_for(
        "the trap's alarm in the list",
        "return [...document.querySelectorAll('#rows tr[data-id]')].some(tr => tr.textContent.includes('<img src=x'))",
        Duration::from_secs(20),
    );
    println!("trap to row: {} ms", sent.elapsed().as_millis());
    let injected = b.run(
        "return {imgs: document.querySelectorAll('#rows img, #rows script').length, pwned: window.pwned === undefined ? null : window.pwned}",
        json!([]),
    );
    assert_eq!(
        injected,
        json!({"imgs": 0, "pwned": null}),
        "device text became markup"
    );
    let alarm = api(http, "/api/v1/alarms")["items"][0].clone();
    let id = alarm["alarmId"].as_str().unwrap().to_owned();
    assert!(
        alarm["additionalText"]
            .as_str()
            .unwrap()
            .contains("<img src=x")
    );

    // The detail pane shows it as text too, with the fault record.
    b.click(&format!("#rows tr[data-id='{id}']"));
    b.wait_for("the detail", "return document.querySelector('#detail h3') && document.querySelector('#detail').textContent.includes('Fault')", Duration::from_secs(10));
    assert_eq!(
        b.run(
            "return document.querySelectorAll('#detail img, #detail script').length",
            json!([])
        ),
        0
    );
    b.keys("\u{E00C}"); // Escape closes it

    // Writing without the token is refused on the page, not sent.
    b.run("document.activeElement.blur()", json!([]));
    b.keys("j");
    b.wait_for(
        "a selected row",
        "return document.querySelector('#rows tr.selected')",
        Duration::from_secs(5),
    );
    b.keys("a");
    sign_in(&b, "maria");
    b.wait_for(
        "writes enabled",
        "return document.getElementById('readonly').hidden",
        Duration::from_secs(5),
    );
    let stored = b.run(
        "return [sessionStorage.getItem('noctua.token'), location.href, document.cookie]",
        json!([]),
    );
    assert_eq!(stored[0], TOKEN);
    assert!(
        !stored[1].as_str().unwrap().contains(TOKEN),
        "the token is in the URL"
    );
    assert_eq!(stored[2], "");

    // The keyboard: `a` acknowledges through the API.
    b.keys("a");
    let acked = Instant::now();
    wait_until(&mut d, |d| {
        api(d.port, &format!("/api/v1/alarms/{id}"))["alarm"]["ackState"] == "ACKNOWLEDGED"
    });
    assert_eq!(
        api(http, &format!("/api/v1/alarms/{id}"))["alarm"]["ackUserId"],
        "maria"
    );
    b.wait_for("the ack on the row", &format!("return document.querySelector(\"#rows tr[data-id='{id}']\").textContent.includes('ack maria')"), Duration::from_secs(10));
    println!("ack key to API: {} ms", acked.elapsed().as_millis());
    // `?` help, Escape, `/` the text filter, `g` grouping (kept in the URL).
    b.keys("?");
    b.wait_for(
        "help",
        "return document.getElementById('help').open",
        Duration::from_secs(5),
    );
    b.keys("\u{E00C}");
    b.wait_for(
        "help closed",
        "return !document.getElementById('help').open",
        Duration::from_secs(5),
    );
    b.keys("g");
    b.wait_for("grouped by site", "return location.search.includes('group=site') && document.querySelector('#rows tr.group') && document.querySelector('#rows tr.group').textContent.includes('site lab')", Duration::from_secs(5));
    b.keys("/");
    b.wait_for(
        "the text filter focused",
        "return document.activeElement.id === 'q'",
        Duration::from_secs(5),
    );
    b.keys("nothing-matches-this");
    b.wait_for("filtered out", "return location.search.includes('q=nothing-matches-this') && !document.querySelector('#rows tr[data-id]')", Duration::from_secs(5));
    // Filters come back from the URL.
    b.goto(&format!("{page}?severity=major&group=device&device=r1"));
    b.wait_for(
        "the list again",
        "return document.querySelector('#rows tr[data-id]')",
        Duration::from_secs(20),
    );
    let form = b.run("const f = document.getElementById('filters').elements; return [f.severity.value, f.group.value, f.device.value]", json!([]));
    assert_eq!(form, json!(["major", "device", "r1"]));

    // A restart: the banner shows while away, and the page resumes with no gap and no duplicate.
    signal(&d, libc::SIGTERM);
    wait_exit(&mut d, Duration::from_secs(20));
    b.wait_for(
        "the reconnecting banner",
        "return !document.getElementById('banner').hidden",
        Duration::from_secs(20),
    );
    let d = start(dir.path(), &file);
    b.wait_for(
        "live again",
        "return document.getElementById('banner').hidden",
        Duration::from_secs(30),
    );
    trap(&d, "second trap after the restart");
    b.wait_for(
        "the second alarm",
        "return [...document.querySelectorAll('#rows tr[data-id]')].some(tr => tr.textContent.includes('second trap'))",
        Duration::from_secs(20),
    );
    let head = api(d.port, "/api/v1/alarms?state=active")["total"]
        .as_u64()
        .unwrap();
    let seen = b.run(
        "const ids = [...document.querySelectorAll('#rows tr[data-id]')].map(tr => tr.dataset.id); \
         return {rows: ids.length, unique: new Set(ids).size, alarms: window.noctuaConsole.alarms.size}",
        json!([]),
    );
    assert_eq!(seen["rows"], seen["unique"], "a duplicated row: {seen}");
    assert_eq!(
        seen["alarms"].as_u64(),
        Some(head),
        "page and daemon disagree: {seen}"
    );
    // The page's own log: no script error, no CSP violation, and never the token.
    let errors = severe(&b);
    let logged: Vec<&String> = errors
        .iter()
        .filter(|m| !m.contains("/api/v1/alarms/stream"))
        .collect();
    assert!(logged.is_empty(), "console errors: {logged:?}");
    assert!(
        !log(&d).contains(TOKEN),
        "the token reached the daemon's log"
    );
    drop(d);
}

#[test]
fn two_thousand_alarms_and_a_burst_of_a_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &write_config(dir.path(), 0, ""));
    let b = Browser::start();
    b.goto(&format!("http://127.0.0.1:{}/", d.port));
    b.wait_for(
        "the snapshot",
        "return window.noctuaConsole && window.noctuaConsole.lastSeq !== null",
        Duration::from_secs(20),
    );
    // Through the page's own apply and render, as the stream would drive them.
    let figures = b.run(
        "const c = window.noctuaConsole; const sev = ['CRITICAL','MAJOR','MINOR','WARNING']; \
         const now = Date.now(); const base = c.lastSeq + 1; \
         const alarm = (i, s) => ({alarmId: String(100000 + i), notificationId: base + s, perceivedSeverity: sev[i % 4], \
           alarmRaisedTime: new Date(now - i * 1000).toISOString(), alarmChangedTime: new Date(now - i * 1000).toISOString(), \
           alarmClearedTime: null, ackState: 'UNACKNOWLEDGED', device: 'bs-' + (i % 300), object: 'ifIndex=' + (i % 7), \
           condition: 'latency_ms_threshold', category: 'performance', additionalText: 'latency at ' + i + ' ms', count: 1, suppressedBy: null}); \
         for (let i = 0; i < 2000; i++) c.apply({seq: base + i, kind: 'raised', notified: false, alarm: alarm(i, i)}, false); \
         const t0 = performance.now(); c.render(); const first = performance.now() - t0; \
         for (let i = 0; i < 1000; i++) { const a = alarm(i, 2000 + i); a.perceivedSeverity = 'CRITICAL'; \
           c.apply({seq: base + 2000 + i, kind: 'escalated', notified: false, alarm: a}, false); } \
         const t1 = performance.now(); c.render(); const burst = performance.now() - t1; \
         const t2 = performance.now(); c.render(); const again = performance.now() - t2; \
         return {first, burst, again, rows: document.querySelectorAll('#rows tr[data-id]').length};",
        json!([]),
    );
    let ms = |k: &str| figures[k].as_f64().unwrap();
    println!(
        "2,000 alarms: first render {:.0} ms; a burst of 1,000 transitions rendered in {:.0} ms; \
         a render with nothing new {:.0} ms",
        ms("first"),
        ms("burst"),
        ms("again")
    );
    assert_eq!(figures["rows"], 2000);
    let critical = b.run(
        "return document.querySelector('#counts .sev-critical').textContent",
        json!([]),
    );
    // A quarter of the 2,000 were critical; the burst made 1,000 critical, 250 of them already.
    assert_eq!(critical, "critical 1250");
}

#[test]
fn the_demo_shows_real_alarms_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let http = peer_port();
    let listen = format!("127.0.0.1:{http}");
    let d = launch(
        dir.path(),
        &["demo".as_ref(), "--listen".as_ref(), listen.as_ref()],
        &[],
    );
    assert_eq!(d.port, http);
    let b = Browser::start();
    b.goto(&format!("http://127.0.0.1:{http}/"));
    // Within a minute: the backhaul outage, the climbing latency, the flapping link.
    let started = Instant::now();
    b.wait_for(
        "the demo's alarms",
        "const t = document.getElementById('rows').textContent; \
         return t.includes('bh-east') && t.includes('device_unreachable') && t.includes('latency_ms_threshold') && t.includes('flapping:link_down')",
        Duration::from_secs(60),
    );
    println!(
        "demo: first alarms in the console after {} s",
        started.elapsed().as_secs()
    );
    // Root-cause suppression: the base stations are below the backhaul, not in the list.
    let rows = b.run("return [...document.querySelectorAll('#rows tr[data-id]')].map(tr => tr.children[1].textContent)", json!([]));
    assert!(
        !rows
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("bs-east")),
        "{rows}"
    );
    b.click("#rows tr[data-id] td:nth-child(2)"); // any row; then open the backhaul's detail
    let id = b.run("return [...window.noctuaConsole.alarms.values()].find(a => a.device === 'bh-east' && a.condition === 'device_unreachable' && !a.alarmClearedTime).alarmId", json!([]));
    b.click(&format!("#rows tr[data-id='{}']", id.as_str().unwrap()));
    b.wait_for(
        "the suppressed children",
        "return document.getElementById('detail').textContent.includes('Suppressed below it (4)')",
        Duration::from_secs(20),
    );
    // Who is behind it: the east site's customers (imported by the demo), and the service.
    let detail = b.run(
        "return document.getElementById('detail').textContent",
        json!([]),
    );
    let detail = detail.as_str().unwrap();
    // (The number in the browser's locale: 1,200 or 1200.)
    assert!(
        detail.contains("1,200 affected") || detail.contains("1200 affected"),
        "{detail}"
    );
    assert!(detail.contains("mobile-east"), "{detail}");
    // The same alarms through /metrics and the CLI.
    let m = metric(http, "noctua_alarm_transitions_total{kind=\"raised\"}").unwrap_or(0.0);
    assert!(m >= 5.0, "raised transitions {m}");
    let tail = Command::new(BIN)
        .args([
            "alarms",
            "list",
            "--server",
            &format!("http://127.0.0.1:{http}"),
        ])
        .output()
        .unwrap();
    assert_success(&tail, "alarms list");
    assert!(String::from_utf8_lossy(&tail.stdout).contains("bh-east"));
    assert!(severe(&b).is_empty());
    // The dashboard draws its charts from the same daemon, with no error either.
    b.goto(&format!("http://127.0.0.1:{http}/dashboard"));
    b.wait_for(
        "the dashboard",
        "return window.noctuaDashboard && window.noctuaDashboard.ready && document.querySelectorAll('.uplot').length >= 3",
        Duration::from_secs(20),
    );
    let faults = b.run(
        "return document.querySelector('#by-severity-table').textContent",
        json!([]),
    );
    assert!(faults.as_str().unwrap().contains("critical"), "{faults}");
    assert!(severe(&b).is_empty());
    // The capacity page: the month of history the demo starts with, a chart per link, and the
    // growing backhaul uplink first (soonest to 90 %), with its predictive alarm standing.
    b.goto(&format!("http://127.0.0.1:{http}/capacity"));
    b.wait_for(
        "the capacity page",
        "return window.noctuaCapacity && window.noctuaCapacity.ready && document.querySelectorAll('.uplot').length >= 3",
        Duration::from_secs(20),
    );
    let first = b.run(
        "return document.querySelector('#links tr:nth-child(2)').textContent",
        json!([]),
    );
    let first = first.as_str().unwrap();
    assert!(first.starts_with("bh-westifIndex=2out"), "{first}");
    assert!(first.contains("35 d"), "{first}");
    let charts = b.run(
        "return document.getElementById('charts').textContent",
        json!([]),
    );
    assert!(
        charts
            .as_str()
            .unwrap()
            .contains("bh-west ifIndex=2 out: 90 % in"),
        "{charts}"
    );
    assert!(severe(&b).is_empty());
    let alarms = api(http, "/api/v1/alarms");
    assert!(
        alarms["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |a| a["condition"] == "utilisation_out_pct_predicted_threshold"
                    && a["device"] == "bh-west"
            ),
        "{alarms}"
    );
    if let Some(out) = std::env::var_os("NOCTUA_SCREENSHOTS") {
        let out = std::path::PathBuf::from(out);
        std::fs::write(out.join("capacity.png"), b.screenshot()).unwrap();
    }

    // With NOCTUA_SCREENSHOTS=DIR the README's pictures are taken: once the flows have
    // played in (top talkers, the SYN flood), the console, a detail, and the dashboard.
    if let Some(out) = std::env::var_os("NOCTUA_SCREENSHOTS") {
        let out = std::path::PathBuf::from(out);
        b.goto(&format!("http://127.0.0.1:{http}/"));
        b.wait_for("the flow alarms", "return document.getElementById('rows').textContent.includes('top talkers') && document.getElementById('rows').textContent.includes('syn_only_pct')", Duration::from_secs(180));
        b.run("document.getElementById('detail').hidden = true; window.noctuaConsole.detailOpen = null", json!([]));
        std::fs::write(out.join("console.png"), b.screenshot()).unwrap();
        b.click(&format!("#rows tr[data-id='{}']", id.as_str().unwrap()));
        b.wait_for(
            "detail",
            "return document.getElementById('detail').textContent.includes('Suppressed below it')",
            Duration::from_secs(20),
        );
        std::fs::write(out.join("console-detail.png"), b.screenshot()).unwrap();
        // The dashboard once the outage is acknowledged and repaired, so MTTA and MTTR show.
        b.wait_for("the backhaul repaired", "return [...window.noctuaConsole.alarms.values()].some(a => a.device === 'bh-east' && a.alarmClearedTime)", Duration::from_secs(300));
        b.goto(&format!("http://127.0.0.1:{http}/dashboard"));
        b.wait_for(
            "the dashboard",
            "return window.noctuaDashboard && window.noctuaDashboard.ready",
            Duration::from_secs(20),
        );
        std::fs::write(out.join("dashboard.png"), b.screenshot()).unwrap();
    }
}

/// An action waiting for approval shows in the alarm's detail; approving it there takes the
/// token (asked for, as for any write) and records who, and its dry-run steps show after.
#[test]
fn an_action_waiting_for_approval_is_approved_from_the_detail_pane() {
    let dir = tempfile::tempdir().unwrap();
    let http = peer_port();
    let file = config(dir.path(), http);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(
        "[actions]\nenabled = true\n\
         [[action]]\nname = \"open-ticket\"\non = [\"raised\"]\ncondition = \"snmp_trap\"\nrequire-approval = true\n\
         [[action.step]]\nwebhook = \"https://tickets.example.net/new?device={device}\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let mut d = start(dir.path(), &file);
    let b = Browser::start();
    b.goto(&format!("http://127.0.0.1:{http}/"));
    b.wait_for(
        "the snapshot",
        "return window.noctuaConsole && window.noctuaConsole.lastSeq !== null",
        Duration::from_secs(20),
    );
    trap(&d, "fan tray 2 failed");
    b.wait_for(
        "the trap's alarm",
        "return document.querySelector('#rows tr[data-id]')",
        Duration::from_secs(20),
    );
    let id = api(http, "/api/v1/alarms")["items"][0]["alarmId"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click(&format!("#rows tr[data-id='{id}']"));
    b.wait_for(
        "the action in the detail",
        "const t = document.getElementById('detail').textContent; return t.includes('Automated actions (1)') && t.includes('awaiting-approval')",
        Duration::from_secs(20),
    );
    // An alarm with no suppressed children shows no trace of the section that is not there.
    let detail = b.run(
        "return document.getElementById('detail').textContent",
        json!([]),
    );
    assert!(!detail.as_str().unwrap().contains("null"), "{detail}");
    // With NOCTUA_SCREENSHOTS=DIR: the README's picture of an action waiting for approval.
    if let Some(out) = std::env::var_os("NOCTUA_SCREENSHOTS") {
        let out = std::path::PathBuf::from(out);
        std::fs::write(out.join("console-action.png"), b.screenshot()).unwrap();
    }
    // Without the token the page asks for it and sends nothing.
    b.click("#detail .automated button");
    sign_in(&b, "maria");
    assert_eq!(
        api(http, "/api/v1/actions")["items"][0]["state"],
        "awaiting-approval"
    );
    b.click("#detail .automated button");
    wait_until(&mut d, |d| {
        api(d.port, "/api/v1/actions")["items"][0]["state"] == "succeeded"
    });
    b.wait_for(
        "the approval and the dry run in the detail",
        "const t = document.getElementById('detail').textContent; return t.includes('approved by maria') && t.includes('dry-run') && t.includes('webhook POST https://tickets.example.net/new?device=r1')",
        Duration::from_secs(20),
    );
    let a = api(http, "/api/v1/actions")["items"][0].clone();
    assert_eq!(a["decision"]["by"], "maria");
    assert_eq!(a["mode"], "dry-run");
    assert!(severe(&b).is_empty(), "{:?}", severe(&b));
}
