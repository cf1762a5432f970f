//! Helpers shared by the tests that run the built binary.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_noctua");

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let file = dir.join("noctua.toml");
    let store = dir.join("store");
    std::fs::write(
        &file,
        format!(
            "[store]\npath = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n{extra}",
            store.display()
        ),
    )
    .unwrap();
    file
}

pub fn start(dir: &Path, config: &Path, port: u16) -> Daemon {
    let log = dir.join(format!(
        "daemon-{}.log",
        Instant::now().elapsed().as_nanos()
    ));
    let child = Command::new(BIN)
        .args(["--log-level", "info", "run", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = Daemon { child, port, log };
    wait_until(&mut d, |d| {
        get(d.port, "/healthz").is_some_and(|(s, _)| s == 200)
    });
    d
}

/// Polls `ready` for up to 20 s (a slow CI machine), failing with the daemon's log.
pub fn wait_until(d: &mut Daemon, mut ready: impl FnMut(&mut Daemon) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready(d) {
            return;
        }
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("daemon exited with {status}:\n{}", log(d));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("condition not reached; daemon log:\n{}", log(d));
}

pub fn log(d: &Daemon) -> String {
    std::fs::read_to_string(&d.log).unwrap_or_default()
}

/// A minimal HTTP/1.0 GET.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, &[], "")
}

/// A minimal HTTP/1.0 request, to keep an HTTP client out of the test dependencies.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

pub fn signal(d: &Daemon, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(d.child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

pub fn wait_exit(d: &mut Daemon, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {limit:?} after the signal:\n{}",
            log(d)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
