//! Keeps `samples/` true to the code: `sluice plugin test` replays the same files through the
//! built component. Run with `SLUICE_BLESS=1` to rewrite `expected.json` after an intended
//! change, then review the diff.

#[test]
fn sample_batch_gives_the_expected_events_and_failures() {
    sluice_plugin_sdk::samples::assert_expected(
        concat!(env!("CARGO_MANIFEST_DIR"), "/samples"),
        &normalize_sendgrid_events::declared_outputs(),
        normalize_sendgrid_events::transform_batch,
    );
}
