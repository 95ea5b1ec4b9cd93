//! Built artifacts the tests run: the `sluice` binary and the plugin components.
//!
//! Plugins are built for `wasm32-wasip2` by `scripts/build-plugins.sh` (which `scripts/test.sh`
//! runs first); a missing one fails the test with that instruction rather than skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Where `scripts/build-plugins.sh` put the components (`SLUICE_TEST_PLUGINS` overrides).
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("SLUICE_TEST_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".run/plugins"))
}

/// The component of plugin `name`, e.g. `mail-request` or `fixtures/fixture-hostile`.
///
/// # Panics
/// When it has not been built, naming the script that builds it.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run scripts/build-plugins.sh first", path.display());
    path
}

/// The `sluice` binary, built once per test process (a no-op when it is up to date).
///
/// # Panics
/// When cargo cannot build it.
pub fn sluice_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // A binary built beforehand (SLUICE_TEST_BIN) spares a nested cargo call.
        if let Some(bin) = std::env::var_os("SLUICE_TEST_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "sluice", "--bin", "sluice"])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build for the sluice binary");
        assert!(status.success(), "cargo build -p sluice failed");
        target_dir().join("debug").join("sluice")
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}
