//! Keeps `samples/` true to the code: `sluice plugin test` replays the same files through the
//! built component. Run with `SLUICE_BLESS=1` to rewrite `expected.json` after an intended
//! change, then review the diff.

use mail_request::{MailConfig, declared_outputs, transform_batch};

#[test]
fn sample_batch_gives_the_expected_outputs_and_failures() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    sluice_plugin_sdk::samples::assert_expected(samples, &declared_outputs(), |batch| {
        transform_batch(batch, &MailConfig::default())
    });
}
