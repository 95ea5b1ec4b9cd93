//! Plugins in other languages than Rust. The reference ports (`scripts/build-plugin-ports.sh`)
//! give what the Rust plugins give: the same samples pass, and on thousands of records made by
//! mutating the samples (broken JSON, odd values, repeated and escaped keys) `sluice plugin
//! test` prints the same rows and the same failures, reasons included, byte for byte. A Python
//! plugin is swapped in and out of a running host under load without a failed request.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sluice_e2e::artifacts::{plugin_path, plugin_port, plugin_toolchain, repo_root, sluice_bin};
use sluice_e2e::host::{HostSpec, SluiceHost};
use sluice_e2e::{eventually, require_services};

/// `sluice plugin test COMPONENT --input INPUT [--expect EXPECT]`: its exit status and stdout.
fn plugin_test(component: &Path, input: &Path, expect: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(sluice_bin());
    command.args(["plugin", "test"]).arg(component).arg("--input").arg(input);
    if let Some(expect) = expect {
        command.arg("--expect").arg(expect);
    }
    let output = command.output().expect("run sluice plugin test");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() || expect.is_some(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), stdout)
}

/// A small deterministic generator, so a failing corpus can be made again.
struct Mutations(u64);

impl Mutations {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }

    /// `line` with one to four bytes deleted, inserted (from characters that matter to JSON)
    /// or the rest cut off.
    fn mutate(&mut self, line: &str) -> String {
        const INSERTS: &[&str] = &[
            "{", "}", "[", "]", ",", ":", "\"", " ", "\\", "a", "1", ".", "-", "e", "E", "0", "+", "t", "u",
            "\t", "é",
        ];
        let mut text: Vec<char> = line.chars().collect();
        for _ in 0..=self.below(4) {
            let at = self.below(text.len() + 1);
            match self.below(10) {
                0..=3 if text.len() > 1 => {
                    text.remove(at.min(text.len() - 1));
                }
                0..=7 => {
                    let insert = INSERTS[self.below(INSERTS.len())];
                    for (offset, char) in insert.chars().enumerate() {
                        text.insert(at + offset, char);
                    }
                }
                _ => text.truncate(at),
            }
        }
        text.into_iter().collect()
    }
}

/// The samples, some edge cases of their own, and `count` mutations of them, one per line.
fn mutated_corpus(samples: &Path, extra: &[&str], count: usize) -> String {
    let text = std::fs::read_to_string(samples).expect("read samples");
    let mut lines: Vec<String> =
        text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect();
    lines.extend(extra.iter().map(|line| (*line).to_owned()));
    let base = lines.clone();
    let mut mutations = Mutations(0x5eed_1234_abcd_ef01);
    while lines.len() < base.len() + count {
        let pick = mutations.below(base.len());
        let line = mutations.mutate(&base[pick]);
        if !line.trim().is_empty() && !line.contains(['\n', '\r']) {
            lines.push(line);
        }
    }
    lines.join("\n") + "\n"
}

/// Runs the Rust plugin `name` and its port on the same corpus and fails on the first line
/// where their reports differ; the corpus must exercise the refusals (`min_failures`).
fn assert_same_reports(name: &str, port: &Path, corpus: &str, min_failures: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("corpus.jsonl");
    std::fs::write(&input, corpus).expect("write corpus");
    let (_, rust) = plugin_test(&plugin_path(name), &input, None);
    let (_, ported) = plugin_test(port, &input, None);
    // Only the failures are parsed: a json column's rows keep numbers as written, and one
    // mutated beyond f64 (`1e310`) is refused by serde_json's Value.
    let at = rust.find("\n  \"failures\": ").expect("a report with its failures");
    let report: serde_json::Value =
        serde_json::from_str(&format!("{{{}", &rust[at..])).expect("a JSON report");
    let failures = report["failures"].as_array().map_or(0, Vec::len);
    assert!(failures >= min_failures, "the corpus exercises the refusals: {failures} failures");
    if rust != ported {
        let first = rust.lines().zip(ported.lines()).position(|(a, b)| a != b).unwrap_or(0);
        let around =
            |text: &str| text.lines().skip(first.saturating_sub(5)).take(10).collect::<Vec<_>>().join("\n");
        panic!(
            "{name}: the reports of {} differ from line {first}:\nRust:\n{}\nport:\n{}",
            port.display(),
            around(&rust),
            around(&ported)
        );
    }
}

/// The port passes the Rust plugin's own samples.
fn assert_passes_samples(name: &str, port: &Path) {
    let samples = repo_root().join("plugins").join(name).join("samples");
    let (passed, _) = plugin_test(port, &samples.join("input.jsonl"), Some(&samples.join("expected.json")));
    assert!(passed, "the port of {name} passes the Rust plugin's samples");
}

/// The port of validate-user-status to `lang` (`python`, `js`) passes the samples and gives
/// the Rust plugin's report on the mutated corpus.
fn assert_validate_user_status_port(lang: &str) {
    let Some(port) = plugin_port(lang, "validate-user-status") else { return };
    assert_passes_samples("validate-user-status", &port);
    let extra = [
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"userId":"a","userId":"b"}"#,
        r#"{"us\u0065rId":"a","createdAt":"c","lastVisitedAt":-0,"status":" ","isBlacklisted":true,"statusLogs":[ {} , {"a" : [1, 2]} ]}"#,
        r#"{"userId":"a\ud800","createdAt":"c\u00e9","lastVisitedAt":2147483647,"status":"\udc00","isBlacklisted":false,"statusLogs":[]}"#,
        r#"{"userId":"a","createdAt":"c","lastVisitedAt":-2147483648,"status":"s","isBlacklisted":false,"statusLogs":[],"x":1e400}"#,
        r#"{"userId":"a","createdAt":"c","lastVisitedAt":1e3,"status":"s","isBlacklisted":false,"statusLogs":[]}"#,
        // Escapes in a name, which the record's reading checks strictly.
        r#"{"a\ud800x":1}"#,
        r#"{"\udc00":1,"userId":"a"}"#,
        r#"{"a\ud800\u0041":1}"#,
        // `statusLogs` passes on as written: numbers, escapes and a repeated key kept.
        r#"{"userId":"a","createdAt":"c","lastVisitedAt":1,"status":"s","isBlacklisted":true,"statusLogs":[{"updatedOn":1e3,"status":"\u00e9\/","status":-0.0}, {"n":[1.50,{}]}]}"#,
    ];
    let samples = repo_root().join("plugins/validate-user-status/samples/input.jsonl");
    assert_same_reports("validate-user-status", &port, &mutated_corpus(&samples, &extra, 4000), 1000);
}

#[test]
fn validate_user_status_in_python_gives_the_rust_plugins_rows_and_failures() {
    assert_validate_user_status_port("python");
}

#[test]
fn validate_user_status_in_javascript_gives_the_rust_plugins_rows_and_failures() {
    assert_validate_user_status_port("js");
}

#[test]
fn explode_status_logs_in_javascript_gives_the_rust_plugins_rows_and_failures() {
    let Some(port) = plugin_port("js", "explode-status-logs") else { return };
    assert_passes_samples("explode-status-logs", &port);
    let extra = [
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"userId":"a","statusLogs":[],}"#,
        r#"{"userId":"a","statusLogs":{"x":[1,],}}"#,
        r#"{"userId":"a","statusLogs":[{"x":{"y":1,}}]}"#,
        r#"{"userId":"a\ud800","statusLogs":[{"status":"\udc00"}]}"#,
        r#"{"userId":"a","statusLogs":["\ud800x"],"us\u0065rId":"b"}"#,
        r#"{"userId":"a","statusLogs":1e400}"#,
        r#"{"userId":"a","userId":"b","statusLogs":[]}"#,
        r#"{"userId":"é","statusLogs":[{"status":"ü","updatedOn":"\u00fc","status":" x "}]}"#,
    ];
    let samples = repo_root().join("plugins/explode-status-logs/samples/input.jsonl");
    assert_same_reports("explode-status-logs", &port, &mutated_corpus(&samples, &extra, 4000), 1000);
}

/// Runs `program args…` in `dir`, failing the test with its output when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).current_dir(dir).output().expect("run a command");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The versions `/v1/plugins` reports for plugin `name`.
async fn version_of(host: &SluiceHost, name: &str) -> Option<String> {
    let listed: serde_json::Value =
        reqwest::get(format!("{}/v1/plugins", host.url)).await.ok()?.json().await.ok()?;
    listed["plugins"].as_array()?.iter().find(|plugin| plugin["name"] == name)?["version"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_plugin_is_swapped_under_load_without_a_failed_request() {
    let Some(services) = require_services!() else { return };
    if !plugin_toolchain("componentize-py") {
        return;
    }
    // Two versions of the Python template, as a user would make them: `plugin new`, build,
    // change the version, build again.
    let work = tempfile::tempdir().expect("work dir");
    run_in(
        work.path(),
        sluice_bin().to_str().expect("path"),
        &["plugin", "new", "pyswap", "--lang", "python"],
    );
    let source = work.path().join("pyswap");
    let mut builds = Vec::new();
    for version in ["0.1.0", "0.2.0"] {
        let app = std::fs::read_to_string(source.join("app.py")).expect("app.py");
        let app = app.replace("VERSION = \"0.1.0\"", &format!("VERSION = \"{version}\""));
        std::fs::write(source.join("app.py"), app).expect("write app.py");
        run_in(&source, "sh", &["build.sh"]);
        builds.push((version, std::fs::read(source.join("pyswap.wasm")).expect("component")));
    }
    let plugins = tempfile::tempdir().expect("plugins dir");
    let place = |bytes: &[u8]| {
        let temporary = plugins.path().join(".pyswap.wasm.tmp");
        std::fs::write(&temporary, bytes).expect("write component");
        std::fs::rename(&temporary, plugins.path().join("pyswap.wasm")).expect("rename component");
    };
    place(&builds[0].1);
    let pipeline =
        "name = \"users\"\n[source]\nkind = \"http\"\npath = \"/v1/users\"\n[[steps]]\nplugin = \"pyswap\"\n";
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("users", pipeline.to_owned())],
        env: &services.host_env(),
        plugins_dir: Some(plugins.path()),
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (failed, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, failed, answered, url) =
            (stop.clone(), failed.clone(), answered.clone(), host.url.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({"id": format!("u{worker}-{n}"), "name": "Ann", "visits": n});
                let answer = client.post(format!("{url}/v1/users")).json(&body).send().await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        answered.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }
    for swap in 0..6 {
        let (version, bytes) = &builds[(swap + 1) % 2];
        place(bytes);
        let swapped = eventually(Duration::from_secs(180), || async {
            version_of(&host, "pyswap").await.as_deref() == Some(version)
        })
        .await;
        assert!(swapped, "swap {swap} to {version}:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.expect("load worker");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the swaps:\n{}", host.log());
    assert!(answered.load(Ordering::Relaxed) >= 40, "the load ran throughout");
}
