//! ICMP probes against 127.0.0.1 through the running daemon: requests are sent and answered,
//! and the latency series reaches detection with min/avg/max/p95 in the alarm's text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use common::*;

#[test]
fn probes_to_loopback_become_latency_and_loss_series() {
    let dir = tempfile::tempdir().unwrap();
    // A latency level every real round trip crosses, so the series shows up as an alarm.
    let config = write_config(
        dir.path(),
        0,
        "[probes]\nenabled = true\ninterval = \"1s\"\ncount = 3\nspacing = \"50ms\"\ntimeout = \"500ms\"\n\
         [thresholds.latency]\ndirection = \"rising\"\nwarning = 0.000001\nhysteresis = 0.0\n\
         [[device]]\nname = \"lo\"\naddress = \"127.0.0.1\"\nrole = \"router\"\n",
    );
    let mut d = start(dir.path(), &config);
    let http = d.port;
    wait_until(&mut d, |d| {
        get(d.port, "/api/v1/alarms?device=lo")
            .is_some_and(|(_, b)| b.contains("latency_ms_threshold"))
    });
    let (_, body) = get(http, "/api/v1/alarms?device=lo").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alarm = &v["items"][0];
    assert_eq!(alarm["object"], "icmp");
    let text = alarm["additionalText"].as_str().unwrap();
    assert!(text.contains("ICMP min") && text.contains("p95"), "{text}");
    assert!(metric(http, "noctua_probe_sent_total{device=\"lo\"}").is_some_and(|n| n >= 3.0));
    assert_eq!(
        metric(http, "noctua_probe_lost_total{device=\"lo\"}"),
        Some(0.0)
    );
    // No loss alarm: loopback answers everything.
    assert!(!body.contains("loss_pct_threshold"));
}

/// `[probes] tags`: only tagged devices are probed; the others send nothing.
#[test]
fn only_devices_with_a_probe_tag_are_probed_when_tags_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        0,
        "[probes]\nenabled = true\ninterval = \"1s\"\ncount = 2\nspacing = \"50ms\"\ntimeout = \"500ms\"\n\
         tags = [\"probe\"]\n\
         [[device]]\nname = \"watched\"\naddress = \"127.0.0.1\"\nrole = \"router\"\ntags = [\"probe\", \"core\"]\n\
         [[device]]\nname = \"quiet\"\naddress = \"127.0.0.2\"\nrole = \"router\"\ntags = [\"core\"]\n",
    );
    let mut d = start(dir.path(), &config);
    wait_until(&mut d, |d| {
        metric(d.port, "noctua_probe_sent_total{device=\"watched\"}").is_some_and(|n| n >= 4.0)
    });
    // Two rounds to the tagged device, none to the other.
    assert_eq!(
        metric(d.port, "noctua_probe_sent_total{device=\"quiet\"}"),
        None
    );
}
