//! Object keys: where a finished Parquet file is stored.
//!
//! The key is a function of the file's first input record (topic, partition and offset), as in
//! Kafka Connect's S3 sink: after a crash the consumer resumes from the last committed offset,
//! rebuilds the same file and writes it under the same key, replacing the partial attempt instead
//! of adding a duplicate next to it. Offsets are zero-padded to 20 digits (any `i64` fits), so
//! keys list in offset order.

use super::partition::escape_path_name;

/// The key of a file: `{prefix}/{partition_path}{topic}+{partition}+{first_offset:020}.parquet`.
///
/// `prefix` may end in `/` or be empty (no leading `/` then); `partition_path` is a
/// [`PartitionedBatch::path`](super::partition::PartitionedBatch::path), empty or ending in `/`.
/// The topic is escaped like a partition value, which leaves legal Kafka topic names
/// (`[A-Za-z0-9._-]`) unchanged but keeps any other source name from adding directories.
pub fn object_key(
    prefix: &str,
    partition_path: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
) -> String {
    let prefix = prefix.trim_end_matches('/');
    let separator = if prefix.is_empty() { "" } else { "/" };
    let topic = escape_path_name(topic);
    format!("{prefix}{separator}{partition_path}{topic}+{partition}+{first_offset:020}.parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_built_from_prefix_partition_and_first_offset() {
        assert_eq!(
            object_key("tables/events", "dt=2024-05-01/event=open/", "sendgrid-events", 3, 1234),
            "tables/events/dt=2024-05-01/event=open/sendgrid-events+3+00000000000000001234.parquet"
        );
    }

    #[test]
    fn the_same_first_record_gives_the_same_key() {
        let first = object_key("p", "dt=x/", "t", 0, 42);
        let replay = object_key("p", "dt=x/", "t", 0, 42);
        assert_eq!(first, replay);
        assert_ne!(first, object_key("p", "dt=x/", "t", 0, 43));
        assert_ne!(first, object_key("p", "dt=x/", "t", 1, 42));
    }

    #[test]
    fn slashes_around_the_prefix_do_not_change_the_key() {
        let expected = "p/t+0+00000000000000000000.parquet";
        assert_eq!(object_key("p", "", "t", 0, 0), expected);
        assert_eq!(object_key("p/", "", "t", 0, 0), expected);
        assert_eq!(object_key("", "", "t", 0, 0), "t+0+00000000000000000000.parquet");
    }

    #[test]
    fn offsets_sort_as_text_and_the_largest_fits() {
        let low = object_key("p", "", "t", 0, 9);
        let high = object_key("p", "", "t", 0, 10);
        assert!(low < high);
        assert_eq!(object_key("p", "", "t", 0, i64::MAX), "p/t+0+09223372036854775807.parquet");
    }

    #[test]
    fn a_topic_cannot_add_directories() {
        assert_eq!(object_key("p", "", "a/b", 0, 0), "p/a%2Fb+0+00000000000000000000.parquet");
    }
}
