//! The HTTP server under a slowloris: header timeouts give slow clients' slots back, a cap
//! bounds the connections, and past it a reserve keeps /healthz and /metrics answering; the
//! live stream has its own cap.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or bench reports

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Same as the server's reserve (`http.rs`): connections served past the cap.
const RESERVE: usize = 32;

/// A client that sends a request line and one header, then nothing: it holds its slot until
/// the server's header timeout.
fn slow_client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /api/v1/alarms HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    s
}

/// Whether the server has closed `s` (a read sees EOF or a reset rather than waiting).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => true, // an answer (408/503) and then the close
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn a_slowloris_cannot_blind_health_and_metrics_and_slow_clients_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        0,
        "max-connections = 16\nheader-timeout = \"6s\"\n",
    );
    let d = start(dir.path(), &config);
    let port = d.port;
    let flood_started = Instant::now();
    // The cap, the reserve and more: the last ones find no slot at all.
    let mut slow: Vec<TcpStream> = (0..16 + RESERVE + 20).map(|_| slow_client(port)).collect();

    // Health answers while the API lane is still held by slow clients: the reserve's short
    // header timeout frees it long before theirs.
    let mut healthy = None;
    while flood_started.elapsed() < Duration::from_secs(5) {
        if let Some((200, body)) = get(port, "/healthz") {
            healthy = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(healthy.as_deref(), Some("ok\n"), "healthz never answered");
    assert!(
        !closed_by_server(&mut slow[0]),
        "the first slow client was already cut; the test did not hold the API lane"
    );
    let api = get(port, "/api/v1/alarms").unwrap();
    assert_eq!(api.0, 503, "the API is served in the reserve: {api:?}");
    assert!(api.1.contains("too many connections"), "{}", api.1);
    let refused = metric(
        port,
        "noctua_http_connections_refused_total{reason=\"full\"}",
    );
    assert!(refused.unwrap() >= 1.0, "{refused:?}");
    assert_eq!(
        metric(port, "noctua_http_connections{lane=\"api\"}"),
        Some(16.0)
    );

    // Past the header timeout every slow client is cut and the API is back.
    let mut answered = None;
    while flood_started.elapsed() < Duration::from_secs(20) {
        if let Some((200, body)) = get(port, "/api/v1/alarms") {
            answered = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(answered.is_some(), "the API did not come back");
    assert!(
        slow.iter_mut().all(closed_by_server),
        "a slow client is still held"
    );
}

#[test]
fn live_streams_past_their_cap_are_refused_and_a_freed_slot_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 0, "max-stream-clients = 2\n");
    let d = start(dir.path(), &config);
    let first = SseClient::connect(d.port, "/api/v1/alarms/stream", None);
    let _second = SseClient::connect(d.port, "/api/v1/alarms/stream", None);
    let third = get(d.port, "/api/v1/alarms/stream").unwrap();
    assert_eq!(third.0, 503, "{third:?}");
    assert!(third.1.contains("max-stream-clients"), "{}", third.1);
    drop(first);
    // The slot comes back once the server notices the client left (at its next write, a
    // keep-alive comment at most 15 s away, or at once on a reset).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /api/v1/alarms/stream HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut line = [0u8; 12];
        s.read_exact(&mut line).unwrap();
        if &line[9..12] == b"200" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed stream slot never came back"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
