//! The shipped unit passes `systemd-analyze verify` without a warning and keeps its hardening.
//! `scripts/test.sh` installs systemd when `systemd-analyze` is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

use std::process::Command;

const UNIT: &str = include_str!("../systemd/noctua.service");

#[test]
fn unit_verifies_cleanly() {
    // verify checks that ExecStart exists, so point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("noctua.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/noctua", env!("CARGO_BIN_EXE_noctua")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze must be installed (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let unit_name = unit.display().to_string();
    let about_unit: Vec<&str> = text.lines().filter(|l| l.contains(&unit_name)).collect();
    assert!(about_unit.is_empty(), "warnings: {about_unit:?}");
}

#[test]
fn unit_keeps_the_required_settings() {
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "StartLimitIntervalSec=0",
        "LimitNOFILE=65536",
        "WatchdogSec=30s",
        "DynamicUser=yes",
        "StateDirectory=noctua",
        "ConfigurationDirectory=noctua",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW",
    ] {
        assert!(UNIT.lines().any(|l| l == line), "missing `{line}`");
    }
}
