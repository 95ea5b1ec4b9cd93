//! Built artifacts the tests run: the `sluice` binary and the plugin components.
//!
//! Plugins are built for `wasm32-wasip2` by `scripts/build-plugins.sh` (which `scripts/test.sh`
//! runs first); a missing one fails the test with that instruction rather than skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
///
/// Read from `CARGO_MANIFEST_DIR` as cargo sets it for the running test, not as it was at
/// compile time: clones sharing one `CARGO_TARGET_DIR` can share this crate's build, and a
/// path baked in by another clone would send the tests to that clone's files.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default()
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

/// The port of plugin `name` to language `lang` (`python`, `js`: the port's folder beside the
/// plugin), which `scripts/build-plugin-ports.sh` builds into `ports/<lang>/` of the plugins
/// directory, or `None`, loudly, where the suite may skip it.
///
/// # Panics
/// When it has not been built and the suite must not skip (CI, or `SLUICE_REQUIRE_SERVICES=1`).
pub fn plugin_port(lang: &str, name: &str) -> Option<PathBuf> {
    let path = plugins_dir().join("ports").join(lang).join(format!("{name}.wasm"));
    if path.is_file() {
        return Some(path);
    }
    assert!(!must_not_skip(), "{} is missing: run scripts/build-plugin-ports.sh first", path.display());
    eprintln!(
        "\n######## SKIPPED: {} is missing; scripts/build-plugin-ports.sh builds it ########\n",
        path.display()
    );
    None
}

/// Whether a plugin toolchain (`componentize-py`, `componentize-js`) runs: a missing one fails
/// the test where the suite must not skip (`scripts/test.sh` installs them with
/// `scripts/plugin-toolchains.sh`), and skips it loudly elsewhere.
///
/// # Panics
/// When `tool` is missing and the suite must not skip (CI, or `SLUICE_REQUIRE_SERVICES=1`).
pub fn plugin_toolchain(tool: &str) -> bool {
    let present = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !present {
        assert!(
            !must_not_skip(),
            "{tool} is not on PATH: run `eval \"$(scripts/plugin-toolchains.sh)\"` first"
        );
        eprintln!(
            "\n######## SKIPPED: {tool} is not on PATH; `eval \"$(scripts/plugin-toolchains.sh)\"` installs it ########\n"
        );
    }
    present
}

/// Whether a missing artifact or toolchain must fail the test instead of skipping it.
fn must_not_skip() -> bool {
    std::env::var("SLUICE_REQUIRE_SERVICES").is_ok_and(|v| v == "1") || std::env::var_os("CI").is_some()
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

/// Cargo's target directory for this checkout: `CARGO_TARGET_DIR`, else `target/` in the repository.
///
/// Cargo builds a test runs (the binary, a generated plugin) go here too, so they reuse what
/// the workspace's own build already compiled.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// The repository's `pipelines/{name}.toml` as a test runs it: each `(key, value)` of
/// `overrides` replaces that key's line, or adds it to its section when the file leaves the key
/// at its default (`key` for a top-level key, `section.key` for one in a `[section]` or in
/// whichever `[[section]]` has the key, else the first; `value` is TOML), and `tables_sql` points at the repository's file, so
/// a test runs the real pipeline with only its topics, prefixes and such of its own.
///
/// # Panics
/// When the file is missing or an overridden key's section is not in it.
pub fn repo_pipeline(name: &str, overrides: &[(&str, String)]) -> String {
    let path = repo_root().join("pipelines").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (qualified, value) in overrides {
        let (section, key) = qualified.rsplit_once('.').map_or(("", *qualified), |(s, k)| (s, k));
        let headers: Vec<(usize, String)> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.trim().starts_with('['))
            .map(|(index, line)| (index, line.trim().trim_matches(|c| c == '[' || c == ']').to_owned()))
            .collect();
        // Each table of that name (or the top, before any): from its header to the next one.
        let next_header = |start: usize| {
            headers.iter().map(|(index, _)| *index).find(|index| *index >= start).unwrap_or(lines.len())
        };
        let spans: Vec<(usize, usize)> = if section.is_empty() {
            vec![(0, next_header(0))]
        } else {
            headers
                .iter()
                .filter(|(_, name)| name == section)
                .map(|(index, _)| (index + 1, next_header(index + 1)))
                .collect()
        };
        let Some(&(first_start, _)) = spans.first() else { panic!("{}: no [{section}]", path.display()) };
        let found = spans.iter().flat_map(|&(start, end)| start..end).find(|index| {
            let trimmed = lines[*index].trim();
            !trimmed.starts_with('#') && trimmed.split('=').next().is_some_and(|k| k.trim() == key)
        });
        match found {
            Some(index) => lines[index] = format!("{key} = {value}"),
            None => lines.insert(first_start, format!("{key} = {value}")),
        }
    }
    let dir = repo_root().join("pipelines");
    for line in &mut lines {
        if let Some(file) = line.strip_prefix("tables_sql = \"").and_then(|rest| rest.strip_suffix('"')) {
            *line = format!("tables_sql = \"{}\"", dir.join(file).display());
        }
    }
    lines.join("\n") + "\n"
}

/// Copies a built component into `dir` under the name the host loads it by, atomically.
///
/// # Panics
/// When the copy or the rename fails.
pub fn install_plugin(dir: &Path, built: &Path, name: &str) {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::copy(built, &temporary).expect("copy plugin");
    std::fs::rename(&temporary, dir.join(format!("{name}.wasm"))).expect("install plugin");
}
