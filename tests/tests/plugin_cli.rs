//! `sluice plugin test`, `plugin info`, `plugin compile` and `plugin new` on the real plugins, their
//! samples and a crate built for the occasion, and `pipelines check` of pipelines naming them, with
//! no services running.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sluice_e2e::artifacts::{plugin_path, plugin_toolchain, repo_root, sluice_bin, target_dir};

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
    assert!(stderr.contains("mismatch: output `user_status` row 0: expected"), "{stderr}");
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

/// `sluice pipelines check` of the pipelines in `dir` against the built plugins.
fn pipelines_check(dir: &Path) -> Output {
    Command::new(sluice_bin())
        .args(["pipelines", "check", "--plugins-dir"])
        .arg(sluice_e2e::artifacts::plugins_dir())
        .arg("--pipelines-dir")
        .arg(dir)
        .output()
        .expect("run sluice pipelines check")
}

#[test]
fn the_demo_pipelines_validate_against_the_built_plugins() {
    let output = pipelines_check(&repo_root().join("pipelines"));
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
    let output = pipelines_check(dir.path());
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

/// `sluice plugin new NAME --dir DIR`, with this checkout's SDK.
fn plugin_new(name: &str, dir: &Path) -> Output {
    Command::new(sluice_bin())
        .args(["plugin", "new", name, "--dir"])
        .arg(dir)
        .arg("--sdk")
        .arg(repo_root().join("plugins/sdk"))
        .output()
        .expect("run sluice plugin new")
}

/// Builds the plugin crate at `crate_dir` for wasm and runs `plugin test --expect` on its own
/// samples; asserts both pass with the template's counts and returns the test's output.
fn build_and_test_crate(crate_dir: &Path, name: &str) -> Output {
    // A debug build into the shared target directory: the SDK's dependencies are compiled once,
    // not on every run, and without the release profile's whole-program optimisation.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run cargo build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let component = target_dir().join(format!("wasm32-wasip2/debug/{}.wasm", name.replace('-', "_")));
    let samples = crate_dir.join("samples");
    let tested = Command::new(sluice_bin())
        .args(["plugin", "test"])
        .arg(&component)
        .arg("--input")
        .arg(samples.join("input.jsonl"))
        .arg("--expect")
        .arg(samples.join("expected.json"))
        .output()
        .expect("run sluice plugin test");
    let stderr = String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{name} 0.1.0: 7 records in; users: 3; 4 failures")), "{stderr}");
    assert!(stderr.contains("matches"), "{stderr}");
    tested
}

#[test]
fn a_new_plugin_builds_for_wasm_and_passes_its_own_samples() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = plugin_new("demo", dir.path());
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(created.status.success(), "{stdout}{}", String::from_utf8_lossy(&created.stderr));
    for next in
        ["cargo build --release --target wasm32-wasip2", "sluice plugin test", "/v1/admin/plugins/demo"]
    {
        assert!(stdout.contains(next), "{stdout}");
    }
    let tested = build_and_test_crate(&dir.path().join("demo"), "demo");
    let report: serde_json::Value =
        serde_json::from_slice(&tested.stdout).expect("stdout is the JSON report");
    let user_ids: Vec<&str> = report["outputs"]["users"]
        .as_array()
        .expect("users rows")
        .iter()
        .filter_map(|row| row["user_id"].as_str())
        .collect();
    assert_eq!(user_ids, ["u1", "u2", "u3"]);
    let failed: Vec<u64> =
        report["failures"].as_array().expect("failures").iter().filter_map(|f| f["index"].as_u64()).collect();
    assert_eq!(failed, [3, 4, 5, 6]);
}

#[test]
fn a_new_rust_plugin_made_outside_any_checkout_carries_its_sdk_and_passes_its_samples() {
    let dir = tempfile::tempdir().expect("temp dir");
    // From the empty directory itself: no checkout above it or above the current directory.
    let created = Command::new(sluice_bin())
        .args(["plugin", "new", "lone"])
        .current_dir(dir.path())
        .output()
        .expect("run sluice plugin new");
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(created.status.success(), "{stdout}{}", String::from_utf8_lossy(&created.stderr));
    assert!(stdout.contains("vendor/sluice-plugin-sdk"), "{stdout}");
    build_and_test_crate(&dir.path().join("lone"), "lone");
}

#[test]
fn plugin_new_refuses_a_name_that_is_not_plain_lowercase() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["Demo", "my_plugin", "2fa", "a--b"] {
        let output = plugin_new(name, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("`{name}` is not a plugin name: use lowercase ASCII letters")),
            "{stderr}"
        );
    }
    let written: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn plugin_new_leaves_an_existing_crate_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(plugin_new("demo", dir.path()).status.success());
    let lib = dir.path().join("demo/src/lib.rs");
    std::fs::write(&lib, "// mine\n").expect("edit the crate");

    let again = plugin_new("demo", dir.path());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&lib).expect("read lib.rs"), "// mine\n");
}

/// Source and sink kinds with settings enough to pass every other check.
const SOURCES: [(&str, &str); 4] = [
    ("http", "kind = \"http\"\npath = \"/v1/{name}\"\n"),
    ("webhook", "kind = \"webhook\"\npath = \"/v1/{name}\"\ntopic = \"t\"\ngroup = \"g\"\n"),
    ("kafka", "kind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n"),
    ("s3-job", "kind = \"s3-job\"\npath = \"/v1/{name}\"\njob_topic = \"t\"\ngroup = \"g\"\n"),
];
const SINKS: [(&str, &str); 6] = [
    ("sendgrid", "kind = \"sendgrid\"\n"),
    ("kafka", "kind = \"kafka\"\ntopic = \"t\"\n"),
    ("jsonl", "kind = \"jsonl\"\ndir = \"/tmp/sluice-pairing\"\n"),
    ("parquet-s3", "kind = \"parquet-s3\"\nbucket = \"b\"\nprefix = \"p\"\n"),
    ("parquet-local", "kind = \"parquet-local\"\ndir = \"/tmp/sluice-pairing\"\n"),
    ("postgres", "kind = \"postgres\"\ntable = \"t\"\n"),
];
/// The sink kinds each source kind can feed.
const ALLOWED: [(&str, &[&str]); 4] = [
    ("http", &["sendgrid", "kafka"]),
    ("webhook", &["kafka", "jsonl", "parquet-s3", "parquet-local"]),
    ("kafka", &["kafka", "jsonl", "parquet-s3", "parquet-local"]),
    ("s3-job", &["postgres"]),
];

/// Writes `<source>-to-<sink>.toml` into `dir`: one step of a real plugin, its output to a
/// sink of that kind, and dead letters; returns the file name.
fn write_pairing(dir: &Path, source: &str, sink: &str) -> String {
    let name = format!("{source}-to-{sink}");
    let settings = |table: &[(&str, &str)], kind: &str| {
        table.iter().find(|(k, _)| *k == kind).map(|(_, text)| text.replace("{name}", &name)).expect("kind")
    };
    let text = format!(
        "name = \"{name}\"\n[source]\n{}\
         [[steps]]\nplugin = \"explode-status-logs\"\n\
         [[sinks]]\nfrom = \"explode-status-logs.user_status_log\"\n{}\
         [dead_letters]\nkind = \"local\"\ndir = \"/tmp/sluice-pairing-dl\"\n",
        settings(&SOURCES, source),
        settings(&SINKS, sink),
    );
    let file = format!("{name}.toml");
    std::fs::write(dir.join(&file), text).expect("write pipeline");
    file
}

#[test]
fn pipelines_check_refuses_each_source_and_sink_pairing_that_cannot_run() {
    for (source, allowed) in ALLOWED {
        for (sink, _) in SINKS.iter().filter(|(sink, _)| !allowed.contains(sink)) {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = write_pairing(dir.path(), source, sink);
            let output = pipelines_check(dir.path());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{source} → {sink}: {stderr}");
            let line = stderr.lines().find(|line| line.contains("sinks[0].kind")).unwrap_or_default();
            assert!(line.contains(&file), "{source} → {sink}: {stderr}");
            assert!(
                line.contains(&format!("`{source}` source")) && line.contains(&format!("`{sink}` sink")),
                "{line}"
            );
            let listed: Vec<String> = allowed.iter().map(|kind| format!("`{kind}`")).collect();
            assert!(line.contains(&listed.join(", ")), "{source} → {sink}: {line}");
        }
    }
}

#[test]
fn pipelines_check_accepts_each_source_and_sink_pairing_that_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for (source, allowed) in ALLOWED {
        for sink in allowed {
            files.push(write_pairing(dir.path(), source, sink));
        }
    }
    let output = pipelines_check(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for file in files {
        assert!(stdout.contains(&file), "{file}: {stdout}");
    }
}

/// Before this was checked at load, such a pipeline was served without its sink and its
/// requests answered 202.
#[test]
fn serve_refuses_to_start_with_a_pairing_that_cannot_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_pairing(dir.path(), "http", "parquet-local");
    let mut serve = Command::new(sluice_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--plugins-dir"])
        .arg(sluice_e2e::artifacts::plugins_dir())
        .arg("--pipelines-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sluice serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while serve.try_wait().expect("poll sluice serve").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("sluice serve started with {file}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = serve.wait_with_output().expect("sluice serve output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(&file) && stderr.contains("sinks[0].kind"), "{stderr}");
    assert!(stderr.contains("`sendgrid`, `kafka`"), "{stderr}");
}

/// `plugin new NAME --lang LANG` in an empty directory outside any checkout, its build command,
/// then `plugin test --expect` on its own samples.
fn a_new_interpreted_plugin_builds_and_passes_its_samples(lang: &str, tool: &str, build: &[&str]) {
    if !plugin_toolchain(tool) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("my-{lang}-filter");
    let created = Command::new(sluice_bin())
        .args(["plugin", "new", &name, "--lang", lang])
        .current_dir(dir.path())
        .output()
        .expect("run sluice plugin new");
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(created.status.success(), "{stdout}{}", String::from_utf8_lossy(&created.stderr));
    assert!(stdout.contains("sluice plugin test"), "{stdout}");
    let plugin_dir = dir.path().join(&name);
    let wit = std::fs::read_to_string(plugin_dir.join("wit/transform.wit")).expect("the contract is there");
    let printed = Command::new(sluice_bin()).args(["plugin", "wit"]).output().expect("run sluice plugin wit");
    assert_eq!(String::from_utf8_lossy(&printed.stdout), wit, "`plugin wit` prints the same contract");

    let built =
        Command::new(build[0]).args(&build[1..]).current_dir(&plugin_dir).output().expect("run the build");
    assert!(
        built.status.success(),
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let tested = Command::new(sluice_bin())
        .args(["plugin", "test", &format!("{name}.wasm"), "--input", "samples/input.jsonl"])
        .args(["--expect", "samples/expected.json"])
        .current_dir(&plugin_dir)
        .output()
        .expect("run sluice plugin test");
    let stderr = String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success(), "{stderr}{}", String::from_utf8_lossy(&tested.stdout));
    assert!(stderr.contains(&format!("{name} 0.1.0: 7 records in; users: 3; 4 failures")), "{stderr}");
    assert!(stderr.contains("matches"), "{stderr}");

    // Settings reach `init`: only users with at least 3 visits are kept, and a bad one refuses.
    let filtered = Command::new(sluice_bin())
        .args(["plugin", "test", &format!("{name}.wasm"), "--input", "samples/input.jsonl"])
        .args(["--config", "min_visits=3"])
        .current_dir(&plugin_dir)
        .output()
        .expect("run sluice plugin test");
    let report: serde_json::Value = serde_json::from_slice(&filtered.stdout).expect("the JSON report");
    let ids: Vec<&str> = report["outputs"]["users"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["user_id"].as_str())
        .collect();
    assert_eq!(ids, ["u1"], "{report}");
}

#[test]
fn a_new_python_plugin_builds_with_componentize_py_and_passes_its_samples() {
    a_new_interpreted_plugin_builds_and_passes_its_samples("python", "componentize-py", &["sh", "build.sh"]);
}

#[test]
fn a_new_javascript_plugin_builds_with_componentize_js_and_passes_its_samples() {
    a_new_interpreted_plugin_builds_and_passes_its_samples("js", "componentize-js", &["npm", "run", "build"]);
}

#[test]
fn plugin_diff_shows_what_a_new_version_changes_and_exits_1_only_when_something_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("records.jsonl");
    std::fs::write(&input, "{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\"}\n[1]\n").expect("write records");
    let diff = |old: &str, new: &str, extra: &[&str]| {
        Command::new(sluice_bin())
            .args(["plugin", "diff"])
            .arg(plugin_path(&format!("fixtures/{old}")))
            .arg(plugin_path(&format!("fixtures/{new}")))
            .arg("--input")
            .arg(&input)
            .args(["--config", "behavior=fail-before-v2"])
            .args(extra)
            .output()
            .expect("run sluice plugin diff")
    };

    // Version 1 refuses every record; version 2 makes rows of the two objects and refuses the
    // array for another reason.
    let changed = diff("fixture-hostile", "fixture-hostile-v2", &["--json"]);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&changed.stdout).expect("a JSON report");
    assert_eq!(report["records"], 3);
    assert_eq!(
        report["outputs"]["rows"],
        serde_json::json!({"equal": 0, "changed": 0, "only_in_old": 0, "only_in_new": 2})
    );
    assert_eq!(
        report["failures"],
        serde_json::json!({"unchanged": 0, "appeared": 0, "disappeared": 2, "changed_reason": 1})
    );
    let differences = report["differences"].as_array().expect("differences");
    let first = &differences[0];
    assert_eq!(
        (first["record"].as_u64(), first["what"].as_str()),
        (Some(0), Some("row only in new")),
        "{first}"
    );
    assert_eq!(first["new"]["id"], "a");
    assert_eq!(first["input"], "{\"id\":\"a\",\"n\":1}", "each difference shows its record");
    let reason = differences.iter().find(|d| d["what"] == "failure changed reason").expect("changed reason");
    assert_eq!(reason["old"], "value: rejected by version 1.0.0");
    assert_eq!(reason["new"], "[0]: expected a JSON object, found a number");

    // As text, the counts and the first differences side by side.
    let text = diff("fixture-hostile", "fixture-hostile-v2", &["--show", "1"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("rows: 0 equal, 0 changed, 0 only in old, 2 only in new"), "{stdout}");
    assert!(
        stdout.contains("record 0: row only in new (rows)") && stdout.contains("… and 4 more"),
        "{stdout}"
    );

    // Versions 2 and 3 do the same: exit 0.
    let same = diff("fixture-hostile-v2", "fixture-hostile-v3", &[]);
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no differences") && stdout.contains("2 equal"), "{stdout}");
}
