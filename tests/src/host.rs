//! A `sluice serve` process for a test: its own config, port and pipelines, killed on drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::artifacts::{plugins_dir, sluice_bin};

/// A running host.
pub struct SluiceHost {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for SluiceHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SluiceHost {
    /// Starts `sluice serve` with `extra_config` (TOML appended to a config that sets the
    /// listen address and the built plugins), the pipeline files given as (name, TOML), and
    /// `env`; waits until `/healthz` answers.
    ///
    /// # Panics
    /// When the host does not come up within 60 s; its stderr is in the panic message.
    pub async fn start(extra_config: &str, pipelines: &[(&str, String)], env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("host temp dir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let pipelines_dir = dir.path().join("pipelines");
        std::fs::create_dir_all(&pipelines_dir).expect("pipelines dir");
        for (name, text) in pipelines {
            std::fs::write(pipelines_dir.join(format!("{name}.toml")), text).expect("write pipeline");
        }
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n[pipelines]\ndir = \"{}\"\n{extra_config}",
            plugins_dir().display(),
            dir.path().join("cache").display(),
            pipelines_dir.display(),
        );
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("host.log")).expect("host log");
        let child = Command::new(sluice_bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sluice serve");
        let host = SluiceHost { url: format!("http://127.0.0.1:{port}"), child, _dir: dir };
        host.wait_healthy().await;
        host
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(response) = client.get(format!("{}/healthz", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("sluice serve did not become healthy:\n{}", self.log());
    }

    /// What the host has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("host.log")).unwrap_or_default()
    }

    /// The directory holding this host's config, pipelines and log.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}
