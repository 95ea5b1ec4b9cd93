//! A pipeline's chain of real plugin components: which failed part of a source record it
//! reports, so the dead letters hold exactly what a re-run must redo.

use sluice::config::{HostConfig, Pipeline};
use sluice::pipeline::{Chain, ChainOutput};
use sluice::plugin::{CompileCache, PluginEngine, PluginRegistry, RecordIn};
use sluice_e2e::artifacts::plugin_path;

const GOOD_EVENT: &str =
    r#"{"email":"ann@example.com","timestamp":1717200000,"event":"open","sg_event_id":"ev-1"}"#;
/// Spaced on purpose: the part must be the event's text byte for byte, not a re-encoding.
const BAD_EVENT: &str =
    r#"{ "email": "bob@example.com", "timestamp": "soon", "event": "open", "sg_event_id": "ev-2" }"#;

/// Runs one webhook body holding a good and a bad event through the pipeline `steps` (TOML).
async fn run_body(steps: &str) -> ChainOutput {
    let registry =
        PluginRegistry::new(PluginEngine::new(256 << 20).expect("engine"), CompileCache::disabled());
    for plugin in ["normalize-sendgrid-events", "fixtures/fixture-hostile"] {
        registry.load_file(&plugin_path(plugin)).expect("load plugin");
    }
    let text = format!("name = \"chain\"\n[source]\nkind = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\n{steps}");
    let pipeline: Pipeline = toml_pipeline(&text);
    let chain = Chain::new(&pipeline, &registry, &HostConfig::default()).expect("chain");
    let body = format!("[{GOOD_EVENT},{BAD_EVENT}]");
    chain
        .run(std::sync::Arc::from([RecordIn { key: None, value: body.into_bytes(), headers: Vec::new() }]))
        .await
}

fn toml_pipeline(text: &str) -> Pipeline {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.toml");
    std::fs::write(&path, text).expect("write pipeline");
    sluice::config::load_pipeline_file(&path).expect("pipeline parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_of_a_source_body_is_reported_as_its_part_beside_the_good_rows() {
    let output = run_body("[[steps]]\nplugin = \"normalize-sendgrid-events\"\n").await;
    let rows = &output.outputs["normalize-sendgrid-events.events"];
    assert_eq!(rows.len(), 1, "the good event is still a row");
    assert_eq!(output.failures.len(), 1, "{:?}", output.failures);
    let failure = &output.failures[0];
    assert_eq!((failure.source_index, failure.trapped), (0, false));
    assert!(failure.reason.starts_with("[1].timestamp: "), "{}", failure.reason);
    assert_eq!(failure.part.as_deref(), Some(format!("[{BAD_EVENT}]").as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_failed_by_a_later_step_fails_the_source_record_whole() {
    let steps = "[[steps]]\nplugin = \"fixture-hostile\"\n[steps.config]\nbehavior = \"echo\"\n\
                 [[steps]]\nplugin = \"normalize-sendgrid-events\"\ninput = \"fixture-hostile.out\"\n";
    let output = run_body(steps).await;
    assert_eq!(output.failures.len(), 1, "{:?}", output.failures);
    let failure = &output.failures[0];
    assert_eq!(failure.step, "normalize-sendgrid-events");
    assert_eq!(failure.part, None, "a part of another step's output cannot be re-run from the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_batch_fails_its_source_records_whole() {
    let steps = "[[steps]]\nplugin = \"fixture-hostile\"\n[steps.config]\nbehavior = \"panic\"\n";
    let output = run_body(steps).await;
    assert_eq!(output.failures.len(), 1, "{:?}", output.failures);
    assert!(output.failures[0].trapped);
    assert_eq!(output.failures[0].part, None);
}
