//! The name a window's objects share: a Parquet file, the dead letters and the window marker of
//! one window are all `{topic}+{partition}+{first_offset:020}` plus their own extension.
//!
//! The stem is a function of the window's first input record, as in Kafka Connect's S3 sink:
//! after a crash the replayed window writes under the same keys, replacing the partial attempt
//! instead of adding a duplicate next to it. Offsets are zero-padded to 20 digits (any `i64`
//! fits), so keys list in offset order.

use crate::sink::parquet::partition::escape_path_name;

/// `{topic}+{partition}+{first_offset:020}`, the topic escaped like a partition value: legal
/// Kafka topic names (`[A-Za-z0-9._-]`) stay as they are, and no source name adds directories.
pub fn window_stem(topic: &str, partition: i32, first_offset: i64) -> String {
    format!("{}+{partition}+{first_offset:020}", escape_path_name(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stem_names_topic_partition_and_padded_first_offset() {
        assert_eq!(window_stem("sendgrid-events", 3, 1234), "sendgrid-events+3+00000000000000001234");
        assert_eq!(window_stem("t", 0, i64::MAX), "t+0+09223372036854775807");
    }

    #[test]
    fn offsets_sort_as_text() {
        assert!(window_stem("t", 0, 9) < window_stem("t", 0, 10));
    }

    #[test]
    fn a_topic_cannot_add_directories() {
        assert_eq!(window_stem("a/b", 0, 0), "a%2Fb+0+00000000000000000000");
    }
}
