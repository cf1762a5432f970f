//! Config parsing, lookup and validation: every error must name the key and its line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::path::{Path, PathBuf};

use noctua::config::{self, Config, ConfigError, ConfigSource, Secret};

fn issues(text: &str) -> Vec<(usize, String, String)> {
    match config::parse("test.toml", text, Path::new(".")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(ConfigError::Invalid { origin, issues }) => {
            assert_eq!(origin, "test.toml");
            issues
                .into_iter()
                .map(|i| (i.line, i.key, i.message))
                .collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn embedded_default_parses_and_matches_the_built_in_defaults() {
    let parsed = config::parse("<embedded>", config::DEFAULT_TOML, Path::new(".")).unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn every_file_in_config_dir_parses() {
    let mut files = Vec::new();
    toml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        &mut files,
    );
    // Profiles are not configs; `snmp::profile`'s own test parses them.
    files.retain(|f| !f.components().any(|c| c.as_os_str() == "profiles"));
    assert!(files.len() >= 2, "found only {files:?}");
    for f in files {
        if let Err(e) = ConfigSource::Flag(f.clone()).load() {
            panic!("{} does not parse:\n{e}", f.display());
        }
    }
}

#[test]
fn unknown_key_names_key_and_line() {
    let got = issues("[store]\npath = \"x\"\n\n[http]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
    assert_eq!(got.len(), 1);
    let (line, key, msg) = &got[0];
    assert_eq!(*line, 6);
    assert_eq!(key, "http.lisen");
    assert!(msg.contains("unknown field `lisen`"), "{msg}");
}

#[test]
fn bad_duration_names_key_and_line() {
    let got = issues("[snmp]\nretries = 1\ninterval = \"5 fortnights\"\n");
    assert_eq!(got[0].0, 3);
    assert_eq!(got[0].1, "snmp.interval");
    assert!(
        got[0].2.contains("fortnights") || got[0].2.contains("unit"),
        "{}",
        got[0].2
    );
}

#[test]
fn rendered_error_has_file_line_column_key_and_expectation() {
    let err = config::parse("site.toml", "[mqtt]\nkeepalive = 30\n", Path::new(".")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("site.toml:2:13: `mqtt.keepalive`: "),
        "{text}"
    );
}

const DEVICES: &str = r#"
[snmp.credentials.lab]
version = "v2c"
community = "public"

[[device]]
name = "core-r1"
address = "192.0.2.1"
role = "router"
credentials = "lab"

[[device]]
name = "bh-r1"
address = "192.0.2.2"
role = "router"
parent = "core-r1"
"#;

#[test]
fn valid_topology_parses() {
    let c = config::parse("t", DEVICES, Path::new(".")).unwrap();
    assert_eq!(c.devices.len(), 2);
    assert_eq!(c.devices[1].device().parent.as_deref(), Some("core-r1"));
}

#[test]
fn topology_errors_are_all_reported_with_their_lines() {
    let text = format!(
        "{DEVICES}{}",
        r#"
[[device]]
name = "bh-r1"
address = "192.0.2.3"
role = "switch"

[[device]]
name = "enb-1"
address = "192.0.2.4"
role = "base-station"
parent = "nowhere"
credentials = "missing"

[[device]]
name = "a"
address = "192.0.2.5"
role = "switch"
parent = "b"

[[device]]
name = "b"
address = "192.0.2.6"
role = "switch"
parent = "a"
"#
    );
    let got = issues(&text);
    let find = |key: &str| {
        got.iter()
            .find(|(_, k, _)| k == key)
            .unwrap_or_else(|| panic!("no issue for {key} in {got:?}"))
    };
    let lines: Vec<&str> = text.lines().collect();
    let at = |n: usize| lines[n - 1];
    let dup = find("device[2].name");
    assert!(dup.2.contains("duplicate device name `bh-r1`"), "{}", dup.2);
    assert_eq!(at(dup.0), "name = \"bh-r1\"");
    let parent = find("device[3].parent");
    assert!(parent.2.contains("unknown parent `nowhere`"));
    assert_eq!(at(parent.0), "parent = \"nowhere\"");
    let creds = find("device[3].credentials");
    assert!(creds.2.contains("unknown credentials `missing`"));
    assert_eq!(at(creds.0), "credentials = \"missing\"");
    let cycle = find("device[4].parent");
    assert!(cycle.2.contains("parent cycle: a -> b -> a"), "{}", cycle.2);
    assert_eq!(at(cycle.0), "parent = \"b\"");
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn invalid_address_and_exporter_cidr_are_rejected() {
    let got = issues("[[device]]\nname = \"x\"\naddress = \"192.0.2.300\"\nrole = \"router\"\n");
    assert_eq!((got[0].0, got[0].1.as_str()), (3, "device[0].address"));
    let got = issues("[netflow]\nexporters = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "netflow.exporters[1]");
    assert_eq!(got[0].0, 2);
    assert!(got[0].2.contains("neither a CIDR"));
}

#[test]
fn bad_collector_trap_probe_and_profile_settings_name_their_keys() {
    let got = issues(
        "[netflow]
interval = \"10ms\"
max-templates = 1
max-templates-per-exporter = 5
         [netflow.sampling]
nowhere = 10
         [traps.severity]
\"1.3.6.x\" = \"major\"
\"1.3.6.1\" = \"dire\"
         [probes]
interval = \"1s\"
count = 5
spacing = \"300ms\"
         [[device]]
name = \"enb\"
address = \"192.0.2.9\"
role = \"base-station\"
profile = \"ericsson\"
",
    );
    let keys: Vec<(usize, &str)> = got.iter().map(|i| (i.0, i.1.as_str())).collect();
    for want in [
        (2, "netflow.interval"),
        (3, "netflow.max-templates"),
        (6, "netflow.sampling.nowhere"),
        (8, "traps.severity.1.3.6.x"),
        (9, "traps.severity.1.3.6.1"),
        (11, "probes.interval"),
        (18, "device[0].profile"),
    ] {
        assert!(keys.contains(&want), "{want:?} missing from {got:?}");
    }
    assert_eq!(got.len(), 7, "{got:?}");
    let profile = got.iter().find(|i| i.1 == "device[0].profile").unwrap();
    assert!(
        profile.2.contains("known: base-station, router"),
        "{}",
        profile.2
    );
}

#[test]
fn threshold_levels_out_of_order_are_rejected() {
    let got = issues(
        "[thresholds.loss]\nwarning = 5.0\nminor = 2.0\nmajor = 6.0\n\n[thresholds.latency]\ndirection = \"falling\"\nwarning = 10.0\ncritical = 20.0\n",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1.as_str()), (3, "thresholds.loss.minor"));
    assert!(got[0].2.contains("must be above warning"), "{}", got[0].2);
    assert_eq!(
        (got[1].0, got[1].1.as_str()),
        (9, "thresholds.latency.critical")
    );
    assert!(got[1].2.contains("must be below warning"), "{}", got[1].2);
}

#[test]
fn credentials_are_checked_per_version() {
    let got = issues(
        "[snmp.credentials.a]\nversion = \"v2c\"\n\n[snmp.credentials.b]\nversion = \"v3\"\nuser = \"u\"\nauth-protocol = \"sha256\"\nauth-key = \"short\"\npriv-protocol = \"aes128\"\n",
    );
    let keys: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "snmp.credentials.a.community",
            "snmp.credentials.b.auth-key",
            "snmp.credentials.b.priv-key"
        ]
    );
    // A missing key is located at its table's header.
    assert_eq!(got[0].0, 1);
    assert_eq!(got[1].0, 8);
}

#[test]
fn secrets_come_from_files_relative_to_the_config_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("community"), "s3cret-community\n").unwrap();
    let file = dir.path().join("noctua.toml");
    std::fs::write(
        &file,
        "[snmp.credentials.lab]\nversion = \"v2c\"\ncommunity-file = \"community\"\n\n[mqtt]\npassword = \"hunter2-password\"\n",
    )
    .unwrap();
    let c = ConfigSource::Flag(file).load().unwrap();
    let cred = &c.snmp.credentials["lab"];
    assert_eq!(cred.community, Some(Secret::new("s3cret-community")));
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn secret_file_problems_are_errors() {
    let got = issues(
        "[http]\ntoken = \"a\"\ntoken-file = \"/nonexistent\"\n[mqtt]\npassword-file = \"/nonexistent/pw\"\n",
    );
    assert_eq!(got[0].1, "http.token");
    assert!(got[0].2.contains("not both"));
    assert_eq!((got[1].0, got[1].1.as_str()), (5, "mqtt.password-file"));
    assert!(got[1].2.contains("cannot read secret file /nonexistent/pw"));
}

#[test]
fn lookup_order_is_flag_env_system_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("noctua.toml");
    let flag = Some(PathBuf::from("/flag.toml"));
    let env = Some("/env.toml".into());
    assert_eq!(
        ConfigSource::locate(flag.clone(), env.clone(), &system),
        ConfigSource::Flag("/flag.toml".into())
    );
    assert_eq!(
        ConfigSource::locate(None, env, &system),
        ConfigSource::Env("/env.toml".into())
    );
    assert_eq!(
        ConfigSource::locate(None, None, &system),
        ConfigSource::Embedded
    );
    std::fs::write(&system, "").unwrap();
    assert_eq!(
        ConfigSource::locate(None, Some("".into()), &system),
        ConfigSource::System(system.clone())
    );
    // An empty file is a valid config: every section takes its default.
    assert_eq!(
        ConfigSource::System(system).load().unwrap(),
        Config::default()
    );
}

#[test]
fn missing_file_says_which() {
    let err = ConfigSource::Flag("/nonexistent/noctua.toml".into())
        .load()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read config /nonexistent/noctua.toml")
    );
}

#[test]
fn store_path_is_relative_to_systemd_state_directory() {
    let c = Config::default();
    assert_eq!(
        c.store.resolved_path(Some(Path::new("/var/lib/noctua"))),
        Path::new("/var/lib/noctua/noctua-data")
    );
    assert_eq!(c.store.resolved_path(None), Path::new("noctua-data"));
}

#[test]
fn mqtt_tls_files_must_exist_and_come_in_pairs() {
    let got = issues(
        "[mqtt]\nenabled = true\nca-file = \"/nonexistent/ca.pem\"\ncert-file = \"/nonexistent/c.pem\"\n",
    );
    let keys: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["mqtt.ca-file", "mqtt.cert-file", "mqtt.cert-file"],
        "{got:?}"
    );
    assert_eq!(got[0].0, 3);
    assert!(
        got[0].2.contains("cannot read /nonexistent/ca.pem"),
        "{}",
        got[0].2
    );
    assert!(
        got[2].2.contains("set both `cert-file` and `key-file`"),
        "{}",
        got[2].2
    );
    let got = issues("[mqtt]\nbroker = \"no-port\"\nenabled = true\n");
    assert_eq!((got[0].0, got[0].1.as_str()), (2, "mqtt.broker"));
}

/// `[snmp] profile-dir`: its profiles join the built-in ones (one named like a built-in replaces
/// it), devices may name them, and pollers read what they say.
#[test]
fn profiles_from_a_directory_are_added_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("vendor-enb.toml"),
        "if-mib = false\n\n[[metric]]\nname = \"prb_ul\"\noid = \"1.3.6.1.4.1.32473.20.1\"\ntable = true\nkind = \"gauge\"\nfeeds = \"utilisation\"\n",
    )
    .unwrap();
    std::fs::write(profiles.join("router.toml"), "if-mib = false\n").unwrap();
    std::fs::write(profiles.join("README.md"), "not a profile").unwrap();
    let text = "[snmp]\nprofile-dir = \"profiles\"\n[snmp.credentials.lab]\nversion = \"v2c\"\ncommunity = \"public\"\n\n[[device]]\nname = \"enb1\"\naddress = \"192.0.2.1\"\nrole = \"base-station\"\ncredentials = \"lab\"\nprofile = \"vendor-enb\"\n\n[[device]]\nname = \"r1\"\naddress = \"192.0.2.2\"\nrole = \"router\"\ncredentials = \"lab\"\n";
    let c = config::parse("noctua.toml", text, dir.path()).unwrap();
    let targets = noctua::ingest::snmp::Target::all(&c);
    let enb = targets.iter().find(|t| t.name == "enb1").unwrap();
    assert!(!enb.profile.if_mib);
    assert_eq!(enb.profile.metrics[0].name, "prb_ul");
    // The file replaced the built-in router profile.
    let r1 = targets.iter().find(|t| t.name == "r1").unwrap();
    assert!(!r1.profile.if_mib);
    // The built-in base-station profile is still there.
    assert!(c.snmp.profiles.get("base-station").is_some());
}

#[test]
fn a_bad_profile_file_names_its_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[snmp]\nprofile-dir = \"p\"\n";
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let file = dir.path().join("p/bad.toml");
    std::fs::write(
        &file,
        "[[metric]]\nname = \"a\"\noid = \"1.3.6.1.2\"\nkind = \"gauge\"\nfeeds = \"loss\"\n\n[[metric]]\nname = \"a\"\noid = \"enterprises.9\"\nkind = \"gauge\"\nfeeds = \"loss\"\n",
    )
    .unwrap();
    match config::parse("noctua.toml", text, dir.path()) {
        Err(ConfigError::Invalid { origin, issues }) => {
            assert_eq!(origin, file.display().to_string());
            let got: Vec<(usize, &str)> = issues.iter().map(|i| (i.line, i.key.as_str())).collect();
            assert_eq!(
                got,
                [(9, "metric[1].oid"), (8, "metric[1].name")],
                "{issues:?}"
            );
        }
        other => panic!("expected the profile's error, got {other:?}"),
    }
    // A field serde does not know is caught too, at its line.
    std::fs::write(&file, "if-mib = true\nwalk = 3\n").unwrap();
    match config::parse("noctua.toml", text, dir.path()) {
        Err(ConfigError::Invalid { origin, issues }) => {
            assert_eq!(origin, file.display().to_string());
            assert_eq!((issues[0].line, issues[0].key.as_str()), (2, "walk"));
        }
        other => panic!("expected the profile's error, got {other:?}"),
    }
    // A direction only on a KPI: a family's metric takes `[anomaly.direction]`'s.
    std::fs::write(
        &file,
        "[[metric]]\nname = \"a\"\noid = \"1.3.6.1.2\"\nkind = \"gauge\"\nfeeds = \"loss\"\ndirection = \"both\"\n",
    )
    .unwrap();
    match config::parse("noctua.toml", text, dir.path()) {
        Err(ConfigError::Invalid { issues, .. }) => {
            assert_eq!(
                (issues[0].line, issues[0].key.as_str()),
                (6, "metric[0].direction")
            );
            assert!(
                issues[0].message.contains("feeds = \"other\""),
                "{issues:?}"
            );
        }
        other => panic!("expected the profile's error, got {other:?}"),
    }
    // A profile's agent plan is held to the same ranges, in its own file.
    std::fs::write(
        &file,
        "[agent]\ncolumns-per-request = 4\nvalues-per-request = 0\n",
    )
    .unwrap();
    match config::parse("noctua.toml", text, dir.path()) {
        Err(ConfigError::Invalid { origin, issues }) => {
            assert_eq!(origin, file.display().to_string());
            assert_eq!(
                (issues[0].line, issues[0].key.as_str()),
                (3, "agent.values-per-request")
            );
            assert!(
                issues[0].message.contains("expected 1 to 500"),
                "{issues:?}"
            );
        }
        other => panic!("expected the profile's error, got {other:?}"),
    }
    // A directory that is not there is the config's own error, at `snmp.profile-dir`.
    let got = issues("[snmp]\nprofile-dir = \"/nonexistent/noctua-profiles\"\n");
    assert_eq!((got[0].0, got[0].1.as_str()), (2, "snmp.profile-dir"));
}

#[test]
fn http_limits_outside_their_range_name_key_line_and_range() {
    let got = issues(
        "[http]\nmax-connections = 5\nmax-stream-clients = 0\nheader-timeout = \"0s\"\nrequest-timeout = \"1h\"\n",
    );
    let expect = [
        (
            2,
            "http.max-connections",
            "5 is out of range: expected 16 to 60000",
        ),
        (
            3,
            "http.max-stream-clients",
            "0 is out of range: expected 1 to 60000",
        ),
        (
            4,
            "http.header-timeout",
            "0s is out of range: expected 1s to 5m",
        ),
        (
            5,
            "http.request-timeout",
            "1h is out of range: expected 1s to 10m",
        ),
    ];
    for (line, key, message) in expect {
        assert!(
            got.iter()
                .any(|i| i.0 == line && i.1 == key && i.2.starts_with(message)),
            "no ({line}, {key}, {message}) in {got:?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{got:?}");
}

#[test]
fn note_limits_outside_their_range_are_refused() {
    let got = issues("[alarms]\nmax-notes-per-fault = 0\nmax-note-bytes = 99999999\n");
    let keys: Vec<(usize, &str)> = got.iter().map(|i| (i.0, i.1.as_str())).collect();
    assert_eq!(
        keys,
        [
            (2, "alarms.max-notes-per-fault"),
            (3, "alarms.max-note-bytes")
        ],
        "{got:?}"
    );
    assert!(got[1].2.contains("expected 16 to 1048576"), "{got:?}");
}

#[test]
fn an_unreadable_secret_file_is_one_error_not_two() {
    let got = issues(
        "[snmp.credentials.lab]\nversion = \"v2c\"\ncommunity-file = \"/nonexistent/community\"\n\
         [snmp.credentials.core]\nversion = \"v3\"\nuser = \"noc\"\nauth-protocol = \"sha256\"\n\
         auth-key-file = \"/nonexistent/auth\"\n",
    );
    let keys: Vec<&str> = got.iter().map(|i| i.1.as_str()).collect();
    assert_eq!(
        keys,
        [
            "snmp.credentials.core.auth-key-file",
            "snmp.credentials.lab.community-file"
        ],
        "{got:?}"
    );
    assert!(
        got.iter().all(|i| i.2.contains("cannot read secret file")),
        "{got:?}"
    );
}

/// Every bounded key, just outside its range on each side it has: refused at its own line,
/// naming the key and the allowed range; durations with an example of how to write one.
#[test]
fn every_duration_and_size_key_is_refused_outside_its_range() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("store", "flush-interval", "\"0s\"", "expected 1ms to 10s"),
        ("store", "flush-interval", "\"1m\"", "expected 1ms to 10s"),
        ("pipeline", "sample-queue", "10", "expected 1024 to 4194304"),
        ("pipeline", "verdict-queue", "0", "expected 64 to 1048576"),
        ("mqtt", "keepalive", "\"1s\"", "expected 5s to 1h"),
        ("mqtt", "outbox-limit", "0", "expected 1 to 10000000"),
        ("alarms", "clear-hold-down", "\"2h\"", "expected 0s to 1h"),
        ("alarms", "reopen-window", "\"2days\"", "expected 0s to 1d"),
        ("alarms", "flap-window", "\"10s\"", "expected 1m to 1d"),
        ("alarms", "flap-threshold", "1", "expected 2 to 1000"),
        (
            "alarms",
            "event-clear-after",
            "\"1s\"",
            "expected 1m to 30d",
        ),
        ("alarms", "retention", "\"1h\"", "expected 1d to 3650d"),
        (
            "tiers.critical",
            "ack-within",
            "\"1s\"",
            "expected 1m to 30d",
        ),
        (
            "netflow",
            "receive-buffer-bytes",
            "1024",
            "expected 65536 to 1073741824",
        ),
        ("netflow", "interval", "\"100ms\"", "expected 1s to 1h"),
        ("netflow", "lateness", "\"2h\"", "expected 0s to 1h"),
        (
            "netflow",
            "max-templates-per-exporter",
            "0",
            "expected 1 to 65536",
        ),
        ("snmp", "interval", "\"0s\"", "expected 1s to 1d"),
        ("snmp", "timeout", "\"40s\"", "expected 100ms to 30s"),
        ("snmp", "retries", "11", "expected 0 to 10"),
        ("snmp", "max-in-flight", "0", "expected 1 to 10000"),
        ("snmp", "unreachable-after", "0", "expected 1 to 100"),
        ("snmp.agent", "columns-per-request", "0", "expected 1 to 64"),
        (
            "snmp.agent",
            "values-per-request",
            "1000",
            "expected 1 to 500",
        ),
        (
            "snmp.agent",
            "max-values-per-second",
            "1",
            "expected 10 to 1000000",
        ),
        (
            "snmp.agent",
            "discovery-interval",
            "\"10s\"",
            "expected 1m to 1d",
        ),
        ("probes", "count", "0", "expected 1 to 100"),
        ("probes", "spacing", "\"1ms\"", "expected 10ms to 10s"),
        ("probes", "timeout", "\"10ms\"", "expected 100ms to 1m"),
        ("anomaly", "season", "\"10m\"", "expected 1h to 366d"),
        ("anomaly", "buckets", "0", "expected 1 to 10080"),
        ("anomaly", "warm-up", "0", "expected 1 to 1000000"),
        ("actions", "max-concurrent", "0", "expected 1 to 1000"),
        (
            "actions",
            "approval-timeout",
            "\"10s\"",
            "expected 1m to 7d",
        ),
        ("actions", "breaker-failures", "0", "expected 1 to 1000"),
        ("forecast", "min-history", "\"2d\"", "expected 7d to 365d"),
        ("precursors", "window", "\"1d\"", "expected 4d to 30d"),
        ("precursors", "reboots", "1", "expected 2 to 1000"),
        ("precursors", "link-flaps", "0", "expected 2 to 10000"),
        ("forecast", "agree", "0", "expected 1 to 30"),
        (
            "forecast",
            "warning-within",
            "\"2h\"",
            "expected 1d to 365d",
        ),
        // The horizons nest: major within minor within warning.
        ("forecast", "minor-within", "\"60d\"", "expected 1d to 30d"),
    ];
    for (section, key, value, range) in cases {
        // The bad key on line 3, after a comment line, so the line is checked.
        let text = format!("[{section}]\n# the bad value is next\n{key} = {value}\n");
        let got = issues(&text);
        let want = format!("{section}.{key}");
        let hit = got.iter().find(|i| i.1 == want);
        let hit = hit.unwrap_or_else(|| panic!("{want} = {value} was not refused: {got:?}"));
        assert_eq!(hit.0, 3, "{want}: {got:?}");
        assert!(hit.2.contains(range), "{want} = {value}: {}", hit.2);
        assert!(hit.2.contains("is out of range"), "{}", hit.2);
        if value.starts_with('"') {
            assert!(hit.2.contains("such as \"30s\""), "{}", hit.2);
        }
    }
    let got = issues("[precursors]\nrise = 1.0\n");
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (2, "precursors.rise"),
        "{got:?}"
    );
    let got = issues("[forecast]\nfloor = 2.0\n");
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (2, "forecast.floor"),
        "{got:?}"
    );
    // Per device, the poll interval is held to the same floor.
    let got = issues(
        "[[device]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nrole = \"router\"\npoll-interval = \"0s\"\n",
    );
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (5, "device[0].poll-interval"),
        "{got:?}"
    );
    // A device's own agent plan too.
    let got = issues(
        "[[device]]\nname = \"r1\"\naddress = \"192.0.2.1\"\nrole = \"router\"\n[device.agent]\nmax-values-per-second = 0\n",
    );
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (6, "device[0].agent.max-values-per-second"),
        "{got:?}"
    );
    // And per action rule and step.
    let got = issues(
        "[[action]]\nname = \"n\"\non = [\"raised\"]\nper = \"1s\"\n[[action.step]]\nwait-clear = \"0s\"\n",
    );
    let keys: Vec<(usize, &str)> = got.iter().map(|i| (i.0, i.1.as_str())).collect();
    assert_eq!(
        keys,
        [(4, "action[0].per"), (6, "action[0].step[0].wait-clear")],
        "{got:?}"
    );
    assert!(got[1].2.contains("expected 1s to 7d"), "{got:?}");
}

#[test]
fn a_bad_duration_shows_how_durations_are_written() {
    let got = issues("[snmp]\ninterval = \"5 parsecs\"\n");
    assert!(
        got[0]
            .2
            .ends_with("expected a duration such as \"30s\", \"5m\" or \"1h30m\""),
        "{got:?}"
    );
}

#[test]
fn a_bad_anomaly_direction_names_key_line_and_the_choices() {
    let got = issues("[anomaly]\nwarning = 0.35\n\n[anomaly.direction]\nlatency = \"up\"\n");
    assert_eq!(got.len(), 1, "{got:?}");
    let (line, key, msg) = &got[0];
    assert_eq!((*line, key.as_str()), (5, "anomaly.direction.latency"));
    assert!(
        msg.contains("expected rising, falling, both or off"),
        "{msg}"
    );
    let c = config::parse(
        "t.toml",
        "[anomaly.direction]\nlatency = \"off\"\nkpi = \"Falling\"\n",
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.anomaly.direction.latency.0, None);
    assert_eq!(
        c.anomaly.direction.kpi.0,
        Some(noctua::model::Watch::Falling)
    );
}

#[test]
fn the_demo_config_is_the_embedded_default_with_the_demo_network_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "demo-token\n").unwrap();
    let setup = config::DemoSetup {
        store: PathBuf::from("/tmp/demo-store"),
        token_file: token,
        listen: "127.0.0.1:19999".parse().unwrap(),
    };
    let c = ConfigSource::Demo(setup).load().unwrap();
    let default = ConfigSource::Embedded.load().unwrap();
    assert_eq!(c.store.path, PathBuf::from("/tmp/demo-store"));
    assert_eq!(c.http.listen.port(), 19999);
    assert_eq!(
        c.http.token.as_ref().map(Secret::expose),
        Some("demo-token")
    );
    assert_eq!(c.devices.len(), 11);
    assert!(c.netflow.enabled);
    assert_eq!(c.alarms.clear_hold_down, std::time::Duration::from_secs(5));
    // What the overlay does not name stays the default's: the family levels; it adds only the
    // backhaul's rule.
    assert_eq!(c.thresholds.utilisation, default.thresholds.utilisation);
    assert_eq!(c.thresholds.latency, default.thresholds.latency);
    let names: Vec<&str> = c.thresholds.rule.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["backhaul"]);
    assert_eq!(c.tiers, default.tiers);
    assert_eq!(c.alarms.flap_threshold, default.alarms.flap_threshold);
    assert_eq!(c.netflow.max_templates, default.netflow.max_templates);
}

#[test]
fn bad_action_rules_name_their_key_and_line() {
    // Unknown executable, a program not on the allow-list, a step of two kinds, an unknown
    // site, a duplicate name, no trigger, a URL that is not HTTP, an OID not on the
    // allow-list: each at its own line.
    let text = r#"
[[device]]
name = "r1"
address = "192.0.2.1"
role = "router"
site = "east"

[actions]
enabled = true
allow-exec = ["/nonexistent/bounce", "relative/tool"]

[[action]]
name = "bounce"
on = ["raised"]
site = "nowhere"

[[action.step]]
exec = ["/bin/sh", "-c", "reboot"]

[[action.step]]
exec = ["/bin/true", "{device}", "{ifindex}"]

[[action.step]]
wait-clear = "5m"
webhook = "http://127.0.0.1:9/hook"

[[action]]
name = "bounce"
on = []

[[action.step]]
webhook = "ftp://example.net/{device}"

[[action.step]]
snmp-set = "1.3.6.1.2.1.1.5.{ifindex}"
value = "renamed"
"#;
    let found = issues(text);
    let at = |line: usize, key: &str, says: &str| {
        assert!(
            found
                .iter()
                .any(|(l, k, m)| *l == line && k == key && m.contains(says)),
            "expected line {line} `{key}` saying {says:?} in {found:#?}"
        );
    };
    at(
        10,
        "actions.allow-exec[0]",
        "unknown executable /nonexistent/bounce",
    );
    at(10, "actions.allow-exec[1]", "expected an absolute path");
    at(15, "action[0].site", "unknown site `nowhere`");
    at(
        18,
        "action[0].step[0].exec",
        "unknown executable `/bin/sh`: not on [actions] allow-exec",
    );
    at(
        23,
        "action[0].step[2]",
        "exactly one of `exec`, `webhook`, `snmp-set`, `notify` or `wait-clear`",
    );
    at(28, "action[1].name", "duplicate rule name `bounce`");
    at(29, "action[1].on", "expected at least one of raised");
    at(32, "action[1].step[0].webhook", "http:// or https://");
    at(
        35,
        "action[1].step[1].snmp-set",
        "OID `1.3.6.1.2.1.1.5` is not under [actions] allow-oids",
    );
}

#[test]
fn an_action_template_naming_no_field_is_refused_with_the_fields_there_are() {
    let text = "[actions]\nallow-exec = [\"/bin/true\"]\n\n[[action]]\nname = \"n\"\non = [\"raised\"]\n\n[[action.step]]\nexec = [\"/bin/true\", \"{ifidx}\"]\n";
    let found = issues(text);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, key, message) = &found[0];
    assert_eq!((*line, key.as_str()), (9, "action[0].step[0].exec"));
    assert!(
        message.contains("unknown field `{ifidx}`") && message.contains("ifindex"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_in_an_action_rule_is_named_with_its_line() {
    let found = issues("[[action]]\nname = \"n\"\non = [\"raised\"]\nshell = \"reboot\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 4, "{found:?}");
    assert!(found[0].2.contains("unknown field `shell`"), "{found:?}");
}

#[test]
fn actions_are_off_and_dry_run_unless_said_otherwise() {
    let c = config::parse(
        "test.toml",
        "[[action]]\nname = \"n\"\non = [\"raised\"]\n[[action.step]]\nwait-clear = \"1m\"\n",
        Path::new("."),
    )
    .unwrap();
    assert!(!c.actions.enabled);
    assert_eq!(c.actions_rules[0].mode, noctua::model::Mode::DryRun);
    assert!(c.actions_rules[0].once_per_fault);
    assert!(!c.actions_rules[0].require_approval);
}

#[test]
fn a_cluster_member_needs_a_name_servers_enough_heartbeats_and_readable_files() {
    let got = issues(
        "[cluster]\nenabled = true\nnats = []\nname = \"noc a\"\nheartbeat = \"5s\"\n\
         dead-after = \"10s\"\nreplicas = 7\ncredentials-file = \"/nonexistent/nats.creds\"\n\
         key-file = \"/nonexistent/k.pem\"\n",
    );
    let mut found: Vec<(usize, &str)> = got.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    found.sort();
    assert_eq!(
        found,
        [
            // A key without its certificate: the absent key is placed at its section.
            (1, "cluster.cert-file"),
            (3, "cluster.nats"),
            (4, "cluster.name"),
            (6, "cluster.dead-after"),
            (7, "cluster.replicas"),
            (8, "cluster.credentials-file"),
            (9, "cluster.key-file"),
        ],
        "{got:?}"
    );
}

#[test]
fn a_disabled_cluster_section_asks_for_nothing() {
    let c = config::parse("test.toml", "[cluster]\nreplicas = 3\n", Path::new(".")).unwrap();
    assert!(!c.cluster.enabled);
}
