//! A full disk, on a small tmpfs: the store fails once (counted, logged once), writers are
//! answered at once, the daemon stops with exit status 75 for its service manager to restart
//! it, and a restart once there is space carries on with everything that was committed.
//!
//! Mounting needs root (CI runs as root); elsewhere these tests say so and do nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use noctua::store::{Store, StoreError, Tree};
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";

/// A tmpfs of `size` mounted under `dir`, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` (with a message) where mounting is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let path = dir.join("small-disk");
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { path }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command: {e}");
                None
            }
        }
    }

    /// Fills what is left with one file, until the disk refuses a byte more.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = [0u8; 4096];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        // A page-sized remainder may still fit byte by byte.
        while f.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_failed_write_fails_the_store_once_counted_and_writers_are_answered_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), "2m") else {
        return;
    };
    let store = Store::open(&disk.path.join("store")).unwrap();
    let errors = prometheus::IntCounter::new("errors", "test").unwrap();
    store.count_errors_in(errors.clone());
    store.put(Tree::Meta, b"before", &1u64).unwrap();
    store.flush().unwrap();
    disk.fill();

    let value = vec![7u8; 4000];
    let mut refused = None;
    for i in 0..1000u64 {
        let ticket = store.put(Tree::Meta, &i.to_be_bytes(), &value).unwrap();
        if let Err(e) = store.flush() {
            refused = Some((ticket, e));
            break;
        }
    }
    let (unflushed, refused) = refused.expect("a full disk refused nothing");
    assert!(matches!(refused, StoreError::Sled { .. }), "{refused}");
    assert!(store.failure().is_some());
    assert!(store.failed().is_cancelled());
    assert_eq!(errors.get(), 1, "one error so far");

    // From now on writes are refused without asking sled, and a writer waiting for a flush
    // is answered instead of waiting for ever.
    let again = store.put(Tree::Meta, b"after", &2u64).unwrap_err();
    assert!(matches!(again, StoreError::Failed { .. }), "{again}");
    assert!(store.remove(Tree::Meta, b"before").is_err());
    assert_eq!(errors.get(), 1, "refused without asking sled");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let waited = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), store.durable(unflushed)).await
    });
    assert!(
        matches!(waited, Ok(Err(StoreError::Failed { .. }))),
        "{waited:?}"
    );
    // Reads still work: the engineer's CLI can look while the daemon restarts.
    assert_eq!(store.get::<u64>(Tree::Meta, b"before").unwrap(), Some(1));
}

#[test]
fn a_full_disk_stops_the_daemon_for_a_restart_that_keeps_everything_committed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), "4m") else {
        return;
    };
    store_with_alarms(&disk.path);
    let config = dir.path().join("noctua.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n",
            disk.path.join("store").display()
        ),
    )
    .unwrap();
    let mut d = start(dir.path(), &config);
    let alarms = active(d.port);
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    let util = alarms[0].clone();
    act(d.port, TOKEN, &util, "ack");

    let filler = disk.fill();
    // Unack and ack again until one needs a page the disk does not have.
    let mut refused = None;
    for i in 0..500 {
        let action = if i % 2 == 0 { "unack" } else { "ack" };
        let answer = post(d.port, &util, action);
        match answer {
            Some((200, _)) => {}
            other => {
                refused = Some((i, other));
                break;
            }
        }
    }
    let (attempt, answer) = refused.expect("a full disk refused nothing");
    let (status, body) = answer.expect("the write was not answered");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store"), "{body}");
    // Not ready from the first failure on (or already gone).
    assert!(get(d.port, "/readyz").is_none_or(|(s, _)| s == 503));

    let status = wait_exit(&mut d, Duration::from_secs(20));
    assert_eq!(status.code(), Some(75), "{}", log(&d));
    let text = log(&d);
    let errors = text.lines().filter(|l| l.contains("ERROR")).count();
    assert!((1..=3).contains(&errors), "{errors} ERROR lines:\n{text}");
    assert!(text.contains("store write failed"), "{text}");

    // Space again: the restart has every alarm, and the last state the API confirmed.
    std::fs::remove_file(filler).unwrap();
    let d = start(dir.path(), &config);
    assert_eq!(active(d.port), alarms);
    let (_, body) = get(d.port, &format!("/api/v1/alarms/{util}")).unwrap();
    let shown: Value = serde_json::from_str(&body).unwrap();
    let alarm = &shown["alarm"];
    // Attempts 0, 2, 4… unacked and 1, 3… acked; the refused one did not happen.
    let acked = attempt % 2 == 0;
    assert_eq!(
        alarm["ackState"] == "ACKNOWLEDGED",
        acked,
        "attempt {attempt} was refused: {alarm}"
    );
    assert_eq!(
        post(d.port, &util, if acked { "unack" } else { "ack" })
            .unwrap()
            .0,
        200
    );
}

fn active(port: u16) -> Vec<String> {
    let (_, body) = get(port, "/api/v1/alarms").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alarmId"].as_str().unwrap().to_owned())
        .collect()
}

/// An ack, unack or clear by maria; an ack carries a long note, so the store fills fast.
fn post(port: u16, alarm: &str, action: &str) -> Option<(u16, String)> {
    let auth = format!("Bearer {TOKEN}");
    let body = match action {
        "ack" => serde_json::json!({ "user": "maria", "note": "n".repeat(15_000) }),
        _ => serde_json::json!({ "user": "maria" }),
    };
    request(
        port,
        "POST",
        &format!("/api/v1/alarms/{alarm}/{action}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
}
