//! net-snmp's snmpd for the tests and the poller benchmark: run as `nobody` on a loopback high
//! port, serving IF-MIB rows from a state file through the `pass_persist` script
//! `tests/snmp/if_mib.py`, so counters move, wrap and reset on demand; community `private`
//! may SET ifAdminStatus.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running snmpd; stopped when dropped.
pub struct Snmpd {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Snmpd {
    /// snmpd with the IF-MIB from `state.json` in `dir` (which nobody must be able to read).
    pub fn start(dir: &Path, port: u16) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snmp/if_mib.py");
        std::fs::copy(&script, dir.join("if_mib.py")).unwrap();
        let state = dir.join("state.json");
        let py = dir.join("if_mib.py");
        std::fs::write(
            dir.join("snmpd.conf"),
            format!(
                "rocommunity public 127.0.0.1\n\
                 rwcommunity private 127.0.0.1\n\
                 createUser noctua SHA-256 \"authpass123\" AES \"privpass123\"\n\
                 rouser noctua priv\n\
                 pass_persist -p 10 .1.3.6.1.2.1.2.2 /usr/bin/python3 {py} {state} iftable\n\
                 pass_persist -p 10 .1.3.6.1.2.1.31.1.1 /usr/bin/python3 {py} {state} ifxtable\n\
                 pass_persist -p 10 .1.3.6.1.4.1.32473 /usr/bin/python3 {py} {state} raw\n",
                py = py.display(),
                state = state.display()
            ),
        )
        .unwrap();
        let mut s = Self {
            dir: dir.to_owned(),
            port,
            child: None,
        };
        s.run();
        s
    }

    pub fn run(&mut self) {
        let chown = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let child = Command::new("runuser")
            .args(["-u", "nobody", "--", "env", "MIBS="])
            // Not the config's directory: snmpd rewrites `snmpd.conf` there on shutdown.
            .arg(format!(
                "SNMP_PERSISTENT_DIR={}",
                self.dir.join("persist").display()
            ))
            .args(["/usr/sbin/snmpd", "-f", "-C", "-p"])
            .arg(self.dir.join("snmpd.pid"))
            .arg("-c")
            .arg(self.dir.join("snmpd.conf"))
            .arg("-Lf")
            .arg(self.dir.join("snmpd.log"))
            .arg(format!("udp:127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpd (scripts/setup-peers.sh installs it)");
        self.child = Some(child);
        // Ready once it answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = Command::new("snmpget")
                .args(["-v2c", "-c", "public", "-t", "0.2", "-r", "0", "-On"])
                .arg(format!("127.0.0.1:{}", self.port))
                .arg(".1.3.6.1.2.1.1.3.0")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "snmpd did not answer:\n{}",
            std::fs::read_to_string(self.dir.join("snmpd.log")).unwrap_or_default()
        );
    }

    /// Stops snmpd itself (runuser stays its parent, so killing the child we spawned is not
    /// enough) and waits until it is gone, so a restart really starts a new agent.
    pub fn stop(&mut self) {
        let pidfile = self.dir.join("snmpd.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            super::kill(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(&pidfile);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn state(&self, value: serde_json::Value) {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, value.to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory nobody can enter (tempdirs are 0700).
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("chmod")
        .arg("0755")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
