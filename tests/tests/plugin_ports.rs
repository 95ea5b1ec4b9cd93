//! The reference plugins ported to other languages (`scripts/build-plugin-ports.sh`) give what
//! the Rust plugins give: the same samples pass, and on thousands of records made by mutating
//! the samples (broken JSON, odd values, repeated and escaped keys) `sluice plugin test` prints
//! the same rows and the same failures, reasons included, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_e2e::artifacts::{plugin_path, plugins_dir, repo_root, sluice_bin};

/// The port of `name`, or `None` (loudly) where the suite may skip it; under CI or
/// `SLUICE_REQUIRE_SERVICES=1` a missing port fails the test.
fn port(name: &str) -> Option<PathBuf> {
    let path = plugins_dir().join("ports").join(format!("{name}.wasm"));
    if path.is_file() {
        return Some(path);
    }
    let required =
        std::env::var("SLUICE_REQUIRE_SERVICES").is_ok_and(|v| v == "1") || std::env::var_os("CI").is_some();
    assert!(!required, "{} is missing: run scripts/build-plugin-ports.sh first", path.display());
    eprintln!(
        "\n######## SKIPPED: {} is missing; scripts/build-plugin-ports.sh builds it ########\n",
        path.display()
    );
    None
}

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

#[test]
fn explode_status_logs_in_javascript_gives_the_rust_plugins_rows_and_failures() {
    let Some(port) = port("explode-status-logs") else { return };
    let samples = repo_root().join("plugins/explode-status-logs/samples");
    let (passed, _) = plugin_test(&port, &samples.join("input.jsonl"), Some(&samples.join("expected.json")));
    assert!(passed, "the JavaScript port passes the Rust plugin's samples");

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
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(&corpus, mutated_corpus(&samples.join("input.jsonl"), &extra, 4000))
        .expect("write corpus");
    let (_, rust) = plugin_test(&plugin_path("explode-status-logs"), &corpus, None);
    let (_, javascript) = plugin_test(&port, &corpus, None);
    let report: serde_json::Value = serde_json::from_str(&rust).expect("a JSON report");
    let failures = report["failures"].as_array().map_or(0, Vec::len);
    assert!(failures > 1000, "the corpus exercises the refusals: {failures} failures");
    if rust != javascript {
        let first = rust.lines().zip(javascript.lines()).position(|(a, b)| a != b).unwrap_or(0);
        let around =
            |text: &str| text.lines().skip(first.saturating_sub(5)).take(10).collect::<Vec<_>>().join("\n");
        panic!(
            "the reports differ from line {first}:\nRust:\n{}\nJavaScript:\n{}",
            around(&rust),
            around(&javascript)
        );
    }
}
