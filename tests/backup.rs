//! `noctua store backup / restore / check`: from a stopped daemon's store and from a running
//! daemon, restored into a new store that answers like the old one; a damaged file restores
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn noctua(args: &[&str], config: &Path) -> Output {
    Command::new(BIN)
        .args(["--log-level", "warn"])
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("NOCTUA_SERVER")
        .env_remove("NOCTUA_TOKEN")
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap()
}

fn config_for(dir: &Path, store: &Path, port: u16) -> std::path::PathBuf {
    let file = dir.join(format!(
        "{}.toml",
        store.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(
        &file,
        format!(
            "[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"t0ken-for-tests\"\n",
            store.display()
        ),
    )
    .unwrap();
    file
}

fn faults(config: &Path) -> serde_json::Value {
    let out = noctua(&["faults", "list", "--format", "json"], config);
    assert_success(&out, "faults list");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_stopped_stores_backup_restores_into_a_store_that_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let port = peer_port();
    let original = config_for(dir.path(), &dir.path().join("store"), port);
    let file = dir.path().join("noctua.backup");
    let f = file.to_str().unwrap();
    assert_success(&noctua(&["store", "backup", f], &original), "store backup");
    let out = noctua(&["store", "check"], &original);
    assert_success(&out, "store check");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "store ok\n");

    let copy = config_for(dir.path(), &dir.path().join("restored"), port);
    let out = noctua(&["store", "restore", f], &copy);
    assert_success(&out, "store restore");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored"),
        "{out:?}"
    );
    assert_eq!(faults(&copy), faults(&original));
    assert_success(&noctua(&["store", "check"], &copy), "check of the copy");
    // A restore never overwrites.
    let again = noctua(&["store", "restore", f], &copy);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a store"));

    // A file cut short restores nothing.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let target = dir.path().join("from-cut");
    let broken = config_for(dir.path(), &target, port);
    let out = noctua(&["store", "restore", cut.to_str().unwrap()], &broken);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a whole noctua backup"),
        "{out:?}"
    );
    assert!(
        !noctua::store::Store::exists(&target),
        "a damaged backup left a store behind"
    );
}

#[test]
fn a_running_daemon_is_backed_up_through_its_api() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    let port = peer_port();
    let config = config_for(dir.path(), &dir.path().join("store"), port);
    let d = start(dir.path(), &config);
    act(d.port, "t0ken-for-tests", "1", "ack");
    let file = dir.path().join("live.backup");
    let out = noctua(&["store", "backup", file.to_str().unwrap()], &config);
    assert_success(&out, "store backup through the API");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("asking it at"),
        "{out:?}"
    );
    let out = noctua(&["store", "check"], &config);
    assert_success(&out, "store check through the API");
    let live = faults(&config);

    let copy = config_for(dir.path(), &dir.path().join("restored"), port + 1);
    assert_success(
        &noctua(&["store", "restore", file.to_str().unwrap()], &copy),
        "store restore",
    );
    // The copy has what the daemon had, the ack included.
    assert_eq!(faults(&copy), live);
    assert!(
        live.as_array()
            .unwrap()
            .iter()
            .any(|f| f["ackedBy"] == "maria"),
        "{live}"
    );
}

/// A value that does not decode is reported by name of its tree, and `store check` fails.
#[test]
fn store_check_reports_what_does_not_decode() {
    let dir = tempfile::tempdir().unwrap();
    store_with_alarms(dir.path());
    {
        let store = noctua::store::Store::open(&dir.path().join("store")).unwrap();
        let bogus = store
            .put(
                noctua::store::Tree::Faults,
                &999u64.to_be_bytes(),
                &"not a fault",
            )
            .unwrap();
        let _ = bogus;
        store.flush().unwrap();
    }
    let config = config_for(dir.path(), &dir.path().join("store"), peer_port());
    let out = noctua(&["store", "check"], &config);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 values in faults do not decode"), "{err}");
}
