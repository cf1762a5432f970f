//! Helpers shared by the tests that run the built binary.
#![allow(dead_code)] // each test binary uses its own subset

pub mod browser;
pub mod nats;
pub mod snmpd;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_noctua");

pub struct Daemon {
    pub child: Child,
    /// The HTTP port it bound.
    pub port: u16,
    /// Every address it bound, as its ready file says.
    pub bound: serde_json::Value,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port for a peer (mosquitto, snmpd) that cannot bind port 0 and say which it got; the peer
/// binds it at once. The daemon's own listeners bind port 0 and say theirs ([`start`]).
pub fn peer_port() -> u16 {
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

/// Starts the daemon on `config` and waits until it is ready: its ready file (written once
/// every socket is bound) gives the ports, so a config may listen on port 0.
pub fn start(dir: &Path, config: &Path) -> Daemon {
    start_with(dir, config, &[])
}

/// [`start`] with environment variables set (`STATE_DIRECTORY`, as systemd would).
pub fn start_with(dir: &Path, config: &Path, env: &[(&str, &Path)]) -> Daemon {
    let args = [
        std::ffi::OsStr::new("run"),
        "--config".as_ref(),
        config.as_ref(),
    ];
    launch(dir, &args, env)
}

/// Starts the binary with `args` (`run ...` or `demo ...`) and `--ready-file`, and waits until
/// it is ready.
pub fn launch(dir: &Path, args: &[&std::ffi::OsStr], env: &[(&str, &Path)]) -> Daemon {
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("daemon-{n}.log"));
    let ready = dir.join(format!("ready-{n}.json"));
    let child = Command::new(BIN)
        .args(["--log-level", "info"])
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = Daemon {
        child,
        port: 0,
        bound: serde_json::Value::Null,
        log,
    };
    wait_until(&mut d, |_| ready.exists());
    let text = std::fs::read_to_string(&ready).unwrap();
    d.bound = serde_json::from_str(&text).unwrap();
    d.port = bound_port(&d.bound["http"]);
    d
}

/// The port of an address in a ready file (`"127.0.0.1:41234"`).
pub fn bound_port(addr: &serde_json::Value) -> u16 {
    let addr = addr.as_str().unwrap_or_default();
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// Daemons started by this test binary, to name their logs and ready files apart.
static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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

/// The value of one series of a running daemon's /metrics, named with its labels as the
/// exposition writes them; `None` if absent or the daemon does not answer.
pub fn metric(port: u16, series: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Asserts that a finished command succeeded; if not, says which (`what`) and shows its stderr.
pub fn assert_success(out: &std::process::Output, what: impl std::fmt::Display) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert!(kill(pid, sig), "kill({pid}, {sig}) failed");
}

/// kill(2): the tests' one unsafe call (for SIGTERM, SIGHUP and SIGKILL to their own peers).
#[allow(unsafe_code)]
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) takes plain integers; no memory is involved.
    unsafe { libc::kill(pid, sig) == 0 }
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

/// A store with two active alarms raised a minute ago, replayed by the binary itself.
pub fn store_with_alarms(dir: &Path) {
    let ago = |s: i64| {
        noctua::model::Timestamp::from_millis(
            noctua::model::Timestamp::now().as_millis() - s * 1000,
        )
    };
    let scenario = dir.join("s.jsonl");
    std::fs::write(
        &scenario,
        format!(
            "{{\"at\":\"{}\",\"device\":\"bh-r1\",\"object\":\"ifIndex=3\",\"metric\":\"utilisation_in_pct\",\"value\":92.0}}\n\
             {{\"at\":\"{}\",\"device\":\"enb-1042\",\"event\":\"unreachable\"}}\n",
            ago(70),
            ago(60)
        ),
    )
    .unwrap();
    replay_into_store(dir, &scenario);
}

/// `noctua replay SCENARIO --store DIR/store`, which must succeed.
pub fn replay_into_store(dir: &Path, scenario: &Path) {
    let out = Command::new(BIN)
        .args(["--log-level", "warn", "replay"])
        .arg(scenario)
        .arg("--store")
        .arg(dir.join("store"))
        .output()
        .unwrap();
    assert_success(&out, "noctua replay");
}

/// A Server-Sent Events client over a plain socket (HTTP/1.0, so the body is not chunked).
pub struct SseClient {
    reader: std::io::BufReader<TcpStream>,
}

/// One SSE event: name, id, data.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<u64>,
    pub data: String,
}

impl SseClient {
    pub fn connect(port: u16, path: &str, last_event_id: Option<u64>) -> Self {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{resume}\r\n"
        )
        .unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut line = String::new();
        use std::io::BufRead;
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("HTTP/1.") && line.contains(" 200 "),
            "{line}"
        );
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        Self { reader }
    }

    /// The next event (keep-alive comments skipped), or `None` if none comes within `wait`.
    pub fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        use std::io::BufRead;
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut e = SseEvent {
            event: "message".into(),
            id: None,
            data: String::new(),
        };
        let mut seen = false;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if seen {
                    return Some(e);
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("event:") {
                e.event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("id:") {
                e.id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                e.data.push_str(v.trim_start());
            } else {
                continue; // a comment (keep-alive)
            }
            seen = true;
        }
    }
}

/// `POST /api/v1/alarms/{id}/{action}` as maria with `token`; the action must succeed.
pub fn act(port: u16, token: &str, id: &str, action: &str) {
    let auth = format!("Bearer {token}");
    let (status, body) = request(
        port,
        "POST",
        &format!("/api/v1/alarms/{id}/{action}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"user":"maria"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{action}: {body}");
}

/// The CLI against the daemon at `port`, with the token in `dir/token`.
pub fn cli(dir: &Path, port: u16, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--server")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .output()
        .unwrap()
}

/// Starts `command` with its stdout read line by line on a thread of its own, for a test to
/// wait on with a timeout (a follower like `alarms tail` never ends by itself).
pub fn spawn_lines(command: &mut Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, lines)
}

/// What a command printed, stdout then stderr.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
