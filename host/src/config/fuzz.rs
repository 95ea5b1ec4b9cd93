//! Fuzzing the configuration parsers: any text, and the project's real files broken, load as a
//! pipeline or host config or are refused with an error, and what loads goes through the checks
//! the host runs at load without panicking.
//!
//! A configuration file is not input from strangers, but one typed wrong, half-copied or
//! uploaded through the admin API must stop the host with a message, not a panic.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use sluice_fuzz::{Bytes, corrupted};

use super::{HostConfig, Pipeline, validate_pipeline};
use crate::plugin::{CompileCache, PluginEngine, PluginLimits, PluginRegistry};

/// A registry without plugins: every step is refused as not loaded, and all other checks run.
static NO_PLUGINS: LazyLock<PluginRegistry> = LazyLock::new(|| {
    let engine = PluginEngine::new(64 << 20).expect("a plugin engine with default settings");
    PluginRegistry::new(engine, CompileCache::disabled())
});

/// Which struct tree a file is read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pipeline,
    Host,
}

/// A configuration file of this repository, the starting point of structured mutations.
#[derive(Clone)]
struct RealFile {
    path: PathBuf,
    kind: Kind,
    text: String,
}

impl std::fmt::Debug for RealFile {
    /// The path alone: with the edits proptest prints, it is enough to rebuild a failing text.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.path.display())
    }
}

/// `pipelines/*.toml` and `config/local.toml`.
///
/// # Panics
/// When one cannot be read or does not load as it is.
fn real_files() -> Vec<RealFile> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pipelines = std::fs::read_dir(repo.join("pipelines")).expect("the pipelines directory");
    let mut pipelines: Vec<PathBuf> = pipelines
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    // Sorted, so a case numbered in one run names the same file in the next.
    pipelines.sort();
    let host = (repo.join("config/local.toml"), Kind::Host);
    pipelines
        .into_iter()
        .map(|path| (path, Kind::Pipeline))
        .chain([host])
        .map(|(path, kind)| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Mutations start from files that load, so what they break is what they changed.
            let parsed = match kind {
                Kind::Pipeline => toml::from_str::<Pipeline>(&text).map(drop),
                Kind::Host => toml::from_str::<HostConfig>(&text).map(drop),
            };
            assert!(parsed.is_ok(), "{} does not load as it is: {parsed:?}", path.display());
            RealFile { path, kind, text }
        })
        .collect()
}

/// Reads `text` as a file of `kind` at `path` would be read, then runs what the host runs on
/// a file that parses: validation against the (empty) registry, and the limits and settings
/// derived from it.
fn load(kind: Kind, path: &Path, text: &str) {
    match kind {
        Kind::Pipeline => {
            let Ok(mut pipeline) = toml::from_str::<Pipeline>(text) else { return };
            pipeline.file = path.to_path_buf();
            let _ = validate_pipeline(&pipeline, &NO_PLUGINS);
            for step in &pipeline.steps {
                let _ = step.call(PluginLimits::default());
            }
            for sink in &pipeline.sinks {
                let _ = sink.kind.parquet();
            }
            let _ = pipeline.dead_letters.as_ref().map(|dead_letters| dead_letters.location());
        }
        Kind::Host => {
            let Ok(config) = toml::from_str::<HostConfig>(text) else { return };
            for name in config.plugins.limits.keys() {
                let _ = config.plugins.limits_for(name);
            }
            let _ = config.plugins.limits_for("any-other-plugin");
        }
    }
}

/// Pieces TOML and these files are made of: syntax, the keys and kinds the structs know, and
/// values at the edges of their types.
const TOML_PIECES: &[&str] = &[
    "\n",
    " ",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "\"",
    "'",
    "\"\"\"",
    "#",
    "\\",
    "name",
    "source",
    "kind",
    "steps",
    "sinks",
    "dead_letters",
    "plugin",
    "input",
    "config",
    "limits",
    "from",
    "path",
    "topic",
    "group",
    "members",
    "memory_mb",
    "timeout_ms",
    "max_dead_letter_ratio",
    "tables_sql",
    "body_limit_bytes",
    "signature",
    "server",
    "plugins",
    "defaults",
    "listen",
    "log",
    "format",
    "\"webhook\"",
    "\"kafka\"",
    "\"s3-job\"",
    "\"http\"",
    "\"postgres\"",
    "\"parquet-s3\"",
    "\"local\"",
    "\"a.b\"",
    "\"source\"",
    "\"json\"",
    "\"127.0.0.1:8080\"",
    "0",
    "-1",
    "0.5",
    "1e400",
    "nan",
    "-inf",
    "9223372036854775807",
    "18446744073709551616",
    "true",
    "1979-05-27T07:32:00Z",
];

/// Values a key of a real file may be given instead of its own.
fn toml_value() -> impl Strategy<Value = String> {
    let edges = vec![
        "-1",
        "0",
        "1",
        "-0.0",
        "0.5",
        "1e400",
        "nan",
        "inf",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "true",
        "\"\"",
        "\"source\"",
        "\"a.b\"",
        "\".\"",
        "\"../../etc/passwd\"",
        "\"/\"",
        "[]",
        "[1, \"a\"]",
        "{}",
        "{ kind = \"local\" }",
        "1979-05-27",
        "1979-05-27T07:32:00Z",
        "\"json-array\"",
        "\"parquet-local\"",
    ];
    prop_oneof![
        select(edges).prop_map(str::to_owned),
        any::<i64>().prop_map(|number| number.to_string()),
        // A JSON string is a valid TOML basic string, escapes included.
        sluice_fuzz::json::json_string().prop_map(|text| serde_json::Value::String(text).to_string()),
    ]
}

/// Text made of [`TOML_PIECES`] and any characters.
fn toml_ish_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![3 => select(TOML_PIECES).prop_map(str::to_owned), 1 => any::<char>().prop_map(String::from)];
    proptest::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// How one line of a real file is changed.
#[derive(Debug, Clone)]
enum LineEdit {
    /// The value of a `key = value` line replaced (any other line is left alone).
    Value(String),
    Removed,
    Repeated,
    /// A line of [`toml_ish_text`] inserted before it.
    Inserted(String),
}

fn edited(text: &str, line: Index, edit: &LineEdit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = line.index(lines.len().max(1)).min(lines.len());
    match edit {
        LineEdit::Value(value) => {
            if let Some(line) = lines.get_mut(at)
                && !line.trim_start().starts_with(['#', '['])
                && let Some((key, _)) = line.split_once('=')
            {
                *line = format!("{key}= {value}");
            }
        }
        LineEdit::Removed if at < lines.len() => {
            lines.remove(at);
        }
        LineEdit::Repeated if at < lines.len() => {
            let again = lines[at].clone();
            lines.insert(at, again);
        }
        LineEdit::Inserted(inserted) => lines.insert(at, inserted.clone()),
        LineEdit::Removed | LineEdit::Repeated => {}
    }
    lines.join("\n")
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        4 => toml_value().prop_map(LineEdit::Value),
        1 => Just(LineEdit::Removed),
        1 => Just(LineEdit::Repeated),
        1 => toml_ish_text().prop_map(LineEdit::Inserted),
    ]
}

proptest! {
    #![proptest_config(sluice_fuzz::config())]

    #[test]
    fn any_text_loads_as_a_pipeline_or_host_config_or_is_an_error(text in toml_ish_text()) {
        load(Kind::Pipeline, Path::new("pipelines/fuzzed.toml"), &text);
        load(Kind::Host, Path::new("sluice.toml"), &text);
    }

    #[test]
    fn real_files_with_a_line_changed_load_or_are_an_error(
        file in select(real_files()),
        edits in proptest::collection::vec((any::<Index>(), line_edit()), 1..4),
    ) {
        let text = edits.iter().fold(file.text.clone(), |text, (line, edit)| edited(&text, *line, edit));
        load(file.kind, &file.path, &text);
    }

    #[test]
    fn real_files_broken_byte_wise_load_or_are_an_error(
        (file, (broken, _how)) in select(real_files())
            .prop_flat_map(|file| { let bytes = file.text.clone().into_bytes(); (Just(file), corrupted(bytes)) }),
    ) {
        let Bytes(bytes) = broken;
        load(file.kind, &file.path, &String::from_utf8_lossy(&bytes));
    }
}
