//! The plugin runtime against hostile components: limits hold, traps are contained, swaps
//! lose no call, and a component of another contract version is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice::plugin::{
    CompileCache, LoadedPlugin, PluginCall, PluginEngine, PluginError, PluginLimits, PluginRegistry, RecordIn,
};
use sluice_e2e::artifacts::plugin_path;

fn registry() -> PluginRegistry {
    PluginRegistry::new(PluginEngine::new(256 << 20).expect("engine"), CompileCache::disabled())
}

fn call(behavior: &str, limits: PluginLimits) -> PluginCall {
    PluginCall { config: vec![("behavior".into(), behavior.into())], limits }
}

fn batch(n: usize) -> Vec<RecordIn> {
    (0..n)
        .map(|i| RecordIn { key: None, value: format!("{{\"n\":{i}}}").into_bytes(), headers: vec![] })
        .collect()
}

fn hostile(registry: &PluginRegistry) -> sluice::plugin::PluginHandle {
    registry.load_file(&plugin_path("fixtures/fixture-hostile")).expect("load fixture-hostile")
}

const SHORT: PluginLimits = PluginLimits { timeout: Duration::from_millis(200), memory_bytes: 32 << 20 };

#[test]
fn an_endless_loop_is_interrupted_at_its_deadline() {
    let registry = registry();
    let plugin = hostile(&registry);
    let started = Instant::now();
    let error = plugin.transform_blocking(&call("spin", SHORT), &batch(1)).unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    // Generous bound: this checks the loop was stopped at all, not how fast.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(plugin.stats().traps.load(Ordering::Relaxed), 1);
}

#[test]
fn growing_memory_past_the_cap_traps_with_the_limit_named() {
    let registry = registry();
    let plugin = hostile(&registry);
    let limits = PluginLimits { timeout: Duration::from_secs(30), memory_bytes: 32 << 20 };
    let error = plugin.transform_blocking(&call("grow", limits), &batch(1)).unwrap_err();
    assert!(matches!(error, PluginError::MemoryLimit { limit_mb: 32, .. }), "{error}");
}

#[test]
fn a_trap_is_contained_and_the_next_call_on_the_same_plugin_works() {
    let registry = registry();
    let plugin = hostile(&registry);
    for behavior in ["panic", "recurse"] {
        let error = plugin.transform_blocking(&call(behavior, SHORT), &batch(3)).unwrap_err();
        assert!(matches!(error, PluginError::Trap { .. }), "{behavior}: {error}");
        let next = plugin.transform_blocking(&call("echo", SHORT), &batch(3)).expect("echo after a trap");
        let rows = next.result.rows_as_json();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], ("out", br#"{"value":{"n":2}}"#.to_vec()));
    }
    assert_eq!(plugin.stats().traps.load(Ordering::Relaxed), 2);
}

#[test]
fn a_plugin_cannot_read_files_or_the_environment() {
    let registry = registry();
    let plugin = hostile(&registry);
    match plugin.transform_blocking(&call("read-file", SHORT), &batch(1)) {
        Err(PluginError::BatchRejected { message, .. }) => assert!(!message.contains("root:"), "{message}"),
        other => panic!("reading /etc/passwd must fail inside the sandbox, got {other:?}"),
    }
    // SAFETY of the check: the test process has environment variables, the plugin must see none.
    assert!(std::env::vars().count() > 0);
    let env = plugin.transform_blocking(&call("read-env", SHORT), &batch(1)).expect("read-env runs");
    let text = String::from_utf8_lossy(&env.result.rows_as_json()[0].1).to_string();
    assert!(text.contains("\"count\":0"), "the plugin saw environment variables: {text}");
}

#[test]
fn the_wall_clock_a_plugin_sees_is_stopped_at_the_unix_epoch() {
    let registry = registry();
    let plugin = hostile(&registry);
    let clock = plugin.transform_blocking(&call("clock", SHORT), &batch(1)).expect("clock runs");
    // The fixture reports milliseconds since the epoch as `{"value": n}`.
    let text = String::from_utf8_lossy(&clock.result.rows_as_json()[0].1).to_string();
    assert_eq!(text, r#"{"value":0}"#, "the plugin saw the host's time of day");
}

/// What `hoard` answered for a batch of one `{"mb": mb}`: the instance's calls and holdings.
fn hoard_once(
    plugin: &sluice::plugin::PluginHandle,
    limits: PluginLimits,
    mb: usize,
) -> Result<(u64, u64), PluginError> {
    let record = RecordIn { key: None, value: format!("{{\"mb\":{mb}}}").into_bytes(), headers: vec![] };
    let done = plugin.transform_blocking(&call("hoard", limits), &[record])?;
    let row: serde_json::Value =
        serde_json::from_slice(&done.result.rows_as_json()[0].1).expect("hoard answers JSON");
    let answer = &row["value"];
    Ok((answer["calls"].as_u64().expect("calls"), answer["held_mb"].as_u64().expect("held_mb")))
}

#[test]
fn an_instance_serves_later_batches_until_it_traps_or_holds_over_half_its_cap() {
    let registry = registry();
    let plugin = hostile(&registry);
    let cap = PluginLimits { timeout: Duration::from_secs(30), memory_bytes: 32 << 20 };
    // The same step's batches share an instance, and what it kept is still there.
    assert_eq!(hoard_once(&plugin, cap, 4).unwrap(), (1, 4));
    assert_eq!(hoard_once(&plugin, cap, 4).unwrap(), (2, 8));
    // Other limits are another step: a fresh instance.
    let other = PluginLimits { memory_bytes: 48 << 20, ..cap };
    assert_eq!(hoard_once(&plugin, other, 1).unwrap(), (1, 1));
    // 26 MiB on top of the 8 held passes the cap; the batch runs again on a fresh instance,
    // where it fits, so what earlier batches left behind cannot fail it.
    assert_eq!(hoard_once(&plugin, cap, 26).unwrap(), (1, 26));
    assert_eq!(plugin.stats().traps.load(Ordering::Relaxed), 0);
    // That instance holds over half the cap, so it was not kept.
    assert_eq!(hoard_once(&plugin, cap, 1).unwrap(), (1, 1));
    assert_eq!(hoard_once(&plugin, cap, 1).unwrap(), (2, 2));
    // A batch too big even for a fresh instance fails with the limit, and the instance goes.
    let error = hoard_once(&plugin, cap, 40).unwrap_err();
    assert!(matches!(error, PluginError::MemoryLimit { limit_mb: 32, .. }), "{error}");
    assert_eq!(hoard_once(&plugin, cap, 1).unwrap(), (1, 1));
}

#[test]
fn output_larger_than_the_memory_cap_is_stopped_inside_the_sandbox() {
    let registry = registry();
    let plugin = hostile(&registry);
    let huge = PluginCall {
        config: vec![("behavior".into(), "huge-output".into()), ("huge_output_mb".into(), "64".into())],
        limits: PluginLimits { timeout: Duration::from_secs(30), memory_bytes: 32 << 20 },
    };
    let error = plugin.transform_blocking(&huge, &batch(1)).unwrap_err();
    assert!(matches!(error, PluginError::MemoryLimit { limit_mb: 32, .. }), "{error}");
    let small = PluginCall {
        config: vec![("behavior".into(), "huge-output".into()), ("huge_output_mb".into(), "1".into())],
        limits: PluginLimits { timeout: Duration::from_secs(30), memory_bytes: 32 << 20 },
    };
    let done = plugin.transform_blocking(&small, &batch(1)).expect("1 MiB fits the cap");
    let bytes: usize = done.result.rows_as_json().iter().map(|(_, row)| row.len()).sum();
    assert!(bytes > 900 << 10, "{bytes} bytes of output");
}

#[test]
fn a_component_built_for_another_contract_version_is_refused_naming_both() {
    let engine = PluginEngine::new(64 << 20).expect("engine");
    let path = plugin_path("fixtures/fixture-wrong-version");
    let error = LoadedPlugin::from_file(&engine, &CompileCache::disabled(), &path).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PluginError::WitVersion { .. }), "{message}");
    assert!(
        message
            .contains("built for sluice:transform@0.1.0, but this host runs sluice:transform@0.3.0 or 0.2.0"),
        "{message}"
    );
}

/// The built fixture versions, as `sluice sweep`'s tests use them: version 1 rejects every record
/// whole, version 2 turns the same records into rows of the declared `rows` table.
#[test]
fn fail_before_v2_rejects_in_version_1_and_emits_declared_rows_in_version_2() {
    let engine = PluginEngine::new(64 << 20).expect("engine");
    let load = |name: &str| {
        LoadedPlugin::from_file(&engine, &CompileCache::disabled(), &plugin_path(name)).expect("load fixture")
    };
    let records = vec![RecordIn { key: None, value: br#"{"id":"a","n":1}"#.to_vec(), headers: vec![] }];

    let v1 = load("fixtures/fixture-hostile");
    let rejected = v1.transform(&call("fail-before-v2", SHORT), &records).expect("v1 answers");
    assert_eq!(rejected.row_count(), 0);
    let failures: Vec<_> = rejected
        .failures
        .iter()
        .map(|f| (f.index, f.field.as_deref(), f.reason.as_str(), f.part.is_none()))
        .collect();
    assert_eq!(failures, [(0, Some("value"), "rejected by version 1.0.0", true)]);

    let v2 = load("fixtures/fixture-hostile-v2");
    let rows = v2.transform(&call("fail-before-v2", SHORT), &records).expect("v2 answers");
    assert!(rows.failures.is_empty(), "{:?}", rows.failures);
    assert_eq!(rows.rows_as_json(), [("rows", br#"{"id":"a","n":1,"raw":{"id":"a","n":1}}"#.to_vec())]);
    let declared = v2.info().output("rows").expect("rows is declared");
    let columns: Vec<_> =
        declared.columns.iter().map(|column| (column.name.as_str(), column.column_type.name())).collect();
    assert_eq!(columns, [("id", "text"), ("n", "int64"), ("raw", "json")]);
}

#[test]
fn the_compile_cache_is_reused_and_survives_a_corrupt_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = PluginEngine::new(64 << 20).expect("engine");
    let cache = CompileCache::in_dir(dir.path());
    let path = plugin_path("fixtures/fixture-hostile");
    let first = LoadedPlugin::from_file(&engine, &cache, &path).expect("first load compiles");
    let cached: Vec<_> = std::fs::read_dir(dir.path()).expect("cache dir").flatten().collect();
    assert_eq!(cached.len(), 1, "one .cwasm per content hash");
    let cwasm = cached[0].path();
    assert!(cwasm.to_string_lossy().contains(first.content_hash()));
    std::fs::write(&cwasm, b"not a cwasm").expect("corrupt the cache entry");
    let second = LoadedPlugin::from_file(&engine, &cache, &path).expect("a corrupt entry is recompiled");
    assert_eq!(second.content_hash(), first.content_hash());
    second.transform(&call("echo", SHORT), &batch(1)).expect("recompiled plugin runs");
}

#[test]
fn swapping_versions_while_calls_run_loses_no_call() {
    let registry = Arc::new(registry());
    let v1 = plugin_path("fixtures/fixture-hostile");
    let v2 = plugin_path("fixtures/fixture-hostile-v2");
    let plugin = registry.load_file(&v1).expect("v1");
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let plugin = plugin.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                let echo =
                    call("echo", PluginLimits { timeout: Duration::from_secs(10), memory_bytes: 64 << 20 });
                while !stop.load(Ordering::Relaxed) {
                    let done =
                        plugin.transform_blocking(&echo, &batch(5)).expect("no call fails during swaps");
                    assert_eq!(done.result.row_count(), 5);
                    versions.push(done.plugin.version().to_string());
                }
                versions
            })
        })
        .collect();
    let engine = registry.engine().clone();
    for swap in 0..20 {
        let path = if swap % 2 == 0 { &v2 } else { &v1 };
        let next =
            LoadedPlugin::from_file(&engine, &CompileCache::disabled(), path).expect("compile next version");
        let expected = next.version().to_string();
        registry.install(next);
        assert_eq!(plugin.current().version(), expected, "a swap is visible at once");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let versions: Vec<String> = callers.into_iter().flat_map(|c| c.join().expect("caller thread")).collect();
    assert!(!versions.is_empty());
    assert!(versions.iter().all(|v| v == "1.0.0" || v == "2.0.0"), "{versions:?}");
    assert!(versions.iter().any(|v| v == "2.0.0"), "calls saw the swapped-in version");
    assert_eq!(plugin.stats().calls.load(Ordering::Relaxed), versions.len() as u64);
}
