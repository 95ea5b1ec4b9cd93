//! A `sluice serve` process for a test: its own config, port and pipelines, killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::artifacts::{plugins_dir, sluice_bin};

/// A running host.
pub struct SluiceHost {
    pub url: String,
    child: Option<Child>,
    config_path: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Drop for SluiceHost {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a host runs with beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct HostSpec<'a> {
    /// TOML appended to the generated config (listen address, plugins, pipelines).
    pub extra_config: &'a str,
    /// Pipeline files as (name, TOML).
    pub pipelines: &'a [(&'a str, String)],
    pub env: &'a [(&'a str, String)],
    /// A plugins directory instead of the built plugins.
    pub plugins_dir: Option<&'a Path>,
}

impl SluiceHost {
    /// Starts `sluice serve` with `extra_config` (TOML appended to a config that sets the
    /// listen address and the built plugins), the pipeline files given as (name, TOML), and
    /// `env`; waits until `/healthz` answers.
    ///
    /// # Panics
    /// When the host does not come up within 60 s; its stderr is in the panic message.
    pub async fn start(extra_config: &str, pipelines: &[(&str, String)], env: &[(&str, String)]) -> Self {
        Self::start_with(HostSpec { extra_config, pipelines, env, plugins_dir: None }).await
    }

    /// Starts a host as `spec` says; see [`SluiceHost::start`].
    ///
    /// # Panics
    /// When the host does not come up within 60 s.
    pub async fn start_with(spec: HostSpec<'_>) -> Self {
        let dir = tempfile::tempdir().expect("host temp dir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let pipelines_dir = dir.path().join("pipelines");
        std::fs::create_dir_all(&pipelines_dir).expect("pipelines dir");
        for (name, text) in spec.pipelines {
            std::fs::write(pipelines_dir.join(format!("{name}.toml")), text).expect("write pipeline");
        }
        let plugins = spec.plugins_dir.map_or_else(plugins_dir, Path::to_path_buf);
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_timeout_ms = 20000\n[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n[pipelines]\ndir = \"{}\"\n{}",
            plugins.display(),
            dir.path().join("cache").display(),
            pipelines_dir.display(),
            spec.extra_config,
        );
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let env = spec.env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let mut host =
            SluiceHost { url: format!("http://127.0.0.1:{port}"), child: None, config_path, env, dir };
        host.spawn();
        host.wait_healthy().await;
        host
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("host.log"))
            .expect("host log");
        let child = Command::new(sluice_bin())
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .envs(self.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sluice serve");
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for its exit code.
    ///
    /// # Panics
    /// When it does not exit within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            assert!(started.elapsed() < timeout, "sluice serve did not exit after SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the process again with the same config (after [`SluiceHost::kill`]).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_healthy().await;
    }

    /// Runs another `sluice` command with this host's config (`--config` is added).
    pub fn cli(&self, args: &[&str]) -> Output {
        let (command, rest) = args.split_first().expect("a subcommand");
        Command::new(sluice_bin())
            .arg(command)
            .args(rest)
            .arg("--config")
            .arg(&self.config_path)
            .envs(self.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .output()
            .expect("run sluice")
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

    /// The values of metric `name` on `/metrics` now, each with its labels as written there
    /// (`group="g",member="0"`); empty when the host does not answer.
    pub async fn metric(&self, name: &str) -> Vec<(String, f64)> {
        let Ok(response) = reqwest::get(format!("{}/metrics", self.url)).await else { return Vec::new() };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let (labels, value) = match rest.strip_prefix('{') {
                    Some(labelled) => labelled.split_once("} ")?,
                    None => ("", rest.strip_prefix(' ')?),
                };
                Some((labels.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// The sum of metric `name` over the label sets that contain `labels` (for example
    /// `pipeline="events"`).
    pub async fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        self.metric(name).await.iter().filter(|(set, _)| set.contains(labels)).map(|(_, value)| value).sum()
    }

    /// What the host has logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    /// The process id, while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The directory holding this host's config, pipelines and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
