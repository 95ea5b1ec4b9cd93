//! `sluice plugin test`, `plugin info` and `plugin compile` on the real plugins and their samples, with
//! no services running.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sluice_e2e::artifacts::{plugin_path, repo_root, sluice_bin};

const PLUGINS: [&str; 4] =
    ["mail-request", "normalize-sendgrid-events", "validate-user-status", "explode-status-logs"];

fn sample_input(plugin: &str) -> PathBuf {
    let samples = repo_root().join("plugins").join(plugin).join("samples");
    let envelopes = samples.join("input.envelopes.jsonl");
    if envelopes.is_file() { envelopes } else { samples.join("input.jsonl") }
}

fn plugin_test(plugin: &str, input: &Path, expect: &Path) -> Output {
    Command::new(sluice_bin())
        .args(["plugin", "test"])
        .arg(plugin_path(plugin))
        .arg("--input")
        .arg(input)
        .arg("--expect")
        .arg(expect)
        .output()
        .expect("run sluice plugin test")
}

#[test]
fn every_plugin_matches_its_sample_expectation() {
    for plugin in PLUGINS {
        let expect = repo_root().join("plugins").join(plugin).join("samples/expected.json");
        let output = plugin_test(plugin, &sample_input(plugin), &expect);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{plugin}: {stderr}");
        assert!(stderr.contains("matches"), "{plugin}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("stdout is the JSON report");
        let records: usize = report["outputs"]
            .as_object()
            .expect("outputs")
            .values()
            .map(|v| v.as_array().map_or(0, Vec::len))
            .sum();
        assert!(records > 0, "{plugin}: the sample produces records");
    }
}

#[test]
fn plugin_test_exits_non_zero_when_the_expectation_differs() {
    let plugin = "validate-user-status";
    let expect_path = repo_root().join("plugins").join(plugin).join("samples/expected.json");
    let mut expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&expect_path).expect("read expected")).expect("json");
    let first = expected["outputs"]["user_status"][0]["status"].take();
    assert!(first.is_string(), "the sample has a valid user_status record");
    expected["outputs"]["user_status"][0]["status"] = serde_json::json!("NOT-WHAT-THE-PLUGIN-SAYS");
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = dir.path().join("expected.json");
    std::fs::write(&wrong, serde_json::to_vec(&expected).expect("json")).expect("write");

    let output = plugin_test(plugin, &sample_input(plugin), &wrong);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mismatch: output `user_status` record 0"), "{stderr}");
}

#[test]
fn plugin_info_prints_name_version_contract_and_output_schemas() {
    let output = Command::new(sluice_bin())
        .args(["plugin", "info", "--json"])
        .arg(plugin_path("explode-status-logs"))
        .output()
        .expect("run sluice plugin info");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(info["name"], "explode-status-logs");
    assert_eq!(info["wit"], "sluice:transform@0.3.0");
    assert_eq!(info["outputs"][0]["name"], "user_status_log");
    let columns = info["outputs"][0]["columns"].as_array().expect("columns");
    let described: Vec<(&str, &str, bool)> = columns
        .iter()
        .filter_map(|c| Some((c["name"].as_str()?, c["type"].as_str()?, c["nullable"].as_bool()?)))
        .collect();
    assert_eq!(described, [("userId", "text", false), ("updatedOn", "text", true), ("status", "text", true)]);
}

#[test]
fn plugin_info_shows_a_plugin_built_for_the_previous_contract_with_its_version() {
    let output = Command::new(sluice_bin())
        .args(["plugin", "info", "--json"])
        .arg(plugin_path("fixtures/fixture-contract-0-2"))
        .output()
        .expect("run sluice plugin info");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(info["wit"], "sluice:transform@0.2.0");
    assert_eq!(info["outputs"][0]["columns"][0]["type"], "text");
}

#[test]
fn a_missing_plugin_file_is_a_clear_error_not_a_panic() {
    let output = Command::new(sluice_bin())
        .args(["plugin", "info", "/nonexistent/plugin.wasm"])
        .output()
        .expect("run sluice plugin info");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/plugin.wasm") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_demo_pipelines_validate_against_the_built_plugins() {
    let output = Command::new(sluice_bin())
        .args(["pipelines", "check", "--plugins-dir"])
        .arg(sluice_e2e::artifacts::plugins_dir())
        .arg("--pipelines-dir")
        .arg(repo_root().join("pipelines"))
        .output()
        .expect("run sluice pipelines check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for name in ["mail", "sendgrid-events", "user-status"] {
        assert!(stdout.contains(&format!("ok  {name} ")), "{stdout}");
    }
}

#[test]
fn a_pipeline_naming_an_undeclared_output_fails_with_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"broken\"\n[source]\nkind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n\
         [[steps]]\nplugin = \"explode-status-logs\"\n\
         [[sinks]]\nfrom = \"explode-status-logs.nope\"\nkind = \"kafka\"\ntopic = \"x\"\n",
    )
    .expect("write pipeline");
    let output = Command::new(sluice_bin())
        .args(["pipelines", "check", "--plugins-dir"])
        .arg(sluice_e2e::artifacts::plugins_dir())
        .arg("--pipelines-dir")
        .arg(dir.path())
        .output()
        .expect("run sluice pipelines check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.toml") && stderr.contains("sinks[0].from"), "{stderr}");
    assert!(stderr.contains("its outputs: user_status_log"), "{stderr}");
}

/// The `.cwasm` files in a compile cache, with when each was last written.
fn cached_files(cache: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(cache)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .map(|path| {
            let written = std::fs::metadata(&path).and_then(|m| m.modified()).expect("cache file time");
            (path, written)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn plugin_compile_fills_the_cache_that_the_host_then_loads_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (plugins, pipelines, cache) =
        (dir.path().join("plugins"), dir.path().join("pipelines"), dir.path().join("cache"));
    for made in [&plugins, &pipelines] {
        std::fs::create_dir(made).expect("make dir");
    }
    let component = plugin_path("normalize-sendgrid-events");
    std::fs::copy(&component, plugins.join("normalize-sendgrid-events.wasm")).expect("copy plugin");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins]\ndir = {:?}\ncache_dir = {:?}\n\n[pipelines]\ndir = {:?}\n",
            plugins.display().to_string(),
            cache.display().to_string(),
            pipelines.display().to_string()
        ),
    )
    .expect("write config");
    let sluice = |args: &[&str]| {
        Command::new(sluice_bin()).args(args).arg("--config").arg(&config).output().expect("run sluice")
    };

    let compiled = Command::new(sluice_bin())
        .args(["plugin", "compile", "--config"])
        .arg(&config)
        .arg(&component)
        .output()
        .expect("run sluice plugin compile");
    let stdout = String::from_utf8_lossy(&compiled.stdout);
    assert!(compiled.status.success(), "{stdout}{}", String::from_utf8_lossy(&compiled.stderr));
    assert!(stdout.starts_with("normalize-sendgrid-events ") && stdout.contains("ready in"), "{stdout}");
    let cached = cached_files(&cache);
    assert_eq!(cached.len(), 1, "{cached:?}");
    let hash = sluice::plugin::content_hash(&std::fs::read(&component).expect("read plugin"));
    let file_name = cached[0].0.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(file_name.starts_with(&hash), "{file_name} is not keyed by {hash}");

    // Loading the plugins dir as `serve` does finds that entry: nothing is compiled or written.
    let checked = sluice(&["pipelines", "check"]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    assert_eq!(cached_files(&cache), cached, "the host compiled the plugin again");

    let refused = Command::new(sluice_bin())
        .args(["plugin", "compile", "--config"])
        .arg(&config)
        .arg(plugin_path("fixtures/fixture-wrong-version"))
        .output()
        .expect("run sluice plugin compile");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fixture-wrong-version") && !stderr.contains("panicked"), "{stderr}");
}
