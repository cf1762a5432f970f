//! Services and customer impact end to end: a CRM export imported through the CLI (bad rows
//! named, nothing stored), a base station going down replayed into the store, and the daemon
//! answering the call-centre lookup, the services table and the stream from what it restored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const TOKEN: &str = "s3cret-token-for-tests";

fn config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    write_config(
        dir,
        0,
        &format!(
            "token-file = \"{}\"\n\
             [[device]]\nname = \"bh-r1\"\naddress = \"192.0.2.10\"\nrole = \"router\"\nsite = \"hub\"\n\
             [[device]]\nname = \"enb-1\"\naddress = \"198.51.100.1\"\nrole = \"base-station\"\nparent = \"bh-r1\"\nsite = \"east-1\"\n\
             [[device]]\nname = \"enb-2\"\naddress = \"198.51.100.2\"\nrole = \"base-station\"\nparent = \"bh-r1\"\nsite = \"east-2\"\n\
             [[service]]\nname = \"data-east\"\ndescription = \"mobile data, region east\"\nreduce = \"k-of-n\"\nk = 2\nseverity = \"critical\"\n\
             [[service.member]]\ndevice = \"enb-1\"\n\
             [[service.member]]\ndevice = \"enb-2\"\n",
            dir.join("token").display()
        ),
    )
}

fn authed(port: u16, path: &str) -> (u16, serde_json::Value) {
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = request(port, "GET", path, &[("Authorization", &bearer)], "").unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn customers_imported_then_a_base_station_down_answers_the_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut d = start(dir.path(), &cfg);

    // A bad export: every bad row named by its line, nothing stored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "customer,site,cell\nC1,east-1,\nC2,nowhere,\nC3,,bh-r1/1\n",
    )
    .unwrap();
    let out = cli(dir.path(), d.port, &["customers", "import"]);
    assert!(!out.status.success(), "no file: {}", text(&out));
    let out = cli(
        dir.path(),
        d.port,
        &["customers", "import", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("2 bad rows; nothing was imported"), "{said}");
    assert!(said.contains("line 3: unknown site `nowhere`"), "{said}");
    assert!(
        said.contains("line 4: unknown cell `bh-r1/1`: `bh-r1` is not a base station"),
        "{said}"
    );
    assert_eq!(metric(d.port, "noctua_customers"), Some(0.0));

    // A good one, twice: the second changes nothing.
    let good = dir.path().join("crm.csv");
    std::fs::write(
        &good,
        "customer,site,cell\nC1,east-1,\nC2,east-1,\nC3,,enb-1/2\nC4,east-2,\nC5,hub,\n",
    )
    .unwrap();
    let out = cli(
        dir.path(),
        d.port,
        &["customers", "import", good.to_str().unwrap()],
    );
    assert_success(&out, "customers import");
    assert!(text(&out).contains("5 rows imported"), "{}", text(&out));
    let out = cli(
        dir.path(),
        d.port,
        &["customers", "import", good.to_str().unwrap()],
    );
    assert!(
        text(&out).contains("0 new, 0 moved, 5 unchanged; 5 customers known"),
        "{}",
        text(&out)
    );
    assert_eq!(metric(d.port, "noctua_customers"), Some(5.0));
    // Customer data only for token holders; no customer id on /metrics.
    assert_eq!(get(d.port, "/api/v1/impact?customer=C1").unwrap().0, 401);
    assert!(!get(d.port, "/metrics").unwrap().1.contains("C1"));
    let (status, quiet) = authed(d.port, "/api/v1/impact?customer=C1");
    assert_eq!(status, 200);
    assert_eq!(quiet["affected"], false);
    assert_eq!(authed(d.port, "/api/v1/impact?customer=nobody").0, 404);
    assert_eq!(authed(d.port, "/api/v1/impact?site=atlantis").0, 404);
    assert_eq!(
        authed(d.port, "/api/v1/impact?site=hub&cell=enb-1/2").0,
        400
    );
    signal(&d, libc::SIGTERM);
    wait_exit(&mut d, Duration::from_secs(10));

    // enb-1 goes down a minute ago; replayed into the same store.
    let at = |s: i64| {
        noctua::model::Timestamp::from_millis(
            noctua::model::Timestamp::now().as_millis() - s * 1000,
        )
    };
    let scenario = dir.path().join("s.jsonl");
    std::fs::write(
        &scenario,
        format!("{{\"at\":\"{}\",\"device\":\"enb-1\",\"event\":\"unreachable\",\"text\":\"3 polls unanswered\"}}\n", at(60)),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(&scenario)
        .arg("--config")
        .arg(&cfg)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");

    let d = start(dir.path(), &cfg);
    // Site east-1's two customers and cell enb-1/2's one are behind enb-1.
    let (_, a) = authed(d.port, "/api/v1/alarms?device=enb-1");
    let alarm = &a["items"][0];
    assert_eq!(alarm["impact"]["customers"], 3, "{alarm}");
    assert_eq!(
        alarm["impact"]["services"],
        serde_json::json!(["data-east"])
    );
    for (query, affected) in [
        ("customer=C1", true),
        ("customer=C3", true),
        ("cell=enb-1/2", true),
        ("customer=C4", false),
        ("site=east-2", false),
    ] {
        let (status, v) = authed(d.port, &format!("/api/v1/impact?{query}"));
        assert_eq!(
            (status, v["affected"].as_bool()),
            (200, Some(affected)),
            "{query}: {v}"
        );
    }
    let (_, v) = authed(d.port, "/api/v1/impact?customer=C1");
    let fault = &v["faults"][0];
    assert_eq!(fault["device"], "enb-1");
    assert_eq!(fault["severity"], "CRITICAL");
    assert_eq!(fault["state"], "active");
    // The critical tier's restore target from the default [tiers].
    assert!(fault["restoreBy"].is_string(), "{fault}");
    // One of two base stations down: degraded, not down (k = 2).
    let (_, s) = authed(d.port, "/api/v1/services/data-east");
    assert_eq!(s["service"]["status"], "degraded", "{s}");
    assert_eq!(s["service"]["underlyingAlarm"][0], alarm["alarmId"]);
    assert_eq!(s["alarms"][0]["device"], "enb-1");
    assert_eq!(authed(d.port, "/api/v1/services/nope").0, 404);
    let out = cli(dir.path(), d.port, &["services"]);
    assert_success(&out, "services");
    let table = text(&out);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(
        table.contains("data-east") && table.contains("degraded"),
        "{table}"
    );
    let out = cli(dir.path(), d.port, &["alarms", "list"]);
    assert!(
        text(&out).contains("[3 customers; services: data-east]"),
        "{}",
        text(&out)
    );
    let out = cli(dir.path(), d.port, &["impact", "--customer", "C3"]);
    assert_success(&out, "impact");
    let said = text(&out);
    assert!(
        said.contains("cell enb-1/2: affected by a known fault"),
        "{said}"
    );
    assert!(said.contains("enb-1 device_unreachable"), "{said}");
    // The stream gives the services after its snapshot.
    let mut sse = SseClient::connect(d.port, "/api/v1/alarms/stream", None);
    assert_eq!(sse.next(Duration::from_secs(5)).unwrap().event, "snapshot");
    let services = sse.next(Duration::from_secs(5)).unwrap();
    assert_eq!(services.event, "services");
    assert!(
        services.data.contains("\"status\":\"degraded\""),
        "{}",
        services.data
    );

    // A complaint from C1 is explained at once by enb-1's fault.
    let (status, c) = post(
        d.port,
        "/api/v1/complaints",
        r#"{"id":"CRM-1","customer":"C1","channel":"phone","symptom":"no_service","text":"no signal since lunch"}"#,
    );
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["explained"], true, "{c}");
    assert_eq!(c["link"]["alarm"], alarm["alarmId"]);
    assert_eq!(c["placeName"], "site east-1");
    // Bad input: a clear 4xx each, and nothing stored.
    for (body, want) in [
        (
            r#"{"id":"CRM-1","customer":"C1","channel":"phone","symptom":"slow"}"#,
            409,
        ),
        (
            r#"{"customer":"C999","channel":"phone","symptom":"slow"}"#,
            404,
        ),
        (
            r#"{"site":"atlantis","channel":"phone","symptom":"slow"}"#,
            404,
        ),
        (
            r#"{"cell":"bh-r1/1","channel":"phone","symptom":"slow"}"#,
            404,
        ),
        (
            r#"{"site":"east-1","channel":"pigeon","symptom":"slow"}"#,
            400,
        ),
        (
            r#"{"site":"east-1","cell":"enb-1/2","channel":"phone","symptom":"slow"}"#,
            400,
        ),
        (
            r#"{"site":"east-1","channel":"phone","symptom":"slow","receivedAt":"2999-01-01T00:00:00Z"}"#,
            400,
        ),
    ] {
        let (status, v) = post(d.port, "/api/v1/complaints", body);
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let long = format!(
        r#"{{"site":"east-1","channel":"phone","symptom":"other","text":"{}"}}"#,
        "x".repeat(3000)
    );
    assert_eq!(post(d.port, "/api/v1/complaints", &long).0, 413);
    let (_, all) = authed(d.port, "/api/v1/complaints?state=all");
    assert_eq!(all["total"], 1, "{all}");
    assert_eq!(get(d.port, "/api/v1/complaints").unwrap().0, 401);

    // Three unexplained complaints from east-2 within the window: customer_reported on it.
    for n in 0..3 {
        let out = cli(
            dir.path(),
            d.port,
            &[
                "complaints",
                "add",
                "--site",
                "east-2",
                "--symptom",
                "slow",
                "--text",
                &format!("caller {n}"),
            ],
        );
        assert_success(&out, "complaints add");
        assert!(
            text(&out).contains("no known fault explains it yet"),
            "{}",
            text(&out)
        );
    }
    let (_, a) = authed(d.port, "/api/v1/alarms?device=enb-2");
    let reported = &a["items"][0];
    assert_eq!(reported["condition"], "customer_reported", "{a}");
    assert_eq!(reported["object"], "site=east-2");
    assert_eq!(reported["perceivedSeverity"], "MINOR");
    assert_eq!(reported["category"], "service");
    let out = cli(dir.path(), d.port, &["complaints", "list"]);
    let listed = text(&out);
    assert!(listed.starts_with("COMPLAINT"), "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.contains("site east-2")).count(),
        3,
        "{listed}"
    );
    assert!(listed.contains("fault "), "{listed}");
    let out = cli(
        dir.path(),
        d.port,
        &["complaints", "ack", "CRM-1", "--by", "ana"],
    );
    assert!(
        text(&out).contains("complaint CRM-1 (site east-1): acknowledged"),
        "{}",
        text(&out)
    );

    // enb-1's alarm cleared by hand: its complaint resolves with it.
    act(d.port, TOKEN, alarm["alarmId"].as_str().unwrap(), "clear");
    let (_, c) = authed(d.port, "/api/v1/complaints/CRM-1");
    assert_eq!(c["state"], "resolved", "{c}");
    assert!(
        c["resolution"]
            .as_str()
            .unwrap()
            .starts_with("resolved with fault"),
        "{c}"
    );
    assert_eq!(c["resolvedBy"], serde_json::Value::Null);
    let out = cli(
        dir.path(),
        d.port,
        &["complaints", "ack", "CRM-1", "--by", "ana"],
    );
    assert!(
        !out.status.success() && text(&out).contains("is resolved"),
        "{}",
        text(&out)
    );

    // Reports: complaints by fault (the NOC knew of enb-1 a minute before CRM-1 came), and
    // MTTR by service with the customers and customer-minutes lost.
    let out = cli(
        dir.path(),
        d.port,
        &["complaints", "report", "--format", "csv"],
    );
    assert_success(&out, "complaints report");
    let csv = text(&out);
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert!(
        rows[0].starts_with(&["since", "until", "by", "group", "complaints"]),
        "{csv}"
    );
    let total = rows.iter().find(|r| r[3] == "\"all\"").unwrap();
    // complaints, explained, open, faults, noc_knew_first
    assert_eq!(&total[4..9], ["4", "1", "3", "1", "1"], "{csv}");
    let lead: f64 = total[9].parse().unwrap();
    assert!((59.0..120.0).contains(&lead), "a minute's lead: {csv}");
    let out = cli(dir.path(), d.port, &["complaints", "report"]);
    let table = text(&out);
    assert!(
        table.contains("NOC knew first") && table.contains("1 of 1 (100 %)"),
        "{table}"
    );
    let out = cli(
        dir.path(),
        d.port,
        &["mttr", "report", "--by", "service", "--format", "csv"],
    );
    assert_success(&out, "mttr report --by service");
    let csv = text(&out);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("24h,") && l.contains(",data-east,"))
        .unwrap_or_else(|| panic!("{csv}"));
    let cells: Vec<&str> = row.split(',').collect();
    assert_eq!(cells[at("customers")], "3", "{csv}");
    let minutes: u64 = cells[at("customer_minutes")].parse().unwrap();
    assert!(minutes >= 3, "three customers for a minute or more: {csv}");
}

fn post(port: u16, path: &str, body: &str) -> (u16, serde_json::Value) {
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = request(
        port,
        "POST",
        path,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// kill -9 while complaints come in and raise and escalate `customer_reported`: every complaint
/// the API answered 201 is in the store afterwards, as answered; complaints counted towards the
/// alarm are not counted twice, and one alarm stands for the site however often it restarts.
#[test]
fn sigkill_while_complaints_and_alarms_flow_loses_nothing_answered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let cfg = write_config(
        dir.path(),
        0,
        &format!(
            "token-file = \"{}\"\n\
             [complaints]\ndetect-window = \"1h\"\nminor = 3\nmajor = 20\ncritical = 60\n\
             [[device]]\nname = \"enb-1\"\naddress = \"198.51.100.1\"\nrole = \"base-station\"\nsite = \"east-1\"\n",
            dir.path().join("token").display()
        ),
    );
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let mut next = 0usize;
    let mut seed = 17u64;
    for round in 0..6 {
        let mut d = start(dir.path(), &cfg);
        let port = d.port;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poster = {
            let (answered, stop) = (answered.clone(), stop.clone());
            let first = next;
            std::thread::spawn(move || {
                let mut n = first;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = format!(
                        r#"{{"id":"K-{n}","site":"east-1","channel":"app","symptom":"slow","text":"round {round}"}}"#
                    );
                    match std::panic::catch_unwind(|| post(port, "/api/v1/complaints", &body)) {
                        Ok((201, v)) => answered.lock().unwrap().push(v),
                        _ => break,
                    }
                    n += 1;
                }
                n
            })
        };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 600));
        d.child.kill().unwrap();
        d.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        next = poster.join().unwrap() + 1;

        let store = noctua::store::Store::open(&dir.path().join("store")).unwrap();
        let stored: std::collections::HashMap<String, noctua::model::Complaint> = store
            .complaints()
            .unwrap()
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let answered = answered.lock().unwrap();
        assert!(!answered.is_empty(), "round {round}: nothing was answered");
        for a in answered.iter() {
            let id = a["id"].as_str().unwrap();
            let c = stored.get(id).unwrap_or_else(|| {
                panic!("round {round}: {id} was answered 201 but is not stored")
            });
            assert_eq!(c.received_at.to_string(), a["receivedAt"].as_str().unwrap());
        }
        let active: Vec<noctua::model::Alarm> =
            store.scan(noctua::store::Tree::ActiveAlarms).unwrap();
        let reported: Vec<_> = active
            .iter()
            .filter(|a| a.condition == "customer_reported")
            .collect();
        assert_eq!(
            reported.len(),
            1,
            "round {round}: one alarm for the site: {reported:?}"
        );
        // Its severity follows the count of complaints that reached the store (within the
        // window: all of them here).
        let want = match stored.len() {
            n if n >= 60 => noctua::model::Severity::Critical,
            n if n >= 20 => noctua::model::Severity::Major,
            _ => noctua::model::Severity::Minor,
        };
        assert_eq!(
            reported[0].perceived_severity,
            want,
            "round {round}: {} complaints",
            stored.len()
        );
        let last = store.last_seq().unwrap();
        let history = store.history_after(0, usize::MAX).unwrap();
        assert_eq!(
            history.len() as u64,
            last,
            "round {round}: the journal has gaps"
        );
    }
}
