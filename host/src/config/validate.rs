//! Loading pipeline files and checking them against the loaded plugins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::pipeline::{SinkKind, SourceConfig, StepInput};
use super::{ConfigError, Pipeline};
use crate::plugin::{PluginLimits, PluginRegistry};

/// Parses one pipeline file (syntax and types only; see [`validate_pipeline`]).
///
/// # Errors
/// When the file cannot be read, or a key is unknown, missing or of the wrong type; unknown
/// `kind`s are reported with the kinds that are allowed.
pub fn load_pipeline_file(path: &Path) -> Result<Pipeline, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let mut pipeline: Pipeline = toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    pipeline.file = path.to_path_buf();
    Ok(pipeline)
}

/// Loads and validates every `*.toml` in `dir`, sorted by file name.
///
/// # Errors
/// Every problem found, so one run shows them all; names of pipelines and HTTP paths must be
/// unique across the directory.
pub fn load_pipeline_dir(dir: &Path, registry: &PluginRegistry) -> Result<Vec<Pipeline>, Vec<ConfigError>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|source| vec![ConfigError::Read { path: dir.to_path_buf(), source }])?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();

    let mut pipelines = Vec::new();
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for file in files {
        let pipeline = match load_pipeline_file(&file) {
            Ok(pipeline) => pipeline,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: file.clone(),
            key: key.into(),
            problem,
        };
        if !names.insert(pipeline.name.clone()) {
            errors.push(invalid("name", format!("another pipeline is already named `{}`", pipeline.name)));
        }
        if let Some(path) = pipeline.source.path()
            && !paths.insert(path.to_string())
        {
            errors.push(invalid("source.path", format!("another pipeline already serves `{path}`")));
        }
        match validate_pipeline(&pipeline, registry) {
            Ok(()) => pipelines.push(pipeline),
            Err(mut found) => errors.append(&mut found),
        }
    }
    if errors.is_empty() { Ok(pipelines) } else { Err(errors) }
}

/// Lowercase letters, digits and `-`, not empty: what pipeline and plugin names may use, so
/// they are safe in file names, paths and metric labels.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks that every plugin is loaded and accepts its config, that every step input and sink
/// names an output some earlier step declares, and that the source can run with the sinks
/// (see [`SourceConfig::problems`]).
///
/// # Errors
/// Every problem found, each naming the file, the key and what is allowed.
pub fn validate_pipeline(pipeline: &Pipeline, registry: &PluginRegistry) -> Result<(), Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut invalid = |key: String, problem: String| {
        errors.push(ConfigError::Invalid { path: pipeline.file.clone(), key, problem });
    };
    if !is_plain_name(&pipeline.name) {
        invalid("name".into(), "use lowercase letters, digits and `-` only".into());
    }
    if let Some(path) = pipeline.source.path()
        && !path.starts_with('/')
    {
        invalid("source.path".into(), format!("`{path}` must start with `/`"));
    }

    let loaded_names = || {
        let names: Vec<String> = registry.list().into_iter().map(|(name, _)| name).collect();
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    };
    let mut earlier_steps: Vec<&str> = Vec::new();
    for (index, step) in pipeline.steps.iter().enumerate() {
        let Some(handle) = registry.get(&step.plugin) else {
            invalid(
                format!("steps[{index}].plugin"),
                format!("no plugin named `{}` is loaded (loaded: {})", step.plugin, loaded_names()),
            );
            continue;
        };
        if let StepInput::Output { plugin, output } = &step.input
            && let Some(problem) = check_output_ref(registry, &earlier_steps, plugin, output)
        {
            invalid(format!("steps[{index}].input"), problem);
        }
        if earlier_steps.contains(&step.plugin.as_str()) {
            invalid(
                format!("steps[{index}].plugin"),
                format!("`{}` is already a step of this pipeline", step.plugin),
            );
        }
        if let Err(error) = handle.current().check_config(&step.call(PluginLimits::default())) {
            invalid(format!("steps[{index}].config"), error.to_string());
        }
        earlier_steps.push(&step.plugin);
    }

    if let SourceConfig::Http(source) = &pipeline.source
        && let Some(reply) = &source.reply
    {
        match StepInput::try_from(reply.clone()) {
            Ok(StepInput::Output { plugin, output }) => {
                if let Some(problem) = check_output_ref(registry, &earlier_steps, &plugin, &output) {
                    invalid("source.reply".into(), problem);
                }
            }
            Ok(StepInput::Source) => {
                invalid("source.reply".into(), "name a step's output: `<plugin>.<output>`".into())
            }
            Err(problem) => invalid("source.reply".into(), problem),
        }
    }
    for (index, sink) in pipeline.sinks.iter().enumerate() {
        let key = format!("sinks[{index}].from");
        if sink.from != "source" {
            match StepInput::try_from(sink.from.clone()) {
                Ok(StepInput::Output { plugin, output }) => {
                    if let Some(problem) = check_output_ref(registry, &earlier_steps, &plugin, &output) {
                        invalid(key, problem);
                    }
                }
                Ok(StepInput::Source) => {}
                Err(problem) => invalid(key, problem),
            }
        }
    }
    // The source kind's own rules: the sinks it can feed and what it needs to run.
    for (key, problem) in pipeline.source.problems(pipeline) {
        invalid(key, problem);
    }
    if let Some(path) = pipeline.tables_sql_path() {
        if !pipeline.sinks.iter().any(|sink| matches!(sink.kind, SinkKind::Postgres(_))) {
            invalid("tables_sql".into(), "only a pipeline with `postgres` sinks has tables to create".into());
        } else if !path.is_file() {
            invalid("tables_sql".into(), format!("{} is not a readable file", path.display()));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Why `<plugin>.<output>` cannot be consumed here, if it cannot.
fn check_output_ref(
    registry: &PluginRegistry,
    earlier_steps: &[&str],
    plugin: &str,
    output: &str,
) -> Option<String> {
    if !earlier_steps.contains(&plugin) {
        let allowed = if earlier_steps.is_empty() { "none".to_string() } else { earlier_steps.join(", ") };
        return Some(format!(
            "`{plugin}` is not an earlier step of this pipeline (earlier steps: {allowed})"
        ));
    }
    let loaded = registry.get(plugin)?.current();
    if loaded.has_output(output) {
        return None;
    }
    let outputs: Vec<&str> = loaded.info().outputs.iter().map(|o| o.name.as_str()).collect();
    Some(format!("plugin `{plugin}` has no output `{output}` (its outputs: {})", outputs.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kafka::MAX_MEMBERS;

    fn parse(text: &str) -> Result<Pipeline, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).expect("write pipeline");
        load_pipeline_file(&path)
    }

    fn empty_registry() -> PluginRegistry {
        let engine = crate::plugin::PluginEngine::new(64 << 20).expect("engine");
        PluginRegistry::new(engine, crate::plugin::CompileCache::disabled())
    }

    const SOURCE: &str = "name = \"p\"\n[source]\nkind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n";

    #[test]
    fn the_mail_pipeline_names_its_answer_fields_itself() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/mail.toml");
        let pipeline = load_pipeline_file(&path).expect("pipelines/mail.toml");
        let SourceConfig::Http(source) = &pipeline.source else { panic!("{:?}", pipeline.source) };
        assert_eq!(source.reply.as_deref(), Some("mail-request.reply"));
        assert!(
            pipeline.sinks.iter().any(
                |sink| matches!(&sink.kind, SinkKind::Sendgrid(settings) if settings.reply_field.is_some())
            ),
            "{:?}",
            pipeline.sinks
        );
    }

    #[test]
    fn an_unknown_sink_kind_names_the_allowed_kinds() {
        let error = parse(&format!("{SOURCE}[[sinks]]\nfrom = \"source\"\nkind = \"ftp\"\n")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("p.toml"), "{message}");
        assert!(
            message.contains("ftp") && message.contains("parquet-s3") && message.contains("postgres"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_sink_key_is_refused() {
        let error = parse(&format!(
            "{SOURCE}[[sinks]]\nfrom = \"source\"\nkind = \"kafka\"\ntopic = \"t\"\ntopik = 1\n"
        ))
        .unwrap_err();
        assert!(error.to_string().contains("topik"), "{error}");
    }

    #[test]
    fn an_unknown_source_key_is_refused() {
        let error = parse(&format!("{SOURCE}topics = \"x\"\n")).unwrap_err();
        assert!(error.to_string().contains("topics"), "{error}");
    }

    #[test]
    fn a_step_naming_a_plugin_that_is_not_loaded_is_refused_with_the_key() {
        let pipeline = parse(&format!("{SOURCE}[[steps]]\nplugin = \"nope\"\n")).expect("parses");
        let errors = validate_pipeline(&pipeline, &empty_registry()).unwrap_err();
        let message = errors[0].to_string();
        assert!(message.contains("steps[0].plugin") && message.contains("nope"), "{message}");
    }

    #[test]
    fn a_sink_reading_from_a_plugin_that_is_not_a_step_is_refused() {
        let pipeline =
            parse(&format!("{SOURCE}[[sinks]]\nfrom = \"a.b\"\nkind = \"kafka\"\ntopic = \"x\"\n"))
                .expect("parses");
        let errors = validate_pipeline(&pipeline, &empty_registry()).unwrap_err();
        assert!(errors[0].to_string().contains("sinks[0].from"), "{}", errors[0]);
    }

    #[test]
    fn a_sink_the_source_cannot_feed_is_refused_with_file_key_and_allowed_kinds() {
        let pipeline =
            parse(&format!("{SOURCE}[[sinks]]\nfrom = \"source\"\nkind = \"sendgrid\"\n")).expect("parses");
        let errors = validate_pipeline(&pipeline, &empty_registry()).unwrap_err();
        let message = errors[0].to_string();
        assert!(message.contains("p.toml") && message.contains("`sinks[0].kind`"), "{message}");
        assert!(
            message.contains("`sendgrid`") && message.contains("`parquet-s3`, `parquet-local`"),
            "{message}"
        );
    }

    #[test]
    fn a_job_pipeline_with_steps_must_keep_its_refused_records() {
        let job = "name = \"p\"\n[source]\nkind = \"s3-job\"\npath = \"/v1/jobs/p\"\njob_topic = \"t\"\ngroup = \"g\"\n\
                   [[steps]]\nplugin = \"validate\"\n";
        let errors = validate_pipeline(&parse(job).expect("parses"), &empty_registry()).unwrap_err();
        assert!(errors.iter().any(|e| e.to_string().contains("needs [dead_letters]")), "{errors:?}");
        let kept = format!("{job}[dead_letters]\nkind = \"local\"\ndir = \"/tmp/dl\"\n");
        let errors = validate_pipeline(&parse(&kept).expect("parses"), &empty_registry()).unwrap_err();
        assert!(!errors.iter().any(|e| e.to_string().contains("dead_letters")), "{errors:?}");
    }

    #[test]
    fn members_must_be_between_one_and_the_maximum() {
        for (members, accepted) in [(0, false), (1, true), (4, true), (MAX_MEMBERS + 1, false)] {
            let pipeline = parse(&format!("{SOURCE}members = {members}\n")).expect("parses");
            let errors = validate_pipeline(&pipeline, &empty_registry()).err().unwrap_or_default();
            let refused = errors.iter().any(|e| e.to_string().contains("source.members"));
            assert_eq!(refused, !accepted, "members = {members}: {errors:?}");
        }
        let default = parse(SOURCE).expect("parses");
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert!(
            matches!(&default.source, SourceConfig::Kafka(source) if source.members == cores.min(MAX_MEMBERS))
        );
    }

    #[test]
    fn step_inputs_are_source_or_plugin_dot_output() {
        assert_eq!(StepInput::try_from("source".to_string()), Ok(StepInput::Source));
        assert!(StepInput::try_from("a.b".to_string()).is_ok());
        assert!(StepInput::try_from("ab".to_string()).is_err());
        assert!(StepInput::try_from(".b".to_string()).is_err());
    }
}
